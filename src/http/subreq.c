/* Subrequests (subreq.h): the request state made from the parent's, the
 * phases run from the loop, and pv_sub_proto, the protocol whose
 * response calls hold the body for the parent instead of writing it. */
#include "subreq.h"

#include <string.h>

#include "../config/residency.h"
#include "../core/log.h"
#include "errpage.h"
#include "hfilter.h"
#include "accesslog.h"
#include "mirror.h"
#include "server.h"

pv_hreq_t *pv_subreq_main(pv_hreq_t *hr)
{
    while (hr->sub)
        hr = hr->sub->parent;
    return hr;
}

/* log_subrequest on: the subrequest's own access logs, once. */
static void sub_log(pv_hreq_t *hr, pv_subreq_t *s)
{
    const pv_location_t *loc = hr->r.loc;
    if (s->logged || !loc || !loc->conf.log_subrequest)
        return;
    s->logged = 1;
    hr->r.body_bytes_sent = s->body_bytes;
    pv_accesslog_write(&hr->r);
}

static void tell(pv_subreq_t *s)
{
    if (s->done && s->hr)
        sub_log(s->hr, s);
    if (s->notify)
        s->notify(s);
}

/* ---- the response calls --------------------------------------------------- */

static int sub_send_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_subreq_t *s = hr->sub;
    if (h->upgrade)
        return PV_ERR; /* no protocol switch in a subrequest */
    hr->r.status = h->status;
    s->status = h->status;
    s->head_sent = 1;
    return PV_OK;
}

static int sub_room(const pv_hreq_t *hr)
{
    const pv_subreq_t *s = hr->sub;
    return s->in_memory || s->discard ? PV_SUB_SPANS : PV_SUB_SPANS - s->nspans;
}

static void keep_in_memory(pv_hreq_t *hr, pv_subreq_t *s, pv_str_t sp)
{
    if (s->failed)
        return;
    if (s->mem_len + sp.len > PV_SUB_MEM_MAX) {
        pv_log_r(&hr->r, PV_LOG_ERR, "too big subrequest response while sending to client, client: %s",
                 pv_log_client(&hr->r));
        s->failed = 1;
        return;
    }
    if (!s->mem && !(s->mem = pv_arena_alloc(&s->parent->arena, PV_SUB_MEM_MAX))) {
        s->failed = 1;
        return;
    }
    memcpy(s->mem + s->mem_len, sp.p, sp.len);
    s->mem_len += sp.len;
}

static void sub_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    pv_subreq_t *s = hr->sub;
    for (int i = 0; i < n; i++) {
        if (!spans[i].len)
            continue;
        s->body_bytes += spans[i].len;
        hr->r.bytes_sent += spans[i].len;
        if (s->discard)
            continue;
        if (s->in_memory)
            keep_in_memory(hr, s, spans[i]);
        else if (s->nspans < PV_SUB_SPANS)
            s->spans[s->nspans++] = spans[i];
    }
}

static int sub_flush(pv_hreq_t *hr)
{
    pv_subreq_t *s = hr->sub;
    if (s->nspans == 0)
        return PV_OK;
    s->want_proceed = 1;
    tell(s);
    return PV_AGAIN;
}

static void sub_finish(pv_hreq_t *hr)
{
    pv_subreq_t *s = hr->sub;
    hr->resp_done = 1;
    hr->handling = 0;
    s->done = 1;
    tell(s);
}

static void sub_abort(pv_hreq_t *hr)
{
    pv_subreq_t *s = hr->sub;
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    s->failed = s->done = 1;
    tell(s);
}

static int sub_continue(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return PV_OK;
}

/* A response made here: its text, or the error page of status, as the
 * body the parent includes. */
/* include stub=: an error answer's body is the stub, sent under the
 * parent's type through the subrequest's own filters (NGINX's
 * ngx_http_ssi_stub_output(), so a stub's commands run in it). */
static void sub_stub(pv_hreq_t *hr, pv_subreq_t *s, int status)
{
    pv_resp_head_t h = {.status = status, .content_type = s->stub_type, .content_length = -1};
    hr->handling = 0;
    if (pv_resp_send_head(hr, &h) != PV_OK) {
        sub_abort(hr);
        return;
    }
    for (int i = 0; i < s->nstub; i += PV_SUB_SPANS)
        pv_resp_send_body(hr, s->stub + i, PV_MIN(PV_SUB_SPANS, s->nstub - i));
    pv_resp_finish(hr);
}

static void sub_local(pv_hreq_t *hr, int status, const char *location, pv_str_t body)
{
    pv_resp_head_t h;
    if (hr->sub->nstub && !body.p && status >= 300 && !hr->sub->head_sent) {
        sub_stub(hr, hr->sub, status);
        return;
    }
    if (body.p) {
        h = (pv_resp_head_t){.status = status, .content_type = PV_STR("text/plain"),
                             .content_length = (int64_t)body.len};
    } else {
        char page[512];
        ssize_t plen = pv_errpage_page(status, pv_hfilter_token(hr), page, sizeof(page));
        pv_errpage_head(status, location, plen, &h);
        if (plen > 0) {
            char *copy = pv_arena_alloc(&hr->arena, (size_t)plen);
            if (copy)
                memcpy(copy, page, (size_t)plen);
            body = (pv_str_t){copy, copy ? (size_t)plen : 0};
        }
    }
    hr->handling = 0;
    if (pv_resp_send_head(hr, &h) != PV_OK) {
        sub_abort(hr);
        return;
    }
    if (body.p && body.len)
        pv_resp_send_body(hr, &body, 1);
    pv_resp_finish(hr);
}

static void sub_error(pv_hreq_t *hr, int status)
{
    if (hr->sub->head_sent) {
        sub_abort(hr);
        return;
    }
    sub_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

static const pv_resp_ops_t sub_resp = {
    sub_send_head, sub_room, sub_send_body, sub_flush, sub_finish, sub_abort, sub_continue, sub_local, sub_error,
};

/* ---- the request body: none (NGINX's subrequests are GETs) --------------- */

static int sub_take(pv_hreq_t *hr, pv_str_t *spans, int max)
{
    PV_UNUSED(hr), PV_UNUSED(spans), PV_UNUSED(max);
    return 0;
}

static size_t sub_buffered(const pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return 0;
}

static int sub_read(pv_hreq_t *hr)
{
    hr->body_done = 1;
    return PV_OK;
}

static int sub_arrived(pv_hreq_t *hr, size_t limit, size_t *len)
{
    PV_UNUSED(hr), PV_UNUSED(limit), PV_UNUSED(len);
    return 0; /* no body to hold */
}

static int sub_rewind(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return 0;
}

static int sub_rewindable(const pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return 1;
}

static void sub_discard(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
}

static int sub_closed(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return 0;
}

static const pv_body_ops_t sub_body = {
    sub_take, sub_buffered, sub_read, sub_arrived, sub_rewind, sub_rewindable, sub_discard, sub_closed,
};

static int sub_head(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
    return 0;
}

static const pv_proto_t pv_sub_proto = {"subrequest", &sub_resp, &sub_body, sub_head, 0};

/* ---- lifecycle ------------------------------------------------------------- */

static void timer_cb(pv_timer_t *t)
{
    pv_subreq_t *s = t->data;
    pv_hreq_t *hr = s->hr;
    pv_log_req_set(&hr->r);
    if (!s->started) {
        s->started = 1;
        pv_phases_restart(hr, PV_PHASE_SERVER_REWRITE);
    } else if (hr->handling && !s->done) {
        hr->handler->proceed(hr);
    }
    pv_log_req_set(NULL);
}

/* The subrequest's model: the parent's, for uri, as a GET with no body. */
static int make_model(pv_hreq_t *sr, const pv_hreq_t *parent, pv_str_t uri, pv_str_t args)
{
    pv_request_t *r = &sr->r;
    pv_arena_t *a = &sr->arena;
    uint64_t start_ns = r->start_ns;
    int64_t start_ms = r->start_wall_ms;
    *r = parent->r;
    r->arena = a;
    r->start_ns = start_ns;
    r->start_wall_ms = start_ms;
    char *u = pv_arena_strndup(a, uri.p, uri.len);
    char *q = pv_arena_strndup(a, args.p ? args.p : "", args.len);
    if (!u || !q)
        return PV_ERR;
    r->uri = (pv_str_t){u, uri.len};
    r->args = (pv_str_t){q, args.len};
    r->has_args = args.len > 0;
    r->method = PV_STR("GET");
    r->method_id = HTTP_GET;
    r->upstream_method = (pv_str_t){NULL, 0};
    r->content_length = -1;
    r->flags &= ~(unsigned)(PV_REQ_F_CHUNKED | PV_REQ_F_HAS_CL | PV_REQ_F_EXPECT_CONTINUE | PV_REQ_F_HEAD |
                            PV_REQ_F_UPGRADE | PV_REQ_F_LOC_INVALID | PV_REQ_F_ARGS_SET |
                            PV_REQ_F_ADD_URI_TO_ALIAS | PV_REQ_F_GZIP_VARY);
    r->flags |= PV_REQ_F_REWRITTEN; /* internal locations serve it; its own URI goes upstream */
    r->loc = NULL;
    r->proxy_host = r->accel_type = r->proxy_uri = (pv_str_t){NULL, 0};
    r->upstream_addr[0] = r->upstream_status[0] = '\0';
    r->cache_status = 0;
    r->pcache = NULL;
    r->cache_zone = NULL;
    r->status = 0;
    r->body_bytes_sent = r->bytes_sent = 0;
    r->limit_rate = r->limit_rate_after = 0;
    r->limit_rate_set = 0;
    r->allow_ranges = 0;
    r->resp_headers = NULL;
    r->nresp_headers = 0;
    r->sent_head = r->sent_trailers = (pv_str_t){NULL, 0};
    r->upstream_headers = NULL;
    r->nupstream_headers = 0;
    r->ncaptures = 0;
    r->captures = NULL;
    r->captures_data = NULL;
    r->uri_changes = 0;
    r->err_status = 0;
    r->error_page = 0;
    r->uri_changed = 0;
    r->trace = NULL;
    r->utries = NULL;
    r->utry = NULL;
    r->nutries = r->cutries = 0;
    /* the parent's user variables, as they are now (its own copy) */
    int nu = r->conf && r->conf->http ? r->conf->http->nuvars : 0;
    if (parent->r.uvals && nu > 0) {
        r->uvals = pv_arena_alloc(a, (size_t)nu * sizeof(pv_uval_t));
        if (!r->uvals)
            return PV_ERR;
        memcpy(r->uvals, parent->r.uvals, (size_t)nu * sizeof(pv_uval_t));
    } else {
        r->uvals = NULL;
    }
    return PV_OK;
}

static int depth(const pv_hreq_t *hr)
{
    int d = 0;
    for (; hr->sub; hr = hr->sub->parent)
        d++;
    return d;
}

pv_subreq_t *pv_subreq_start(pv_hreq_t *parent, pv_str_t uri, pv_str_t args, int mode,
                             pv_subreq_notify_cb notify, void *data)
{
    if (depth(parent) >= PV_SUB_DEPTH_MAX) {
        pv_log_r(&parent->r, PV_LOG_ERR, "subrequests cycle while processing \"%.*s\", client: %s",
                 (int)uri.len, uri.p, pv_log_client(&parent->r));
        return NULL;
    }
    pv_subreq_t *s = pv_arena_calloc(&parent->arena, sizeof(*s));
    if (!s)
        return NULL;
    pv_hreq_t *sr = pv_server_subreq_new(parent);
    if (!sr)
        return NULL;
    pv_log_req_set(&parent->r);
    if (make_model(sr, parent, uri, args) != PV_OK) {
        pv_server_req_free(sr);
        pv_log_req_set(&parent->r);
        return NULL;
    }
    sr->proto = &pv_sub_proto;
    sr->sub = s;
    sr->lgroup = parent->lgroup;
    sr->body_done = 1;
    s->hr = sr;
    s->parent = parent;
    s->notify = notify;
    s->data = data;
    s->in_memory = mode == PV_SUB_IN_MEMORY;
    s->discard = mode == PV_SUB_DISCARD;
    pv_timer_init(&s->timer, timer_cb, s);
    pv_timer_set(parent->w->loop, &s->timer, 0);
    return s;
}

int pv_subreq_spans(pv_subreq_t *s, const pv_str_t **spans)
{
    *spans = s->spans;
    return s->nspans;
}

void pv_subreq_consumed(pv_subreq_t *s)
{
    s->nspans = 0;
    if (s->want_proceed && s->hr) {
        s->want_proceed = 0;
        pv_timer_set(s->hr->w->loop, &s->timer, 0);
    }
}

void pv_subreq_free(pv_subreq_t *s)
{
    pv_hreq_t *sr = s->hr;
    if (!sr)
        return;
    pv_timer_del(sr->w->loop, &s->timer);
    s->notify = NULL;
    if (!s->done && sr->handling) {
        sr->handling = 0;
        sr->handler->abort(sr);
    }
    const void *cur = pv_log_req_cur;
    pv_server_req_free(sr);
    s->hr = NULL;
    pv_log_req_set(cur == &sr->r ? NULL : cur);
}

/* ---- a part whose request goes on in the background ------------------------ */

/* A nested part outlives its parent: what its model took from the
 * parent's arena (user variables' values, an intersection of residency
 * scopes) is copied into its own. */
static int own_copies(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    int nu = r->conf && r->conf->http ? r->conf->http->nuvars : 0;
    for (int i = 0; r->uvals && i < nu; i++) {
        pv_uval_t *v = &r->uvals[i];
        if (v->state != PV_UVAL_SET || !v->len)
            continue;
        if (!(v->p = pv_arena_strndup(&hr->arena, v->p, v->len)))
            return PV_ERR;
    }
    if (r->res_allow && r->res_allow != &pv_jurset_none && (!r->res_scope || r->res_allow != &r->res_scope->allow)) {
        pv_jurset_t *a = pv_arena_alloc(&hr->arena, sizeof(*a));
        if (!a)
            return PV_ERR;
        *a = *r->res_allow;
        r->res_allow = a;
    }
    return PV_OK;
}

int pv_subreq_background(pv_hreq_t *hr)
{
    pv_subreq_t *s = hr->sub;
    pv_hreq_t *m = pv_subreq_main(hr);
    if (s->nspans || s->failed)
        return PV_ERR; /* what it sent is not taken yet: the part ends with it */
    pv_subreq_t *b = pv_arena_alloc(&m->arena, sizeof(*b));
    if (!b || (s->parent != m && own_copies(hr) != PV_OK))
        return PV_ERR;
    *b = *s;
    b->parent = m;
    b->notify = NULL;
    b->data = NULL;
    b->mem = NULL;
    b->mem_len = 0;
    b->in_memory = 0;
    b->discard = 1;
    b->stub = NULL;
    b->nstub = 0;
    b->want_proceed = 0;
    pv_timer_init(&b->timer, timer_cb, b);
    if (pv_mirror_adopt(m, b) != PV_OK)
        return PV_ERR;
    /* the part, as its parent sees it, ends here (logged as it ends) */
    pv_timer_del(hr->w->loop, &s->timer);
    s->done = 1;
    s->want_proceed = 0;
    b->logged = 1;
    tell(s);
    s->hr = NULL;
    hr->sub = b;
    return PV_OK;
}
