/* ssl_ocsp_cache: the statuses OCSP responders gave for client
 * certificates, by CERTID, until their nextUpdate; one cache per name,
 * shared by the workers and the configs naming it, as NGINX's shared
 * zone is. */
#include "ocsp_check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define KEY_MAX 128     /* a CERTID's DER (two hashes and a serial) */
#define ENTRY_SIZE 256  /* what one entry counts for against the size */
#define NBUCKETS 256

typedef struct entry_s {
    struct entry_s *hnext;          /* hash chain */
    struct entry_s *prev, *next;    /* LRU list, most recent first */
    int64_t valid;
    int status;
    size_t len;
    unsigned char key[KEY_MAX];
} entry_t;

struct pv_ocsp_cache_s {
    char *name;
    size_t capacity, count;
    int refs;                       /* configs holding it */
    pthread_mutex_t lock;
    entry_t *head, *tail;
    entry_t *bucket[NBUCKETS];
    struct pv_ocsp_cache_s *next;   /* registry */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_ocsp_cache_t *registry;

static unsigned hash(const unsigned char *k, size_t n)
{
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h % NBUCKETS;
}

static void lru_unlink(pv_ocsp_cache_t *c, entry_t *e)
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

static void lru_front(pv_ocsp_cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void drop(pv_ocsp_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->bucket[hash(e->key, e->len)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    free(e);
}

static entry_t *find(pv_ocsp_cache_t *c, const unsigned char *key, size_t len)
{
    for (entry_t *e = c->bucket[hash(key, len)]; e; e = e->hnext)
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

pv_ocsp_cache_t *pv_ocsp_cache_get(const char *name, size_t size)
{
    pthread_mutex_lock(&registry_lock);
    pv_ocsp_cache_t *c = registry;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c && (c = calloc(1, sizeof(*c)))) {
        if (!(c->name = strdup(name))) {
            free(c);
            c = NULL;
        } else {
            pthread_mutex_init(&c->lock, NULL);
            c->next = registry;
            registry = c;
        }
    }
    if (c) {
        c->refs++;
        pthread_mutex_lock(&c->lock);
        c->capacity = size / ENTRY_SIZE;
        while (c->count > c->capacity)
            drop(c, c->tail);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void pv_ocsp_cache_unref(pv_ocsp_cache_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (pv_ocsp_cache_t **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    for (entry_t *e = c->head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    pthread_mutex_destroy(&c->lock);
    free(c->name);
    free(c);
}

int pv_ocsp_cache_lookup(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int *status)
{
    int found = 0;
    pthread_mutex_lock(&c->lock);
    entry_t *e = len <= KEY_MAX ? find(c, key, len) : NULL;
    if (e && e->valid <= (int64_t)time(NULL)) {
        drop(c, e);
    } else if (e) {
        *status = e->status;
        found = 1;
        lru_unlink(c, e);
        lru_front(c, e);
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void pv_ocsp_cache_store(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int status, int64_t valid)
{
    if (len > KEY_MAX)
        return;
    pthread_mutex_lock(&c->lock);
    entry_t *e = find(c, key, len);
    if (e) {
        lru_unlink(c, e);
    } else if (c->capacity > 0) {
        if (c->count >= c->capacity)
            drop(c, c->tail);
        if ((e = calloc(1, sizeof(*e)))) {
            memcpy(e->key, key, len);
            e->len = len;
            unsigned h = hash(key, len);
            e->hnext = c->bucket[h];
            c->bucket[h] = e;
            c->count++;
        }
    }
    if (e) {
        e->status = status;
        e->valid = valid;
        lru_front(c, e);
    }
    pthread_mutex_unlock(&c->lock);
}
