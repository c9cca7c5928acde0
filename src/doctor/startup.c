/* The host checks as the gateway runs: `portvakt doctor`'s checks against
 * the running config at start and at each reload, each WARN or FAIL
 * logged, and the results kept for the status document and its
 * dashboard. */
#include "doctor.h"

#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../host/checks.h"

_Static_assert(PV_DOCTOR_NCHECKS <= PV_HOST_CHECKS_MAX, "more checks than the status document keeps");
_Static_assert((int)PV_DOCTOR_WARN == (int)PV_HOST_CHECK_WARN && (int)PV_DOCTOR_FAIL == (int)PV_HOST_CHECK_FAIL,
               "two scales of outcome");

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
    pv_host_check_t kept[PV_DOCTOR_NCHECKS];
    for (int i = 0; i < PV_DOCTOR_NCHECKS; i++) {
        const pv_doctor_check_t *c = &res[i];
        pv_host_check_t *k = &kept[i];
        const char *nl = strchr(c->fix, '\n');
        snprintf(k->id, sizeof(k->id), "%s", c->id);
        k->status = c->status;
        snprintf(k->value, sizeof(k->value), "%s", c->value);
        snprintf(k->want, sizeof(k->want), "%s", c->want);
        snprintf(k->fix, sizeof(k->fix), "%.*s", nl ? (int)(nl - c->fix) : (int)strlen(c->fix), c->fix);
    }
    pv_host_checks_keep(kept, PV_DOCTOR_NCHECKS);
}
