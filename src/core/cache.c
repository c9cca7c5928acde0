#include "cache.h"

#include <stdlib.h>
#include <time.h>

#include "log.h"

/* this thread's caches, linked on first use */
static __thread pv_cache_t *caches;

static void destroy(pv_cache_t *c, void *obj)
{
    if (c->destroy)
        c->destroy(obj);
    else
        free(obj);
}

void *pv_cache_get(pv_cache_t *c)
{
    void *obj = c->head;
    if (!obj)
        return NULL;
    c->head = *(void **)obj;
    c->n--;
    if (c->n < c->low)
        c->low = c->n;
    return obj;
}

int pv_cache_put(pv_cache_t *c, void *obj)
{
    if (!c->listed) {
        c->listed = 1;
        c->next_cache = caches;
        caches = c;
    }
    if (c->n >= c->max)
        return -1;
    *(void **)obj = c->head;
    c->head = obj;
    c->n++;
    return 0;
}

/* Free the `low` objects nobody took since the last trim: they are beyond
 * what the recent load needed. */
static size_t trim(pv_cache_t *c)
{
    unsigned drop = c->low;
    for (unsigned i = 0; i < drop && c->head; i++) {
        void *obj = c->head;
        c->head = *(void **)obj;
        c->n--;
        destroy(c, obj);
    }
    c->low = c->n;
    return (size_t)drop * c->size;
}

size_t pv_cache_trim_all(void)
{
    size_t freed = 0;
    for (pv_cache_t *c = caches; c; c = c->next_cache)
        freed += trim(c);
    return freed;
}

size_t pv_cache_held(void)
{
    size_t held = 0;
    for (pv_cache_t *c = caches; c; c = c->next_cache)
        held += (size_t)c->n * c->size;
    return held;
}

void pv_cache_drain_all(void)
{
    for (pv_cache_t *c = caches; c; c = c->next_cache) {
        while (c->head) {
            void *obj = c->head;
            c->head = *(void **)obj;
            destroy(c, obj);
        }
        c->n = c->low = 0;
        c->listed = 0;
    }
    caches = NULL;
}

void pv_cache_nomem(const char *what, const char *client)
{
    static __thread time_t last;
    static __thread unsigned long quiet;
    time_t now = time(NULL);
    if (now == last) {
        quiet++;
        return;
    }
    last = now;
    pv_log(PV_LOG_ALERT, "out of memory allocating %s, closing the connection%s%s (%lu more since the last report)",
           what, client ? ", client: " : "", client ? client : "", quiet);
    quiet = 0;
}
