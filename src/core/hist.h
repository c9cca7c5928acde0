/* Log-linear histograms of durations (HDR style): values in microseconds,
 * each power of two split into 16 equal buckets, so a bucket is at most
 * 1/16 of its lower bound wide (6.25 %) and a quantile read from the
 * buckets is within about 3 % of the value. One histogram is a plain
 * array bumped by its one writer thread (no lock, no atomic
 * read-modify-write); readers sum the writers' arrays. */
#ifndef PV_HIST_H
#define PV_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/* A counter with one writer: a relaxed load and store, plain moves. */
typedef _Atomic uint64_t pv_ctr_t;

static inline void pv_ctr_add(pv_ctr_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint64_t pv_ctr_get(const pv_ctr_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define PV_HIST_SUB_BITS 4
#define PV_HIST_SUB (1u << PV_HIST_SUB_BITS)
#define PV_HIST_MAX_EXP 26 /* values from 2^26 us (67 s) on share the last bucket */
#define PV_HIST_N ((PV_HIST_MAX_EXP - PV_HIST_SUB_BITS + 1) * PV_HIST_SUB)

typedef struct pv_hist_s {
    pv_ctr_t b[PV_HIST_N]; /* counts by bucket */
    pv_ctr_t sum_us;       /* the values' sum */
} pv_hist_t;

/* The bucket of a value in microseconds. */
static inline unsigned pv_hist_index(uint64_t us)
{
    if (us < 2 * PV_HIST_SUB)
        return (unsigned)us;
    if (us >> PV_HIST_MAX_EXP)
        return PV_HIST_N - 1;
    unsigned e = (unsigned)(63 - __builtin_clzll(us)) - PV_HIST_SUB_BITS;
    return e * PV_HIST_SUB + (unsigned)(us >> e);
}

static inline void pv_hist_add(pv_hist_t *h, uint64_t us)
{
    pv_ctr_add(&h->b[pv_hist_index(us)], 1);
    pv_ctr_add(&h->sum_us, us);
}

/* The exclusive upper bound of bucket i, in microseconds (the last
 * bucket has none: it also holds every larger value). */
uint64_t pv_hist_upper(unsigned i);
/* The lower bound of bucket i. */
uint64_t pv_hist_lower(unsigned i);
/* Plain copy of a histogram for reading: counts added into out[PV_HIST_N]
 * and the sum into *sum. */
void pv_hist_sum_into(const pv_hist_t *h, uint64_t *out, uint64_t *sum);
/* The q-quantile (0..1) of counts b[PV_HIST_N], in microseconds,
 * interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; 0 when there is no value. */
double pv_hist_quantile(const uint64_t *b, double q);

#endif
