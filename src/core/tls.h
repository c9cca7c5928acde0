/* The TLS transport: a pv_xprt_t whose bytes go through an OpenSSL
 * session. It knows no HTTP. The handshake runs inside read(), so the
 * first read of a new connection drives it; every SSL_ERROR_WANT_READ
 * and SSL_ERROR_WANT_WRITE becomes read_wants / write_wants and a
 * cleared readiness flag, so the owner waits in the loop as for a plain
 * socket. A connection whose first byte is not a TLS record (plain HTTP
 * sent to a TLS port) carries on as plain bytes, and pv_tls_is_plain()
 * says so, for the 400 NGINX gives it.
 *
 * SSL_CTX objects are made here (pv_tls_ctx_new) with the fixed settings
 * NGINX uses: no renegotiation, buffers released while idle, partial
 * writes. The server name callback calls one process-wide function the
 * HTTP side registers, which picks the server block. */
#ifndef PV_TLS_H
#define PV_TLS_H

#include <openssl/ssl.h>
#include "xprt.h"

extern const pv_xprt_ops_t pv_xprt_tls;

/* Called from the ClientHello with the SNI name (NULL when the client
 * sent none) and the owner given to pv_tls_server(); may switch the
 * session's SSL_CTX. Returns PV_OK, or PV_ERR to refuse the handshake
 * (unrecognized_name alert). */
typedef int (*pv_tls_sni_fn)(SSL *ssl, void *owner, const char *name);
/* Writes who the owner's peer is ("client: 127.0.0.1") for log lines. */
typedef void (*pv_tls_peer_fn)(void *owner, char *buf, size_t len);
void pv_tls_set_hooks(pv_tls_sni_fn sni, pv_tls_peer_fn peer);

/* A server SSL_CTX with the fixed settings; NULL when out of memory. */
SSL_CTX *pv_tls_ctx_new(void);

/* Turn x (set up by pv_xprt_init) into a TLS server connection over ctx.
 * owner is handed to the SNI function. PV_ERR when out of memory (x is
 * then still a plain transport the caller closes). */
int pv_tls_server(pv_xprt_t *x, SSL_CTX *ctx, void *owner);
/* The transport moved to another owner (HTTP/2 taking over a connection);
 * NULL: none the hooks can name. Harmless on a plain transport. */
void pv_tls_set_owner(pv_xprt_t *x, void *owner);

/* The session of a TLS connection; NULL for any other transport, or for
 * a TLS port that received plain bytes. */
SSL *pv_tls_ssl(const pv_xprt_t *x);
/* 1 when x is a TLS port that received plain bytes. */
int pv_tls_is_plain(const pv_xprt_t *x);

/* The first OpenSSL error of this thread's queue as "SSL: TEXT" for
 * messages, and the queue cleared. */
const char *pv_tls_error_text(char *buf, size_t len);

#endif
