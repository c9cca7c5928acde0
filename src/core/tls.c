#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "counters.h"
#include "log.h"
#include "net.h"

enum { TLS_ON = 0, TLS_SNIFF, TLS_PLAIN };

/* The transport's state (x->ctx). */
typedef struct pv_tls_s {
    SSL *ssl;
    void *owner;      /* for the SNI function */
    SSL_CTX *session_ctx; /* server: the SSL_CTX it began with, whose session cache and ticket keys serve it */
    uint8_t mode;     /* TLS_*: still looking at the first byte, TLS, or plain bytes */
    uint8_t failed;   /* a fatal error: no close_notify may follow */
    uint8_t early;    /* TLS 1.3 early data may still come: read with SSL_read_early_data() */
    uint8_t client;   /* a connection to an upstream */
    uint8_t handshaked; /* client: handshake done and checked */
    uint8_t established; /* a read or write went through: a failure is not the handshake's */
    uint8_t checked;  /* server: the handshake is done and the post-handshake function ran */
    uint8_t waiting;  /* server: that function's work goes on; nothing is read meanwhile */
    pv_xprt_t *x;     /* server, while waiting: the transport to wake */
    char *verify_name;  /* client: the name the certificate must match; NULL: no check */
    pv_tls_save_fn save; /* client: where resumable sessions go */
    void *save_arg;
} pv_tls_t;

/* The account of the last failed client handshake of this thread (x->why). */
static __thread char why_buf[512];

static pv_tls_sni_fn sni_fn;
static pv_tls_peer_fn peer_fn;
static pv_tls_post_fn post_fn;

void pv_tls_set_post_handshake(pv_tls_post_fn fn)
{
    post_fn = fn;
}

void pv_tls_set_hooks(pv_tls_sni_fn sni, pv_tls_peer_fn peer)
{
    sni_fn = sni;
    peer_fn = peer;
}

const char *pv_tls_error_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    if (!e) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "unexpected end of stream");
    } else {
        char t[256];
        ERR_error_string_n(e, t, sizeof(t));
        snprintf(buf, len, "SSL: %s", t);
    }
    ERR_clear_error();
    return buf;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    PV_UNUSED(arg);
    pv_tls_t *t = SSL_get_app_data(ssl);
    if (!sni_fn || !t)
        return SSL_TLSEXT_ERR_OK;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni_fn(ssl, t->owner, name) != PV_OK) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return name ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

SSL_CTX *pv_tls_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    return ctx;
}

void *pv_tls_owner(const SSL *ssl)
{
    const pv_tls_t *t = SSL_get_app_data(ssl);
    return t && !t->client ? t->owner : NULL;
}

SSL_CTX *pv_tls_session_ctx(SSL *ssl)
{
    const pv_tls_t *t = SSL_get_app_data(ssl);
    return t && t->session_ctx ? t->session_ctx : SSL_get_SSL_CTX(ssl);
}

void pv_tls_set_owner(pv_xprt_t *x, void *owner)
{
    if (x->ops == &pv_xprt_tls && x->ctx)
        ((pv_tls_t *)x->ctx)->owner = owner;
}

int pv_tls_server(pv_xprt_t *x, SSL_CTX *ctx, void *owner)
{
    pv_tls_t *t = calloc(1, sizeof(*t));
    if (!t)
        return PV_ERR;
    t->ssl = SSL_new(ctx);
    if (!t->ssl || !SSL_set_fd(t->ssl, x->io.fd)) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return PV_ERR;
    }
    SSL_set_accept_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    t->owner = owner;
    t->session_ctx = ctx;
    t->mode = TLS_SNIFF;
    t->early = SSL_CTX_get_max_early_data(ctx) > 0;
    x->ctx = t;
    x->ops = &pv_xprt_tls;
    return PV_OK;
}

SSL *pv_tls_ssl(const pv_xprt_t *x)
{
    if (x->ops != &pv_xprt_tls)
        return NULL;
    const pv_tls_t *t = x->ctx;
    return t->mode == TLS_PLAIN ? NULL : t->ssl;
}

int pv_tls_handshaking(const pv_xprt_t *x)
{
    SSL *ssl = pv_tls_ssl(x);
    return ssl && !SSL_is_init_finished(ssl);
}

int pv_tls_is_plain(const pv_xprt_t *x)
{
    return x->ops == &pv_xprt_tls && ((const pv_tls_t *)x->ctx)->mode == TLS_PLAIN;
}

/* The first byte tells a ClientHello (a handshake record, 0x16, or an
 * SSLv2-style hello with the top bit set) from plain HTTP, as NGINX
 * looks at it. PV_OK once decided, else what read() returns. */
static ssize_t sniff(pv_xprt_t *x, pv_tls_t *t)
{
    unsigned char ch;
    for (;;) {
        ssize_t n = recv(x->io.fd, &ch, 1, MSG_PEEK);
        if (n == 1)
            break;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            x->readable = 0;
            return PV_AGAIN;
        }
        return PV_ERR;
    }
    if (ch == 0x16 || (ch & 0x80)) {
        t->mode = TLS_ON;
    } else {
        t->mode = TLS_PLAIN;
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    return PV_OK;
}

/* Who the peer is for a log line: the owner's words, or, for a transport
 * that moved to an owner that names none (an HTTP/2 connection), the
 * socket's peer address. */
static void tls_peer(const pv_xprt_t *x, const pv_tls_t *t, char *buf, size_t len)
{
    if (t->owner) {
        if (peer_fn)
            peer_fn(t->owner, buf, len);
        return;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    char addr[64];
    if (getpeername(x->io.fd, (struct sockaddr *)&sa, &sl) != 0)
        return;
    pv_net_addr_text((struct sockaddr *)&sa, addr, sizeof(addr));
    if (addr[0])
        snprintf(buf, len, "client: %s", addr);
}

/* Map a failed SSL call to the transport's answer. want_flag points at
 * the readiness flag of the direction that called; wants at its
 * read_wants / write_wants. */
static ssize_t tls_fail(pv_xprt_t *x, pv_tls_t *t, int r, uint8_t *flag, uint8_t *wants, int reading)
{
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *wants = PV_EV_READ;
        *flag = 0;
        return PV_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *wants = PV_EV_WRITE;
        *flag = 0;
        return PV_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        /* the peer's close_notify */
        if (reading)
            return 0;
        errno = EPIPE;
        return PV_ERR;
    case SSL_ERROR_SYSCALL:
        t->failed = 1;
        if (t->client && !t->handshaked) {
            int e2 = errno;
            snprintf(why_buf, sizeof(why_buf), "peer closed connection in SSL handshake%s%s%s while SSL "
                     "handshaking to upstream", e2 ? " (" : "", e2 ? strerror(e2) : "", e2 ? ")" : "");
            x->why = why_buf;
            ERR_clear_error();
            errno = e2 ? e2 : ECONNRESET;
            return PV_ERR;
        }
        if (errno == 0 && reading) {
            ERR_clear_error();
            return 0;
        }
        if (errno == 0)
            errno = EPIPE;
        ERR_clear_error();
        return PV_ERR;
    default: {
        char msg[320], who[80] = "";
        t->failed = 1;
        pv_tls_error_text(msg, sizeof(msg));
        if (t->client) {
            snprintf(why_buf, sizeof(why_buf), "%s failed (%s) while %s",
                     t->handshaked ? (reading ? "SSL_read()" : "SSL_write()") : "SSL_do_handshake()", msg,
                     t->handshaked ? "processing the connection" : "SSL handshaking to upstream");
            x->why = why_buf;
            errno = EPROTO;
            return PV_ERR;
        }
        tls_peer(x, t, who, sizeof(who));
        /* a fatal error leaves OpenSSL's state machine out of its
         * finished state: what went through before tells */
        int done = t->established || SSL_is_init_finished(t->ssl);
        if (!done)
            pv_count(PV_CTR_TLS_FAILED);
        pv_log(PV_LOG_INFO, "%s failed (%s) while %s%s%s",
               done ? (reading ? "SSL_read()" : "SSL_write()") : "SSL_do_handshake()", msg,
               done ? "processing the connection" : "SSL handshaking", who[0] ? ", " : "", who);
        errno = EPROTO;
        return PV_ERR;
    }
    }
}

/* Early data, read until the client ends it; the handshake then goes on
 * in SSL_read(). PV_OK when there is no more early data to read. */
static ssize_t read_early(pv_xprt_t *x, pv_tls_t *t, void *buf, size_t len)
{
    for (;;) {
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        int r = SSL_read_early_data(t->ssl, buf, len, &n);
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            x->read_wants = PV_EV_READ;
            if (n > 0)
                return (ssize_t)n;
            continue;
        }
        if (r == SSL_READ_EARLY_DATA_FINISH) {
            t->early = 0;
            return n > 0 ? (ssize_t)n : PV_OK;
        }
        return tls_fail(x, t, 0, &x->readable, &x->read_wants, 1);
    }
}

/* ---- client side --------------------------------------------------------- */

/* A new session from the server: kept only once the handshake and its
 * checks are done (TLS 1.2 hands it over inside the handshake; it is
 * saved after the checks instead). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    pv_tls_t *t = SSL_get_app_data(ssl);
    if (t && t->handshaked && t->save)
        t->save(t->save_arg, sess);
    return 0; /* the reference stays with OpenSSL */
}

SSL_CTX *pv_tls_client_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return ctx;
}

static int client_verify_cb(int ok, X509_STORE_CTX *sctx)
{
    PV_UNUSED(ok);
    PV_UNUSED(sctx);
    return 1;
}

void pv_tls_client_verify(SSL_CTX *ctx, int depth)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, client_verify_cb);
    SSL_CTX_set_verify_depth(ctx, depth);
}

/* The lines of a password buffer, tried in turn on an encrypted key. */
typedef struct {
    const char *buf;
    size_t len, at;
} tls_pw_t;

/* The password being tried; none (0) when there are no passwords. */
static int tls_pw_cb(char *buf, int size, int rwflag, void *u)
{
    PV_UNUSED(rwflag);
    tls_pw_t *pw = u;
    if (!pw->buf || pw->at >= pw->len)
        return 0;
    const char *p = pw->buf + pw->at;
    const char *e = memchr(p, '\n', pw->len - pw->at);
    size_t n = e ? (size_t)(e - p) : pw->len - pw->at;
    if (n && p[n - 1] == '\r')
        n--;
    n = n > (size_t)size ? (size_t)size : n;
    memcpy(buf, p, n);
    return (int)n;
}

EVP_PKEY *pv_tls_read_key(BIO *bio, const char *passwords, size_t len)
{
    tls_pw_t pw = {passwords, passwords ? len : 0, 0};
    EVP_PKEY *k;
    while (!(k = PEM_read_bio_PrivateKey(bio, NULL, tls_pw_cb, &pw)) && pw.buf) {
        const char *e = memchr(pw.buf + pw.at, '\n', pw.len - pw.at);
        if (!e || (size_t)(e + 1 - pw.buf) >= pw.len)
            break;
        pw.at = (size_t)(e + 1 - pw.buf);
        ERR_clear_error();
        BIO_reset(bio);
    }
    return k;
}

static EVP_PKEY *tls_read_key(const pv_tls_cert_files_t *c)
{
    BIO *bio = BIO_new_file(c->key, "r");
    EVP_PKEY *k = bio ? pv_tls_read_key(bio, c->passwords, c->passwords_len) : NULL;
    BIO_free(bio);
    return k;
}

int pv_tls_use_cert_files(SSL *ssl, const pv_tls_cert_files_t *c)
{
    char why[256];
    if (!SSL_use_certificate_chain_file(ssl, c->cert)) {
        pv_tls_error_text(why, sizeof(why));
        pv_log(PV_LOG_ERR, "cannot load certificate \"%s\" (%s)", c->cert, why);
        return PV_ERR;
    }
    EVP_PKEY *k = tls_read_key(c);
    int ok = k && SSL_use_PrivateKey(ssl, k);
    EVP_PKEY_free(k);
    if (!ok) {
        pv_tls_error_text(why, sizeof(why));
        pv_log(PV_LOG_ERR, "cannot load certificate key \"%s\" (%s)", c->key, why);
        return PV_ERR;
    }
    return PV_OK;
}

int pv_tls_client(pv_xprt_t *x, const pv_tls_client_t *c)
{
    pv_tls_t *t = calloc(1, sizeof(*t));
    if (!t)
        return PV_ERR;
    t->ssl = SSL_new(c->ctx);
    if (c->verify_name && !(t->verify_name = strdup(c->verify_name)))
        goto fail;
    if (!t->ssl || !SSL_set_fd(t->ssl, x->io.fd))
        goto fail;
    if (c->sni && !SSL_set_tlsext_host_name(t->ssl, c->sni))
        goto fail;
    if (c->certs && c->certs->cert[0] && pv_tls_use_cert_files(t->ssl, c->certs) != PV_OK) {
        SSL_free(t->ssl);
        free(t->verify_name);
        free(t);
        errno = EINVAL;
        return PV_ERR;
    }
    if (c->session && !SSL_set_session(t->ssl, c->session))
        goto fail;
    SSL_set_connect_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    t->client = 1;
    t->mode = TLS_ON;
    t->save = c->save;
    t->save_arg = c->save_arg;
    x->ctx = t;
    x->ops = &pv_xprt_tls;
    return PV_OK;
fail:
    SSL_free(t->ssl);
    free(t->verify_name);
    free(t);
    ERR_clear_error();
    return PV_ERR;
}

int pv_tls_resumed(const pv_xprt_t *x)
{
    SSL *ssl = pv_tls_ssl(x);
    return ssl && SSL_session_reused(ssl);
}

/* proxy_ssl_verify: the chain's result and the name, as NGINX checks
 * them once the handshake is done. */
static int client_check(pv_xprt_t *x, pv_tls_t *t)
{
    if (!t->verify_name)
        return PV_OK;
    long rc = SSL_get_verify_result(t->ssl);
    if (rc != X509_V_OK) {
        snprintf(why_buf, sizeof(why_buf), "upstream SSL certificate verify error: (%ld:%s) while SSL "
                 "handshaking to upstream", rc, X509_verify_cert_error_string(rc));
        x->why = why_buf;
        return PV_ERR;
    }
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    int ok = cert && X509_check_host(cert, t->verify_name, 0, 0, NULL) == 1;
    X509_free(cert);
    if (!ok) {
        snprintf(why_buf, sizeof(why_buf), "upstream SSL certificate does not match \"%s\" while SSL "
                 "handshaking to upstream", t->verify_name);
        x->why = why_buf;
        return PV_ERR;
    }
    return PV_OK;
}

/* Drive a client handshake from a read or a write (flag and wants are
 * that direction's). PV_OK once done and checked. */
static ssize_t client_handshake(pv_xprt_t *x, pv_tls_t *t, uint8_t *flag, uint8_t *wants)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r != 1)
        return tls_fail(x, t, r, flag, wants, 0);
    x->read_wants = PV_EV_READ;
    x->write_wants = PV_EV_WRITE;
    if (client_check(x, t) != PV_OK) {
        t->failed = 1;
        errno = EPROTO;
        return PV_ERR;
    }
    t->handshaked = 1;
    free(t->verify_name);
    t->verify_name = NULL;
    SSL_SESSION *sess = SSL_get1_session(t->ssl);
    if (sess && t->save && SSL_SESSION_is_resumable(sess))
        t->save(t->save_arg, sess);
    SSL_SESSION_free(sess);
    return PV_OK;
}

/* The post-handshake function's work is over: the transport reads again. */
static void post_done(void *arg)
{
    pv_xprt_t *x = arg;
    pv_tls_t *t = x->ctx;
    t->waiting = 0;
    t->x = NULL;
    x->readable = 1;
    x->io.cb(&x->io, PV_EV_READ);
}

/* A server handshake runs to its end before anything is read, then the
 * post-handshake function (the OCSP checks of a client certificate),
 * which may hold the reads back until it is done. PV_OK to read on. */
static ssize_t server_handshake(pv_xprt_t *x, pv_tls_t *t)
{
    if (t->waiting) {
        x->readable = 0;
        return PV_AGAIN;
    }
    if (!SSL_is_init_finished(t->ssl)) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(t->ssl);
        if (r != 1)
            return tls_fail(x, t, r, &x->readable, &x->read_wants, 1);
    }
    t->checked = 1;
    int rc = post_fn ? post_fn(t->ssl, t->owner, post_done, x) : PV_OK;
    if (rc == PV_AGAIN) {
        t->waiting = 1;
        t->x = x;
        x->readable = 0;
        x->read_wants = PV_EV_READ;
        return PV_AGAIN;
    }
    if (rc != PV_OK) {
        t->failed = 1;
        errno = ENOMEM;
        return PV_ERR;
    }
    return PV_OK;
}

static ssize_t tls_read(pv_xprt_t *x, void *buf, size_t len)
{
    pv_tls_t *t = x->ctx;
    if (t->mode == TLS_SNIFF) {
        ssize_t rc = sniff(x, t);
        if (rc != PV_OK)
            return rc;
    }
    if (t->mode == TLS_PLAIN)
        return pv_xprt_plain.read(x, buf, len);
    if (t->client && !t->handshaked) {
        ssize_t rc = client_handshake(x, t, &x->readable, &x->read_wants);
        if (rc != PV_OK)
            return rc;
    }
    if (t->early) {
        ssize_t rc = read_early(x, t, buf, len);
        if (rc != PV_OK)
            return rc;
    }
    if (!t->client && (!t->checked || t->waiting)) {
        ssize_t rc = server_handshake(x, t);
        if (rc != PV_OK)
            return rc;
    }
    size_t n;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(t->ssl, buf, len, &n);
    if (r == 1) {
        x->read_wants = PV_EV_READ;
        if (!t->established && !t->client) {
            pv_count(PV_CTR_TLS_HANDSHAKES);
            if (SSL_session_reused(t->ssl))
                pv_count(PV_CTR_TLS_RESUMED);
        }
        t->established = 1;
        return (ssize_t)n;
    }
    return tls_fail(x, t, r, &x->readable, &x->read_wants, 1);
}

/* Bytes below this are gathered with their neighbours into one record
 * rather than sent as records of their own. */
#define TLS_GATHER 4096
#define TLS_RECORD 16384

/* The next span to hand SSL_write: a large first entry as it is, else
 * entries copied into tmp up to one record. The same queue gives the same
 * span, and a longer queue a span at least as long, which is what
 * OpenSSL requires when a write is repeated after SSL_ERROR_WANT_WRITE. */
static size_t gather(const struct iovec *iov, int iovcnt, size_t skip, char *tmp, const char **p)
{
    int i = 0;
    while (i < iovcnt && skip >= iov[i].iov_len)
        skip -= iov[i++].iov_len;
    if (i == iovcnt)
        return 0;
    if (iov[i].iov_len - skip >= TLS_GATHER) {
        *p = (const char *)iov[i].iov_base + skip;
        return iov[i].iov_len - skip;
    }
    size_t n = 0;
    for (; i < iovcnt && n < TLS_RECORD; i++, skip = 0) {
        size_t k = PV_MIN(iov[i].iov_len - skip, (size_t)TLS_RECORD - n);
        memcpy(tmp + n, (const char *)iov[i].iov_base + skip, k);
        n += k;
    }
    *p = tmp;
    return n;
}

static ssize_t tls_writev(pv_xprt_t *x, const struct iovec *iov, int iovcnt)
{
    pv_tls_t *t = x->ctx;
    if (t->mode != TLS_ON) {
        if (t->mode == TLS_PLAIN)
            return pv_xprt_plain.writev(x, iov, iovcnt);
        errno = ENOTCONN;
        return PV_ERR;
    }
    if (t->client && !t->handshaked) {
        ssize_t rc = client_handshake(x, t, &x->writable, &x->write_wants);
        if (rc != PV_OK)
            return rc;
    }
    char tmp[TLS_RECORD];
    size_t total = 0;
    for (;;) {
        const char *p;
        size_t len = gather(iov, iovcnt, total, tmp, &p);
        if (len == 0)
            return (ssize_t)total;
        size_t w;
        ERR_clear_error();
        errno = 0;
        /* an answer to early data goes out before the handshake ends
         * (0.5-RTT data), as SSL_write() may not be called then */
        int r = t->early ? SSL_write_early_data(t->ssl, p, len, &w) : SSL_write_ex(t->ssl, p, len, &w);
        if (r != 1) {
            ssize_t rc = tls_fail(x, t, r, &x->writable, &x->write_wants, 0);
            return total > 0 && rc == PV_AGAIN ? (ssize_t)total : rc;
        }
        x->write_wants = PV_EV_WRITE;
        t->established |= !t->early;
        total += w;
        if (w < len)
            return (ssize_t)total;
    }
}

static int tls_peek(pv_xprt_t *x)
{
    pv_tls_t *t = x->ctx;
    if (t->mode != TLS_ON || t->early || (t->client && !t->handshaked))
        return pv_xprt_plain.peek(x);
    if (SSL_pending(t->ssl) > 0)
        return 1;
    char ch;
    size_t n;
    uint8_t flag = 1, wants = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_peek_ex(t->ssl, &ch, 1, &n);
    if (r == 1)
        return 1;
    ssize_t rc = tls_fail(x, t, r, &flag, &wants, 1);
    return rc == PV_AGAIN ? PV_AGAIN : rc == 0 ? 0 : PV_ERR;
}

/* Send close_notify once, without waiting for the peer's. */
static void send_close_notify(pv_tls_t *t)
{
    if (t->ssl && SSL_is_init_finished(t->ssl) && !t->failed && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

static int tls_shutdown(pv_xprt_t *x)
{
    pv_tls_t *t = x->ctx;
    send_close_notify(t);
    return shutdown(x->io.fd, SHUT_WR) == 0 ? PV_OK : PV_ERR;
}

static void tls_close(pv_xprt_t *x)
{
    pv_tls_t *t = x->ctx;
    send_close_notify(t);
    SSL_free(t->ssl);
    free(t->verify_name);
    free(t);
    x->ctx = NULL;
    close(x->io.fd);
}

const pv_xprt_ops_t pv_xprt_tls = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .peek = tls_peek,
    .shutdown = tls_shutdown,
    .close = tls_close,
};
