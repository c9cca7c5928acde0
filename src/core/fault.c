#include "fault.h"

#ifdef PV_FAULT_INJECTION

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* allocations counted so far, over all threads */
static atomic_ulong nbufs, nall;

static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atol(v) : 0;
}

int pv_fault_alloc(int kind)
{
    long nth = env_long("PV_FAULT_BUF_NTH"), after = env_long("PV_FAULT_ALLOC_AFTER");
    unsigned long all = atomic_fetch_add(&nall, 1) + 1;
    if (after > 0 && all > (unsigned long)after)
        return 1;
    if (kind == PV_FAULT_BUF && nth > 0)
        return atomic_fetch_add(&nbufs, 1) + 1 == (unsigned long)nth;
    return 0;
}

double pv_fault_rtt_ms(const char *addr)
{
    const char *v = getenv("PV_FAULT_RTT_MS");
    size_t n = strlen(addr);
    for (const char *p = v; p && *p;) {
        const char *end = strchr(p, ',');
        if (strncmp(p, addr, n) == 0 && p[n] == '=')
            return atof(p + n + 1);
        p = end ? end + 1 : NULL;
    }
    return 0;
}

#else

/* ISO C wants a translation unit to declare something */
typedef int pv_fault_unused_t;

#endif
