/* `queue N [timeout=T]` in an upstream (NGINX Plus's syntax): a request
 * for which no server can be picked now (every one at max_conns, or out
 * for a while) waits in its worker's queue of the upstream, first in
 * first out, for a server to come free (queue.c). */
#ifndef PV_UPQUEUE_H
#define PV_UPQUEUE_H

#include <stdint.h>

struct pv_upool_s;

/* A waiting request, embedded in its owner. */
typedef struct pv_upwait_s {
    /* A server may have come free: the owner tries to pick again and, if
     * it got one, takes itself out with pv_upqueue_leave(). Staying in
     * means it is still waiting (and keeps its place). */
    void (*retry)(struct pv_upwait_s *w);
    /* Its timeout= ran out; it is out of the queue already. */
    void (*expired)(struct pv_upwait_s *w);
    struct pv_upool_s *pool;
    struct pv_upwait_s *prev, *next;
    uint64_t deadline;            /* loop ms */
    uint8_t queued;
} pv_upwait_t;

/* Queue w behind the others on pool p (its upstream has `queue`): 0, or
 * -1 when the queue holds N already. */
int pv_upqueue_join(struct pv_upool_s *p, pv_upwait_t *w);
/* Take w out (nothing when it is not in). */
void pv_upqueue_leave(pv_upwait_t *w);
/* A server of p's upstream was released on this worker: the first
 * waiters try again, from the loop (not inside the caller). */
void pv_upqueue_kick(struct pv_upool_s *p);
/* Free the pool's queue timer (the pool goes; its queue is empty). */
void pv_upqueue_fini(struct pv_upool_s *p);

#endif
