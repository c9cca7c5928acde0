/* Peers: one object per upstream server, shared by every worker thread,
 * holding the server's state in atomics (failures and the fail window
 * now; health and counters later). A registry keyed by upstream name and
 * server address keeps a peer across reloads, as policy/zones.c keeps
 * rate-limit zones: each worker's pools take a reference when they are
 * built for a snapshot and drop it when they are freed, so a server that
 * stays in the config keeps its state and a removed one is dropped once
 * no snapshot names it. */
#ifndef PV_PEER_H
#define PV_PEER_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct pv_peer_s {
    char *upstream;                 /* upstream block name (key) */
    struct sockaddr_storage addr;   /* server address (key) */
    socklen_t addrlen;              /* its length */
    int nth;                        /* how many servers with this address come before it in the block (key) */
    _Atomic uint64_t fail_state;    /* end of the fail window in loop ms << 16 | failures inside it */
    _Atomic uint64_t idle_close;    /* loop ms of the last sighting << 24 | shortest idle time (ms) after
                                       which the server closed a pooled connection (0: none seen) */
    int refs;                       /* pools and connections holding it; under the registry lock */
    pthread_mutex_t sess_lock;      /* guards the session below */
    unsigned char *sess;            /* the last TLS session the server gave (DER), or NULL */
    size_t sess_len;
    struct pv_peer_s *next;         /* registry list */
} pv_peer_t;

/* The peer for (upstream, address, nth), shared with earlier snapshots
 * when they name it, else new; NULL if out of memory. */
pv_peer_t *pv_peer_acquire(const char *upstream, const struct sockaddr *sa, socklen_t len, int nth);
/* One more reference to a peer already held. */
void pv_peer_hold(pv_peer_t *p);
/* Drop one reference taken by pv_peer_acquire() or pv_peer_hold(); the last frees it. */
void pv_peer_release(pv_peer_t *p);
/* Failures inside the fail window that is open at loop time now (0 once it has passed). */
int pv_peer_fails(pv_peer_t *p, uint64_t now);
/* Count a failure at now and open a window of fail_timeout ms; returns the count. */
int pv_peer_fail(pv_peer_t *p, uint64_t now, int64_t fail_timeout);
/* A success: the failure count goes back to zero. */
void pv_peer_ok(pv_peer_t *p);
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

/* Peers in the registry (tests, status). */
int pv_peer_count(void);

#endif
