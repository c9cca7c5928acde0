/* A worker's open cache entries (fcache.h): the descriptor of each entry
 * file served lately, with its first bytes (the header and the start of
 * the body), so that a hit on the same file costs a dup() on the loop and
 * no open, header read or trip to the thread pool. An entry is keyed by
 * the file's generation, which the keys zone renews whenever a file is
 * stored or loaded: a replaced, removed or purged file is never served
 * from here. Bounded by PV_FC_KEEP_MAX, least recently used first out;
 * one unused for PV_FC_KEEP_MS is closed (its file, if removed
 * meanwhile, frees its blocks then). Loop thread only. */
#include "fcache.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/common.h"

typedef struct kept_s {
    struct kept_s *prev, *next; /* most recently used first */
    uint64_t gen;
    int fd;
    struct stat st;
    uint64_t used;              /* ms */
    int n;                      /* bytes in head */
    char head[PV_FC_KEEP_BYTES];
} kept_t;

static __thread kept_t *first, *last;
static __thread int count;

static void unlink_kept(kept_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        first = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        last = k->prev;
    k->prev = k->next = NULL;
}

static void push_front(kept_t *k)
{
    k->prev = NULL;
    k->next = first;
    if (first)
        first->prev = k;
    first = k;
    if (!last)
        last = k;
}

static void drop(kept_t *k)
{
    unlink_kept(k);
    close(k->fd);
    free(k);
    count--;
}

/* The ones unused for PV_FC_KEEP_MS, and beyond max, go. */
static void expire(uint64_t now, int max)
{
    for (kept_t *k = last, *prev; k && (count > max || now - k->used >= PV_FC_KEEP_MS); k = prev) {
        prev = k->prev;
        drop(k);
    }
}

static kept_t *find(uint64_t gen)
{
    /* few entries, the most recent first: a list is enough */
    for (kept_t *k = first; k; k = k->next)
        if (k->gen == gen)
            return k;
    return NULL;
}

int pv_fc_keep_lookup(const pv_fc_ref_t *ref, int *fd, struct stat *st, const char **bytes, int *n)
{
    if (!first || !ref->exists || !ref->gen)
        return 0;
    uint64_t now = pv_now_ms();
    expire(now, PV_FC_KEEP_MAX);
    kept_t *k = find(ref->gen);
    if (!k)
        return 0;
    int d = dup(k->fd);
    if (d < 0)
        return 0;
    k->used = now;
    if (first != k) {
        unlink_kept(k);
        push_front(k);
    }
    *fd = d;
    *st = k->st;
    *bytes = k->head;
    *n = k->n;
    return 1;
}

void pv_fc_keep(const pv_fc_ref_t *ref, int fd, const struct stat *st, const char *buf, int n)
{
    if (!ref->gen || fd < 0 || n <= 0 || find(ref->gen))
        return;
    uint64_t now = pv_now_ms();
    expire(now, PV_FC_KEEP_MAX - 1);
    kept_t *k = malloc(sizeof(*k));
    if (!k)
        return;
    if ((k->fd = dup(fd)) < 0) {
        free(k);
        return;
    }
    k->gen = ref->gen;
    k->st = *st;
    k->used = now;
    k->n = PV_MIN(n, PV_FC_KEEP_BYTES);
    memcpy(k->head, buf, (size_t)k->n);
    push_front(k);
    count++;
}

void pv_fc_keep_clear(void)
{
    for (kept_t *k = first, *next; k; k = next) {
        next = k->next;
        drop(k);
    }
}
