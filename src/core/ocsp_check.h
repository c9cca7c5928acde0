/* OCSP checks of client certificates (ssl_ocsp): once a handshake that
 * verified a client certificate is done, the status of the certificate
 * (ssl_ocsp leaf) or of each certificate of its chain but the root
 * (ssl_ocsp on) is asked of its OCSP responder (ssl_ocsp_responder, else
 * the certificate's AIA), one after the other, on the worker's loop; the
 * connection reads nothing meanwhile. Answers are kept in an optional
 * cache shared by the workers (ssl_ocsp_cache) until their nextUpdate.
 * The result stays with the session's SSL for the requests to read, as
 * NGINX's ngx_ssl_ocsp_validate() keeps it with the connection. */
#ifndef PV_OCSP_CHECK_H
#define PV_OCSP_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "loop.h"
#include "ocsp.h"
#include "resolver.h"

enum { PV_OCSP_OFF = 0, PV_OCSP_ON, PV_OCSP_LEAF };

typedef struct pv_ncache_s pv_ocsp_cache_t;

/* A named cache of size bytes (ssl_ocsp_cache shared:NAME:SIZE), shared
 * by every config naming it; a reference the caller drops. NULL when out
 * of memory. */
pv_ocsp_cache_t *pv_ocsp_cache_get(const char *name, size_t size);
void pv_ocsp_cache_unref(pv_ocsp_cache_t *c);
/* The status kept for key[0..len) (a CERTID's DER) while it is valid:
 * 1 and *status (V_OCSP_CERTSTATUS_*), else 0. */
int pv_ocsp_cache_lookup(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int *status);
/* Keep status for key until valid (time()); the least recently used
 * entry goes when the cache is full. */
void pv_ocsp_cache_store(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int status, int64_t valid);

/* A server's ssl_ocsp settings. */
typedef struct pv_ocsp_check_conf_s {
    int mode;                           /* PV_OCSP_ON or PV_OCSP_LEAF */
    const pv_ocsp_url_t *url;           /* ssl_ocsp_responder, or NULL: each certificate's AIA */
    const struct sockaddr_storage *addr; /* its address found at load (port set) */
    socklen_t addrlen;
    int literal;                        /* its host is that address */
    const pv_resolver_conf_t *resolver; /* NULL: none */
    int64_t resolver_timeout;           /* ms */
    pv_ocsp_cache_t *cache;             /* NULL: none (a reference is taken) */
} pv_ocsp_check_conf_t;

/* Check the client certificates of ctx's handshakes (copied; freed with
 * ctx). PV_ERR when out of memory. */
int pv_ocsp_check_attach(SSL_CTX *ctx, const pv_ocsp_check_conf_t *c);

/* Once ssl's handshake is done: PV_OK when there is nothing to wait for
 * (no ssl_ocsp, no certificate or one that did not verify, an answer
 * cached, or a failure), PV_AGAIN when done(arg) will be called from
 * loop once the answers are in (never when ssl was freed first). who
 * names the client in log lines ("client: ADDR"). */
int pv_ocsp_check_start(SSL *ssl, pv_loop_t *loop, const char *who, void (*done)(void *arg), void *arg);

/* NULL when the certificate passed the checks or none were made, else
 * NGINX's words for $ssl_client_verify ("certificate revoked",
 * "certificate status unknown", "certificate status request failed"). */
const char *pv_ocsp_check_failure(SSL *ssl);

#endif
