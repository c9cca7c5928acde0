/* Peers: one object per upstream server, shared by every worker thread,
 * holding the server's state: its balancing state (NGINX's round-robin
 * peer fields: weights, connections, failures and the fail window) under
 * the lock of its upstream's group, as NGINX keeps them in a zone, and a
 * few atomics. A registry keyed by upstream name and server address
 * keeps a peer across reloads, as policy/zones.c keeps rate-limit zones:
 * each worker's pools take a reference when they are built for a
 * snapshot and drop it when they are freed, so a server that stays in
 * the config keeps its state and a removed one is dropped once no
 * snapshot names it. */
#ifndef PV_PEER_H
#define PV_PEER_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

/* The peers of one upstream name: the lock their balancing state is
 * taken under (one pick or one release at a time, every worker). */
typedef struct pv_peer_group_s {
    char *name;                     /* upstream name (key) */
    pthread_mutex_t lock;
    int refs;                       /* peers holding it; under the registry lock */
    int active;                     /* attempts in progress (picks not yet released); under lock */
    int retrying;                   /* of which retries (retry_budget); under lock */
    struct pv_peer_group_s *next;
} pv_peer_group_t;

/* A server's balancing state, as NGINX's ngx_http_upstream_rr_peer_t;
 * guarded by the group's lock. Times are loop milliseconds. */
typedef struct pv_bal_state_s {
    int weight;                     /* the configured weight it was set up for (0: not yet) */
    int effective_weight;           /* lowered by failures, grows back by one per pick round */
    int current_weight;             /* smooth weighted round robin */
    int conns;                      /* picks not yet released (least_conn, max_conns) */
    int fails;                      /* failures since the last success after a check */
    int64_t accessed;               /* time of the last failure */
    int64_t checked;                /* time of the last failure, or of a pick after the window */
    int64_t slow_since;             /* time it came back (slow_start), 0 when not recovering */
    uint8_t hc_down;                /* active checks have it out (or a mandatory first check is due),
                                       or a `resolve` slot has no address (its checks wait for one) */
    uint8_t hc_checked;             /* an active check has decided its state */
    int hc_fails, hc_passes;        /* consecutive failed / passed checks */
    int od_run;                     /* outlier detection: 5xx answers or failures in a row */
    int od_ejections;               /* ejections so far (each lasts longer) */
    int64_t od_until;               /* ejected until then */
    uint64_t ejected_total;         /* outlier ejections since the peer was made (metrics) */
    uint64_t hc_down_total;         /* times the active checks took it out (metrics) */
    uint64_t checks_total;          /* active checks done */
    uint64_t checks_failed;         /* ... that failed */
} pv_bal_state_t;

typedef struct pv_peer_s {
    char *upstream;                 /* upstream block name (key) */
    struct sockaddr_storage addr;   /* server address (key) */
    socklen_t addrlen;              /* its length */
    int nth;                        /* how many servers with this address come before it in the block (key) */
    pv_peer_group_t *group;         /* its upstream's group (held) */
    pv_bal_state_t bal;             /* under group->lock */
    _Atomic uint64_t idle_close;    /* loop ms of the last sighting << 24 | shortest idle time (ms) after
                                       which the server closed a pooled connection (0: none seen) */
    int refs;                       /* pools and connections holding it; under the registry lock */
    /* max_conns across workers: the connections open to it from every
     * worker, in use or idle (upstream.c counts them when its line has
     * max_conns), and the loop ms a request was last refused a new one
     * because of them (0: never): while that is recent, idle ones close */
    _Atomic int open;
    _Atomic uint64_t wanted;
    pthread_mutex_t sess_lock;      /* guards the session below */
    unsigned char *sess;            /* the last TLS session the server gave (DER), or NULL */
    size_t sess_len;
    /* a slot of a `server NAME resolve` line (its key address holds the
     * name): the address the name gives it now, under group->lock */
    struct sockaddr_storage cur;
    socklen_t curlen;               /* 0: no address (bal.hc_down then) */
    char cur_text[64];              /* "127.0.0.1:8080" for $upstream_addr */
    _Atomic uint32_t cur_gen;       /* bumped at every change (0: never set); a pooled connection
                                       opened under an older one is not reused */
    _Atomic uint8_t ask_again;      /* a try at it failed: its name is looked up again at once */
    struct pv_peer_s *next;         /* registry list */
} pv_peer_t;

/* The peer for (upstream, address, nth), shared with earlier snapshots
 * when they name it, else new; NULL if out of memory. */
pv_peer_t *pv_peer_acquire(const char *upstream, const struct sockaddr *sa, socklen_t len, int nth);
/* One more reference to a peer already held. */
void pv_peer_hold(pv_peer_t *p);
/* Drop one reference taken by pv_peer_acquire() or pv_peer_hold(); the last frees it. */
void pv_peer_release(pv_peer_t *p);
/* Set p's balancing state up for a configured weight (a new peer, or a
 * reload that changed the weight) and its upstream's active checks
 * (PV_PEER_HC_*): without checks it is never held out by them; with
 * mandatory ones it is until its first check passed. Takes the lock. */
enum { PV_PEER_HC_NONE = 0, PV_PEER_HC_ON, PV_PEER_HC_MANDATORY };
void pv_peer_configure(pv_peer_t *p, int weight, int checks);
/* The server closed a pooled connection of ours that had been idle for
 * idle_ms (seen at loop time now). */
void pv_peer_idle_closed(pv_peer_t *p, uint64_t now, uint64_t idle_ms);
/* The shortest idle time after which the server has lately (within
 * PV_PEER_IDLE_MEMORY_MS) closed pooled connections, or -1 when it has
 * not. A server that closes its keepalive connections on a timer of its
 * own, or right after each answer, is learned this way. */
int64_t pv_peer_idle_limit(pv_peer_t *p, uint64_t now);
#define PV_PEER_IDLE_MEMORY_MS 10000

/* TLS session reuse (proxy_ssl_session_reuse): the last session the
 * server gave any worker, stored serialized (as NGINX keeps it), so that
 * a new connection from any worker can resume it. Save takes a copy;
 * load returns a new session the caller frees, or NULL. */
struct ssl_session_st;
void pv_peer_save_session(pv_peer_t *p, struct ssl_session_st *sess);
struct ssl_session_st *pv_peer_load_session(pv_peer_t *p);

/* The addresses that slots of upstream's `resolve` lines for host (any
 * port) hold now, from the peers of earlier snapshots, in slot order,
 * with port; at most max, each address once; how many. A
 * reload that changed a line's port starts from them while its DNS does
 * not answer, as NGINX's zone does. Takes the registry lock, then the
 * group's: never call it under a group lock. */
int pv_peer_host_addrs(const char *upstream, const char *host, int port, struct sockaddr_storage *out,
                       socklen_t *lens, int max);

/* Peers in the registry (tests, status). */
int pv_peer_count(void);

#endif
