/* grpc_pass (ngx_http_grpc_module): a request relayed to a gRPC upstream
 * over HTTP/2 (cleartext with prior knowledge, or TLS with ALPN h2 for
 * grpcs://), with nghttp2 as the client side. Bodies stream both ways
 * and the response's trailers (grpc-status, grpc-message) go on to the
 * client. Server choice, failures, retries, timings and metrics are the
 * proxy's (select.c, answer.c): the exchange embeds a pv_proxy_t.
 *
 * One upstream connection per request: it is closed when the exchange
 * ends (no pooling, no multiplexing of client requests on it). nghttp2's
 * callbacks only record what arrived (head fields, DATA bytes copied to
 * the output buffer, the stream's end); the exchange acts on them once
 * nghttp2 has returned. Back-pressure: nghttp2 is given no more input
 * than the output buffer has room for, and the upstream socket is not
 * read while the client has not taken that buffer. */
#include "grpc.h"
#include "grpc_rx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <nghttp2/nghttp2.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../core/tls.h"
#include "../http/headers.h"
#include "../http/redirect.h"
#include "../http/server.h"
#include "../http/timing.h"
#include "../http/uri.h"
#include "../http/accesslog.h"
#include "../http/uvars.h"
#include "../http/vars.h"
#include "../upstream/discovery.h"
#include "../upstream/failure.h"
#include "../upstream/upstream.h"

#define GR_BODY_SPANS 16

typedef struct pv_grpc_s {
    pv_proxy_t px;               /* selection, try records, failure answers */
    nghttp2_session *ses;        /* the upstream connection's HTTP/2 client */
    const uint8_t *wp;           /* bytes from nghttp2 not yet written */
    size_t wlen;
    pv_str_t spans[GR_BODY_SPANS]; /* request body taken from the client, not yet copied to nghttp2 */
    int nspans, ispan;
    size_t spoff;
    pv_grpc_rx_t rx;             /* what nghttp2 received: head, DATA, trailers, the end */
    uint8_t body_deferred;       /* nghttp2 waits for more request body */
    uint8_t client_wait;         /* the client has not taken everything queued yet */
    uint8_t queued;              /* out is in the client's queue (its space is not reused before it is written) */
} pv_grpc_t;

static void gr_io(pv_grpc_t *g);
static void gr_failed(pv_grpc_t *g, pv_upfail_t f, int err);
static void gr_start(pv_proxy_t *px);

int pv_grpc_hidden(const pv_grpc_conf_t *gc, pv_str_t n)
{
    static const pv_str_t dflt[] = {PV_STR("date"),           PV_STR("server"), PV_STR("x-accel-expires"),
                                    PV_STR("x-accel-redirect"), PV_STR("x-accel-limit-rate"),
                                    PV_STR("x-accel-buffering"), PV_STR("x-accel-charset")};
    if (pv_str_in_ilist(n, gc->hide, gc->nhide))
        return 1;
    return pv_str_in_ilist(n, dflt, (int)PV_NELEM(dflt)) && !pv_str_in_ilist(n, gc->pass, gc->npass);
}

/* The request body for nghttp2: copied from the spans taken. */
static ssize_t body_read(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *data)
{
    (void)s;
    (void)sid;
    (void)data;
    pv_grpc_t *g = src->ptr;
    size_t n = 0;
    while (n < len && g->ispan < g->nspans) {
        pv_str_t *sp = &g->spans[g->ispan];
        size_t k = PV_MIN(len - n, sp->len - g->spoff);
        memcpy(buf + n, sp->p + g->spoff, k);
        n += k;
        g->spoff += k;
        if (g->spoff == sp->len) {
            g->ispan++;
            g->spoff = 0;
        }
    }
    if (g->ispan == g->nspans && pv_body_done(g->px.hr) && !pv_body_buffered(g->px.hr)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        g->px.req_done = 1;
        return (ssize_t)n;
    }
    if (n == 0) {
        g->body_deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* ---- request ---- */

static pv_str_t lower(pv_arena_t *a, pv_str_t s)
{
    char *p = pv_arena_alloc(a, s.len + 1);
    for (size_t i = 0; i < s.len; i++)
        p[i] = (char)(s.p[i] >= 'A' && s.p[i] <= 'Z' ? s.p[i] + 32 : s.p[i]);
    p[s.len] = '\0';
    return (pv_str_t){p, s.len};
}

static void nv_add(nghttp2_nv *nv, int *n, pv_str_t name, pv_str_t value)
{
    nv[*n] = (nghttp2_nv){(uint8_t *)name.p, (uint8_t *)value.p, name.len, value.len, NGHTTP2_NV_FLAG_NONE};
    (*n)++;
}

/* The fields NGINX's grpc module sets itself (a grpc_set_header of the
 * same name replaces them) and the client's fields it never passes. */
static int default_field(pv_str_t n)
{
    static const char *const names[] = {"content-length", "te", "host", "connection", "proxy-connection",
                                        "transfer-encoding", "keep-alive", "expect", "upgrade"};
    for (size_t i = 0; i < PV_NELEM(names); i++)
        if (pv_str_ieq(n, names[i], strlen(names[i])))
            return 1;
    return 0;
}

static int set_names(const pv_grpc_conf_t *gc, pv_str_t n)
{
    for (int i = 0; i < gc->nset_headers; i++)
        if (n.len == gc->set_headers[i].name.len && pv_str_ieq(n, gc->set_headers[i].name.p, n.len))
            return 1;
    return 0;
}

/* The client asked for trailers (TE: trailers): they are asked for
 * upstream too ($grpc_internal_trailers). */
static int wants_trailers(const pv_request_t *r)
{
    for (int i = 0; i < r->nheaders; i++)
        if (PV_STR_IEQ(r->headers[i].name, "te") && memmem(r->headers[i].value.p, r->headers[i].value.len, "trailers", 8))
            return 1;
    return 0;
}

/* :path: the client's target as received, or a rewritten URI escaped,
 * with its arguments (NGINX's unparsed URI when it is still valid). */
static pv_str_t grpc_path(pv_request_t *r)
{
    if (!(r->flags & PV_REQ_F_REWRITTEN))
        return r->request_uri;
    size_t n = pv_uri_escape(NULL, r->uri.p, r->uri.len);
    char *p = pv_arena_alloc(r->arena, n + 1 + r->args.len);
    size_t len = pv_uri_escape(p, r->uri.p, r->uri.len);
    if (r->args.len) {
        p[len++] = '?';
        memcpy(p + len, r->args.p, r->args.len);
        len += r->args.len;
    }
    return (pv_str_t){p, len};
}

/* The request's HEADERS: pseudo-fields, grpc_set_header and NGINX's
 * defaults, then the client's fields. NULL when out of room. */
static nghttp2_nv *build_nv(pv_grpc_t *g, int *count)
{
    pv_request_t *r = g->px.r;
    pv_arena_t *a = r->arena;
    const pv_grpc_conf_t *gc = &g->px.loc->conf.grpc;
    int max = 8 + gc->nset_headers + r->nheaders, n = 0;
    nghttp2_nv *nv = pv_arena_alloc(a, (size_t)max * sizeof(*nv));
    nv_add(nv, &n, PV_STR(":method"), r->method);
    nv_add(nv, &n, PV_STR(":scheme"), g->px.loc->proxy_pass->ssl ? PV_STR("https") : PV_STR("http"));
    nv_add(nv, &n, PV_STR(":path"), grpc_path(r));
    int host_set = 0;
    for (int i = 0; i < gc->nset_headers; i++)
        host_set |= PV_STR_IEQ(gc->set_headers[i].name, "host");
    if (!host_set)
        nv_add(nv, &n, PV_STR(":authority"), g->px.loc->proxy_pass->proxy_host);
    for (int i = 0; i < gc->nset_headers; i++) {
        pv_str_t v = pv_cv_eval_arena(&gc->set_headers[i].value, r);
        if (v.len)
            nv_add(nv, &n, lower(a, gc->set_headers[i].name), v);
    }
    if (!set_names(gc, PV_STR("content-length")) && (r->flags & PV_REQ_F_HAS_CL) && r->content_length >= 0) {
        const char *cl = pv_arena_printf(a, "%lld", (long long)r->content_length);
        nv_add(nv, &n, PV_STR("content-length"), (pv_str_t){cl, strlen(cl)});
    }
    if (!set_names(gc, PV_STR("te")) && wants_trailers(r))
        nv_add(nv, &n, PV_STR("te"), PV_STR("trailers"));
    for (int i = 0; i < r->nheaders; i++) {
        pv_str_t name = r->headers[i].name;
        if (default_field(name) || set_names(gc, name))
            continue;
        nv_add(nv, &n, lower(a, name), r->headers[i].value);
    }
    *count = n;
    return nv;
}

/* ---- the upstream connection ---- */

static void gr_event_cb(void *owner, unsigned events);
static void gr_timeout_cb(void *owner);
static const pv_upconn_ops_t gr_ops = {gr_event_cb, gr_timeout_cb};

/* Give up the connection and the stream (after a failure, an answer of
 * our own, the client's abort), and forget what the try received. */
static void gr_drop(pv_grpc_t *g)
{
    if (g->ses) {
        nghttp2_session_del(g->ses);
        g->ses = NULL;
    }
    g->wp = NULL;
    g->wlen = 0;
    if (g->px.u) {
        pv_upconn_t *u = g->px.u;
        g->px.u = NULL;
        pv_upstream_release(u, &(pv_upstream_done_t){.failed = 1});
    }
    g->rx.status = 0;
    g->rx.nfields = 0;
    g->rx.tlen = g->rx.hbytes = 0;
    g->rx.head_ready = g->rx.in_trailers = g->rx.ended = g->rx.too_big = g->body_deferred = g->client_wait = g->queued = 0;
    g->rx.rst = 0;
    if (g->rx.out)
        g->rx.out->last = 0;
    if (g->px.uin)
        g->px.uin->pos = g->px.uin->last = 0;
}

/* A session for a new connection, with the request submitted: 0, or -1. */
static int gr_session(pv_grpc_t *g)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    pv_grpc_rx_callbacks(cb);
    g->rx.arena = g->px.r->arena;
    g->rx.limit = (size_t)g->px.loc->conf.grpc.buffer_size;
    int rc = nghttp2_session_client_new(&g->ses, cb, &g->rx);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        g->ses = NULL;
        return -1;
    }
    /* as NGINX: no push, and the largest windows, the upstream being
     * held back by TCP when the client is slow (its socket is not read) */
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, NGHTTP2_MAX_WINDOW_SIZE}};
    if (nghttp2_submit_settings(g->ses, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(g->ses, NGHTTP2_FLAG_NONE, 0, NGHTTP2_MAX_WINDOW_SIZE) != 0)
        return -1;
    int n;
    nghttp2_nv *nv = build_nv(g, &n);
    g->nspans = g->ispan = 0;
    g->spoff = 0;
    int body = !pv_body_done(g->px.hr) || pv_body_buffered(g->px.hr);
    nghttp2_data_provider dp = {.source = {.ptr = g}, .read_callback = body_read};
    g->px.req_done = !body;
    g->rx.sid = nghttp2_submit_request(g->ses, NULL, nv, (size_t)n, body ? &dp : NULL, g);
    return g->rx.sid < 0 ? -1 : 0;
}

/* Pick a server, connect and submit the request (the proxy's
 * start_upstream() for HTTP/2). */
static void gr_start(pv_proxy_t *px)
{
    pv_grpc_t *g = (pv_grpc_t *)px;
    pv_worker_t *w = px->hr->w;
    int first = !px->picking;
    if (!px->picking && pv_proxy_pick_init(px) < 0) {
        gr_failed(g, PV_UPF_NO_LIVE, 0);
        return;
    }
    int s = pv_upstream_get(px->pool, &px->pick, pv_loop_now(w->loop));
    if (s == PV_UPSTREAM_NO_BUDGET) {
        pv_proxy_answer_failure(px, px->last_fail ? (pv_upfail_t)px->last_fail : PV_UPF_NO_LIVE);
        return;
    }
    pv_utry_start(px->r, first);
    if (first)
        px->start_ns = px->r->utry->start_ns;
    if (s < 0) {
        if (!pv_proxy_queue_wait(px, gr_start))
            gr_failed(g, PV_UPF_NO_LIVE, 0);
        return;
    }
    pv_upqueue_leave(&px->qwait);
    px->server = s;
    pv_proxy_stat_try(px);
    char text[64];
    pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr),
                         pv_upstream_server_text(px->pool, s, text, sizeof(text)));
    const pv_upstream_tls_t *tls = px->loc->proxy_pass->tls;
    pv_upconn_t *u = pv_upstream_connect(w, px->pool, s, tls, tls && tls->name_cv ? pv_proxy_tls_name(px) : NULL,
                                         pv_proxy_tls_certs(px), NULL);
    if (!u) {
        gr_failed(g, PV_UPF_CONNECT, errno);
        return;
    }
    pv_upstream_attach(u, &gr_ops, px);
    u->log_req = &px->hr->r;
    px->u = u;
    px->head_sent = px->req_done = px->resp_started = 0;
    u->requests++;
    if (px->loc->conf.grpc.socket_keepalive)
        (void)setsockopt(u->x.io.fd, SOL_SOCKET, SO_KEEPALIVE, &(int){1}, sizeof(int));
    if (gr_session(g) < 0) {
        pv_cache_nomem("an HTTP/2 upstream session", pv_log_client(px->r));
        gr_drop(g);
        pv_proxy_release_server(px, PV_BAL_OK);
        px->hr->handling = 0;
        pv_resp_error(px->hr, 500);
        return;
    }
    if (!u->connected) {
        pv_timer_set(w->loop, &u->timer, (uint64_t)px->loc->conf.grpc.connect_timeout);
        return;
    }
    gr_io(g);
}

/* ---- the exchange ---- */

/* More request body for nghttp2 once the spans taken are all copied.
 * 1 when nghttp2 has more to send, 0 when nothing came, -1 when the
 * exchange ended. */
static int gr_body(pv_grpc_t *g)
{
    pv_hreq_t *hr = g->px.hr;
    if (g->ispan < g->nspans || (pv_body_done(hr) && !pv_body_buffered(hr)) || !g->body_deferred)
        return 0;
    if (!pv_body_buffered(hr)) {
        int rc = pv_body_read(hr);
        if (rc == PV_ERR) {
            pv_resp_abort(hr);
            return -1;
        }
    }
    int n = pv_body_buffered(hr) ? pv_body_take(hr, g->spans, GR_BODY_SPANS) : 0;
    if (n < 0) {
        gr_failed(g, pv_body_error(hr) == 413 ? PV_UPF_CLIENT_BODY_LARGE : PV_UPF_CLIENT_BAD_BODY, 0);
        return -1;
    }
    g->nspans = n;
    g->ispan = 0;
    g->spoff = 0;
    if (n || pv_body_done(hr)) {
        g->body_deferred = 0;
        nghttp2_session_resume_data(g->ses, g->rx.sid);
        return 1;
    }
    return 0;
}

/* Write what nghttp2 has to send. 0, 1 when the socket is full, -1 when
 * the exchange failed. */
static int gr_write(pv_grpc_t *g)
{
    pv_upconn_t *u = g->px.u;
    for (;;) {
        if (!g->wlen) {
            ssize_t n = nghttp2_session_mem_send(g->ses, &g->wp);
            if (n < 0) {
                gr_failed(g, PV_UPF_SEND, 0);
                return -1;
            }
            if (n == 0)
                return 0;
            g->wlen = (size_t)n;
        }
        struct iovec iov = {(void *)g->wp, g->wlen};
        ssize_t n = pv_xprt_writev(&u->x, &iov, 1);
        if (n == PV_AGAIN)
            return 1;
        if (n < 0) {
            gr_failed(g, PV_UPF_SEND, errno);
            return -1;
        }
        u->sent += (uint64_t)n;
        g->px.head_sent = 1;
        g->wp += n;
        g->wlen -= (size_t)n;
    }
}

/* A status grpc_next_upstream names (http_500 ... http_429): the next
 * server is asked, as the proxy's next_on_status() does. 1 when it was. */
static int next_on_status(pv_grpc_t *g, int status)
{
    static const struct {
        int status, flag;
    } map[] = {{500, PV_NEXT_F_HTTP_500}, {502, PV_NEXT_F_HTTP_502}, {503, PV_NEXT_F_HTTP_503},
               {504, PV_NEXT_F_HTTP_504}, {403, PV_NEXT_F_HTTP_403}, {404, PV_NEXT_F_HTTP_404},
               {429, PV_NEXT_F_HTTP_429}};
    pv_proxy_t *px = &g->px;
    int flag = 0, mask = px->loc->conf.grpc.next_upstream;
    for (size_t i = 0; i < PV_NELEM(map); i++)
        if (map[i].status == status)
            flag = map[i].flag;
    if (!flag || !(mask & flag) || (mask & PV_NEXT_F_OFF) || px->pick.tries <= 1 || pv_proxy_next_timed_out(px) ||
        !pv_upstream_retry_allowed(px->pool) || !pv_body_rewindable(px->hr) ||
        !(pv_proxy_idempotent(px->r->method_id) || (mask & PV_NEXT_F_NON_IDEMPOTENT)))
        return 0;
    pv_proxy_release_server(px, status != 403 && status != 404 ? PV_BAL_FAILED : PV_BAL_OK);
    gr_drop(g);
    if (pv_body_rewind(px->hr) != 0) {
        pv_proxy_answer_failure(px, PV_UPF_NO_LIVE);
        return 1;
    }
    gr_start(px);
    return 1;
}

/* The response's final head goes to the client (or error_page answers,
 * grpc_intercept_errors). 0, or -1 when the exchange ended. */
static int gr_head(pv_grpc_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    const pv_grpc_conf_t *gc = &px->loc->conf.grpc;
    int status = g->rx.status;
    px->rp.status = status;
    char st[24];
    st[pv_u64_digits(st, (uint64_t)status)] = '\0';
    g->rx.head_ready = 0;
    px->status = status;
    pv_proxy_stat_header(px);
    pv_utry_mark(r, PV_UTRY_HEADER);
    if (status < 200 || status > 999) {
        gr_failed(g, PV_UPF_INVALID_HEADER, 0);
        return -1;
    }
    pv_proxy_append_list(r->upstream_status, sizeof(r->upstream_status), st);
    if (next_on_status(g, status))
        return -1;
    if (gc->intercept_errors && status >= 300 && pv_error_page_for(hr, status)) {
        pv_proxy_release_server(px, PV_BAL_OK);
        gr_drop(g);
        hr->handling = 0;
        pv_resp_error(hr, status);
        return -1;
    }
    r->upstream_headers = g->rx.fields;
    r->nupstream_headers = g->rx.nfields;
    pv_header_t *fields = pv_arena_alloc(r->arena, (size_t)(g->rx.nfields + 1) * sizeof(*fields));
    pv_resp_head_t h = {.status = status, .content_length = -1, .frame = PV_FRAME_CHUNKED, .fields = fields};
    r->notmod_off = 1; /* no cache: NGINX disables the not-modified filter for it */
    for (int i = 0; i < g->rx.nfields; i++) {
        pv_header_t *f = &g->rx.fields[i];
        if (PV_STR_IEQ(f->name, "content-type")) {
            h.content_type = f->value;
        } else if (PV_STR_IEQ(f->name, "content-length")) {
            int64_t cl;
            if (pv_http_parse_content_length(f->value, &cl) != 0)
                cl = -1;
            if (cl >= 0) {
                h.content_length = cl;
                h.frame = PV_FRAME_NONE;
            }
        } else if (!pv_grpc_hidden(gc, f->name) && !pv_header_is_hop_by_hop(f->name)) {
            fields[h.nfields++] = *f;
            if (PV_STR_IEQ(f->name, "server"))
                h.server = (pv_str_t){"", 0};
            else if (PV_STR_IEQ(f->name, "date"))
                h.no_date = 1;
        }
    }
    if (pv_resp_send_head(hr, &h) != PV_OK) {
        pv_resp_abort(hr);
        return -1;
    }
    px->resp_head_done = 1;
    return 0;
}

/* The stream ended with the whole response: its trailers go on, the
 * connection is closed and the answer finished. */
static void gr_complete(pv_grpc_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_hreq_t *hr = px->hr;
    px->resp_done = 1;
    pv_proxy_release_server(px, PV_BAL_OK);
    if (g->rx.tlen)
        hr->resp_trailers = (pv_str_t){g->rx.trailers, g->rx.tlen};
    gr_drop(g);
    hr->handling = 0;
    pv_resp_finish(hr);
}

/* Act on what nghttp2 recorded: the head, DATA for the client, the end.
 * 0 to go on, -1 when the exchange ended or waits for the client. */
static int gr_deliver(pv_grpc_t *g)
{
    pv_hreq_t *hr = g->px.hr;
    if (g->rx.head_ready && gr_head(g) < 0)
        return -1;
    if (g->rx.out->last && !g->client_wait) {
        if (!g->px.resp_head_done) {
            gr_failed(g, PV_UPF_INVALID_HEADER, 0); /* DATA before any head */
            return -1;
        }
        int rc = PV_OK;
        if (pv_resp_room(hr) <= 0)
            rc = pv_resp_flush(hr); /* the queue is full: out goes once it is written */
        if (rc == PV_OK) {
            pv_resp_send_body(hr, &(pv_str_t){(const char *)g->rx.out->data, g->rx.out->last}, 1);
            g->queued = 1;
            rc = pv_resp_flush(hr);
        }
        if (rc == PV_ERR)
            return -1; /* the client's connection closed: the request is gone */
        if (rc == PV_AGAIN) {
            g->client_wait = 1;
            return -1; /* proceed() goes on */
        }
        g->queued = 0;
        g->rx.out->last = 0;
    }
    if (g->rx.ended && !g->client_wait) {
        if (g->rx.rst != NGHTTP2_NO_ERROR || !g->px.resp_head_done) {
            gr_failed(g, g->px.resp_head_done ? PV_UPF_INVALID_BODY : PV_UPF_PREMATURE_CLOSE, 0);
            return -1;
        }
        gr_complete(g);
        return -1;
    }
    return 0;
}

/* Read the upstream and hand nghttp2 as much as the output has room for.
 * 0 to go on, 1 when the socket has nothing more, -1 when the exchange
 * ended or waits for the client. */
static int gr_read(pv_grpc_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_upconn_t *u = px->u;
    pv_buf_t *b = px->uin;
    for (;;) {
        size_t room = g->client_wait ? 0 : g->rx.out->size - g->rx.out->last;
        if (!room || g->rx.ended)
            return -1; /* the client first, or nothing more to read */
        if (b->pos == b->last) {
            b->pos = b->last = 0;
            if (!u->x.readable)
                return 1;
            ssize_t n = pv_xprt_read(&u->x, b->data, b->size);
            if (n == PV_AGAIN)
                return 1;
            if (n <= 0) {
                gr_failed(g, n == 0 ? PV_UPF_PREMATURE_CLOSE : PV_UPF_RESET, n == 0 ? 0 : errno);
                return -1;
            }
            px->resp_started = 1;
            b->last = (uint32_t)n;
        }
        size_t n = PV_MIN(room, (size_t)(b->last - b->pos));
        ssize_t rc = nghttp2_session_mem_recv(g->ses, (const uint8_t *)b->data + b->pos, n);
        if (rc < 0) {
            gr_failed(g, g->rx.too_big ? PV_UPF_HEADER_TOO_BIG
                         : px->resp_head_done ? PV_UPF_INVALID_BODY : PV_UPF_INVALID_HEADER, 0);
            return -1;
        }
        b->pos += (uint32_t)rc;
        if (gr_deliver(g) < 0)
            return -1;
        return 0;
    }
}

/* Move the exchange on: request body, writes, reads, timers. */
static void gr_io(pv_grpc_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_worker_t *w = px->hr->w;
    const pv_grpc_conf_t *gc = &px->loc->conf.grpc;
    for (;;) {
        pv_upconn_t *u = px->u;
        if (!u || !g->ses)
            return;
        if (gr_body(g) < 0 || px->u != u)
            return;
        int wr = gr_write(g);
        if (wr < 0 || px->u != u)
            return;
        int rd = gr_read(g);
        if (px->u != u)
            return;
        if (rd == 0)
            continue;
        if (wr == 0 && g->body_deferred) {
            /* nghttp2 took every span: read more of the body (which lets
             * the client send more) and go on if any came */
            int b = gr_body(g);
            if (b < 0 || px->u != u)
                return;
            if (b > 0)
                continue;
        }
        /* nothing more to do now: one timer for what is waited for */
        if (wr == 1) /* grpc_connect_timeout covers a TLS handshake, as in NGINX */
            pv_timer_set(w->loop, &u->timer, (uint64_t)(pv_tls_handshaking(&u->x) ? gc->connect_timeout : gc->send_timeout));
        else if (g->client_wait)
            pv_timer_del(w->loop, &u->timer);
        else
            pv_timer_set(w->loop, &u->timer, (uint64_t)gc->read_timeout);
        return;
    }
}

/* A failure before or during the response: the next server when
 * grpc_next_upstream allows it and nothing reached the client, else the
 * answer (502, 504) or, once the head went out, the client's stream cut. */
static void gr_failed(pv_grpc_t *g, pv_upfail_t f, int err)
{
    pv_proxy_t *px = &g->px;
    const pv_upfail_info_t *fi = pv_upfail_info(f);
    pv_proxy_log_failure(px, f, err, NULL);
    pv_proxy_stat_fail(px, f);
    pv_proxy_release_server(px, (fi->flags & PV_UPF_F_SERVER) ? PV_BAL_FAILED : PV_BAL_OK);
    gr_drop(g);
    if (f == PV_UPF_NO_LIVE) {
        size_t al = strlen(px->r->upstream_addr);
        if (!al || px->r->upstream_addr[al - 1] == ' ')
            pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr), px->pool->cf->name);
        pv_proxy_answer_failure(px, f);
        return;
    }
    if (!(fi->flags & PV_UPF_F_CLIENT) && !px->resp_head_done) {
        char st[24];
        st[pv_u64_digits(st, (uint64_t)fi->status)] = '\0';
        pv_proxy_append_list(px->r->upstream_status, sizeof(px->r->upstream_status), st);
    }
    if (px->resp_head_done) {
        pv_resp_abort(px->hr);
        return;
    }
    px->last_fail = f;
    int mask = px->loc->conf.grpc.next_upstream;
    if (fi->next && (mask & fi->next) && !(mask & PV_NEXT_F_OFF) &&
        (!px->head_sent || pv_proxy_idempotent(px->r->method_id) || (mask & PV_NEXT_F_NON_IDEMPOTENT)) &&
        px->pick.tries && !pv_proxy_next_timed_out(px) && pv_body_rewind(px->hr) == 0) {
        gr_start(px);
        return;
    }
    pv_proxy_answer_failure(px, f);
}

static void gr_event_cb(void *owner, unsigned events)
{
    pv_grpc_t *g = owner;
    pv_upconn_t *u = g->px.u;
    int e, up = pv_proxy_connect_done(&g->px, pv_xprt_events(&u->x, events), &e);
    if (up < 0)
        gr_failed(g, PV_UPF_CONNECT, e);
    else if (up)
        gr_io(g);
}

static void gr_timeout_cb(void *owner)
{
    pv_grpc_t *g = owner;
    pv_upconn_t *u = g->px.u;
    gr_failed(g, !u->connected || pv_tls_handshaking(&u->x) ? PV_UPF_CONNECT_TIMEOUT
                 : g->wlen                                 ? PV_UPF_SEND_TIMEOUT : PV_UPF_READ_TIMEOUT,
              ETIMEDOUT);
}

/* ---- the client side ---- */

static void client_proceed(pv_hreq_t *hr)
{
    pv_grpc_t *g = hr->handler_ctx;
    if (!g->client_wait)
        return;
    g->client_wait = 0;
    if (g->queued) {
        g->queued = 0;
        g->rx.out->last = 0;
    }
    if (g->rx.ended) {
        gr_deliver(g);
        return;
    }
    gr_io(g);
}

static void client_readable(pv_hreq_t *hr)
{
    pv_grpc_t *g = hr->handler_ctx;
    if (g->px.u && g->px.u->connected) {
        gr_io(g);
        return;
    }
    if (pv_body_done(hr) && pv_body_client_closed(hr)) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed connection while waiting for upstream, client: %s",
                 pv_log_client(&hr->r));
        pv_resp_abort(hr);
    }
}

static void client_abort(pv_hreq_t *hr)
{
    pv_grpc_t *g = hr->handler_ctx;
    pv_upqueue_leave(&g->px.qwait);
    pv_proxy_release_server(&g->px, PV_BAL_OK);
    gr_drop(g);
}

static void client_cleanup(pv_hreq_t *hr)
{
    pv_grpc_t *g = hr->handler_ctx;
    if (!g)
        return;
    pv_upqueue_leave(&g->px.qwait);
    if (g->px.pick.held)
        pv_proxy_release_server(&g->px, PV_BAL_OK);
    gr_drop(g);
    pv_buf_put(g->px.uin);
    pv_buf_put(g->rx.out);
    free(g);
    hr->handler_ctx = NULL;
}

static const pv_handler_t grpc_handler = {"grpc", client_proceed, client_readable, client_abort, client_cleanup};

static int content(pv_hreq_t *hr)
{
    pv_grpc_t *g = calloc(1, sizeof(*g));
    if (g && (!(g->px.uin = pv_buf_get_size((size_t)hr->r.loc->conf.grpc.buffer_size)) || !(g->rx.out = pv_buf_get()))) {
        pv_buf_put(g->px.uin);
        free(g);
        g = NULL;
    }
    if (!g) {
        pv_cache_nomem("a grpc exchange", pv_log_client(&hr->r));
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    pv_proxy_t *px = &g->px;
    px->hr = hr;
    px->r = &hr->r;
    px->loc = hr->r.loc;
    px->pool = pv_upstream_pool(hr->gen, px->loc->proxy_pass->upstream->index);
    hr->r.proxy_host = px->loc->proxy_pass->proxy_host;
    hr->handler_ctx = g;
    hr->handler = &grpc_handler;
    hr->handling = 1;
    pv_body_hold(hr);
    if (!hr->r.res_allow || pv_proxy_residency(px) == PV_OK)
        gr_start(px);
    return PV_PHASE_DONE;
}

static int claims(const pv_location_t *loc)
{
    return loc->proxy_pass && loc->proxy_pass->grpc;
}

static const pv_content_t grpc_content = {"grpc", claims, content, NULL};

static int mod_init(void)
{
    pv_phases_content(&grpc_content);
    return PV_OK;
}

pv_module_t pv_grpc_module = {
    .name = "grpc",
    .init = mod_init,
};
