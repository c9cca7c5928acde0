/* The upstream queue (`queue N [timeout=T]`, NGINX Plus): per worker and
 * pool, a list of requests waiting for a server, oldest first. A server
 * released on this worker kicks the queue at once; a release on another
 * worker, or a server whose fail_timeout ends, is found by a poll every
 * QUEUE_POLL_MS while anything waits. One timer per pool serves both and
 * the timeouts, which come in queue order since every waiter has the
 * same timeout. */
#include "queue.h"

#include "../core/loop.h"
#include "upstream.h"

#define QUEUE_POLL_MS 100

static void queue_timer_cb(pv_timer_t *t);

static void arm(pv_upool_t *p, uint64_t now, uint64_t in)
{
    if (!p->qhead) {
        pv_timer_del(p->loop, &p->qtimer);
        return;
    }
    uint64_t left = p->qhead->deadline > now ? p->qhead->deadline - now : 0;
    pv_timer_set(p->loop, &p->qtimer, left < in ? left : in);
}

int pv_upqueue_join(pv_upool_t *p, pv_upwait_t *w)
{
    if (!p->loop || p->nqueued >= p->cf->queue)
        return -1;
    if (!p->qtimer_set) {
        pv_timer_init(&p->qtimer, queue_timer_cb, p);
        p->qtimer_set = 1;
    }
    uint64_t now = pv_loop_now(p->loop);
    w->pool = p;
    w->deadline = now + (uint64_t)p->cf->queue_timeout;
    w->next = NULL;
    w->prev = p->qtail;
    if (p->qtail)
        p->qtail->next = w;
    else
        p->qhead = w;
    p->qtail = w;
    p->nqueued++;
    w->queued = 1;
    if (p->qhead == w)
        arm(p, now, QUEUE_POLL_MS);
    return 0;
}

void pv_upqueue_leave(pv_upwait_t *w)
{
    if (!w->queued)
        return;
    pv_upool_t *p = w->pool;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->qhead = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->qtail = w->prev;
    w->prev = w->next = NULL;
    w->queued = 0;
    p->nqueued--;
    if (!p->qhead)
        pv_timer_del(p->loop, &p->qtimer);
}

void pv_upqueue_kick(pv_upool_t *p)
{
    if (p->qhead)
        pv_timer_set(p->loop, &p->qtimer, 0);
}

static void queue_timer_cb(pv_timer_t *t)
{
    pv_upool_t *p = t->data;
    uint64_t now = pv_loop_now(p->loop);
    pv_upwait_t *w;
    while ((w = p->qhead) && w->deadline <= now) {
        pv_upqueue_leave(w);
        w->expired(w);
    }
    /* in order, while the first one gets a server */
    while ((w = p->qhead)) {
        w->retry(w);
        if (p->qhead == w)
            break;
    }
    arm(p, now, QUEUE_POLL_MS);
}

void pv_upqueue_fini(pv_upool_t *p)
{
    while (p->qhead) /* none: a generation's pools outlive its requests */
        pv_upqueue_leave(p->qhead);
    if (p->qtimer_set)
        pv_timer_del(p->loop, &p->qtimer);
}
