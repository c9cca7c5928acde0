/* Per-thread freelists ("caches") of fixed-size objects, bounded and
 * shrinking. Steady traffic reuses objects without calling malloc; after a
 * burst, pv_cache_trim_all() frees what went unused for a whole interval,
 * so a cache tracks the recent working set instead of the all-time peak.
 * A cached object's first pointer-sized bytes hold the freelist link. */
#ifndef PV_CACHE_H
#define PV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pv_cache_s pv_cache_t;

/* One freelist. Declare it static __thread with .size, .max and
 * optionally .destroy set; the rest starts zeroed. */
struct pv_cache_s {
    const char *name;            /* what it holds, for logs */
    size_t size;                 /* bytes per object (for the accounting) */
    unsigned max;                /* objects kept at most; beyond, put frees */
    void (*destroy)(void *obj);  /* frees one object (NULL: free()) */
    void *head;                  /* first free object */
    unsigned n;                  /* objects in the list */
    unsigned low;                /* fewest objects in the list since the last trim */
    uint8_t listed;              /* linked into this thread's list of caches */
    pv_cache_t *next_cache;      /* this thread's list of caches */
};

/* A cached object, or NULL when the list is empty. */
void *pv_cache_get(pv_cache_t *c);
/* Keep obj for reuse; returns 0, or -1 when the cache is full (the
 * caller frees obj). */
int pv_cache_put(pv_cache_t *c, void *obj);
/* Free the objects of every cache of this thread that stayed unused since
 * the previous call; returns the bytes freed. */
size_t pv_cache_trim_all(void);
/* Objects held by this thread's caches, in bytes. */
size_t pv_cache_held(void);
/* Free every cached object of this thread (thread exit). */
void pv_cache_drain_all(void);
/* Log an allocation that failed, at most once a second per thread (with
 * the count of those not logged in between). what: the object; client:
 * the peer's address text or NULL. */
void pv_cache_nomem(const char *what, const char *client);

#endif
