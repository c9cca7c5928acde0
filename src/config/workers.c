/* `worker_processes auto`: the CPUs this process may really use. A
 * container often sees every host core while its cgroup allows far fewer;
 * running one busy thread per visible core would then just thrash.
 *
 * The affinity mask always comes from the real process (sched_getaffinity
 * has no file to redirect), even when sys_root points /proc and /sys at a
 * test tree. */
#include "conf.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../host/sysinfo.h"

/* Read a small file into buf (NUL-terminated); returns 0 on success. */
static int read_small(const char *root, const char *path, char *buf, size_t len)
{
    char full[4096];
    snprintf(full, sizeof(full), "%s%s", root, path);
    FILE *f = fopen(full, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

static int affinity_cpus(void)
{
    for (int ncpu = 1024; ncpu <= 1 << 16; ncpu *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        if (!set)
            return 1;
        size_t sz = CPU_ALLOC_SIZE(ncpu);
        if (sched_getaffinity(0, sz, set) == 0) {
            int n = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            return n > 0 ? n : 1;
        }
        CPU_FREE(set);
    }
    return 1;
}

/* This process's cgroup path for the v2 hierarchy ("0::/path") or, when
 * v2 is absent, the v1 cpu controller ("N:cpu,cpuacct:/path"). */
static int cgroup_path(const char *root, int v2, char *out, size_t len)
{
    char buf[8192];
    if (read_small(root, "/proc/self/cgroup", buf, sizeof(buf)) != 0)
        return -1;
    return pv_sysinfo_cgroup_path(buf, v2 ? NULL : "cpu", out, len) == 0 ? 0 : -1;
}

/* cgroup v2: the tightest cpu.max from this cgroup up to the root, since
 * every ancestor's limit applies. Returns the CPU count, 0 if unlimited. */
static int quota_v2(const char *root, char *why, size_t whylen)
{
    char path[2048], file[4096], buf[128];
    int best = 0;
    if (cgroup_path(root, 1, path, sizeof(path)) != 0)
        snprintf(path, sizeof(path), "/");
    for (;;) {
        snprintf(file, sizeof(file), "/sys/fs/cgroup%s%scpu.max", path,
                 path[strlen(path) - 1] == '/' ? "" : "/");
        long long q, per;
        if (read_small(root, file, buf, sizeof(buf)) == 0 &&
            sscanf(buf, "%lld %lld", &q, &per) == 2 && q > 0 && per > 0) {
            int n = (int)((q + per - 1) / per);
            if (best == 0 || n < best) {
                best = n;
                snprintf(why, whylen, "cgroup cpu.max %lld/%lld -> %d", q, per, n);
            }
        }
        if (!pv_sysinfo_cgroup_parent(path))
            break;
    }
    return best;
}

/* cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us; -1 means no quota. */
static int quota_v1(const char *root, char *why, size_t whylen)
{
    static const char *const dirs[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};
    char path[2048], file[4096], qb[64], pb[64];
    int havepath = cgroup_path(root, 0, path, sizeof(path)) == 0 && strcmp(path, "/") != 0;
    for (size_t d = 0; d < PV_NELEM(dirs); d++) {
        for (int sub = havepath; sub >= 0; sub--) {
            const char *rel = sub ? path : "";
            snprintf(file, sizeof(file), "%s%s/cpu.cfs_quota_us", dirs[d], rel);
            if (read_small(root, file, qb, sizeof(qb)) != 0)
                continue;
            snprintf(file, sizeof(file), "%s%s/cpu.cfs_period_us", dirs[d], rel);
            if (read_small(root, file, pb, sizeof(pb)) != 0)
                continue;
            long long q = atoll(qb), per = atoll(pb);
            if (q <= 0 || per <= 0)
                return 0;
            int n = (int)((q + per - 1) / per);
            snprintf(why, whylen, "cgroup cpu.cfs_quota_us %lld/%lld -> %d", q, per, n);
            return n;
        }
    }
    return 0;
}

int pv_conf_auto_workers(const char *sys_root, char *why, size_t whylen)
{
    const char *root = sys_root ? sys_root : "";
    char qwhy[160] = "";
    int aff = affinity_cpus();
    int quota = quota_v2(root, qwhy, sizeof(qwhy));
    if (quota == 0)
        quota = quota_v1(root, qwhy, sizeof(qwhy));
    int n = quota > 0 && quota < aff ? quota : aff;
    if (n < 1)
        n = 1;
    if (why && whylen) {
        if (quota > 0)
            snprintf(why, whylen, "%s, affinity %d CPUs", qwhy, aff);
        else
            snprintf(why, whylen, "no cgroup cpu quota, affinity %d CPUs", aff);
    }
    return n;
}
