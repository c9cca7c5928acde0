#include "slots.h"

#include <stdlib.h>
#include <string.h>

#include "../core/cache.h"
#include "../core/fault.h"
#include "../core/log.h"
#include "h2.h"

/* Freelist of connection objects, bounded and given back after a burst. */
static __thread pv_cache_t conn_cache = {.name = "connection", .size = sizeof(pv_hconn_t), .max = 1024};

pv_hconn_t *pv_slots_conn_alloc(void)
{
    if (pv_fault_alloc(PV_FAULT_OTHER))
        return NULL;
    pv_hconn_t *c = pv_cache_get(&conn_cache);
    if (!c && !(c = malloc(sizeof(*c))))
        return NULL;
    memset(c, 0, sizeof(*c));
    return c;
}

void pv_slots_conn_free(pv_hconn_t *c)
{
    if (pv_cache_put(&conn_cache, c) < 0)
        free(c);
}

void pv_slots_idle_add(pv_hconn_t *c)
{
    pv_worker_t *w = c->w;
    c->flags |= PV_HC_F_IDLE;
    c->idle_next = NULL;
    c->idle_prev = w->idle_tail;
    if (w->idle_tail)
        w->idle_tail->idle_next = c;
    else
        w->idle_head = c;
    w->idle_tail = c;
}

void pv_slots_idle_del(pv_hconn_t *c)
{
    pv_worker_t *w = c->w;
    if (!(c->flags & PV_HC_F_IDLE))
        return;
    c->flags &= ~PV_HC_F_IDLE;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_tail = c->idle_prev;
}

int pv_slots_reclaim(pv_worker_t *w)
{
    static __thread uint64_t logged_ms, closed;
    pv_hconn_t *c = w->idle_head;
    if (c)
        pv_server_close(c);
    else if (!pv_h2_reclaim(w))
        return 0; /* no HTTP/1 or HTTP/2 connection is idle */
    closed++;
    uint64_t now = pv_loop_now(w->loop);
    if (now - logged_ms >= 1000) {
        logged_ms = now;
        pv_log(PV_LOG_WARN, "%d worker_connections are not enough, closing idle keepalive connections "
               "(%llu closed)", w->conf->worker_connections, (unsigned long long)closed);
        closed = 0;
    }
    return 1;
}
