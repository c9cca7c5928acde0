/* A bounded writer: bytes appended to a caller's buffer in one forward
 * pass; the first write that does not fit marks it over and later writes
 * are no-ops, so a writer checks once at the end. Used for the heads
 * portvakt writes. */
#ifndef PV_WR_H
#define PV_WR_H

#include <string.h>
#include "common.h"

typedef struct pv_wr_s {
    char *p;   /* next byte */
    char *end; /* one past the buffer */
    int over;  /* the buffer was too small */
} pv_wr_t;

static inline void pv_wr_put(pv_wr_t *w, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL then */
    if (pv_unlikely(w->over || (size_t)(w->end - w->p) < n)) {
        w->over = 1;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

static inline void pv_wr_str(pv_wr_t *w, pv_str_t s)
{
    pv_wr_put(w, s.p, s.len);
}

#define PV_WR_LIT(w, lit) pv_wr_put((w), (lit), sizeof(lit) - 1)

#endif
