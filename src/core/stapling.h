/* OCSP stapling (ssl_stapling): the response stapled to a handshake
 * that asks for one, read from a file at load or fetched from the
 * certificate's OCSP responder. A fetched response is kept per
 * certificate and shared by every worker: the first handshake that asks
 * for status starts the fetch on its worker's loop (no staple yet for
 * that one, as with NGINX), and later ones staple the cached response
 * until it is refreshed (5 minutes before nextUpdate, at least hourly,
 * at most every 5 minutes; 5 minutes after a failure). */
#ifndef PV_STAPLING_H
#define PV_STAPLING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "loop.h"
#include "ocsp.h"
#include "resolver.h"

/* Staple the DER OCSP response der[0..len) to every handshake of ctx
 * that asks for one (ssl_stapling_file); copied and freed with ctx. */
int pv_stapling_attach_file(SSL_CTX *ctx, const unsigned char *der, size_t len);

/* How one certificate's response is fetched. */
typedef struct pv_stapling_conf_s {
    const pv_ocsp_url_t *url;               /* the responder */
    const char *name;                       /* the certificate's file, for logs */
    int verify;                             /* ssl_stapling_verify */
    const struct sockaddr_storage *addr;    /* the responder's address found at load (port set) */
    socklen_t addrlen;
    int literal;                            /* the host is an address: nothing to resolve */
    const pv_resolver_conf_t *resolver;     /* NULL: none ("no resolver defined") */
    int64_t resolver_timeout;               /* ms */
} pv_stapling_conf_t;

/* Fetch cert's response (issued by issuer; ctx's chain and store verify
 * it) when a handshake asks for it. PV_ERR when out of memory or the
 * OCSP request cannot be made. */
int pv_stapling_attach(SSL_CTX *ctx, X509 *cert, X509 *issuer, const pv_stapling_conf_t *sc);

/* The calling worker's loop, on which its fetches run. */
void pv_stapling_thread_init(pv_loop_t *l);
/* The worker ends: its fetches are dropped (another worker retries). */
void pv_stapling_thread_exit(void);

#endif
