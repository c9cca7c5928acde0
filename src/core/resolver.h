/* Asynchronous DNS on a worker's loop: c-ares channels whose sockets and
 * timeouts are watched by the thread's pv_loop_t, and a per-thread cache
 * of answers kept for their TTL (or `valid=`). One resolver per distinct
 * `resolver` setting and thread; nothing here is shared between threads,
 * and nothing knows HTTP. */
#ifndef PV_RESOLVER_H
#define PV_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"

#define PV_RESOLVER_SERVERS 8  /* name servers of one `resolver` line at most */
#define PV_RESOLVED_MAX 16     /* addresses kept for one name */

/* A `resolver` setting: its name servers and parameters. */
typedef struct pv_resolver_conf_s {
    struct sockaddr_storage servers[PV_RESOLVER_SERVERS];
    socklen_t lens[PV_RESOLVER_SERVERS];
    int nservers;
    int64_t valid;        /* ms an answer is kept; -1: its TTL */
    uint8_t ipv4, ipv6;   /* look up A, AAAA records */
    const char *zone;     /* status_zone=, or NULL */
} pv_resolver_conf_t;

/* How a lookup ended. */
enum {
    PV_RESOLVE_OK = 0,
    PV_RESOLVE_NOTFOUND, /* NXDOMAIN, or no record of the type */
    PV_RESOLVE_TIMEDOUT,
    PV_RESOLVE_ERROR,    /* SERVFAIL, an unreadable answer, no memory */
    PV_RESOLVE_FORMERR,
    PV_RESOLVE_NOTIMP,
    PV_RESOLVE_REFUSED
};

/* One SRV record (RFC 2782). */
typedef struct pv_srv_s {
    uint16_t priority, weight, port;
    char target[256];     /* the host name, without the final dot */
} pv_srv_t;

/* A lookup's answer: the addresses (port 0), or for an SRV lookup the
 * records, and the loop time until which it is good. */
typedef struct pv_resolved_s {
    int status;           /* PV_RESOLVE_* */
    int naddrs;
    struct sockaddr_storage addrs[PV_RESOLVED_MAX];
    socklen_t lens[PV_RESOLVED_MAX];
    int nsrv;             /* SRV records (pv_resolve_srv()) */
    const pv_srv_t *srv;
    uint64_t expires;     /* loop ms */
} pv_resolved_t;

/* Called once per lookup with its answer (valid during the call only). */
typedef void (*pv_resolve_cb)(void *data, const pv_resolved_t *res);

typedef struct pv_resolver_s pv_resolver_t;
typedef struct pv_resolve_wait_s pv_resolve_wait_t;

/* This thread's resolver for cf on loop l (made on first use, kept for
 * the thread's life and shared by equal settings); NULL out of memory. */
pv_resolver_t *pv_resolver_get(pv_loop_t *l, const pv_resolver_conf_t *cf);
/* Look name up (A and AAAA as ipv4=/ipv6= say; a CNAME with no
 * address followed to its target, 50 deep at most; one final dot left
 * out). PV_OK: answered from the cache, cb already called.
 * PV_AGAIN: a query is out; cb comes from the loop within timeout_ms
 * (then PV_RESOLVE_TIMEDOUT at the latest), unless the wait returned in
 * *w is cancelled first. PV_ERR: out of memory. */
int pv_resolve(pv_resolver_t *r, const char *name, int64_t timeout_ms, pv_resolve_cb cb, void *data,
               pv_resolve_wait_t **w);
/* The same for the SRV records of name (up to PV_RESOLVED_MAX, in the
 * answer's order), cached apart from its addresses. */
int pv_resolve_srv(pv_resolver_t *r, const char *name, int64_t timeout_ms, pv_resolve_cb cb, void *data,
                   pv_resolve_wait_t **w);
/* The cached answers for name (addresses and SRV records) are out of
 * date: the next look-up asks the name servers. */
void pv_resolve_expire(pv_resolver_t *r, const char *name);
/* Forget a pending wait: its callback never comes. */
void pv_resolve_cancel(pv_resolve_wait_t *w);
/* Text of a status, as NGINX words it ("Host not found", "Operation timed out"). */
const char *pv_resolve_strerror(int status);
/* The code NGINX shows beside that text (3, 110, ...). */
int pv_resolve_code(int status);
/* Free this thread's resolvers (the thread ends). */
void pv_resolver_thread_exit(void);

#endif
