/* The host checks as the gateway runs: `portvakt doctor`'s checks against
 * the running config at start and at each reload, each WARN or FAIL
 * logged, and the results kept for the status document and its
 * dashboard. */
#include "doctor.h"

#include <pthread.h>
#include <string.h>

#include "../core/log.h"

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_doctor_check_t kept[PV_DOCTOR_NCHECKS];
static int nkept;

void pv_doctor_startup(const pv_conf_t *conf)
{
    pv_doctor_wants_t w;
    pv_host_t host;
    pv_doctor_check_t res[PV_DOCTOR_NCHECKS];
    pv_doctor_wants_conf(&w, conf, "");
    pv_sysinfo_gather("", 0, &host); /* no steal sample: start-up does not wait a second */
    pv_doctor_run(&host, &w, res);
    for (int i = 0; i < PV_DOCTOR_NCHECKS; i++) {
        const pv_doctor_check_t *c = &res[i];
        if (c->status == PV_DOCTOR_OK || strcmp(c->id, "steal") == 0)
            continue;
        const char *nl = strchr(c->fix, '\n');
        int flen = nl ? (int)(nl - c->fix) : (int)strlen(c->fix);
        pv_log(PV_LOG_WARN, "host check %s %s: have %s, want %s; fix: %.*s (portvakt doctor explains)", c->id,
               c->status == PV_DOCTOR_FAIL ? "FAIL" : "WARN", c->value, c->want, flen, c->fix);
    }
    pthread_mutex_lock(&kept_lock);
    memcpy(kept, res, sizeof(kept));
    nkept = PV_DOCTOR_NCHECKS;
    pthread_mutex_unlock(&kept_lock);
}

int pv_doctor_kept(pv_doctor_check_t *out)
{
    pthread_mutex_lock(&kept_lock);
    memcpy(out, kept, sizeof(kept));
    int n = nkept;
    pthread_mutex_unlock(&kept_lock);
    return n;
}
