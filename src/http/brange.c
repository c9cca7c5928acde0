/* The range filter of a streamed response (brange.h): the head decided
 * as NGINX's range header filter decides it for a response that allows
 * one range, and the body filter that passes the bytes of that range as
 * they come and drops the others. */
#include "brange.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/arena.h"
#include "bfilter.h"
#include "hfilter.h"
#include "range.h"
#include "server.h"

typedef struct brange_s {
    pv_bfilter_t f;      /* first: the chain's part */
    int64_t pos;         /* body bytes seen so far */
    int64_t start, end;  /* the part: bytes [start, end) */
} brange_t;

/* The parts of the input spans inside the range go out as they are. */
static void body(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    brange_t *b = (brange_t *)f;
    for (int i = 0; i < n; i++) {
        int64_t a = b->pos, e = a + (int64_t)spans[i].len;
        b->pos = e;
        int64_t s = PV_MAX(a, b->start), t = PV_MIN(e, b->end);
        if (s < t && pv_bf_out(hr, f, (pv_str_t){spans[i].p + (s - a), (size_t)(t - s)}) != PV_OK)
            return;
    }
}

static void end(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    PV_UNUSED(f);
}

static const pv_bfilter_ops_t brange_ops = {.name = "range", .body = body, .end = end};

static pv_str_t field(const pv_resp_head_t *h, const char *name, size_t len)
{
    for (int i = 0; i < h->nfields; i++)
        if (h->fields[i].name.len == len && strncasecmp(h->fields[i].name.p, name, len) == 0)
            return h->fields[i].value;
    return (pv_str_t){NULL, 0};
}

/* NGINX's If-Range: an entity tag (a value ending in a quote) equal to
 * the ETag byte for byte, else a date equal to Last-Modified. */
static int if_range_holds(pv_hreq_t *hr, const pv_resp_head_t *h)
{
    const pv_header_t *ifr = pv_request_header(&hr->r, "If-Range", 8);
    if (!ifr)
        return 1;
    pv_str_t etag = field(h, "etag", 4), lm = field(h, "last-modified", 13);
    pv_hfilter_replaced(hr, 200, "ETag", 4, &etag); /* add_header's, as NGINX's headers filter comes first */
    pv_hfilter_replaced(hr, 200, "Last-Modified", 13, &lm);
    return pv_range_if_range(ifr->value, etag, lm.len ? pv_http_time_parse(lm) : (time_t)-1);
}

/* The part: h becomes its 206 and the filter joins the chain. */
static int partial(pv_hreq_t *hr, pv_resp_head_t *h, pv_header_t *fields, pv_range_t rg)
{
    char *cr = pv_arena_alloc(&hr->arena, 80);
    brange_t *b = (brange_t *)pv_bf_add(hr, &brange_ops, sizeof(brange_t));
    if (!cr || !b)
        return PV_RESP_NOMEM;
    int n = snprintf(cr, 80, "bytes %lld-%lld/%lld", (long long)rg.start, (long long)rg.end - 1,
                     (long long)h->content_length);
    fields[h->nfields++] = (pv_header_t){PV_STR("Content-Range"), {cr, (size_t)n}};
    b->start = rg.start;
    b->end = rg.end;
    h->status = 206;
    h->reason = (pv_str_t){NULL, 0};
    h->content_length = rg.end - rg.start;
    return PV_OK;
}

int pv_brange_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_request_t *r = &hr->r;
    r->allow_ranges = 0;
    /* the handler's word on ranges does not count: this filter's does */
    pv_header_t *fields = pv_arena_alloc(&hr->arena, sizeof(*fields) * (size_t)(h->nfields + 1));
    if (!fields)
        return PV_RESP_NOMEM;
    int nf = 0;
    for (int i = 0; i < h->nfields; i++)
        if (!PV_STR_IEQ(h->fields[i].name, "accept-ranges"))
            fields[nf++] = h->fields[i];
    h->fields = fields;
    h->nfields = nf;
    if (h->status != 200 || h->content_length < 0 || hr->sub || (r->flags & PV_REQ_F_HTTP09) || !r->loc ||
        r->loc->conf.st.max_ranges <= 0)
        return PV_OK;
    const pv_header_t *range = pv_request_header(r, "Range", 5);
    int kind = PV_RANGE_NONE, n = 0;
    pv_range_t rg;
    if (range && range->value.len >= 7 && strncasecmp(range->value.p, "bytes=", 6) == 0 && if_range_holds(hr, h))
        kind = pv_range_parse(range->value, h->content_length, 1, &rg, 1, &n);
    if (kind == PV_RANGE_416)
        return PV_RESP_RANGE_416;
    if (kind == PV_RANGE_OK && n == 1)
        return partial(hr, h, fields, rg);
    fields[h->nfields++] = (pv_header_t){PV_STR("Accept-Ranges"), PV_STR("bytes")};
    return PV_OK;
}
