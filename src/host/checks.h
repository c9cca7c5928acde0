/* The host checks the gateway ran last (`portvakt doctor`'s, at start and
 * at each reload), kept for the status document: the doctor layer puts
 * them here, the reports read them. Any thread. */
#ifndef PV_HOST_CHECKS_H
#define PV_HOST_CHECKS_H

/* Check outcomes, in rising severity (pv_doctor's PV_DOCTOR_*). */
enum { PV_HOST_CHECK_OK = 0, PV_HOST_CHECK_WARN, PV_HOST_CHECK_FAIL };

#define PV_HOST_STEAL_WARN 5.0  /* CPU steal above this percentage warns */
#define PV_HOST_STEAL_FAIL 15.0 /* and above this fails */
#define PV_HOST_CHECKS_MAX 16

typedef struct pv_host_check_s {
    char id[32];       /* the check's stable name ("somaxconn") */
    int status;        /* PV_HOST_CHECK_* */
    char value[256];   /* what the host has */
    char want[256];    /* what the config needs */
    char fix[256];     /* the first line of the fix; "" when OK */
} pv_host_check_t;

/* Keep c[0, n) (n at most PV_HOST_CHECKS_MAX) in place of the last ones. */
void pv_host_checks_keep(const pv_host_check_t *c, int n);
/* The kept checks into out[PV_HOST_CHECKS_MAX]; returns how many (0 before any). */
int pv_host_checks(pv_host_check_t *out);

#endif
