/* `portvakt doctor --residency`: a physical check no config can fake.
 * The connect round trip to every upstream server (a few TCP handshakes,
 * each and all bounded in time) against what the declared jurisdiction
 * allows from the gateway's: light in fibre covers about 100 km per ms of
 * round trip. A server declared far away that answers at once, or one
 * declared nearby that answers slowly, is a WARN with the numbers and the
 * reasoning; never proof. */
#include "resmap.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../config/residency.h"
#include "../core/fault.h"

#define RTT_TRIES 3          /* handshakes per server */
#define RTT_TIMEOUT_MS 1000  /* each */
#define RTT_BUDGET_MS 10000  /* all of them */
#define RTT_DETOUR 1.5       /* fibre paths are longer than great circles */
#define RTT_HOSTS_MS 5.0     /* the hosts' own share of a slow answer */
#define RTT_FOREIGN_MIN_MS 0.2 /* 20 km of fibre: nearer than that is one site */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One handshake's round trip in ms (a refusal is one too), or -1. */
static double handshake(const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    double t0 = now_ms(), rtt = -1;
    int rc = connect(fd, sa, len);
    if (rc == 0 || errno == ECONNREFUSED) {
        rtt = now_ms() - t0;
    } else if (errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, timeout_ms) == 1) {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err == 0 || err == ECONNREFUSED)
                rtt = now_ms() - t0;
        }
    }
    close(fd);
    return rtt;
}

typedef struct judge_s {
    int status;          /* 0 OK, 1 WARN */
    double rtt, lo, hi;  /* ms; rtt < 0: not measured */
    char why[768];
} judge_t;

/* What the places of the gateway (g) and the server (s) allow. */
static void judge(judge_t *j, int gj, int sj)
{
    char gc[3], sc[3];
    pv_jur_text(gj, gc);
    pv_jur_text(sj, sc);
    const pv_jur_place_t *pg = pv_jur_place(gj), *ps = pv_jur_place(sj);
    if (!pg || !ps) {
        snprintf(j->why, sizeof(j->why), "connect RTT %.2f ms; the table of places has no %s: not judged", j->rtt,
                 !pg ? gc : sc);
        return;
    }
    double d = gj == sj ? 0 : pv_jur_distance_km(pg, ps);
    double dmin = gj == sj ? 0 : d - pg->radius_km - ps->radius_km;
    double dmax = gj == sj ? 2.0 * pg->radius_km : d + pg->radius_km + ps->radius_km;
    if (dmin < 0)
        dmin = 0;
    j->lo = dmin / 100.0;
    if (gj != sj && j->lo < RTT_FOREIGN_MIN_MS)
        j->lo = RTT_FOREIGN_MIN_MS;
    j->hi = dmax / 100.0 * RTT_DETOUR + RTT_HOSTS_MS;
    if (j->rtt < j->lo) {
        j->status = 1;
        snprintf(j->why, sizeof(j->why),
                 "connect RTT %.2f ms is too fast for %s from a gateway in %s: they are at least %.0f km apart "
                 "(centres %.0f km, radii %d and %d km; another country counts as at least 20 km), at least "
                 "%.2f ms of round trip in fibre at about 100 km per ms, and %.2f ms is at most %.0f km of "
                 "fibre; the server may not be where its jurisdiction says",
                 j->rtt, sc, gc, dmin < 20 && gj != sj ? 20.0 : dmin, d, pg->radius_km, ps->radius_km, j->lo,
                 j->rtt, j->rtt * 100.0);
    } else if (j->rtt > j->hi) {
        j->status = 1;
        snprintf(j->why, sizeof(j->why),
                 "connect RTT %.1f ms is slow for %s from a gateway in %s: they are at most %.0f km apart, "
                 "%.1f ms of round trip in fibre, %.1f ms with detours (x%.1f) and %.0f ms for the hosts; "
                 "the route may leave the jurisdiction, or a host is overloaded",
                 j->rtt, sc, gc, dmax, dmax / 100.0, j->hi, RTT_DETOUR, RTT_HOSTS_MS);
    } else {
        snprintf(j->why, sizeof(j->why), "connect RTT %.2f ms fits %s from a gateway in %s (%.2f to %.1f ms)",
                 j->rtt, sc, gc, j->lo, j->hi);
    }
}

/* Measure one server and judge it; budget_end bounds the whole run. */
static void check_server(judge_t *j, const pv_upstream_server_t *s, int gj, double budget_end)
{
    memset(j, 0, sizeof(*j));
    j->rtt = -1;
    if (s->jur == PV_JUR_NONE) {
        j->status = 1;
        snprintf(j->why, sizeof(j->why), "declares no jurisdiction: nothing to compare the round trip with");
        return;
    }
    /* a `resolve` line's slot is measured at the address its name had
     * at load; its addr is a key holding the name */
    const struct sockaddr_storage *sa = s->resolve_host ? &s->init : &s->addr;
    socklen_t salen = s->resolve_host ? s->initlen : s->addrlen;
    if (salen == 0) {
        j->status = 1;
        snprintf(j->why, sizeof(j->why), "%s resolved to no address: not measured", s->resolve_host);
        return;
    }
    for (int t = 0; t < RTT_TRIES; t++) {
        double left = budget_end - now_ms();
        if (left <= 0)
            break;
        double r = handshake((const struct sockaddr *)sa, salen, left < RTT_TIMEOUT_MS ? (int)left + 1 : RTT_TIMEOUT_MS);
        if (r >= 0 && (j->rtt < 0 || r < j->rtt))
            j->rtt = r;
    }
    if (j->rtt < 0) {
        j->status = 1;
        snprintf(j->why, sizeof(j->why), "no handshake completed (%d tries of at most %d ms, %d ms in all): "
                 "not judged", RTT_TRIES, RTT_TIMEOUT_MS, RTT_BUDGET_MS);
        return;
    }
    j->rtt += pv_fault_rtt_ms(s->text);
    judge(j, gj, s->jur);
}

static int usage(void)
{
    fprintf(stderr, "usage: portvakt doctor --residency -c FILE [--json]\n");
    return 3;
}

int pv_doctor_residency_main(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--residency") != 0)
            return usage();
    }
    if (!path)
        return usage();
    char err[1024];
    pv_conf_t *c = pv_conf_load(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "portvakt: [emerg] %s\n", err);
        return 3;
    }
    int gj = c->http ? c->http->res->gateway_jur : PV_JUR_NONE;
    if (gj == PV_JUR_NONE) {
        fprintf(stderr, "portvakt: doctor --residency needs gateway_jurisdiction in %s\n", path);
        pv_conf_unref(c);
        return 3;
    }
    double end = now_ms() + RTT_BUDGET_MS;
    int worst = 0, n = 0;
    char cc[3];
    if (json)
        printf("{\"checks\":[");
    for (int u = 0; u < c->http->nupstreams; u++) {
        const pv_upstream_conf_t *up = c->http->upstreams[u];
        for (int k = 0; k < up->nservers; k++) {
            const pv_upstream_server_t *s = &up->servers[k];
            if (s->resolve_host && !s->initlen && s->resolve_first != k)
                continue; /* a spare slot of a resolve line: its first says it */
            judge_t j;
            check_server(&j, s, gj, end);
            worst = j.status > worst ? j.status : worst;
            const char *st = j.status ? "WARN" : "OK";
            if (json)
                printf("%s{\"id\":\"residency_rtt\",\"status\":\"%s\",\"server\":\"%s\",\"upstream\":\"%s\","
                       "\"jurisdiction\":\"%s\",\"src\":\"%s:%d\",\"rtt_ms\":%.3f,\"min_ms\":%.3f,\"max_ms\":%.3f,"
                       "\"why\":\"%s\"}",
                       n ? "," : "", st, s->text, up->name, pv_jur_text(s->jur, cc), s->src.file, s->src.line,
                       j.rtt, j.lo, j.hi, j.why);
            else
                printf("%-4s  %s upstream \"%s\" %s (%s:%d): %s\n", st, s->text, up->name, pv_jur_text(s->jur, cc),
                       s->src.file, s->src.line, j.why);
            n++;
        }
    }
    if (json)
        printf("]}\n");
    else
        printf("%d server%s measured from a gateway in %s; places: %s\n", n, n == 1 ? "" : "s",
               pv_jur_text(gj, cc), pv_jur_places_source);
    pv_conf_unref(c);
    return worst;
}
