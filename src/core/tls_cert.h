/* Certificates chosen per handshake (ssl_certificate with variables):
 * the SSL_CTX carries no certificate, and its certificate callback asks
 * a function the HTTP side registers to name the files (or "data:"
 * values) for this connection, which pv_tls_cert_use() then loads onto
 * the session. What was loaded is kept in a small per-thread cache
 * (PV_TLS_CERT_CACHE entries, least recently used out first); a file's
 * entry is used again only while the file's inode, size and mtime are
 * unchanged, so an edited file is read again on the next handshake, as
 * NGINX reads it on every one. */
#ifndef PV_TLS_CERT_H
#define PV_TLS_CERT_H

#include <stddef.h>
#include <openssl/ssl.h>

#define PV_TLS_CERT_CACHE 64

/* Called from the ClientHello (after SNI) with the owner given to
 * pv_tls_server(); PV_OK once the session has its certificates, else
 * PV_ERR (the handshake fails). */
typedef int (*pv_tls_cert_fn)(SSL *ssl, void *owner);
void pv_tls_cert_hook(pv_tls_cert_fn fn);

/* Have ctx's handshakes ask the registered function for certificates. */
void pv_tls_ctx_cert_cb(SSL_CTX *ctx);

/* Load cert (PEM: the certificate, then its chain) and key onto ssl;
 * each is a file name or "data:" and the PEM itself. passwords: lines
 * tried in turn on an encrypted key (NULL: none). On failure logs why,
 * as NGINX does ("cannot load certificate ... while SSL handshaking,
 * WHO"), and returns PV_ERR. */
int pv_tls_cert_use(SSL *ssl, const char *cert, const char *key, const char *passwords, size_t passwords_len,
                    const char *who);

/* Drop this thread's cache (at worker exit). */
void pv_tls_cert_cache_clear(void);

#endif
