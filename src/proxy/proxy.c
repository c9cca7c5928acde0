#include "proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../core/time.h"
#include "../http/brange.h"
#include "../core/tls.h"
#include "../http/headers.h"
#include "../http/phases.h"
#include "../http/redirect.h"
#include "../http/reqbody.h"
#include "../http/server.h"
#include "../http/timing.h"
#include "../http/vars.h"
#include "../http/uvars.h"
#include "../upstream/discovery.h"
#include "../upstream/failure.h"
#include "../upstream/health.h"
#include "../upstream/queue.h"
#include "../upstream/upstream.h"
#include "pcache.h"
#include "pstore.h"
#include "rewrite.h"
#include "tunnel.h"
#include "../http/accesslog.h"

static void start_upstream(pv_proxy_t *px);
static void upstream_write(pv_proxy_t *px);
static void upstream_read(pv_proxy_t *px);
static void upstream_failed(pv_proxy_t *px, pv_upfail_t f, int err, const char *detail);
static void upstream_event_cb(void *owner, unsigned events);
static void upstream_timeout_cb(void *owner);

/* The proxy as owner of an upstream connection. */
static const pv_upconn_ops_t upconn_ops = {upstream_event_cb, upstream_timeout_cb};

static void client_proceed(pv_hreq_t *hr);
static void client_readable(pv_hreq_t *hr);
static void client_abort(pv_hreq_t *hr);
static void client_cleanup(pv_hreq_t *hr);
static void buffer_body(pv_proxy_t *px);
static void body_failed(pv_proxy_t *px, int status);
static inline void proxy_begin(pv_proxy_t *px);
static void sub_targeted(pv_proxy_t *px);
static void proxy_targeted(pv_proxy_t *px);

/* The proxy as the handler producing a client's response. */
static const pv_handler_t proxy_handler = {"proxy", client_proceed, client_readable, client_abort,
                                         client_cleanup};

/* ---- helpers --------------------------------------------------------------- */

static pv_worker_t *px_worker(pv_proxy_t *px)
{
    return px->hr->w;
}

/* Once the body is complete, however its end was learned (its last
 * bytes taken, or an HTTP/2 END_STREAM that came alone after them), a
 * chunked body gets its last chunk, once per attempt. */
static void queue_body_end(pv_proxy_t *px)
{
    if (px->up_frame != PV_FRAME_CHUNKED || px->body_end_queued || !pv_body_done(px->hr))
        return;
    pv_outq_push_last_chunk(&px->uq);
    px->body_end_queued = 1;
}

/* Queue the request body bytes already received toward the upstream,
 * framed as the upstream head announced. Returns -1 after failing the
 * exchange (a broken body), else 0. */
static int queue_body(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_outq_t *q = &px->uq;
    pv_str_t spans[16];

    while (!pv_body_done(hr) && pv_body_buffered(hr)) {
        /* room for the spans, their chunk framing and the last chunk */
        int max;
        if (px->up_frame == PV_FRAME_CHUNKED)
            max = q->nhdr < PV_OUTQ_HDR ? PV_MIN(PV_OUTQ_IOV - q->first - q->n - 3, 16) : 0;
        else
            max = PV_MIN(PV_OUTQ_IOV - q->first - q->n, 16);
        if (max <= 0)
            return 0;
        int ns = pv_body_take(hr, spans, max);
        if (ns < 0) {
            upstream_failed(px, pv_body_error(hr) == 413 ? PV_UPF_CLIENT_BODY_LARGE : PV_UPF_CLIENT_BAD_BODY, 0,
                            NULL);
            return -1;
        }
        if (px->up_frame == PV_FRAME_CHUNKED)
            pv_outq_push_chunkv(q, spans, ns); /* one chunk for what came at once */
        else if (px->up_frame != PV_FRAME_NONE)
            for (int i = 0; i < ns; i++)
                pv_outq_push(q, spans[i].p, spans[i].len);
    }
    queue_body_end(px);
    return 0;
}

/* Give up the upstream connection after a failure, or when the response
 * is abandoned (proxy_next_upstream on a status): it is never reused. */
void pv_proxy_drop_upstream(pv_proxy_t *px)
{
    pv_upconn_t *u = px->u;
    if (!u)
        return;
    px->u = NULL;
    pv_upstream_release(u, &(pv_upstream_done_t){.failed = 1});
}

/* ---- start ----------------------------------------------------------------- */

/* Clear the exchange state for a new exchange on the same request (a
 * subrequest came first), keeping the buffers. */
static void exchange_reset(pv_proxy_t *px)
{
    if (px->dyn)
        pv_proxy_target_done(px);
    pv_buf_t *uin = px->uin, *hbuf = px->hbuf;
    memset(px, 0, offsetof(pv_proxy_t, pipe));
    px->uin = uin;
    if (uin)
        uin->pos = uin->last = 0;
    pv_buf_put(hbuf);
}

/* Build the upstream request head into px->hbuf: first a buffer sized
 * from the client's head (most fit in 1 or 2 KiB; an in-flight request
 * should not hold 16 KiB for them), then a standard one, then one of max
 * bytes. Returns its length, or -1 (logged when memory ran out). */
static ssize_t build_head(pv_proxy_t *px, pv_request_t *r, pv_location_t *loc, int frame, int64_t blen,
                          size_t max)
{
    size_t sizes[3] = {2 * (size_t)px->hr->head_len + 512, PV_BUF_SIZE, max};
    ssize_t n = -1;
    for (int i = 0; i < 3 && n < 0; i++) {
        if (i && sizes[i] <= px->hbuf->size)
            continue;
        pv_buf_put(px->hbuf);
        px->hbuf = pv_buf_get_size(sizes[i]);
        if (!px->hbuf) {
            pv_cache_nomem("an upstream request buffer", pv_log_client(r));
            return -1;
        }
        n = pv_proxy_build_request(r, loc, frame, blen, px->hbuf->data, px->hbuf->size);
    }
    return n;
}

/* The worker's cache of exchange states: one is taken when a request is
 * first proxied and given back when the request is freed; bounded, and
 * trimmed after a burst with the other caches. */
static __thread pv_cache_t px_cache = {.name = "proxy state", .size = sizeof(pv_proxy_t), .max = 256};

/* The request's exchange state, taken from the cache on first use. */
static pv_proxy_t *px_get(pv_hreq_t *hr)
{
    pv_proxy_t *px = hr->handler_ctx;
    if (px)
        return px;
    px = pv_cache_get(&px_cache);
    if (!px) {
        if (!(px = malloc(sizeof(*px))))
            return NULL;
        memset(&px->pipe, 0, sizeof(px->pipe)); /* then left clear by pv_pipe_end() */
    }
    memset(px, 0, offsetof(pv_proxy_t, pipe));
    px->hr = hr;
    hr->handler_ctx = px;
    hr->handler = &proxy_handler;
    return px;
}

/* Send the subrequest sr (hr's request model, rewritten for loc: method
 * GET, the subrequest URI, no body) to loc's proxy_pass and call done with
 * the status once its response has been read to the end. Response header
 * fields are in sr->upstream_headers while done runs. */
static void start_sub(pv_hreq_t *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done)
{
    pv_proxy_t *px = px_get(hr);
    if (!px) {
        done(hr, sr, 500);
        return;
    }
    exchange_reset(px);
    px->hr = hr;
    px->r = sr;
    px->loc = loc;
    px->sub_done = done;
    const pv_loc_conf_t *lc = &loc->conf;
    if (PV_PCACHE_ON(&lc->pc)) {
        /* NGINX's auth subrequest is looked up in and stored into the
         * location's cache as any request */
        if (pv_pcache_sub_start(hr, sr, &(pv_pcache_use_t){&lc->pc, lc->hdr.ignore, lc->proxy_temp_path, 0, NULL},
                                done))
            return;
        if (sr->pcache)
            px->sub_done = pv_pcache_sub_done;
    }
    pv_body_hold(hr);
    if (loc->proxy_pass->cv) {
        px->targeted = sub_targeted;
        if (pv_proxy_target(px) == PV_OK)
            sub_targeted(px);
        return;
    }
    px->pool = pv_upstream_pool(hr->gen, loc->proxy_pass->upstream->index);
    sr->proxy_host = loc->proxy_pass->proxy_host;
    if (!sr->res_allow || pv_proxy_residency(px) == PV_OK)
        sub_targeted(px);
}

/* The subrequest's target is known: its head, then the upstream. */
static void sub_targeted(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *sr = px->r;
    px->up_frame = PV_FRAME_NONE;
    ssize_t n = build_head(px, sr, px->loc, PV_FRAME_NONE, 0, PV_BUF_SIZE);
    if (n < 0) {
        px->sub_done(hr, sr, 500);
        return;
    }
    px->hbuf->last = (uint32_t)n;
    px->upstream_keep = (uint8_t)pv_proxy_request_keeps(px->loc);
    hr->handling = 1;
    start_upstream(px);
}

/* The upstream head, once the body's framing is known: its length when
 * it was read whole or has a Content-Length, else chunked (HTTP/1.1).
 * 0, or -1 after answering. */
static int prepare_head(pv_proxy_t *px, int send_body)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    pv_location_t *loc = px->loc;
    int64_t blen = 0;
    if (hr->rb && send_body) {
        /* read whole: sent with its length, whatever the client framed */
        px->up_frame = PV_FRAME_LENGTH;
        blen = (int64_t)pv_reqbody_len(hr);
    } else if (loc->conf.proxy_set_body) {
        /* the head carries the body proxy_set_body makes */
        px->up_frame = PV_FRAME_NONE;
    } else if (loc->conf.proxy_pass_request_body && !(r->flags & PV_REQ_F_BODY_DROPPED) &&
               (r->flags & PV_REQ_F_HAS_CL) && r->content_length == 0) {
        /* "Content-Length: 0" is passed on, as NGINX does */
        px->up_frame = PV_FRAME_LENGTH;
    } else if (!send_body) {
        px->up_frame = PV_FRAME_NONE;
    } else if (r->content_length >= 0) {
        px->up_frame = PV_FRAME_LENGTH;
        blen = r->content_length;
    } else {
        px->up_frame = PV_FRAME_CHUNKED; /* HTTP/1.1: an HTTP/1.0 upstream's body is read whole */
    }
    ssize_t n = build_head(px, r, loc, px->up_frame, blen, 256 * 1024);
    if (n < 0) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return -1;
    }
    px->hbuf->last = (uint32_t)n;
    return 0;
}

static void proxy_start(pv_hreq_t *hr)
{
    const pv_loc_conf_t *lc = &hr->r.loc->conf;
    if (PV_PCACHE_ON(&lc->pc) &&
        pv_pcache_start(hr, &(pv_pcache_use_t){&lc->pc, lc->hdr.ignore, lc->proxy_temp_path, 0, pv_proxy_resume}))
        return; /* answered from the cache, or waiting for its lock */
    pv_proxy_t *px = px_get(hr);
    if (!px) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return;
    }
    pv_request_t *r = &hr->r;
    pv_location_t *loc = r->loc;
    if (px->sub_done)
        exchange_reset(px);
    px->hr = hr;
    px->r = r;
    px->loc = loc;
    if (loc->proxy_pass->cv) {
        px->targeted = proxy_targeted;
        if (pv_proxy_target(px) == PV_OK)
            proxy_begin(px);
        return;
    }
    px->pool = pv_upstream_pool(hr->gen, loc->proxy_pass->upstream->index);
    r->proxy_host = loc->proxy_pass->proxy_host;
    if (!r->res_allow || pv_proxy_residency(px) == PV_OK)
        proxy_begin(px);
}

/* The target is known: the body's handling, then the upstream (inlined
 * into the static path; a run-time target calls proxy_targeted()). */
static inline __attribute__((always_inline)) void proxy_begin(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    pv_location_t *loc = px->loc;
    int has_body = !pv_body_done(hr);
    /* after error_page's redirect the body is not passed on, as NGINX
     * discards it; proxy_set_body replaces it */
    int pass_body = loc->conf.proxy_pass_request_body && !(r->flags & PV_REQ_F_BODY_DROPPED);
    int send_body = pass_body && has_body && !loc->conf.proxy_set_body;
    if ((!pass_body || loc->conf.proxy_set_body) && has_body) {
        /* the body is not sent; the connection cannot be reused after it */
        r->flags &= ~PV_REQ_F_KEEPALIVE;
    }
    pv_body_hold(hr);
    px->upstream_keep = (uint8_t)pv_proxy_request_keeps(loc);
    hr->handling = 1;

    /* answered as the body is first read, whatever has arrived (NGINX) */
    if ((r->flags & PV_REQ_F_EXPECT_CONTINUE) && r->http_major == 1 && r->http_minor == 1 &&
        (r->flags & (PV_REQ_F_HAS_CL | PV_REQ_F_CHUNKED))) {
        px->expect_sent = 1;
        if (pv_resp_continue(hr) == PV_ERR)
            return;
    }
    /* NGINX reads the whole body before asking an upstream unless
     * proxy_request_buffering is off, and always when a body of unknown
     * length goes to an HTTP/1.0 upstream */
    if (send_body && !(r->flags & PV_REQ_F_UPGRADE) &&
        (loc->conf.proxy_request_buffering || (r->content_length < 0 && loc->conf.proxy_http_version != 11))) {
        px->buffering = 1;
        buffer_body(px);
        return;
    }
    if (send_body && !(r->flags & PV_REQ_F_UPGRADE)) {
        /* unbuffered: a body whole already goes as a buffered one */
        int status, rc = pv_reqbody_arrived(hr, &status);
        if (rc == PV_ERR) {
            body_failed(px, status);
            return;
        }
    }
    if (prepare_head(px, send_body) < 0)
        return;
    start_upstream(px);
}

static void proxy_targeted(pv_proxy_t *px)
{
    proxy_begin(px);
}

/* The body could not be read: a broken or too large one (400, 413), a
 * temp file failure (500), or the client went away (0). */
static void body_failed(pv_proxy_t *px, int status)
{
    if (status) {
        px->hr->handling = 0;
        pv_resp_error(px->hr, status);
    } else {
        pv_resp_abort(px->hr);
    }
}

/* More of the body arrived while it is read whole into memory or a temp
 * file (proxy_request_buffering): ask the upstream once it is all here. */
static void buffer_body(pv_proxy_t *px)
{
    int status, rc = pv_reqbody_read(px->hr, &status);
    if (rc == PV_ERR) {
        body_failed(px, status);
        return;
    }
    if (rc != PV_OK || prepare_head(px, 1) < 0)
        return;
    px->buffering = 0;
    start_upstream(px);
}

/* Pick a server and a connection, queue the request and start writing. */
static void start_upstream(pv_proxy_t *px)
{
    pv_worker_t *w = px_worker(px);
    pv_upool_t *pool = px->pool;
    uint64_t now = pv_loop_now(w->loop);
    int first = !px->picking;
    if (!px->picking && pv_proxy_pick_init(px) < 0) {
        upstream_failed(px, PV_UPF_NO_LIVE, 0, NULL);
        return;
    }
    int s = pv_upstream_get(pool, &px->pick, now);
    if (s == PV_UPSTREAM_NO_BUDGET) {
        /* the retry is refused: the failure it follows is the answer */
        pv_log_r(&px->hr->r, PV_LOG_ERR, "retry budget of upstream \"%s\" exhausted, client: %s", pool->cf->name,
               pv_log_client(&px->hr->r));
        pv_proxy_answer_failure(px, px->last_fail ? (pv_upfail_t)px->last_fail : PV_UPF_NO_LIVE);
        return;
    }
    pv_utry_start(px->r, first);
    if (first)
        px->start_ns = px->r->utry->start_ns; /* the exchange's clock starts with its first try, as NGINX's */
    if (s < 0) {
        if (!pv_proxy_queue_wait(px, start_upstream))
            upstream_failed(px, PV_UPF_NO_LIVE, 0, NULL);
        return;
    }
    pv_upqueue_leave(&px->qwait);
    px->server = s;
    pv_proxy_stat_try(px);
    char text[64];
    pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr), pv_upstream_server_text(pool, s, text, sizeof(text)));

    /* a retry after a stale pooled connection takes a new one */
    const pv_upstream_tls_t *tls = px->loc->proxy_pass->tls;
    pv_upconn_t *u = px->fresh ? NULL : pv_upstream_take_idle(pool, s, !pv_proxy_idempotent(px->r->method_id), tls);
    px->fresh = 0;
    px->reused = u != NULL;
    if (!u) {
        u = pv_upstream_connect(w, pool, s, tls, tls && tls->name_cv ? pv_proxy_tls_name(px)
                                : px->dyn & PV_PROXY_DYN_HOST ? px->dyn_host : NULL, pv_proxy_tls_certs(px),
                                pv_proxy_bind(px));
        if (!u) {
            upstream_failed(px, PV_UPF_CONNECT, errno, NULL);
            return;
        }
    }
    pv_upstream_attach(u, &upconn_ops, px);
    u->log_req = &px->hr->r;
    px->u = u;
    pv_uresp_init(&px->rp, (px->r->flags & PV_REQ_F_HEAD) && !px->r->upstream_method.len);
    px->rp.upgrade_asked = !px->sub_done && (px->r->flags & PV_REQ_F_UPGRADE);
    px->sent_before = u->sent;
    px->head_sent = px->req_done = px->resp_started = px->body_end_queued = 0;
    pv_outq_reset(&px->uq);
    pv_outq_push(&px->uq, px->hbuf->data, px->hbuf->last);
    if (!px->sub_done && (queue_body(px) < 0 || px->u != u))
        return; /* the buffered body was refused */
    u->requests++;
    if (!u->connected) {
        pv_timer_set(w->loop, &u->timer, (uint64_t)px->loc->conf.proxy_connect_timeout);
        return;
    }
    pv_utry_pooled(px->r);
    upstream_write(px);
}

/* ---- request direction ------------------------------------------------------- */

static void upstream_write(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_worker_t *w = px_worker(px);
    pv_upconn_t *u = px->u;
    const pv_loc_conf_t *lc = &px->loc->conf;

    for (;;) {
        if (!pv_outq_empty(&px->uq)) {
            uint64_t sent = 0;
            int rc = pv_outq_flush(&px->uq, &u->x, &sent);
            u->sent += sent;
            pv_utry_bytes(px->r, sent, 0);
            if (sent)
                px->head_sent = 1;
            if (rc == PV_AGAIN) { /* proxy_connect_timeout covers a TLS handshake, as in NGINX */
                pv_timer_set(w->loop, &u->timer, (uint64_t)(pv_tls_handshaking(&u->x) ? lc->proxy_connect_timeout : lc->proxy_send_timeout));
                return;
            }
            if (rc == PV_ERR) {
                upstream_failed(px, PV_UPF_SEND, errno, NULL);
                return;
            }
        }
        px->head_sent = 1;
        if (!px->sub_done && pv_body_done(hr) && px->up_frame == PV_FRAME_CHUNKED && !px->body_end_queued) {
            queue_body_end(px); /* the end came without bytes: its last chunk is still due */
            continue;
        }
        if (pv_body_done(hr) || px->sub_done) {
            if (!px->req_done) {
                px->req_done = 1;
                if (!px->resp_head_done)
                    pv_timer_set(w->loop, &u->timer, (uint64_t)lc->proxy_read_timeout);
            }
            return;
        }
        if (pv_body_buffered(hr)) {
            if (queue_body(px) < 0 || px->u != u)
                return;
            continue;
        }
        /* everything taken is written: read more of the body */
        int rc = pv_body_read(hr);
        if (rc == PV_AGAIN)
            return;
        if (rc == PV_ERR) {
            pv_resp_abort(hr);
            return;
        }
    }
}

/* ---- response direction ------------------------------------------------------ */

/* Finish the exchange once the upstream response is complete. */
static void response_complete(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_upconn_t *u = px->u;
    px->resp_done = 1;
    pv_utry_mark(px->r, PV_UTRY_RESPONSE);
    if (u) {
        pv_upstream_done_t d = {
            .resp_complete = 1,
            .req_complete = px->req_done,
            .early_response = px->resp_early,
            .keep = px->upstream_keep,
            .leftover = px->uin->pos != px->uin->last,
        };
        pv_proxy_release_server(px, PV_BAL_OK);
        px->u = NULL;
        pv_upstream_release(u, &d);
    }
    if (px->sub_done) {
        hr->handling = 0;
        px->sub_done(hr, px->r, px->status);
        return;
    }
    const pv_chunked_t *ck = &px->rp.chunk;
    if (px->resp_frame == PV_FRAME_CHUNKED && ck->tbuf && ck->tlen && !ck->tover)
        hr->resp_trailers = (pv_str_t){ck->tbuf, ck->tlen};
    pv_pstore_done(px);
    if (pv_pipe_upstream_done(px))
        return; /* the client still takes what is held; the pipe ends the response */
    hr->handling = 0;
    pv_resp_finish(hr);
}

/* Nothing more to read now: the read timeout runs once the request is
 * sent, and what the pipe postponed is written (last: a failed write
 * ends the request). */
static void await_upstream(pv_proxy_t *px)
{
    if (px->req_done)
        pv_timer_set(px_worker(px)->loop, &px->u->timer, (uint64_t)px->loc->conf.proxy_read_timeout);
    if (px->resp_head_done)
        pv_resp_flush(px->hr);
}

static void upstream_read(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_worker_t *w = px_worker(px);
    const pv_loc_conf_t *lc = &px->loc->conf;

    for (;;) {
        pv_upconn_t *u = px->u;
        if (!u || !hr->handling)
            return;
        if (px->resp_head_done) {
            /* relay what is read behind the head (so head and body leave
             * in one write); the pipe says when to read on */
            int rc = pv_pipe_body(px);
            if (rc == PV_PIPE_BAD) {
                upstream_failed(px, PV_UPF_INVALID_BODY, 0, NULL);
                return;
            }
            if (rc == PV_PIPE_DONE) {
                response_complete(px);
                return;
            }
            if (rc == PV_PIPE_WAIT)
                return;
        } else if (!px->uin) {
            px->uin = pv_buf_get();
            if (!px->uin) {
                pv_cache_nomem("an upstream response buffer", pv_log_client(px->r));
                pv_resp_abort(px->hr);
                return;
            }
        }
        pv_buf_t *b = px->uin;
        if (b->last == b->size) {
            upstream_failed(px, PV_UPF_HEADER_TOO_BIG, 0, NULL);
            return;
        }
        if (!u->x.readable) {
            await_upstream(px); /* the last read was short: wait for the next edge */
            return;
        }
        size_t max = b->size - b->last;
        if (px->pipe.rate && px->resp_head_done && pv_pipe_rate_wait(px, &max))
            return; /* proxy_limit_rate: the timer reads on */
        ssize_t n = pv_xprt_read(&u->x, b->data + b->last, max);
        if (n == PV_AGAIN) {
            await_upstream(px);
            return;
        }
        if (n < 0) {
            upstream_failed(px, PV_UPF_RESET, errno, NULL);
            return;
        }
        if (n == 0) {
            if (px->resp_head_done && px->resp_frame == PV_FRAME_CLOSE) {
                response_complete(px);
                return;
            }
            upstream_failed(px, PV_UPF_PREMATURE_CLOSE, 0, NULL);
            return;
        }
        px->resp_started = 1;
        px->pipe.read_len += (uint64_t)n;
        pv_utry_bytes(px->r, 0, (uint64_t)n);
        b->last += (uint32_t)n;
        if (px->req_done)
            pv_timer_set(w->loop, &u->timer, (uint64_t)lc->proxy_read_timeout);
        if (!px->resp_head_done) {
            int rc = pv_uresp_read_head(&px->rp, b, (size_t)lc->proxy_buffer_size);
            if (rc == PV_URESP_AGAIN)
                continue;
            if (rc != PV_URESP_DONE) {
                upstream_failed(px, rc == PV_URESP_FULL ? PV_UPF_HEADER_TOO_BIG : PV_UPF_INVALID_HEADER, 0,
                                rc == PV_URESP_FULL ? NULL : px->rp.error);
                return;
            }
            pv_utry_mark(px->r, PV_UTRY_HEADER);
            pv_utry_head(px->r, b->last - b->pos);
            int hrc = pv_proxy_upstream_head(px);
            if (hrc == -3)
                return; /* proxy_intercept_errors: error_page answers */
            if (hrc == -2) {
                /* out of memory: this client alone is cut off */
                pv_resp_abort(px->hr);
                return;
            }
            if (hrc < 0) {
                upstream_failed(px, PV_UPF_INVALID_HEADER, 0, NULL);
                return;
            }
            if (!px->resp_head_done)
                return; /* went on to the next server (proxy_next_upstream) */
            if (px->status == 101) {
                pv_proxy_start_tunnel(px);
                return;
            }
        }
    }
}

/* ---- failures ----------------------------------------------------------------- */

/* proxy_next_upstream: start over on the next server when the location
 * allows it for this condition (a PV_NEXT_F_* bit), tries are left (the
 * server in use was released), the time allows it and the request may
 * be sent again. Returns 1 when restarted. */
static int try_next(pv_proxy_t *px, int cond)
{
    int mask = px->loc->conf.proxy_next_upstream;
    int m = px->r->method_id;
    if (!(mask & cond) || (mask & PV_NEXT_F_OFF) ||
        !(!px->head_sent || pv_proxy_idempotent(m) || (mask & PV_NEXT_F_NON_IDEMPOTENT)) ||
        px->pick.tries == 0 || pv_proxy_next_timed_out(px) || pv_body_rewind(px->hr) != 0)
        return 0;
    if (px->uin)
        px->uin->pos = px->uin->last = 0;
    start_upstream(px);
    return 1;
}

/* A response status proxy_next_upstream names (http_500 ... http_429):
 * its connection is dropped and the next server asked, as NGINX does; the
 * 5xx and 429 count as failures of the server, 403 and 404 do not.
 * Returns 1 when the request went on to another server. */
int pv_proxy_next_on_status(pv_proxy_t *px, int status)
{
    static const struct {
        int status, flag;
    } map[] = {{500, PV_NEXT_F_HTTP_500}, {502, PV_NEXT_F_HTTP_502}, {503, PV_NEXT_F_HTTP_503},
               {504, PV_NEXT_F_HTTP_504}, {403, PV_NEXT_F_HTTP_403}, {404, PV_NEXT_F_HTTP_404},
               {429, PV_NEXT_F_HTTP_429}};
    int flag = 0;
    for (size_t i = 0; i < PV_NELEM(map); i++)
        if (map[i].status == status)
            flag = map[i].flag;
    int mask = px->loc->conf.proxy_next_upstream;
    /* decided before anything is dropped: this response is still the
     * answer when no other server may be asked (NGINX: tries > 1) */
    if (!flag || !(mask & flag) || (mask & PV_NEXT_F_OFF) || px->pick.tries <= 1 || pv_proxy_next_timed_out(px) ||
        !pv_upstream_retry_allowed(px->pool) ||
        !pv_body_rewindable(px->hr) || !(pv_proxy_idempotent(px->r->method_id) || (mask & PV_NEXT_F_NON_IDEMPOTENT)))
        return 0;
    pv_proxy_append_status(px->r, status);
    pv_proxy_release_server(px, status != 403 && status != 404 ? PV_BAL_FAILED : PV_BAL_OK);
    pv_proxy_drop_upstream(px);
    if (!try_next(px, flag))
        pv_proxy_answer_failure(px, PV_UPF_NO_LIVE);
    return 1;
}

/* Whether the upstream cannot have received this request: the exchange
 * failed on a reused connection before any response byte, and either the
 * write itself was refused or the upstream's FIN came before its TCP had
 * acknowledged a byte of the request (it closed the idle connection while
 * the request was on its way). Such a request may be sent again whatever
 * its method. */
static int request_unseen(pv_proxy_t *px, pv_upfail_t f)
{
    if (!px->u || !px->reused || px->resp_started)
        return 0;
    if (!px->head_sent)
        return 1;
    return f == PV_UPF_PREMATURE_CLOSE && pv_upstream_unacked_since(px->u, px->sent_before);
}

static void upstream_failed(pv_proxy_t *px, pv_upfail_t f, int err, const char *detail)
{
    const pv_upfail_info_t *fi = pv_upfail_info(f);
    int unseen = (fi->flags & PV_UPF_F_TRANSPORT) && request_unseen(px, f);

    pv_proxy_log_failure(px, f, err, detail);
    pv_proxy_stat_fail(px, f);
    /* the classic race: a pooled connection the upstream closed while idle.
     * Nothing of the response arrived, so try once more on a new one. */
    if ((fi->flags & PV_UPF_F_TRANSPORT) && px->u && px->reused && !px->resp_started)
        pv_upstream_stale(px->u);
    if ((fi->flags & PV_UPF_F_TRANSPORT) && px->reused && px->pick.held && !px->resp_started &&
        (unseen || pv_proxy_idempotent(px->r->method_id)) && pv_body_rewind(px->hr) == 0) {
        pv_proxy_release_server(px, PV_BAL_DROP);
        pv_proxy_drop_upstream(px);
        px->pick.tried[px->server >> 6] &= ~(1ull << (px->server & 63));
        px->reused = 0;
        px->fresh = 1;
        px->r->upstream_addr[0] = '\0';
        pv_utry_drop(px->r); /* the stale try is not one */
        start_upstream(px);
        return;
    }
    pv_proxy_release_server(px, (fi->flags & PV_UPF_F_SERVER) ? PV_BAL_FAILED : PV_BAL_OK);
    pv_proxy_drop_upstream(px);
    if (f == PV_UPF_NO_LIVE) {
        /* as NGINX: the upstream's name stands for the server it found none of */
        pv_proxy_append_list(px->r->upstream_addr, sizeof(px->r->upstream_addr), px->pool->cf->name);
        pv_proxy_answer_failure(px, f);
        return;
    }
    if (!(fi->flags & PV_UPF_F_CLIENT))
        pv_proxy_append_status(px->r, fi->status);
    if (px->resp_head_done && !px->sub_done) {
        /* part of the response is out or queued: the connection is closed mid-body so it
         * cannot look complete (what was read goes first unless it was invalid) */
        pv_pipe_upstream_cut(px, f != PV_UPF_INVALID_BODY);
        return;
    }
    px->last_fail = f;
    if (fi->next && try_next(px, fi->next))
        return;
    pv_proxy_answer_failure(px, f);
}

/* ---- events ------------------------------------------------------------------- */

static void upstream_event_cb(void *owner, unsigned events)
{
    pv_proxy_t *px = owner;
    pv_upconn_t *u = px->u;
    int e, up = pv_proxy_connect_done(px, pv_xprt_events(&u->x, events), &e);
    if (up <= 0) {
        if (up < 0)
            upstream_failed(px, PV_UPF_CONNECT, e, NULL);
        return;
    }
    if (u->x.writable && !px->req_done)
        upstream_write(px);
    if (px->u == u && u->x.readable)
        upstream_read(px);
}

static void upstream_timeout_cb(void *owner)
{
    pv_proxy_t *px = owner;
    pv_upconn_t *u = px->u;
    if (px->pipe.delayed) {
        px->pipe.delayed = 0; /* proxy_limit_rate's wait is over */
        upstream_read(px);
        return;
    }
    pv_upfail_t f = !u->connected || pv_tls_handshaking(&u->x) ? PV_UPF_CONNECT_TIMEOUT
                    : px->req_done                            ? PV_UPF_READ_TIMEOUT : PV_UPF_SEND_TIMEOUT;
    upstream_failed(px, f, ETIMEDOUT, NULL);
}

/* The client took everything queued: relay more of the response. */
static void client_proceed(pv_hreq_t *hr)
{
    pv_proxy_t *px = hr->handler_ctx;
    if (pv_pipe_proceed(px))
        upstream_read(px);
}

/* The client sent something: more body, or (body complete) its close. */
static void client_readable(pv_hreq_t *hr)
{
    pv_proxy_t *px = hr->handler_ctx;
    if (px->buffering) {
        buffer_body(px);
        return;
    }
    if (!pv_body_done(hr) || (px->u && !px->req_done)) {
        /* more of the body, or its end (HTTP/2 can say it after the last
         * bytes were taken) still to be written */
        if (px->u && px->u->connected && pv_outq_empty(&px->uq))
            upstream_write(px);
        return;
    }
    /* body complete: anything readable is a pipelined request or the
     * client closing; only the close matters now */
    const pv_loc_conf_t *lc = &px->loc->conf;
    /* NGINX reads on for a store and for a response the cache may keep
     * (u->cacheable: an entry this request fills, then one being written) */
    const pv_pcache_t *c = hr->r.pcache;
    int keep = lc->proxy_store.on || (px->resp_head_done ? hr->tee != NULL : c && c->ref.fill);
    if (pv_body_client_closed(hr) && !lc->proxy_ignore_client_abort && !keep) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed connection while waiting for upstream, client: %s",
               pv_log_client(&hr->r));
        pv_resp_abort(hr);
    }
}

/* The request ends before the exchange did: drop the upstream side. */
static void client_abort(pv_hreq_t *hr)
{
    pv_proxy_t *px = hr->handler_ctx;
    pv_upqueue_leave(&px->qwait);
    if (px->pool) /* none yet while the name is looked up */
        pv_proxy_release_server(px, PV_BAL_OK);
    pv_proxy_drop_upstream(px);
    if (px->dyn & PV_PROXY_DYN_WAIT)
        pv_proxy_target_done(px); /* the lookup is forgotten */
}

/* The request is freed: its exchange state goes back to the cache. */
static void client_cleanup(pv_hreq_t *hr)
{
    pv_proxy_t *px = hr->handler_ctx;
    pv_pcache_cleanup(hr);
    if (!px)
        return;
    if (px->sub_done == pv_pcache_sub_done)
        pv_pcache_sub_cleanup(hr, px->r); /* the request ended inside its auth subrequest */
    pv_upqueue_leave(&px->qwait);
    if (px->pick.held)
        pv_proxy_release_server(px, PV_BAL_OK);
    if (px->dyn)
        pv_proxy_target_done(px);
    pv_buf_put(px->hbuf);
    pv_buf_put(px->uin);
    pv_pipe_end(&px->pipe);
    if (pv_cache_put(&px_cache, px) < 0)
        free(px);
    hr->handler_ctx = NULL;
}

void pv_proxy_resume(pv_hreq_t *hr)
{
    proxy_start(hr);
}

/* ---- module ---------------------------------------------------------------------- */

static int claims(const pv_location_t *loc)
{
    return loc->proxy_pass != NULL && !loc->proxy_pass->grpc && !loc->proxy_pass->fastcgi; /* grpc.c, fastcgi.c */
}

static int content(pv_hreq_t *hr)
{
    proxy_start(hr);
    return PV_PHASE_DONE;
}

static const pv_content_t proxy_content = {"proxy", claims, content, start_sub};

static int mod_init(void)
{
    pv_phases_content(&proxy_content);
    return PV_OK;
}


pv_module_t pv_proxy_module = {
    .name = "proxy",
    .init = mod_init,
};
