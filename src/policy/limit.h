/* Rate limiting primitives with NGINX's semantics: limit_req zones (a leaky
 * bucket per key) and limit_conn zones (a counter per key). A zone is shared
 * by every worker thread; it is split into shards, each with its own mutex,
 * hash table and LRU list, so workers rarely contend. This module knows
 * nothing about HTTP: the caller evaluates the keys, applies the decision
 * (status code, delay timer, dry run) and logs with its request context.
 *
 * Units are NGINX's: a rate is in milli-requests per second (10r/s is
 * 10000, 30r/m is 500, 1r/m is 16 because NGINX truncates 1000/60), and
 * `excess`, `burst` and `delay` are in milli-requests (burst=5 is 5000).
 *
 * Memory: a zone of SIZE bytes holds SIZE / PV_LIMIT_UNIT units of 64 bytes.
 * An entry takes the units its node needs: 52 bytes of state plus the key,
 * so a key of up to 12 bytes (binary_remote_addr for IPv4) costs one unit
 * (a 1m zone holds 16384 of them, NGINX's "about 16 thousand 64-byte
 * states") and an IPv6 address costs two. malloc's own overhead and the hash
 * index (8 bytes per unit) come on top. */
#ifndef PV_LIMIT_H
#define PV_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"

/* Bytes of zone memory one unit stands for. */
#define PV_LIMIT_UNIT 64
/* Smallest zone NGINX accepts (8 pages): the config rejects smaller ones
 * with "zone ... is too small"; the zone API itself takes any size. */
#define PV_LIMIT_ZONE_MIN (8 * 4096)
/* Longest limit_req key; NGINX skips longer keys with an error. */
#define PV_LIMIT_REQ_KEY_MAX 65535
/* Longest limit_conn key; NGINX skips longer keys with an error. */
#define PV_LIMIT_CONN_KEY_MAX 255
/* Highest `limit_conn zone N`: NGINX counts in 16 bits. */
#define PV_LIMIT_CONN_MAX 65535
/* `delay` value meaning `nodelay`: no excess is ever delayed. */
#define PV_LIMIT_NODELAY (UINT64_MAX / 4)

/* What the caller does with the request. */
enum {
    PV_LIMIT_PASS = 0,   /* go on now */
    PV_LIMIT_DELAY = 1,  /* go on after delay_ms */
    PV_LIMIT_REJECT = 2, /* answer with limit_req_status / limit_conn_status */
    PV_LIMIT_NOMEM = 3   /* limit_conn_acquire only: zone full; reject too */
};

/* ---- limit_req ---------------------------------------------------------- */

/* A limit_req_zone: the rate and the per-key states. Thread-safe. */
typedef struct pv_limit_req_zone_s pv_limit_req_zone_t;

/* One `limit_req zone=NAME [burst=N] [nodelay | delay=N]` line. */
typedef struct pv_limit_req_s {
    pv_limit_req_zone_t *zone; /* the zone the line names */
    uint64_t burst;            /* burst * 1000; 0 when absent */
    uint64_t delay;            /* delay * 1000; 0 when absent; PV_LIMIT_NODELAY for nodelay */
} pv_limit_req_t;

/* The outcome of pv_limit_req_check(): everything the caller needs to act,
 * to log like NGINX and to send RateLimit headers. */
typedef struct pv_limit_req_result_s {
    int action;          /* PV_LIMIT_PASS, PV_LIMIT_DELAY or PV_LIMIT_REJECT */
    int which;           /* index of the deciding limit (rejecting, or longest delay); -1 if none applied */
    int nomem;           /* rejected because the zone could not make room for a new key */
    uint64_t delay_ms;   /* DELAY: how long to hold the request */
    uint64_t excess;     /* excess of the deciding limit, milli-requests (for the log line) */
    uint64_t remaining;  /* requests the tightest limit still accepts at once (0 on reject) */
    uint64_t reset_ms;   /* ms until that limit's bucket is empty; on reject, until a retry can pass */
} pv_limit_req_result_t;

/* Parse NGINX's `rate=` value without the prefix ("10r/s", "30r/m", or a
 * bare number of r/s) into milli-requests per second; PV_ERR if invalid. */
int pv_limit_rate_parse(pv_str_t s, uint64_t *rate);
/* Create a zone of `size` bytes for `rate` (milli-requests per second);
 * NULL if out of memory or an argument is 0. The name is copied. */
pv_limit_req_zone_t *pv_limit_req_zone_new(const char *name, size_t size, uint64_t rate);
/* Free a zone and all its entries; no check may be running on it. */
void pv_limit_req_zone_free(pv_limit_req_zone_t *z);
/* Zone name, as given to pv_limit_req_zone_new(). */
const char *pv_limit_req_zone_name(const pv_limit_req_zone_t *z);
/* Zone rate in milli-requests per second. */
uint64_t pv_limit_req_zone_rate(const pv_limit_req_zone_t *z);
/* Number of keys the zone holds now (tests, metrics). */
size_t pv_limit_req_zone_count(pv_limit_req_zone_t *z);

/* Check one request against the n limits of its location, in order, as
 * NGINX's limit_req handler does; keys[i] is the evaluated key of limits[i]
 * (an empty key skips that limit) and now_ms a monotonic clock shared by
 * the threads within a few ms. Rules (ngx_http_limit_req_handler/_lookup/
 * _account): a request that passes every limit is charged to all of them;
 * the first limit that would overflow its burst rejects it and nothing is
 * charged anywhere (earlier limits are only unpinned, later ones not even
 * looked up); the delay is the longest one the limits ask for. Dry run does
 * not change any of this: NGINX updates the state exactly as without it and
 * only lets the request through, so the caller applies dry run. Returns
 * res->action. */
int pv_limit_req_check(const pv_limit_req_t *limits, const pv_str_t *keys, int n,
                       uint64_t now_ms, pv_limit_req_result_t *res);
/* $limit_req_status for a result: "PASSED", "DELAYED", "REJECTED",
 * "DELAYED_DRY_RUN", "REJECTED_DRY_RUN", or NULL when no limit applied. */
const char *pv_limit_req_status(const pv_limit_req_result_t *res, int dry_run);
/* Log the decision as NGINX does ("limiting requests[, dry run], excess:
 * 1.000 by zone "one"" at log_level, "delaying request..." one level less
 * severe; nothing when passed); `context` (may be NULL) is appended, e.g.
 * ", client: 127.0.0.1, server: x, request: "GET / HTTP/1.1"". */
void pv_limit_req_log(const pv_limit_req_t *limits, const pv_limit_req_result_t *res,
                      int log_level, int dry_run, const char *context);
/* Fill res for a single limit whose lookup gave `excess` (rejected: the
 * request would overflow the burst and was not charged): the action, the
 * delay ((excess - delay) * 1000 / rate), and the RateLimit numbers. The
 * Redis zones build their results with it, so both use one arithmetic. */
void pv_limit_req_decide(const pv_limit_req_t *limit, uint64_t excess, int rejected,
                         pv_limit_req_result_t *res);

/* ---- limit_conn --------------------------------------------------------- */

/* A limit_conn_zone: a counter per key. Thread-safe. */
typedef struct pv_limit_conn_zone_s pv_limit_conn_zone_t;

/* One `limit_conn zone N` line. */
typedef struct pv_limit_conn_s {
    pv_limit_conn_zone_t *zone; /* the zone the line names */
    unsigned conn;              /* allowed concurrent holders per key, 1..PV_LIMIT_CONN_MAX */
} pv_limit_conn_t;

/* A held slot: what pv_limit_conn_release() needs (no key lookup). */
typedef struct pv_limit_conn_ref_s {
    pv_limit_conn_zone_t *zone; /* zone of the slot; NULL when nothing is held */
    void *node;                 /* the key's entry, kept alive by the count */
} pv_limit_conn_ref_t;

/* Create a zone of `size` bytes; NULL if out of memory or size is 0. */
pv_limit_conn_zone_t *pv_limit_conn_zone_new(const char *name, size_t size);
/* Free a zone; every slot must have been released. */
void pv_limit_conn_zone_free(pv_limit_conn_zone_t *z);
/* Zone name. */
const char *pv_limit_conn_zone_name(const pv_limit_conn_zone_t *z);
/* Number of keys with at least one holder. */
size_t pv_limit_conn_zone_count(pv_limit_conn_zone_t *z);
/* Take one slot for key if fewer than `limit` are held: PV_LIMIT_PASS (ref
 * filled), PV_LIMIT_REJECT (at the limit) or PV_LIMIT_NOMEM (new key and
 * the zone is full: NGINX rejects with limit_conn_status too, it never
 * evicts a key that has holders). ref is cleared unless a slot was taken;
 * an empty key or one over PV_LIMIT_CONN_KEY_MAX bytes is not limited
 * (PASS, nothing held). */
int pv_limit_conn_acquire(pv_limit_conn_zone_t *z, pv_str_t key, unsigned limit,
                          pv_limit_conn_ref_t *ref);
/* Give the slot back; the entry is freed when its count drops to 0.
 * Harmless on a cleared ref; clears it. */
void pv_limit_conn_release(pv_limit_conn_ref_t *ref);
/* Acquire every limit of a location in order (NGINX's limit_conn handler):
 * empty keys and keys over 255 bytes are skipped (the latter logged); on
 * the first reject the slots already taken are released and *which is its
 * index. Returns PV_LIMIT_PASS, PV_LIMIT_REJECT or PV_LIMIT_NOMEM (reject
 * both; NGINX logs only the first); refs[i] holds limit i's slot until
 * pv_limit_conn_release_all(). Dry run is the caller's: it releases and
 * passes exactly as NGINX does. */
int pv_limit_conn_check(const pv_limit_conn_t *limits, const pv_str_t *keys, int n,
                        pv_limit_conn_ref_t *refs, int *which);
/* Release refs[0..n-1]. */
void pv_limit_conn_release_all(pv_limit_conn_ref_t *refs, int n);
/* Log "limiting connections[, dry run,] by zone "NAME"" at log_level as
 * NGINX does (it logs nothing when the zone was full); context as above. */
void pv_limit_conn_log(const pv_limit_conn_t *limit, int log_level, int dry_run,
                       const char *context);

#endif
