#include "counters.h"

#include <pthread.h>
#include <stdlib.h>

#include "common.h"
#include "module.h"

/* counts of threads without a block of their own (main thread, harnesses) */
static pv_counters_t scratch;
__thread pv_counters_t *pv_counters_self = &scratch;

/* every registered block; pushed under the lock, read without it (a block
 * is complete before it is published and never unlinked) */
static _Atomic(pv_counters_t *) blocks;
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;

int pv_counters_register(void)
{
    pv_counters_t *b = calloc(1, sizeof(*b));
    if (!b)
        return PV_ERR;
    pthread_mutex_lock(&blocks_lock);
    b->next = atomic_load_explicit(&blocks, memory_order_relaxed);
    atomic_store_explicit(&blocks, b, memory_order_release);
    pthread_mutex_unlock(&blocks_lock);
    pv_counters_self = b;
    return PV_OK;
}

void pv_counters_sum(uint64_t *out)
{
    for (int i = 0; i < PV_CTR__COUNT; i++)
        out[i] = 0;
    for (pv_counters_t *b = atomic_load_explicit(&blocks, memory_order_acquire); b; b = b->next)
        for (int i = 0; i < PV_CTR__COUNT; i++)
            out[i] += atomic_load_explicit(&b->v[i], memory_order_relaxed);
}

int pv_counters_each(int id, uint64_t *out, int max)
{
    int n = 0;
    for (pv_counters_t *b = atomic_load_explicit(&blocks, memory_order_acquire); b && n < max; b = b->next)
        out[n++] = atomic_load_explicit(&b->v[id], memory_order_relaxed);
    return n;
}

static int mod_worker_init(struct pv_worker_s *w)
{
    PV_UNUSED(w);
    return pv_counters_register();
}

pv_module_t pv_counters_module = {
    .name = "counters",
    .worker_init = mod_worker_init,
};
