#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pv_arena_block_s {
    pv_arena_block_t *next; /* older block */
    size_t size;            /* usable bytes in data[] */
    size_t used;            /* bytes handed out */
    _Alignas(16) unsigned char data[];
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("portvakt: out of memory\n", stderr);
        abort();
    }
    return p;
}

void pv_arena_init(pv_arena_t *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 4096;
}

void *pv_arena_alloc(pv_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    pv_arena_block_t *b = a->head;
    if (!b || b->size - b->used < n) {
        /* each block twice the last: an arena that needs much gets it in
         * a few blocks, and reset keeps the largest */
        size_t sz = b && 2 * b->size > a->block_size ? 2 * b->size : a->block_size;
        if (n > sz)
            sz = n;
        b = xmalloc(sizeof(*b) + sz);
        b->size = sz;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void *pv_arena_calloc(pv_arena_t *a, size_t n)
{
    void *p = pv_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *pv_arena_strndup(pv_arena_t *a, const char *s, size_t n)
{
    char *p = pv_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *pv_arena_strdup(pv_arena_t *a, const char *s)
{
    return pv_arena_strndup(a, s, strlen(s));
}

char *pv_arena_printf(pv_arena_t *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = pv_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void pv_arena_reset(pv_arena_t *a)
{
    pv_arena_block_t *b = a->head;
    if (!b)
        return;
    /* keep the newest block, the largest: the next user of the arena
     * likely needs as much, and gets it without a malloc */
    while (b->next) {
        pv_arena_block_t *n = b->next;
        b->next = n->next;
        free(n);
    }
    b->used = 0;
}

void pv_arena_free(pv_arena_t *a)
{
    pv_arena_block_t *b = a->head;
    while (b) {
        pv_arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}
