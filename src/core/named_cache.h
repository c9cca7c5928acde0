/* Named caches shared by the worker threads and kept across reloads, as
 * NGINX's shared zones are: each config naming a cache takes a reference
 * to the one cache of that name (made on first use, its bound set anew),
 * and the last reference frees it. A cache maps keys (bytes) to values
 * (bytes) until each entry's expiry, bounded by a count of entries, the
 * least recently used going first. One registry per kind of cache, so
 * that two kinds may use the same name. */
#ifndef PV_NAMED_CACHE_H
#define PV_NAMED_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pv_ncache_s pv_ncache_t;

typedef struct {
    pthread_mutex_t lock;
    pv_ncache_t *list;
    size_t ext_size;                /* bytes each cache keeps for its user */
    void (*ext_free)(void *ext);    /* NULL, or run before a cache is freed */
} pv_ncache_registry_t;

#define PV_NCACHE_REGISTRY(ext_size, ext_free) { PTHREAD_MUTEX_INITIALIZER, NULL, (ext_size), (ext_free) }

/* The cache called name in r, holding capacity entries at most (those
 * beyond it dropped now); a reference for the caller, or NULL when out
 * of memory. */
pv_ncache_t *pv_ncache_get(pv_ncache_registry_t *r, const char *name, size_t capacity);
void pv_ncache_ref(pv_ncache_t *c);
void pv_ncache_unref(pv_ncache_t *c);
size_t pv_ncache_capacity(pv_ncache_t *c);
size_t pv_ncache_count(pv_ncache_t *c);

/* The value kept for key while it is valid (an expired one is dropped):
 * copy(value, len, arg) runs under the cache's lock and 1 is returned,
 * else 0. touch: the entry becomes the most recently used. */
int pv_ncache_lookup(pv_ncache_t *c, const void *key, size_t klen, int touch,
                     void (*copy)(const unsigned char *val, size_t len, void *arg), void *arg);
/* Keep val for key until expire (time()), in place of what key had; the
 * least recently used entries go to make room. Nothing is kept by a
 * cache of no capacity, or when out of memory. */
void pv_ncache_store(pv_ncache_t *c, const void *key, size_t klen, const void *val, size_t vlen, int64_t expire);
void pv_ncache_remove(pv_ncache_t *c, const void *key, size_t klen);

/* The user's ext_size bytes (zeroed at first), read and written between
 * pv_ncache_lock() and pv_ncache_unlock(). */
void *pv_ncache_ext(pv_ncache_t *c);
void pv_ncache_lock(pv_ncache_t *c);
void pv_ncache_unlock(pv_ncache_t *c);

#endif
