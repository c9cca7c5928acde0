/* Cluster-wide limit_req zones over Redis:
 *
 *   limit_req_zone KEY zone=NAME:SIZE rate=R redis=HOST:PORT|unix:PATH
 *                  [redis_db=N] [redis_user=NAME] [redis_password_file=FILE]
 *                  [redis_fail=open|closed]
 *   ... redis_sentinel=HOST:PORT[,HOST:PORT...] redis_master=NAME (instead of redis=)
 *       [redis_sentinel_user=NAME] [redis_sentinel_password_file=FILE]
 *
 * Each worker thread owns one pv_redis_t per Redis server: a hiredis
 * asynchronous connection driven by the worker's own event loop. A check
 * is one EVALSHA round trip running the same leaky bucket as the local
 * zone (limit.h) inside Redis, on Redis's clock (TIME), so every portvakt
 * instance shares one state and one clock per key; requests are pipelined
 * on the connection. State lives in the hash "pv:lr:<zone>:<key>" (fields
 * e = excess, l = last ms) and expires once it would read as a new key.
 *
 * Failure policy is the caller's: when pv_redis_limit() fails at once or
 * the callback gets an error, redis_fail=open checks the local zone of the
 * same pv_limit_req_t instead (pv_limit_req_check), redis_fail=closed
 * rejects. Nothing is queued while Redis is unreachable: calls fail fast,
 * the outage is logged once (and its end once), and the client reconnects
 * by itself with exponential backoff.
 *
 * A location mixing local and Redis limits cannot be checked atomically as
 * a whole; run the local ones first and the Redis one only if they pass.
 * The process must ignore SIGPIPE (main.c does): hiredis writes with
 * write(2). Not thread-safe: one client per worker thread. */
#ifndef PV_REDIS_H
#define PV_REDIS_H

#include <stdint.h>
#include <arpa/inet.h>

#include "../core/common.h"
#include "../core/loop.h"
#include "limit.h"

/* One worker's connection to one Redis server. */
typedef struct pv_redis_s pv_redis_t;
/* A check waiting for its reply; valid until its callback ran or it was cancelled. */
typedef struct pv_redis_req_s pv_redis_req_t;

/* Reply of pv_redis_limit(): res (action PASS / DELAY with delay_ms /
 * REJECT, excess, RateLimit numbers) on success, else res is NULL and err
 * a constant string ("redis connection lost", "redis reply timed out",
 * "redis connect timed out", "redis error reply", "redis client closed"). */
typedef void (*pv_redis_limit_cb)(void *arg, const pv_limit_req_result_t *res, const char *err);

/* Where Redis is and how to log in: a TCP address or a Unix socket, or
 * a master named by Sentinel; the database to SELECT and the AUTH user
 * and password. */
typedef struct pv_redis_addr_s {
    const char *host;
    int port;
    char ip[INET6_ADDRSTRLEN];   /* host's address from pv_redis_resolve(); "" for a literal */
} pv_redis_addr_t;

typedef struct pv_redis_target_s {
    pv_redis_addr_t addr;        /* TCP: host and port (host NULL otherwise) */
    const char *unix_path;       /* or a Unix socket */
    const pv_redis_addr_t *sentinels; /* or Sentinels, asked for the master */
    int nsentinels;
    const char *master;          /* with sentinels: the master's name */
    int db;                      /* SELECT db when not 0 */
    const char *user;            /* AUTH user, or NULL (the default user) */
    const char *password;        /* AUTH password, or NULL; never logged */
    const char *sentinel_user;   /* the Sentinels' AUTH user, or NULL */
    const char *sentinel_password; /* the Sentinels' AUTH password, or NULL */
} pv_redis_target_t;

/* Resolve a->host into a->ip: blocking, so for the config loader (as
 * NGINX resolves an upstream's server names when it loads), never a
 * worker. 0, or -1 with the reason in err. */
int pv_redis_resolve(pv_redis_addr_t *a, char *err, size_t errlen);
/* 1 when a and b name the same server (at the same resolved address)
 * with the same login. */
int pv_redis_target_eq(const pv_redis_target_t *a, const pv_redis_target_t *b);
/* The client's target, as it was given. */
const pv_redis_target_t *pv_redis_target(const pv_redis_t *r);

/* Create the client and start connecting at once; t is copied. It
 * connects to the addresses pv_redis_resolve() found (or the literal
 * addresses given) and looks no name up: the loop never blocks on one.
 * A new connection
 * sends AUTH and SELECT when configured, and with Sentinel asks a
 * Sentinel for the master's address first (after an AUTH of its own when
 * the Sentinels have a password) and checks ROLE: a connection
 * lost or refused by a demoted master asks again, so a failover is
 * followed. NULL (logged) for a host name left unresolved, or when
 * memory runs out. */
pv_redis_t *pv_redis_new(pv_loop_t *loop, const pv_redis_target_t *t);
/* Tune the client (0 keeps a value): connect_ms bounds a connection
 * attempt up to Redis's first answer (default 1000), reply_ms the wait for
 * any reply before the connection is dropped and every pending check
 * fails (1000), backoff_min_ms/backoff_max_ms the reconnect delays, which
 * double after each failed attempt (100 / 5000, with jitter). */
void pv_redis_set_timeouts(pv_redis_t *r, uint64_t connect_ms, uint64_t reply_ms,
                           uint64_t backoff_min_ms, uint64_t backoff_max_ms);
/* Check one request against `limit` (its zone gives the name and rate)
 * for key in Redis. PV_AGAIN: cb(arg, ...) will run from the loop, later,
 * exactly once unless cancelled; *req (may be NULL) gets the handle.
 * PV_ERR: Redis is unreachable or the client is saturated; *err gets the
 * reason and cb will not run. While the very first connection is being
 * made, checks are queued behind it (bounded by connect_ms). `limit` must
 * stay valid until the callback or pv_redis_cancel(). */
int pv_redis_limit(pv_redis_t *r, const pv_limit_req_t *limit, pv_str_t key,
                   pv_redis_limit_cb cb, void *arg, pv_redis_req_t **req, const char **err);
/* Lose interest in a pending check (its request was aborted): the reply
 * is still read but dropped, and neither cb, arg nor limit is touched. */
void pv_redis_cancel(pv_redis_req_t *req);
/* 1 when Redis answers on the connection, 0 otherwise (checks fail fast). */
int pv_redis_up(const pv_redis_t *r);
/* Close the connection and free the client. Pending checks that were not
 * cancelled get "redis client closed". Never call it from one of its own
 * callbacks. */
void pv_redis_free(pv_redis_t *r);

#endif
