/* `portvakt doctor`: audit the kernel, descriptor and cgroup limits of the
 * host against what a config needs, and explain each finding with the
 * numbers and the exact fix. It reports; it never changes the host.
 *
 * A file the doctor cannot read makes its check WARN with the value
 * "unavailable" (the why says which file and the error), except the cgroup
 * checks: no cgroup hierarchy or no limit file means no limit, which is OK.
 * PV_DOCTOR_STEAL_MS (environment) sets the steal sampling interval in
 * milliseconds (default 1000; tests use 0 on a static /proc/stat). */
#ifndef PV_DOCTOR_H
#define PV_DOCTOR_H

#include <stdio.h>

#include "../config/conf.h"
#include "../host/checks.h"
#include "../host/sysinfo.h"


/* Check outcomes, in rising severity. */
enum { PV_DOCTOR_OK = 0, PV_DOCTOR_WARN, PV_DOCTOR_FAIL };

#define PV_DOCTOR_USAGE_ERROR 3     /* exit status for a bad command line or config */
#define PV_DOCTOR_NCHECKS 11          /* checks in one run, in report order */
#define PV_DOCTOR_STEAL_WARN PV_HOST_STEAL_WARN /* steal above this percentage warns */
#define PV_DOCTOR_STEAL_FAIL PV_HOST_STEAL_FAIL /* and above this fails */
#define PV_DOCTOR_TIME_WAIT_S 60      /* Linux TCP_TIMEWAIT_LEN: a closed port stays held this long */
#define PV_DOCTOR_MEM_HEADROOM (64LL << 20) /* memory beyond the buffers: code, config, logs, socket buffers */
#define PV_DOCTOR_SYSCTL_FILE "/etc/sysctl.d/60-portvakt.conf" /* where --sysctl output belongs */

/* One finding. Strings are complete sentences or values; fix holds one
 * command or config line per '\n'-separated line. */
typedef struct pv_doctor_check_s {
    const char *id;         /* stable check name ("somaxconn") */
    int status;             /* PV_DOCTOR_* */
    char value[256];        /* what the host has */
    char want[256];         /* what the config needs */
    char why[1024];         /* the reasoning, with the numbers */
    char fix[1024];         /* exact commands or lines; "" when OK */
    const char *sysctl_key; /* sysctl.d key that fixes it; NULL when the fix is not a sysctl */
    char sysctl_value[64];  /* the value for that key */
} pv_doctor_check_t;

/* What the config asks of the host (or generic defaults without one). */
typedef struct pv_doctor_wants_s {
    const char *conf_path;        /* config the wants came from; NULL = generic */
    int workers;                  /* worker threads the config runs */
    int workers_auto;             /* worker_processes auto */
    char workers_why[192];        /* how auto chose the count */
    int worker_connections;       /* connections per worker */
    int backlog;                  /* largest listen backlog */
    char backlog_at[192];         /* where it is set ("listen ADDR in FILE:LINE") */
    long long rlimit_nofile;      /* worker_rlimit_nofile; 0 = not set */
    long long header_bytes;       /* largest large_client_header_buffers number x size */
    int nupstreams;               /* upstreams some location proxies to */
    int all_loopback;             /* every such upstream address is loopback */
    long long conc_per_addr;      /* upstream connections one address may hold at once */
    long long churn_per_addr;     /* new connections/s to one address that cannot reuse them; 0 = none */
    char churn_name[96];          /* the upstream with the highest such churn */
    char churn_reason[256];       /* why it cannot reuse connections */
    char ktls_at[192];            /* where the config asks for kernel TLS ("" = nowhere) */
} pv_doctor_wants_t;

/* Generic wants for a host without a config: NGINX's defaults (backlog
 * 511, 512 connections, auto workers from the cgroup under sys_root). */
void pv_doctor_wants_generic(pv_doctor_wants_t *w, const char *sys_root);
/* Derive the wants from a loaded config; `auto` workers are recomputed
 * against sys_root so a fake tree's quota is honoured. */
void pv_doctor_wants_conf(pv_doctor_wants_t *w, const pv_conf_t *c, const char *sys_root);
/* Run every check on the host facts; out receives PV_DOCTOR_NCHECKS entries. */
void pv_doctor_run(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *out);
/* The process exit status: 0 when every check is OK, 1 when the worst is
 * a WARN, 2 when something FAILs. */
int pv_doctor_exit_status(const pv_doctor_check_t *c, int n);
/* The human report: a table, then the why and fix lines of each check;
 * color adds ANSI colours to the status words. */
void pv_doctor_print_table(FILE *f, const pv_doctor_wants_t *w, const char *sys_root,
                           const pv_doctor_check_t *c, int n, int color);
/* {"checks":[{"id","status","value","want","why","fix"}...]} on one line. */
void pv_doctor_print_json(FILE *f, const pv_doctor_check_t *c, int n);
/* A commented sysctl.d fragment with only the keys of checks not OK. */
void pv_doctor_print_sysctl(FILE *f, const pv_doctor_wants_t *w, const pv_doctor_check_t *c, int n);
/* At start and at each reload: run the checks quietly against the real
 * host (no steal sample), log one line for each WARN or FAIL, and keep
 * the results for the status document (startup.c, host/checks.h). */
void pv_doctor_startup(const pv_conf_t *conf);

/* `portvakt doctor [-c FILE] [--json] [--sysctl] [--sys-root DIR]`;
 * argv[0] is "doctor". Returns the exit status: 0 all OK, 1 a WARN, 2 a
 * FAIL, PV_DOCTOR_USAGE_ERROR for a usage or config error. */
int pv_doctor_main(int argc, char **argv);

#endif
