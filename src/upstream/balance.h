/* Peer selection: NGINX's balancing methods with its arithmetic, so that
 * the same sequence of requests picks the same servers in the same order
 * as NGINX with one worker (or with a zone): smooth weighted round robin
 * with effective weights, least_conn, ip_hash, hash (Cache::Memcached
 * compatible), hash consistent (ketama ring), random and random two;
 * and Envoy's outlier ejection (outlier_detection).
 * Backups are tried only once no primary can be (round robin and
 * least_conn), and a request that moved to them stays there.
 *
 * These functions touch the shared state of the peers (pv_bal_state_t):
 * the caller holds the group's lock (pv_peer_group_t) around get and
 * free. They do no I/O and keep no state of their own but the per-thread
 * random generator, so the unit tests drive them directly. */
#ifndef PV_BALANCE_H
#define PV_BALANCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../config/conf.h"
#include "peer.h"

/* How many attempts the hashing and random methods make before falling
 * back to round robin (NGINX's 20). */
#define PV_BAL_HASH_TRIES 20

/* The verdict on a server released by pv_bal_free(). */
enum {
    PV_BAL_OK = 0, /* a success (NGINX: state 0): after a check it clears the failures */
    PV_BAL_FAILED, /* a failure: counts toward max_fails (NGINX: NGX_PEER_FAILED) */
    PV_BAL_DROP    /* neither, and the try is not used up (a stale pooled connection) */
};

/* One request's selection state (NGINX's peer connection and the
 * method's peer data). */
typedef struct pv_upick_s {
    uint64_t *tried;          /* servers tried (bit per index into cf->servers) */
    uint64_t tried1;          /* its storage for up to 64 servers */
    int server;               /* the server picked last, -1 none */
    int tries;                /* picks left (NGINX pc->tries): non-down servers, capped */
    uint8_t backup;           /* moved on to the backup servers */
    uint8_t held;             /* server is counted in its conns until pv_bal_free() */
    uint8_t retry;            /* the held pick is a retry (retry_budget) */
    int picks;                /* servers picked so far (stale-connection retries not counted) */
    int htries;               /* the method's own attempts (hash, ip_hash, random) */
    uint32_t hash;            /* ip_hash / hash: running value; consistent: ring index */
    uint32_t rehash;          /* hash: attempts so far */
    const char *key;          /* hash key (not copied) */
    size_t keylen;
    unsigned char addr[16];   /* ip_hash: the client address bytes hashed */
    int addrlen;
} pv_upick_t;

/* Start a request's selection: tries is the count of non-down servers,
 * capped by max_tries (proxy_next_upstream_tries; 0 no cap). tried_words
 * is storage for the tried set when the upstream has more than 64
 * servers (PV_UPSTREAM_SET_WORDS words, zeroed), else NULL. key is the
 * hash key (hash methods), client the client's address (ip_hash). */
void pv_bal_init(pv_upick_t *k, const pv_upstream_conf_t *cf, uint64_t *tried_words, const char *key,
                 size_t keylen, const struct sockaddr *client, int64_t max_tries);
/* Pick a server at loop time now, counting it in its conns: the index
 * into cf->servers, or -1 when none may be used (NGINX's NGX_BUSY).
 * peers[i] is the shared peer of cf->servers[i]. Caller holds the lock. */
int pv_bal_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now);
/* Release the server picked last with a verdict (PV_BAL_*): a failure
 * counts against it (max_fails / fail_timeout, effective weight), a
 * success after a check clears its failures. One less try is left but
 * for PV_BAL_DROP. Returns 1 when the server is now out for its
 * fail_timeout. Caller holds the lock. */
int pv_bal_free(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int verdict,
                int64_t now);
/* Outlier detection (outlier_detection) for the server picked last, as
 * it is released with verdict after an answer of status (0 none): the
 * length of the ejection it caused (ms), or 0. Caller holds the lock. */
int64_t pv_bal_observe(const pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int verdict,
                       int status, int64_t now);
/* Whether the server may be picked at now (not down, not failed out, not
 * at max_conns). Caller holds the lock. */
int pv_bal_usable(const pv_upstream_server_t *s, const pv_bal_state_t *st, int64_t now);
/* The index of the first ring point at or after hash (npoints when past
 * the last), as NGINX's ngx_http_upstream_find_chash_point(). */
uint32_t pv_bal_chash_find(const pv_chash_point_t *points, int npoints, uint32_t hash);
/* Seed this thread's random generator (random, random two). */
void pv_bal_seed(uint64_t seed);

#endif
