/* Readers for the host facts `portvakt doctor` audits. Each reader turns a
 * missing or malformed file into an errno value, never a crash, so the
 * doctor can say what it could not see. */
#include "sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/common.h"

#define CAP_SYS_RESOURCE_BIT 24

/* Read SYSROOT+PATH into buf (NUL-terminated, truncated to len-1 bytes).
 * Returns 0, or the errno of the failure. */
static int read_file(const char *root, const char *path, char *buf, size_t len)
{
    char full[4096];
    if ((size_t)snprintf(full, sizeof(full), "%s%s", root, path) >= sizeof(full))
        return ENAMETOOLONG;
    buf[0] = '\0';
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t n = 0;
    while (n < len - 1) {
        ssize_t r = read(fd, buf + n, len - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return 0;
}

/* Copy src into dst, cut to len - 1 bytes. */
static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int path_exists(const char *root, const char *path)
{
    char full[4096];
    struct stat st;
    snprintf(full, sizeof(full), "%s%s", root, path);
    return stat(full, &st) == 0;
}

int pv_sysinfo_sysctl(const char *root, const char *key, pv_sysval_t *out)
{
    char path[256], buf[256];
    out->v[0] = out->v[1] = 0;
    int n = snprintf(path, sizeof(path), "/proc/sys/%s", key);
    for (int i = 10; i < n; i++)
        if (path[i] == '.')
            path[i] = '/';
    out->err = read_file(root, path, buf, sizeof(buf));
    if (out->err)
        return out->err;
    char *p = buf;
    int got = 0;
    while (got < 2) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || *p == '\0')
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE)
            break;
        out->v[got++] = v;
        p = end;
    }
    if (got == 0)
        out->err = EINVAL;
    return out->err;
}

int pv_sysinfo_parse_stat(const char *text, pv_cpustat_t *out)
{
    const char *line = text;
    while (line && strncmp(line, "cpu ", 4) != 0) {
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    if (!line)
        return EINVAL;
    const char *p = line + 4;
    unsigned long long v[8] = {0};
    int n = 0;
    while (n < 8) {
        while (*p == ' ')
            p++;
        if (*p < '0' || *p > '9')
            break;
        char *end;
        v[n++] = strtoull(p, &end, 10);
        p = end;
    }
    if (n < 4) /* user nice system idle: anything less is not /proc/stat */
        return EINVAL;
    /* guest and guest_nice (9th, 10th) are already counted in user and nice */
    out->total = 0;
    for (int i = 0; i < n; i++)
        out->total += v[i];
    out->steal = v[7];
    return 0;
}

int pv_sysinfo_read_stat(const char *root, pv_cpustat_t *out)
{
    char buf[4096] = "";
    int e = read_file(root, "/proc/stat", buf, sizeof(buf));
    return e ? e : pv_sysinfo_parse_stat(buf, out);
}

double pv_sysinfo_steal_pct(const pv_cpustat_t *a, const pv_cpustat_t *b)
{
    if (b->total <= a->total || b->steal < a->steal)
        return 0.0;
    return 100.0 * (double)(b->steal - a->steal) / (double)(b->total - a->total);
}

/* A non-negative decimal integer filling the word at *p; advances *p. */
static int parse_ll(const char **p, long long *v)
{
    while (**p == ' ' || **p == '\t')
        (*p)++;
    if (**p < '0' || **p > '9')
        return EINVAL;
    char *end;
    errno = 0;
    *v = strtoll(*p, &end, 10);
    if (errno == ERANGE)
        return EINVAL;
    *p = end;
    return 0;
}

/* Only blanks and an optional newline left. */
static int at_end(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    return *p == '\0';
}

int pv_sysinfo_parse_cpu_max(const char *text, long long *quota, long long *period)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    if (strncmp(p, "max", 3) == 0) {
        *quota = PV_SYSINFO_UNLIMITED;
        p += 3;
    } else if (parse_ll(&p, quota) != 0 || *quota <= 0) {
        return EINVAL;
    }
    *period = 100000; /* the kernel's default when the file gives only the quota */
    if (!at_end(p) && (parse_ll(&p, period) != 0 || *period <= 0))
        return EINVAL;
    return at_end(p) ? 0 : EINVAL;
}

int pv_sysinfo_parse_mem(const char *text, long long *limit)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    if (strncmp(p, "max", 3) == 0) {
        *limit = PV_SYSINFO_UNLIMITED;
        return at_end(p + 3) ? 0 : EINVAL;
    }
    if (parse_ll(&p, limit) != 0 || !at_end(p))
        return EINVAL;
    if (*limit >= PV_SYSINFO_V1_NOLIMIT)
        *limit = PV_SYSINFO_UNLIMITED;
    return 0;
}

int pv_sysinfo_cgroup_path(const char *text, const char *ctrl, char *out, size_t len)
{
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        const char *c1 = memchr(line, ':', ll);
        const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            const char *ctrls = c1 + 1;
            size_t clen = (size_t)(c2 - ctrls);
            int match = 0;
            if (!ctrl) {
                match = c1 - line == 1 && line[0] == '0' && clen == 0;
            } else {
                /* "cpu,cpuacct": whole names only, so "cpu" never matches "cpuset" */
                size_t want = strlen(ctrl);
                for (const char *t = ctrls; t < c2;) {
                    const char *comma = memchr(t, ',', (size_t)(c2 - t));
                    const char *te = comma ? comma : c2;
                    if ((size_t)(te - t) == want && memcmp(t, ctrl, want) == 0)
                        match = 1;
                    t = te + 1;
                }
            }
            if (match) {
                size_t plen = ll - (size_t)(c2 + 1 - line);
                if (plen == 0 || plen >= len)
                    return ENOENT;
                memcpy(out, c2 + 1, plen);
                out[plen] = '\0';
                return 0;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return ENOENT;
}

int pv_sysinfo_cgroup_parent(char *p)
{
    char *s = strrchr(p, '/');
    if (!s || (s == p && p[1] == '\0'))
        return 0;
    if (s == p)
        p[1] = '\0';
    else
        *s = '\0';
    return 1;
}

/* cgroup v1 quota text (buf) and its period file: 1 when both read, with
 * quota PV_SYSINFO_UNLIMITED for "-1" (no quota). */
static int v1_quota(const char *root, const char *buf, const char *period_rel, long long *q, long long *per)
{
    const char *p = buf;
    while (*p == ' ')
        p++;
    if (p[0] == '-' && p[1] == '1') {
        *q = PV_SYSINFO_UNLIMITED;
        return 1;
    }
    if (parse_ll(&p, q) != 0 || *q <= 0)
        return 0;
    char pb[64] = "";
    const char *pp = pb;
    return read_file(root, period_rel, pb, sizeof(pb)) == 0 && parse_ll(&pp, per) == 0 && *per > 0;
}

/* Walk from MOUNT+PATH up to MOUNT reading FILE at each level and keep the
 * tightest CPU quota (cpu) or memory limit (!cpu). v1 CPU reads two files
 * (quota and period). Directories missing in the tree are skipped: inside
 * a container the mount's root often is the container's own cgroup. */
static void walk_limits(const char *root, const char *mount, const char *cgpath, const char *file,
                        const char *period_file, int cpu, pv_cgroup_t *cg)
{
    char path[1024], rel[2560], prel[2560], buf[256] = "";
    snprintf(path, sizeof(path), "%s", cgpath);
    for (;;) {
        const char *sep = strcmp(path, "/") == 0 ? "" : path;
        snprintf(rel, sizeof(rel), "%s%s/%s", mount, sep, file);
        if (read_file(root, rel, buf, sizeof(buf)) == 0) {
            if (cpu) {
                long long q, per = 100000;
                int ok;
                if (period_file) {
                    snprintf(prel, sizeof(prel), "%s%s/%s", mount, sep, period_file);
                    ok = v1_quota(root, buf, prel, &q, &per);
                } else {
                    ok = pv_sysinfo_parse_cpu_max(buf, &q, &per) == 0;
                }
                if (ok && q != PV_SYSINFO_UNLIMITED &&
                    (cg->cpu_quota == PV_SYSINFO_UNLIMITED || q * cg->cpu_period < cg->cpu_quota * per)) {
                    cg->cpu_quota = q;
                    cg->cpu_period = per;
                    copy_str(cg->cpu_file, sizeof(cg->cpu_file), rel);
                }
            } else {
                long long lim;
                if (pv_sysinfo_parse_mem(buf, &lim) == 0 && lim != PV_SYSINFO_UNLIMITED &&
                    (cg->mem_limit == PV_SYSINFO_UNLIMITED || lim < cg->mem_limit)) {
                    cg->mem_limit = lim;
                    copy_str(cg->mem_file, sizeof(cg->mem_file), rel);
                }
            }
        }
        if (!pv_sysinfo_cgroup_parent(path))
            break;
    }
}

void pv_sysinfo_cgroup(const char *root, pv_cgroup_t *cg)
{
    char self[8192] = "";
    int have_self = read_file(root, "/proc/self/cgroup", self, sizeof(self)) == 0;
    memset(cg, 0, sizeof(*cg));
    cg->cpu_quota = PV_SYSINFO_UNLIMITED;
    cg->cpu_period = 100000;
    cg->mem_limit = PV_SYSINFO_UNLIMITED;
    snprintf(cg->path, sizeof(cg->path), "/");

    if (path_exists(root, "/sys/fs/cgroup/cgroup.controllers")) {
        cg->version = 2;
        if (have_self)
            pv_sysinfo_cgroup_path(self, NULL, cg->path, sizeof(cg->path));
        walk_limits(root, "/sys/fs/cgroup", cg->path, "cpu.max", NULL, 1, cg);
        walk_limits(root, "/sys/fs/cgroup", cg->path, "memory.max", NULL, 0, cg);
        return;
    }
    static const char *const cpu_mounts[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};
    char path[1024];
    for (size_t i = 0; i < PV_NELEM(cpu_mounts); i++) {
        if (!path_exists(root, cpu_mounts[i]))
            continue;
        cg->version = 1;
        if (!have_self || pv_sysinfo_cgroup_path(self, "cpu", path, sizeof(path)) != 0)
            snprintf(path, sizeof(path), "/");
        snprintf(cg->path, sizeof(cg->path), "%s", path);
        walk_limits(root, cpu_mounts[i], path, "cpu.cfs_quota_us", "cpu.cfs_period_us", 1, cg);
        break;
    }
    if (path_exists(root, "/sys/fs/cgroup/memory")) {
        cg->version = 1;
        if (!have_self || pv_sysinfo_cgroup_path(self, "memory", path, sizeof(path)) != 0)
            snprintf(path, sizeof(path), "/");
        walk_limits(root, "/sys/fs/cgroup/memory", path, "memory.limit_in_bytes", NULL, 0, cg);
    }
}

/* CAP_SYS_RESOURCE in this process's effective set: what setrlimit()
 * needs to raise a hard limit (root in a default Docker container lacks it). */
static int has_sys_resource(void)
{
    char buf[4096] = "";
    if (read_file("", "/proc/self/status", buf, sizeof(buf)) != 0)
        return geteuid() == 0;
    const char *p = strstr(buf, "\nCapEff:");
    if (!p)
        return geteuid() == 0;
    unsigned long long caps = strtoull(p + 8, NULL, 16);
    return (caps >> CAP_SYS_RESOURCE_BIT) & 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pv_sysinfo_gather(const char *root, unsigned steal_ms, pv_host_t *h)
{
    memset(h, 0, sizeof(*h));
    h->root = root;
    h->steal_ms = steal_ms;
    uint64_t t0 = now_ms();
    h->steal_err = pv_sysinfo_read_stat(root, &h->stat0);

    pv_sysinfo_sysctl(root, "net.core.somaxconn", &h->somaxconn);
    pv_sysinfo_sysctl(root, "net.ipv4.tcp_max_syn_backlog", &h->syn_backlog);
    pv_sysinfo_sysctl(root, "net.ipv4.tcp_syncookies", &h->syncookies);
    pv_sysinfo_sysctl(root, "net.ipv4.tcp_tw_reuse", &h->tw_reuse);
    pv_sysinfo_sysctl(root, "net.ipv4.ip_local_port_range", &h->port_range);
    pv_sysinfo_sysctl(root, "fs.file-max", &h->file_max);
    pv_sysinfo_sysctl(root, "fs.nr_open", &h->nr_open);
    h->ulps_err = read_file(root, "/proc/sys/net/ipv4/tcp_available_ulp", h->ulps, sizeof(h->ulps));
    h->ulps[strcspn(h->ulps, "\n")] = '\0';
    if (h->port_range.err == 0 && h->port_range.v[1] < h->port_range.v[0])
        h->port_range.err = EINVAL;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        h->nofile_soft = rl.rlim_cur == RLIM_INFINITY ? PV_SYSINFO_UNLIMITED : (long long)rl.rlim_cur;
        h->nofile_hard = rl.rlim_max == RLIM_INFINITY ? PV_SYSINFO_UNLIMITED : (long long)rl.rlim_max;
    }
    h->privileged = has_sys_resource();
    pv_sysinfo_cgroup(root, &h->cg);

    if (h->steal_err == 0) {
        uint64_t spent = now_ms() - t0;
        if (spent < steal_ms) {
            uint64_t left = steal_ms - spent;
            struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
        h->steal_err = pv_sysinfo_read_stat(root, &h->stat1);
    }
}
