/* I/O buffers. Buffers of up to PV_BUF_SIZE bytes come in power-of-two
 * classes from 1 KiB, each with a per-thread freelist (core/cache.h), so
 * steady-state traffic allocates nothing and a burst's buffers are given
 * back once it has passed; larger buffers (oversized request heads) are
 * malloc'd and freed. Allocation may fail: every caller handles NULL. */
#ifndef PV_BUF_H
#define PV_BUF_H

#include <stdint.h>
#include <stddef.h>

#define PV_BUF_SIZE 16384 /* bytes of data in a standard buffer */
#define PV_BUF_MIN 1024   /* the smallest class */

typedef struct pv_buf_s {
    struct pv_buf_s *next; /* freelist link */
    uint32_t pos;          /* first unconsumed byte */
    uint32_t last;         /* end of valid data */
    uint32_t size;         /* capacity of data[] */
    char data[];
} pv_buf_t;

/* A standard buffer (pos = last = 0), or NULL when memory ran out. */
pv_buf_t *pv_buf_get(void);
/* A buffer of at least size bytes (the smallest class that fits, or an
 * exact one above PV_BUF_SIZE), or NULL when memory ran out. */
pv_buf_t *pv_buf_get_size(size_t size);
/* Return a buffer; NULL is ignored. */
void pv_buf_put(pv_buf_t *b);
/* Move unconsumed bytes to the front. */
void pv_buf_compact(pv_buf_t *b);

static inline size_t pv_buf_free_space(const pv_buf_t *b) { return b->size - b->last; }
static inline size_t pv_buf_len(const pv_buf_t *b) { return b->last - b->pos; }

#endif
