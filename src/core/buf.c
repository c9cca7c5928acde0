#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "fault.h"

#define NCLASSES 5               /* 1, 2, 4, 8 and 16 KiB */
#define CLASS_CACHE_BYTES 1048576 /* at most this much cached per class */

#define CLASS(kib) {.name = "buffer", .size = sizeof(pv_buf_t) + (kib) * 1024, \
                    .max = CLASS_CACHE_BYTES / ((kib) * 1024)}
static __thread pv_cache_t classes[NCLASSES] = {CLASS(1), CLASS(2), CLASS(4), CLASS(8), CLASS(16)};

/* Class index of a size up to PV_BUF_SIZE: the smallest k with
 * PV_BUF_MIN << k >= size. */
static inline int class_of(size_t size)
{
    if (size <= PV_BUF_MIN)
        return 0;
    return (int)(sizeof(unsigned long) * 8) - __builtin_clzl((unsigned long)(size - 1) / PV_BUF_MIN);
}

pv_buf_t *pv_buf_get(void)
{
    return pv_buf_get_size(PV_BUF_SIZE);
}

pv_buf_t *pv_buf_get_size(size_t size)
{
    if (pv_fault_alloc(PV_FAULT_BUF))
        return NULL;
    pv_buf_t *b = NULL;
    if (size <= PV_BUF_SIZE) {
        int k = class_of(size);
        size = (size_t)PV_BUF_MIN << k;
        b = pv_cache_get(&classes[k]);
    }
    if (!b) {
        b = malloc(sizeof(*b) + size);
        if (!b)
            return NULL;
        b->size = (uint32_t)size;
    }
    b->next = NULL;
    b->pos = b->last = 0;
    return b;
}

void pv_buf_put(pv_buf_t *b)
{
    if (!b)
        return;
    if (b->size > PV_BUF_SIZE || pv_cache_put(&classes[class_of(b->size)], b) < 0)
        free(b);
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
