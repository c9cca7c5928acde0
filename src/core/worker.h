/* Worker threads. Each owns an event loop, its listening sockets (one
 * SO_REUSEPORT socket per listen address per worker), its connections and
 * its upstream pools. The main thread talks to workers only through an
 * eventfd and a few atomics. */
#ifndef PV_WORKER_H
#define PV_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "loop.h"
#include "../config/conf.h"

struct pv_hconn_s;
struct pv_upconn_s;
struct pv_upool_s;
struct pv_worker_s;

/* One listening socket of one worker. */
typedef struct pv_listener_s {
    pv_io_t io;               /* the listening fd */
    struct pv_worker_s *w;    /* owner */
    int group;                /* index into conf->http->listens */
} pv_listener_t;

/* Commands from the main thread. */
enum { PV_WCMD_NONE = 0, PV_WCMD_RELOAD = 1, PV_WCMD_QUIT = 2, PV_WCMD_STOP = 4 };

typedef struct pv_worker_s {
    int id;                    /* 1-based, shown in logs */
    pthread_t thread;
    pv_loop_t *loop;
    pv_conf_t *conf;           /* snapshot new requests use (a reference is held) */
    _Atomic(pv_conf_t *) next_conf; /* snapshot handed over by a reload */
    pv_listener_t *listeners;  /* this worker's listening sockets */
    int nlisteners;
    int evfd;                  /* eventfd the main thread pokes */
    pv_io_t evio;              /* evfd in the loop */
    atomic_int cmd;            /* PV_WCMD_* bits */
    atomic_int finished;       /* set when the thread is about to return */
    int draining;              /* graceful stop in progress */
    struct pv_hconn_s *conns;  /* open client connections (for draining) */
    int nconns;                /* their count */
    struct pv_hconn_s *reap;   /* closed client connections, freed before the next wait */
    struct pv_upconn_s *reap_up; /* closed upstream connections, likewise */
    struct pv_upool_s *pools;  /* one per upstream of `conf` */
    int npools;
    uint64_t next_conn_id;     /* serial for $connection */
    uint64_t accept_paused_until; /* EMFILE back-off: loop ms when accepting resumes */
    pv_timer_t accept_timer;   /* resumes accepting after a back-off */
} pv_worker_t;

/* Create the worker's loop and eventfd, adopt the listening fds (fds[i]
 * belongs to conf->http->listens[i]). */
int pv_worker_init(pv_worker_t *w, int id, pv_conf_t *conf, const int *fds, int nfds);
/* Thread entry. */
void *pv_worker_main(void *arg);
/* Ask the worker to do cmd (thread-safe). */
void pv_worker_signal(pv_worker_t *w, int cmd);
/* The worker running on this thread. */
pv_worker_t *pv_worker_self(void);

#endif
