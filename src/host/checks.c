/* The host checks kept for the status document (checks.h). */
#include "checks.h"

#include <pthread.h>
#include <string.h>

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_host_check_t kept[PV_HOST_CHECKS_MAX];
static int nkept;

void pv_host_checks_keep(const pv_host_check_t *c, int n)
{
    if (n > PV_HOST_CHECKS_MAX)
        n = PV_HOST_CHECKS_MAX;
    pthread_mutex_lock(&kept_lock);
    memcpy(kept, c, sizeof(*c) * (size_t)n);
    nkept = n;
    pthread_mutex_unlock(&kept_lock);
}

int pv_host_checks(pv_host_check_t *out)
{
    pthread_mutex_lock(&kept_lock);
    int n = nkept;
    memcpy(out, kept, sizeof(*out) * (size_t)n);
    pthread_mutex_unlock(&kept_lock);
    return n;
}
