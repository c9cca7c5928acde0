/* Modules: what a worker thread calls at each point of its life, so the
 * worker knows no module by name (NGINX's init_process / exit_process).
 * Every hook is optional. The program hands the worker its list of
 * modules once, before any worker starts (pv_worker_modules()). */
#ifndef PV_MODULE_H
#define PV_MODULE_H

#include "loop.h"

struct pv_worker_s;
struct pv_wgen_s;

/* Slots a generation has for its modules' state (pv_wgen_t.mod). */
#define PV_MODULES_MAX 24

typedef struct pv_module_s {
    const char *name;  /* for logs */
    int index;         /* slot in pv_wgen_t.mod; set by pv_worker_modules() */
    /* Once at start, before any worker runs: register phase and content
     * handlers. PV_ERR stops the program. */
    int (*init)(void);
    /* Accept handler for the worker's listening sockets (one module has it). */
    pv_io_cb accept;
    /* The worker thread starts; PV_ERR ends it. */
    int (*worker_init)(struct pv_worker_s *w);
    /* Build this module's state for generation g (a snapshot as this
     * worker uses it) into g->mod[index]; old is the generation g
     * replaces (NULL at start), whose state may be carried over. */
    int (*gen_init)(struct pv_worker_s *w, struct pv_wgen_s *g, struct pv_wgen_s *old);
    /* Free g->mod[index] once the generation's last request ended. */
    void (*gen_free)(struct pv_wgen_s *g);
    /* A reload switched the worker to a new snapshot; map[i] is the new
     * listen group of old group i, -1 when its address is gone. */
    void (*reload)(struct pv_worker_s *w, const int *map, int nmap);
    /* A graceful stop begins: no new requests, finish the running ones. */
    void (*drain)(struct pv_worker_s *w);
    /* Close every connection now (fast stop, worker_shutdown_timeout). */
    void (*close_all)(struct pv_worker_s *w);
    /* Another thread asked this worker to look at shared state now
     * (pv_worker_signal(w, PV_WCMD_POKE)). */
    void (*poke)(struct pv_worker_s *w);
    /* Before each wait: free what was closed during this iteration. */
    void (*reap)(struct pv_worker_s *w);
    /* The worker thread ends: free per-thread caches. */
    void (*worker_exit)(struct pv_worker_s *w);
} pv_module_t;

#endif
