#include "server.h"
#include "headbuf.h"

#include "bfilter.h"
#include "compress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/counters.h"
#include "../core/fault.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../core/time.h"
#include "../core/tls.h"
#include "accept.h"
#include "accesslog.h"
#include "mirror.h"
#include "trace.h"
#include "errpage.h"
#include "phases.h"
#include "redirect.h"
#include "h2.h"
#include "headers.h"
#include "linger.h"
#include "reqbody.h"
#include "reqhead.h"
#include "response.h"
#include "router.h"
#include "slots.h"
#include "stats.h"
#include "ssl.h"
#include "uri.h"
#include "uvars.h"

static __thread llhttp_settings_t req_settings;
static __thread int req_settings_ready;
/* connections with pipelined bytes waiting to be parsed (see run_ready) */
static __thread pv_hconn_t *ready_head;
/* this worker's open client connections (draining, closing all) */
static __thread pv_hconn_t *conns;
/* closed connections, freed before the loop next waits */
static __thread pv_hconn_t *reap_list;

static void conn_io_cb(pv_io_t *io, unsigned events);
static void sniff_io_cb(pv_io_t *io, unsigned events);
static void conn_timer_cb(pv_timer_t *t);
static void handle_input(pv_hconn_t *c);
static void conn_nomem(pv_hconn_t *c, const char *what);

const pv_proto_t pv_h1_proto = {"HTTP/1.1", &pv_h1_resp, &pv_h1_body, pv_reqhead_build, 0};

/* ---- allocation --------------------------------------------------------- */

static void req_destroy(void *obj);

/* Freelist of request states, bounded and given back after a burst
 * (core/cache.h). */
static __thread pv_cache_t req_cache = {
    .name = "request", .size = sizeof(pv_hreq_t) + 1024, .max = 64, .destroy = req_destroy};

static int on_url_cb(llhttp_t *p, const char *at, size_t len);
static int on_field_cb(llhttp_t *p, const char *at, size_t len);
static int on_value_cb(llhttp_t *p, const char *at, size_t len);
static int on_headers_complete_cb(llhttp_t *p);

static inline __attribute__((always_inline)) pv_hreq_t *req_new(pv_worker_t *w, uint16_t group,
                                                                  const struct sockaddr_in6 *peer,
                                                                  uint64_t conn_id, uint32_t nreq,
                                                                  pv_wgen_t *gen)
{
    if (pv_fault_alloc(PV_FAULT_OTHER))
        return NULL;
    pv_hreq_t *hr = pv_cache_get(&req_cache);
    if (!hr) {
        hr = malloc(sizeof(*hr));
        if (!hr)
            return NULL;
        pv_arena_init(&hr->arena, 1024);
    }
    pv_arena_t arena = hr->arena;
    /* clear the request state, keeping the arena's first block */
    memset(hr, 0, sizeof(*hr));
    hr->arena = arena;
    hr->w = w;
    pv_request_t *r = &hr->r;
    r->arena = &hr->arena;
    if (gen) {
        gen->live++; /* a subrequest runs under its parent's generation */
        hr->gen = gen;
    } else {
        hr->gen = pv_worker_gen_hold(w);
    }
    w->requests++;
    pv_count(PV_CTR_REQ_CREATED);
    r->conf = hr->gen->conf;
    r->peer = (const struct sockaddr *)peer;
    r->peer_port = pv_net_addr_text(r->peer, r->peer_text, sizeof(r->peer_text));
    r->conn_id = conn_id;
    r->conn_requests = nreq;
    r->content_length = -1;
    r->start_ns = pv_now_ns();
    r->start_wall_ms = pv_time_ms();
    pv_log_req_set(r); /* the error log names it from here */
    pv_listen_group_t *g = &r->conf->http->listens[group];
    hr->lgroup = g;
    r->srv = g->default_srv;
    r->local_text = g->listen.host;
    r->local_port = (uint16_t)g->listen.port;
    return hr;
}

pv_hreq_t *pv_server_req_new(pv_worker_t *w, uint16_t group, const struct sockaddr_in6 *peer, uint64_t conn_id,
                             uint32_t nreq)
{
    return req_new(w, group, peer, conn_id, nreq, NULL);
}

pv_hreq_t *pv_server_subreq_new(pv_hreq_t *parent)
{
    const pv_request_t *pr = &parent->r;
    uint16_t group = (uint16_t)(parent->lgroup - pr->conf->http->listens);
    return req_new(parent->w, group, (const struct sockaddr_in6 *)pr->peer, pr->conn_id, pr->conn_requests,
                   parent->gen);
}

/* An HTTP/1 request on c: the shared part, then the head parser. */
static pv_hreq_t *req_alloc(pv_hconn_t *c)
{
    if (!req_settings_ready) {
        llhttp_settings_init(&req_settings);
        req_settings.on_url = on_url_cb;
        req_settings.on_header_field = on_field_cb;
        req_settings.on_header_value = on_value_cb;
        req_settings.on_headers_complete = on_headers_complete_cb;
        req_settings_ready = 1;
    }
    pv_hreq_t *hr = req_new(c->w, c->group, &c->peer, c->id, c->nreq + 1, NULL);
    if (hr)
        hr->r.conn_start_ns = c->start_ns;
    if (!hr)
        return NULL;
    c->nreq++;
    hr->c = c;
    if (c->flags & PV_HC_F_PIPELINE) {
        hr->r.flags |= PV_REQ_F_PIPELINED;
        c->flags &= ~PV_HC_F_PIPELINE;
    }
    hr->r.xprt = &c->x;
    hr->proto = &pv_h1_proto;
    pv_slots_idle_del(c);
    llhttp_init(&hr->parser, HTTP_REQUEST, &req_settings);
    hr->parser.data = hr;
    return hr;
}

void pv_server_req_free(pv_hreq_t *hr)
{
    pv_log_req_gone(&hr->r);
    pv_buf_put(hr->out);
    pv_buf_put(hr->bin);
    if (hr->handler && hr->handler->cleanup)
        hr->handler->cleanup(hr);
    if (hr->rate)
        pv_resp_rate_end(hr);
    pv_bf_free(hr);
    pv_compress_free(hr);
    if (hr->rb)
        pv_reqbody_free(hr);
    pv_access_end(hr);
    pv_mirror_free(hr);
    pv_stats_free(hr);
    pv_arena_reset(&hr->arena);
    pv_worker_gen_release(hr->w, hr->gen);
    if (pv_cache_put(&req_cache, hr) < 0)
        req_destroy(hr);
}

static void req_destroy(void *obj)
{
    pv_hreq_t *hr = obj;
    pv_arena_free(&hr->arena);
    free(hr);
}

/* ---- connection lifecycle ------------------------------------------------ */

static void conn_link(pv_worker_t *w, pv_hconn_t *c)
{
    c->prev = NULL;
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    w->nconns++;
    pv_count_set(PV_CTR_CONNS_OPEN, (uint64_t)w->nconns);
    if (w->nconns > w->trim_peak_conns)
        w->trim_peak_conns = w->nconns;
}

static void conn_unlink(pv_worker_t *w, pv_hconn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    pv_count_set(PV_CTR_CONNS_OPEN, (uint64_t)w->nconns);
}

void pv_server_close(pv_hconn_t *c)
{
    if (c->flags & PV_HC_F_CLOSING)
        return;
    pv_worker_t *w = c->w;
    c->flags |= PV_HC_F_CLOSING;
    if (c->flags & PV_HC_F_READY) {
        for (pv_hconn_t **pp = &ready_head; *pp; pp = &(*pp)->ready_next)
            if (*pp == c) {
                *pp = c->ready_next;
                break;
            }
        c->flags &= ~PV_HC_F_READY;
    }
    pv_timer_del(w->loop, &c->timer);
    pv_slots_idle_del(c);
    if (c->hr) {
        if (c->hr->handling) {
            c->hr->handling = 0;
            c->hr->handler->abort(c->hr);
        }
        pv_phases_log_closed(c->hr);
        pv_server_req_free(c->hr);
        c->hr = NULL;
    }
    pv_buf_put(c->in);
    c->in = NULL;
    pv_loop_del(w->loop, &c->x.io);
    pv_xprt_close(&c->x);
    conn_unlink(w, c);
    c->next = reap_list;
    reap_list = c;
}

static void run_ready(pv_worker_t *w);

void pv_server_reap(pv_worker_t *w)
{
    pv_redirect_run();
    run_ready(w);
    if (pv_h2_work)
        pv_h2_reap(w);
    while (reap_list) {
        pv_hconn_t *c = reap_list;
        reap_list = c->next;
        pv_slots_conn_free(c);
    }
}

/* The transport moves to an HTTP/2 connection, with the n bytes at p
 * already read from it. */
static void to_h2(pv_hconn_t *c, const char *p, size_t n)
{
    pv_worker_t *w = c->w;
    pv_xprt_t x = c->x;
    pv_loop_del(w->loop, &c->x.io);
    c->x.io.fd = -1;
    c->x.ctx = NULL;
    c->x.pp = NULL;
    pv_tls_set_owner(&x, NULL);
    pv_h2_adopt(w, &x, c->group, &c->peer, c->id, p, n);
    pv_server_close(c);
}

static pv_io_cb conn_cb(const pv_listen_group_t *lg)
{
    /* `http2 on`: the first bytes say which protocol the client speaks */
    return lg->default_srv->http2 || (lg->listen.http2 && lg->listen.ssl) ? sniff_io_cb : conn_io_cb;
}

void pv_server_conn_begin(pv_hconn_t *c)
{
    const pv_listen_group_t *lg = &c->w->conf->http->listens[c->group];
    if (lg->listen.http2 && !lg->listen.ssl) {
        to_h2(c, NULL, 0);
        return;
    }
    c->x.io.cb = conn_cb(lg);
    if (pv_http_ssl_accept(c, lg) != PV_OK) {
        pv_cache_nomem("a TLS session", NULL);
        pv_server_close(c);
        return;
    }
    c->x.io.cb(&c->x.io, PV_EV_READ); /* bytes may have come behind the header */
}

pv_hconn_t *pv_server_conn_open(pv_worker_t *w, int group, pv_xprt_t *x, const struct sockaddr *peer,
                                socklen_t peerlen)
{
    pv_hconn_t *c = pv_slots_conn_alloc();
    if (!c) {
        pv_cache_nomem("a connection", NULL);
        pv_xprt_close(x);
        return NULL;
    }
    c->w = w;
    c->x = *x;
    const pv_listen_group_t *lg = &w->conf->http->listens[group];
    c->x.io.cb = lg->listen.proxy_protocol ? pv_http_pp_io_cb : conn_cb(lg);
    c->x.io.data = c;
    c->id = ++w->next_conn_id;
    c->start_ns = pv_loop_time_ns();
    c->group = (uint16_t)group;
    memcpy(&c->peer, peer, peerlen < sizeof(c->peer) ? peerlen : sizeof(c->peer));
    pv_timer_init(&c->timer, conn_timer_cb, c);
    if (pv_loop_add(w->loop, &c->x.io) < 0) {
        pv_xprt_close(&c->x);
        pv_slots_conn_free(c);
        return NULL;
    }
    conn_link(w, c);
    pv_count(PV_CTR_CONNS_ACCEPTED);
    pv_server_t *ds = w->conf->http->listens[group].default_srv;
    pv_timer_set(w->loop, &c->timer, (uint64_t)ds->client_header_timeout);
    return c;
}

/* A connection on an address whose default server has `http2 on`: HTTP/2
 * with prior knowledge when it opens with the client preface, else
 * HTTP/1.1 with the bytes read so far (NGINX 1.25 looks at the first
 * bytes the same way). */
static void sniff_io_cb(pv_io_t *io, unsigned events)
{
    pv_hconn_t *c = io->data;
    pv_xprt_events(&c->x, events);
    if (!(events & PV_EV_READ) && !c->x.readable)
        return;
    if (!c->in && !(c->in = pv_head_buf(c))) {
        conn_nomem(c, "a head buffer");
        return;
    }
    pv_buf_t *b = c->in;
    while (c->x.readable && b->last < 24) {
        ssize_t n = pv_xprt_read(&c->x, b->data + b->last, b->size - b->last);
        if (n == PV_AGAIN)
            break;
        if (n <= 0) {
            pv_server_close(c);
            return;
        }
        b->last += (uint32_t)n;
        if (!pv_h2_preface(b->data, b->last))
            break;
    }
    /* plain bytes on a TLS address are HTTP/1's 400, never h2c (NGINX) */
    int p = pv_tls_is_plain(&c->x) ? 0 : pv_h2_preface(b->data, b->last);
    if (p == 1)
        return; /* a prefix of the preface: wait for more */
    if (p == 2) {
        to_h2(c, b->data, b->last);
        return;
    }
    c->x.io.cb = conn_io_cb;
    handle_input(c);
}

/* ---- request head parsing ------------------------------------------------ */

static inline uint32_t span_off(pv_hreq_t *hr, const char *at)
{
    return (uint32_t)(at - hr->c->in->data);
}

static int on_url_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_hreq_t *hr = p->data;
    if (hr->last_cb == 3)
        hr->url.len += (uint32_t)len;
    else
        hr->url = (pv_hspan_t){span_off(hr, at), (uint32_t)len};
    hr->last_cb = 3;
    if (hr->url.len > (uint64_t)hr->r.srv->large_header_buffers_size) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent too long URI, client: %s", pv_log_client(&hr->r));
        hr->err_status = 414;
        return -1;
    }
    return 0;
}

/* Room for more header fields: the spans live in the request's arena,
 * 16 at first, doubled as more come (max_headers bounds them). */
static void grow_fields(pv_hreq_t *hr)
{
    int cap = hr->fcap ? 2 * hr->fcap : 16;
    pv_hspan_t *n = pv_arena_alloc(&hr->arena, 2 * sizeof(pv_hspan_t) * (size_t)cap);
    if (hr->nfields) {
        memcpy(n, hr->hname, sizeof(pv_hspan_t) * (size_t)hr->nfields);
        memcpy(n + cap, hr->hvalue, sizeof(pv_hspan_t) * (size_t)hr->nfields);
    }
    hr->hname = n;
    hr->hvalue = n + cap;
    hr->fcap = cap;
}

static int on_field_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_hreq_t *hr = p->data;
    if (hr->last_cb != 1) {
        /* the field before is whole: more than any server's max_headers
         * are refused now, before the rest of the head is stored (the
         * limit of the server Host names is held to once the head is in) */
        if (hr->nfields > hr->lgroup->max_headers_hi && pv_reqhead_over_all(hr)) {
            hr->err_status = pv_reqhead_too_many(&hr->r);
            return -1;
        }
        if (hr->nfields == hr->fcap)
            grow_fields(hr);
        hr->hname[hr->nfields] = (pv_hspan_t){span_off(hr, at), (uint32_t)len};
        hr->hvalue[hr->nfields] = (pv_hspan_t){0, 0};
        hr->nfields++;
    } else {
        hr->hname[hr->nfields - 1].len += (uint32_t)len;
    }
    hr->last_cb = 1;
    return 0;
}

static int on_value_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_hreq_t *hr = p->data;
    int i = hr->nfields - 1;
    if (hr->last_cb != 2)
        hr->hvalue[i] = (pv_hspan_t){span_off(hr, at), (uint32_t)len};
    else
        hr->hvalue[i].len += (uint32_t)len;
    hr->last_cb = 2;
    if ((uint64_t)hr->hname[i].len + hr->hvalue[i].len + 4 > (uint64_t)hr->r.srv->large_header_buffers_size) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent too long header line: \"%.*s...\", client: %s",
                 (int)PV_MIN(hr->hname[i].len, 256), hr->c->in->data + hr->hname[i].off, pv_log_client(&hr->r));
        hr->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_headers_complete_cb(llhttp_t *p)
{
    PV_UNUSED(p);
    return HPE_PAUSED;
}

/* ---- responses ----------------------------------------------------------- */

static const pv_loc_conf_t *req_lconf(const pv_hreq_t *hr)
{
    return hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf;
}

void pv_server_queue_head(pv_hreq_t *hr, const char *p, size_t n)
{
    if (hr->r.flags & PV_REQ_F_HTTP09) {
        hr->resp_head_bytes = 0;
        return;
    }
    pv_outq_push(&hr->cq, p, n);
    hr->resp_head_bytes = (uint32_t)n;
}

void pv_server_error(pv_hreq_t *hr, int status)
{
    hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
    pv_resp_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

/* ---- request head processing ---------------------------------------------- */

/* A head refused before it was parsed whole: answered as NGINX does, by
 * the server of a valid Host before the error, else the address's default
 * server, whose error_page may run a URI (a GET of it with the fields
 * parsed so far; no body is read). An HTTP/0.9 one gets the bare page. */
static void head_refused(pv_hreq_t *hr, int status)
{
    if (!(hr->r.flags & PV_REQ_F_HTTP09)) {
        pv_reqhead_refused_server(hr);
        hr->head_in = hr->body_done = 1;
        pv_timer_del(hr->c->w->loop, &hr->c->timer); /* the page's location arms its own */
    }
    pv_server_error(hr, status);
}

/* Post-read: the head becomes the request model, checked, and the
 * server block is chosen by its Host. */
static int post_read(pv_hreq_t *hr)
{
    hr->head_in = 1;
    int status = hr->proto->head(hr);
    if (status) {
        if (hr->r.host.len) /* a valid Host before the field refused */
            hr->r.srv = pv_router_request_server(&hr->r, hr->lgroup, hr->r.host);
        pv_server_error(hr, status);
        return PV_PHASE_DONE;
    }
    hr->r.srv = pv_router_request_server(&hr->r, hr->lgroup, hr->r.host);
    pv_stats_post_read(hr);
    if (hr->r.method_id == HTTP_TRACE) {
        /* NGINX refuses TRACE with the head (ngx_http_process_request_header),
         * by the chosen server's settings, and closes as after any error
         * found there */
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent TRACE method, client: %s", pv_log_client(&hr->r));
        pv_server_error(hr, 405);
        return PV_PHASE_DONE;
    }
    return PV_PHASE_NEXT;
}

/* The log phase: the access log line and the worker's counters. */
static int log_access(pv_hreq_t *hr)
{
    pv_accesslog_write(&hr->r);
    pv_stats_log(hr);
    pv_count(PV_CTR_REQUESTS);
    int cls = hr->r.status / 100;
    if (cls >= 1 && cls <= 5)
        pv_count(PV_CTR_STATUS_1XX + cls - 1);
    return PV_PHASE_NEXT;
}

static void process_head(pv_hreq_t *hr, uint32_t head_end)
{
    pv_hconn_t *c = hr->c;
    if (c->in->size < PV_BUF_SIZE &&
        ((hr->parser.flags & (F_CHUNKED | F_TRANSFER_ENCODING)) || hr->parser.content_length > 0)) {
        /* a body follows the head read into a small buffer: it gets a
         * standard buffer's room, as small bodies are read whole, and what
         * the socket holds of it is read now, as a first read into a
         * standard buffer would have (a chunked body's framing is then
         * checked before an upstream is asked) */
        if (pv_head_grow(c, 0, 0) < 0) {
            conn_nomem(c, "a body buffer");
            return;
        }
        pv_buf_t *b = c->in;
        ssize_t n = c->x.readable ? pv_xprt_read(&c->x, b->data + b->last, b->size - b->last) : 0;
        if (n > 0)
            b->last += (uint32_t)n;
    }
    hr->head_len = head_end;
    hr->c->in->pos = head_end;
    hr->r.request_length = head_end - hr->crlf.added; /* as the bytes arrived */
    /* the head is in: client_header_timeout is over, each phase that
     * waits on the client arms its own */
    pv_timer_del(c->w->loop, &c->timer);
    pv_phases_run(hr);
}

/* Out of memory for what connection c needed: it alone is closed. */
static void conn_nomem(pv_hconn_t *c, const char *what)
{
    pv_cache_nomem(what, c->hr ? pv_log_client(&c->hr->r) : NULL);
    pv_server_close(c);
}

/* Feed the unparsed part of c->in to the parser. Returns 1 when the head
 * is complete, 0 for more input, -1 after answering an error. */
static int parse_more(pv_hconn_t *c)
{
    pv_hreq_t *hr = c->hr;
    pv_buf_t *b = c->in;
    if (b->pos == b->last)
        return 0;
    if (!hr->crlf_begun) {
        pv_http_crlf_init(&hr->crlf, b->pos);
        hr->crlf_begun = 1;
    }
    /* bare LFs of the head become CRLF before any parser sees them */
    size_t last = b->last, crs;
    while ((crs = pv_http_head_crlf(b->data, &last, b->size, &hr->crlf)) != 0) {
        int rc = pv_head_grow(c, crs, crs);
        if (rc == -2) {
            conn_nomem(c, "a large head buffer");
            return -1;
        }
        if (rc < 0) {
            head_refused(hr, pv_head_too_big(c));
            return -1;
        }
        b = c->in;
    }
    b->last = (uint32_t)last;
    char *start = b->data + b->pos;
    size_t len = b->last - b->pos;
    if (!hr->line_checked) {
        /* the request line is checked whole, before any of it is parsed */
        size_t skip = 0;
        while (skip < len && (start[skip] == '\r' || start[skip] == '\n'))
            skip++;
        char *lf = memchr(start + skip, '\n', len - skip);
        if (!lf)
            return 0;
        hr->line_checked = 1;
        int st = pv_reqhead_check_line(hr, start + skip, lf);
        if (st == PV_REQHEAD_HTTP09) {
            process_head(hr, (uint32_t)(lf + 1 - b->data));
            return 1;
        }
        if (st) {
            head_refused(hr, st);
            return -1;
        }
    }
    llhttp_errno_t e = llhttp_execute(&hr->parser, start, len);
    if (e == HPE_OK) {
        b->pos = b->last;
        return 0;
    }
    if (e == HPE_PAUSED) {
        uint32_t end = (uint32_t)(llhttp_get_error_pos(&hr->parser) - b->data);
        process_head(hr, end);
        return 1;
    }
    head_refused(hr, pv_reqhead_parse_error(hr, e, start, len));
    return -1;
}

/* Read and parse request heads on an idle or reading connection. */
static void handle_input(pv_hconn_t *c)
{
    for (;;) {
        if (c->flags & PV_HC_F_CLOSING)
            return;
        if (c->hr && (c->hr->handling || c->hr->acc.waiting || !pv_outq_empty(&c->hr->cq) || c->hr->resp_done))
            return;
        if (c->in && c->in->pos < c->in->last) {
            if (!c->hr) {
                c->hr = req_alloc(c);
                if (!c->hr) {
                    conn_nomem(c, "a request");
                    return;
                }
                pv_timer_set(c->w->loop, &c->timer, (uint64_t)c->hr->r.srv->client_header_timeout);
            }
            int rc = parse_more(c);
            if (rc != 0)
                return;
        }
        if (!c->x.readable)
            return;
        if (!c->in && !(c->in = pv_head_buf(c))) {
            conn_nomem(c, "a head buffer");
            return;
        }
        if (pv_head_room(c) == 0) {
            int rc = c->hr ? pv_head_grow(c, 1, 0) : -1;
            if (rc == -2) {
                conn_nomem(c, "a large head buffer");
                return;
            }
            if (rc < 0) {
                /* still no whole request line, or stuck in the target: 414 */
                int st = pv_head_too_big(c);
                if (!c->hr && !(c->hr = req_alloc(c))) {
                    conn_nomem(c, "a request");
                    return;
                }
                head_refused(c->hr, st);
                return;
            }
        }
        pv_buf_t *b = c->in;
        ssize_t n = pv_xprt_read(&c->x, b->data + b->last, pv_head_room(c));
        if (n == PV_AGAIN) {
            if (!c->hr && b->last == 0) {
                /* idle again: hold no buffer */
                pv_buf_put(b);
                c->in = NULL;
            }
            return;
        }
        if (n < 0) {
            pv_server_close(c);
            return;
        }
        if (n == 0) {
            /* a client closing between requests is normal; mid-head it is
             * logged like NGINX does but nothing can be answered */
            if (c->hr)
                pv_log_r(&c->hr->r, PV_LOG_INFO, "client prematurely closed connection, client: %s", pv_log_client(&c->hr->r));
            pv_server_close(c);
            return;
        }
        b->last += (uint32_t)n;
    }
}

/* ---- request completion and keepalive ------------------------------------ */

/* A zero delay, armed while connections wait in the ready list, so the
 * loop looks at its sockets without sleeping and then serves them. */
static __thread pv_timer_t ready_timer;

static void ready_timer_cb(pv_timer_t *t)
{
    PV_UNUSED(t);
}

/* Connections whose next request is already buffered, or whose socket
 * may hold it: a request that ends never reads the next one from inside
 * its own call chain, so a client that keeps sending (a long pipeline,
 * or each request as soon as the last answer arrives) cannot grow the
 * stack. Served from the worker's before-sleep hook, those ready now
 * only: one that is ready again (its client was quick) waits for the
 * next turn, after the loop has looked at every other socket. A
 * connection closed meanwhile has its flag cleared and is passed. */
static void run_ready(pv_worker_t *w)
{
    pv_hconn_t *list = ready_head;
    ready_head = NULL;
    while (list) {
        pv_hconn_t *c = list;
        list = c->ready_next;
        if (!(c->flags & PV_HC_F_READY))
            continue;
        c->flags &= ~PV_HC_F_READY;
        handle_input(c);
        pv_log_req_set(NULL); /* a request it started named itself */
    }
    if (ready_head) {
        if (!ready_timer.cb)
            pv_timer_init(&ready_timer, ready_timer_cb, NULL);
        pv_timer_set(w->loop, &ready_timer, 0);
    }
}

static void mark_ready(pv_hconn_t *c)
{
    if (c->flags & PV_HC_F_READY)
        return;
    c->flags |= PV_HC_F_READY;
    c->ready_next = ready_head;
    ready_head = c;
}

void pv_server_request_done(pv_hreq_t *hr)
{
    pv_hconn_t *c = hr->c;
    if (pv_mirror_hold(hr, pv_server_request_done))
        return; /* the answer is out; the request ends with its last mirror */
    pv_worker_t *w = c->w;
    pv_request_t *r = &hr->r;
    r->body_bytes_sent = r->bytes_sent > hr->resp_head_bytes ? r->bytes_sent - hr->resp_head_bytes : 0;
    /* the head sent is whole in hr->out until the request ends, whatever
     * the body did; $sent_http_NAME indexes it only if a log asks */
    if (hr->out && hr->resp_head_bytes && !r->resp_headers)
        r->sent_head = (pv_str_t){hr->out->data, hr->resp_head_bytes};
    pv_phases_log(hr);
    int keep = hr->keepalive && hr->body_done && !(c->flags & (PV_HC_F_EOF | PV_HC_F_ORPHAN));
    int64_t ka_timeout = req_lconf(hr)->keepalive_timeout;

    /* bytes after this request (pipelining) sit in bin or in */
    if (hr->bin && hr->bin->pos < hr->bin->last) {
        pv_buf_put(c->in);
        c->in = hr->bin;
        hr->bin = NULL;
    }
    const pv_loc_conf_t *lc = req_lconf(hr);
    int linger = !keep && pv_linger_wanted(c, lc, !hr->body_done);
    int64_t linger_time = lc->lingering_time, linger_timeout = lc->lingering_timeout;
    pv_server_req_free(hr);
    c->hr = NULL;
    if (linger) {
        pv_linger_start(c, linger_time, linger_timeout);
        return;
    }
    if (!keep) {
        pv_server_close(c);
        return;
    }
    pv_buf_t *b = c->in;
    if (b && b->pos < b->last) {
        c->flags |= PV_HC_F_PIPELINE;
        pv_buf_compact(b);
        pv_timer_set(w->loop, &c->timer, (uint64_t)ka_timeout);
        mark_ready(c);
        return;
    }
    pv_buf_put(b);
    c->in = NULL;
    pv_timer_set(w->loop, &c->timer, (uint64_t)ka_timeout);
    pv_slots_idle_add(c);
    if (c->x.readable)
        mark_ready(c);
}

/* ---- events --------------------------------------------------------------- */

static void conn_io(pv_io_t *io, unsigned events)
{
    pv_hconn_t *c = io->data;
    if (c->flags & PV_HC_F_CLOSING)
        return;
    events = pv_xprt_events(&c->x, events);
    pv_hreq_t *hr = c->hr;
    if (hr && hr->handling) {
        if ((events & PV_EV_WRITE) && (!pv_outq_empty(&hr->cq) || hr->write_wait)) {
            int rc = pv_resp_flush(hr);
            if (rc != PV_OK)
                return;
            hr->write_wait = 0;
            pv_timer_del(c->w->loop, &c->timer);
            hr->handler->proceed(hr);
            if (c->hr != hr || !hr->handling || (c->flags & PV_HC_F_CLOSING))
                return;
        }
        if (events & PV_EV_READ)
            hr->handler->readable(hr);
        return;
    }
    if (hr && !pv_outq_empty(&hr->cq)) {
        if (events & PV_EV_WRITE)
            pv_server_write_rest(hr);
        return;
    }
    if (events & PV_EV_READ)
        handle_input(c);
}

void pv_server_write_rest(pv_hreq_t *hr)
{
    int rc = pv_server_flush(hr);
    if (rc == PV_ERR)
        pv_server_close(hr->c);
    else if (rc == PV_OK && hr->resp_done)
        pv_server_request_done(hr);
}

/* Events of a connection, its request named in error log lines. */
static void conn_io_cb(pv_io_t *io, unsigned events)
{
    pv_hconn_t *c = io->data;
    pv_log_req_set(c->hr ? &c->hr->r : NULL);
    conn_io(io, events);
    pv_log_req_set(NULL);
}

static void conn_timeout(pv_hconn_t *c);

static void conn_timer_cb(pv_timer_t *t)
{
    pv_hconn_t *c = t->data;
    pv_log_req_set(c->hr ? &c->hr->r : NULL);
    conn_timeout(c);
    pv_log_req_set(NULL);
}

static void conn_timeout(pv_hconn_t *c)
{
    pv_hreq_t *hr = c->hr;
    if (!hr || hr->resp_done || !pv_outq_empty(&hr->cq)) {
        /* idle keepalive connection, or a client that stopped reading
         * (send_timeout: NGINX's info line) */
        if (hr && !pv_outq_empty(&hr->cq))
            pv_log(PV_LOG_INFO, "client timed out (110: Connection timed out) while sending to client, client: %s",
                   pv_log_client(&hr->r));
        pv_server_close(c);
        return;
    }
    if (hr->r.srv && req_lconf(hr)->reset_timedout_connection) {
        /* reset_timedout_connection: an RST frees the socket's memory at
         * once, with whatever it still held unsent (NGINX's SO_LINGER 0) */
        pv_log_r(&hr->r, PV_LOG_INFO, "client timed out, client: %s", pv_log_client(&hr->r));
        struct linger lg = {1, 0};
        if (c->x.io.fd >= 0)
            setsockopt(c->x.io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        if (hr->handling) {
            hr->handling = 0;
            hr->handler->abort(hr);
        }
        pv_server_close(c);
        return;
    }
    if (hr->handling) {
        /* body read timeout or send timeout while a handler runs */
        pv_log_r(&hr->r, PV_LOG_INFO, "client timed out, client: %s", pv_log_client(&hr->r));
        if (!hr->resp_head_bytes) {
            hr->handling = 0;
            hr->handler->abort(hr);
            pv_server_error(hr, 408);
        } else {
            pv_server_close(c);
        }
        return;
    }
    pv_log_r(&hr->r, PV_LOG_INFO, "client timed out reading the request head, client: %s", pv_log_client(&hr->r));
    pv_server_error(hr, 408);
}

void pv_server_regroup(pv_worker_t *w, const int *map, int nmap)
{
    pv_hconn_t *c = conns;
    while (c) {
        pv_hconn_t *next = c->next;
        int g = c->group < nmap ? map[c->group] : -1;
        if (g >= 0) {
            c->group = (uint16_t)g;
        } else {
            c->flags |= PV_HC_F_ORPHAN;
            if (!c->hr)
                pv_server_close(c);
        }
        c = next;
    }
}

void pv_server_drain(pv_worker_t *w)
{
    pv_hconn_t *c = conns;
    while (c) {
        pv_hconn_t *next = c->next;
        if (!c->hr)
            pv_server_close(c);
        c = next;
    }
}

/* ---- worker module -------------------------------------------------------- */

static void mod_close_all(pv_worker_t *w)
{
    while (conns)
        pv_server_close(conns);
}

/* Once at start: the core's own phase handlers. */
static int mod_init(void)
{
    pv_phases_register(PV_PHASE_POST_READ, post_read);
    pv_phases_register(PV_PHASE_LOG, log_access);
    pv_log_req_hook(pv_request_id_log);
    pv_phases_core_init();
    return PV_OK;
}

static void mod_exit(pv_worker_t *w)
{
    PV_UNUSED(w);
    pv_router_thread_cleanup();
    pv_uvars_thread_cleanup();
    pv_compress_thread_cleanup();
}

pv_module_t pv_http_module = {
    .name = "http",
    .init = mod_init,
    .accept = pv_server_accept_cb,
    .reload = pv_server_regroup,
    .drain = pv_server_drain,
    .close_all = mod_close_all,
    .reap = pv_server_reap,
    .worker_exit = mod_exit,
};
