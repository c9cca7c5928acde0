/* HTTP/2 connections: the nghttp2 session over a transport, the output
 * (frame bytes copied into one buffer, DATA payloads pointing at the
 * handlers' buffers), timers, floods, GOAWAY on drain and reload. */
#include "h2.h"

#include <stdlib.h>
#include <string.h>

#include "../core/cache.h"
#include "../core/counters.h"
#include "../core/fault.h"
#include "../core/log.h"
#include "mirror.h"

#define H2_WBUF_SIZE (2 * PV_BUF_SIZE + 512) /* two full frames and their headers */
#define H2_FRAME_MAX (PV_BUF_SIZE + 64)      /* the most one nghttp2 send hands out */
#define H2_FLOOD_BURST 1000                  /* control frames a client may send at once */
#define H2_FLOOD_RATE_MS 100                 /* then one more every 100 ms */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(preface) - 1)
static const uint8_t settings_empty[9] = {0, 0, 0, NGHTTP2_SETTINGS, 0, 0, 0, 0, 0};
static const uint8_t settings_ack[9] = {0, 0, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, 0, 0, 0};

/* this worker's HTTP/2 connections, and those with work left */
static __thread pv_h2conn_t *conns;
static __thread pv_h2conn_t *dirty_head;
/* its idle connections, the one idle the longest first */
static __thread pv_h2conn_t *idle_head, *idle_tail;
/* closed connections, freed before the loop next waits (an event for
 * one may still be in the loop's batch) */
static __thread pv_h2conn_t *reap_list;
__thread int pv_h2_work;
/* the read buffer every connection of the worker reads into */
static __thread char *rbuf;
static __thread size_t rbuf_size;
static __thread nghttp2_session_callbacks *callbacks;
static __thread nghttp2_option *options;

static __thread pv_cache_t conn_cache = {.name = "h2 connection", .size = sizeof(pv_h2conn_t), .max = 256};

static void h2_io_cb(pv_io_t *io, unsigned events);
static void h2_timer_cb(pv_timer_t *t);
static void h2_process(pv_h2conn_t *hc);
static void h2_read(pv_h2conn_t *hc);
static void h2_finish(pv_h2conn_t *hc);
static void linger_read(pv_h2conn_t *hc);

int pv_h2_preface(const char *p, size_t n)
{
    size_t len = sizeof(preface) - 1;
    if (memcmp(p, preface, n < len ? n : len) != 0)
        return 0;
    return n >= len ? 2 : 1;
}

/* ---- output ------------------------------------------------------------- */

int pv_h2_out_room(const pv_h2conn_t *hc, int k)
{
    return pv_outq_room(&hc->q, k);
}

int pv_h2_out_copy(pv_h2conn_t *hc, const void *p, size_t n)
{
    if (!hc->wbuf && !(hc->wbuf = pv_buf_get_size(H2_WBUF_SIZE)))
        return -1;
    pv_buf_t *b = hc->wbuf;
    if (b->size - b->last < n || !pv_outq_room(&hc->q, 1))
        return -1;
    char *dst = b->data + b->last;
    memcpy(dst, p, n);
    b->last += (uint32_t)n;
    pv_outq_t *q = &hc->q;
    struct iovec *prev = q->n ? &q->iov[q->first + q->n - 1] : NULL;
    if (prev && (char *)prev->iov_base + prev->iov_len == dst)
        prev->iov_len += n; /* frames copied one after another go out as one entry */
    else
        pv_outq_push(q, dst, n);
    return 0;
}

/* Room for another frame from nghttp2. */
static int out_ready(pv_h2conn_t *hc)
{
    if (!pv_outq_room(&hc->q, 8))
        return 0;
    return !hc->wbuf || hc->wbuf->size - hc->wbuf->last >= H2_FRAME_MAX;
}

/* Ask nghttp2 for frames while the output has room. -1 on a fatal error. */
static int gather(pv_h2conn_t *hc)
{
    while (out_ready(hc) && nghttp2_session_want_write(hc->s)) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(hc->s, &data);
        if (n < 0) {
            pv_log(PV_LOG_INFO, "http2 send failed (%s), client: connection %llu", nghttp2_strerror((int)n),
                   (unsigned long long)hc->id);
            return -1;
        }
        if (n == 0)
            break; /* nothing more now, or a DATA frame waits for room */
        if (hc->swallow_ack && n == sizeof(settings_ack) && memcmp(data, settings_ack, (size_t)n) == 0) {
            hc->swallow_ack = 0; /* the client sent no SETTINGS to acknowledge */
            continue;
        }
        if (pv_h2_out_copy(hc, data, (size_t)n) < 0) {
            pv_cache_nomem("an http2 output buffer", NULL);
            return -1;
        }
    }
    return 0;
}

/* Ended streams to free or handlers waiting for their spans to be out. */
static int needs_work(const pv_h2conn_t *hc)
{
    if (hc->dead || hc->ev_head)
        return 1;
    for (const pv_h2_stream_t *st = hc->streams; st; st = st->next)
        if (st->want_proceed)
            return 1;
    return 0;
}

int pv_h2_send(pv_h2conn_t *hc)
{
    if (hc->closing)
        return PV_ERR;
    for (;;) {
        if (gather(hc) < 0) {
            hc->closing = 1;
            pv_h2_dirty(hc);
            return PV_ERR;
        }
        if (pv_outq_empty(&hc->q))
            break;
        int rc = pv_outq_flush(&hc->q, &hc->x, NULL);
        if (rc == PV_ERR) {
            hc->closing = 1;
            pv_h2_dirty(hc);
            return PV_ERR;
        }
        if (rc == PV_AGAIN) {
            hc->stalled = 1;
            pv_timer_set(hc->w->loop, &hc->timer, (uint64_t)hc->send_timeout);
            return PV_AGAIN;
        }
        hc->stalled = 0;
        hc->wbuf->last = 0;
        /* everything queued is out: ended streams can go, and handlers
         * whose spans were written may send more */
        if (needs_work(hc))
            pv_h2_dirty(hc);
        if (!nghttp2_session_want_write(hc->s))
            break;
    }
    if (pv_outq_empty(&hc->q) && hc->wbuf) {
        pv_buf_put(hc->wbuf);
        hc->wbuf = NULL;
    }
    return PV_OK;
}

/* nghttp2 has a DATA frame for a stream: its payload goes out in place. */
static int send_data_cb(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *src, void *ud)
{
    PV_UNUSED(s);
    PV_UNUSED(frame);
    PV_UNUSED(ud);
    return pv_h2_stream_send_data(src->ptr, framehd, length);
}

/* ---- flood accounting ----------------------------------------------------- */

int pv_h2_flood_spend(pv_h2conn_t *hc)
{
    uint64_t now = pv_loop_now(hc->w->loop);
    uint64_t earned = (now - hc->flood_ms) / H2_FLOOD_RATE_MS;
    if (earned) {
        hc->flood_ms += earned * H2_FLOOD_RATE_MS;
        int64_t t = (int64_t)hc->flood_tokens + (int64_t)earned;
        hc->flood_tokens = (int32_t)(t > H2_FLOOD_BURST ? H2_FLOOD_BURST : t);
    }
    if (hc->flood_tokens <= 0)
        return 0;
    hc->flood_tokens--;
    return 1;
}

/* ---- connections ------------------------------------------------------------- */

static int h2_global_init(pv_worker_t *w)
{
    if (callbacks)
        return 0;
    if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&options) != 0)
        return -1;
    pv_h2_stream_callbacks(callbacks);
    nghttp2_session_callbacks_set_send_data_callback(callbacks, send_data_cb);
    /* the window is given back as handlers take the body (back-pressure) */
    nghttp2_option_set_no_auto_window_update(options, 1);
    /* CVE-2023-44487: streams opened and cancelled at once, then GOAWAY */
    nghttp2_option_set_stream_reset_rate_limit(options, 1000, 33);
    /* CVE-2024-28182: a header block in endless CONTINUATION frames */
    nghttp2_option_set_max_continuations(options, 8);
    /* SETTINGS and PING floods: acknowledgements the client does not read */
    nghttp2_option_set_max_outbound_ack(options, 1000);
    nghttp2_option_set_max_settings(options, 32);
    rbuf_size = (size_t)w->conf->http->http2_recv_buffer_size;
    rbuf = malloc(rbuf_size);
    return rbuf ? 0 : -1;
}

static void conn_link(pv_h2conn_t *hc)
{
    hc->prev = NULL;
    hc->next = conns;
    if (conns)
        conns->prev = hc;
    conns = hc;
    pv_worker_t *w = hc->w;
    w->nconns++;
    pv_count_set(PV_CTR_CONNS_OPEN, (uint64_t)w->nconns);
    if (w->nconns > w->trim_peak_conns)
        w->trim_peak_conns = w->nconns;
}

static void conn_unlink(pv_h2conn_t *hc)
{
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    hc->w->nconns--;
    pv_count_set(PV_CTR_CONNS_OPEN, (uint64_t)hc->w->nconns);
}

/* The idle list: connections with no stream and nothing to send, which
 * a newcomer at worker_connections may take the place of. */
static void idle_del(pv_h2conn_t *hc);

static void idle_add(pv_h2conn_t *hc)
{
    if (hc->idle) {
        if (hc->idle_nreq == hc->nreq)
            return;
        idle_del(hc); /* it served a request since: idle from now */
    }
    hc->idle = 1;
    hc->idle_nreq = hc->nreq;
    hc->idle_next = NULL;
    hc->idle_prev = idle_tail;
    if (idle_tail)
        idle_tail->idle_next = hc;
    else
        idle_head = hc;
    idle_tail = hc;
}

static void idle_del(pv_h2conn_t *hc)
{
    if (!hc->idle)
        return;
    hc->idle = 0;
    if (hc->idle_prev)
        hc->idle_prev->idle_next = hc->idle_next;
    else
        idle_head = hc->idle_next;
    if (hc->idle_next)
        hc->idle_next->idle_prev = hc->idle_prev;
    else
        idle_tail = hc->idle_prev;
}

/* The timeouts the connection keeps from its address's default server
 * (copied: a reload may free that snapshot while the connection drains). */
static void conn_settings(pv_h2conn_t *hc, const pv_server_t *srv)
{
    hc->header_timeout = srv->client_header_timeout;
    hc->idle_timeout = srv->conf.keepalive_timeout;
    hc->send_timeout = srv->conf.send_timeout;
    hc->max_requests = srv->conf.keepalive_requests;
    hc->max_time = srv->conf.keepalive_time;
    hc->linger_close = srv->conf.lingering_close;
    hc->linger_time = srv->conf.lingering_time;
    hc->linger_timeout = srv->conf.lingering_timeout;
}

/* Our SETTINGS: the address's default server decides them. */
static int submit_settings(pv_h2conn_t *hc, const pv_server_t *srv)
{
    uint32_t window = (uint32_t)PV_MIN(srv->http2_body_preread_size, (int64_t)NGHTTP2_MAX_WINDOW_SIZE);
    hc->window = window ? window : 1;
    uint32_t hlist = (uint32_t)PV_MIN((int64_t)srv->large_header_buffers_num * srv->large_header_buffers_size,
                                      (int64_t)UINT32_MAX);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)srv->http2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, hlist},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* RFC 8441: WebSocket over a stream */
    };
    if (nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, iv, PV_NELEM(iv)) != 0)
        return -1;
    /* the connection's window covers every stream's */
    int64_t conn_window = (int64_t)window * PV_MAX(srv->http2_max_concurrent_streams, 1);
    if (conn_window > NGHTTP2_MAX_WINDOW_SIZE)
        conn_window = NGHTTP2_MAX_WINDOW_SIZE;
    if (conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
        nghttp2_session_set_local_window_size(hc->s, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) != 0)
        return -1;
    return 0;
}

static pv_h2conn_t *conn_new(pv_worker_t *w, uint16_t group, const struct sockaddr_in6 *peer, uint64_t id)
{
    if (h2_global_init(w) < 0 || pv_fault_alloc(PV_FAULT_OTHER))
        return NULL;
    pv_h2conn_t *hc = pv_cache_get(&conn_cache);
    if (!hc && !(hc = malloc(sizeof(*hc))))
        return NULL;
    memset(hc, 0, sizeof(*hc));
    hc->w = w;
    hc->group = group;
    hc->peer = *peer;
    hc->id = id;
    hc->start_ns = pv_loop_time_ns();
    conn_settings(hc, w->conf->http->listens[group].default_srv);
    hc->flood_tokens = H2_FLOOD_BURST;
    hc->flood_ms = pv_loop_now(w->loop);
    pv_timer_init(&hc->timer, h2_timer_cb, hc);
    if (nghttp2_session_server_new2(&hc->s, callbacks, hc, options) != 0) {
        if (pv_cache_put(&conn_cache, hc) < 0)
            free(hc);
        return NULL;
    }
    if (submit_settings(hc, w->conf->http->listens[group].default_srv) < 0) {
        nghttp2_session_del(hc->s);
        if (pv_cache_put(&conn_cache, hc) < 0)
            free(hc);
        return NULL;
    }
    return hc;
}

/* Hand n bytes from the client to nghttp2. A client whose first frame
 * after the preface is not SETTINGS is taken as if an empty SETTINGS came
 * first, as NGINX takes it (nghttp2 would end the connection); its ACK is
 * not sent. nghttp2's error, or 0. */
static ssize_t h2_feed(pv_h2conn_t *hc, const char *p, size_t n)
{
    const size_t end = H2_PREFACE_LEN + sizeof(hc->head1);
    ssize_t rc;
    if (hc->seen < H2_PREFACE_LEN) {
        size_t k = H2_PREFACE_LEN - hc->seen < n ? H2_PREFACE_LEN - hc->seen : n;
        if ((rc = nghttp2_session_mem_recv(hc->s, (const uint8_t *)p, k)) < 0)
            return rc;
        hc->seen += (uint8_t)k;
        p += k;
        n -= k;
    }
    if (hc->seen >= H2_PREFACE_LEN && hc->seen < end && n) {
        size_t k = end - hc->seen < n ? end - hc->seen : n;
        memcpy(hc->head1 + (hc->seen - H2_PREFACE_LEN), p, k);
        hc->seen += (uint8_t)k;
        p += k;
        n -= k;
        if (hc->seen < end)
            return 0; /* the first frame's head is not complete yet */
        if (hc->head1[3] != NGHTTP2_SETTINGS || (hc->head1[4] & NGHTTP2_FLAG_ACK)) {
            if ((rc = nghttp2_session_mem_recv(hc->s, settings_empty, sizeof(settings_empty))) < 0)
                return rc;
            hc->swallow_ack = 1;
        }
        if ((rc = nghttp2_session_mem_recv(hc->s, hc->head1, sizeof(hc->head1))) < 0)
            return rc;
    }
    if (n && (rc = nghttp2_session_mem_recv(hc->s, (const uint8_t *)p, n)) < 0)
        return rc;
    return 0;
}

/* Start a connection: in the loop, the preface timeout, bytes read so far. */
static void conn_start(pv_h2conn_t *hc, const char *p, size_t n)
{
    conn_link(hc);
    pv_count(PV_CTR_CONNS_ACCEPTED);
    pv_timer_set(hc->w->loop, &hc->timer, (uint64_t)hc->header_timeout);
    if (n) {
        if (h2_feed(hc, p, n) < 0)
            hc->closing = 1;
    }
    h2_process(hc);
    h2_read(hc);
    h2_finish(hc);
}

void pv_h2_accept(pv_worker_t *w, const pv_xprt_t *x, uint16_t group, const struct sockaddr_in6 *peer)
{
    pv_h2_adopt(w, x, group, peer, ++w->next_conn_id, NULL, 0);
}

void pv_h2_adopt(pv_worker_t *w, const pv_xprt_t *x, uint16_t group, const struct sockaddr_in6 *peer,
                 uint64_t id, const char *p, size_t n)
{
    pv_h2conn_t *hc = conn_new(w, group, peer, id);
    pv_xprt_t tx = *x;
    if (!hc) {
        pv_cache_nomem("an http2 connection", NULL);
        pv_xprt_close(&tx);
        return;
    }
    hc->x = tx;
    hc->x.io.cb = h2_io_cb;
    hc->x.io.data = hc;
    if (pv_loop_add(w->loop, &hc->x.io) < 0) {
        nghttp2_session_del(hc->s);
        pv_xprt_close(&hc->x);
        if (pv_cache_put(&conn_cache, hc) < 0)
            free(hc);
        return;
    }
    conn_start(hc, p, n);
}

/* The last mirror of a held stream's request ended: it is freed now. */
static void held_end(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    pv_h2conn_t *hc = st->hc;
    for (pv_h2_stream_t **pp = &hc->held; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    pv_h2_stream_free(st);
    pv_h2_dirty(hc); /* the connection may be idle now */
}

/* Free the ended streams; with hold, one whose request still has mirrors
 * running waits for them, as NGINX's request waits for its background
 * subrequests. */
static void free_dead(pv_h2conn_t *hc, int hold)
{
    while (hc->dead) {
        pv_h2_stream_t *st = hc->dead;
        hc->dead = st->next;
        if (hold && pv_mirror_hold(st->hr, held_end)) {
            st->next = hc->held;
            hc->held = st;
            continue;
        }
        pv_h2_stream_free(st);
    }
}

/* Close now: every stream's request ends, the session goes. Only from the
 * top (never inside nghttp2 or a handler's call). */
static void conn_close(pv_h2conn_t *hc)
{
    pv_worker_t *w = hc->w;
    while (hc->streams)
        pv_h2_stream_kill(hc->streams);
    free_dead(hc, 0);
    while (hc->held) {
        pv_h2_stream_t *st = hc->held;
        hc->held = st->next;
        pv_h2_stream_free(st);
    }
    if (hc->dirty) {
        for (pv_h2conn_t **pp = &dirty_head; *pp; pp = &(*pp)->dirty_next)
            if (*pp == hc) {
                *pp = hc->dirty_next;
                break;
            }
    }
    idle_del(hc);
    pv_timer_del(w->loop, &hc->timer);
    pv_loop_del(w->loop, &hc->x.io);
    pv_xprt_close(&hc->x);
    nghttp2_session_del(hc->s);
    pv_buf_put(hc->wbuf);
    hc->wbuf = NULL;
    conn_unlink(hc);
    hc->closed = 1;
    hc->next = reap_list;
    reap_list = hc;
    pv_h2_work = 1;
}

void pv_h2_dirty(pv_h2conn_t *hc)
{
    if (hc->dirty)
        return;
    hc->dirty = 1;
    hc->dirty_next = dirty_head;
    dirty_head = hc;
    pv_h2_work = 1;
}

void pv_h2_event(pv_h2_stream_t *st, uint8_t ev)
{
    pv_h2conn_t *hc = st->hc;
    if (!st->ev) {
        st->ev_next = NULL;
        if (hc->ev_tail)
            hc->ev_tail->ev_next = st;
        else
            hc->ev_head = st;
        hc->ev_tail = st;
    }
    st->ev |= ev;
    pv_h2_dirty(hc);
}

/* ---- lingering close ------------------------------------------------------- */

/* After its GOAWAY, with no stream left, the connection's write side is
 * shut and what the client still sends (a PING, a late request) is read
 * and dropped until it closes, so that the unread bytes do not make the
 * kernel reset the connection and destroy the answers in flight; as
 * NGINX does, under the default server's lingering_close, lingering_time
 * and lingering_timeout. */
static void linger_start(pv_h2conn_t *hc)
{
    if (!hc->goaway || hc->linger_close == PV_LINGER_OFF || pv_xprt_shutdown(&hc->x) != PV_OK) {
        hc->closing = 1;
        return;
    }
    hc->lingering = 1;
    pv_buf_put(hc->wbuf);
    hc->wbuf = NULL;
    hc->linger_end = pv_loop_now(hc->w->loop) + (uint64_t)hc->linger_time;
    pv_timer_del(hc->w->loop, &hc->timer);
    idle_add(hc); /* the first closed when worker_connections run short */
    linger_read(hc);
}

/* Drop what came; close when the client closes or lingering_time is
 * over, else wait for more, at most lingering_timeout. */
static void linger_read(pv_h2conn_t *hc)
{
    pv_loop_t *loop = hc->w->loop;
    for (int i = 0; hc->x.readable; i++) {
        if (i == 16) {
            pv_timer_set(loop, &hc->timer, 0); /* more next turn */
            return;
        }
        ssize_t n = pv_xprt_read(&hc->x, rbuf, rbuf_size);
        if (n == PV_AGAIN)
            break;
        if (n <= 0) {
            hc->closing = 1;
            return;
        }
    }
    uint64_t now = pv_loop_now(loop);
    if (now >= hc->linger_end) {
        hc->closing = 1;
        return;
    }
    uint64_t wait = hc->linger_end - now;
    pv_timer_set(loop, &hc->timer, wait < (uint64_t)hc->linger_timeout ? wait : (uint64_t)hc->linger_timeout);
}

/* ---- input ---------------------------------------------------------------- */

/* Read and hand bytes to nghttp2: a few reads per turn, so one busy client
 * does not hold the worker; the rest waits for the next turn. */
static void h2_read(pv_h2conn_t *hc)
{
    if (hc->lingering) {
        linger_read(hc);
        return;
    }
    for (int i = 0; i < 4; i++) {
        if (hc->closing || hc->stalled || !hc->x.readable)
            return;
        ssize_t n = pv_xprt_read(&hc->x, rbuf, rbuf_size);
        if (n == PV_AGAIN)
            return;
        if (n <= 0) {
            hc->closing = 1; /* the client closed or failed */
            return;
        }
        ssize_t used = h2_feed(hc, rbuf, (size_t)n);
        if (used < 0) {
            pv_log(PV_LOG_INFO, "client sent invalid http2 data (%s), client connection %llu",
                   nghttp2_strerror((int)used), (unsigned long long)hc->id);
            if (used != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                nghttp2_session_terminate_session(hc->s, used == NGHTTP2_ERR_FLOODED ||
                                                                 used == NGHTTP2_ERR_CALLBACK_FAILURE
                                                             ? NGHTTP2_ENHANCE_YOUR_CALM
                                                             : NGHTTP2_PROTOCOL_ERROR);
            pv_h2_send(hc);
            hc->closing = 1;
            return;
        }
        /* events, then the answers, before the next read */
        h2_process(hc);
    }
    if (hc->closing)
        return;
    if (hc->x.readable)
        pv_h2_dirty(hc);
}

/* ---- the work after nghttp2 returns ------------------------------------------ */

/* Streams whose spans were written out may send more. */
static void run_proceed(pv_h2conn_t *hc)
{
    if (!pv_outq_empty(&hc->q))
        return;
    for (pv_h2_stream_t *st = hc->streams; st && !hc->closing;) {
        pv_h2_stream_t *next = st->next;
        if (st->want_proceed && st->sn == 0)
            pv_h2_stream_proceed(st);
        pv_log_req_set(NULL); /* the stream is named only while it runs */
        st = next;
    }
}

static void h2_process(pv_h2conn_t *hc)
{
    if (hc->lingering)
        return;
    for (int round = 0; round < 8 && !hc->closing; round++) {
        while (hc->ev_head && !hc->closing) {
            pv_h2_stream_t *st = hc->ev_head;
            hc->ev_head = st->ev_next;
            if (!hc->ev_head)
                hc->ev_tail = NULL;
            pv_h2_stream_events(st);
            pv_log_req_set(NULL);
        }
        pv_h2_send(hc);
        run_proceed(hc);
        if (!hc->ev_head)
            break;
    }
    if (hc->closing)
        return;
    if (pv_outq_empty(&hc->q))
        free_dead(hc, 1);
    if (!nghttp2_session_want_read(hc->s) && !nghttp2_session_want_write(hc->s) && pv_outq_empty(&hc->q) &&
        !hc->held) {
        linger_start(hc); /* GOAWAY sent or received and no stream left */
        return;
    }
    if (hc->goaway && !hc->streams && !hc->held && pv_outq_empty(&hc->q)) {
        linger_start(hc);
        return;
    }
    if (!hc->streams && !hc->dead && !hc->held && pv_outq_empty(&hc->q))
        idle_add(hc);
    else
        idle_del(hc);
    if (!hc->stalled && !hc->streams && !pv_timer_armed(&hc->timer) && hc->nreq)
        pv_timer_set(hc->w->loop, &hc->timer, (uint64_t)hc->idle_timeout);
}

/* Back at the top: close the connection if it must go. */
static void h2_finish(pv_h2conn_t *hc)
{
    if (hc->closing)
        conn_close(hc);
}

static void h2_io_cb(pv_io_t *io, unsigned events)
{
    pv_h2conn_t *hc = io->data;
    if (hc->closed)
        return;
    pv_log_req_set(NULL); /* each stream names itself while it runs */
    pv_xprt_events(&hc->x, events);
    if ((events & PV_EV_WRITE) && !pv_outq_empty(&hc->q)) {
        if (pv_h2_send(hc) == PV_OK)
            pv_timer_del(hc->w->loop, &hc->timer);
    }
    h2_read(hc);
    h2_process(hc);
    h2_finish(hc);
    pv_log_req_set(NULL);
}

/* Idle (keepalive_timeout), the preface not sent in time, or output the
 * client does not take (send_timeout): the connection goes. */
static void h2_timer_cb(pv_timer_t *t)
{
    pv_h2conn_t *hc = t->data;
    if (hc->lingering) {
        if (hc->x.readable)
            linger_read(hc); /* the rest of a long read */
        else
            hc->closing = 1; /* nothing came within lingering_timeout */
        h2_finish(hc);
        return;
    }
    if (hc->streams && !hc->stalled)
        return; /* streams keep their own timers */
    if (!hc->stalled) {
        nghttp2_submit_goaway(hc->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->s),
                              NGHTTP2_NO_ERROR, NULL, 0);
        pv_h2_send(hc);
    } else {
        pv_log(PV_LOG_INFO, "client timed out, client connection %llu", (unsigned long long)hc->id);
    }
    hc->closing = 1;
    h2_finish(hc);
}

/* ---- the worker module ---------------------------------------------------------- */

void pv_h2_goaway(pv_h2conn_t *hc)
{
    if (hc->goaway)
        return;
    hc->goaway = 1;
    nghttp2_submit_goaway(hc->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    pv_h2_dirty(hc);
}

static void mod_drain(pv_worker_t *w)
{
    PV_UNUSED(w);
    for (pv_h2conn_t *hc = conns; hc; hc = hc->next)
        pv_h2_goaway(hc);
}

/* A reload: every connection is told to go (GOAWAY) and its open streams
 * finish under the generation they started on; a connection whose
 * address remains is mapped to its new group until then. */
static void mod_reload(pv_worker_t *w, const int *map, int nmap)
{
    PV_UNUSED(w);
    for (pv_h2conn_t *hc = conns; hc; hc = hc->next) {
        int g = hc->group < nmap ? map[hc->group] : -1;
        if (g >= 0) {
            hc->group = (uint16_t)g;
            conn_settings(hc, w->conf->http->listens[g].default_srv);
        }
        pv_h2_goaway(hc);
    }
}

int pv_h2_reclaim(pv_worker_t *w)
{
    PV_UNUSED(w);
    pv_h2conn_t *hc = idle_head;
    if (!hc)
        return 0;
    idle_del(hc);
    if (!hc->lingering) {
        nghttp2_submit_goaway(hc->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->s),
                              NGHTTP2_NO_ERROR, NULL, 0);
        pv_h2_send(hc); /* what the socket takes now; the connection goes either way */
    }
    conn_close(hc);
    return 1;
}

static void mod_close_all(pv_worker_t *w)
{
    PV_UNUSED(w);
    while (conns)
        conn_close(conns);
}



void pv_h2_reap(pv_worker_t *w)
{
    PV_UNUSED(w);
    for (int i = 0; i < 4 && dirty_head; i++) {
        pv_h2conn_t *list = dirty_head;
        dirty_head = NULL;
        for (pv_h2conn_t *hc = list; hc; hc = hc->dirty_next)
            hc->dirty = 0;
        while (list) {
            pv_h2conn_t *hc = list;
            list = hc->dirty_next;
            h2_read(hc);
            h2_process(hc);
            h2_finish(hc);
        }
    }
    while (reap_list) {
        pv_h2conn_t *hc = reap_list;
        reap_list = hc->next;
        if (pv_cache_put(&conn_cache, hc) < 0)
            free(hc);
    }
    pv_h2_work = dirty_head != NULL;
}

static void mod_exit(pv_worker_t *w)
{
    PV_UNUSED(w);
    free(rbuf);
    rbuf = NULL;
    if (callbacks)
        nghttp2_session_callbacks_del(callbacks);
    if (options)
        nghttp2_option_del(options);
    callbacks = NULL;
    options = NULL;
}

pv_module_t pv_h2_module = {
    .name = "http2",
    .reload = mod_reload,
    .drain = mod_drain,
    .close_all = mod_close_all,
    .worker_exit = mod_exit,
};
