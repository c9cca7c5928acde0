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
/* Called once a server handshake is done, before anything is read, with
 * the owner: PV_OK to read on, PV_AGAIN when resume(arg) will be called
 * from the loop once its work is done (reads wait until then; never
 * called once the session is freed), PV_ERR to close. */
typedef int (*pv_tls_post_fn)(SSL *ssl, void *owner, void (*resume)(void *arg), void *arg);
void pv_tls_set_post_handshake(pv_tls_post_fn fn);

/* A server SSL_CTX with the fixed settings; NULL when out of memory. */
SSL_CTX *pv_tls_ctx_new(void);

/* Turn x (set up by pv_xprt_init) into a TLS server connection over ctx.
 * owner is handed to the SNI function. PV_ERR when out of memory (x is
 * then still a plain transport the caller closes). */
int pv_tls_server(pv_xprt_t *x, SSL_CTX *ctx, void *owner);
/* The transport moved to another owner (HTTP/2 taking over a connection);
 * NULL: none the hooks can name. Harmless on a plain transport. */
void pv_tls_set_owner(pv_xprt_t *x, void *owner);
/* The SSL_CTX a server session began with (before SNI switched it): as
 * OpenSSL calls its session callbacks, its session cache and ticket keys
 * are the session's. SSL_get_SSL_CTX() for any other session. */
SSL_CTX *pv_tls_session_ctx(SSL *ssl);
/* The owner of a server session (NULL: none, or a client session). */
void *pv_tls_owner(const SSL *ssl);

/* ---- client side (connections to upstreams) ---- */

/* A client SSL_CTX with the same fixed settings, keeping no session
 * cache of its own (sessions go where pv_tls_client_t.save says). */
SSL_CTX *pv_tls_client_ctx_new(void);
/* Ask for the server's chain to be verified up to depth; as NGINX does,
 * the handshake goes on whatever the result, which is checked after it
 * when pv_tls_client_t.verify_name is set. */
void pv_tls_client_verify(SSL_CTX *ctx, int depth);

/* Called with each session a client connection can resume later (after
 * the handshake and its checks; TLS 1.3 sends them as tickets). */
typedef void (*pv_tls_save_fn)(void *arg, SSL_SESSION *sess);

/* A client certificate named per connection (proxy_ssl_certificate with
 * variables): read from its files for this connection alone. */
typedef struct pv_tls_cert_files_s {
    const char *cert;         /* PEM: the certificate, then its chain */
    const char *key;          /* PEM: its key */
    const char *passwords;    /* lines tried in turn on an encrypted key, or NULL */
    size_t passwords_len;
} pv_tls_cert_files_t;

typedef struct pv_tls_client_s {
    SSL_CTX *ctx;
    const pv_tls_cert_files_t *certs; /* NULL, or an empty cert: the SSL_CTX's (if any) */
    const char *sni;          /* server name to send, or NULL */
    const char *verify_name;  /* check the chain and this name after the handshake; NULL: no check */
    SSL_SESSION *session;     /* a session to resume, or NULL (the caller keeps its reference) */
    pv_tls_save_fn save;      /* NULL: sessions are not kept */
    void *save_arg;
} pv_tls_client_t;

/* Turn x (a socket being connected) into a TLS client connection. The
 * handshake runs inside the first reads and writes; when it or the
 * checks after it fail, they return PV_ERR with x->why saying why, as
 * NGINX logs it ("... while SSL handshaking to upstream"). PV_ERR when
 * out of memory (x is then still a plain transport the caller closes). */
int pv_tls_client(pv_xprt_t *x, const pv_tls_client_t *c);
/* Use c's certificate and key on ssl; PV_ERR after logging why, as
 * NGINX does ("cannot load certificate ..."). */
int pv_tls_use_cert_files(SSL *ssl, const pv_tls_cert_files_t *c);
/* 1 when x is a TLS connection whose handshake is not over. */
int pv_tls_handshaking(const pv_xprt_t *x);
/* The private key in bio's PEM; an encrypted one is tried with each line
 * of passwords[0..len) in turn (bio rewound between tries), and with no
 * passwords OpenSSL never asks the terminal. NULL when none opens it. */
EVP_PKEY *pv_tls_read_key(BIO *bio, const char *passwords, size_t len);
/* 1 when x is a TLS connection whose handshake resumed a session. */
int pv_tls_resumed(const pv_xprt_t *x);

/* The session of a TLS connection; NULL for any other transport, or for
 * a TLS port that received plain bytes. */
SSL *pv_tls_ssl(const pv_xprt_t *x);
/* 1 when x is a TLS port that received plain bytes. */
int pv_tls_is_plain(const pv_xprt_t *x);

/* The first OpenSSL error of this thread's queue as "SSL: TEXT" for
 * messages, and the queue cleared. */
const char *pv_tls_error_text(char *buf, size_t len);

#endif
