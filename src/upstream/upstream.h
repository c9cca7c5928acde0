/* Upstream connections, per-worker keepalive pools and peer selection.
 * A pool holds at most `keepalive N` idle connections per upstream, most
 * recently used first; an idle connection that turns readable (the peer
 * closed it, or sent bytes it should not have) is discarded at once. */
#ifndef PV_UPSTREAM_H
#define PV_UPSTREAM_H

#include <stdint.h>
#include "../core/loop.h"
#include "../core/xprt.h"
#include "../config/conf.h"
#include "../core/module.h"
#include "balance.h"
#include "peer.h"

struct pv_worker_s;
struct pv_wgen_s;
typedef struct pv_upool_s pv_upool_t;
typedef struct pv_upconn_s pv_upconn_t;

/* What a connection's owner (the exchange using it) is told: socket
 * events and the expiry of the connection's timer. The pool calls
 * nothing else above it, so any content module can own a connection. */
typedef struct pv_upconn_ops_s {
    void (*event_cb)(void *owner, unsigned events); /* PV_EV_* on the socket */
    void (*timeout_cb)(void *owner);                /* connect/send/read timer fired */
} pv_upconn_ops_t;

/* What the owner knows about an exchange when it gives the connection
 * back; pv_upstream_release() decides from these and the pool's own rules
 * whether the connection stays. */
typedef struct pv_upstream_done_s {
    uint8_t failed;         /* an error, a timeout or an abandoned response ended it */
    uint8_t resp_complete;  /* the response was read to its end */
    uint8_t req_complete;   /* the whole request (head and body) was written */
    uint8_t early_response; /* the response head came before the request was all written */
    uint8_t keep;           /* request and response both allow keepalive */
    uint8_t leftover;       /* bytes arrived beyond the end of the response */
    uint8_t upgraded;       /* it carried a tunnel after a 101: never reused */
} pv_upstream_done_t;

struct pv_upconn_s {
    pv_xprt_t x;                /* transport (socket, readiness) */
    pv_timer_t timer;           /* connect/read/send timeout, or idle expiry in the pool */
    struct pv_worker_s *w;      /* owning worker */
    pv_upool_t *pool;           /* pool it belongs to */
    int server;                 /* index into pool->cf->servers */
    void *owner;                /* exchange using it; NULL while idle or closing */
    const void *log_req;        /* the owner's request, named in error log lines (core/log.h) */
    const pv_upconn_ops_t *ops; /* the owner's callbacks */
    struct pv_upconn_s *prev, *next; /* idle LRU links, or reap list */
    uint32_t requests;          /* requests sent on it */
    uint64_t created_ms;        /* loop time it was opened (keepalive_time) */
    uint64_t idle_ms;           /* loop time it went idle in the pool; once taken, how long it had been */
    uint64_t sent;              /* bytes written on it, all requests */
    const pv_upstream_tls_t *tls; /* TLS settings it was opened with (https), or NULL */
    pv_peer_t *peer;            /* its server's peer, held while it lives (TLS sessions) */
    uint32_t addr_gen;          /* a `resolve` slot's address generation it was opened to */
    uint8_t connected;          /* TCP handshake done */
    uint8_t busy;               /* counted in its pool's busy (given to an exchange) */
    uint8_t closing;            /* closed, waiting to be freed */
    uint8_t close_why;          /* PV_SCLOSE_* counted when it closes (shutdown unless set) */
    uint8_t counted;            /* counted in its peer's open (a max_conns server) */
};

struct pv_upool_s {
    pv_upstream_conf_t *cf;     /* upstream block */
    pv_upconn_t *idle_head;     /* most recently used idle connection */
    pv_upconn_t *idle_tail;     /* least recently used */
    int nidle;                  /* idle connections held */
    int busy;                   /* connections given to exchanges (opened or taken, not yet back) */
    int peak_cur, peak_prev;    /* the most busy at once in this keepalive_grace window and the last */
    uint64_t peak_at;           /* loop ms the current window began */
    pv_peer_t **peers;          /* the shared peer of each server (balancing state, failures) */
    uint64_t opened;            /* connections opened (for metrics/tests) */
    struct pv_stat_peer_s *st;  /* this worker's metrics of servers[0..] (NULL: none) */
    struct pv_stat_ups_s *ust;  /* ... of the upstream */
    int retired;                /* belongs to a replaced config: nothing returns to it */
    int capped;                 /* some server has max_conns */
    int resv;                   /* server + 1 for which the last pick reserved a new connection's
                                   place in its peer's open count (max_conns), 0 none */
    struct pv_loop_s *loop;     /* its worker's loop (NULL for a pool made at run time) */
    struct pv_upwait_s *qhead, *qtail; /* requests waiting for a server (`queue`, queue.c) */
    int nqueued;
    pv_timer_t qtimer;          /* the queue's kick, poll and timeouts */
    uint8_t qtimer_set;         /* qtimer was initialised */
};

/* The worker module: builds a generation's pools (taking over the idle
 * connections of the generation it replaces), frees them, reaps closed
 * connections. */
extern pv_module_t pv_upstream_module;
/* The pool of upstream i (conf->http->upstreams order) in generation g. */
pv_upool_t *pv_upstream_pool(struct pv_wgen_s *g, int i);

/* Pools for every upstream of conf on this worker (conf->http->upstreams
 * order); NULL when out of memory. */
pv_upool_t *pv_upstream_pools_new(struct pv_worker_s *w, pv_conf_t *conf, int *npools);
/* Set one pool up for cf (its shared peers taken), or free what it holds
 * (idle connections closed, peers dropped); the pool's memory is the
 * caller's. */
int pv_upstream_pool_init(pv_upool_t *p, pv_upstream_conf_t *cf);
void pv_upstream_pool_fini(pv_upool_t *p);
/* Close idle connections and free the pools. */
void pv_upstream_pools_free(pv_upool_t *pools, int n);
/* After a reload: move idle connections of the old pools into the new
 * pool of the same upstream name when it still has that server address
 * (warm connections survive a reload), close the rest, and mark the old
 * pools retired so connections released into them later are closed. */
void pv_upstream_pools_adopt(pv_upool_t *to, int nto, pv_upool_t *from, int nfrom);
/* Words of a set of server indexes for an upstream of n servers. */
#define PV_UPSTREAM_SET_WORDS(n) (((size_t)(n) + 63) / 64)
/* Start a request's server selection (balance.h's pv_bal_init()). */
void pv_upstream_pick_init(pv_upool_t *p, pv_upick_t *k, uint64_t *tried_words, const char *key, size_t keylen,
                           const struct sockaddr *client, int64_t max_tries);
/* Pick a server by the upstream's method, shared with every worker (the
 * peers' group lock): its index, -1 when none may be used, or
 * PV_UPSTREAM_NO_BUDGET for a retry that the upstream's retry_budget
 * refuses. The server is counted in its conns until pv_upstream_free().
 * A server with max_conns counts as full, as at max_conns requests, when
 * as many connections are open to it from all workers and this worker
 * holds none of them idle; the pick then reserves the place of the new
 * connection pv_upstream_connect() opens (given back when none is). */
#define PV_UPSTREAM_NO_BUDGET (-2)
int pv_upstream_get(pv_upool_t *p, pv_upick_t *k, uint64_t now);
/* Whether the retry budget would let a retry start now (a look, for a
 * decision made before the current answer is dropped). */
int pv_upstream_retry_allowed(pv_upool_t *p);
/* Release the server picked last (nothing when none is held) with a
 * PV_BAL_* verdict. Logs when the server goes out for its fail_timeout. */
void pv_upstream_free(pv_upool_t *p, pv_upick_t *k, int verdict, int status, uint64_t now);
/* An idle pooled connection to server, or NULL. For a request that must
 * not be sent twice (unsafe), only a connection that has been idle for
 * less than half the time after which the server was lately seen closing
 * idle connections (less a margin of 10 ms): a server that closes them
 * right after each answer gets such requests on new connections only.
 * Only a connection opened with the same TLS settings (tls, NULL for
 * plain) is taken: a pooled TLS connection keeps its session. */
pv_upconn_t *pv_upstream_take_idle(pv_upool_t *p, int server, int unsafe, const pv_upstream_tls_t *tls);
/* A connection taken from the pool failed before any answer: the server
 * had closed it while it was idle (learned as pv_upstream_take_idle()
 * says). */
void pv_upstream_stale(pv_upconn_t *u);
/* How a new upstream connection gets its transport: set x up (the pool
 * then sets its io callback and watches it) and return PV_OK while the
 * connection is being established (a WRITE event says when; the owner
 * checks the socket's error), PV_UPSTREAM_OPEN_CONNECTED when it already
 * is, or PV_ERR with errno. The default starts a non-blocking connect()
 * under the plain transport; a test harness puts in-memory transports
 * here. Set before any worker runs. */
#define PV_UPSTREAM_OPEN_CONNECTED 1
typedef int (*pv_upstream_open_t)(pv_xprt_t *x, const pv_upstream_server_t *s, const pv_net_bind_t *local);
void pv_upstream_set_opener(pv_upstream_open_t fn); /* NULL: the default */
/* Open a new connection to server (connect in progress). With tls (an
 * https proxy_pass) the opener's transport becomes a TLS client under
 * those settings, resuming the server's last session when
 * proxy_ssl_session_reuse is on; the handshake then runs inside the
 * first writes and reads. name, when not NULL, stands for tls->name (a
 * proxy_ssl_name with variables, evaluated for the request); certs, when
 * not NULL, is the client certificate named for the request; local, when
 * not NULL, the address to connect from (proxy_bind). NULL on error with
 * errno set (EINVAL: certs could not be loaded). */
struct pv_tls_cert_files_s;
pv_upconn_t *pv_upstream_connect(struct pv_worker_s *w, pv_upool_t *p, int server, const pv_upstream_tls_t *tls,
                                 const char *name, const struct pv_tls_cert_files_s *certs,
                                 const pv_net_bind_t *local);
/* Give the connection to owner, whose ops get its events and timeouts. */
void pv_upstream_attach(pv_upconn_t *u, const pv_upconn_ops_t *ops, void *owner);
/* The pool's guard list: whether u may carry another request after an
 * exchange that ended as d says, at loop time now. */
int pv_upstream_reusable(const pv_upconn_t *u, const pv_upstream_done_t *d, uint64_t now);
/* The owner is done with u: pooled if pv_upstream_reusable() allows it,
 * else closed. The only way a connection goes back to the pool. */
void pv_upstream_release(pv_upconn_t *u, const pv_upstream_done_t *d);
/* Whether the upstream's TCP acknowledged none of the bytes written on u
 * after the first `before` (so a FIN that came was sent before any of
 * them arrived). Called only on the failure path: one getsockopt(). */
int pv_upstream_unacked_since(const pv_upconn_t *u, uint64_t before);
/* Close now; the memory is freed before the loop next waits. */
void pv_upstream_close(pv_upconn_t *u);
/* Free connections closed during this iteration. */
void pv_upstream_reap(struct pv_worker_s *w);

#endif
