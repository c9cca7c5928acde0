/* I/O buffers. Standard buffers have a fixed size and come from a
 * per-thread freelist, so steady-state traffic allocates nothing; larger
 * buffers (oversized request heads) are malloc'd and freed. */
#ifndef PV_BUF_H
#define PV_BUF_H

#include <stdint.h>
#include <stddef.h>

#define PV_BUF_SIZE 16384 /* bytes of data in a standard buffer */

typedef struct pv_buf_s {
    struct pv_buf_s *next; /* freelist link */
    uint32_t pos;          /* first unconsumed byte */
    uint32_t last;         /* end of valid data */
    uint32_t size;         /* capacity of data[] */
    char data[];
} pv_buf_t;

/* A standard buffer from this thread's freelist (pos = last = 0). */
pv_buf_t *pv_buf_get(void);
/* A buffer of at least size bytes (standard if it fits). */
pv_buf_t *pv_buf_get_size(size_t size);
/* Return a buffer; NULL is ignored. */
void pv_buf_put(pv_buf_t *b);
/* Move unconsumed bytes to the front. */
void pv_buf_compact(pv_buf_t *b);
/* Release this thread's cached buffers (at thread exit). */
void pv_buf_drain_cache(void);

static inline size_t pv_buf_free_space(const pv_buf_t *b) { return b->size - b->last; }
static inline size_t pv_buf_len(const pv_buf_t *b) { return b->last - b->pos; }

#endif
