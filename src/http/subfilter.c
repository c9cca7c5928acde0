/* sub_filter: NGINX's header filter (which responses, and their head:
 * no Content-Length, no Last-Modified and ETag unless
 * sub_filter_last_modified, which keeps the ETag weak) and body filter,
 * streaming through the matcher of core/submatch.h. Held bytes go out
 * through a scratch buffer of the filter's, reused once its output is
 * written; pieces of the input and the replacements go out as they are. */
#include "subfilter.h"

#include <string.h>
#include <strings.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/submatch.h"
#include "server.h"
#include "vars.h"

typedef struct sub_filter_s {
    pv_bfilter_t f;              /* first: the chain's part */
    pv_hreq_t *hr;               /* while feeding */
    pv_sub_match_t m;
    const pv_sub_conf_t *conf;
    const uint8_t *pair_of;      /* the pair of each string searched (NULL: the same index) */
    pv_str_t *subs;              /* each pair's replacement once made (p NULL: not yet) */
    char *scratch;               /* held bytes put out, until written */
    size_t scap, sused;
} sub_filter_t;

static const pv_sub_conf_t *sub_conf(const pv_hreq_t *hr)
{
    const pv_request_t *r = &hr->r;
    return r->loc ? &r->loc->conf.sub : r->srv ? &r->srv->conf.sub : NULL;
}

/* ---- the body ---------------------------------------------------------- */

static int replacement(sub_filter_t *s, int pair, pv_str_t *out)
{
    pv_str_t *v = &s->subs[pair];
    if (!v->p) {
        const pv_cv_t *cv = &s->conf->pairs[pair].value;
        if (cv->is_const) {
            *v = cv->nparts ? cv->parts[0].text : (pv_str_t){"", 0};
        } else {
            size_t need = pv_cv_eval(cv, &s->hr->r, PV_ESCAPE_NONE, NULL, 0);
            char *p = pv_arena_alloc(&s->hr->arena, need + 1);
            if (!p)
                return PV_ERR;
            pv_cv_eval(cv, &s->hr->r, PV_ESCAPE_NONE, p, need + 1);
            *v = (pv_str_t){p, need};
        }
    }
    *out = *v;
    return PV_OK;
}

static int emit(void *ctx, int kind, const char *p, size_t n)
{
    sub_filter_t *s = ctx;
    pv_str_t v;
    switch (kind) {
    case PV_SUB_INPUT:
        return pv_bf_out(s->hr, &s->f, (pv_str_t){p, n});
    case PV_SUB_HELD:
        if (n > s->scap - s->sused)
            return pv_bf_out_copy(s->hr, &s->f, p, n);
        memcpy(s->scratch + s->sused, p, n);
        s->sused += n;
        return pv_bf_out(s->hr, &s->f, (pv_str_t){s->scratch + s->sused - n, n});
    default:
        if (replacement(s, s->pair_of ? s->pair_of[n] : (int)n, &v) != PV_OK) {
            s->f.failed = 1;
            return PV_ERR;
        }
        return pv_bf_out(s->hr, &s->f, v);
    }
}

static void sub_body(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    sub_filter_t *s = (sub_filter_t *)f;
    if (f->nout == 0)
        s->sused = 0; /* nothing put out is waiting: the scratch is free */
    s->hr = hr;
    for (int i = 0; i < n; i++)
        if (pv_sub_feed(&s->m, spans[i].p, spans[i].len, emit, s) != PV_OK)
            return;
}

static void sub_end(pv_hreq_t *hr, pv_bfilter_t *f)
{
    sub_filter_t *s = (sub_filter_t *)f;
    s->hr = hr;
    pv_sub_end(&s->m, emit, s);
}

static void sub_written(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    ((sub_filter_t *)f)->sused = 0;
}

static const pv_bfilter_ops_t sub_ops = {"sub_filter", sub_body, sub_end, sub_written, NULL, NULL};

/* ---- the head ---------------------------------------------------------- */

static const pv_header_t *field(const pv_resp_head_t *h, const char *name, size_t len)
{
    for (int i = 0; i < h->nfields; i++)
        if (h->fields[i].name.len == len && strncasecmp(h->fields[i].name.p, name, len) == 0)
            return &h->fields[i];
    return NULL;
}

/* The strings with variables, made for this request: lowercase, the
 * empty ones left out. NULL when every one is empty (*nomem 0) or
 * memory ran out (*nomem 1). */
static pv_sub_tables_t *request_tables(pv_hreq_t *hr, const pv_sub_conf_t *c, const uint8_t **pair_of,
                                       int *nomem)
{
    pv_arena_t *a = &hr->arena;
    pv_str_t *in = pv_arena_alloc(a, sizeof(*in) * (size_t)c->npairs);
    uint8_t *of = pv_arena_alloc(a, (size_t)c->npairs);
    *nomem = 1;
    if (!in || !of)
        return NULL;
    int k = 0;
    for (int i = 0; i < c->npairs; i++) {
        const pv_cv_t *cv = &c->pairs[i].match;
        pv_str_t v = cv->parts[0].text;
        if (!cv->is_const) {
            v.len = pv_cv_eval(cv, &hr->r, PV_ESCAPE_NONE, NULL, 0);
            char *p = pv_arena_alloc(a, v.len + 1);
            if (!p)
                return NULL;
            pv_cv_eval(cv, &hr->r, PV_ESCAPE_NONE, p, v.len + 1);
            for (size_t j = 0; j < v.len; j++)
                p[j] = (char)(p[j] >= 'A' && p[j] <= 'Z' ? p[j] | 0x20 : p[j]);
            v.p = p;
        }
        if (v.len) {
            of[k] = (uint8_t)i;
            in[k++] = v;
        }
    }
    *nomem = 0;
    if (k == 0)
        return NULL;
    pv_sub_tables_t *t = pv_arena_alloc(a, sizeof(*t));
    pv_str_t *pat = pv_arena_alloc(a, sizeof(*pat) * (size_t)k);
    uint8_t *orig = pv_arena_alloc(a, (size_t)k);
    if (!t || !pat || !orig) {
        *nomem = 1;
        return NULL;
    }
    pv_sub_tables_build(t, in, k, pat, orig);
    *pair_of = of;
    return t;
}

/* the head without Last-Modified and ETag (or with a weak ETag), nor
 * Accept-Ranges (NGINX's range filter answers none without a length);
 * the length unknown */
static int rewrite_head(pv_hreq_t *hr, pv_resp_head_t *h, int last_modified)
{
    if (pv_bf_head_fields(hr, h, !last_modified) != PV_OK)
        return PV_ERR;
    h->content_length = -1;
    h->frame = hr->r.flags & PV_REQ_F_HEAD ? PV_FRAME_NONE : PV_FRAME_CHUNKED;
    return PV_OK;
}

static int sub_start(pv_hreq_t *hr, const pv_sub_conf_t *c, const pv_sub_tables_t *t, const uint8_t *pair_of)
{
    sub_filter_t *s = (sub_filter_t *)pv_bf_add(hr, &sub_ops, sizeof(*s));
    if (!s)
        return PV_ERR;
    char *hold = pv_arena_alloc(&hr->arena, t->max);
    uint8_t *done = pv_arena_alloc(&hr->arena, (size_t)t->n);
    s->subs = pv_arena_calloc(&hr->arena, sizeof(*s->subs) * (size_t)c->npairs);
    s->scap = (size_t)PV_BF_TAKE * t->max;
    s->scratch = pv_arena_alloc(&hr->arena, s->scap);
    if (!hold || !done || !s->subs || !s->scratch)
        return PV_ERR;
    s->conf = c;
    s->pair_of = pair_of;
    pv_sub_match_init(&s->m, t, c->once, hold, done);
    return PV_OK;
}

/* NGINX's header filter's test, and no Content-Encoding: an encoded
 * body is not searched (NGINX would search its bytes) */
static int sub_changes(const pv_hreq_t *hr, const pv_resp_head_t *h)
{
    const pv_sub_conf_t *c = sub_conf(hr);
    if (!c || !c->pairs || h->content_length == 0 || h->upgrade || h->status < 200 || h->status == 204 ||
        h->status == 304 || !pv_bf_type_listed(c->types, h->content_type))
        return 0;
    const pv_header_t *ce = field(h, "Content-Encoding", 16);
    return !ce || !ce->value.len;
}

static int sub_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    const pv_sub_conf_t *c = sub_conf(hr);
    if (!sub_changes(hr, h))
        return PV_OK;
    const pv_sub_tables_t *t = c->tables;
    const uint8_t *pair_of = NULL;
    int nomem = 0;
    if (c->dynamic && !(t = request_tables(hr, c, &pair_of, &nomem)) && !nomem)
        return PV_OK; /* every string is empty here */
    if (nomem || rewrite_head(hr, h, c->last_modified) != PV_OK ||
        (!(hr->r.flags & PV_REQ_F_HEAD) && sub_start(hr, c, t, pair_of) != PV_OK)) {
        pv_cache_nomem("a sub_filter", pv_log_client(&hr->r));
        return PV_RESP_NOMEM;
    }
    return PV_OK;
}

const pv_bfilter_module_t pv_sub_filter_module = {"sub_filter", sub_head, sub_changes};
