/* Request metrics per worker: for each config snapshot, each worker owns a
 * block of plain counters and histograms in slots the config fixed (server
 * blocks, metered locations, upstream servers, zones), bumped with no lock
 * and no atomic read-modify-write; readers sum the blocks of a snapshot.
 * A reload carries the counts of every series the new config keeps (same
 * labels) into it (stats_carry.c), so counters go on across reloads.
 * Process-wide counts (TLS, HTTP/2, accept errors, reloads) are
 * core/counters.h's. */
#ifndef PV_HTTP_STATS_H
#define PV_HTTP_STATS_H

#include "../config/conf.h"
#include "../core/hist.h"
#include "../core/module.h"
#include "../proc/worker.h"

struct pv_hreq_s;

/* status classes: [0] no status sent, then 1xx..5xx */
#define PV_STAT_CLASSES 6
/* methods counted by name; the rest are "other" */
enum { PV_SM_GET = 0, PV_SM_HEAD, PV_SM_POST, PV_SM_PUT, PV_SM_DELETE, PV_SM_PATCH, PV_SM_OPTIONS, PV_SM_OTHER, PV_SM_N };
extern const char *const pv_stats_methods[PV_SM_N];
/* failure causes: the upstream layer's enum (it checks that it fits) */
#define PV_STAT_CAUSES 16
/* why an upstream connection was closed */
enum {
    PV_SCLOSE_ERROR = 0,    /* the exchange on it failed */
    PV_SCLOSE_NOT_REUSABLE, /* no keepalive, not read to its end, keepalive_requests/time reached */
    PV_SCLOSE_POOL_FULL,    /* the pool held `keepalive` idle connections already */
    PV_SCLOSE_IDLE_TIMEOUT, /* keepalive_timeout in the pool */
    PV_SCLOSE_PEER_CLOSED,  /* the server closed it while idle */
    PV_SCLOSE_SHUTDOWN,     /* reload, stop, or the pool freed */
    PV_SCLOSE_N
};
extern const char *const pv_stats_close_causes[PV_SCLOSE_N];
/* limit_req / limit_conn outcomes, as $limit_req_status names them */
enum { PV_SLIM_PASSED = 0, PV_SLIM_DELAYED, PV_SLIM_REJECTED, PV_SLIM_DELAYED_DRY_RUN, PV_SLIM_REJECTED_DRY_RUN, PV_SLIM_N };
extern const char *const pv_stats_limit_outcomes[PV_SLIM_N];
/* authentication methods and outcomes */
enum { PV_SAUTH_BASIC = 0, PV_SAUTH_API_KEY, PV_SAUTH_JWT, PV_SAUTH_REQUEST, PV_SAUTH_N };
enum { PV_SAUTH_PASSED = 0, PV_SAUTH_401, PV_SAUTH_403, PV_SAUTH_OUT_N };
extern const char *const pv_stats_auth_methods[PV_SAUTH_N];

/* What every request adds to its server and its location. */
typedef struct pv_stat_req_s {
    pv_ctr_t status[PV_STAT_CLASSES];
    pv_ctr_t method[PV_SM_N];
    pv_ctr_t bytes_in, bytes_out; /* request bytes read; response bytes sent */
} pv_stat_req_t;

typedef struct pv_stat_srv_s {
    pv_stat_req_t c;
    pv_ctr_t started, ended;      /* in progress: started - ended */
    pv_hist_t dur;                /* request duration */
} pv_stat_srv_t;

typedef struct pv_stat_loc_s {
    pv_stat_req_t c;
    pv_hist_t dur;                /* request duration */
    pv_hist_t up;                 /* upstream response time, tries together ($upstream_response_time) */
} pv_stat_loc_t;

typedef struct pv_stat_ups_s {
    pv_ctr_t retries;             /* another server tried after a failure or a status */
    pv_ctr_t gated;               /* 503 while mandatory health checks held every server out */
    pv_ctr_t no_live;             /* no server could be tried */
} pv_stat_ups_t;

typedef struct pv_stat_peer_s {
    pv_ctr_t requests;            /* tries sent to the server */
    pv_ctr_t status[PV_STAT_CLASSES]; /* its answers by class; [0]: no answer */
    pv_ctr_t fails[PV_STAT_CAUSES];   /* failures by cause */
    pv_ctr_t opened, reused;      /* connections opened; tries on a pooled one */
    pv_ctr_t idle_in, idle_out;   /* into the pool, out of it (idle now: in - out) */
    pv_ctr_t closed[PV_SCLOSE_N]; /* connections closed, by cause */
    pv_ctr_t bytes_in, bytes_out; /* response bytes read; request bytes written */
    pv_hist_t resp;               /* a try's duration, to the end of the response */
    pv_hist_t connect;            /* connection set up (TLS included) */
    pv_hist_t header;             /* to the response head */
} pv_stat_peer_t;

typedef struct pv_stat_zone_s {
    pv_ctr_t out[PV_SLIM_N];
} pv_stat_zone_t;

/* Requests per cache zone by $upstream_cache_status (request.h's
 * PV_CACHE_*, [0] unused; stats.c checks the count). */
#define PV_STAT_CACHE_N 8
typedef struct pv_stat_cache_s {
    pv_ctr_t status[PV_STAT_CACHE_N];
} pv_stat_cache_t;
extern const char *const pv_stats_cache_statuses[PV_STAT_CACHE_N];

/* One worker's block for one snapshot. */
typedef struct pv_stats_s {
    pv_conf_block_t link;         /* on the snapshot's list (kind PV_BLOCK_STATS) */
    int worker;                   /* its worker's id */
    pv_stat_srv_t *srv;           /* by pv_server_t.sid */
    pv_stat_loc_t *loc;           /* by pv_location_t.mid - 1 */
    pv_stat_ups_t *ups;           /* by pv_upstream_conf_t.index */
    pv_stat_peer_t *peer;         /* by peer_base + server index */
    pv_stat_zone_t *zone;         /* by pv_zone_t.index */
    pv_stat_cache_t *cache;       /* by pv_cache_path_t.index */
    pv_ctr_t auth[PV_SAUTH_N][PV_SAUTH_OUT_N];
    struct pv_stats_s *carried;   /* the worker's counts of earlier snapshots (PV_BLOCK_CARRIED), or NULL */
} pv_stats_t;

/* PV_BLOCK_CARRIED: a worker's counts from the snapshots before this one
 * (see stats_carry.c), summed by pv_stats_sum() but not in the windows */
enum { PV_BLOCK_STATS = 1, PV_BLOCK_WINDOWS, PV_BLOCK_CARRIED };

/* The block of generation g (NULL when the module does not run: harnesses). */
extern pv_module_t pv_stats_module;
static inline pv_stats_t *pv_stats_of(const pv_wgen_t *g)
{
    return g ? g->mod[pv_stats_module.index] : NULL;
}

/* The request path's bumps. */
void pv_stats_post_read(struct pv_hreq_s *hr);
void pv_stats_log(struct pv_hreq_s *hr);
void pv_stats_free(struct pv_hreq_s *hr);
void pv_stats_limit(struct pv_hreq_s *hr, const pv_zone_t *z, int outcome);
void pv_stats_auth(struct pv_hreq_s *hr, int method, int outcome);

/* A new zeroed block for conf (kind PV_BLOCK_STATS, worker's). */
pv_stats_t *pv_stats_block_new(const pv_conf_t *conf, int worker);
/* Reload: the counts of the series of src (of config sh) that dh has too
 * moved into dst (added there, zeroed in src); gauges stay. Only the
 * thread that writes src calls it. */
void pv_stats_carry(pv_stats_t *dst, const pv_http_conf_t *dh, pv_stats_t *src, const pv_http_conf_t *sh);

/* Readers: fn called with every block of conf that counts requests now. */
void pv_stats_each(const pv_conf_t *conf, void (*fn)(const pv_stats_t *st, void *arg), void *arg);
/* Every block of conf summed into a new one (free() it); NULL when out
 * of memory or conf has no http block. */
pv_stats_t *pv_stats_sum(const pv_conf_t *conf);
/* Counter-wise sums for the readers. */
void pv_stats_sum_req(const pv_stat_req_t *s, uint64_t *status, uint64_t *method, uint64_t *bin, uint64_t *bout);

/* Process and host, sampled every few seconds (worker 1). */
typedef struct pv_stats_host_s {
    int64_t rss;                  /* bytes resident */
    int64_t fds;                  /* descriptors open */
    double steal_pct;             /* CPU steal over the last interval; -1 unknown */
    double load[3];               /* load average; -1 unknown */
    int64_t sampled_ms;           /* when (wall clock); 0 never */
} pv_stats_host_t;
void pv_stats_host(pv_stats_host_t *out);

/* Recent quantiles: of route (metered location) or upstream i, over the
 * last 10 s (win 0) or 5 min (win 1): p50, p95, p99 in microseconds and
 * the count. PV_ERR when there is no sample yet. */
enum { PV_WIN_10S = 0, PV_WIN_5M, PV_WIN_N };
int pv_stats_window(const pv_conf_t *conf, int upstream, int i, int win, double q[3], uint64_t *count);

#endif
