/* open_file_cache: per worker, the descriptors and stat results of the
 * files static answers opened (and, with open_file_cache_errors, their
 * open errors), as NGINX's ngx_open_cached_file() keeps them: an entry is
 * used while younger than open_file_cache_valid, keeps a descriptor once
 * it has been asked for open_file_cache_min_uses times, goes when unused
 * for `inactive`, and the least recently used goes beyond `max`. A hit
 * costs a dup() on the loop and no call that may wait for a disk. */
#include "ofcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/common.h"

typedef struct ent_s {
    struct ent_s *hnext;        /* hash chain */
    struct ent_s *prev, *next;  /* most recently used first */
    uint64_t hash;
    char *path;
    int id;                     /* the open_file_cache directive it belongs to */
    int symlinks;               /* the checks it was opened under */
    size_t from;
    int fd;                     /* -1: none kept */
    int err;                    /* a cached open error (errors on) */
    struct stat st;
    int uses;
    uint64_t created, accessed; /* ms */
} ent_t;

#define NBUCKETS 1024

static __thread ent_t **tab;
static __thread ent_t *head, *tail;
static __thread int count;

static uint64_t hash_of(const char *p, int symlinks, size_t from)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)symlinks ^ ((uint64_t)from << 8);
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void unlink_lru(ent_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(ent_t *e)
{
    e->next = head;
    e->prev = NULL;
    if (head)
        head->prev = e;
    head = e;
    if (!tail)
        tail = e;
}

static void drop(ent_t *e)
{
    ent_t **pp = &tab[e->hash % NBUCKETS];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    unlink_lru(e);
    if (e->fd >= 0)
        close(e->fd);
    free(e->path);
    free(e);
    count--;
}

/* Entries unused for inactive ms, and beyond max, go (oldest first). */
static void expire(const pv_static_conf_t *s, uint64_t now)
{
    while (tail && (count > s->open_file_cache || now - tail->accessed >= (uint64_t)s->open_file_cache_inactive))
        drop(tail);
}

static ent_t *find(int id, const char *path, int symlinks, size_t from, uint64_t h)
{
    for (ent_t *e = tab[h % NBUCKETS]; e; e = e->hnext)
        if (e->hash == h && e->id == id && e->symlinks == symlinks && e->from == from && strcmp(e->path, path) == 0)
            return e;
    return NULL;
}

int pv_ofc_lookup(const pv_static_conf_t *s, const char *path, int symlinks, size_t from, int *fd, int *err,
                  struct stat *st)
{
    if (s->open_file_cache <= 0 || !tab)
        return 0;
    uint64_t now = pv_now_ms();
    expire(s, now);
    ent_t *e = find(s->open_file_cache_id, path, symlinks, from, hash_of(path, symlinks, from) + (uint64_t)s->open_file_cache_id);
    if (!e)
        return 0;
    if (now - e->created >= (uint64_t)s->open_file_cache_valid) {
        drop(e); /* stale: the next open looks again */
        return 0;
    }
    if (e->fd < 0 && !e->err)
        return 0; /* counted, not yet kept */
    e->uses++;
    e->accessed = now;
    unlink_lru(e);
    push_front(e);
    if (e->err) {
        *fd = -1;
        *err = e->err;
        return 1;
    }
    int d = dup(e->fd);
    if (d < 0)
        return 0;
    *fd = d;
    *err = 0;
    *st = e->st;
    return 1;
}

void pv_ofc_store(const pv_static_conf_t *s, const char *path, int symlinks, size_t from, int fd, int err,
                  const struct stat *st)
{
    if (s->open_file_cache <= 0)
        return;
    if (fd < 0 && !(s->open_file_cache_errors && (err == ENOENT || err == ENOTDIR || err == EACCES ||
                                                   err == ELOOP || err == ENAMETOOLONG)))
        return;
    if (!tab && !(tab = calloc(NBUCKETS, sizeof(*tab))))
        return;
    uint64_t now = pv_now_ms();
    uint64_t h = hash_of(path, symlinks, from) + (uint64_t)s->open_file_cache_id;
    ent_t *e = find(s->open_file_cache_id, path, symlinks, from, h);
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))) || !(e->path = strdup(path))) {
            free(e);
            return;
        }
        e->hash = h;
        e->id = s->open_file_cache_id;
        e->symlinks = symlinks;
        e->from = from;
        e->fd = -1;
        e->created = now;
        e->hnext = tab[h % NBUCKETS];
        tab[h % NBUCKETS] = e;
        count++;
    } else {
        unlink_lru(e);
    }
    push_front(e);
    e->uses++;
    e->accessed = now;
    if (e->uses >= s->open_file_cache_min_uses && e->fd < 0 && !e->err) {
        if (fd >= 0) {
            e->fd = dup(fd);
            e->st = *st;
        } else {
            e->err = err;
        }
        e->created = now;
    }
    expire(s, now);
}

void pv_ofc_clear(void)
{
    ent_t *e = head;
    while (e) {
        ent_t *next = e->next;
        drop(e);
        e = next;
    }
    free(tab);
    tab = NULL;
}
