/* Bump allocator: many small allocations, freed together in one step.
 * Used for config snapshots (lifetime of the snapshot) and per-request
 * state (lifetime of the request; reset, not freed, between requests). */
#ifndef PV_ARENA_H
#define PV_ARENA_H

#include <stddef.h>
#include "common.h"

typedef struct pv_arena_block_s pv_arena_block_t;

typedef struct pv_arena_s {
    pv_arena_block_t *head;  /* current block; older blocks chained behind */
    size_t block_size;       /* size of the first block; each further one is twice the last */
} pv_arena_t;

/* Prepare an empty arena; no memory is taken until the first allocation. */
void pv_arena_init(pv_arena_t *a, size_t block_size);
/* Allocate n bytes aligned to 16; aborts the process on out-of-memory. */
void *pv_arena_alloc(pv_arena_t *a, size_t n);
/* Allocate zeroed memory. */
void *pv_arena_calloc(pv_arena_t *a, size_t n);
/* Copy a byte range into the arena, NUL-terminated. */
char *pv_arena_strndup(pv_arena_t *a, const char *s, size_t n);
char *pv_arena_strdup(pv_arena_t *a, const char *s);
/* printf into the arena. */
char *pv_arena_printf(pv_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget every allocation but keep the newest (largest) block for reuse. */
void pv_arena_reset(pv_arena_t *a);
/* Release all memory. */
void pv_arena_free(pv_arena_t *a);

#endif
