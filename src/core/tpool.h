/* A small pool of threads for the system calls that may block on a disk
 * (open, fstat, pread, readdir), as NGINX's `aio threads` uses its
 * thread pool: a worker hands a task over and goes on with its loop; the
 * task's work runs on a pool thread, then its done callback runs back on
 * the worker's loop, woken through the worker's port (an eventfd). */
#ifndef PV_TPOOL_H
#define PV_TPOOL_H

#include <pthread.h>

#include "loop.h"

#define PV_TPOOL_THREADS 4 /* threads of the pool, shared by every worker */

typedef struct pv_task_s pv_task_t;
typedef struct pv_tport_s pv_tport_t;

struct pv_task_s {
    void (*work)(pv_task_t *t); /* on a pool thread: the blocking calls, nothing else */
    void (*done)(pv_task_t *t); /* then on the submitting worker's loop */
    pv_tport_t *port;           /* where done runs */
    pv_task_t *next;
};

/* A worker's completion port. */
struct pv_tport_s {
    pv_io_t io;                 /* the eventfd in the worker's loop */
    pv_loop_t *loop;
    pthread_mutex_t mu;
    pv_task_t *head, *tail;     /* finished tasks waiting for done */
    int pending;                /* submitted and not yet done (the worker's own count) */
};

/* Start the pool's threads once (later calls do nothing). PV_ERR when no
 * thread could be started. */
int pv_tpool_start(void);
/* Make a worker's port on its loop. PV_OK or PV_ERR. */
int pv_tport_init(pv_tport_t *p, pv_loop_t *loop);
/* Close a port: waits for the tasks still running on the pool, then runs
 * their done callbacks. */
void pv_tport_close(pv_tport_t *p);
/* Hand t to the pool; t->done runs on p's loop afterwards. */
void pv_tpool_submit(pv_tport_t *p, pv_task_t *t);

#endif
