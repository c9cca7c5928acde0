/* portvakt doctor: the /proc and cgroup parsers, the readers on a fake
 * sys-root tree, every check's decision on fake values, the wants derived
 * from a config, and the three output forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/host/sysinfo.c"
#include "../../src/doctor/doctor.c"
#include "http/vars.h"

/* ---- a fake sys-root tree ---- */

static char root[256];

/* Write ROOT/rel with text, creating the directories on the way. */
static void put_file(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_root(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/pv-doctor-unit-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int teardown_root(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- parsers ---- */

static void test_parse_stat(void **state)
{
    (void)state;
    pv_cpustat_t s;
    assert_int_equal(pv_sysinfo_parse_stat("cpu  100 1 50 800 10 0 5 34 7 0\ncpu0 1 2 3 4\n", &s), 0);
    assert_int_equal(s.total, 100 + 1 + 50 + 800 + 10 + 0 + 5 + 34);
    assert_int_equal(s.steal, 34);
    /* an old kernel without steal: four values */
    assert_int_equal(pv_sysinfo_parse_stat("cpu 10 0 10 80\n", &s), 0);
    assert_int_equal(s.total, 100);
    assert_int_equal(s.steal, 0);
    /* the cpu line need not be first; cpu0 is not the aggregate */
    assert_int_equal(pv_sysinfo_parse_stat("intr 5\ncpu0 9 9 9 9\ncpu  1 2 3 4 0 0 0 2\n", &s), 0);
    assert_int_equal(s.total, 12);
    assert_int_equal(s.steal, 2);
    assert_int_equal(pv_sysinfo_parse_stat("cpu0 1 2 3 4\n", &s), EINVAL);
    assert_int_equal(pv_sysinfo_parse_stat("cpu  1 2\n", &s), EINVAL);
    assert_int_equal(pv_sysinfo_parse_stat("", &s), EINVAL);
}

static void test_steal_pct(void **state)
{
    (void)state;
    pv_cpustat_t a = {1000, 100}, b = {2000, 300};
    assert_true(pv_sysinfo_steal_pct(&a, &b) > 19.99 && pv_sysinfo_steal_pct(&a, &b) < 20.01);
    assert_true(pv_sysinfo_steal_pct(&a, &a) == 0.0);
    assert_true(pv_sysinfo_steal_pct(&b, &a) == 0.0); /* counters went back: no claim */
}

static void test_parse_cpu_max(void **state)
{
    (void)state;
    long long q, p;
    assert_int_equal(pv_sysinfo_parse_cpu_max("max 100000\n", &q, &p), 0);
    assert_int_equal(q, PV_SYSINFO_UNLIMITED);
    assert_int_equal(p, 100000);
    assert_int_equal(pv_sysinfo_parse_cpu_max("50000 100000\n", &q, &p), 0);
    assert_int_equal(q, 50000);
    assert_int_equal(p, 100000);
    assert_int_equal(pv_sysinfo_parse_cpu_max("150000 50000", &q, &p), 0);
    assert_int_equal(q, 150000);
    assert_int_equal(p, 50000);
    assert_int_equal(pv_sysinfo_parse_cpu_max("max", &q, &p), 0);
    assert_int_equal(pv_sysinfo_parse_cpu_max("0 100000", &q, &p), EINVAL);
    assert_int_equal(pv_sysinfo_parse_cpu_max("50000 0", &q, &p), EINVAL);
    assert_int_equal(pv_sysinfo_parse_cpu_max("lots", &q, &p), EINVAL);
    assert_int_equal(pv_sysinfo_parse_cpu_max("50000 100000 7", &q, &p), EINVAL);
}

static void test_parse_mem(void **state)
{
    (void)state;
    long long m;
    assert_int_equal(pv_sysinfo_parse_mem("max\n", &m), 0);
    assert_int_equal(m, PV_SYSINFO_UNLIMITED);
    assert_int_equal(pv_sysinfo_parse_mem("536870912\n", &m), 0);
    assert_int_equal(m, 536870912LL);
    assert_int_equal(pv_sysinfo_parse_mem("9223372036854771712\n", &m), 0); /* v1 "no limit" */
    assert_int_equal(m, PV_SYSINFO_UNLIMITED);
    assert_int_equal(pv_sysinfo_parse_mem("maximal", &m), EINVAL);
    assert_int_equal(pv_sysinfo_parse_mem("-5", &m), EINVAL);
    assert_int_equal(pv_sysinfo_parse_mem("", &m), EINVAL);
}

static void test_cgroup_path(void **state)
{
    (void)state;
    const char *v1 = "12:memory:/docker/abc\n5:cpuset:/docker/set\n4:cpu,cpuacct:/docker/cpu\n"
                     "0::/system.slice/x.service\n";
    char out[256];
    assert_int_equal(pv_sysinfo_cgroup_path(v1, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/system.slice/x.service");
    assert_int_equal(pv_sysinfo_cgroup_path(v1, "cpu", out, sizeof(out)), 0);
    assert_string_equal(out, "/docker/cpu"); /* not the cpuset line */
    assert_int_equal(pv_sysinfo_cgroup_path(v1, "cpuacct", out, sizeof(out)), 0);
    assert_string_equal(out, "/docker/cpu");
    assert_int_equal(pv_sysinfo_cgroup_path(v1, "memory", out, sizeof(out)), 0);
    assert_string_equal(out, "/docker/abc");
    assert_int_equal(pv_sysinfo_cgroup_path(v1, "pids", out, sizeof(out)), ENOENT);
    assert_int_equal(pv_sysinfo_cgroup_path("4:cpu:/x", NULL, out, sizeof(out)), ENOENT);
    assert_int_equal(pv_sysinfo_cgroup_path("0::/", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(pv_sysinfo_cgroup_path("garbage", "cpu", out, sizeof(out)), ENOENT);
}

/* ---- readers on a tree ---- */

static void test_sysctl_reader(void **state)
{
    (void)state;
    pv_sysval_t v;
    put_file("proc/sys/net/core/somaxconn", "4096\n");
    put_file("proc/sys/net/ipv4/ip_local_port_range", "1024\t65535\n");
    put_file("proc/sys/fs/file-max", "9223372036854775807\n");
    put_file("proc/sys/net/ipv4/tcp_tw_reuse", "two\n");
    assert_int_equal(pv_sysinfo_sysctl(root, "net.core.somaxconn", &v), 0);
    assert_int_equal(v.v[0], 4096);
    assert_int_equal(pv_sysinfo_sysctl(root, "net.ipv4.ip_local_port_range", &v), 0);
    assert_int_equal(v.v[0], 1024);
    assert_int_equal(v.v[1], 65535);
    assert_int_equal(pv_sysinfo_sysctl(root, "fs.file-max", &v), 0);
    assert_true(v.v[0] == 9223372036854775807LL);
    assert_int_equal(pv_sysinfo_sysctl(root, "net.ipv4.tcp_tw_reuse", &v), EINVAL);
    assert_int_equal(pv_sysinfo_sysctl(root, "net.ipv4.tcp_syncookies", &v), ENOENT);
    assert_int_equal(v.err, ENOENT);
}

static void test_cgroup_v2_tree(void **state)
{
    (void)state;
    put_file("proc/self/cgroup", "0::/a/b\n");
    put_file("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    put_file("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
    put_file("sys/fs/cgroup/a/cpu.max", "150000 100000\n");
    put_file("sys/fs/cgroup/a/b/memory.max", "1073741824\n");
    put_file("sys/fs/cgroup/a/memory.max", "536870912\n");
    pv_cgroup_t cg;
    pv_sysinfo_cgroup(root, &cg);
    assert_int_equal(cg.version, 2);
    assert_string_equal(cg.path, "/a/b");
    assert_int_equal(cg.cpu_quota, 150000); /* the parent's quota applies */
    assert_int_equal(cg.cpu_period, 100000);
    assert_string_equal(cg.cpu_file, "/sys/fs/cgroup/a/cpu.max");
    assert_int_equal(cg.mem_limit, 536870912LL); /* the tighter of the two */
    assert_string_equal(cg.mem_file, "/sys/fs/cgroup/a/memory.max");
    /* the tightest wins whichever level holds it */
    put_file("sys/fs/cgroup/a/b/cpu.max", "50000 100000\n");
    pv_sysinfo_cgroup(root, &cg);
    assert_int_equal(cg.cpu_quota, 50000);
    assert_int_equal(quota_cpus(&cg), 1);
}

static void test_cgroup_v1_tree(void **state)
{
    (void)state;
    /* the container's own cgroup is the mount's root: the path in
     * /proc/self/cgroup does not exist under the mount */
    put_file("proc/self/cgroup", "7:memory:/docker/xyz\n3:cpu,cpuacct:/docker/xyz\n");
    put_file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    put_file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put_file("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
    pv_cgroup_t cg;
    pv_sysinfo_cgroup(root, &cg);
    assert_int_equal(cg.version, 1);
    assert_int_equal(cg.cpu_quota, 250000);
    assert_int_equal(quota_cpus(&cg), 3);
    assert_int_equal(cg.mem_limit, PV_SYSINFO_UNLIMITED);
    /* v1 "-1" is no quota; a nested cgroup's own limit is found too */
    put_file("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put_file("sys/fs/cgroup/memory/docker/xyz/memory.limit_in_bytes", "268435456\n");
    pv_sysinfo_cgroup(root, &cg);
    assert_int_equal(cg.cpu_quota, PV_SYSINFO_UNLIMITED);
    assert_int_equal(cg.mem_limit, 268435456LL);
    assert_string_equal(cg.mem_file, "/sys/fs/cgroup/memory/docker/xyz/memory.limit_in_bytes");
}

static void test_no_cgroup_and_missing_files(void **state)
{
    (void)state;
    pv_cgroup_t cg;
    pv_sysinfo_cgroup(root, &cg); /* empty tree */
    assert_int_equal(cg.version, 0);
    assert_int_equal(cg.cpu_quota, PV_SYSINFO_UNLIMITED);
    assert_int_equal(cg.mem_limit, PV_SYSINFO_UNLIMITED);
    pv_host_t h;
    pv_sysinfo_gather(root, 0, &h);
    assert_int_equal(h.somaxconn.err, ENOENT);
    assert_int_equal(h.steal_err, ENOENT);
    pv_doctor_wants_t w;
    pv_doctor_wants_generic(&w, root);
    pv_doctor_check_t c[PV_DOCTOR_NCHECKS];
    pv_doctor_run(&h, &w, c);
    for (int i = 0; i < PV_DOCTOR_NCHECKS; i++) {
        if (strcmp(c[i].id, "nofile") == 0 || strncmp(c[i].id, "cgroup_", 7) == 0)
            continue;
        assert_int_equal(c[i].status, PV_DOCTOR_WARN);
        assert_string_equal(c[i].value, "unavailable");
        assert_non_null(strstr(c[i].why, root));
    }
    assert_int_equal(pv_doctor_exit_status(c, PV_DOCTOR_NCHECKS), 1); /* WARN only */
}

static void test_gather_steal(void **state)
{
    (void)state;
    put_file("proc/stat", "cpu  100 0 100 700 0 0 0 100 0 0\n");
    pv_host_t h;
    pv_sysinfo_gather(root, 0, &h);
    assert_int_equal(h.steal_err, 0);
    assert_int_equal(h.stat0.steal, 100);
    assert_true(pv_sysinfo_steal_pct(&h.stat0, &h.stat1) == 0.0); /* a static file: no steal */
}

/* ---- decisions on fake values ---- */

/* A well-tuned host; tests spoil one value at a time. */
static void good_host(pv_host_t *h)
{
    memset(h, 0, sizeof(*h));
    h->root = "";
    h->somaxconn.v[0] = 4096;
    h->syn_backlog.v[0] = 4096;
    h->syncookies.v[0] = 1;
    h->tw_reuse.v[0] = 1;
    h->port_range.v[0] = 1024;
    h->port_range.v[1] = 65535;
    h->file_max.v[0] = 2097152;
    h->nr_open.v[0] = 1048576;
    h->nofile_soft = 65536;
    h->nofile_hard = 65536;
    h->cg.version = 2;
    h->cg.cpu_quota = PV_SYSINFO_UNLIMITED;
    h->cg.cpu_period = 100000;
    h->cg.mem_limit = PV_SYSINFO_UNLIMITED;
    h->steal_ms = 1000;
    h->stat0 = (pv_cpustat_t){1000, 0};
    h->stat1 = (pv_cpustat_t){2000, 0};
    strcpy(h->ulps, "mptcp tls");
}

static void wants(pv_doctor_wants_t *w, int workers, int conns, int backlog)
{
    memset(w, 0, sizeof(*w));
    w->conf_path = "/etc/portvakt/gw.conf";
    w->workers = workers;
    w->worker_connections = conns;
    w->backlog = backlog;
    snprintf(w->backlog_at, sizeof(w->backlog_at), "listen 127.0.0.1:80 in /etc/portvakt/gw.conf:7");
    w->header_bytes = 4 * 8192;
    w->nupstreams = 1;
    w->conc_per_addr = (long long)workers * conns;
}

static void run_one(check_fn fn, const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    memset(c, 0, sizeof(*c));
    fn(h, w, c);
}

static void test_somaxconn(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 1, 512, 4096);
    h.somaxconn.v[0] = 128;
    run_one(check_somaxconn, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_string_equal(c.value, "128");
    assert_non_null(strstr(c.want, "4096"));
    assert_non_null(strstr(c.why, "gw.conf:7"));
    assert_non_null(strstr(c.fix, "sysctl -w net.core.somaxconn=4096"));
    assert_string_equal(c.sysctl_key, "net.core.somaxconn");
    assert_string_equal(c.sysctl_value, "4096");
    h.somaxconn.v[0] = 4096;
    run_one(check_somaxconn, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_string_equal(c.fix, "");
    h.somaxconn.err = ENOENT;
    run_one(check_somaxconn, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_string_equal(c.value, "unavailable");
    assert_non_null(strstr(c.why, "/proc/sys/net/core/somaxconn"));
}

static void test_syn_backlog(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 1, 512, 1024);
    h.syn_backlog.v[0] = 512;
    run_one(check_syn_backlog, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN); /* cookies cover the overflow */
    h.syncookies.v[0] = 0;
    run_one(check_syn_backlog, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.fix, "net.ipv4.tcp_max_syn_backlog=1024"));
    h.syn_backlog.v[0] = 1024;
    run_one(check_syn_backlog, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
}

static void test_syncookies(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 1, 512, 511);
    run_one(check_syncookies, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.syncookies.v[0] = 0;
    run_one(check_syncookies, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_string_equal(c.sysctl_value, "1");
    h.syncookies.v[0] = 2;
    run_one(check_syncookies, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_non_null(strstr(c.why, "every connection"));
}

static void test_tw_reuse(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 1, 512, 511);
    run_one(check_tw_reuse, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.tw_reuse.v[0] = 2;
    run_one(check_tw_reuse, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_non_null(strstr(c.why, "loopback"));
    w.all_loopback = 1; /* loopback-only reuse is enough for loopback upstreams */
    run_one(check_tw_reuse, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_non_null(strstr(c.why, "loopback"));
    h.tw_reuse.v[0] = 0;
    run_one(check_tw_reuse, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_non_null(strstr(c.fix, "net.ipv4.tcp_tw_reuse=1"));
}

static void test_port_range(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 2, 512, 511);
    h.port_range.v[0] = 32768;
    h.port_range.v[1] = 60999;
    run_one(check_port_range, &h, &w, &c); /* keepalive everywhere: 1024 concurrent fit */
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_non_null(strstr(c.value, "28232 ports"));
    /* keepalive off: 1024 new connections/s x 60 s = 61440 ports */
    w.churn_per_addr = 1024;
    snprintf(w.churn_name, sizeof(w.churn_name), "auth");
    snprintf(w.churn_reason, sizeof(w.churn_reason), "upstream auth has no keepalive");
    run_one(check_port_range, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_non_null(strstr(c.want, "61440"));
    assert_non_null(strstr(c.why, "TIME_WAIT"));
    assert_string_equal(c.sysctl_value, "4096 65535");
    assert_non_null(strstr(c.fix, "keepalive 32"));
    h.port_range.v[0] = 1024;
    h.port_range.v[1] = 65535;
    run_one(check_port_range, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    /* beyond any range: still WARN, and the fix is keepalive */
    w.churn_per_addr = 4096;
    run_one(check_port_range, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_non_null(strstr(c.why, "no port range is that wide"));
    assert_string_equal(c.sysctl_value, "1024 65535");
    /* fewer ports than concurrent connections to one address */
    w.churn_per_addr = 0;
    w.conc_per_addr = 40000;
    h.port_range.v[0] = 32768;
    h.port_range.v[1] = 60999;
    run_one(check_port_range, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.why, "EADDRNOTAVAIL"));
    h.port_range.err = EINVAL;
    run_one(check_port_range, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_string_equal(c.value, "unavailable");
}

static void test_file_max(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 4, 1024, 511); /* 8192 descriptors */
    run_one(check_file_max, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.file_max.v[0] = 10000;
    run_one(check_file_max, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    h.file_max.v[0] = 8000;
    run_one(check_file_max, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.fix, "fs.file-max=16384"));
}

static void test_nofile(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 2, 1024, 511); /* 4096 descriptors */
    h.nofile_soft = 1024;
    h.nofile_hard = 524288;
    run_one(check_nofile, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.want, "4096"));
    assert_non_null(strstr(c.fix, "worker_rlimit_nofile 4096;"));
    assert_null(c.sysctl_key);
    /* worker_rlimit_nofile within the hard limit raises it */
    w.rlimit_nofile = 8192;
    run_one(check_nofile, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_non_null(strstr(c.value, "worker_rlimit_nofile 8192 -> 8192"));
    /* above the hard limit without CAP_SYS_RESOURCE it stays at hard */
    h.nofile_hard = 2048;
    run_one(check_nofile, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.value, "-> 2048"));
    assert_non_null(strstr(c.why, "CAP_SYS_RESOURCE"));
    assert_non_null(strstr(c.fix, "LimitNOFILE=4096"));
    h.privileged = 1;
    run_one(check_nofile, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    /* fs.nr_open caps everything */
    w.rlimit_nofile = 0;
    h.nofile_soft = h.nofile_hard = PV_SYSINFO_UNLIMITED;
    h.nr_open.v[0] = 2000;
    run_one(check_nofile, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_string_equal(c.sysctl_key, "fs.nr_open");
    assert_string_equal(c.sysctl_value, "4096");
}

static void test_cgroup_cpu(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 4, 512, 511);
    run_one(check_cgroup_cpu, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_non_null(strstr(c.value, "no quota"));
    h.cg.cpu_quota = 50000; /* docker --cpus=0.5 */
    snprintf(h.cg.cpu_file, sizeof(h.cg.cpu_file), "/sys/fs/cgroup/cpu.max");
    run_one(check_cgroup_cpu, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.value, "0.50 CPUs"));
    assert_non_null(strstr(c.want, "<= 1"));
    assert_non_null(strstr(c.fix, "worker_processes auto;"));
    assert_non_null(strstr(c.fix, "--cpus=4"));
    h.cg.cpu_quota = 300000; /* 3 CPUs, 4 workers: above, under twice */
    run_one(check_cgroup_cpu, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    h.cg.cpu_quota = 350000; /* 3.5 CPUs: auto would run 4 */
    run_one(check_cgroup_cpu, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    w.workers = 1; /* auto under half a CPU */
    w.workers_auto = 1;
    h.cg.cpu_quota = 50000;
    run_one(check_cgroup_cpu, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_non_null(strstr(c.why, "Below one CPU"));
}

static void test_cgroup_memory(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 4, 1024, 511); /* 4096 x 48 KiB = 192 MiB, + 64 MiB */
    run_one(check_cgroup_memory, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    assert_string_equal(c.want, ">= 256 MiB");
    assert_non_null(strstr(c.why, "16 KiB"));
    assert_non_null(strstr(c.why, "= 192 MiB"));
    h.cg.mem_limit = 512LL << 20;
    run_one(check_cgroup_memory, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.cg.mem_limit = 200LL << 20;
    run_one(check_cgroup_memory, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    h.cg.mem_limit = 128LL << 20;
    run_one(check_cgroup_memory, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.value, "128 MiB"));
    assert_non_null(strstr(c.fix, "--memory=256m"));
    assert_non_null(strstr(c.fix, "worker_connections 341;")); /* (128 - 64) MiB / 48 KiB / 4 */
}

static void test_steal(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c;
    good_host(&h);
    wants(&w, 1, 512, 511);
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.stat1 = (pv_cpustat_t){2000, 50}; /* exactly 5%: not above */
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.stat1 = (pv_cpustat_t){2000, 100};
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_string_equal(c.value, "10.0% over 1000 ms");
    h.stat1 = (pv_cpustat_t){2000, 200};
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_FAIL);
    assert_non_null(strstr(c.why, "noisy neighbour"));
    assert_non_null(strstr(c.why, "15%"));
    h.stat1 = h.stat0;
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_OK);
    h.steal_err = ENOENT;
    run_one(check_steal, &h, &w, &c);
    assert_int_equal(c.status, PV_DOCTOR_WARN);
    assert_string_equal(c.value, "unavailable");
}

/* ---- wants from a config ---- */

static pv_conf_t *load(const char *text)
{
    char err[512];
    pv_conf_t *c = pv_conf_load_text("/etc/portvakt/gw.conf", text, strlen(text), PV_CONF_F_NO_DNS, err, sizeof(err));
    if (!c)
        fail_msg("config: %s", err);
    return c;
}

static void test_wants_from_conf(void **state)
{
    (void)state;
    pv_conf_t *c = load("worker_processes 4;\n"
                        "events { worker_connections 1024; }\n"
                        "worker_rlimit_nofile 20000;\n"
                        "http {\n"
                        "  large_client_header_buffers 4 16k;\n"
                        "  upstream auth { server 127.0.0.1:8081; server 127.0.0.2:8081; keepalive 32; }\n"
                        "  upstream inv { server 10.0.0.6:8080; }\n"
                        "  upstream idle { server 10.0.0.7:8080; }\n"
                        "  server {\n"
                        "    listen 127.0.0.1:8080 backlog=4096;\n"
                        "    location /a/ { proxy_pass http://auth/; proxy_http_version 1.1;\n"
                        "                   proxy_set_header Connection \"\"; }\n"
                        "    location /i/ { proxy_pass http://inv; }\n"
                        "  }\n"
                        "  server { listen 127.0.0.1:8090; }\n"
                        "}\n");
    pv_doctor_wants_t w;
    pv_doctor_wants_conf(&w, c, root);
    assert_int_equal(w.workers, 4);
    assert_int_equal(w.worker_connections, 1024);
    assert_int_equal(w.backlog, 4096);
    assert_string_equal(w.backlog_at, "listen 127.0.0.1:8080 in /etc/portvakt/gw.conf:10");
    assert_int_equal(w.rlimit_nofile, 20000);
    assert_int_equal(w.header_bytes, 4 * 16384);
    assert_int_equal(w.nupstreams, 2); /* idle is not proxied to */
    assert_false(w.all_loopback);
    assert_int_equal(w.conc_per_addr, 4096);   /* inv has one address */
    assert_int_equal(w.churn_per_addr, 4096);  /* inv has no keepalive */
    assert_string_equal(w.churn_name, "inv");
    assert_non_null(strstr(w.churn_reason, "no keepalive"));
    pv_conf_unref(c);

    /* keepalive without HTTP/1.1 cannot reuse; two addresses share the load */
    c = load("http {\n"
             "  upstream auth { server 127.0.0.1:8081; server 127.0.0.2:8081; keepalive 32; }\n"
             "  server {\n"
             "    listen 127.0.0.1:8080;\n"
             "    location /a/ { proxy_pass http://auth/; }\n"
             "  }\n"
             "}\n");
    pv_doctor_wants_conf(&w, c, root);
    assert_int_equal(w.workers, 1);
    assert_int_equal(w.backlog, 511);
    assert_true(w.all_loopback);
    assert_int_equal(w.conc_per_addr, 256);
    assert_int_equal(w.churn_per_addr, 256);
    assert_non_null(strstr(w.churn_reason, "HTTP/1.0"));
    assert_non_null(strstr(w.churn_reason, "gw.conf:5"));
    pv_conf_unref(c);

    /* HTTP/1.1 but an explicit Connection: close */
    c = load("http {\n"
             "  upstream auth { server 127.0.0.1:8081; keepalive 8; }\n"
             "  server {\n"
             "    listen 127.0.0.1:8080;\n"
             "    location / { proxy_pass http://auth; proxy_http_version 1.1;\n"
             "                 proxy_set_header Connection close; }\n"
             "  }\n"
             "}\n");
    pv_doctor_wants_conf(&w, c, root);
    assert_int_equal(w.churn_per_addr, 512);
    assert_non_null(strstr(w.churn_reason, "Connection: close"));
    pv_conf_unref(c);

    /* auto follows the quota under the sys-root */
    put_file("sys/fs/cgroup/cgroup.controllers", "cpu\n");
    put_file("sys/fs/cgroup/cpu.max", "50000 100000\n");
    c = load("worker_processes auto;\nhttp { server { listen 127.0.0.1:8080; } }\n");
    pv_doctor_wants_conf(&w, c, root);
    assert_true(w.workers_auto);
    assert_int_equal(w.workers, 1);
    assert_non_null(strstr(w.workers_why, "50000/100000"));
    assert_int_equal(w.nupstreams, 0);
    pv_conf_unref(c);
}

/* ---- output ---- */

/* The JSON report of c as a malloc'd string. */
static char *capture_json(const pv_doctor_check_t *c, int n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pv_doctor_print_json(f, c, n);
    fclose(f);
    return buf;
}

static void test_json(void **state)
{
    (void)state;
    pv_doctor_check_t c[2];
    memset(c, 0, sizeof(c));
    c[0].id = "somaxconn";
    c[0].status = PV_DOCTOR_FAIL;
    snprintf(c[0].value, sizeof(c[0].value), "128");
    snprintf(c[0].want, sizeof(c[0].want), ">= 4096");
    snprintf(c[0].why, sizeof(c[0].why), "a \"quoted\" \\ path\tand\x01");
    snprintf(c[0].fix, sizeof(c[0].fix), "line one\nline two");
    c[1].id = "steal";
    char *out = capture_json(c, 2);
    assert_string_equal(out, "{\"checks\":[{\"id\":\"somaxconn\",\"status\":\"fail\",\"value\":\"128\","
                             "\"want\":\">= 4096\",\"why\":\"a \\\"quoted\\\" \\\\ path\\tand\\u0001\","
                             "\"fix\":\"line one\\nline two\"},{\"id\":\"steal\",\"status\":\"ok\","
                             "\"value\":\"\",\"want\":\"\",\"why\":\"\",\"fix\":\"\"}]}\n");
    free(out);
}

static void test_sysctl_fragment(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c[PV_DOCTOR_NCHECKS];
    good_host(&h);
    wants(&w, 1, 512, 4096);
    h.somaxconn.v[0] = 128;
    h.nofile_soft = 256;
    pv_doctor_run(&h, &w, c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pv_doctor_print_sysctl(f, &w, c, PV_DOCTOR_NCHECKS);
    fclose(f);
    assert_non_null(strstr(buf, "# /etc/sysctl.d/60-portvakt.conf \xe2\x80\x94 generated by portvakt doctor for "
                                "/etc/portvakt/gw.conf\n"));
    assert_non_null(strstr(buf, "\nnet.core.somaxconn = 4096\n"));
    assert_non_null(strstr(buf, "# want: >= 4096"));
    assert_non_null(strstr(buf, "not sysctl settings: nofile"));
    /* every non-comment line is the one failing key */
    int keys = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        assert_string_equal(line, "net.core.somaxconn = 4096");
        keys++;
    }
    assert_int_equal(keys, 1);
    free(buf);
}

static pv_doctor_check_t *find_check(pv_doctor_check_t *c, const char *id)
{
    for (int i = 0; i < PV_DOCTOR_NCHECKS; i++)
        if (strcmp(c[i].id, id) == 0)
            return &c[i];
    return NULL;
}

/* kernel TLS: asked for and missing warns; not asked for is only said */
static void test_ktls(void **state)
{
    PV_UNUSED(state);
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c[PV_DOCTOR_NCHECKS];
    good_host(&h);
    wants(&w, 1, 512, 511);
    pv_doctor_run(&h, &w, c);
    pv_doctor_check_t *k = find_check(c, "ktls");
    assert_non_null(k);
    assert_int_equal(k->status, PV_DOCTOR_OK);
    assert_non_null(strstr(k->value, "available (tcp_available_ulp: mptcp tls)"));
    assert_non_null(strstr(k->why, "does not ask"));
    strcpy(w.ktls_at, "ssl_conf_command Options KTLS in gw.conf:3");
    pv_doctor_run(&h, &w, c);
    assert_int_equal(k->status, PV_DOCTOR_OK);
    strcpy(h.ulps, "mptcp");
    pv_doctor_run(&h, &w, c);
    assert_int_equal(k->status, PV_DOCTOR_WARN);
    assert_non_null(strstr(k->value, "not available"));
    assert_non_null(strstr(k->why, "gw.conf:3"));
    assert_non_null(strstr(k->fix, "modprobe tls"));
    strcpy(h.ulps, "tlsx");
    pv_doctor_run(&h, &w, c);
    assert_int_equal(k->status, PV_DOCTOR_WARN);
}

static void test_table(void **state)
{
    (void)state;
    pv_host_t h;
    pv_doctor_wants_t w;
    pv_doctor_check_t c[PV_DOCTOR_NCHECKS];
    good_host(&h);
    wants(&w, 1, 512, 4096);
    h.somaxconn.v[0] = 128;
    pv_doctor_run(&h, &w, c);
    assert_int_equal(pv_doctor_exit_status(c, PV_DOCTOR_NCHECKS), 2);
    for (int color = 0; color < 2; color++) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        pv_doctor_print_table(f, &w, "/fake", c, PV_DOCTOR_NCHECKS, color);
        fclose(f);
        assert_non_null(strstr(buf, "sys-root /fake"));
        assert_non_null(strstr(buf, "    fix: sysctl -w net.core.somaxconn=4096\n"));
        assert_non_null(strstr(buf, "11 checks: 10 ok, 0 warn, 1 fail"));
        assert_true((strchr(buf, '\033') != NULL) == color);
        free(buf);
    }
}

static void test_wrap(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_wrapped(f, "# x: ", "#   ", "aaaa bbbb cccc dddd", 14);
    fclose(f);
    assert_string_equal(buf, "# x: aaaa bbbb\n#   cccc dddd\n");
    free(buf);
}

/* ---- command line ---- */

/* Run pv_doctor_main with stdout and stderr sent to /dev/null. */
static int run_main(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2), nul = open("/dev/null", O_WRONLY);
    dup2(nul, 1);
    dup2(nul, 2);
    int rc = pv_doctor_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(o);
    close(e);
    close(nul);
    return rc;
}

static void test_main(void **state)
{
    (void)state;
    setenv("PV_DOCTOR_STEAL_MS", "0", 1);
    char *bad_opt[] = {"doctor", "--frobnicate", NULL};
    assert_int_equal(run_main(2, bad_opt), PV_DOCTOR_USAGE_ERROR);
    char *no_arg[] = {"doctor", "-c", NULL};
    assert_int_equal(run_main(2, no_arg), PV_DOCTOR_USAGE_ERROR);
    char *both[] = {"doctor", "--json", "--sysctl", NULL};
    assert_int_equal(run_main(3, both), PV_DOCTOR_USAGE_ERROR);
    char *help[] = {"doctor", "-h", NULL};
    assert_int_equal(run_main(2, help), 0);

    char conf[512];
    snprintf(conf, sizeof(conf), "%s/bad.conf", root);
    put_file("bad.conf", "http {\n  frobnicate on;\n}\n");
    char *bad_conf[] = {"doctor", "-c", conf, NULL};
    assert_int_equal(run_main(3, bad_conf), PV_DOCTOR_USAGE_ERROR);

    put_file("proc/sys/net/core/somaxconn", "128\n");
    put_file("gw.conf", "http { server { listen 127.0.0.1:8080 backlog=4096; } }\n");
    snprintf(conf, sizeof(conf), "%s/gw.conf", root);
    char rootarg[300];
    snprintf(rootarg, sizeof(rootarg), "--sys-root=%s/", root);
    char *fails[] = {"doctor", "-c", conf, "--json", rootarg, NULL};
    assert_int_equal(run_main(5, fails), 2);
    put_file("proc/sys/net/core/somaxconn", "8192\n");
    char *passes[] = {"doctor", "-c", conf, "--sysctl", rootarg, NULL};
    assert_int_equal(run_main(5, passes), 1); /* the rest is missing: WARN only */

    setenv("PV_DOCTOR_STEAL_MS", "soon", 1);
    assert_int_equal(run_main(5, passes), PV_DOCTOR_USAGE_ERROR);
    unsetenv("PV_DOCTOR_STEAL_MS");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_root, teardown_root)

int main(void)
{
    pv_http_vars_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_steal_pct),
        cmocka_unit_test(test_parse_cpu_max),
        cmocka_unit_test(test_parse_mem),
        cmocka_unit_test(test_cgroup_path),
        T(test_sysctl_reader),
        T(test_cgroup_v2_tree),
        T(test_cgroup_v1_tree),
        T(test_no_cgroup_and_missing_files),
        T(test_gather_steal),
        cmocka_unit_test(test_somaxconn),
        cmocka_unit_test(test_syn_backlog),
        cmocka_unit_test(test_syncookies),
        cmocka_unit_test(test_tw_reuse),
        cmocka_unit_test(test_port_range),
        cmocka_unit_test(test_file_max),
        cmocka_unit_test(test_nofile),
        cmocka_unit_test(test_cgroup_cpu),
        cmocka_unit_test(test_cgroup_memory),
        cmocka_unit_test(test_steal),
        T(test_wants_from_conf),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_sysctl_fragment),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_ktls),
        cmocka_unit_test(test_wrap),
        T(test_main),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
