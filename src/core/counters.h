/* Per-worker counters: each worker thread owns a block of plain counters
 * and bumps them with no lock and no atomic read-modify-write; a reader
 * (metrics, tests) sums the blocks. Monotonic for the life of the
 * process: a block outlives its worker. */
#ifndef PV_COUNTERS_H
#define PV_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

enum {
    PV_CTR_CONNS_ACCEPTED = 0, /* client connections accepted */
    PV_CTR_REQUESTS,           /* requests ended (answered or not) */
    PV_CTR_STATUS_1XX,         /* ... by the class of the status sent */
    PV_CTR_STATUS_2XX,
    PV_CTR_STATUS_3XX,
    PV_CTR_STATUS_4XX,
    PV_CTR_STATUS_5XX,
    PV_CTR_UPSTREAM_OPENED,    /* upstream connections opened */
    PV_CTR_UPSTREAM_REUSED,    /* requests sent on a pooled connection */
    PV_CTR_RESIDENCY_REFUSED,  /* requests refused (403) for leaving their residency scope */
    PV_CTR_CONNS_OPEN,         /* gauge: client connections open (HTTP/1 and HTTP/2) */
    PV_CTR_REQ_CREATED,        /* requests begun (a first byte arrived; an HTTP/2 stream) */
    PV_CTR_REQ_READ,           /* ... whose head was read (post-read done) */
    PV_CTR_REQ_FREED,          /* ... ended */
    PV_CTR_REQ_FREED_READ,     /* ... ended after their head was read */
    PV_CTR_ACCEPT_ERRORS,      /* accept() failed for want of descriptors (EMFILE, ENFILE) */
    PV_CTR_SHED,               /* pending connections shed (reserve descriptor, slot reclaim) */
    PV_CTR_RELOADS,            /* configuration reloads applied */
    PV_CTR_RELOAD_FAILS,       /* ... refused (the old configuration stays) */
    PV_CTR_RELOAD_LAST_FAILED, /* gauge: 1 when the last reload was refused */
    PV_CTR_TLS_HANDSHAKES,     /* TLS handshakes completed on client connections */
    PV_CTR_TLS_RESUMED,        /* ... of them resuming a session */
    PV_CTR_TLS_FAILED,         /* TLS handshakes that failed */
    PV_CTR_H2_STREAMS,         /* HTTP/2 streams opened */
    PV_CTR_H2_RESETS,          /* HTTP/2 streams reset (RST_STREAM either way) */
    PV_CTR_LOOP_LAG_US,        /* gauge: the worker loop's last measured lateness */
    PV_CTR__COUNT
};

/* One worker's block. Only its worker writes it (a relaxed load and store:
 * plain moves); readers load relaxed. */
typedef struct pv_counters_s {
    _Atomic uint64_t v[PV_CTR__COUNT]; /* by PV_CTR_* */
    struct pv_counters_s *next;        /* every block, for readers */
} pv_counters_t;

/* This thread's block; a thread that has none counts into a shared
 * scratch block nobody reads. */
extern __thread pv_counters_t *pv_counters_self;

static inline void pv_count(int id)
{
    _Atomic uint64_t *c = &pv_counters_self->v[id];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Set gauge id (a value only this thread writes; readers sum them). */
static inline void pv_count_set(int id, uint64_t v)
{
    atomic_store_explicit(&pv_counters_self->v[id], v, memory_order_relaxed);
}

/* Give the calling thread its own block. PV_ERR when out of memory. */
int pv_counters_register(void);
/* The sum of every block into out[PV_CTR__COUNT]. */
void pv_counters_sum(uint64_t *out);
/* Value id of every block with one (worker threads, main), in turn. */
int pv_counters_each(int id, uint64_t *out, int max);
/* The worker module: gives each worker thread its block. */
extern struct pv_module_s pv_counters_module;

#endif
