/* Host facts for `portvakt doctor`: sysctls, the descriptor limit, cgroup
 * CPU and memory limits and CPU steal time. Every /proc and /sys read goes
 * through a sys_root prefix ("" for the real files) so tests can point the
 * doctor at a fake tree; getrlimit() and the capability set always describe
 * the real process, as they have no file to redirect. */
#ifndef PV_SYSINFO_H
#define PV_SYSINFO_H

#include <stddef.h>

/* A limit with no bound (RLIM_INFINITY, cgroup "max"). */
#define PV_SYSINFO_UNLIMITED (-1LL)
/* A cgroup v1 memory limit at or above this is the "no limit" sentinel
 * (the kernel reports PAGE_COUNTER_MAX pages, about 2^63 bytes). */
#define PV_SYSINFO_V1_NOLIMIT (1LL << 62)

/* One sysctl as read from SYSROOT/proc/sys. */
typedef struct pv_sysval_s {
    long long v[2]; /* the values (ip_local_port_range has two, others one) */
    int err;        /* 0, or the errno of the failed read (EINVAL: not a number) */
} pv_sysval_t;

/* Aggregate CPU time from the first line of /proc/stat, in clock ticks. */
typedef struct pv_cpustat_s {
    unsigned long long total; /* user+nice+system+idle+iowait+irq+softirq+steal */
    unsigned long long steal; /* the 8th value: time the hypervisor ran someone else */
} pv_cpustat_t;

/* The cgroup limits that apply to this process (tightest of its cgroup
 * and every ancestor, since each level's limit applies). */
typedef struct pv_cgroup_s {
    int version;          /* 2 or 1; 0 when no cgroup hierarchy was found */
    char path[1024];      /* this process's cgroup ("/" when unknown) */
    long long cpu_quota;  /* microseconds per period; PV_SYSINFO_UNLIMITED = no quota */
    long long cpu_period; /* microseconds */
    char cpu_file[1280];  /* file the quota came from, relative to sys_root; "" if none */
    long long mem_limit;  /* bytes; PV_SYSINFO_UNLIMITED = no limit */
    char mem_file[1280];  /* file the limit came from, relative to sys_root; "" if none */
} pv_cgroup_t;

/* Everything the doctor measures about the host. */
typedef struct pv_host_s {
    const char *root;         /* the sys_root prefix the facts came from */
    pv_sysval_t somaxconn;    /* net.core.somaxconn */
    pv_sysval_t syn_backlog;  /* net.ipv4.tcp_max_syn_backlog */
    pv_sysval_t syncookies;   /* net.ipv4.tcp_syncookies */
    pv_sysval_t tw_reuse;     /* net.ipv4.tcp_tw_reuse */
    pv_sysval_t port_range;   /* net.ipv4.ip_local_port_range (low, high) */
    pv_sysval_t file_max;     /* fs.file-max */
    pv_sysval_t nr_open;      /* fs.nr_open: ceiling for any RLIMIT_NOFILE */
    long long nofile_soft;    /* RLIMIT_NOFILE soft limit; PV_SYSINFO_UNLIMITED = infinity */
    long long nofile_hard;    /* RLIMIT_NOFILE hard limit; PV_SYSINFO_UNLIMITED = infinity */
    int privileged;           /* CAP_SYS_RESOURCE: may raise the hard limit up to fs.nr_open */
    pv_cgroup_t cg;           /* cgroup CPU and memory limits */
    char ulps[256];           /* net.ipv4.tcp_available_ulp: the TCP upper layers ("tls" for kTLS) */
    int ulps_err;             /* 0, or the errno of reading it */
    int steal_err;            /* 0, or the errno of a failed /proc/stat read */
    unsigned steal_ms;        /* sampling interval used */
    pv_cpustat_t stat0;       /* first /proc/stat sample */
    pv_cpustat_t stat1;       /* second sample, steal_ms later */
} pv_host_t;

/* Read sysctl KEY ("net.core.somaxconn") from SYSROOT/proc/sys/net/core/somaxconn
 * into up to two integers. Returns 0, or an errno value. */
int pv_sysinfo_sysctl(const char *root, const char *key, pv_sysval_t *out);
/* Parse the aggregate "cpu " line of /proc/stat text. Returns 0 or EINVAL. */
int pv_sysinfo_parse_stat(const char *text, pv_cpustat_t *out);
/* Read and parse SYSROOT/proc/stat. Returns 0 or an errno value. */
int pv_sysinfo_read_stat(const char *root, pv_cpustat_t *out);
/* Steal share of the CPU time between two samples, in percent (0 when no
 * time passed). */
double pv_sysinfo_steal_pct(const pv_cpustat_t *a, const pv_cpustat_t *b);
/* Parse cgroup v2 cpu.max ("max 100000" or "50000 100000"); quota is
 * PV_SYSINFO_UNLIMITED for "max". Returns 0 or EINVAL. */
int pv_sysinfo_parse_cpu_max(const char *text, long long *quota, long long *period);
/* Parse a memory limit: v2 memory.max ("max" or bytes) or v1
 * memory.limit_in_bytes (the huge sentinel means none). Returns 0 or EINVAL. */
int pv_sysinfo_parse_mem(const char *text, long long *limit);
/* Find a cgroup path in /proc/self/cgroup text: the v2 entry ("0::/path")
 * when ctrl is NULL, else the v1 line whose controller list holds ctrl.
 * Returns 0, or ENOENT when there is no such line. */
int pv_sysinfo_cgroup_path(const char *text, const char *ctrl, char *out, size_t len);
/* Drop the last component of a cgroup path in place; returns 0 once at
 * "/" (nothing left to drop). */
int pv_sysinfo_cgroup_parent(char *p);
/* Read this process's cgroup limits (v2 if SYSROOT/sys/fs/cgroup is a
 * cgroup2 mount, else v1 cpu and memory controllers). */
void pv_sysinfo_cgroup(const char *root, pv_cgroup_t *cg);
/* Gather every host fact; sampling /proc/stat twice steal_ms apart, the
 * other reads happening in between. */
void pv_sysinfo_gather(const char *root, unsigned steal_ms, pv_host_t *h);

#endif
