/* Worker threads. Each owns an event loop, its listening sockets (one
 * SO_REUSEPORT socket per listen address per worker), its connections and
 * its upstream pools. The main thread talks to workers only through an
 * eventfd and a few atomics. */
#ifndef PV_WORKER_H
#define PV_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../core/loop.h"
#include "../config/conf.h"
#include "../core/module.h"

struct pv_worker_s;

/* One listening socket of one worker. */
typedef struct pv_listener_s {
    pv_io_t io;               /* the listening fd */
    struct pv_worker_s *w;    /* owner */
    int group;                /* index into conf->http->listens */
} pv_listener_t;

#define PV_ACCEPT_PAUSE_MS 100 /* accept back-off after EMFILE/ENFILE */
#define PV_TRIM_MS 250         /* how often cached and freed memory is looked at, while there is any */
#define PV_TRIM_QUIET 250      /* fewer requests than this in PV_TRIM_MS: the loop is quiet */

/* Commands from the main thread. */
/* Commands from the main thread, and POKE from another worker: every
 * module's poke hook runs. */
enum { PV_WCMD_NONE = 0, PV_WCMD_RELOAD = 1, PV_WCMD_QUIT = 2, PV_WCMD_STOP = 4, PV_WCMD_POKE = 8 };

/* A config snapshot as one worker uses it: the snapshot and what each
 * module built for it (the upstream pools). Requests keep the generation
 * they started under, so after a reload in-flight requests finish on the
 * old snapshot; a retired generation is freed when its last request ends. */
typedef struct pv_wgen_s {
    pv_conf_t *conf;           /* snapshot (a reference is held) */
    void *mod[PV_MODULES_MAX]; /* per-module state, by pv_module_t.index */
    int live;                  /* requests running under this generation */
    struct pv_wgen_s *next;    /* older retired generations */
} pv_wgen_t;

typedef struct pv_worker_s {
    int id;                    /* 1-based, shown in logs */
    pthread_t thread;
    pv_loop_t *loop;
    pv_conf_t *conf;           /* gen->conf: the snapshot new requests use */
    pv_wgen_t *gen;            /* current generation */
    pv_wgen_t *retired;        /* older generations with requests still running */
    pv_conf_t *next_conf;      /* handed over by a reload (with next_fds), read on PV_WCMD_RELOAD */
    int *next_fds;             /* the listening fds for next_conf's listen groups */
    atomic_int reloads;        /* reloads applied; the main thread waits for it to move */
    pv_listener_t *listeners;  /* this worker's listening sockets, one per listen group */
    pv_listener_t *old_listeners; /* replaced by a reload; freed before the next wait */
    int nlisteners;
    int evfd;                  /* eventfd the main thread pokes */
    pv_io_t evio;              /* evfd in the loop */
    atomic_int cmd;            /* PV_WCMD_* bits */
    atomic_int finished;       /* set when the thread is about to return */
    int draining;              /* graceful stop in progress */
    int nconns;                /* open client connections (the http module counts them; a drain ends at 0) */
    uint64_t next_conn_id;     /* serial for $connection */
    int reserve_fd;            /* spare descriptor given up to shed a connection on EMFILE */
    int accept_paused;         /* listeners are out of the loop after EMFILE/ENFILE */
    int conn_paused;           /* listeners are out of the loop: every worker_connections slot is busy */
    uint64_t full_logged_ms;   /* when running out of slots was last logged (once a second) */
    uint64_t full_waits;       /* times accepting paused for a slot since that log line */
    struct pv_hconn_s *idle_head; /* idle keepalive connections, oldest first: closed to make room */
    struct pv_hconn_s *idle_tail; /* most recently idle */
    uint64_t shed;             /* connections shed since accepting last paused */
    pv_timer_t accept_timer;   /* resumes accepting after a back-off */
    pv_timer_t shutdown_timer; /* worker_shutdown_timeout during a graceful stop */
    pv_timer_t trim_timer;     /* gives memory back once a burst has passed (PV_TRIM_MS) */
    uint64_t requests;         /* requests started, the trim timer's measure of load */
    uint64_t trim_requests;    /* `requests` at the previous trim tick */
    uint64_t trim_busiest;     /* most requests in one tick since memory was last given back */
    size_t trim_owed;          /* bytes freed from caches since memory was last given back */
    int trim_peak_conns;       /* most connections open since memory was last given back */
} pv_worker_t;

/* The modules every worker runs, in the order their hooks are called
 * (NULL-terminated; the array must outlive the workers). Call once before
 * the first pv_worker_init(): assigns each module its index and runs its
 * init hook. */
int pv_worker_modules(pv_module_t *const *mods);
/* Create the worker's loop and eventfd, adopt the listening fds (fds[i]
 * belongs to conf->http->listens[i]). */
int pv_worker_init(pv_worker_t *w, int id, pv_conf_t *conf, const int *fds, int nfds);
/* Thread entry. */
void *pv_worker_main(void *arg);
/* Build every module's state for the worker's first generation (done by
 * pv_worker_main; for harnesses that drive a worker without its thread). */
int pv_worker_gen_start(pv_worker_t *w);
/* Hand a new snapshot and its listening fds (fds[g] for listen group g)
 * to the worker; it switches on its next loop turn and bumps `reloads`. */
void pv_worker_reload(pv_worker_t *w, pv_conf_t *conf, int *fds);
/* Count a request starting under the current generation; returns it. */
pv_wgen_t *pv_worker_gen_hold(pv_worker_t *w);
/* A request of generation g ended: frees a retired generation when it
 * was the last. */
void pv_worker_gen_release(pv_worker_t *w, pv_wgen_t *g);
/* EMFILE/ENFILE on accept: shed one pending connection through the
 * reserve descriptor and stop accepting for a short while. */
void pv_worker_accept_overload(pv_worker_t *w, int err);
/* Every worker_connections slot is busy and none is idle: stop accepting
 * (newcomers wait in the listen backlog) until a connection closes. */
void pv_worker_accept_full(pv_worker_t *w);
/* Ask the worker to do cmd (thread-safe). */
void pv_worker_signal(pv_worker_t *w, int cmd);
/* The worker running on this thread. */
pv_worker_t *pv_worker_self(void);

#endif
