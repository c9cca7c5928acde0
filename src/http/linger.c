/* Lingering close (linger.h). A lingering connection holds no request
 * and no buffer: it is on the worker's idle list, so it is the first
 * closed when worker_connections run short, and the drain on a graceful
 * stop closes it as it closes idle keepalive connections. */
#include "linger.h"

#include "../core/loop.h"
#include "../proc/worker.h"
#include "slots.h"

/* reads per turn of the loop before other connections get theirs */
#define LINGER_READS 16

/* where the dropped bytes go */
static __thread char sink[4096];

static void linger_io_cb(pv_io_t *io, unsigned events);
static void linger_timer_cb(pv_timer_t *t);

int pv_linger_wanted(const pv_hconn_t *c, const pv_loc_conf_t *lc, int body_unread)
{
    if (c->w->draining || (c->flags & PV_HC_F_EOF) || c->x.io.fd < 0)
        return 0;
    if (lc->lingering_close == PV_LINGER_ALWAYS)
        return 1;
    return lc->lingering_close == PV_LINGER_ON &&
           (body_unread || (c->in && c->in->pos < c->in->last) || c->x.readable);
}

/* Drop what the client sent; close when it closes, when lingering_time
 * is over, or else wait for more (at most lingering_timeout). */
static void linger_read(pv_hconn_t *c)
{
    pv_loop_t *loop = c->w->loop;
    int reads = 0;
    while (c->x.readable) {
        if (++reads > LINGER_READS) {
            pv_timer_set(loop, &c->timer, 0); /* more next turn */
            return;
        }
        ssize_t n = pv_xprt_read(&c->x, sink, sizeof(sink));
        if (n == PV_AGAIN)
            break;
        if (n <= 0) {
            pv_server_close(c);
            return;
        }
    }
    uint64_t now = pv_loop_now(loop);
    if (now >= c->linger_end) {
        pv_server_close(c);
        return;
    }
    uint64_t wait = c->linger_end - now;
    if (wait > c->linger_wait)
        wait = c->linger_wait;
    pv_timer_set(loop, &c->timer, wait);
}

void pv_linger_start(pv_hconn_t *c, int64_t time, int64_t timeout)
{
    pv_worker_t *w = c->w;
    pv_buf_put(c->in);
    c->in = NULL;
    pv_timer_del(w->loop, &c->timer);
    if (pv_xprt_shutdown(&c->x) != PV_OK) {
        pv_server_close(c);
        return;
    }
    c->flags &= ~PV_HC_F_PIPELINE;
    c->linger_end = pv_loop_now(w->loop) + (uint64_t)time;
    c->linger_wait = timeout > UINT32_MAX ? UINT32_MAX : (uint32_t)timeout;
    c->x.io.cb = linger_io_cb;
    pv_timer_init(&c->timer, linger_timer_cb, c);
    pv_slots_idle_add(c);
    linger_read(c);
}

static void linger_io_cb(pv_io_t *io, unsigned events)
{
    pv_hconn_t *c = io->data;
    if (c->flags & PV_HC_F_CLOSING)
        return;
    pv_xprt_events(&c->x, events);
    linger_read(c);
}

/* lingering_timeout without a byte, or the end of a turn's reads */
static void linger_timer_cb(pv_timer_t *t)
{
    pv_hconn_t *c = t->data;
    if (c->x.readable)
        linger_read(c);
    else
        pv_server_close(c);
}
