/* The body filter chain (bfilter.h): the response calls hand the
 * handler's spans to the first filter; a filter's output goes to the
 * next one as it has room, and the last one's to compression or the
 * protocol (pv_resp_below_*). When the handler finishes and a filter's
 * rest cannot be written at once, the chain becomes the request's
 * running handler until it is. */
#include "bfilter.h"

#include <string.h>
#include <strings.h>

#include "../core/arena.h"
#include "../core/log.h"
#include "charset.h"
#include "server.h"
#include "subfilter.h"
#include "addition.h"
#include "ssi.h"

#define BF_TAKE PV_BF_TAKE /* input spans a filter takes at once */

/* NGINX's order: each module's filter goes after those before it. */
static const pv_bfilter_module_t *const modules[] = {
    &pv_addition_bfilter,
    &pv_sub_filter_module,
    &pv_charset_bfilter,
    &pv_ssi_bfilter,
    NULL,
};

typedef struct pv_bfchain_s {
    pv_bfilter_t *first, *last;
    pv_bfilter_t *finishing;     /* the first filter whose rest is not written yet */
    const pv_handler_t *saved;   /* the handler the chain replaced while finishing */
    uint8_t saved_handling;
    uint8_t took_over;
    pv_timer_t wake;             /* pv_bf_wake(): proceed() from the loop */
} pv_bfchain_t;

int pv_bf_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    for (int i = 0; modules[i]; i++) {
        int rc = modules[i]->head(hr, h);
        if (rc != PV_OK)
            return rc;
    }
    return PV_OK;
}

int pv_bf_changes(const pv_hreq_t *hr, const pv_resp_head_t *h)
{
    for (int i = 0; modules[i]; i++)
        if (modules[i]->changes && modules[i]->changes(hr, h))
            return 1;
    return 0;
}

static void wake_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = t->data;
    if (hr->handling)
        hr->handler->proceed(hr);
}

pv_bfilter_t *pv_bf_add(pv_hreq_t *hr, const pv_bfilter_ops_t *ops, size_t size)
{
    pv_bfchain_t *c = hr->bf;
    if (!c) {
        c = pv_arena_alloc(&hr->arena, sizeof(*c));
        if (!c)
            return NULL;
        memset(c, 0, sizeof(*c));
        pv_timer_init(&c->wake, wake_cb, hr);
    }
    pv_bfilter_t *f = pv_arena_alloc(&hr->arena, size);
    if (!f)
        return NULL;
    memset(f, 0, size);
    f->ops = ops;
    if (c->last)
        c->last->next = f;
    else
        c->first = f;
    c->last = f;
    hr->bf = c;
    return f;
}

int pv_bf_out(pv_hreq_t *hr, pv_bfilter_t *f, pv_str_t s)
{
    if (s.len == 0)
        return PV_OK;
    if (f->nout == f->cap) {
        int cap = f->cap ? f->cap * 2 : BF_TAKE;
        pv_str_t *out = pv_arena_alloc(&hr->arena, (size_t)cap * sizeof(*out));
        if (!out) {
            f->failed = 1;
            return PV_ERR;
        }
        if (f->nout)
            memcpy(out, f->out, (size_t)f->nout * sizeof(*out));
        f->out = out;
        f->cap = cap;
    }
    f->out[f->nout++] = s;
    return PV_OK;
}

int pv_bf_out_copy(pv_hreq_t *hr, pv_bfilter_t *f, const void *p, size_t len)
{
    if (len == 0)
        return PV_OK;
    char *d = pv_arena_alloc(&hr->arena, len);
    if (!d) {
        f->failed = 1;
        return PV_ERR;
    }
    memcpy(d, p, len);
    return pv_bf_out(hr, f, (pv_str_t){d, len});
}

void pv_bf_wake(pv_hreq_t *hr)
{
    if (hr->bf)
        pv_timer_set(hr->w->loop, &hr->bf->wake, 0);
}

/* ---- the stages: a filter, or (NULL) what is below the chain ------------- */

static int flush_one(pv_hreq_t *hr, pv_bfilter_t *f);

static int stage_room(const pv_hreq_t *hr, const pv_bfilter_t *f)
{
    if (!f)
        return pv_resp_below_room(hr);
    return f->nout || f->ended ? 0 : BF_TAKE;
}

static void stage_send(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    if (!f)
        pv_resp_below_send(hr, spans, n);
    else if (!f->failed)
        f->ops->body(hr, f, spans, n);
}

static int stage_flush(pv_hreq_t *hr, pv_bfilter_t *f)
{
    return f ? flush_one(hr, f) : pv_resp_below_flush(hr);
}

/* Hand f's output on and write everything below it. PV_OK once all of
 * it is written (f's buffers are then free), PV_AGAIN, or PV_ERR (the
 * request is gone). A filter with pull() is asked again once what it
 * put out is written: it may have more (what it waited for came while
 * this went out) or still wait. */
static int flush_one(pv_hreq_t *hr, pv_bfilter_t *f)
{
    for (;;) {
        int rc = f->ops->pull && !f->failed ? f->ops->pull(hr, f) : PV_OK;
        if (f->failed || rc == PV_ERR) {
            pv_log(PV_LOG_ERR, "the %s filter failed, the response is cut", f->ops->name);
            hr->proto->resp->abort(hr);
            return PV_ERR;
        }
        if (rc != PV_OK)
            return rc;
        int had = f->nout > 0;
        while (f->sent < f->nout) {
            int room = stage_room(hr, f->next);
            if (room == 0) {
                rc = stage_flush(hr, f->next);
                if (rc != PV_OK)
                    return rc;
                continue;
            }
            int k = PV_MIN(room, f->nout - f->sent);
            stage_send(hr, f->next, f->out + f->sent, k);
            f->sent += k;
        }
        rc = stage_flush(hr, f->next);
        if (rc != PV_OK)
            return rc;
        f->nout = f->sent = 0;
        if (f->ops->written)
            f->ops->written(hr, f);
        if (!had || !f->ops->pull)
            return PV_OK;
    }
}

/* ---- the response calls -------------------------------------------------- */

int pv_bf_room(const pv_hreq_t *hr)
{
    return stage_room(hr, hr->bf->first);
}

void pv_bf_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    stage_send(hr, hr->bf->first, spans, n);
}

int pv_bf_flush(pv_hreq_t *hr)
{
    return flush_one(hr, hr->bf->first);
}

static void noop(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
}

static void finish_from(pv_hreq_t *hr, pv_bfilter_t *f);

static void finish_proceed(pv_hreq_t *hr)
{
    finish_from(hr, hr->bf->finishing);
}

static void chain_cleanup(pv_hreq_t *hr)
{
    pv_bfchain_t *c = hr->bf;
    if (c && c->saved && c->saved->cleanup)
        c->saved->cleanup(hr);
}

/* the chain as the running handler while the filters' rest goes out */
static const pv_handler_t chain_handler = {"body filter", finish_proceed, noop, noop, chain_cleanup};

/* Each filter from f on ends and is written out in turn; then the
 * stages below end. */
static void finish_from(pv_hreq_t *hr, pv_bfilter_t *f)
{
    pv_bfchain_t *c = hr->bf;
    for (; f; f = f->next) {
        if (!f->ended) {
            f->ended = 1;
            if (!f->failed)
                f->ops->end(hr, f);
        }
        int rc = flush_one(hr, f);
        if (rc == PV_ERR)
            return;
        if (rc == PV_AGAIN) {
            c->finishing = f;
            if (!c->took_over) {
                c->saved = hr->handler;
                c->saved_handling = hr->handling;
                hr->handler = &chain_handler;
                hr->handling = 1;
                c->took_over = 1;
            }
            return; /* proceed() follows once it is written, or the request is gone */
        }
    }
    if (c->took_over) {
        hr->handler = c->saved;
        hr->handling = c->saved_handling;
        c->took_over = 0;
    }
    pv_resp_below_finish(hr);
}

void pv_bf_finish(pv_hreq_t *hr)
{
    finish_from(hr, hr->bf->first);
}

int pv_bf_local(pv_hreq_t *hr, pv_resp_head_t *h, pv_str_t *body)
{
    int rc = pv_bf_head(hr, h);
    if (rc != PV_OK || !hr->bf || !body->p || (hr->r.flags & PV_REQ_F_HEAD))
        return rc;
    const pv_str_t *spans = body;
    int n = 1;
    size_t len = 0;
    for (pv_bfilter_t *f = hr->bf->first; f; f = f->next) {
        f->ops->body(hr, f, spans, n);
        f->ended = 1;
        if (!f->failed)
            f->ops->end(hr, f);
        if (!f->failed && f->ops->pull && f->ops->pull(hr, f) != PV_OK)
            f->failed = 1;
        if (f->failed) {
            pv_log(PV_LOG_ERR, "the %s filter failed on a local response", f->ops->name);
            return PV_RESP_NOMEM;
        }
        spans = f->out;
        n = f->nout;
    }
    for (int i = 0; i < n; i++)
        len += spans[i].len;
    char *p = pv_arena_alloc(&hr->arena, len + 1);
    if (!p) {
        pv_log(PV_LOG_ERR, "no memory for a filtered local response");
        return PV_RESP_NOMEM;
    }
    body->p = p;
    body->len = len;
    for (int i = 0; i < n; i++) {
        memcpy(p, spans[i].p, spans[i].len);
        p += spans[i].len;
    }
    return PV_OK;
}

int pv_bf_type_listed(const pv_mime_list_t *l, pv_str_t ct)
{
    if (l->any)
        return 1;
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';')
        n++;
    while (n && ct.p[n - 1] == ' ')
        n--;
    if (!ct.p || n == 0)
        return 0;
    for (int i = 0; i < l->ntypes; i++)
        if (l->types[i].len == n && strncasecmp(l->types[i].p, ct.p, n) == 0)
            return 1;
    return 0;
}

int pv_bf_weak_etag(pv_arena_t *a, pv_str_t *v)
{
    if (v->len >= 2 && v->p[0] == 'W' && v->p[1] == '/')
        return 1;
    if (!v->len || v->p[0] != '"')
        return 0;
    char *w = pv_arena_alloc(a, v->len + 2);
    if (!w)
        return -1;
    memcpy(w, "W/", 2);
    memcpy(w + 2, v->p, v->len);
    *v = (pv_str_t){w, v->len + 2};
    return 1;
}

int pv_bf_head_fields(pv_hreq_t *hr, pv_resp_head_t *h, int drop_validators)
{
    pv_header_t *f = pv_arena_alloc(&hr->arena, sizeof(*f) * (size_t)(h->nfields + 1));
    if (!f)
        return PV_RESP_NOMEM;
    int n = 0;
    for (int i = 0; i < h->nfields; i++) {
        pv_header_t x = h->fields[i];
        if (PV_STR_IEQ(x.name, "accept-ranges"))
            continue;
        if (drop_validators && (PV_STR_IEQ(x.name, "last-modified") || PV_STR_IEQ(x.name, "etag")))
            continue;
        int keep = PV_STR_IEQ(x.name, "etag") ? pv_bf_weak_etag(&hr->arena, &x.value) : 1;
        if (keep < 0)
            return PV_RESP_NOMEM;
        if (keep)
            f[n++] = x;
    }
    h->fields = f;
    h->nfields = n;
    return PV_OK;
}

void pv_bf_free(pv_hreq_t *hr)
{
    pv_bfchain_t *c = hr->bf;
    if (!c)
        return;
    pv_timer_del(hr->w->loop, &c->wake);
    for (pv_bfilter_t *f = c->first; f; f = f->next)
        if (f->ops->free)
            f->ops->free(hr, f);
    hr->bf = NULL;
}
