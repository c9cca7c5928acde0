/* proxy_force_ranges: NGINX's range filter over a proxied response. The
 * upstream's Accept-Ranges is dropped; a 200 of known length answers a
 * Range of one part with 206 (the bytes outside it are dropped as they
 * come, see pv_pipe_trim()), a Range of several parts with the whole
 * response (NGINX's single_range), one that nothing satisfies with 416,
 * and anything else carries Accept-Ranges: bytes. Parsing and If-Range
 * are range.c's, as for static files. */
#include <stdio.h>
#include <string.h>

#include "../http/charset.h"
#include "../http/headers.h"
#include "../http/range.h"
#include "../http/server.h"
#include "../http/static.h"
#include "../upstream/upstream.h"
#include "proxy.h"

/* h's fields are in fields (room for PV_URESP_MAX_FIELDS). */
static void add_field(pv_resp_head_t *h, pv_header_t *fields, pv_header_t f)
{
    if (h->nfields < PV_URESP_MAX_FIELDS)
        fields[h->nfields++] = f;
}

static pv_str_t field(const pv_uresp_t *rp, const char *name, size_t len)
{
    for (int i = 0; i < rp->nfields; i++)
        if (rp->fields[i].name.len == len && strncasecmp(rp->fields[i].name.p, name, len) == 0)
            return rp->fields[i].value;
    return (pv_str_t){NULL, 0};
}

int pv_proxy_ranges(pv_proxy_t *px, struct pv_resp_head_s *h, pv_header_t *fields)
{
    pv_request_t *r = px->r;
    int nf = 0;
    for (int i = 0; i < h->nfields; i++) /* the upstream's word on ranges does not count */
        if (!(fields[i].name.len == 13 && PV_STR_IEQ(fields[i].name, "accept-ranges")))
            fields[nf++] = fields[i];
    h->nfields = nf;
    pv_charset_prepare(px->hr, h); /* NGINX's charset filter comes first: a recoded length is unknown */
    if (h->status != 200 || h->content_length < 0 || (r->flags & PV_REQ_F_HTTP09) || r->loc->conf.st.max_ranges <= 0)
        return 0;
    const pv_header_t *range = pv_request_header(r, "Range", 5);
    const pv_header_t *ifr = pv_request_header(r, "If-Range", 8);
    int kind = PV_RANGE_NONE, n = 0;
    pv_range_t rg;
    if (range && range->value.len >= 7 && strncasecmp(range->value.p, "bytes=", 6) == 0) {
        pv_str_t lm = field(&px->rp, "last-modified", 13);
        if (!ifr || pv_range_if_range(ifr->value, field(&px->rp, "etag", 4), lm.len ? pv_http_time_parse(lm) : -1))
            kind = pv_range_parse(range->value, h->content_length, 1, &rg, 1, &n);
    }
    if (kind == PV_RANGE_416) {
        pv_upconn_t *u = px->u; /* the body is not read: the connection goes */
        pv_proxy_release_server(px, PV_BAL_OK);
        px->u = NULL;
        pv_upstream_release(u, &(pv_upstream_done_t){.failed = 1});
        px->hr->handling = 0;
        pv_static_416(px->hr, h->content_length);
        return 1;
    }
    if (kind == PV_RANGE_NONE || n != 1) {
        add_field(h, fields, (pv_header_t){PV_STR("Accept-Ranges"), PV_STR("bytes")});
        return 0;
    }
    char *cr = pv_arena_alloc(r->arena, 80);
    int len = snprintf(cr, 80, "bytes %lld-%lld/%lld", (long long)rg.start, (long long)rg.end - 1,
                       (long long)h->content_length);
    add_field(h, fields, (pv_header_t){PV_STR("Content-Range"), {cr, (size_t)len}});
    h->status = 206;
    h->reason = (pv_str_t){NULL, 0};
    h->content_length = rg.end - rg.start;
    px->pipe.ranged = 1;
    px->pipe.rstart = rg.start;
    px->pipe.rend = rg.end;
    px->pipe.rpos = 0;
    return 0;
}
