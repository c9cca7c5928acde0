/* fastcgi_pass (ngx_http_fastcgi_module): a request relayed to a FastCGI
 * responder (FastCGI 1.0): BEGIN_REQUEST, the fastcgi_param values and
 * the client's fields as HTTP_* in PARAMS records, the body in STDIN
 * records; the response's STDOUT read as a CGI response (fcgi_rx.c),
 * STDERR logged, END_REQUEST its end. Server choice, failures, retries
 * and timings are the proxy's (select.c, answer.c): the exchange embeds a
 * pv_proxy_t. With fastcgi_keep_conn the responder is asked to keep the
 * connection, which goes back to the upstream's keepalive pool after
 * END_REQUEST; else it is closed.
 *
 * The response body goes to the client through the proxy's pipe (pipe.c):
 * with fastcgi_buffering (or X-Accel-Buffering: yes) what a slow client
 * has not taken is held in fastcgi_buffers and a temp file, and the
 * responder is read on; without, the client must take each buffer before
 * the responder's socket is read again. */
#include "fastcgi.h"
#include "fcgi_rx.h"
#include "pcache.h"
#include "pstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../http/accesslog.h"
#include "../http/brange.h"
#include "../http/headers.h"
#include "../http/redirect.h"
#include "../http/reqbody.h"
#include "../http/router.h"
#include "../http/uvars.h"
#include "../http/server.h"
#include "../http/timing.h"
#include "../http/vars.h"
#include "../upstream/discovery.h"
#include "../upstream/failure.h"
#include "../upstream/upstream.h"

#define FC_BODY_SPANS 16
#define FC_WAIT -3 /* fc_read(), fc_deliver(): the client has not taken the body yet */
#define FC_RECORD_MAX 32768 /* content of one PARAMS or STDIN record at most, as NGINX */

typedef struct pv_fastcgi_s {
    pv_proxy_t px;               /* selection, try records, failure answers */
    uint8_t *wbuf;               /* records to write (malloc) */
    size_t wcap, wpos, wlen;
    pv_fcgi_rx_t rx;             /* the response */
    uint8_t client_wait;         /* the client has not taken everything queued yet */
    uint8_t stdin_done;          /* the empty STDIN record is queued */
    uint8_t buffering;           /* 2: reading the whole body before asking a responder (fastcgi_request_buffering) */
    uint8_t extra;               /* more body than Content-Length came (logged once) */
    int64_t clen;                /* the response's Content-Length, -1 none */
    int64_t body;                /* body bytes passed on */
    uint32_t seen;               /* rx.out's bytes counted in body */
    pv_sub_done_cb done;         /* an auth subrequest's caller (px.sub_done frees the state first) */
} pv_fastcgi_t;

static void fc_io(pv_fastcgi_t *g);
static void fc_failed(pv_fastcgi_t *g, pv_upfail_t f, int err);
static void fc_start(pv_proxy_t *px);
static void fc_nomem(pv_fastcgi_t *g);
static void fc_buffer(pv_fastcgi_t *g);
static void fc_begin(pv_fastcgi_t *g);

/* ---- the request's records ---- */

static int wreserve(pv_fastcgi_t *g, size_t n)
{
    if (g->wlen + n <= g->wcap)
        return 0;
    size_t cap = g->wcap ? g->wcap : 4096;
    while (cap < g->wlen + n)
        cap *= 2;
    uint8_t *p = realloc(g->wbuf, cap);
    if (!p)
        return -1;
    g->wbuf = p;
    g->wcap = cap;
    return 0;
}

/* Records of type for the n bytes at p (split at FC_RECORD_MAX, padded to
 * 8 as NGINX pads), or the empty record that ends the stream when n is 0. */
static int put_records(pv_fastcgi_t *g, int type, const uint8_t *p, size_t n)
{
    do {
        size_t k = PV_MIN(n, (size_t)FC_RECORD_MAX), pad = (8 - (k & 7)) & 7;
        if (wreserve(g, 8 + k + pad) < 0)
            return -1;
        uint8_t *d = g->wbuf + g->wlen;
        pv_fcgi_header(d, type, k, pad);
        if (k)
            memcpy(d + 8, p, k);
        memset(d + 8 + k, 0, pad);
        g->wlen += 8 + k + pad;
        p += k;
        n -= k;
    } while (n);
    return 0;
}

/* A request field's param name: HTTP_ and the name in capitals, '-' as '_'. */
static pv_str_t http_name(pv_arena_t *a, pv_str_t n)
{
    char *p = pv_arena_alloc(a, n.len + 5);
    memcpy(p, "HTTP_", 5);
    for (size_t i = 0; i < n.len; i++) {
        char c = n.p[i];
        p[5 + i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c == '-' ? '_' : c;
    }
    return (pv_str_t){p, n.len + 5};
}

/* Whether a fastcgi_param line sets the HTTP_* name n (the field is then
 * not sent, as NGINX's header_params). */
static int param_named(const pv_fastcgi_conf_t *fc, pv_str_t n)
{
    for (int i = 0; i < fc->nparams; i++)
        if (fc->params[i].name.len == n.len && memcmp(fc->params[i].name.p, n.p, n.len) == 0)
            return 1;
    return 0;
}

/* BEGIN_REQUEST and the PARAMS stream into wbuf: 0, or -1 out of memory. */
static int build_request(pv_fastcgi_t *g)
{
    pv_request_t *r = g->px.r;
    const pv_fastcgi_conf_t *fc = &g->px.loc->conf.fastcgi;
    pv_arena_t *a = r->arena;
    int max = fc->nparams + (fc->pass_request_headers ? r->nheaders : 0) + 2;
    pv_str_t *nv = pv_arena_alloc(a, (size_t)(max ? max : 1) * 2 * sizeof(*nv));
    if (!nv)
        return -1;
    int n = 0;
    size_t total = 0;
    for (int i = 0; i < fc->nparams; i++) {
        pv_str_t v = pv_cv_eval_arena(&fc->params[i].value, r);
        if (fc->params[i].if_not_empty && !v.len)
            continue;
        nv[2 * n] = fc->params[i].name;
        nv[2 * n + 1] = v;
        total += pv_fcgi_nv(NULL, nv[2 * n], v);
        n++;
    }
    for (int i = 0; fc->pass_request_headers && i < r->nheaders; i++) {
        pv_str_t name = http_name(a, r->headers[i].name);
        if (param_named(fc, name) || pv_fcgi_cache_drops(r, name))
            continue;
        nv[2 * n] = name;
        nv[2 * n + 1] = r->headers[i].value;
        total += pv_fcgi_nv(NULL, name, nv[2 * n + 1]);
        n++;
    }
    for (int k = n, e = n + pv_fcgi_cache_validators(r, nv + 2 * n); k < e; k++, n++)
        total += pv_fcgi_nv(NULL, nv[2 * k], nv[2 * k + 1]);
    uint8_t *params = pv_arena_alloc(a, total ? total : 1);
    if (!params)
        return -1;
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += pv_fcgi_nv(params + off, nv[2 * i], nv[2 * i + 1]);
    uint8_t begin[8] = {0, PV_FCGI_RESPONDER, (uint8_t)(fc->keep_conn ? PV_FCGI_KEEP_CONN : 0), 0, 0, 0, 0, 0};
    g->wlen = g->wpos = 0;
    if (put_records(g, PV_FCGI_BEGIN_REQUEST, begin, sizeof(begin)) < 0 ||
        (total && put_records(g, PV_FCGI_PARAMS, params, total) < 0) || put_records(g, PV_FCGI_PARAMS, NULL, 0) < 0)
        return -1;
    return 0;
}

/* STDIN records for the body taken from the client, and the empty one at
 * its end. 1 when records were queued, 0 when none could be yet, -1 when
 * the exchange ended. */
static int fc_body(pv_fastcgi_t *g)
{
    pv_hreq_t *hr = g->px.hr;
    if (g->stdin_done)
        return 0;
    int send = g->px.loc->conf.fastcgi.pass_request_body && !g->px.sub_done;
    if (send && !pv_body_buffered(hr) && !pv_body_done(hr)) {
        if (pv_body_read(hr) == PV_ERR) {
            pv_resp_abort(hr);
            return -1;
        }
    }
    pv_str_t spans[FC_BODY_SPANS];
    int n = send && pv_body_buffered(hr) ? pv_body_take(hr, spans, FC_BODY_SPANS) : 0;
    if (n < 0) {
        fc_failed(g, pv_body_error(hr) == 413 ? PV_UPF_CLIENT_BODY_LARGE : PV_UPF_CLIENT_BAD_BODY, 0);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (spans[i].len && put_records(g, PV_FCGI_STDIN, (const uint8_t *)spans[i].p, spans[i].len) < 0)
            goto nomem;
    /* done, the buffer may hold a pipelined request's bytes: not body */
    if (!send || pv_body_done(hr)) {
        if (put_records(g, PV_FCGI_STDIN, NULL, 0) < 0)
            goto nomem;
        g->stdin_done = 1;
        return 1;
    }
    return n > 0;
nomem:
    fc_nomem(g);
    return -1;
}

/* ---- the upstream connection ---- */

static void fc_event_cb(void *owner, unsigned events);
static void fc_timeout_cb(void *owner);
static const pv_upconn_ops_t fc_ops = {fc_event_cb, fc_timeout_cb};

/* Give the connection back: to the pool when the responder ended the
 * request on a kept connection, else closed. */
static void fc_release(pv_fastcgi_t *g, int done)
{
    pv_upconn_t *u = g->px.u;
    if (!u)
        return;
    g->px.u = NULL;
    pv_upstream_done_t d = {.failed = !done};
    if (done)
        d = (pv_upstream_done_t){.resp_complete = 1, .req_complete = g->stdin_done && g->wpos == g->wlen,
                                 .keep = (uint8_t)g->px.loc->conf.fastcgi.keep_conn,
                                 .leftover = g->px.uin->pos != g->px.uin->last};
    pv_upstream_release(u, &d);
}

/* Forget what the try sent and received. */
static void fc_drop(pv_fastcgi_t *g)
{
    fc_release(g, 0);
    g->wpos = g->wlen = 0;
    g->client_wait = g->stdin_done = 0;
    if (g->rx.out)
        g->rx.out->pos = g->rx.out->last = g->seen = 0;
    if (g->px.uin)
        g->px.uin->pos = g->px.uin->last = 0;
}

static void fc_nomem(pv_fastcgi_t *g)
{
    pv_cache_nomem("a FastCGI request", pv_log_client(g->px.r));
    pv_proxy_release_server(&g->px, PV_BAL_OK);
    fc_drop(g);
    if (g->px.sub_done) {
        g->px.hr->handling = 0;
        g->px.sub_done(g->px.hr, g->px.r, 500);
        return;
    }
    g->px.hr->handling = 0;
    pv_resp_error(g->px.hr, 500);
}

/* Pick a server, connect and queue the request's records. */
static void fc_start(pv_proxy_t *px)
{
    pv_fastcgi_t *g = (pv_fastcgi_t *)px;
    pv_worker_t *w = px->hr->w;
    int first = !px->picking;
    if (!px->picking && pv_proxy_pick_init(px) < 0) {
        fc_failed(g, PV_UPF_NO_LIVE, 0);
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
        if (!pv_proxy_queue_wait(px, fc_start))
            fc_failed(g, PV_UPF_NO_LIVE, 0);
        return;
    }
    pv_upqueue_leave(&px->qwait);
    px->server = s;
    pv_proxy_stat_try(px);
    char text[64];
    pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr),
                         pv_upstream_server_text(px->pool, s, text, sizeof(text)));
    /* a retry after a stale pooled connection takes a new one */
    pv_upconn_t *u = px->fresh ? NULL : pv_upstream_take_idle(px->pool, s, !pv_proxy_idempotent(px->r->method_id), NULL);
    px->fresh = 0;
    px->reused = u != NULL;
    const pv_fastcgi_conf_t *fc = &px->loc->conf.fastcgi;
    if (!u && !(u = pv_upstream_connect(w, px->pool, s, NULL, NULL, NULL, pv_proxy_bind_of(px, fc->bind)))) {
        fc_failed(g, PV_UPF_CONNECT, errno);
        return;
    }
    if (fc->socket_keepalive && !px->reused)
        (void)setsockopt(u->x.io.fd, SOL_SOCKET, SO_KEEPALIVE, &(int){1}, sizeof(int));
    pv_upstream_attach(u, &fc_ops, px);
    u->log_req = &px->hr->r;
    px->u = u;
    px->head_sent = px->req_done = px->resp_started = 0;
    u->requests++;
    pv_fcgi_rx_init(&g->rx, px->r->arena, (size_t)px->loc->conf.fastcgi.buffer_size, g->rx.out);
    g->clen = -1;
    g->body = g->extra = 0;
    g->rx.out->pos = g->rx.out->last = g->seen = 0;
    if (build_request(g) < 0) {
        fc_nomem(g);
        return;
    }
    if (!u->connected) {
        pv_timer_set(w->loop, &u->timer, (uint64_t)px->loc->conf.fastcgi.connect_timeout);
        return;
    }
    pv_utry_pooled(px->r);
    fc_io(g);
}

/* ---- the exchange ---- */

/* Write the queued records. 0 when all are written, 1 when the socket
 * is full, -1 when the exchange failed. */
static int fc_write(pv_fastcgi_t *g)
{
    pv_upconn_t *u = g->px.u;
    while (g->wpos < g->wlen) {
        struct iovec iov = {g->wbuf + g->wpos, g->wlen - g->wpos};
        ssize_t n = pv_xprt_writev(&u->x, &iov, 1);
        if (n == PV_AGAIN)
            return 1;
        if (n < 0) {
            fc_failed(g, PV_UPF_SEND, errno);
            return -1;
        }
        u->sent += (uint64_t)n;
        g->wpos += (size_t)n;
    }
    g->wpos = g->wlen = 0;
    g->px.head_sent = 1;
    if (g->stdin_done)
        g->px.req_done = 1;
    return 0;
}

/* A status fastcgi_next_upstream names: the next server is asked, as the
 * proxy's next_on_status() does. 1 when it was. */
static int next_on_status(pv_fastcgi_t *g, int status)
{
    static const struct {
        int status, flag;
    } map[] = {{500, PV_NEXT_F_HTTP_500}, {503, PV_NEXT_F_HTTP_503}, {403, PV_NEXT_F_HTTP_403},
               {404, PV_NEXT_F_HTTP_404}, {429, PV_NEXT_F_HTTP_429}};
    pv_proxy_t *px = &g->px;
    int flag = 0, mask = px->loc->conf.fastcgi.next_upstream;
    for (size_t i = 0; i < PV_NELEM(map); i++)
        if (map[i].status == status)
            flag = map[i].flag;
    if (!flag || !(mask & flag) || (mask & PV_NEXT_F_OFF) || px->pick.tries <= 1 || pv_proxy_next_timed_out(px) ||
        !pv_upstream_retry_allowed(px->pool) || !pv_body_rewindable(px->hr) ||
        !(pv_proxy_idempotent(px->r->method_id) || (mask & PV_NEXT_F_NON_IDEMPOTENT)))
        return 0;
    pv_proxy_release_server(px, status != 403 && status != 404 ? PV_BAL_FAILED : PV_BAL_OK);
    fc_drop(g);
    if (pv_body_rewind(px->hr) != 0) {
        pv_proxy_answer_failure(px, PV_UPF_NO_LIVE);
        return 1;
    }
    fc_start(px);
    return 1;
}

/* X-Accel-Redirect: the responder's connection is closed. */
static void accel_release(pv_proxy_t *px)
{
    pv_proxy_release_server(px, PV_BAL_OK);
    fc_drop((pv_fastcgi_t *)px);
}

/* The response head goes to the client (or error_page answers,
 * fastcgi_intercept_errors; or the subrequest looks at it). 0, or -1
 * when the exchange ended. */
static int fc_head(pv_fastcgi_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    int status = g->rx.status;
    g->rx.head_ready = 0;
    px->status = px->rp.status = status;
    pv_proxy_stat_header(px);
    pv_utry_mark(r, PV_UTRY_HEADER);
    pv_proxy_append_status(r, status);
    r->upstream_headers = g->rx.fields;
    r->nupstream_headers = g->rx.nfields;
    if (px->sub_done) {
        px->resp_head_done = 1;
        return 0;
    }
    if (next_on_status(g, status))
        return -1;
    if (r->pcache && pv_pcache_entry_answers(px, status, g->rx.fields, g->rx.nfields)) {
        pv_proxy_release_server(px, PV_BAL_OK); /* the cached entry answers (stale, revalidated) */
        fc_drop(g);
        return -1;
    }
    if (px->loc->conf.fastcgi.intercept_errors && status >= 300 && pv_error_page_for(hr, status)) {
        pv_pcache_intercepted(px, status, g->rx.fields, g->rx.nfields);
        pv_proxy_release_server(px, PV_BAL_OK);
        fc_drop(g);
        hr->handling = 0;
        pv_resp_error(hr, status);
        return -1;
    }
    const pv_fastcgi_conf_t *fc = &px->loc->conf.fastcgi;
    if (pv_accel_redirect(px, &(pv_accel_t){g->rx.fields, g->rx.nfields, fc->ignore, &fc->pipe, accel_release}))
        return -1;
    r->notmod_off = 1; /* unless the cache may store it (NGINX: !u->cacheable) */
    if (r->pcache)
        pv_pcache_response(px, status, g->rx.fields, g->rx.nfields);
    pv_header_t *fields = pv_arena_alloc(r->arena, (size_t)(g->rx.nfields + 1) * sizeof(*fields));
    pv_resp_head_t h = {.status = status, .content_length = -1, .frame = PV_FRAME_CHUNKED, .fields = fields};
    if (g->rx.status_line.len > 4)
        h.reason = (pv_str_t){g->rx.status_line.p + 4, g->rx.status_line.len - 4};
    pv_fcgi_head_fields(r, fc, &g->rx, &h, fields, &g->clen);
    /* X-Accel-Buffering, X-Accel-Limit-Rate unless fastcgi_ignore_headers names them */
    pv_pipe_start(px, &fc->pipe, fc->ignore, g->rx.fields, g->rx.nfields);
    if ((r->flags & PV_REQ_F_HEAD) || status == 204 || status == 304)
        h.frame = PV_FRAME_NONE;
    pv_proxy_ranges(px, &h, fc->force_ranges);
    int rc = pv_resp_send_head(hr, &h);
    if (rc == PV_RESP_RANGE_416 || rc == PV_RESP_PRECONDITION) { /* 416 or 412 answers in its place */
        fc_drop(g); /* the connection closed first: the answer may end the request */
        pv_proxy_answer_instead(px, rc, h.content_length);
        return -1;
    }
    if (rc != PV_OK) {
        pv_resp_abort(hr);
        return -1;
    }
    px->resp_head_done = 1;
    pv_pstore_begin(px, &fc->store, fc->pipe.temp_path, g->rx.fields, g->rx.nfields, g->clen);
    if ((r->flags & PV_REQ_F_HEAD) && !hr->tee && !px->pipe.store) {
        /* as NGINX: the body is not read (unless cached or stored); the connection is closed */
        pv_utry_mark(r, PV_UTRY_RESPONSE);
        pv_proxy_release_server(px, PV_BAL_OK);
        fc_drop(g);
        hr->handling = 0;
        pv_resp_finish(hr);
        return -1;
    }
    return 0;
}

/* END_REQUEST: the connection goes back (or is closed) and the answer
 * is finished. */
static void fc_complete(pv_fastcgi_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_hreq_t *hr = px->hr;
    px->resp_done = 1;
    pv_utry_mark(px->r, PV_UTRY_RESPONSE);
    pv_proxy_release_server(px, PV_BAL_OK);
    fc_release(g, 1);
    fc_drop(g);
    if (px->sub_done) {
        hr->handling = 0;
        px->sub_done(hr, px->r, px->status);
        return;
    }
    pv_pstore_done(px);
    if (pv_pipe_upstream_done(px))
        return; /* the client still takes what is held; the pipe ends the response */
    hr->handling = 0;
    pv_resp_finish(hr);
}

/* STDERR text as NGINX logs it: trailing CR, LF, spaces and dots cut.
 * 1 when fastcgi_catch_stderr names a string in it (before the head: the
 * response is then an invalid one). */
static int log_stderr(pv_fastcgi_t *g)
{
    const pv_fastcgi_conf_t *fc = &g->px.loc->conf.fastcgi;
    int caught = 0;
    for (int i = 0; !g->px.resp_head_done && i < fc->ncatch_stderr; i++)
        caught |= memmem(g->rx.err, g->rx.errlen, fc->catch_stderr[i].p, fc->catch_stderr[i].len) != NULL;
    size_t n = g->rx.errlen;
    while (n && (g->rx.err[n - 1] == '\r' || g->rx.err[n - 1] == '\n' || g->rx.err[n - 1] == ' ' ||
                 g->rx.err[n - 1] == '.'))
        n--;
    g->rx.err_ready = 0;
    g->rx.errlen = 0;
    char text[64];
    if (n)
        pv_log_r(&g->px.hr->r, PV_LOG_ERR, "FastCGI sent in stderr: \"%.*s\" while reading %s, upstream: %s, client: %s",
                 (int)n, g->rx.err, g->px.resp_head_done ? "upstream" : "response header from upstream",
                 pv_upstream_server_text(g->px.pool, g->px.server, text, sizeof(text)), pv_log_client(&g->px.hr->r));
    return caught;
}

/* How much of the body in out goes on: up to the Content-Length, the
 * rest dropped (logged once, as NGINX). */
static void fc_allow(pv_fastcgi_t *g)
{
    pv_buf_t *o = g->rx.out;
    size_t n = o->last - g->seen; /* bytes not looked at yet */
    if (g->clen >= 0 && g->body + (int64_t)n > g->clen) {
        if (!g->extra)
            pv_log_r(&g->px.hr->r, PV_LOG_WARN,
                     "upstream sent more data than specified in \"Content-Length\" header while reading upstream, "
                     "client: %s", pv_log_client(&g->px.hr->r));
        g->extra = 1;
        n = (size_t)(g->clen - g->body);
        o->last = g->seen + (uint32_t)n;
    }
    g->body += (int64_t)n;
    g->seen = o->last;
}

/* Act on what the parser recorded: STDERR, the head, body for the
 * client, the end. 0 to go on, FC_WAIT while the client has not taken
 * the body, -1 when the exchange ended (the request may be freed). */
static int fc_deliver(pv_fastcgi_t *g)
{
    pv_hreq_t *hr = g->px.hr;
    if (g->rx.err_ready && log_stderr(g)) {
        fc_failed(g, PV_UPF_INVALID_HEADER, 0);
        return -1;
    }
    if (g->rx.head_ready && fc_head(g) < 0)
        return -1;
    if (g->rx.out->last && !g->client_wait) {
        if (g->px.sub_done || ((g->px.r->flags & PV_REQ_F_HEAD) && !hr->tee && !g->px.pipe.store)) {
            g->rx.out->pos = g->rx.out->last = 0; /* read and dropped */
        } else {
            fc_allow(g);
            int rc = pv_pipe_push(&g->px, &g->rx.out);
            if (!g->rx.out->last)
                g->seen = 0;
            if (rc == PV_PIPE_ENDED)
                return -1; /* the client's connection closed: the request is gone */
            if (rc == PV_PIPE_WAIT) {
                g->client_wait = 1;
                return FC_WAIT; /* client_proceed() goes on */
            }
        }
    }
    if (g->rx.ended && !g->client_wait) {
        if (!g->px.resp_head_done) {
            /* NGINX: "upstream prematurely closed FastCGI request", an invalid head */
            pv_log_r(&hr->r, PV_LOG_ERR,
                     "upstream prematurely closed FastCGI request while reading response header from upstream, client: %s",
                     pv_log_client(&hr->r));
            fc_failed(g, PV_UPF_INVALID_HEADER, 0);
            return -1;
        }
        if (g->clen > g->body && (!(hr->r.flags & PV_REQ_F_HEAD) || hr->tee || g->px.pipe.store)) {
            /* as NGINX: a body shorter than its Content-Length is an
             * upstream error; the answer is cut, not ended (nor stored) */
            pv_log_r(&hr->r, PV_LOG_ERR, "upstream prematurely closed FastCGI stdout while reading upstream, client: %s",
                     pv_log_client(&hr->r));
            pv_proxy_release_server(&g->px, PV_BAL_OK);
            fc_drop(g);
            if (pv_resp_flush(hr) != PV_ERR) /* what was sent goes out first */
                pv_resp_abort(hr);
            return -1;
        }
        fc_complete(g);
        return -1;
    }
    return 0;
}

/* Read the upstream and parse as much as the output has room for.
 * 0 to go on, 1 when the socket has nothing more, FC_WAIT while the
 * client has not taken the body, -1 when the exchange ended. */
static int fc_read(pv_fastcgi_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_upconn_t *u = px->u;
    pv_buf_t *b = px->uin;
    if (g->client_wait || g->rx.ended)
        return FC_WAIT;
    if (b->pos == b->last) {
        b->pos = b->last = 0;
        size_t max = b->size;
        if (!u->x.readable || (px->pipe.rate && px->resp_head_done && pv_pipe_rate_wait(px, &max)))
            return 1; /* fastcgi_limit_rate: the timer reads on */
        ssize_t n = pv_xprt_read(&u->x, b->data, max);
        if (n == PV_AGAIN)
            return 1;
        if (n <= 0) {
            fc_failed(g, n == 0 ? PV_UPF_PREMATURE_CLOSE : PV_UPF_RESET, n == 0 ? 0 : errno);
            return -1;
        }
        px->resp_started = 1;
        px->pipe.read_len += (uint64_t)n;
        b->last = (uint32_t)n;
    }
    size_t used;
    int rc = pv_fcgi_rx_feed(&g->rx, (const uint8_t *)b->data + b->pos, b->last - b->pos, &used);
    b->pos += (uint32_t)used;
    if (rc != PV_FCGI_OK) {
        pv_log_r(&px->hr->r, PV_LOG_ERR, "%s while reading response header from upstream, client: %s", g->rx.error,
                 pv_log_client(&px->hr->r));
        fc_failed(g, g->rx.too_big ? PV_UPF_HEADER_TOO_BIG : PV_UPF_INVALID_HEADER, 0);
        return -1;
    }
    int d = fc_deliver(g);
    return d < 0 ? d : 0;
}

/* Move the exchange on: request records, writes, reads, timers. */
static void fc_io(pv_fastcgi_t *g)
{
    pv_proxy_t *px = &g->px;
    pv_worker_t *w = px->hr->w;
    const pv_fastcgi_conf_t *fc = &px->loc->conf.fastcgi;
    for (;;) {
        pv_upconn_t *u = px->u;
        if (!u)
            return;
        /* records of the body go out with what is queued (as one write
         * when the body is at hand), at most FC_RECORD_MAX ahead */
        if (!g->stdin_done && g->wlen - g->wpos < FC_RECORD_MAX && (fc_body(g) < 0 || px->u != u))
            return;
        int wr = fc_write(g);
        if (wr < 0 || px->u != u)
            return;
        if (wr == 0 && !g->stdin_done) {
            int b = fc_body(g);
            if (b < 0 || px->u != u)
                return;
            if (b > 0)
                continue;
        }
        int rd = fc_read(g);
        if (rd == -1)
            return; /* the exchange ended: g may be gone with the request */
        if (px->u != u)
            return;
        if (rd == 0)
            continue;
        if (px->pipe.delayed)
            return; /* the timer is fastcgi_limit_rate's wait */
        if (wr == 1)
            pv_timer_set(w->loop, &u->timer, (uint64_t)fc->send_timeout);
        else if (g->client_wait)
            pv_timer_del(w->loop, &u->timer);
        else
            pv_timer_set(w->loop, &u->timer, (uint64_t)fc->read_timeout);
        return;
    }
}

/* A failure before or during the response: the next server when
 * fastcgi_next_upstream allows it and nothing reached the client, else
 * the answer (502, 504) or, once the head went out, the client's
 * connection cut. */
static void fc_failed(pv_fastcgi_t *g, pv_upfail_t f, int err)
{
    pv_proxy_t *px = &g->px;
    const pv_upfail_info_t *fi = pv_upfail_info(f);
    pv_proxy_log_failure(px, f, err, NULL);
    pv_proxy_stat_fail(px, f);
    /* a pooled connection the responder closed while idle: once more on a new one */
    if ((fi->flags & PV_UPF_F_TRANSPORT) && px->u && px->reused && !px->resp_started && px->pick.held &&
        pv_body_rewind(px->hr) == 0) {
        pv_upstream_stale(px->u);
        pv_proxy_release_server(px, PV_BAL_DROP);
        fc_drop(g);
        px->pick.tried[px->server >> 6] &= ~(1ull << (px->server & 63));
        px->reused = 0;
        px->fresh = 1;
        px->r->upstream_addr[0] = '\0';
        pv_utry_drop(px->r);
        fc_start(px);
        return;
    }
    pv_proxy_release_server(px, (fi->flags & PV_UPF_F_SERVER) ? PV_BAL_FAILED : PV_BAL_OK);
    fc_drop(g);
    if (f == PV_UPF_NO_LIVE) {
        size_t al = strlen(px->r->upstream_addr);
        if (!al || px->r->upstream_addr[al - 1] == ' ')
            pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr), px->pool->cf->name);
        pv_proxy_answer_failure(px, f);
        return;
    }
    if (!(fi->flags & PV_UPF_F_CLIENT) && !px->resp_head_done)
        pv_proxy_append_status(px->r, fi->status);
    if (px->resp_head_done && !px->sub_done) {
        /* what is held goes first, unless the response was invalid */
        if (px->pipe.on)
            pv_pipe_upstream_cut(px, f != PV_UPF_INVALID_HEADER);
        else
            pv_resp_abort(px->hr);
        return;
    }
    px->last_fail = f;
    int mask = px->loc->conf.fastcgi.next_upstream;
    if (fi->next && (mask & fi->next) && !(mask & PV_NEXT_F_OFF) &&
        (!px->head_sent || pv_proxy_idempotent(px->r->method_id) || (mask & PV_NEXT_F_NON_IDEMPOTENT)) &&
        px->pick.tries && !pv_proxy_next_timed_out(px) && pv_body_rewind(px->hr) == 0) {
        px->resp_head_done = 0;
        fc_start(px);
        return;
    }
    pv_proxy_answer_failure(px, f);
}

static void fc_event_cb(void *owner, unsigned events)
{
    pv_fastcgi_t *g = owner;
    pv_upconn_t *u = g->px.u;
    int e, up = pv_proxy_connect_done(&g->px, pv_xprt_events(&u->x, events), &e);
    if (up < 0)
        fc_failed(g, PV_UPF_CONNECT, e);
    else if (up)
        fc_io(g);
}

static void fc_timeout_cb(void *owner)
{
    pv_fastcgi_t *g = owner;
    pv_upconn_t *u = g->px.u;
    if (g->px.pipe.delayed) {
        g->px.pipe.delayed = 0; /* fastcgi_limit_rate's wait is over */
        fc_io(g);
        return;
    }
    fc_failed(g, !u->connected ? PV_UPF_CONNECT_TIMEOUT : g->wpos < g->wlen ? PV_UPF_SEND_TIMEOUT : PV_UPF_READ_TIMEOUT,
              ETIMEDOUT);
}

/* ---- the client side ---- */

static void client_proceed(pv_hreq_t *hr)
{
    pv_fastcgi_t *g = hr->handler_ctx;
    if (g->px.pipe.on) {
        /* held bytes to the client; the responder waits while none fit */
        if (!pv_pipe_proceed(&g->px) || !g->client_wait)
            return;
    } else if (g->client_wait) {
        g->rx.out->pos = g->rx.out->last = g->seen = 0; /* the client took it */
    } else {
        return;
    }
    g->client_wait = 0;
    if (g->rx.ended) {
        fc_deliver(g);
        return;
    }
    fc_io(g);
}

static void client_readable(pv_hreq_t *hr)
{
    pv_fastcgi_t *g = hr->handler_ctx;
    if (g->buffering) {
        fc_buffer(g);
        return;
    }
    if (g->px.u && g->px.u->connected && (!pv_body_done(hr) || !g->px.req_done)) {
        fc_io(g); /* more of the body, or its end, to send */
        return;
    }
    /* body sent: anything readable is a pipelined request or the client
     * closing; the close ends the exchange unless told otherwise (NGINX's
     * store and cache, a background update too, read on) */
    const pv_fastcgi_conf_t *fc = &g->px.loc->conf.fastcgi;
    if (pv_body_done(hr) && !fc->ignore_client_abort && !fc->store.on && !hr->r.pcache && pv_body_client_closed(hr)) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed connection while waiting for upstream, client: %s",
                 pv_log_client(&hr->r));
        pv_resp_abort(hr);
    }
}

static void client_abort(pv_hreq_t *hr)
{
    pv_fastcgi_t *g = hr->handler_ctx;
    pv_upqueue_leave(&g->px.qwait);
    pv_proxy_release_server(&g->px, PV_BAL_OK);
    fc_drop(g);
}

/* The exchange's buffers go back; the state itself is freed by the caller. */
static void fc_free_parts(pv_hreq_t *hr, pv_fastcgi_t *g)
{
    pv_upqueue_leave(&g->px.qwait);
    if (g->px.pick.held)
        pv_proxy_release_server(&g->px, PV_BAL_OK);
    fc_drop(g);
    pv_pipe_end(&g->px.pipe);
    if (g->px.dyn)
        pv_proxy_target_done(&g->px);
    pv_buf_put(g->px.uin);
    pv_buf_put(g->rx.out);
    free(g->wbuf);
    g->px.uin = g->rx.out = NULL;
    g->wbuf = NULL;
    hr->handler_ctx = NULL;
}

static void client_cleanup(pv_hreq_t *hr)
{
    pv_fastcgi_t *g = hr->handler_ctx;
    pv_pcache_cleanup(hr);
    if (!g)
        return;
    fc_free_parts(hr, g);
    free(g);
}

static const pv_handler_t fastcgi_handler = {"fastcgi", client_proceed, client_readable, client_abort, client_cleanup};

/* The exchange's state for hr and loc, hr's handler set; NULL out of memory. */
static pv_fastcgi_t *fc_new(pv_hreq_t *hr, pv_request_t *r, pv_location_t *loc)
{
    pv_fastcgi_t *g = calloc(1, sizeof(*g));
    if (g && (!(g->px.uin = pv_buf_get_size((size_t)loc->conf.fastcgi.buffer_size)) || !(g->rx.out = pv_buf_get()))) {
        pv_buf_put(g->px.uin);
        free(g);
        g = NULL;
    }
    if (!g) {
        pv_cache_nomem("a FastCGI exchange", pv_log_client(r));
        return NULL;
    }
    pv_proxy_t *px = &g->px;
    px->hr = hr;
    px->r = r;
    px->loc = loc;
    if (!loc->proxy_pass->cv) {
        px->pool = pv_upstream_pool(hr->gen, loc->proxy_pass->upstream->index);
        r->proxy_host = loc->proxy_pass->proxy_host;
    }
    hr->handler_ctx = g;
    hr->handler = &fastcgi_handler;
    hr->handling = 1;
    pv_body_hold(hr);
    return g;
}

/* fastcgi_pass with variables: the address evaluated (an upstream
 * block's name, host:port, unix:PATH), then the exchange starts. */
static void fc_begin(pv_fastcgi_t *g)
{
    if (!g->px.loc->proxy_pass->cv) {
        if (!g->px.r->res_allow || pv_proxy_residency(&g->px) == PV_OK)
            fc_start(&g->px);
        return;
    }
    g->px.targeted = fc_start;
    if (pv_proxy_target(&g->px) == PV_OK)
        fc_start(&g->px);
}

/* The body could not be read: a broken or too large one (400, 413), a
 * temp file failure (500), or the client went away (0). */
static void fc_body_failed(pv_hreq_t *hr, int status)
{
    if (status) {
        hr->handling = 0;
        pv_resp_error(hr, status);
    } else {
        pv_resp_abort(hr);
    }
}

/* More of the body arrived while it is read whole before a responder
 * is asked (fastcgi_request_buffering); the responder is asked once it
 * is here. */
static void fc_buffer(pv_fastcgi_t *g)
{
    pv_hreq_t *hr = g->px.hr;
    int status = 0, rc = pv_reqbody_read(hr, &status);
    if (rc == PV_ERR)
        fc_body_failed(hr, status);
    if (rc != PV_OK)
        return;
    g->buffering = 0;
    fc_begin(g);
}

void pv_fastcgi_resume(pv_hreq_t *hr)
{
    pv_fastcgi_t *g = fc_new(hr, &hr->r, hr->r.loc);
    if (!g) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return;
    }
    const pv_fastcgi_conf_t *fc = &hr->r.loc->conf.fastcgi;
    pv_request_t *r = &hr->r;
    int has_body = (r->flags & (PV_REQ_F_CHUNKED | PV_REQ_F_HAS_CL)) && !(r->flags & PV_REQ_F_BODY_DROPPED) &&
                   (!pv_body_done(hr) || pv_body_buffered(hr));
    if (has_body && fc->pass_request_body) {
        g->buffering = fc->request_buffering ? 2 : 0; /* off: the responder is asked at once, as NGINX */
        if (g->buffering) {
            fc_buffer(g);
            return;
        }
        /* unbuffered: a body here whole already goes as a buffered one
         * (so $request_body has it, as NGINX's preread body) */
        int status = 0;
        if (pv_reqbody_arrived(hr, &status) == PV_ERR) {
            fc_body_failed(hr, status);
            return;
        }
    }
    fc_begin(g);
}

static int content(pv_hreq_t *hr)
{
    if (!pv_fcgi_cache_start(hr))
        pv_fastcgi_resume(hr); /* else answered from the cache, or waiting for its lock */
    return PV_PHASE_DONE;
}

/* The subrequest ended: the state is freed (the main request's own
 * content handler may need hr's slot) before the caller hears of it. */
static void sub_end(pv_hreq_t *hr, pv_request_t *sr, int status)
{
    /* the callers up the stack still look at the state (its connection
     * is gone, so they stop): it is freed when the next subrequest ends */
    static __thread pv_fastcgi_t *spent;
    pv_fastcgi_t *g = hr->handler_ctx;
    pv_sub_done_cb done = g->done;
    hr->handling = 0;
    fc_free_parts(hr, g);
    free(spent);
    spent = g;
    hr->handler = NULL;
    done(hr, sr, status);
}

/* An auth_request subrequest to a fastcgi_pass location: no body; done
 * gets the status once END_REQUEST came, the fields in sr. */
static void subrequest(pv_hreq_t *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done)
{
    if (hr->handler_ctx) {
        done(hr, sr, 500); /* another handler's state is in place */
        return;
    }
    pv_fastcgi_t *g = fc_new(hr, sr, loc);
    if (!g) {
        done(hr, sr, 500);
        return;
    }
    g->done = done;
    g->px.sub_done = sub_end;
    fc_begin(g);
}

static int claims(const pv_location_t *loc)
{
    return loc->proxy_pass && loc->proxy_pass->fastcgi;
}

static const pv_content_t fastcgi_content = {"fastcgi", claims, content, subrequest};

static int mod_init(void)
{
    pv_phases_content(&fastcgi_content);
    return PV_OK;
}

pv_module_t pv_fastcgi_module = {
    .name = "fastcgi",
    .init = mod_init,
};
