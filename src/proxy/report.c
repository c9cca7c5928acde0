/* The reports' content handlers: Prometheus text exposition (OpenMetrics
 * when Accept asks for it) and NGINX's stub_status page; the JSON status
 * document is status.c's. Every figure is read here, off the request
 * path: the workers' blocks summed, the peers' shared state under their
 * group lock, the process counters. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "../core/counters.h"
#include "../core/time.h"
#include "../http/phases.h"
#include "../http/response.h"
#include "../http/server.h"
#include "../http/stats.h"
#include "../upstream/failure.h"
#include "../upstream/upstream.h"

/* ---- output ---------------------------------------------------------------------- */

/* Output buffers are mappings of their own, grown with mremap() and given
 * back whole with munmap(): a scrape's few hundred KiB would otherwise
 * leave the worker's heap fragmented. The capacity sits before the text. */
#define OUT_HEAD 16

static int out_room(pv_out_t *o, size_t n)
{
    if (o->oom)
        return 0;
    if (o->p && o->len + n + 1 <= o->cap)
        return 1;
    size_t cap = o->cap ? o->cap + OUT_HEAD : 65536;
    while (cap < o->len + n + 1 + OUT_HEAD)
        cap *= 2;
    char *m = o->p ? mremap(o->p - OUT_HEAD, o->cap + OUT_HEAD, cap, MREMAP_MAYMOVE)
                   : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        o->oom = 1;
        return 0;
    }
    memcpy(m, &cap, sizeof(cap));
    o->p = m + OUT_HEAD;
    o->cap = cap - OUT_HEAD;
    return 1;
}

void pv_out_free(char *p)
{
    if (!p)
        return;
    size_t cap;
    memcpy(&cap, p - OUT_HEAD, sizeof(cap));
    munmap(p - OUT_HEAD, cap);
}

void pv_out_mem(pv_out_t *o, const char *s, size_t n)
{
    if (!out_room(o, n))
        return;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

void pv_out_printf(pv_out_t *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        pv_out_mem(o, tmp, (size_t)n);
        return;
    }
    if (!out_room(o, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* ---- Accept ------------------------------------------------------------------------ */

/* The q-value of one media range's parameters (1000 for q=1), -1 when malformed. */
static int qvalue(const char *p, const char *e)
{
    int q = 1000;
    while (p < e) {
        while (p < e && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        const char *s = p;
        while (p < e && *p != ';')
            p++;
        const char *t = p;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
            s += 2;
            if (s >= t || (*s != '0' && *s != '1'))
                return -1;
            q = (*s++ - '0') * 1000;
            if (s < t && *s == '.') {
                s++;
                for (int m = 100; s < t && m && *s >= '0' && *s <= '9'; m /= 10)
                    q += (*s++ - '0') * m;
            }
            if (s != t || q > 1000)
                return -1;
        }
    }
    return q;
}

int pv_report_wants_openmetrics(const char *accept, size_t len)
{
    int om = -1, text = -1;
    const char *p = accept, *end = accept + len;
    while (p < end) {
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        if (p < end)
            p++;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        const char *m = s;
        while (m < e && *m != ';' && *m != ' ' && *m != '\t')
            m++;
        size_t n = (size_t)(m - s);
        int q = qvalue(m, e);
        if (q < 0)
            continue;
        if (n == 28 && strncasecmp(s, "application/openmetrics-text", n) == 0)
            om = PV_MAX(om, q);
        else if ((n == 10 && strncasecmp(s, "text/plain", n) == 0) || (n == 6 && strncasecmp(s, "text/*", n) == 0) ||
                 (n == 3 && memcmp(s, "*/*", 3) == 0))
            text = PV_MAX(text, q);
    }
    return om > 0 && om >= text;
}

/* ---- the answer ------------------------------------------------------------------- */

static void report_cleanup(pv_hreq_t *hr)
{
    pv_out_free(hr->handler_ctx);
    hr->handler_ctx = NULL;
}

static const pv_handler_t report_handler = {"report", NULL, NULL, NULL, report_cleanup};

void pv_report_send(pv_hreq_t *hr, pv_out_t *o, const char *content_type)
{
    if (o->oom) {
        pv_out_free(o->p);
        pv_resp_error(hr, 500);
        return;
    }
    if (hr->handler && hr->handler->cleanup) /* an auth_request subrequest's state */
        hr->handler->cleanup(hr);
    hr->handler = &report_handler;
    hr->handler_ctx = o->p;
    pv_resp_head_t head = {
        .status = o->status ? o->status : 200,
        .content_type = {content_type, strlen(content_type)},
        .content_length = (int64_t)o->len,
    };
    int rc = pv_resp_send_head(hr, &head);
    if (rc == PV_RESP_PRECONDITION) {
        pv_resp_error(hr, 412); /* the not-modified filter */
        return;
    }
    if (rc != PV_OK) {
        pv_resp_abort(hr);
        return;
    }
    pv_str_t body = {o->p, o->len};
    if (o->len && !(hr->r.flags & PV_REQ_F_HEAD))
        pv_resp_send_body(hr, &body, 1);
    pv_resp_finish(hr);
}

/* ---- exposition -------------------------------------------------------------------- */

/* The histograms' le bounds shown: from 256 us to 2^26 us, every bucket
 * (16 a power of two), then +Inf. Finer ones are summed into the first. */
#define LE_FIRST 79
#define LE_LAST (PV_HIST_N - 2)

typedef struct expo_s {
    pv_out_t *o;
    int om;                       /* OpenMetrics */
    const pv_conf_t *conf;
    pv_stats_t *sum;
    const char **loc_srv;         /* the server label of each metered location */
} expo_t;

enum { T_COUNTER = 0, T_GAUGE, T_HISTOGRAM, T_UNKNOWN, T_COUNTER_BARE };

/* # HELP and # TYPE of a family; a counter's family name carries _total
 * in the Prometheus format and not in OpenMetrics. */
static void family(expo_t *x, const char *name, int type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "unknown", "counter"};
    const char *suffix = type == T_COUNTER && !x->om ? "_total" : "";
    if (type == T_COUNTER_BARE && x->om) /* OpenMetrics wants _total on a counter's samples */
        type = T_UNKNOWN;
    const char *t = type == T_UNKNOWN && !x->om ? "untyped" : types[type];
    pv_out_printf(x->o, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, t);
}

/* A label value, escaped (\\, \", \n). */
static void label_value(pv_out_t *o, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            pv_out_printf(o, "\\%c", *p);
        else if (*p == '\n')
            pv_out_mem(o, "\\n", 2);
        else
            pv_out_mem(o, p, 1);
    }
}

/* Labels: pairs of name and value, NULL-terminated, written as {a="x",b="y"}. */
static void labels(pv_out_t *o, const char *const *kv, const char *extra_name, const char *extra_value)
{
    int n = 0;
    pv_out_mem(o, "{", 1);
    for (int i = 0; kv && kv[i]; i += 2, n++) {
        pv_out_printf(o, "%s%s=\"", n ? "," : "", kv[i]);
        label_value(o, kv[i + 1]);
        pv_out_mem(o, "\"", 1);
    }
    if (extra_name) {
        pv_out_printf(o, "%s%s=\"", n ? "," : "", extra_name);
        label_value(o, extra_value);
        pv_out_mem(o, "\"", 1);
    }
    pv_out_mem(o, "}", 1);
}

static void sample(expo_t *x, const char *name, const char *suffix, const char *const *kv, const char *en,
                   const char *ev, uint64_t v)
{
    pv_out_printf(x->o, "%s%s", name, suffix);
    if ((kv && kv[0]) || en)
        labels(x->o, kv, en, ev);
    pv_out_printf(x->o, " %llu\n", (unsigned long long)v);
}

static void sample_f(expo_t *x, const char *name, const char *const *kv, double v)
{
    pv_out_printf(x->o, "%s", name);
    if (kv && kv[0])
        labels(x->o, kv, NULL, NULL);
    pv_out_printf(x->o, " %.9g\n", v);
}

static const char *le_text(unsigned i)
{
    static char text[PV_HIST_N][24];
    if (!text[i][0])
        snprintf(text[i], sizeof(text[i]), "%.6f", (double)pv_hist_upper(i) / 1e6);
    return text[i];
}

/* One histogram's samples (its family already written). */
static void histogram(expo_t *x, const char *name, const char *const *kv, const pv_hist_t *h)
{
    uint64_t cum = 0;
    char bucket[128];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    for (unsigned i = 0; i < PV_HIST_N - 1; i++) {
        cum += pv_ctr_get(&h->b[i]);
        if (i >= LE_FIRST && i <= LE_LAST)
            sample(x, bucket, "", kv, "le", le_text(i), cum);
    }
    cum += pv_ctr_get(&h->b[PV_HIST_N - 1]);
    sample(x, bucket, "", kv, "le", "+Inf", cum);
    pv_out_printf(x->o, "%s_sum", name);
    labels(x->o, kv, NULL, NULL);
    pv_out_printf(x->o, " %.6f\n", (double)pv_ctr_get(&h->sum_us) / 1e6);
    sample(x, name, "_count", kv, NULL, NULL, cum);
}

static const char *const classes[PV_STAT_CLASSES] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

/* The labels of server block or location i into kv; its request counters. */
static const pv_stat_req_t *req_labels(const expo_t *x, int loc, int i, const char **kv)
{
    const pv_http_conf_t *h = x->conf->http;
    kv[0] = "server";
    if (!loc) {
        kv[1] = h->servers[i]->mlabel, kv[2] = NULL;
        return &x->sum->srv[i].c;
    }
    kv[1] = x->loc_srv[i], kv[2] = "location", kv[3] = h->mlocs[i]->metrics_name, kv[4] = NULL;
    return &x->sum->loc[i].c;
}

/* Requests by class and method, bytes: of every server (loc 0) or location. */
static void req_families(expo_t *x, int loc)
{
    const pv_http_conf_t *h = x->conf->http;
    const char *what = loc ? "location" : "server";
    int n = loc ? h->nmlocs : h->nservers;
    char name[96];
    const char *kv[5] = {NULL};
    snprintf(name, sizeof(name), "portvakt_%s_responses", what);
    family(x, name, T_COUNTER, loc ? "Requests answered, by location and status class." : "Requests answered, by server block and status class.");
    for (int i = 0; i < n; i++) {
        const pv_stat_req_t *c = req_labels(x, loc, i, kv);
        for (int k = 0; k < PV_STAT_CLASSES; k++)
            sample(x, name, "_total", kv, "code", classes[k], pv_ctr_get(&c->status[k]));
    }
    snprintf(name, sizeof(name), "portvakt_%s_requests", what);
    family(x, name, T_COUNTER, "Requests answered, by method.");
    for (int i = 0; i < n; i++) {
        const pv_stat_req_t *c = req_labels(x, loc, i, kv);
        for (int k = 0; k < PV_SM_N; k++)
            sample(x, name, "_total", kv, "method", pv_stats_methods[k], pv_ctr_get(&c->method[k]));
    }
    snprintf(name, sizeof(name), "portvakt_%s_received_bytes", what);
    family(x, name, T_COUNTER, "Request bytes read (line, head and body).");
    for (int i = 0; i < n; i++)
        sample(x, name, "_total", kv, NULL, NULL, pv_ctr_get(&req_labels(x, loc, i, kv)->bytes_in));
    snprintf(name, sizeof(name), "portvakt_%s_sent_bytes", what);
    family(x, name, T_COUNTER, "Response bytes sent.");
    for (int i = 0; i < n; i++)
        sample(x, name, "_total", kv, NULL, NULL, pv_ctr_get(&req_labels(x, loc, i, kv)->bytes_out));
    snprintf(name, sizeof(name), "portvakt_%s_request_duration_seconds", what);
    family(x, name, T_HISTOGRAM, "Time from a request's first byte to its end.");
    for (int i = 0; i < n; i++) {
        req_labels(x, loc, i, kv);
        histogram(x, name, kv, loc ? &x->sum->loc[i].dur : &x->sum->srv[i].dur);
    }
    if (loc) {
        family(x, "portvakt_location_upstream_duration_seconds", T_HISTOGRAM, "Time spent on upstreams per request, every try together.");
        for (int i = 0; i < n; i++) {
            req_labels(x, loc, i, kv);
            histogram(x, "portvakt_location_upstream_duration_seconds", kv, &x->sum->loc[i].up);
        }
        return;
    }
    family(x, "portvakt_server_requests_active", T_GAUGE, "Requests in progress.");
    for (int i = 0; i < n; i++) {
        uint64_t a = pv_ctr_get(&x->sum->srv[i].started), e = pv_ctr_get(&x->sum->srv[i].ended);
        req_labels(x, loc, i, kv);
        sample(x, "portvakt_server_requests_active", "", kv, NULL, NULL, a > e ? a - e : 0);
    }
}

/* The health state of server i of pool p, read under its group lock. */
typedef struct peer_view_s {
    const char *state;            /* up, down (health checks), unchecked (mandatory, not yet), ejected, failed, disabled */
    uint64_t ejected, downs, checks, checks_failed;
    int conns;
} peer_view_t;

static void peer_view(pv_upool_t *p, int i, peer_view_t *v)
{
    pv_peer_t *peer = p->peers[i];
    uint64_t now = pv_now_ms();
    pthread_mutex_lock(&peer->group->lock);
    const pv_bal_state_t *b = &peer->bal;
    const pv_upstream_server_t *s = &p->cf->servers[i];
    v->state = s->down ? "disabled"
             : b->hc_down ? (b->hc_checked ? "down" : "unchecked")
             : b->od_until > (int64_t)now ? "ejected"
             : s->max_fails && b->fails >= s->max_fails && (int64_t)now - b->checked <= s->fail_timeout ? "failed"
             : "up";
    v->ejected = b->ejected_total;
    v->downs = b->hc_down_total;
    v->checks = b->checks_total;
    v->checks_failed = b->checks_failed;
    v->conns = b->conns;
    pthread_mutex_unlock(&peer->group->lock);
}

static const char *const peer_states[] = {"up", "down", "unchecked", "ejected", "failed", "disabled"};

static void ups_families(expo_t *x, pv_wgen_t *g)
{
    const pv_http_conf_t *h = x->conf->http;
    const char *kv[5] = {NULL};
#define EACH_UPS(...)                                                                 \
    for (int u = 0; u < h->nupstreams; u++) {                                          \
        kv[0] = "upstream", kv[1] = h->upstreams[u]->name, kv[2] = NULL;               \
        const pv_stat_ups_t *us = &x->sum->ups[u];                                     \
        __VA_ARGS__                                                                    \
    }
#define EACH_PEER(...)                                                                \
    for (int u = 0; u < h->nupstreams; u++) {                                          \
        const pv_upstream_conf_t *uc = h->upstreams[u];                                \
        for (int i = 0; i < uc->nservers; i++) {                                       \
            kv[0] = "upstream", kv[1] = uc->name, kv[2] = "server", kv[3] = uc->servers[i].text; \
            const pv_stat_peer_t *ps = &x->sum->peer[uc->peer_base + i];               \
            (void)ps;                                                                  \
            __VA_ARGS__                                                                \
        }                                                                              \
    }
    family(x, "portvakt_upstream_retries", T_COUNTER, "Tries after the first (proxy_next_upstream, stale pooled connections).");
    EACH_UPS(sample(x, "portvakt_upstream_retries", "_total", kv, NULL, NULL, pv_ctr_get(&us->retries));)
    family(x, "portvakt_upstream_unavailable", T_COUNTER, "Requests for which no server could be tried.");
    EACH_UPS(sample(x, "portvakt_upstream_unavailable", "_total", kv, NULL, NULL, pv_ctr_get(&us->no_live));)
    family(x, "portvakt_upstream_health_gated", T_COUNTER, "503 answers while mandatory health checks held every server out.");
    EACH_UPS(sample(x, "portvakt_upstream_health_gated", "_total", kv, NULL, NULL, pv_ctr_get(&us->gated));)
    family(x, "portvakt_upstream_server_requests", T_COUNTER, "Tries sent to the server.");
    EACH_PEER(sample(x, "portvakt_upstream_server_requests", "_total", kv, NULL, NULL, pv_ctr_get(&ps->requests));)
    family(x, "portvakt_upstream_server_responses", T_COUNTER, "Tries by the class of the server's answer (none: no answer).");
    EACH_PEER(for (int k = 0; k < PV_STAT_CLASSES; k++) sample(x, "portvakt_upstream_server_responses", "_total", kv, "code", classes[k], pv_ctr_get(&ps->status[k]));)
    family(x, "portvakt_upstream_server_failures", T_COUNTER, "Failed tries, by cause.");
    EACH_PEER(for (int k = 1; k < PV_UPF_COUNT; k++) if (k != PV_UPF_NO_LIVE) sample(x, "portvakt_upstream_server_failures", "_total", kv, "cause", pv_upfail_info((pv_upfail_t)k)->name, pv_ctr_get(&ps->fails[k]));)
    family(x, "portvakt_upstream_connections_opened", T_COUNTER, "Connections opened to the server.");
    EACH_PEER(sample(x, "portvakt_upstream_connections_opened", "_total", kv, NULL, NULL, pv_ctr_get(&ps->opened));)
    family(x, "portvakt_upstream_connections_reused", T_COUNTER, "Tries sent on a pooled (keepalive) connection.");
    EACH_PEER(sample(x, "portvakt_upstream_connections_reused", "_total", kv, NULL, NULL, pv_ctr_get(&ps->reused));)
    family(x, "portvakt_upstream_connections_idle", T_GAUGE, "Connections idle in the workers' pools.");
    EACH_PEER({
        uint64_t in = pv_ctr_get(&ps->idle_in), out = pv_ctr_get(&ps->idle_out);
        sample(x, "portvakt_upstream_connections_idle", "", kv, NULL, NULL, in > out ? in - out : 0);
    })
    family(x, "portvakt_upstream_connections_closed", T_COUNTER, "Connections closed, by cause.");
    EACH_PEER(for (int k = 0; k < PV_SCLOSE_N; k++) sample(x, "portvakt_upstream_connections_closed", "_total", kv, "cause", pv_stats_close_causes[k], pv_ctr_get(&ps->closed[k]));)
    family(x, "portvakt_upstream_response_duration_seconds", T_HISTOGRAM, "A try's duration, to the end of the response.");
    EACH_PEER(histogram(x, "portvakt_upstream_response_duration_seconds", kv, &ps->resp);)
    family(x, "portvakt_upstream_connect_duration_seconds", T_HISTOGRAM, "Time to set a connection up (TLS included).");
    EACH_PEER(histogram(x, "portvakt_upstream_connect_duration_seconds", kv, &ps->connect);)
    family(x, "portvakt_upstream_header_duration_seconds", T_HISTOGRAM, "Time from a try's start to the response head.");
    EACH_PEER(histogram(x, "portvakt_upstream_header_duration_seconds", kv, &ps->header);)
    /* the shared state: health, ejections, checks */
    int np = h->npeers;
    peer_view_t *views = calloc((size_t)(np ? np : 1), sizeof(*views));
    if (!views) {
        x->o->oom = 1;
        return;
    }
    for (int u = 0; u < h->nupstreams; u++)
        for (int i = 0; i < h->upstreams[u]->nservers; i++)
            peer_view(pv_upstream_pool(g, u), i, &views[h->upstreams[u]->peer_base + i]);
    family(x, "portvakt_upstream_server_state", T_GAUGE, "1 for the server's state: up, down (health checks), unchecked (a mandatory check not passed yet), ejected (outlier detection), failed (max_fails), disabled (down).");
    EACH_PEER(for (size_t k = 0; k < PV_NELEM(peer_states); k++) sample(x, "portvakt_upstream_server_state", "", kv, "state", peer_states[k], strcmp(views[uc->peer_base + i].state, peer_states[k]) == 0);)
    family(x, "portvakt_upstream_server_active", T_GAUGE, "Tries in progress on the server, every worker.");
    EACH_PEER(sample(x, "portvakt_upstream_server_active", "", kv, NULL, NULL, (uint64_t)PV_MAX(views[uc->peer_base + i].conns, 0));)
    family(x, "portvakt_upstream_server_ejections", T_COUNTER, "Outlier ejections.");
    EACH_PEER(sample(x, "portvakt_upstream_server_ejections", "_total", kv, NULL, NULL, views[uc->peer_base + i].ejected);)
    family(x, "portvakt_upstream_server_health_checks", T_COUNTER, "Active health checks done.");
    EACH_PEER(sample(x, "portvakt_upstream_server_health_checks", "_total", kv, NULL, NULL, views[uc->peer_base + i].checks);)
    family(x, "portvakt_upstream_server_health_checks_failed", T_COUNTER, "Active health checks failed.");
    EACH_PEER(sample(x, "portvakt_upstream_server_health_checks_failed", "_total", kv, NULL, NULL, views[uc->peer_base + i].checks_failed);)
    family(x, "portvakt_upstream_server_health_downs", T_COUNTER, "Times the health checks took the server out.");
    EACH_PEER(sample(x, "portvakt_upstream_server_health_downs", "_total", kv, NULL, NULL, views[uc->peer_base + i].downs);)
    free(views);
#undef EACH_UPS
#undef EACH_PEER
}

static void policy_families(expo_t *x)
{
    const pv_http_conf_t *h = x->conf->http;
    const char *kv[3] = {NULL};
    family(x, "portvakt_proxy_cache_requests", T_COUNTER, "Requests per cache zone, by $upstream_cache_status.");
    for (int z = 0; z < h->ncaches; z++) {
        kv[0] = "zone", kv[1] = h->caches[z]->name;
        for (int k = 1; k < PV_CACHE_N; k++)
            sample(x, "portvakt_proxy_cache_requests", "_total", kv, "status", pv_stats_cache_statuses[k], pv_ctr_get(&x->sum->cache[z].status[k]));
    }
    family(x, "portvakt_limit_req", T_COUNTER, "limit_req outcomes per zone, as $limit_req_status.");
    for (int z = 0; z < h->nzones; z++) {
        if (h->zones[z]->kind != PV_ZONE_REQ)
            continue;
        kv[0] = "zone", kv[1] = h->zones[z]->name;
        for (int k = 0; k < PV_SLIM_N; k++)
            sample(x, "portvakt_limit_req", "_total", kv, "outcome", pv_stats_limit_outcomes[k], pv_ctr_get(&x->sum->zone[z].out[k]));
    }
    family(x, "portvakt_limit_conn", T_COUNTER, "limit_conn outcomes per zone, as $limit_conn_status.");
    for (int z = 0; z < h->nzones; z++) {
        if (h->zones[z]->kind != PV_ZONE_CONN)
            continue;
        kv[0] = "zone", kv[1] = h->zones[z]->name;
        for (int k = 0; k < PV_SLIM_N; k++)
            if (k != PV_SLIM_DELAYED && k != PV_SLIM_DELAYED_DRY_RUN)
                sample(x, "portvakt_limit_conn", "_total", kv, "outcome", pv_stats_limit_outcomes[k], pv_ctr_get(&x->sum->zone[z].out[k]));
    }
    static const char *const outs[PV_SAUTH_OUT_N] = {"passed", "401", "403"};
    family(x, "portvakt_auth", T_COUNTER, "Authentication outcomes by method: passed, 401, 403.");
    for (int m = 0; m < PV_SAUTH_N; m++)
        for (int k = 0; k < PV_SAUTH_OUT_N; k++) {
            const char *akv[] = {"method", pv_stats_auth_methods[m], NULL};
            sample(x, "portvakt_auth", "_total", akv, "outcome", outs[k], pv_ctr_get(&x->sum->auth[m][k]));
        }
}

/* The connection states NGINX's stub_status shows. */
typedef struct conn_view_s {
    uint64_t active, accepted, requests, reading, writing, waiting;
} conn_view_t;

static void conn_view(conn_view_t *v)
{
    uint64_t c[PV_CTR__COUNT];
    pv_counters_sum(c);
    v->active = c[PV_CTR_CONNS_OPEN];
    v->accepted = c[PV_CTR_CONNS_ACCEPTED];
    v->requests = c[PV_CTR_REQ_CREATED];
    uint64_t open = c[PV_CTR_REQ_CREATED] - c[PV_CTR_REQ_FREED];
    v->writing = c[PV_CTR_REQ_READ] - c[PV_CTR_REQ_FREED_READ];
    v->reading = open > v->writing ? open - v->writing : 0;
    v->waiting = v->active > v->reading + v->writing ? v->active - v->reading - v->writing : 0;
}

static void process_families(expo_t *x)
{
    uint64_t c[PV_CTR__COUNT];
    pv_counters_sum(c);
    conn_view_t v;
    conn_view(&v);
    /* nginx-prometheus-exporter's names, from the same figures as stub_status */
    family(x, "nginx_connections_accepted", T_COUNTER_BARE, "Accepted client connections");
    sample(x, "nginx_connections_accepted", "", NULL, NULL, NULL, v.accepted);
    family(x, "nginx_connections_active", T_GAUGE, "Active client connections");
    sample(x, "nginx_connections_active", "", NULL, NULL, NULL, v.active);
    family(x, "nginx_connections_handled", T_COUNTER_BARE, "Handled client connections");
    sample(x, "nginx_connections_handled", "", NULL, NULL, NULL, v.accepted);
    family(x, "nginx_connections_reading", T_GAUGE, "Connections where NGINX is reading the request header");
    sample(x, "nginx_connections_reading", "", NULL, NULL, NULL, v.reading);
    family(x, "nginx_connections_waiting", T_GAUGE, "Idle client connections");
    sample(x, "nginx_connections_waiting", "", NULL, NULL, NULL, v.waiting);
    family(x, "nginx_connections_writing", T_GAUGE, "Connections where NGINX is writing the response back to the client");
    sample(x, "nginx_connections_writing", "", NULL, NULL, NULL, v.writing);
    family(x, "nginx_http_requests", T_COUNTER, "Total http requests");
    sample(x, "nginx_http_requests", "_total", NULL, NULL, NULL, v.requests);
    family(x, "nginx_up", T_GAUGE, "Status of the last metric scrape");
    sample(x, "nginx_up", "", NULL, NULL, NULL, 1);

    static const struct { int id; const char *name, *help; } ctrs[] = {
        {PV_CTR_ACCEPT_ERRORS, "portvakt_accept_errors", "accept() failures for want of descriptors (EMFILE, ENFILE)."},
        {PV_CTR_SHED, "portvakt_connections_shed", "Pending connections shed while descriptors ran out."},
        {PV_CTR_TLS_HANDSHAKES, "portvakt_tls_handshakes", "TLS handshakes completed with clients."},
        {PV_CTR_TLS_RESUMED, "portvakt_tls_sessions_resumed", "Client TLS handshakes that resumed a session."},
        {PV_CTR_TLS_FAILED, "portvakt_tls_handshake_failures", "Client TLS handshakes that failed."},
        {PV_CTR_H2_STREAMS, "portvakt_http2_streams", "HTTP/2 streams opened."},
        {PV_CTR_H2_RESETS, "portvakt_http2_stream_resets", "HTTP/2 streams reset with an error code, either way."},
        {PV_CTR_UPSTREAM_OPENED, "portvakt_upstream_connections_opened_all", "Upstream connections opened, every upstream and snapshot."},
        {PV_CTR_UPSTREAM_REUSED, "portvakt_upstream_connections_reused_all", "Tries on pooled upstream connections, every upstream and snapshot."},
        {PV_CTR_RESIDENCY_REFUSED, "portvakt_residency_refused", "Requests refused (403) for a route out of their residency scope."},
    };
    for (size_t i = 0; i < PV_NELEM(ctrs); i++) {
        family(x, ctrs[i].name, T_COUNTER, ctrs[i].help);
        sample(x, ctrs[i].name, "_total", NULL, NULL, NULL, c[ctrs[i].id]);
    }
    family(x, "portvakt_reloads", T_COUNTER, "Configuration reloads, by result.");
    sample(x, "portvakt_reloads", "_total", NULL, "result", "ok", c[PV_CTR_RELOADS]);
    sample(x, "portvakt_reloads", "_total", NULL, "result", "failed", c[PV_CTR_RELOAD_FAILS]);
    family(x, "portvakt_config_last_reload_successful", T_GAUGE, "0 when the last reload was refused.");
    sample(x, "portvakt_config_last_reload_successful", "", NULL, NULL, NULL, !c[PV_CTR_RELOAD_LAST_FAILED]);
    uint64_t lag[256], worst = 0;
    int n = pv_counters_each(PV_CTR_LOOP_LAG_US, lag, (int)PV_NELEM(lag));
    for (int i = 0; i < n; i++)
        worst = PV_MAX(worst, lag[i]);
    family(x, "portvakt_worker_loop_lag_seconds", T_GAUGE, "How late the busiest worker's loop ran a 1 s timer, last time.");
    sample_f(x, "portvakt_worker_loop_lag_seconds", NULL, (double)worst / 1e6);
    pv_stats_host_t hs;
    pv_stats_host(&hs);
    family(x, "portvakt_process_resident_memory_bytes", T_GAUGE, "Resident memory (sampled every 5 s; -1 not yet).");
    sample_f(x, "portvakt_process_resident_memory_bytes", NULL, (double)hs.rss);
    family(x, "portvakt_process_open_fds", T_GAUGE, "Open descriptors (sampled every 5 s; -1 not yet).");
    sample_f(x, "portvakt_process_open_fds", NULL, (double)hs.fds);
    family(x, "portvakt_host_cpu_steal_percent", T_GAUGE, "CPU steal time over the last 5 s, as portvakt doctor reads it (-1 not yet).");
    sample_f(x, "portvakt_host_cpu_steal_percent", NULL, hs.steal_pct);
    family(x, "portvakt_host_load_average", T_GAUGE, "The host's load average.");
    static const char *const periods[] = {"1m", "5m", "15m"};
    for (int i = 0; i < 3; i++) {
        const char *kv[] = {"period", periods[i], NULL};
        sample_f(x, "portvakt_host_load_average", kv, hs.load[i]);
    }
}

static void metrics(pv_hreq_t *hr)
{
    const pv_header_t *acc = pv_request_header(&hr->r, "accept", 6);
    pv_out_t o = {0};
    expo_t x = {&o, acc && pv_report_wants_openmetrics(acc->value.p, acc->value.len), hr->gen->conf, NULL, NULL};
    const pv_http_conf_t *h = x.conf->http;
    x.sum = pv_stats_sum(x.conf);
    x.loc_srv = calloc((size_t)h->nmlocs + 1, sizeof(char *));
    if (!x.sum || !x.loc_srv) {
        o.oom = 1;
    } else {
        for (int k = 0; k < h->nservers; k++)
            for (int j = 0; j < h->servers[k]->nlocations; j++)
                x.loc_srv[h->servers[k]->locations[j]->mid - 1] = h->servers[k]->mlabel;
        process_families(&x);
        req_families(&x, 0);
        req_families(&x, 1);
        ups_families(&x, hr->gen);
        policy_families(&x);
        if (x.om)
            pv_out_mem(&o, "# EOF\n", 6);
    }
    free(x.sum);
    free(x.loc_srv);
    pv_report_send(hr, &o, x.om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                : "text/plain; version=0.0.4; charset=utf-8");
}

/* NGINX's stub_status page, byte for byte. */
static void stub_status(pv_hreq_t *hr)
{
    conn_view_t v;
    conn_view(&v);
    pv_out_t o = {0};
    pv_out_printf(&o, "Active connections: %llu \nserver accepts handled requests\n %llu %llu %llu \n"
                      "Reading: %llu Writing: %llu Waiting: %llu \n",
                  (unsigned long long)v.active, (unsigned long long)v.accepted, (unsigned long long)v.accepted,
                  (unsigned long long)v.requests, (unsigned long long)v.reading, (unsigned long long)v.writing,
                  (unsigned long long)v.waiting);
    pv_report_send(hr, &o, "text/plain");
}

static int claims(const pv_location_t *loc)
{
    return loc->report != PV_REPORT_NONE;
}

static int content(pv_hreq_t *hr)
{
    int m = hr->r.method_id;
    if (m != HTTP_GET && m != HTTP_HEAD) {
        pv_resp_error(hr, 405);
        return PV_PHASE_DONE;
    }
    /* the dashboard's page asks its own location for its data */
    int report = hr->r.loc->report;
    if (report == PV_REPORT_DASHBOARD && hr->r.has_args && hr->r.args.len == 11 && memcmp(hr->r.args.p, "format=json", 11) == 0)
        report = PV_REPORT_STATUS;
    switch (report) {
    case PV_REPORT_DASHBOARD: {
        pv_out_t o = {0};
        pv_out_mem(&o, pv_dashboard_html, pv_dashboard_html_size);
        pv_report_send(hr, &o, "text/html; charset=utf-8");
        break;
    }
    case PV_REPORT_STATUS: {
        pv_out_t o = {0};
        pv_report_status(hr, &o);
        pv_report_send(hr, &o, "application/json");
        break;
    }
    case PV_REPORT_METRICS:
        metrics(hr);
        break;
    default:
        stub_status(hr);
        break;
    }
    return PV_PHASE_DONE;
}

static const pv_content_t report_content = {"report", claims, content, NULL};

static int mod_init(void)
{
    pv_phases_content(&report_content);
    return PV_OK;
}

pv_module_t pv_report_module = {
    .name = "report",
    .init = mod_init,
};
