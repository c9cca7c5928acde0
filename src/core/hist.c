#include "hist.h"

uint64_t pv_hist_lower(unsigned i)
{
    if (i < 2 * PV_HIST_SUB)
        return i;
    unsigned e = i / PV_HIST_SUB - 1;
    return (uint64_t)(i % PV_HIST_SUB + PV_HIST_SUB) << e;
}

uint64_t pv_hist_upper(unsigned i)
{
    if (i < 2 * PV_HIST_SUB)
        return i + 1;
    unsigned e = i / PV_HIST_SUB - 1;
    return (uint64_t)(i % PV_HIST_SUB + PV_HIST_SUB + 1) << e;
}

void pv_hist_sum_into(const pv_hist_t *h, uint64_t *out, uint64_t *sum)
{
    for (unsigned i = 0; i < PV_HIST_N; i++)
        out[i] += pv_ctr_get(&h->b[i]);
    *sum += pv_ctr_get(&h->sum_us);
}

double pv_hist_quantile(const uint64_t *b, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < PV_HIST_N; i++)
        total += b[i];
    if (!total)
        return 0;
    double rank = q * (double)total;
    uint64_t below = 0;
    for (unsigned i = 0; i < PV_HIST_N; i++) {
        if (!b[i] || (double)(below + b[i]) < rank) {
            below += b[i];
            continue;
        }
        double lo = (double)pv_hist_lower(i), hi = (double)pv_hist_upper(i);
        return lo + (hi - lo) * (rank - (double)below) / (double)b[i];
    }
    return (double)pv_hist_lower(PV_HIST_N - 1);
}
