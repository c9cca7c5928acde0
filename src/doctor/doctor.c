/* `portvakt doctor`: each check compares one host limit with what the
 * config needs and says why, with the numbers, and how to fix it. The
 * decisions are pure functions of pv_host_t and pv_doctor_wants_t, so
 * tests feed them fake values; the readers live in sysinfo.c. */
#include "doctor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../http/headers.h"

#define PUT(c, field, ...) put((c)->field, sizeof((c)->field), __VA_ARGS__)

/* The widest ephemeral range Linux allows without taking privileged ports. */
#define WIDEST_PORTS (65535 - 1024 + 1)

static const char *const status_word[] = {"OK", "WARN", "FAIL"};
static const char *const status_json[] = {"ok", "warn", "fail"};

/* Format into a fixed field; long paths are cut rather than overflow. */
__attribute__((format(printf, 3, 4))) static void put(char *dst, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}

/* ---- wants ---------------------------------------------------------------- */

void pv_doctor_wants_generic(pv_doctor_wants_t *w, const char *sys_root)
{
    memset(w, 0, sizeof(*w));
    w->workers_auto = 1;
    w->workers = pv_conf_auto_workers(sys_root, w->workers_why, sizeof(w->workers_why));
    w->worker_connections = 512;
    w->backlog = 511;
    snprintf(w->backlog_at, sizeof(w->backlog_at), "NGINX's default listen backlog, no config");
    w->header_bytes = 4 * 8192;
    w->conc_per_addr = (long long)w->workers * w->worker_connections;
}

/* Whether requests through loc may leave the upstream connection open:
 * HTTP/1.1 and a Connection header other than "close" (the proxy's
 * default is HTTP/1.0 with Connection: close, as NGINX's). */
static int loc_keeps(const pv_location_t *loc, char *reason, size_t len)
{
    if (loc->conf.proxy_http_version != 11) {
        snprintf(reason, len, "location %s (%s:%d) proxies with HTTP/1.0",
                 loc->name.p, loc->src.file, loc->src.line);
        return 0;
    }
    for (int i = 0; i < loc->conf.nset_headers; i++) {
        const pv_set_header_t *sh = &loc->conf.set_headers[i];
        if (!PV_STR_IEQ(sh->name, "connection"))
            continue;
        if (!sh->value.is_const || sh->value.nparts == 0 || !pv_conn_has_token(sh->value.parts[0].text, "close"))
            return 1;
        break;
    }
    snprintf(reason, len, "location %s (%s:%d) sends Connection: close",
             loc->name.p, loc->src.file, loc->src.line);
    return 0;
}

/* 127.0.0.0/8, ::1 or a v4-mapped 127.x address. */
static int addr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Upstream traffic: the concurrent connections one address may hold and,
 * for upstreams that cannot reuse connections, the new connections per
 * second, assuming each of the workers x worker_connections slots finishes
 * one request per second, spread evenly over the upstream's addresses. */
static void wants_upstreams(pv_doctor_wants_t *w, const pv_conf_t *c)
{
    const pv_http_conf_t *h = c->http;
    long long slots = (long long)w->workers * w->worker_connections;
    w->all_loopback = 1;
    for (int i = 0; h && i < h->nupstreams; i++) {
        const pv_upstream_conf_t *u = h->upstreams[i];
        char reason[256] = "";
        int used = 0, reuse = u->keepalive > 0;
        if (!reuse)
            snprintf(reason, sizeof(reason), "upstream %s has no keepalive",
                     u->name);
        for (int s = 0; s < h->nservers; s++) {
            const pv_server_t *srv = h->servers[s];
            for (int l = 0; l < srv->nlocations; l++) {
                const pv_location_t *loc = srv->locations[l];
                if (!loc->proxy_pass || loc->proxy_pass->upstream != u)
                    continue;
                used = 1;
                if (reuse && !loc_keeps(loc, reason, sizeof(reason)))
                    reuse = 0;
            }
        }
        if (!used || u->nservers == 0)
            continue;
        w->nupstreams++;
        int n = 0; /* addresses sharing the load: backups only stand in */
        for (int s = 0; s < u->nservers; s++) {
            n += !u->servers[s].backup;
            w->all_loopback &= addr_loopback(&u->servers[s].addr);
        }
        if (n == 0)
            n = u->nservers;
        long long per = (slots + n - 1) / n;
        if (per > w->conc_per_addr)
            w->conc_per_addr = per;
        if (!reuse && per > w->churn_per_addr) {
            w->churn_per_addr = per;
            snprintf(w->churn_name, sizeof(w->churn_name), "%s", u->name);
            snprintf(w->churn_reason, sizeof(w->churn_reason), "%s", reason);
        }
    }
    if (w->nupstreams == 0) {
        w->all_loopback = 0;
        w->conc_per_addr = slots;
    }
}

/* Where the config asks OpenSSL for kernel TLS (ssl_conf_command Options KTLS). */
static void wants_ktls(pv_doctor_wants_t *w, const pv_conf_t *c)
{
    for (int i = 0; c->http && i < c->http->nservers && !w->ktls_at[0]; i++) {
        const pv_ssl_conf_t *s = &c->http->servers[i]->ssl;
        for (int k = 0; k < s->ncmds && !w->ktls_at[0]; k++) {
            const pv_ssl_cmd_t *m = &s->cmds[k];
            const char *p = strcasecmp(m->name, "Options") == 0 ? strstr(m->value, "KTLS") : NULL;
            if (p && (p == m->value || p[-1] != '-'))
                snprintf(w->ktls_at, sizeof(w->ktls_at), "ssl_conf_command Options %s in %s:%d", m->value,
                         m->src.file ? m->src.file : c->path, m->src.line);
        }
    }
}

void pv_doctor_wants_conf(pv_doctor_wants_t *w, const pv_conf_t *c, const char *sys_root)
{
    memset(w, 0, sizeof(*w));
    w->conf_path = c->path;
    w->workers_auto = c->worker_processes_auto;
    if (w->workers_auto)
        w->workers = pv_conf_auto_workers(sys_root, w->workers_why, sizeof(w->workers_why));
    else
        w->workers = c->worker_processes > 0 ? c->worker_processes : 1;
    w->worker_connections = c->worker_connections > 0 ? c->worker_connections : 512;
    w->rlimit_nofile = c->worker_rlimit_nofile > 0 ? c->worker_rlimit_nofile : 0;

    const pv_http_conf_t *h = c->http;
    w->backlog = 511;
    snprintf(w->backlog_at, sizeof(w->backlog_at), "NGINX's default listen backlog, no listen in the config");
    for (int i = 0; h && i < h->nlistens; i++) {
        const pv_listen_t *l = &h->listens[i].listen;
        if (i == 0 || l->sock.backlog > w->backlog) {
            w->backlog = l->sock.backlog;
            snprintf(w->backlog_at, sizeof(w->backlog_at), "listen %s in %s:%d", l->text,
                     l->src.file ? l->src.file : c->path, l->src.line);
        }
    }
    w->header_bytes = h ? (long long)h->large_header_buffers_num * h->large_header_buffers_size : 4 * 8192;
    for (int i = 0; h && i < h->nservers; i++) {
        long long b = (long long)h->servers[i]->large_header_buffers_num * h->servers[i]->large_header_buffers_size;
        if (b > w->header_bytes)
            w->header_bytes = b;
    }
    wants_upstreams(w, c);
    wants_ktls(w, c);
}

/* ---- helpers ---------------------------------------------------------------- */

/* "12.5 MiB" style; exact units when the value divides evenly. */
static const char *fmt_bytes(char *buf, size_t len, long long v)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1024.0 && u < 4) {
        d /= 1024.0;
        u++;
    }
    if (u == 0 || d == (double)(long long)d)
        snprintf(buf, len, "%lld %s", (long long)d, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", d, unit[u]);
    return buf;
}

/* A limit as a number, or "unlimited". */
static const char *fmt_limit(char *buf, size_t len, long long v)
{
    if (v == PV_SYSINFO_UNLIMITED)
        snprintf(buf, len, "unlimited");
    else
        snprintf(buf, len, "%lld", v);
    return buf;
}

/* Set a sysctl fix: the runtime command, the persistent line and, for
 * network keys (per network namespace), the container form. */
static void sysctl_fix(pv_doctor_check_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->sysctl_value, sizeof(c->sysctl_value), fmt, ap);
    va_end(ap);
    c->sysctl_key = key;
    int quote = strchr(c->sysctl_value, ' ') != NULL;
    size_t n = (size_t)snprintf(c->fix, sizeof(c->fix),
                                "sysctl -w %s=%s%s%s\n"
                                "persist: add '%s = %s' to " PV_DOCTOR_SYSCTL_FILE
                                " (portvakt doctor --sysctl prints it), then sysctl --system",
                                key, quote ? "\"" : "", c->sysctl_value, quote ? "\"" : "", key,
                                c->sysctl_value);
    if (strncmp(key, "net.", 4) == 0 && n < sizeof(c->fix))
        snprintf(c->fix + n, sizeof(c->fix) - n,
                 "\ncontainer (own network namespace): docker run --sysctl %s=%s%s%s, or compose sysctls: %s: %s",
                 key, quote ? "\"" : "", c->sysctl_value, quote ? "\"" : "", key, c->sysctl_value);
}

/* A sysctl the doctor could not read: WARN with value "unavailable". */
static int sysctl_missing(pv_doctor_check_t *c, const pv_host_t *h, const pv_sysval_t *v, const char *key)
{
    if (v->err == 0)
        return 0;
    char path[4352];
    snprintf(path, sizeof(path), "%s/proc/sys/%s", h->root ? h->root : "", key);
    for (char *p = path + strlen(path) - strlen(key); *p; p++)
        if (*p == '.')
            *p = '/';
    c->status = PV_DOCTOR_WARN;
    PUT(c, value, "unavailable");
    PUT(c, why, "Cannot read %s (%s), so %s cannot be checked against the config.", path,
        v->err == EINVAL ? "unexpected content" : strerror(v->err), key);
    PUT(c, fix, "check that /proc is mounted and readable, then run portvakt doctor again");
    return 1;
}

/* ---- checks ----------------------------------------------------------------
 * Each fills value, want, why and (when not OK) fix of one check; status
 * starts at OK. */

static void check_somaxconn(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PUT(c, want, ">= %d (largest listen backlog)", w->backlog);
    if (sysctl_missing(c, h, &h->somaxconn, "net.core.somaxconn"))
        return;
    long long v = h->somaxconn.v[0];
    PUT(c, value, "%lld", v);
    if (v < w->backlog) {
        c->status = PV_DOCTOR_FAIL;
        PUT(c, why,
            "The kernel silently caps every listen backlog at net.core.somaxconn: the backlog %d of %s "
            "becomes %lld. Once %lld connections wait to be accepted, the next one's handshake is "
            "dropped and the client retries after a second or gives up (the brief's somaxconn 128 "
            "dropped connection 129). NGINX's default backlog is 511.",
            w->backlog, w->backlog_at, v, v);
        sysctl_fix(c, "net.core.somaxconn", "%d", w->backlog);
    } else {
        PUT(c, why,
            "net.core.somaxconn %lld covers the largest listen backlog, %d (%s); the kernel caps "
            "backlogs at this value.",
            v, w->backlog, w->backlog_at);
    }
}

static void check_syn_backlog(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PUT(c, want, ">= %d (largest listen backlog)", w->backlog);
    if (sysctl_missing(c, h, &h->syn_backlog, "net.ipv4.tcp_max_syn_backlog"))
        return;
    long long v = h->syn_backlog.v[0];
    int cookies = h->syncookies.err == 0 && h->syncookies.v[0] != 0;
    PUT(c, value, "%lld", v);
    if (v >= w->backlog) {
        PUT(c, why,
            "net.ipv4.tcp_max_syn_backlog %lld can hold as many half-open connections as the largest "
            "listen backlog, %d (%s).",
            v, w->backlog, w->backlog_at);
        return;
    }
    c->status = cookies ? PV_DOCTOR_WARN : PV_DOCTOR_FAIL;
    PUT(c, why,
        "net.ipv4.tcp_max_syn_backlog %lld is below the listen backlog %d (%s): during a burst of "
        "new connections the SYN queue fills first. %s",
        v, w->backlog, w->backlog_at,
        cookies ? "SYN cookies are on, so the kernel still answers, but cookie connections lose "
                  "TCP options such as window scaling without timestamps (WARN)."
                : "SYN cookies are off, so the kernel drops the extra SYNs and clients wait for "
                  "their retransmission, a second or more (FAIL).");
    sysctl_fix(c, "net.ipv4.tcp_max_syn_backlog", "%d", w->backlog);
}

static void check_syncookies(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PV_UNUSED(w);
    PUT(c, want, "1");
    if (sysctl_missing(c, h, &h->syncookies, "net.ipv4.tcp_syncookies"))
        return;
    long long v = h->syncookies.v[0];
    PUT(c, value, "%lld", v);
    if (v == 1) {
        PUT(c, why,
            "SYN cookies answer a SYN flood (or a real burst) without keeping state once the SYN "
            "queue is full, so legitimate clients still connect.");
        return;
    }
    c->status = PV_DOCTOR_WARN;
    if (v == 0)
        PUT(c, why,
            "SYN cookies are off: a SYN flood, or a burst beyond net.ipv4.tcp_max_syn_backlog, fills "
            "the SYN queue and the kernel drops new connections for everyone.");
    else
        PUT(c, why,
            "tcp_syncookies %lld sends cookies for every connection, even without a flood; cookie "
            "connections lose TCP options such as window scaling without timestamps. 1 uses "
            "them only when the SYN queue overflows.",
            v);
    sysctl_fix(c, "net.ipv4.tcp_syncookies", "1");
}

static void check_tw_reuse(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PUT(c, want, "1 (reuse TIME_WAIT ports for upstream connections)");
    if (sysctl_missing(c, h, &h->tw_reuse, "net.ipv4.tcp_tw_reuse"))
        return;
    long long v = h->tw_reuse.v[0];
    PUT(c, value, "%lld", v);
    const char *base =
        "A proxy opens connections to its upstreams; each one it closes keeps its local port in "
        "TIME_WAIT for 60 s. tcp_tw_reuse 1 lets a new outgoing connection take such a port when "
        "TCP timestamps make it safe.";
    if (v == 1) {
        PUT(c, why, "%s It is on.", base);
        return;
    }
    if (v == 2 && w->conf_path && w->nupstreams == 0) {
        PUT(c, why, "%s The config proxies to no upstream, so 2 (the kernel's default) is enough.", base);
        return;
    }
    if (v == 2 && w->nupstreams > 0 && w->all_loopback) {
        PUT(c, why,
            "%s 2 (the kernel's default) reuses them only for loopback connections, and every upstream "
            "in the config is on loopback, so that is enough.",
            base);
        return;
    }
    c->status = PV_DOCTOR_WARN;
    if (v == 2)
        PUT(c, why,
            "%s 2 (the kernel's default) does so only for loopback connections; %s, so their TIME_WAIT "
            "ports cannot be reused and ephemeral ports can run out under churn.",
            base, w->conf_path ? "the config's upstreams are not all on loopback" : "a gateway's upstreams are usually on other hosts");
    else
        PUT(c, why,
            "%s It is off (0), so every port an upstream connection used stays unusable for 60 s "
            "after close; under churn the ephemeral range runs out (connect() fails: 502s).",
            base);
    sysctl_fix(c, "net.ipv4.tcp_tw_reuse", "1");
}

static void check_port_range(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    long long slots = (long long)w->workers * w->worker_connections;
    long long churn_want = w->churn_per_addr * PV_DOCTOR_TIME_WAIT_S;
    long long want = PV_MAX(w->conc_per_addr, churn_want);
    PUT(c, want, ">= %lld ports per upstream address", want);
    if (sysctl_missing(c, h, &h->port_range, "net.ipv4.ip_local_port_range"))
        return;
    long long lo = h->port_range.v[0], hi = h->port_range.v[1];
    long long ports = hi - lo + 1;
    PUT(c, value, "%lld %lld (%lld ports)", lo, hi, ports);

    char conc[320];
    snprintf(conc, sizeof(conc),
             "Each upstream address takes one local port per open connection; %d workers x %d "
             "worker_connections allow %lld at once to one address%s.",
             w->workers, w->worker_connections, w->conc_per_addr,
             w->nupstreams ? " of the busiest upstream" : " (no upstream in the config: assuming one address)");
    if (ports < w->conc_per_addr) {
        c->status = PV_DOCTOR_FAIL;
        PUT(c, why, "%s The range has only %lld ports, so connect() fails with EADDRNOTAVAIL (502s) before "
                    "the workers are full.", conc, ports);
    } else if (churn_want > ports) {
        c->status = PV_DOCTOR_WARN;
        PUT(c, why,
            "%s But %s, so every request opens a connection; the gateway closes it as soon as the "
            "response is complete, so its side usually keeps the port in TIME_WAIT for %d s. Assuming each of the %lld connection slots finishes one request per second, "
            "one address of %s gets %lld new connections/s, which needs %lld x %d = %lld ports%s.",
            conc, w->churn_reason, PV_DOCTOR_TIME_WAIT_S, slots, w->churn_name, w->churn_per_addr,
            w->churn_per_addr, PV_DOCTOR_TIME_WAIT_S, churn_want,
            churn_want > WIDEST_PORTS ? "; no port range is that wide, so turn on keepalive" : "");
    } else {
        const char *mid = w->churn_per_addr ? "Some upstream cannot reuse connections, and the churn estimate (one "
                                              "request per connection slot per second, 60 s TIME_WAIT) also fits."
                          : w->nupstreams   ? "Upstream connections are reused (keepalive), so ports churn little."
                                            : "";
        PUT(c, why, "%s%s%s The range of %lld ports covers that.", conc, *mid ? " " : "", mid,
            ports);
        return;
    }
    long long need = PV_MIN(want, (long long)WIDEST_PORTS);
    /* widen downwards from 65535 in steps of 1024, never narrowing the low end */
    long long newlo = PV_MIN(lo, PV_MAX(1024LL, ((65536 - need) / 1024) * 1024));
    sysctl_fix(c, "net.ipv4.ip_local_port_range", "%lld 65535", newlo);
    if (w->churn_per_addr) {
        size_t n = strlen(c->fix);
        snprintf(c->fix + n, sizeof(c->fix) - n,
                 "\nbetter: reuse connections: in upstream %s: keepalive 32; in its locations: "
                 "proxy_http_version 1.1; proxy_set_header Connection \"\";",
                 w->churn_name);
    }
}

static void check_file_max(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    long long need = (long long)w->workers * w->worker_connections * 2;
    PUT(c, want, ">= %lld (twice the gateway's %lld descriptors)", need * 2, need);
    if (sysctl_missing(c, h, &h->file_max, "fs.file-max"))
        return;
    long long v = h->file_max.v[0];
    PUT(c, value, "%lld", v);
    char base[256];
    snprintf(base, sizeof(base),
             "fs.file-max bounds open files on the whole host. The gateway alone may hold %d workers "
             "x %d connections x 2 (client and upstream) = %lld;",
             w->workers, w->worker_connections, need);
    if (v >= need * 2) {
        PUT(c, why, "%s %lld leaves room for the rest of the host.", base, v);
        return;
    }
    c->status = v < need ? PV_DOCTOR_FAIL : PV_DOCTOR_WARN;
    PUT(c, why,
        "%s %lld %s. When the host runs out, accept() and connect() fail with ENFILE for every process.",
        base, v, v < need ? "is less than that" : "leaves under half of it for everything else on the host");
    sysctl_fix(c, "fs.file-max", "%lld", need * 2);
}

static void check_nofile(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    long long need = (long long)w->workers * w->worker_connections * 2;
    char s1[32], s2[32], s3[32];
    PUT(c, want, ">= %lld (worker_connections %d x %d workers x 2)", need, w->worker_connections, w->workers);
    long long nr = h->nr_open.err == 0 ? h->nr_open.v[0] : PV_SYSINFO_UNLIMITED;
    long long soft = h->nofile_soft, hard = h->nofile_hard;

    /* what the gateway will run with: worker_rlimit_nofile sets soft and
     * hard; without the privilege to pass the hard limit it settles for
     * min(asked, hard), as main.c does */
    long long eff = soft;
    char setby[256] = "";
    if (w->rlimit_nofile > 0) {
        long long r = w->rlimit_nofile;
        int fits = (hard == PV_SYSINFO_UNLIMITED || r <= hard || h->privileged) &&
                   (nr == PV_SYSINFO_UNLIMITED || r <= nr);
        eff = fits ? r : (hard == PV_SYSINFO_UNLIMITED ? r : PV_MIN(r, hard));
        snprintf(setby, sizeof(setby), ", worker_rlimit_nofile %lld -> %s", r, fmt_limit(s1, sizeof(s1), eff));
    }
    PUT(c, value, "soft %s, hard %s%s; fs.nr_open %s", fmt_limit(s1, sizeof(s1), soft),
        fmt_limit(s2, sizeof(s2), hard), setby, h->nr_open.err ? "unavailable" : fmt_limit(s3, sizeof(s3), nr));

    char base[320];
    snprintf(base, sizeof(base),
             "Every client connection and its upstream connection each take a descriptor: %d workers x %d "
             "worker_connections x 2 = %lld.",
             w->workers, w->worker_connections, need);
    if (nr != PV_SYSINFO_UNLIMITED && need > nr) {
        c->status = PV_DOCTOR_FAIL;
        PUT(c, why, "%s fs.nr_open %lld caps every RLIMIT_NOFILE, so no limit can be raised that far.", base, nr);
        sysctl_fix(c, "fs.nr_open", "%lld", need);
        size_t n = strlen(c->fix);
        snprintf(c->fix + n, sizeof(c->fix) - n, "\nthen: LimitNOFILE=%lld in the systemd unit, or worker_rlimit_nofile %lld;", need, need);
        return;
    }
    if (eff == PV_SYSINFO_UNLIMITED || eff >= need) {
        PUT(c, why, "%s The limit the gateway will run with, %s%s, covers it.", base, fmt_limit(s1, sizeof(s1), eff),
            w->rlimit_nofile > 0 ? " (from worker_rlimit_nofile)" : " (this process's soft limit)");
        return;
    }
    c->status = PV_DOCTOR_FAIL;
    if (w->rlimit_nofile > 0 && eff < w->rlimit_nofile)
        PUT(c, why,
            "%s worker_rlimit_nofile %lld cannot be set: it is above the hard limit %s and this process "
            "lacks CAP_SYS_RESOURCE%s, so the gateway keeps %s; past that, accept() fails with EMFILE.",
            base, w->rlimit_nofile, fmt_limit(s2, sizeof(s2), hard),
            nr != PV_SYSINFO_UNLIMITED && w->rlimit_nofile > nr ? " (or above fs.nr_open)" : "",
            fmt_limit(s1, sizeof(s1), eff));
    else
        PUT(c, why, "%s The gateway would run with %s descriptors; past that, accept() fails with EMFILE "
                    "and clients see resets.", base, fmt_limit(s1, sizeof(s1), eff));
    if (hard == PV_SYSINFO_UNLIMITED || need <= hard)
        PUT(c, fix,
            "worker_rlimit_nofile %lld;  (config main context; within the hard limit %s)\n"
            "or: ulimit -n %lld before starting; systemd: LimitNOFILE=%lld",
            need, fmt_limit(s2, sizeof(s2), hard), need, need);
    else
        PUT(c, fix,
            "systemd unit [Service]: LimitNOFILE=%lld\n"
            "docker run --ulimit nofile=%lld:%lld, or compose ulimits: nofile: %lld\n"
            "shell (as root): ulimit -Hn %lld; ulimit -n %lld",
            need, need, need, need, need, need);
}

/* The CPUs a quota allows, rounded up: what `auto` would run. */
static int quota_cpus(const pv_cgroup_t *cg)
{
    return (int)((cg->cpu_quota + cg->cpu_period - 1) / cg->cpu_period);
}

static void check_cgroup_cpu(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    const pv_cgroup_t *cg = &h->cg;
    char wk[256];
    snprintf(wk, sizeof(wk), "worker_processes %s%d%s%s%s", w->workers_auto ? "auto = " : "", w->workers,
             w->workers_auto ? " (" : "", w->workers_auto ? w->workers_why : "", w->workers_auto ? ")" : "");
    if (cg->cpu_quota == PV_SYSINFO_UNLIMITED) {
        PUT(c, want, "worker_processes <= the CPU quota (or auto)");
        if (cg->version == 0)
            PUT(c, value, "no cgroup found");
        else
            PUT(c, value, "no quota (cgroup v%d)", cg->version);
        PUT(c, why, "No CPU quota applies to this process%s%s%s, so %s is not throttled by a cgroup.",
            cg->version ? " (cgroup " : "", cg->version ? cg->path : "", cg->version ? ")" : "", wk);
        return;
    }
    int cpus = quota_cpus(cg);
    double q = (double)cg->cpu_quota / (double)cg->cpu_period;
    PUT(c, value, "%.2f CPUs (%s: %lld per %lld us)", q, cg->cpu_file, cg->cpu_quota, cg->cpu_period);
    PUT(c, want, "worker_processes <= %d (or auto)", cpus);
    if (w->workers <= cpus) {
        PUT(c, why,
            "The cgroup allows %.2f CPUs; %s fits. %s",
            q, wk,
            q < 1.0 ? "Below one CPU even one busy worker is throttled for part of every period, which "
                      "shows in p95 latency; give the gateway a whole CPU if it is busy."
                    : w->workers_auto ? "auto follows the quota."
                                    : "worker_processes auto would follow the quota if it changed.");
        return;
    }
    c->status = w->workers >= 2 * cpus ? PV_DOCTOR_FAIL : PV_DOCTOR_WARN;
    PUT(c, why,
        "The cgroup allows %.2f CPUs (%lld us per %lld us period) but %s. Busy workers use up the "
        "quota early in each period and then all stall until the next one: latency spikes of up to "
        "%lld ms. WARN above the quota, FAIL at twice the quota or more.",
        q, cg->cpu_quota, cg->cpu_period, wk, (cg->cpu_period - cg->cpu_quota / w->workers) / 1000);
    PUT(c, fix,
        "worker_processes auto;  (runs %d here)  or  worker_processes %d;\n"
        "or raise the quota to %d CPUs: docker run --cpus=%d; compose deploy.resources.limits.cpus: '%d'; "
        "systemd CPUQuota=%d%%",
        cpus, cpus, w->workers, w->workers, w->workers, w->workers * 100);
}

static void check_cgroup_memory(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    const pv_cgroup_t *cg = &h->cg;
    long long per = PV_BUF_SIZE + w->header_bytes;
    long long need = (long long)w->workers * w->worker_connections * per;
    long long want = need + PV_DOCTOR_MEM_HEADROOM;
    char b1[32], b2[32], b3[32], b4[32];
    PUT(c, want, ">= %lld MiB", (want + (1 << 20) - 1) >> 20);
    char formula[384];
    snprintf(formula, sizeof(formula),
             "The config may hold %d workers x %d worker_connections x (%s buffer per active connection + %s of "
             "large header buffers) = %s, plus %s for the process itself and socket buffers.",
             w->workers, w->worker_connections, fmt_bytes(b1, sizeof(b1), PV_BUF_SIZE),
             fmt_bytes(b2, sizeof(b2), w->header_bytes), fmt_bytes(b3, sizeof(b3), need),
             fmt_bytes(b4, sizeof(b4), PV_DOCTOR_MEM_HEADROOM));
    if (cg->mem_limit == PV_SYSINFO_UNLIMITED) {
        if (cg->version == 0)
            PUT(c, value, "no cgroup found");
        else
            PUT(c, value, "no limit (cgroup v%d)", cg->version);
        PUT(c, why, "%s No cgroup memory limit applies, so only the host's memory bounds it.", formula);
        return;
    }
    PUT(c, value, "%s (%s)", fmt_bytes(b1, sizeof(b1), cg->mem_limit), cg->mem_file);
    if (cg->mem_limit >= want) {
        PUT(c, why, "%s The cgroup limit %s covers it.", formula, fmt_bytes(b1, sizeof(b1), cg->mem_limit));
        return;
    }
    c->status = cg->mem_limit < need ? PV_DOCTOR_FAIL : PV_DOCTOR_WARN;
    PUT(c, why,
        "%s The cgroup limit is %s: at full load the kernel's OOM killer stops the gateway (%s).",
        formula, fmt_bytes(b1, sizeof(b1), cg->mem_limit),
        cg->mem_limit < need ? "the buffers alone exceed it" : "too little headroom beyond the buffers");
    long long mib = (want + (1 << 20) - 1) >> 20;
    long long fit = (cg->mem_limit - PV_DOCTOR_MEM_HEADROOM) / per / w->workers;
    if (fit < 1)
        fit = 1;
    PUT(c, fix,
        "raise the limit: docker run --memory=%lldm; compose deploy.resources.limits.memory: %lldM; "
        "systemd MemoryMax=%lldM\n"
        "or fit the limit: worker_connections %lld;  (events block)",
        mib, mib, mib, fit);
}

static void check_steal(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PV_UNUSED(w);
    PUT(c, want, "<= %.0f%% (WARN above %.0f%%, FAIL above %.0f%%)", PV_DOCTOR_STEAL_WARN,
        PV_DOCTOR_STEAL_WARN, PV_DOCTOR_STEAL_FAIL);
    if (h->steal_err) {
        c->status = PV_DOCTOR_WARN;
        PUT(c, value, "unavailable");
        PUT(c, why, "Cannot read %s/proc/stat (%s), so CPU steal time cannot be measured.", h->root ? h->root : "",
            h->steal_err == EINVAL ? "no cpu line" : strerror(h->steal_err));
        PUT(c, fix, "check that /proc is mounted and readable, then run portvakt doctor again");
        return;
    }
    double pct = pv_sysinfo_steal_pct(&h->stat0, &h->stat1);
    const char *base =
        "Steal is the share of time this (virtual) machine wanted a CPU while the hypervisor ran "
        "another guest: the 8th value of the cpu line in /proc/stat, sampled";
    if (h->stat1.total <= h->stat0.total) {
        PUT(c, value, "0.0%% over %u ms (no CPU time passed)", h->steal_ms);
        PUT(c, why, "%s twice %u ms apart; no CPU time passed between the samples, so no steal was seen.", base,
            h->steal_ms);
        return;
    }
    PUT(c, value, "%.1f%% over %u ms", pct, h->steal_ms);
    if (pct <= PV_DOCTOR_STEAL_WARN) {
        PUT(c, why, "%s over %u ms: %.1f%% is low. WARN above %.0f%%, FAIL above %.0f%%.", base, h->steal_ms, pct,
            PV_DOCTOR_STEAL_WARN, PV_DOCTOR_STEAL_FAIL);
        return;
    }
    c->status = pct > PV_DOCTOR_STEAL_FAIL ? PV_DOCTOR_FAIL : PV_DOCTOR_WARN;
    PUT(c, why,
        "%s over %u ms: %.1f%% (WARN above %.0f%%, FAIL above %.0f%%). A noisy neighbour is taking this "
        "host's CPU; every request waits for it and p95 latency rises with no change in the gateway.",
        base, h->steal_ms, pct, PV_DOCTOR_STEAL_WARN, PV_DOCTOR_STEAL_FAIL);
    PUT(c, fix,
        "move the gateway to an instance with dedicated vCPUs (no burst credits or overcommit), or ask "
        "the provider to migrate it\n"
        "watch it: vmstat 1 (the st column) or portvakt doctor");
}

static void check_ktls(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *c)
{
    PUT(c, want, w->ktls_at[0] ? "the tls upper layer (kernel TLS asked for)" : "nothing (kernel TLS not asked for)");
    if (h->ulps_err) {
        c->status = PV_DOCTOR_WARN;
        PUT(c, value, "unavailable");
        PUT(c, why, "Cannot read %s/proc/sys/net/ipv4/tcp_available_ulp (%s), so whether the kernel can take "
            "over TLS records is unknown.", h->root ? h->root : "", strerror(h->ulps_err));
        PUT(c, fix, "check that /proc/sys is mounted and readable, then run portvakt doctor again");
        return;
    }
    char list[sizeof(h->ulps) + 2];
    snprintf(list, sizeof(list), " %s ", h->ulps);
    int have = strstr(list, " tls ") != NULL;
    PUT(c, value, "%s (tcp_available_ulp: %s)", have ? "available" : "not available", h->ulps[0] ? h->ulps : "empty");
    if (!w->ktls_at[0]) {
        PUT(c, why, "The config does not ask for kernel TLS%s; OpenSSL encrypts TLS records in user space.",
            have ? " (ssl_conf_command Options KTLS; would)" : "");
        return;
    } else if (have) {
        PUT(c, why, "%s asks OpenSSL to hand TLS records to the kernel, which has the tls upper layer: connections "
            "whose cipher it supports (AES-GCM, ChaCha20-Poly1305) are encrypted there.", w->ktls_at);
        return;
    }
    c->status = PV_DOCTOR_WARN;
    PUT(c, why, "%s asks for kernel TLS, but the kernel has no tls upper layer (the tls module is not "
        "loaded or not built): OpenSSL quietly keeps encrypting in user space, so it costs nothing and "
        "buys nothing here.", w->ktls_at);
    PUT(c, fix, "modprobe tls  (and add tls to /etc/modules-load.d/ to keep it)\n"
        "in a container: load the module on the host; the kernel is shared");
}

/* ---- run and report ---------------------------------------------------------- */

typedef void (*check_fn)(const pv_host_t *, const pv_doctor_wants_t *, pv_doctor_check_t *);

static const struct {
    const char *id; /* check name */
    check_fn fn;    /* its decision */
} checks[PV_DOCTOR_NCHECKS] = {
    {"somaxconn", check_somaxconn},
    {"tcp_max_syn_backlog", check_syn_backlog},
    {"tcp_syncookies", check_syncookies},
    {"tcp_tw_reuse", check_tw_reuse},
    {"ip_local_port_range", check_port_range},
    {"file_max", check_file_max},
    {"nofile", check_nofile},
    {"cgroup_cpu", check_cgroup_cpu},
    {"cgroup_memory", check_cgroup_memory},
    {"steal", check_steal},
    {"ktls", check_ktls},
};

void pv_doctor_run(const pv_host_t *h, const pv_doctor_wants_t *w, pv_doctor_check_t *out)
{
    for (int i = 0; i < PV_DOCTOR_NCHECKS; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].id = checks[i].id;
        checks[i].fn(h, w, &out[i]);
    }
}

int pv_doctor_exit_status(const pv_doctor_check_t *c, int n)
{
    int worst = PV_DOCTOR_OK;
    for (int i = 0; i < n; i++)
        worst = PV_MAX(worst, c[i].status);
    return worst; /* 0 all OK, 1 a WARN, 2 a FAIL */
}

/* Print text word-wrapped at width: the first line after the prefix
 * first, the others after cont. */
static void print_wrapped(FILE *f, const char *first, const char *cont, const char *text, int width)
{
    fputs(first, f);
    int col = (int)strlen(first), fresh = 1;
    const char *p = text;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        int len = (int)(e - p);
        if (len == 0)
            break;
        if (!fresh && col + 1 + len > width) {
            fprintf(f, "\n%s", cont);
            col = (int)strlen(cont);
        } else if (!fresh) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, (size_t)len, f);
        col += len;
        fresh = 0;
        p = e;
    }
    fputc('\n', f);
}

static void print_subject(FILE *f, const pv_doctor_wants_t *w)
{
    if (w->conf_path)
        fprintf(f, "portvakt doctor: %s\n", w->conf_path);
    else
        fprintf(f, "portvakt doctor: no config (%s not found), generic wants\n", PV_DEFAULT_CONF);
    fprintf(f, "  %d worker%s%s%s%s x %d connections, largest listen backlog %d\n", w->workers,
            w->workers == 1 ? "" : "s", w->workers_auto ? " (auto: " : "", w->workers_auto ? w->workers_why : "",
            w->workers_auto ? ")" : "", w->worker_connections, w->backlog);
}

void pv_doctor_print_table(FILE *f, const pv_doctor_wants_t *w, const char *sys_root, const pv_doctor_check_t *c,
                           int n, int color)
{
    static const char *const col[] = {"\033[32m", "\033[33m", "\033[1;31m"};
    int count[3] = {0, 0, 0};
    print_subject(f, w);
    if (sys_root && *sys_root)
        fprintf(f, "  sys-root %s\n", sys_root);
    fprintf(f, "\n%-20s %-6s %-34s %s\n", "CHECK", "STATUS", "VALUE", "WANT");
    for (int i = 0; i < n; i++) {
        int s = c[i].status;
        count[s]++;
        fprintf(f, "%s%-20s %s%-6s%s %-34s %s\n", i ? "\n" : "", c[i].id, color ? col[s] : "", status_word[s],
                color ? "\033[0m" : "", c[i].value, c[i].want);
        print_wrapped(f, "    why: ", "         ", c[i].why, 100);
        if (s != PV_DOCTOR_OK && c[i].fix[0]) {
            const char *p = c[i].fix;
            const char *lead = "    fix: ";
            while (*p) {
                const char *e = strchr(p, '\n');
                int len = e ? (int)(e - p) : (int)strlen(p);
                fprintf(f, "%s%.*s\n", lead, len, p);
                lead = "         ";
                p += len + (e ? 1 : 0);
            }
        }
    }
    fprintf(f, "\n%d checks: %d ok, %d warn, %d fail\n", n, count[0], count[1], count[2]);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void pv_doctor_print_json(FILE *f, const pv_doctor_check_t *c, int n)
{
    fputs("{\"checks\":[", f);
    for (int i = 0; i < n; i++) {
        fputs(i ? ",{\"id\":" : "{\"id\":", f);
        json_string(f, c[i].id);
        fprintf(f, ",\"status\":\"%s\",\"value\":", status_json[c[i].status]);
        json_string(f, c[i].value);
        fputs(",\"want\":", f);
        json_string(f, c[i].want);
        fputs(",\"why\":", f);
        json_string(f, c[i].why);
        fputs(",\"fix\":", f);
        json_string(f, c[i].fix);
        fputc('}', f);
    }
    fputs("]}\n", f);
}

void pv_doctor_print_sysctl(FILE *f, const pv_doctor_wants_t *w, const pv_doctor_check_t *c, int n)
{
    fprintf(f, "# " PV_DOCTOR_SYSCTL_FILE " \xe2\x80\x94 generated by portvakt doctor for %s\n",
            w->conf_path ? w->conf_path : "no config (generic wants)");
    fprintf(f, "# Only the keys whose checks are not OK on this host. Apply with: sysctl --system\n");
    int keys = 0;
    char others[256] = "";
    for (int i = 0; i < n; i++) {
        if (c[i].status == PV_DOCTOR_OK)
            continue;
        if (!c[i].sysctl_key) {
            size_t l = strlen(others);
            snprintf(others + l, sizeof(others) - l, "%s%s", l ? ", " : "", c[i].id);
            continue;
        }
        char head[64];
        snprintf(head, sizeof(head), "# %s (%s): ", c[i].id, status_word[c[i].status]);
        fputc('\n', f);
        print_wrapped(f, head, "#   ", c[i].why, 78);
        fprintf(f, "# want: %s\n%s = %s\n", c[i].want, c[i].sysctl_key, c[i].sysctl_value);
        keys++;
    }
    if (!keys)
        fprintf(f, "\n# Every sysctl check is OK: nothing to set.\n");
    if (others[0])
        fprintf(f, "\n# Also not OK, but not sysctl settings: %s (run portvakt doctor for their fixes).\n", others);
}

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "Usage: portvakt doctor [-c FILE] [--json | --sysctl] [--sys-root DIR]\n\n"
               "Audit the host's kernel, descriptor and cgroup limits against a config.\n\n"
               "Options:\n"
               "  -c FILE          config to audit (default: " PV_DEFAULT_CONF
               " if it exists,\n"
               "                   else generic wants)\n"
               "  --json           print the checks as JSON\n"
               "  --sysctl         print an /etc/sysctl.d/ fragment for the checks not OK\n"
               "  --sys-root DIR   read /proc and /sys under DIR (fake trees in tests)\n"
               "  -h, --help       this help\n\n"
               "Environment: PV_DOCTOR_STEAL_MS = steal sampling interval in ms (default 1000).\n"
               "Exit status: 0 all OK, 1 a WARN, 2 a FAIL, 3 usage or config error.\n");
}

int pv_doctor_main(int argc, char **argv)
{
    const char *conf_path = NULL, *sys_root = "";
    int json = 0, sysctl = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--sysctl") == 0) {
            sysctl = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-?") == 0) {
            usage(stdout);
            return 0;
        } else if (strncmp(a, "--sys-root=", 11) == 0) {
            sys_root = a + 11;
        } else if (strcmp(a, "--sys-root") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "portvakt doctor: option \"%s\" requires %s\n", a,
                        a[1] == 'c' ? "a file name" : "a directory");
                usage(stderr);
                return PV_DOCTOR_USAGE_ERROR;
            }
            if (a[1] == 'c')
                conf_path = argv[++i];
            else
                sys_root = argv[++i];
        } else if (strncmp(a, "-c", 2) == 0 && a[2]) {
            conf_path = a + 2;
        } else {
            fprintf(stderr, "portvakt doctor: invalid option: \"%s\"\n", a);
            usage(stderr);
            return PV_DOCTOR_USAGE_ERROR;
        }
    }
    if (json && sysctl) {
        fprintf(stderr, "portvakt doctor: --json and --sysctl are exclusive\n");
        usage(stderr);
        return PV_DOCTOR_USAGE_ERROR;
    }
    /* a trailing slash would double up with the absolute paths appended */
    char root[4096];
    snprintf(root, sizeof(root), "%s", sys_root);
    for (size_t l = strlen(root); l > 0 && root[l - 1] == '/'; l--)
        root[l - 1] = '\0';

    unsigned steal_ms = 1000;
    const char *env = getenv("PV_DOCTOR_STEAL_MS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (*end || errno || v < 0 || v > 60000) {
            fprintf(stderr, "portvakt doctor: invalid PV_DOCTOR_STEAL_MS \"%s\" (0..60000 ms)\n", env);
            return PV_DOCTOR_USAGE_ERROR;
        }
        steal_ms = (unsigned)v;
    }

    if (!conf_path && access(PV_DEFAULT_CONF, F_OK) == 0)
        conf_path = PV_DEFAULT_CONF;
    pv_conf_t *conf = NULL;
    pv_doctor_wants_t w;
    if (conf_path) {
        char err[1024];
        conf = pv_conf_load(conf_path, err, sizeof(err));
        if (!conf) {
            fprintf(stderr, "portvakt: [emerg] %s\n", err);
            fprintf(stderr, "portvakt doctor: configuration file %s test failed\n", conf_path);
            return PV_DOCTOR_USAGE_ERROR;
        }
        pv_doctor_wants_conf(&w, conf, root);
    } else {
        pv_doctor_wants_generic(&w, root);
    }

    pv_host_t host;
    pv_sysinfo_gather(root, steal_ms, &host);
    pv_doctor_check_t res[PV_DOCTOR_NCHECKS];
    pv_doctor_run(&host, &w, res);
    if (json)
        pv_doctor_print_json(stdout, res, PV_DOCTOR_NCHECKS);
    else if (sysctl)
        pv_doctor_print_sysctl(stdout, &w, res, PV_DOCTOR_NCHECKS);
    else
        pv_doctor_print_table(stdout, &w, root, res, PV_DOCTOR_NCHECKS,
                              isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL);
    fflush(stdout);
    int rc = pv_doctor_exit_status(res, PV_DOCTOR_NCHECKS);
    if (conf)
        pv_conf_unref(conf);
    return rc;
}
