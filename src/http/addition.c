/* The addition filter (addition.h). The before part's subrequest starts
 * with the first body bytes (or the end of an empty body); the response's
 * own spans are held until it has gone out (pull() answers PV_AGAIN, so
 * the handler keeps them), then go as they come; the after part's starts
 * at the end, as NGINX's does. */
#include "addition.h"

#include <string.h>

#include "../core/log.h"
#include "server.h"
#include "subreq.h"

typedef struct add_s {
    pv_bfilter_t f;       /* first: the chain's part */
    pv_str_t before, after;
    pv_subreq_t *cur;     /* the part going out */
    pv_str_t *in;         /* the response's spans held while the before part goes */
    int nin, incap;
    uint8_t handed;       /* cur's spans were put out, not yet written */
    uint8_t before_started, after_started;
} add_t;

static void notify(pv_subreq_t *s)
{
    pv_bf_wake(s->parent);
}

/* The part's URI is taken whole as its path, as NGINX takes it (no
 * arguments split off). */
static void start(pv_hreq_t *hr, add_t *a, pv_str_t uri)
{
    a->cur = pv_subreq_start(hr, uri, (pv_str_t){NULL, 0}, 0, notify, a);
    if (!a->cur)
        a->f.failed = 1;
}

/* Put out what can go now, in order: the part, the held spans, the
 * after part once the response has ended. */
static void emit(pv_hreq_t *hr, add_t *a)
{
    while (!a->handed && !a->f.failed) {
        if (!a->before_started) {
            a->before_started = 1;
            if (a->before.len)
                start(hr, a, a->before);
            continue;
        }
        if (a->cur) {
            const pv_str_t *sp;
            int n = pv_subreq_spans(a->cur, &sp);
            for (int i = 0; i < n; i++)
                pv_bf_out(hr, &a->f, sp[i]);
            if (n) {
                a->handed = 1;
                return;
            }
            if (!a->cur->done)
                return;
            pv_subreq_free(a->cur);
            a->cur = NULL;
            continue;
        }
        for (int i = 0; i < a->nin; i++)
            pv_bf_out(hr, &a->f, a->in[i]);
        a->nin = 0;
        if (a->f.ended && !a->after_started) {
            a->after_started = 1;
            if (a->after.len) {
                start(hr, a, a->after);
                continue;
            }
        }
        return;
    }
}

static void add_body(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    add_t *a = (add_t *)f;
    if (a->nin + n > a->incap) {
        int cap = PV_MAX(a->incap * 2, a->nin + n + 16);
        pv_str_t *in = pv_arena_alloc(&hr->arena, (size_t)cap * sizeof(*in));
        if (!in) {
            f->failed = 1;
            return;
        }
        if (a->nin)
            memcpy(in, a->in, (size_t)a->nin * sizeof(*in));
        a->in = in;
        a->incap = cap;
    }
    for (int i = 0; i < n; i++)
        if (spans[i].len)
            a->in[a->nin++] = spans[i];
    emit(hr, a);
}

static void add_end(pv_hreq_t *hr, pv_bfilter_t *f)
{
    emit(hr, (add_t *)f);
}

static void add_written(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    add_t *a = (add_t *)f;
    if (a->handed && a->cur) {
        a->handed = 0;
        pv_subreq_consumed(a->cur);
    }
}

static int add_pull(pv_hreq_t *hr, pv_bfilter_t *f)
{
    add_t *a = (add_t *)f;
    emit(hr, a);
    if (f->failed)
        return PV_ERR;
    if (f->nout || (!a->cur && !a->nin))
        return PV_OK;
    return PV_AGAIN; /* a part's turn: pv_bf_wake() when it has more */
}

static void add_free(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    add_t *a = (add_t *)f;
    if (a->cur)
        pv_subreq_free(a->cur);
    a->cur = NULL;
}

static const pv_bfilter_ops_t add_ops = {"addition", add_body, add_end, add_written, add_pull, add_free};

/* A main 200 response of addition_types with a part to add: no
 * Content-Length or Accept-Ranges, a weak ETag (NGINX's header filter). */
/* Whether the addition filter takes a response with head h. */
static int add_changes(const pv_hreq_t *hr, const pv_resp_head_t *h)
{
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : NULL;
    return !hr->sub && lc && h->status == 200 && (lc->add.before.len || lc->add.after.len) && !h->upgrade &&
           h->content_type.p && pv_bf_type_listed(lc->add.types, h->content_type);
}

static int add_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : NULL;
    if (!add_changes(hr, h))
        return PV_OK;
    if (pv_bf_head_fields(hr, h, 0) != PV_OK)
        return PV_RESP_NOMEM;
    h->content_length = -1;
    h->frame = (hr->r.flags & PV_REQ_F_HEAD) ? PV_FRAME_NONE : PV_FRAME_CHUNKED;
    if (hr->r.flags & PV_REQ_F_HEAD)
        return PV_OK;
    add_t *a = (add_t *)pv_bf_add(hr, &add_ops, sizeof(add_t));
    if (!a)
        return PV_RESP_NOMEM;
    a->before = lc->add.before;
    a->after = lc->add.after;
    return PV_OK;
}

const pv_bfilter_module_t pv_addition_bfilter = {"addition", add_head, add_changes};
