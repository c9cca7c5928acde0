/* One OCSP request to a responder on a worker's loop: resolve (when
 * asked to), connect, send the GET, read the answer to the end and check
 * its head. Shared by stapling (core/stapling.c) and the checks of client
 * certificates (core/ocsp_check.c). Each failure is logged as NGINX logs
 * it ("... while requesting certificate status, responder: HOST, peer:
 * ADDR[, certificate: "FILE"]"). */
#ifndef PV_OCSP_FETCH_H
#define PV_OCSP_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"
#include "ocsp.h"
#include "resolver.h"

#define PV_OCSP_FETCH_TIMEOUT 60000 /* ms for connect, request and answer (NGINX's) */

/* Where the request goes. */
typedef struct pv_ocsp_peer_s {
    const pv_ocsp_url_t *url;
    const struct sockaddr_storage *addr; /* known address (port set), or NULL */
    socklen_t addrlen;
    int literal;                         /* the host is that address: nothing to resolve */
    const pv_resolver_conf_t *resolver;  /* NULL: none; then addr is used with a warning, or,
                                            without addr, the fetch fails */
    int64_t resolver_timeout;            /* ms */
} pv_ocsp_peer_t;

/* A peer held by value, for what outlives the config that named it (the
 * resolver's zone is not kept). */
typedef struct pv_ocsp_responder_s {
    pv_ocsp_url_t url;
    struct sockaddr_storage addr;
    socklen_t addrlen;                   /* 0: no known address */
    int literal;
    int has_resolver;
    pv_resolver_conf_t rcf;
    int64_t resolver_timeout;
} pv_ocsp_responder_t;

/* Copy p into r; the peer that r names. */
void pv_ocsp_responder_keep(pv_ocsp_responder_t *r, const pv_ocsp_peer_t *p);
pv_ocsp_peer_t pv_ocsp_responder_peer(const pv_ocsp_responder_t *r);

typedef struct pv_ocsp_fetch_s pv_ocsp_fetch_t;

/* Called once: with the DER response body of a 200 answer of the right
 * type, or with NULL (the failure was logged). f may still log (its
 * lines name the responder and peer); it is freed when this returns. */
typedef void (*pv_ocsp_fetch_fn)(void *arg, pv_ocsp_fetch_t *f, const unsigned char *der, size_t len);

/* Start sending request[0..len) (copied) to p (copied) on loop; name is
 * the certificate's file for log lines, or NULL. Nothing happens before
 * the loop runs again, so done is never called from here. NULL when out
 * of memory (done is not called). */
pv_ocsp_fetch_t *pv_ocsp_fetch(pv_loop_t *loop, const pv_ocsp_peer_t *p, const char *request, size_t len,
                               const char *name, pv_ocsp_fetch_fn done, void *arg);
/* A line in the fetch's context. */
void pv_ocsp_fetch_log(const pv_ocsp_fetch_t *f, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Drop a fetch under way; done is not called. Its memory goes once the
 * loop's current batch of events is over. */
void pv_ocsp_fetch_cancel(pv_ocsp_fetch_t *f);
/* The worker ends: what cancelled fetches left is freed, and later
 * cancels free at once (the loop runs no more). */
void pv_ocsp_fetch_thread_exit(void);

/* The DER OCSP request for id as NGINX's GET to u, into out[0..cap):
 * its length, or -1. */
long pv_ocsp_request_for(const pv_ocsp_url_t *u, const void *id, char *out, size_t cap);

#endif
