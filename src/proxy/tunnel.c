/* The tunnel after a 101 (see tunnel.h). Two directions, each with one
 * fixed buffer: upstream to client through `down` (read from the
 * upstream only once the client has taken all of it), client to upstream
 * through the body stream's own buffer (read from the client only once
 * the upstream has taken all of it). One timer on the upstream side is
 * the idle timeout: proxy_read_timeout, re-armed on every event, or
 * proxy_send_timeout when it is shorter and the upstream takes nothing;
 * a client that takes nothing meets send_timeout on the client side. */
#include "tunnel.h"
#include "proxy.h"

#include <errno.h>
#include <string.h>

#include "../core/log.h"
#include "../core/outq.h"
#include "../core/time.h"
#include "../http/body.h"
#include "../http/phases.h"
#include "../http/response.h"
#include "../http/server.h"
#include "../http/timing.h"
#include "../upstream/upstream.h"
#include "../http/accesslog.h"

typedef struct tunnel_s {
    pv_hreq_t *hr;              /* the upgraded request */
    pv_upconn_t *u;             /* the upstream connection; NULL once released */
    pv_buf_t *down;             /* upstream to client: read into, queued to the client from */
    pv_outq_t upq;              /* client to upstream: body stream spans being written */
    pv_tunnel_conf_t cf;
    const pv_handler_t *prev;   /* the handler the tunnel replaced, and its state */
    void *prev_ctx;
    uint8_t down_queued;        /* down's bytes are queued to the client */
    uint8_t client_eof;         /* the client closed (or failed) */
    uint8_t upstream_eof;       /* the upstream closed (or failed) */
} tunnel_t;

static void client_proceed(pv_hreq_t *hr);
static void client_readable(pv_hreq_t *hr);
static void client_abort(pv_hreq_t *hr);
static void client_cleanup(pv_hreq_t *hr);
static void upstream_event_cb(void *owner, unsigned events);
static void upstream_timeout_cb(void *owner);

static const pv_handler_t tunnel_handler = {"tunnel", client_proceed, client_readable, client_abort,
                                          client_cleanup};
static const pv_upconn_ops_t tunnel_upconn_ops = {upstream_event_cb, upstream_timeout_cb};

/* The upstream connection is closed: it carried another protocol. */
static void release_upstream(tunnel_t *t)
{
    pv_upconn_t *u = t->u;
    if (!u)
        return;
    t->u = NULL;
    pv_upstream_release(u, &(pv_upstream_done_t){.upgraded = 1});
}

/* The tunnel is over: the upstream side is closed and the request ends
 * (status 101 in the log) once what is queued to the client is written.
 * The request, and t with it, may be gone on return. */
static void tunnel_end(tunnel_t *t)
{
    pv_hreq_t *hr = t->hr;
    release_upstream(t);
    pv_utry_mark(&hr->r, PV_UTRY_RESPONSE);
    hr->handling = 0;
    pv_resp_finish(hr);
}

/* The idle timer, re-armed on every event as NGINX re-arms its timers. */
static void arm(tunnel_t *t)
{
    int64_t ms = t->cf.read_timeout;
    if (!pv_outq_empty(&t->upq) && t->cf.send_timeout < ms)
        ms = t->cf.send_timeout;
    pv_timer_set(t->u->w->loop, &t->u->timer, (uint64_t)ms);
}

/* Upstream to client. Returns 1 when the request is gone (t with it). */
static int pump_down(tunnel_t *t)
{
    pv_hreq_t *hr = t->hr;
    pv_buf_t *b = t->down;
    for (;;) {
        if (b->pos < b->last) {
            if (!t->down_queued) {
                pv_str_t s = {b->data + b->pos, b->last - b->pos};
                if (pv_resp_room(hr) <= 0)
                    return 0; /* cannot be: the queue drains before down is refilled */
                pv_resp_send_body(hr, &s, 1);
                t->down_queued = 1;
            }
            int rc = pv_resp_flush(hr);
            if (rc == PV_ERR)
                return 1; /* the client is gone: the connection closed */
            if (rc == PV_AGAIN)
                return 0; /* proceed() follows once the client took it */
            b->pos = b->last = 0;
            t->down_queued = 0;
        }
        if (t->upstream_eof) {
            tunnel_end(t);
            return 1;
        }
        if (!t->u->x.readable)
            return 0;
        ssize_t n = pv_xprt_read(&t->u->x, b->data, b->size);
        if (n == PV_AGAIN)
            return 0;
        if (n <= 0) {
            t->upstream_eof = 1; /* its close or an error, as NGINX takes both */
            continue;
        }
        b->pos = 0;
        b->last = (uint32_t)n;
    }
}

/* Client to upstream. Returns 1 when the request is gone (t with it). */
static int pump_up(tunnel_t *t)
{
    pv_hreq_t *hr = t->hr;
    pv_upconn_t *u = t->u;
    for (;;) {
        if (!pv_outq_empty(&t->upq)) {
            uint64_t sent = 0;
            int rc = pv_outq_flush(&t->upq, &u->x, &sent);
            u->sent += sent;
            if (rc == PV_AGAIN)
                return 0;
            if (rc == PV_ERR) {
                tunnel_end(t);
                return 1;
            }
        }
        if (t->client_eof) {
            tunnel_end(t);
            return 1;
        }
        /* everything taken before is written: take and read more */
        pv_str_t spans[4];
        int ns = pv_body_take(hr, spans, 4);
        if (ns < 0) {
            tunnel_end(t);
            return 1;
        }
        for (int i = 0; i < ns; i++)
            pv_outq_push(&t->upq, spans[i].p, spans[i].len);
        if (ns > 0)
            continue;
        if (pv_body_done(hr)) {
            t->client_eof = 1;
            continue;
        }
        int rc = pv_body_read(hr);
        if (rc == PV_AGAIN)
            return 0;
        if (rc == PV_ERR) {
            tunnel_end(t);
            return 1;
        }
    }
}

void pv_tunnel_start(pv_hreq_t *hr, pv_upconn_t *u, pv_buf_t *b, const pv_tunnel_conf_t *cf)
{
    tunnel_t *t = pv_arena_alloc(&hr->arena, sizeof(*t));
    memset(t, 0, sizeof(*t));
    pv_utry_reopen(&hr->r); /* the try lasts until the tunnel closes, as in NGINX */
    t->hr = hr;
    t->u = u;
    t->down = b;
    t->cf = *cf;
    t->prev = hr->handler;
    t->prev_ctx = hr->handler_ctx;
    hr->handler = &tunnel_handler;
    hr->handler_ctx = t;
    hr->handling = 1;
    pv_upstream_attach(u, &tunnel_upconn_ops, t);
    /* the 101 head goes out first, with whatever followed it */
    if (pv_resp_flush(hr) == PV_ERR || pump_down(t) || pump_up(t))
        return;
    arm(t);
}

/* ---- events -------------------------------------------------------------- */

static void upstream_event_cb(void *owner, unsigned events)
{
    tunnel_t *t = owner;
    pv_xprt_events(&t->u->x, events);
    if (t->u->x.writable && !pv_outq_empty(&t->upq) && pump_up(t))
        return;
    if (t->u->x.readable && pump_down(t))
        return;
    arm(t);
}

static void upstream_timeout_cb(void *owner)
{
    tunnel_t *t = owner;
    pv_log_r(&t->hr->r, PV_LOG_INFO, "upstream timed out (%d: %s) while proxying upgraded connection, upstream: %s, client: %s",
           ETIMEDOUT, strerror(ETIMEDOUT), t->cf.upstream, pv_log_client(&t->hr->r));
    tunnel_end(t);
}

/* The client took everything queued: relay more from the upstream. */
static void client_proceed(pv_hreq_t *hr)
{
    tunnel_t *t = hr->handler_ctx;
    if (!pump_down(t))
        arm(t);
}

/* The client sent more, or closed. */
static void client_readable(pv_hreq_t *hr)
{
    tunnel_t *t = hr->handler_ctx;
    if (pv_outq_empty(&t->upq) && pump_up(t))
        return;
    arm(t);
}

/* The request ends early (the client side closed it): drop the upstream. */
static void client_abort(pv_hreq_t *hr)
{
    release_upstream(hr->handler_ctx);
}

/* The request is freed: the tunnel's buffer goes back, then the handler
 * it replaced cleans up its own state. */
static void client_cleanup(pv_hreq_t *hr)
{
    tunnel_t *t = hr->handler_ctx;
    release_upstream(t);
    pv_buf_put(t->down);
    hr->handler = t->prev;
    hr->handler_ctx = t->prev_ctx;
    if (hr->handler && hr->handler->cleanup)
        hr->handler->cleanup(hr);
}

/* The upstream switched protocols (the 101 head is queued): the
 * connection and the bytes after the head go to a tunnel, which ends
 * the request when it closes. */
void pv_proxy_start_tunnel(pv_proxy_t *px)
{
    pv_upconn_t *u = px->u;
    pv_buf_t *b = px->uin;
    pv_tunnel_conf_t cf = {
        .read_timeout = px->loc->conf.proxy_read_timeout,
        .send_timeout = px->loc->conf.proxy_send_timeout,
        .upstream = px->pool->cf->servers[px->server].text,
        .start_ns = px->start_ns,
    };
    pv_proxy_release_server(px, PV_BAL_OK);
    px->u = NULL;
    px->uin = NULL;
    px->resp_done = 1;
    pv_buf_put(px->hbuf); /* the upstream request head is written */
    px->hbuf = NULL;
    pv_tunnel_start(px->hr, u, b, &cf);
}
