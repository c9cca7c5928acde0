/* Request metrics per worker and snapshot (see stats.h): the blocks, the
 * request path's bumps, and worker 1's sampler, which every second keeps
 * the recent histograms of each route and upstream (for the 10 s and 5 min
 * quantiles) and every few seconds reads the process and host figures. */
#include "stats.h"

#include <dirent.h>
#include <fcntl.h>
#include <llhttp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/counters.h"
#include "../core/time.h"
#include "../host/sysinfo.h"
#include "server.h"
#include "timing.h"

const char *const pv_stats_methods[PV_SM_N] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"};
const char *const pv_stats_close_causes[PV_SCLOSE_N] = {"error", "not_reusable", "pool_full",
                                                        "idle_timeout", "peer_closed", "shutdown"};
const char *const pv_stats_limit_outcomes[PV_SLIM_N] = {"passed", "delayed", "rejected", "delayed_dry_run",
                                                        "rejected_dry_run"};
_Static_assert(PV_CACHE_N == PV_STAT_CACHE_N, "a cache status without its counter");
const char *const pv_stats_cache_statuses[PV_STAT_CACHE_N] = {"", "miss", "bypass", "expired", "stale",
                                                         "updating", "revalidated", "hit"};
const char *const pv_stats_auth_methods[PV_SAUTH_N] = {"basic", "api_key", "jwt", "request"};

/* ---- the blocks ---------------------------------------------------------------- */

#define ALIGN64(n) (((n) + 63) & ~(size_t)63)

pv_stats_t *pv_stats_block_new(const pv_conf_t *conf, int worker)
{
    const pv_http_conf_t *h = conf->http;
    size_t ns = (size_t)h->nservers, nl = (size_t)h->nmlocs, nu = (size_t)h->nupstreams;
    size_t np = (size_t)h->npeers, nz = (size_t)h->nzones, nc = (size_t)h->ncaches;
    size_t off[6], size = ALIGN64(sizeof(pv_stats_t));
    off[0] = size, size += ALIGN64(ns * sizeof(pv_stat_srv_t));
    off[1] = size, size += ALIGN64(nl * sizeof(pv_stat_loc_t));
    off[2] = size, size += ALIGN64(nu * sizeof(pv_stat_ups_t));
    off[3] = size, size += ALIGN64(np * sizeof(pv_stat_peer_t));
    off[4] = size, size += ALIGN64(nz * sizeof(pv_stat_zone_t));
    off[5] = size, size += ALIGN64(nc * sizeof(pv_stat_cache_t));
    char *m = aligned_alloc(64, size);
    if (!m)
        return NULL;
    memset(m, 0, size);
    pv_stats_t *st = (pv_stats_t *)m;
    st->link.kind = PV_BLOCK_STATS;
    st->worker = worker;
    st->srv = (pv_stat_srv_t *)(m + off[0]);
    st->loc = (pv_stat_loc_t *)(m + off[1]);
    st->ups = (pv_stat_ups_t *)(m + off[2]);
    st->peer = (pv_stat_peer_t *)(m + off[3]);
    st->zone = (pv_stat_zone_t *)(m + off[4]);
    st->cache = (pv_stat_cache_t *)(m + off[5]);
    return st;
}

/* fn with every block of one kind */
static void each_kind(const pv_conf_t *conf, int kind, void (*fn)(const pv_stats_t *st, void *arg), void *arg)
{
    for (const pv_conf_block_t *b = atomic_load_explicit(&((pv_conf_t *)conf)->blocks, memory_order_acquire); b;
         b = b->next)
        if (b->kind == kind)
            fn((const pv_stats_t *)b, arg);
}

void pv_stats_each(const pv_conf_t *conf, void (*fn)(const pv_stats_t *st, void *arg), void *arg)
{
    each_kind(conf, PV_BLOCK_STATS, fn, arg);
}

/* dst += src over n counters taken as one flat array */
static void add_flat(pv_ctr_t *dst, const pv_ctr_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pv_ctr_add(&dst[i], pv_ctr_get(&src[i]));
}

#define FLAT(T) (sizeof(T) / sizeof(pv_ctr_t))

typedef struct {
    pv_stats_t *sum;
    const pv_http_conf_t *h;
} sum_t;

static void sum_cb(const pv_stats_t *st, void *arg)
{
    pv_stats_t *sum = ((sum_t *)arg)->sum;
    const pv_http_conf_t *h = ((sum_t *)arg)->h;
    add_flat((pv_ctr_t *)sum->srv, (const pv_ctr_t *)st->srv, FLAT(pv_stat_srv_t) * (size_t)h->nservers);
    add_flat((pv_ctr_t *)sum->loc, (const pv_ctr_t *)st->loc, FLAT(pv_stat_loc_t) * (size_t)h->nmlocs);
    add_flat((pv_ctr_t *)sum->ups, (const pv_ctr_t *)st->ups, FLAT(pv_stat_ups_t) * (size_t)h->nupstreams);
    add_flat((pv_ctr_t *)sum->peer, (const pv_ctr_t *)st->peer, FLAT(pv_stat_peer_t) * (size_t)h->npeers);
    add_flat((pv_ctr_t *)sum->zone, (const pv_ctr_t *)st->zone, FLAT(pv_stat_zone_t) * (size_t)h->nzones);
    add_flat((pv_ctr_t *)sum->cache, (const pv_ctr_t *)st->cache, FLAT(pv_stat_cache_t) * (size_t)h->ncaches);
    add_flat(&sum->auth[0][0], &st->auth[0][0], sizeof(st->auth) / sizeof(pv_ctr_t));
}

pv_stats_t *pv_stats_sum(const pv_conf_t *conf)
{
    if (!conf->http)
        return NULL;
    pv_stats_t *sum = pv_stats_block_new(conf, 0);
    if (!sum)
        return NULL;
    sum_t a = {sum, conf->http};
    each_kind(conf, PV_BLOCK_STATS, sum_cb, &a);
    each_kind(conf, PV_BLOCK_CARRIED, sum_cb, &a);
    return sum;
}

void pv_stats_sum_req(const pv_stat_req_t *s, uint64_t *status, uint64_t *method, uint64_t *bin, uint64_t *bout)
{
    for (int i = 0; i < PV_STAT_CLASSES; i++)
        status[i] += pv_ctr_get(&s->status[i]);
    for (int i = 0; i < PV_SM_N; i++)
        method[i] += pv_ctr_get(&s->method[i]);
    *bin += pv_ctr_get(&s->bytes_in);
    *bout += pv_ctr_get(&s->bytes_out);
}

/* ---- the request path ---------------------------------------------------------- */

static int method_slot(const pv_request_t *r)
{
    if (!r->method.len)
        return PV_SM_OTHER;
    switch (r->method_id) {
    case HTTP_GET: return PV_SM_GET;
    case HTTP_HEAD: return PV_SM_HEAD;
    case HTTP_POST: return PV_SM_POST;
    case HTTP_PUT: return PV_SM_PUT;
    case HTTP_DELETE: return PV_SM_DELETE;
    case HTTP_PATCH: return PV_SM_PATCH;
    case HTTP_OPTIONS: return PV_SM_OPTIONS;
    default: return PV_SM_OTHER;
    }
}

static inline void bump_req(pv_stat_req_t *c, int cls, int m, const pv_request_t *r)
{
    pv_ctr_add(&c->status[cls], 1);
    pv_ctr_add(&c->method[m], 1);
    pv_ctr_add(&c->bytes_in, r->request_length);
    pv_ctr_add(&c->bytes_out, r->bytes_sent);
}

void pv_stats_post_read(pv_hreq_t *hr)
{
    pv_count(PV_CTR_REQ_READ);
    hr->metered = 1;
    pv_stats_t *st = pv_stats_of(hr->gen);
    if (st && hr->r.srv)
        pv_ctr_add(&st->srv[hr->r.srv->sid].started, 1);
}

void pv_stats_free(pv_hreq_t *hr)
{
    pv_count(PV_CTR_REQ_FREED);
    if (!hr->metered)
        return;
    pv_count(PV_CTR_REQ_FREED_READ);
    pv_stats_t *st = pv_stats_of(hr->gen);
    if (st && hr->r.srv)
        pv_ctr_add(&st->srv[hr->r.srv->sid].ended, 1);
}

void pv_stats_log(pv_hreq_t *hr)
{
    pv_stats_t *st = pv_stats_of(hr->gen);
    if (!st)
        return;
    const pv_request_t *r = &hr->r;
    int cls = r->status / 100;
    if (cls < 1 || cls > 5)
        cls = 0;
    int m = method_slot(r);
    uint64_t now = pv_now_ns();
    uint64_t us = now > r->start_ns ? (now - r->start_ns) / 1000 : 0;
    if (r->srv) {
        pv_stat_srv_t *s = &st->srv[r->srv->sid];
        bump_req(&s->c, cls, m, r);
        pv_hist_add(&s->dur, us);
    }
    if (r->loc && r->loc->mid) {
        pv_stat_loc_t *l = &st->loc[r->loc->mid - 1];
        bump_req(&l->c, cls, m, r);
        pv_hist_add(&l->dur, us);
        int64_t up = pv_utry_last_us(r, PV_UTRY_RESPONSE);
        if (up >= 0)
            pv_hist_add(&l->up, (uint64_t)up);
    }
    if (r->cache_zone && r->cache_status && r->cache_status < PV_CACHE_N)
        pv_ctr_add(&st->cache[r->cache_zone->index].status[r->cache_status], 1);
}

void pv_stats_limit(pv_hreq_t *hr, const pv_zone_t *z, int outcome)
{
    pv_stats_t *st = pv_stats_of(hr->gen);
    if (st && z)
        pv_ctr_add(&st->zone[z->index].out[outcome], 1);
}

void pv_stats_auth(pv_hreq_t *hr, int method, int outcome)
{
    pv_stats_t *st = pv_stats_of(hr->gen);
    if (st)
        pv_ctr_add(&st->auth[method][outcome], 1);
}

/* ---- recent quantiles ----------------------------------------------------------- */

/* Rings of cumulative histograms (every route, then every upstream), one
 * taken each second (the last RING1) and one each 30 s (the last RING30);
 * a window's counts are the newest less the one its length ago: exactly
 * 10 s, and 5 min to 5 min 30 s (the newest 1 s sample less the 30 s one
 * ten before the last). Each route or upstream holds 22 histograms'
 * counts, about 64 KiB, taken (and touched) when the snapshot starts. */
#define RING1 11
#define RING30 11

typedef struct win_s {
    pv_conf_block_t link;         /* kind PV_BLOCK_WINDOWS */
    pthread_mutex_t lock;
    int nseries;
    uint64_t ticks;               /* samples taken */
    uint64_t *ring1, *ring30;     /* [slot][series][PV_HIST_N] */
    uint64_t *cur;                /* the sum being taken (the sampler's alone) */
} win_t;

static win_t *win_new(const pv_conf_t *conf)
{
    int n = conf->http->nmlocs + conf->http->nupstreams;
    size_t per = (size_t)n * PV_HIST_N * sizeof(uint64_t);
    size_t size = sizeof(win_t) + per * (RING1 + RING30 + 1);
    win_t *w = malloc(size);
    if (!w)
        return NULL;
    explicit_bzero(w, size); /* every page now (not folded into calloc), so memory does not creep up as the rings fill */
    w->link.kind = PV_BLOCK_WINDOWS;
    pthread_mutex_init(&w->lock, NULL);
    w->nseries = n;
    w->ring1 = (uint64_t *)(w + 1);
    w->ring30 = w->ring1 + (size_t)n * PV_HIST_N * RING1;
    w->cur = w->ring30 + (size_t)n * PV_HIST_N * RING30;
    return w;
}

typedef struct {
    const pv_conf_t *conf;
    uint64_t *out;                /* [series][PV_HIST_N] */
} sample_t;

static void sample_block(const pv_stats_t *st, void *arg)
{
    sample_t *s = arg;
    const pv_http_conf_t *h = s->conf->http;
    uint64_t sum = 0;
    for (int i = 0; i < h->nmlocs; i++)
        pv_hist_sum_into(&st->loc[i].dur, s->out + (size_t)i * PV_HIST_N, &sum);
    for (int u = 0; u < h->nupstreams; u++) {
        const pv_upstream_conf_t *uc = h->upstreams[u];
        for (int k = 0; k < uc->nservers; k++)
            pv_hist_sum_into(&st->peer[uc->peer_base + k].resp, s->out + (size_t)(h->nmlocs + u) * PV_HIST_N, &sum);
    }
}

static void win_tick(pv_conf_t *conf, win_t *w)
{
    size_t per = (size_t)w->nseries * PV_HIST_N;
    uint64_t *cur = w->cur;
    memset(cur, 0, per * sizeof(uint64_t));
    sample_t s = {conf, cur};
    pv_stats_each(conf, sample_block, &s);
    pthread_mutex_lock(&w->lock);
    memcpy(w->ring1 + per * (w->ticks % RING1), cur, per * sizeof(uint64_t));
    if (w->ticks % 30 == 0)
        memcpy(w->ring30 + per * ((w->ticks / 30) % RING30), cur, per * sizeof(uint64_t));
    w->ticks++;
    pthread_mutex_unlock(&w->lock);
}

int pv_stats_window(const pv_conf_t *conf, int upstream, int i, int win, double q[3], uint64_t *count)
{
    const pv_conf_block_t *b = atomic_load_explicit(&((pv_conf_t *)conf)->blocks, memory_order_acquire);
    while (b && b->kind != PV_BLOCK_WINDOWS)
        b = b->next;
    if (!b)
        return PV_ERR;
    win_t *w = (win_t *)b;
    int series = upstream ? conf->http->nmlocs + i : i;
    size_t per = (size_t)w->nseries * PV_HIST_N;
    uint64_t d[PV_HIST_N];
    pthread_mutex_lock(&w->lock);
    if (!w->ticks) {
        pthread_mutex_unlock(&w->lock);
        return PV_ERR;
    }
    /* a window longer than the samples taken starts from zero (the snapshot's start) */
    uint64_t last = w->ticks - 1;
    const uint64_t *newest = w->ring1 + per * (last % RING1) + (size_t)series * PV_HIST_N, *oldest = NULL;
    if (win == PV_WIN_10S) {
        if (last >= RING1 - 1)
            oldest = w->ring1 + per * ((last - (RING1 - 1)) % RING1) + (size_t)series * PV_HIST_N;
    } else {
        uint64_t t30 = last / 30;
        if (t30 >= RING30 - 1)
            oldest = w->ring30 + per * ((t30 - (RING30 - 1)) % RING30) + (size_t)series * PV_HIST_N;
    }
    *count = 0;
    for (unsigned k = 0; k < PV_HIST_N; k++) {
        uint64_t o = oldest ? oldest[k] : 0;
        d[k] = newest[k] >= o ? newest[k] - o : 0;
        *count += d[k];
    }
    pthread_mutex_unlock(&w->lock);
    q[0] = pv_hist_quantile(d, 0.5);
    q[1] = pv_hist_quantile(d, 0.95);
    q[2] = pv_hist_quantile(d, 0.99);
    return PV_OK;
}

/* ---- process and host ----------------------------------------------------------- */

#define HOST_EVERY 5 /* seconds between host samples */

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_stats_host_t host = {.steal_pct = -1, .load = {-1, -1, -1}};
static pv_cpustat_t host_stat;
static int host_stat_ok;

/* A small /proc file into buf (NUL-terminated), with no allocation: the
 * sampler runs for the life of the process. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

static int64_t read_rss(void)
{
    char buf[128];
    long long size = 0, res = -1;
    if (read_small("/proc/self/statm", buf, sizeof(buf)) < 0 || sscanf(buf, "%lld %lld", &size, &res) != 2)
        return -1;
    return res * sysconf(_SC_PAGESIZE);
}

static int64_t count_fds(void)
{
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    int64_t n = 0;
    long got;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < got;) {
            const struct dirent64 *e = (const struct dirent64 *)(buf + off);
            n += e->d_name[0] != '.';
            off += e->d_reclen;
        }
    }
    close(fd);
    return n - 1; /* the directory's own descriptor */
}

static void host_sample(void)
{
    pv_stats_host_t h = {.rss = read_rss(), .fds = count_fds(), .steal_pct = -1, .load = {-1, -1, -1}};
    if (getloadavg(h.load, 3) != 3)
        h.load[0] = h.load[1] = h.load[2] = -1;
    pv_cpustat_t now;
    int ok = pv_sysinfo_read_stat("", &now) == 0;
    h.sampled_ms = pv_time_ms();
    pthread_mutex_lock(&host_lock);
    if (ok && host_stat_ok)
        h.steal_pct = pv_sysinfo_steal_pct(&host_stat, &now);
    else
        h.steal_pct = host.steal_pct;
    host_stat = now;
    host_stat_ok = ok;
    host = h;
    pthread_mutex_unlock(&host_lock);
}

void pv_stats_host(pv_stats_host_t *out)
{
    pthread_mutex_lock(&host_lock);
    *out = host;
    pthread_mutex_unlock(&host_lock);
}

/* ---- the module ---------------------------------------------------------------- */

#define TICK_MS 1000

static __thread pv_timer_t tick_timer;
static __thread pv_worker_t *tick_worker;
static __thread uint64_t tick_due;
static __thread uint64_t tick_count;

static void tick_cb(pv_timer_t *t)
{
    pv_worker_t *w = t->data;
    uint64_t now = pv_loop_now(w->loop);
    pv_count_set(PV_CTR_LOOP_LAG_US, now > tick_due ? (now - tick_due) * 1000 : 0);
    if (w->id == 1) {
        for (const pv_conf_block_t *b = atomic_load_explicit(&w->conf->blocks, memory_order_acquire); b; b = b->next)
            if (b->kind == PV_BLOCK_WINDOWS) {
                win_tick(w->conf, (win_t *)b);
                break;
            }
        if (tick_count % HOST_EVERY == 0)
            host_sample();
    }
    tick_count++;
    tick_due = now + TICK_MS;
    pv_timer_set(w->loop, &tick_timer, TICK_MS);
}

static int mod_worker_init(pv_worker_t *w)
{
    tick_worker = w;
    pv_timer_init(&tick_timer, tick_cb, w);
    tick_due = pv_loop_now(w->loop) + TICK_MS;
    tick_count = 0;
    pv_timer_set(w->loop, &tick_timer, TICK_MS);
    return PV_OK;
}

/* The carried block of st (of conf), made on first use. */
static pv_stats_t *carried_of(pv_stats_t *st, pv_conf_t *conf)
{
    if (!st->carried && (st->carried = pv_stats_block_new(conf, st->worker))) {
        st->carried->link.kind = PV_BLOCK_CARRIED;
        pv_conf_block_push(conf, &st->carried->link);
    }
    return st->carried;
}

/* Everything old's block of this worker counted, and what it carried,
 * moved into the carried block of st (of generation g). */
static void carry_from(pv_stats_t *st, const pv_wgen_t *g, const pv_wgen_t *old)
{
    pv_stats_t *ost = pv_stats_of(old);
    if (!ost || !old->conf->http)
        return;
    pv_stats_t *c = carried_of(st, g->conf);
    pv_stats_carry(c, g->conf->http, ost, old->conf->http);
    pv_stats_carry(c, g->conf->http, ost->carried, old->conf->http);
}

static int mod_gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
#ifdef PV_NO_METRICS
    /* `make METRICS=off`: no block, so every bump is skipped (the
     * baseline bench/instructions.py measures the metrics against) */
    return PV_OK;
#endif
    if (!g->conf->http)
        return PV_OK;
    pv_stats_t *st = pv_stats_block_new(g->conf, w->id);
    if (!st)
        return PV_ERR;
    if (old)
        carry_from(st, g, old); /* before the block is seen: no reader sees a count twice */
    if (w->id == 1) {
        win_t *win = win_new(g->conf);
        if (!win) {
            free(st);
            return PV_ERR;
        }
        pv_conf_block_push(g->conf, &win->link);
    }
    pv_conf_block_push(g->conf, &st->link);
    g->mod[pv_stats_module.index] = st;
    return PV_OK;
}

/* A retired generation's last request ended: what it counted since the
 * reload goes to the worker's current one. */
static void mod_gen_free(pv_wgen_t *g)
{
    pv_wgen_t *cur = tick_worker ? tick_worker->gen : NULL;
    pv_stats_t *st = pv_stats_of(cur);
    if (st && cur != g)
        carry_from(st, cur, g);
}

static void mod_drain(pv_worker_t *w)
{
    pv_timer_del(w->loop, &tick_timer);
}

pv_module_t pv_stats_module = {
    .name = "stats",
    .worker_init = mod_worker_init,
    .gen_init = mod_gen_init,
    .gen_free = mod_gen_free,
    .drain = mod_drain,
    .close_all = mod_drain,
};
