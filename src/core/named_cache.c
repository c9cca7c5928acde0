#include "named_cache.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBUCKETS 1024

typedef struct entry_s {
    struct entry_s *hnext;          /* hash chain */
    struct entry_s *prev, *next;    /* LRU list, most recent first */
    int64_t expire;
    size_t klen, vlen;
    unsigned char data[];           /* the key, then the value */
} entry_t;

struct pv_ncache_s {
    char *name;
    size_t capacity, count;
    int refs;                       /* under the registry's lock */
    pv_ncache_registry_t *registry;
    pthread_mutex_t lock;
    entry_t *head, *tail;
    entry_t *bucket[NBUCKETS];
    struct pv_ncache_s *next;       /* registry */
    _Alignas(max_align_t) unsigned char ext[];
};

static unsigned hash(const unsigned char *k, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h % NBUCKETS;
}

static void lru_unlink(pv_ncache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_front(pv_ncache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(pv_ncache_t *c, entry_t *e)
{
    entry_t **pp = &c->bucket[hash(e->data, e->klen)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    free(e);
}

static entry_t *find(pv_ncache_t *c, const void *key, size_t klen)
{
    for (entry_t *e = c->bucket[hash(key, klen)]; e; e = e->hnext)
        if (e->klen == klen && memcmp(e->data, key, klen) == 0)
            return e;
    return NULL;
}

static pv_ncache_t *make(pv_ncache_registry_t *r, const char *name)
{
    pv_ncache_t *c = calloc(1, sizeof(*c) + r->ext_size);
    if (!c)
        return NULL;
    if (!(c->name = strdup(name))) {
        free(c);
        return NULL;
    }
    c->registry = r;
    pthread_mutex_init(&c->lock, NULL);
    c->next = r->list;
    r->list = c;
    return c;
}

pv_ncache_t *pv_ncache_get(pv_ncache_registry_t *r, const char *name, size_t capacity)
{
    pthread_mutex_lock(&r->lock);
    pv_ncache_t *c = r->list;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c)
        c = make(r, name);
    if (c) {
        c->refs++;
        pthread_mutex_lock(&c->lock);
        c->capacity = capacity;
        while (c->count > c->capacity)
            drop(c, c->tail);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return c;
}

void pv_ncache_ref(pv_ncache_t *c)
{
    pthread_mutex_lock(&c->registry->lock);
    c->refs++;
    pthread_mutex_unlock(&c->registry->lock);
}

void pv_ncache_unref(pv_ncache_t *c)
{
    if (!c)
        return;
    pv_ncache_registry_t *r = c->registry;
    pthread_mutex_lock(&r->lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    for (pv_ncache_t **pp = &r->list; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&r->lock);
    for (entry_t *e = c->head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    if (r->ext_free)
        r->ext_free(c->ext);
    pthread_mutex_destroy(&c->lock);
    free(c->name);
    free(c);
}

size_t pv_ncache_capacity(pv_ncache_t *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->capacity;
    pthread_mutex_unlock(&c->lock);
    return n;
}

size_t pv_ncache_count(pv_ncache_t *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

int pv_ncache_lookup(pv_ncache_t *c, const void *key, size_t klen, int touch,
                     void (*copy)(const unsigned char *val, size_t len, void *arg), void *arg)
{
    int found = 0;
    pthread_mutex_lock(&c->lock);
    entry_t *e = find(c, key, klen);
    if (e && e->expire <= (int64_t)time(NULL)) {
        drop(c, e);
    } else if (e) {
        copy(e->data + e->klen, e->vlen, arg);
        found = 1;
        if (touch) {
            lru_unlink(c, e);
            lru_front(c, e);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void pv_ncache_store(pv_ncache_t *c, const void *key, size_t klen, const void *val, size_t vlen, int64_t expire)
{
    entry_t *e = malloc(sizeof(*e) + klen + vlen);
    if (!e)
        return;
    e->expire = expire;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, val, vlen);
    pthread_mutex_lock(&c->lock);
    entry_t *old = find(c, key, klen);
    if (old)
        drop(c, old);
    while (c->count >= c->capacity && c->tail)
        drop(c, c->tail);
    if (c->capacity > 0) {
        unsigned h = hash(key, klen);
        e->hnext = c->bucket[h];
        c->bucket[h] = e;
        lru_front(c, e);
        c->count++;
        e = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(e);
}

void pv_ncache_remove(pv_ncache_t *c, const void *key, size_t klen)
{
    pthread_mutex_lock(&c->lock);
    entry_t *e = find(c, key, klen);
    if (e)
        drop(c, e);
    pthread_mutex_unlock(&c->lock);
}

void *pv_ncache_ext(pv_ncache_t *c)
{
    return c->ext;
}

void pv_ncache_lock(pv_ncache_t *c)
{
    pthread_mutex_lock(&c->lock);
}

void pv_ncache_unlock(pv_ncache_t *c)
{
    pthread_mutex_unlock(&c->lock);
}
