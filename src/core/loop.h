/* The event loop: epoll in edge-triggered mode, a timer heap and a
 * before-sleep hook. It knows nothing about HTTP. Each worker thread runs
 * one loop; nothing here is shared between threads. */
#ifndef PV_LOOP_H
#define PV_LOOP_H

#include <stdint.h>
#include "common.h"
#include "time.h"

typedef struct pv_loop_s pv_loop_t;
typedef struct pv_io_s pv_io_t;
typedef struct pv_timer_s pv_timer_t;

#define PV_EV_READ 0x01  /* readable, or the peer closed / errored */
#define PV_EV_WRITE 0x02 /* writable */
#define PV_EV_HUP 0x04   /* peer hung up or error on the socket */
#define PV_EV_RDHUP 0x08 /* the peer's FIN arrived (or HUP/error): read to the end, not to a short read */

/* Called with PV_EV_* bits when the fd becomes ready. */
typedef void (*pv_io_cb)(pv_io_t *io, unsigned events);
/* Called when a timer expires; the timer is already disarmed. */
typedef void (*pv_timer_cb)(pv_timer_t *t);
/* Called once per iteration before the loop waits. */
typedef void (*pv_hook_cb)(pv_loop_t *l, void *data);

/* A watched file descriptor. Registered once for both directions
 * (edge-triggered), so readiness changes never cost an epoll_ctl. */
struct pv_io_s {
    int fd;           /* the descriptor; -1 when unused */
    pv_io_cb cb;      /* readiness callback */
    void *data;       /* owner */
};

/* A one-shot deadline. Embedded in its owner; re-arming moves it. */
struct pv_timer_s {
    uint64_t when;    /* monotonic ms when it fires */
    int idx;          /* heap slot, -1 when not armed */
    pv_timer_cb cb;   /* expiry callback */
    void *data;       /* owner */
};

pv_loop_t *pv_loop_new(void);
void pv_loop_free(pv_loop_t *l);
/* Watch io->fd for both directions, edge-triggered. */
int pv_loop_add(pv_loop_t *l, pv_io_t *io);
/* Watch io->fd for reads only (listeners, eventfds), level-triggered. */
int pv_loop_add_level(pv_loop_t *l, pv_io_t *io);
/* Watch io->fd, level-triggered, for the PV_EV_READ / PV_EV_WRITE bits
 * in events; added: it is watched already (the set changes). For sockets
 * a library drives (c-ares), which says what it waits for each time. */
int pv_loop_watch(pv_loop_t *l, pv_io_t *io, unsigned events, int added);
/* Stop watching (before close(), or when handing the fd elsewhere). */
void pv_loop_del(pv_loop_t *l, pv_io_t *io);
/* Initialise a timer (unarmed). */
void pv_timer_init(pv_timer_t *t, pv_timer_cb cb, void *data);
/* Arm or re-arm a timer ms milliseconds from now. */
void pv_timer_set(pv_loop_t *l, pv_timer_t *t, uint64_t ms);
/* Disarm; harmless when not armed. */
void pv_timer_del(pv_loop_t *l, pv_timer_t *t);
static inline int pv_timer_armed(const pv_timer_t *t) { return t->idx >= 0; }
/* Hook run before each wait (flush buffers, reap closed objects). */
void pv_loop_set_hook(pv_loop_t *l, pv_hook_cb cb, void *data);
/* Cached monotonic time of this iteration, in ms. */
uint64_t pv_loop_now(const pv_loop_t *l);
/* The calling thread's loop's time of this iteration in ns (NGINX's
 * ngx_current_msec, finer): what the upstream timings are measured with.
 * pv_now_ns() where no loop runs. */
extern __thread uint64_t pv_loop_ns;
static inline uint64_t pv_loop_time_ns(void)
{
    return pv_likely(pv_loop_ns) ? pv_loop_ns : pv_now_ns();
}
/* Run until pv_loop_stop(). */
void pv_loop_run(pv_loop_t *l);
void pv_loop_stop(pv_loop_t *l);

#endif
