/* `portvakt_status;`: the figures of the metrics as one JSON document in
 * the shape of NGINX Plus's API (/api/N/...: nginx, connections, ssl,
 * http/requests, http/server_zones, http/location_zones, http/upstreams,
 * http/limit_reqs, http/limit_conns), plus what that API has not: recent
 * p50/p95/p99 per route and upstream over sliding 10 s and 5 min windows
 * ("latency"), the host figures `portvakt doctor` reads ("host"), and
 * the residency map of `portvakt residency --json` ("residency"). */
#include "report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../config/residency.h"
#include "../core/counters.h"
#include "../core/time.h"
#include "../host/checks.h"
#include "../http/fcache.h"
#include "../http/server.h"
#include "../http/stats.h"
#include "../upstream/upstream.h"

static const char *const classes[PV_STAT_CLASSES] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};

/* {"1xx": .., "5xx": .., "total": ..} from counts by class */
static json_t *responses(const pv_ctr_t *status)
{
    json_t *o = json_object();
    json_int_t total = 0;
    for (int k = 1; k < PV_STAT_CLASSES; k++) {
        json_int_t v = (json_int_t)pv_ctr_get(&status[k]);
        json_object_set_new(o, classes[k], json_integer(v));
        total += v;
    }
    json_object_set_new(o, "total", json_integer(total));
    return o;
}

static json_int_t total_of(const pv_ctr_t *status)
{
    json_int_t t = 0;
    for (int k = 0; k < PV_STAT_CLASSES; k++)
        t += (json_int_t)pv_ctr_get(&status[k]);
    return t;
}

/* {"10s": {"count", "p50", "p95", "p99"}, "5m": {...}} in milliseconds */
static json_t *latency(const pv_conf_t *conf, int upstream, int i)
{
    static const char *const wins[PV_WIN_N] = {"10s", "5m"};
    json_t *o = json_object();
    for (int w = 0; w < PV_WIN_N; w++) {
        double q[3] = {0, 0, 0};
        uint64_t n = 0;
        pv_stats_window(conf, upstream, i, w, q, &n);
        json_object_set_new(o, wins[w], json_pack("{s:I,s:f,s:f,s:f}", "count", (json_int_t)n, "p50", q[0] / 1000,
                                                  "p95", q[1] / 1000, "p99", q[2] / 1000));
    }
    return o;
}

/* average of a histogram in milliseconds (NGINX Plus's header_time, response_time) */
static json_int_t avg_ms(const pv_hist_t *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < PV_HIST_N; i++)
        n += pv_ctr_get(&h->b[i]);
    return n ? (json_int_t)(pv_ctr_get(&h->sum_us) / n / 1000) : 0;
}

static json_t *zones(const pv_conf_t *conf, const pv_stats_t *sum)
{
    const pv_http_conf_t *h = conf->http;
    json_t *sz = json_object();
    for (int i = 0; i < h->nservers; i++) {
        const pv_stat_srv_t *s = &sum->srv[i];
        uint64_t a = pv_ctr_get(&s->started), e = pv_ctr_get(&s->ended);
        json_object_set_new(sz, h->servers[i]->mlabel,
                            json_pack("{s:I,s:I,s:o,s:I,s:I,s:I}", "processing", (json_int_t)(a > e ? a - e : 0),
                                      "requests", total_of(s->c.status), "responses", responses(s->c.status),
                                      "discarded", (json_int_t)pv_ctr_get(&s->c.status[0]),
                                      "received", (json_int_t)pv_ctr_get(&s->c.bytes_in),
                                      "sent", (json_int_t)pv_ctr_get(&s->c.bytes_out)));
    }
    return sz;
}

static json_t *location_zones(const pv_conf_t *conf, const pv_stats_t *sum)
{
    const pv_http_conf_t *h = conf->http;
    json_t *lz = json_object();
    for (int k = 0; k < h->nservers; k++) {
        const pv_server_t *s = h->servers[k];
        for (int j = 0; j < s->nlocations; j++) {
            const pv_location_t *l = s->locations[j];
            const pv_stat_loc_t *c = &sum->loc[l->mid - 1];
            json_t *z = json_pack("{s:s,s:I,s:o,s:I,s:I,s:I,s:o}", "server", s->mlabel, "requests",
                                  total_of(c->c.status), "responses", responses(c->c.status), "discarded",
                                  (json_int_t)pv_ctr_get(&c->c.status[0]), "received",
                                  (json_int_t)pv_ctr_get(&c->c.bytes_in), "sent", (json_int_t)pv_ctr_get(&c->c.bytes_out),
                                  "latency", latency(conf, 0, l->mid - 1));
            /* a name two servers use is told apart by its server */
            if (json_object_get(lz, l->metrics_name)) {
                char key[512];
                snprintf(key, sizeof(key), "%s %s", s->mlabel, l->metrics_name);
                json_object_set_new(lz, key, z);
            } else {
                json_object_set_new(lz, l->metrics_name, z);
            }
        }
    }
    return lz;
}

static json_t *peer(pv_upool_t *p, int i, const pv_stat_peer_t *ps, int id)
{
    const pv_upstream_server_t *s = &p->cf->servers[i];
    pv_peer_t *pe = p->peers[i];
    int64_t now = (int64_t)pv_now_ms();
    pthread_mutex_lock(&pe->group->lock);
    const pv_bal_state_t b = pe->bal;
    pthread_mutex_unlock(&pe->group->lock);
    const char *state = s->down ? "down" : b.hc_down ? (b.hc_checked ? "unhealthy" : "checking")
                      : b.od_until > now ? "unavail"
                      : s->max_fails && b.fails >= s->max_fails && now - b.checked <= s->fail_timeout ? "unavail"
                      : "up";
    json_int_t fails = 0;
    for (int k = 1; k < PV_STAT_CAUSES; k++)
        fails += (json_int_t)pv_ctr_get(&ps->fails[k]);
    uint64_t in = pv_ctr_get(&ps->idle_in), out = pv_ctr_get(&ps->idle_out);
    return json_pack("{s:i,s:s,s:s,s:b,s:i,s:s,s:i,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:I}",
                     "id", id, "server", s->text, "name", s->name ? s->name : s->text, "backup", s->backup,
                     "weight", s->weight, "state", state, "active", b.conns, "requests",
                     (json_int_t)pv_ctr_get(&ps->requests), "responses", responses(ps->status), "fails", fails,
                     "unavail", (json_int_t)b.ejected_total, "header_time", avg_ms(&ps->header), "response_time",
                     avg_ms(&ps->resp), "connect_time", avg_ms(&ps->connect), "connections_opened",
                     (json_int_t)pv_ctr_get(&ps->opened), "connections_reused", (json_int_t)pv_ctr_get(&ps->reused),
                     "idle", (json_int_t)(in > out ? in - out : 0), "health_checks", "checks",
                     (json_int_t)b.checks_total, "fails", (json_int_t)b.checks_failed, "unhealthy",
                     (json_int_t)b.hc_down_total, "ejections", (json_int_t)b.ejected_total);
}

static json_t *upstreams(pv_hreq_t *hr, const pv_conf_t *conf, const pv_stats_t *sum)
{
    const pv_http_conf_t *h = conf->http;
    json_t *ups = json_object();
    for (int u = 0; u < h->nupstreams; u++) {
        const pv_upstream_conf_t *uc = h->upstreams[u];
        pv_upool_t *p = pv_upstream_pool(hr->gen, u);
        json_t *peers = json_array();
        for (int i = 0; i < uc->nservers; i++)
            json_array_append_new(peers, peer(p, i, &sum->peer[uc->peer_base + i], i));
        const pv_stat_ups_t *us = &sum->ups[u];
        json_object_set_new(ups, uc->name,
                            json_pack("{s:o,s:i,s:i,s:s?,s:I,s:I,s:I,s:o}", "peers", peers, "keepalive", uc->keepalive,
                                      "zombies", 0, "zone", uc->zone, "retries", (json_int_t)pv_ctr_get(&us->retries),
                                      "unavailable", (json_int_t)pv_ctr_get(&us->no_live), "health_gated",
                                      (json_int_t)pv_ctr_get(&us->gated), "latency", latency(conf, 1, u)));
    }
    return ups;
}

static json_t *limits(const pv_conf_t *conf, const pv_stats_t *sum, int kind)
{
    const pv_http_conf_t *h = conf->http;
    json_t *o = json_object();
    for (int z = 0; z < h->nzones; z++) {
        if (h->zones[z]->kind != kind)
            continue;
        const pv_ctr_t *c = sum->zone[z].out;
        json_t *v = kind == PV_ZONE_REQ
            ? json_pack("{s:I,s:I,s:I,s:I,s:I}", "passed", (json_int_t)pv_ctr_get(&c[PV_SLIM_PASSED]), "delayed",
                        (json_int_t)pv_ctr_get(&c[PV_SLIM_DELAYED]), "rejected", (json_int_t)pv_ctr_get(&c[PV_SLIM_REJECTED]),
                        "delayed_dry_run", (json_int_t)pv_ctr_get(&c[PV_SLIM_DELAYED_DRY_RUN]), "rejected_dry_run",
                        (json_int_t)pv_ctr_get(&c[PV_SLIM_REJECTED_DRY_RUN]))
            : json_pack("{s:I,s:I,s:I}", "passed", (json_int_t)pv_ctr_get(&c[PV_SLIM_PASSED]), "rejected",
                        (json_int_t)pv_ctr_get(&c[PV_SLIM_REJECTED]), "rejected_dry_run",
                        (json_int_t)pv_ctr_get(&c[PV_SLIM_REJECTED_DRY_RUN]));
        json_object_set_new(o, h->zones[z]->name, v);
    }
    return o;
}

/* host.checks: `portvakt doctor`'s checks of the last start or reload,
 * steal judged on the sampler's figure (the checks at start take none). */
static json_t *host_checks(double steal)
{
    static const char *const words[] = {"ok", "warn", "fail"};
    pv_host_check_t c[PV_HOST_CHECKS_MAX];
    int n = pv_host_checks(c);
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        if (strcmp(c[i].id, "steal") == 0) {
            if (steal < 0)
                continue;
            c[i].status = steal > PV_HOST_STEAL_FAIL ? PV_HOST_CHECK_FAIL
                          : steal > PV_HOST_STEAL_WARN ? PV_HOST_CHECK_WARN : PV_HOST_CHECK_OK;
            snprintf(c[i].value, sizeof(c[i].value), "%.1f %%", steal);
            snprintf(c[i].want, sizeof(c[i].want), "<= %.0f %%", PV_HOST_STEAL_WARN);
            c[i].fix[0] = '\0';
        }
        json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", c[i].id, "status",
                                           words[c[i].status > 2 ? 2 : c[i].status], "value", c[i].value,
                                           "want", c[i].want, "fix", c[i].fix));
    }
    return a;
}

static json_t *process(void)
{
    uint64_t c[PV_CTR__COUNT];
    pv_counters_sum(c);
    pv_stats_host_t hs;
    pv_stats_host(&hs);
    char ts[32];
    pv_time_msec(ts);
    json_t *o = json_pack("{s:{s:s,s:s,s:I,s:i,s:s},s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I},s:{s:I,s:I},"
                          "s:{s:I,s:I,s:f,s:[f,f,f]}}",
                          "nginx", "version", PV_VERSION, "build", PV_NAME, "generation", (json_int_t)c[PV_CTR_RELOADS],
                          "pid", (int)getpid(), "timestamp", ts,
                          "connections", "accepted", (json_int_t)c[PV_CTR_CONNS_ACCEPTED], "dropped",
                          (json_int_t)c[PV_CTR_SHED], "active", (json_int_t)c[PV_CTR_CONNS_OPEN], "idle", (json_int_t)0,
                          "ssl", "handshakes", (json_int_t)c[PV_CTR_TLS_HANDSHAKES], "handshakes_failed",
                          (json_int_t)c[PV_CTR_TLS_FAILED], "session_reuses", (json_int_t)c[PV_CTR_TLS_RESUMED],
                          "http2", "streams", (json_int_t)c[PV_CTR_H2_STREAMS], "resets", (json_int_t)c[PV_CTR_H2_RESETS],
                          "host", "rss", (json_int_t)hs.rss, "fds", (json_int_t)hs.fds, "cpu_steal_percent", hs.steal_pct,
                          "load", hs.load[0], hs.load[1], hs.load[2]);
    if (o)
        json_object_set_new(json_object_get(o, "host"), "checks", host_checks(hs.steal_pct));
    return o;
}

/* http.caches in NGINX Plus's shape: each zone's size on disk, its
 * max_size, and responses by cache status (no byte counts). */
static json_t *caches(const pv_conf_t *conf, const pv_stats_t *sum)
{
    json_t *o = json_object();
    for (int z = 0; z < conf->http->ncaches; z++) {
        const pv_cache_path_t *cp = conf->http->caches[z];
        json_t *c = json_object();
        json_object_set_new(c, "size", json_integer(cp->impl ? pv_fc_size(cp->impl) : 0));
        if (cp->max_size > 0)
            json_object_set_new(c, "max_size", json_integer(cp->max_size));
        for (int k = 1; k < PV_STAT_CACHE_N; k++)
            json_object_set_new(c, pv_stats_cache_statuses[k],
                                json_pack("{s:I}", "responses", (json_int_t)pv_ctr_get(&sum->cache[z].status[k])));
        json_object_set_new(o, cp->name, c);
    }
    return o;
}

/* The residency map (residency_map.c) when the config has a scope. */
static json_t *residency(const pv_conf_t *conf)
{
    if (!conf->http || !conf->http->res || !conf->http->res->used)
        return NULL;
    pv_arena_t a;
    pv_arena_init(&a, 16384);
    json_t *map = pv_residency_map(conf, &a);
    pv_arena_free(&a);
    return map;
}

/* NGINX Plus's answer to a path it has no endpoint for. */
static json_t *not_found(json_t *doc, int *status, const char *text, const char *code)
{
    json_decref(doc);
    *status = 404;
    return json_pack("{s:{s:i,s:s,s:s},s:s}", "error", "status", 404, "text", text, "code", code, "href",
                     "https://nginx.org/en/docs/http/ngx_http_api_module.html");
}

json_t *pv_status_api_select(json_t *doc, const char *p, size_t len, int *status)
{
    const char *end = p + len;
    *status = 200;
    if (!len)
        return doc;
    if (!(*p >= '1' && *p <= '9') || (len > 1 && p[1] != '/'))
        return not_found(doc, status, "unknown version", "UnknownVersion");
    p += len > 1 ? 2 : 1;
    json_t *node = doc;
    while (p < end) {
        const char *s = memchr(p, '/', (size_t)(end - p));
        size_t n = s ? (size_t)(s - p) : (size_t)(end - p);
        char key[256];
        json_t *next = NULL;
        if (n && n < sizeof(key) && json_is_object(node) && !memchr(p, '\0', n)) {
            memcpy(key, p, n);
            key[n] = '\0';
            next = json_object_get(node, key);
        }
        if (!next)
            return not_found(doc, status, "path not found", "PathNotFound");
        node = next;
        p += n + (s != NULL);
    }
    json_t *out;
    if (node == doc || node == json_object_get(doc, "http")) {
        out = json_array();
        for (void *it = json_object_iter(node); it; it = json_object_iter_next(node, it))
            json_array_append_new(out, json_string(json_object_iter_key(it)));
    } else {
        out = json_incref(node);
    }
    json_decref(doc);
    return out;
}

/* The path below a portvakt_status prefix location (`location /api/`):
 * NGINX Plus's API paths (pv_status_api_select()); the location itself,
 * an exact or regex one, and the dashboard's data, the whole document. */
static json_t *api_select(const pv_hreq_t *hr, json_t *doc, pv_out_t *o)
{
    const pv_location_t *l = hr->r.loc;
    const pv_str_t *u = &hr->r.uri;
    if (l->report != PV_REPORT_STATUS || (l->match != PV_LOC_PREFIX && l->match != PV_LOC_PREFIX_STOP) ||
        u->len <= l->name.len)
        return doc;
    const char *p = u->p + l->name.len;
    size_t len = u->len - l->name.len;
    if (l->name.len && l->name.p[l->name.len - 1] != '/') {
        if (*p != '/')
            return not_found(doc, &o->status, "path not found", "PathNotFound");
        p++, len--;
    }
    doc = pv_status_api_select(doc, p, len, &o->status);
    if (o->status == 200)
        o->status = 0;
    return doc;
}

void pv_report_status(pv_hreq_t *hr, pv_out_t *o)
{
    const pv_conf_t *conf = hr->gen->conf;
    pv_stats_t *sum = pv_stats_sum(conf);
    json_t *doc = sum ? process() : NULL;
    if (!doc) {
        free(sum);
        o->oom = 1;
        return;
    }
    uint64_t c[PV_CTR__COUNT];
    pv_counters_sum(c);
    json_object_set_new(doc, "http", json_pack("{s:{s:I,s:I},s:o,s:o,s:o,s:o,s:o,s:o}", "requests", "total",
                                               (json_int_t)c[PV_CTR_REQ_CREATED], "current",
                                               (json_int_t)(c[PV_CTR_REQ_CREATED] - c[PV_CTR_REQ_FREED]),
                                               "server_zones", zones(conf, sum), "location_zones",
                                               location_zones(conf, sum), "upstreams", upstreams(hr, conf, sum),
                                               "limit_reqs", limits(conf, sum, PV_ZONE_REQ), "limit_conns",
                                               limits(conf, sum, PV_ZONE_CONN), "caches", caches(conf, sum)));
    json_t *res = residency(conf);
    if (res)
        json_object_set_new(doc, "residency", res);
    doc = api_select(hr, doc, o);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(doc);
    free(sum);
    if (!text) {
        o->oom = 1;
        return;
    }
    pv_out_mem(o, text, strlen(text));
    pv_out_mem(o, "\n", 1);
    free(text);
}
