#include "buf.h"

#include <stdlib.h>
#include <string.h>

/* Cached free buffers per thread; capped so a burst does not pin memory. */
#define PV_BUF_CACHE_MAX 1024

static __thread pv_buf_t *free_bufs;
static __thread unsigned nfree;

pv_buf_t *pv_buf_get(void)
{
    pv_buf_t *b = free_bufs;
    if (b) {
        free_bufs = b->next;
        nfree--;
    } else {
        b = malloc(sizeof(*b) + PV_BUF_SIZE);
        if (!b)
            abort();
        b->size = PV_BUF_SIZE;
    }
    b->next = NULL;
    b->pos = b->last = 0;
    return b;
}

pv_buf_t *pv_buf_get_size(size_t size)
{
    if (size <= PV_BUF_SIZE)
        return pv_buf_get();
    pv_buf_t *b = malloc(sizeof(*b) + size);
    if (!b)
        abort();
    b->next = NULL;
    b->size = (uint32_t)size;
    b->pos = b->last = 0;
    return b;
}

void pv_buf_put(pv_buf_t *b)
{
    if (!b)
        return;
    if (b->size != PV_BUF_SIZE || nfree >= PV_BUF_CACHE_MAX) {
        free(b);
        return;
    }
    b->next = free_bufs;
    free_bufs = b;
    nfree++;
}

void pv_buf_compact(pv_buf_t *b)
{
    if (b->pos == 0)
        return;
    size_t n = b->last - b->pos;
    if (n)
        memmove(b->data, b->data + b->pos, n);
    b->pos = 0;
    b->last = (uint32_t)n;
}

void pv_buf_drain_cache(void)
{
    while (free_bufs) {
        pv_buf_t *b = free_bufs;
        free_bufs = b->next;
        free(b);
    }
    nfree = 0;
}
