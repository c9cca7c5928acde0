/* TLS on the HTTP side: the server block a ClientHello's SNI name picks
 * (its certificates and client-certificate settings then apply), and the
 * post-read checks NGINX makes of a TLS address before a request runs:
 * plain HTTP on it (497), a client certificate that did not verify (495)
 * or is missing (496), each answered with NGINX's 400 page, and a Host
 * other than the SNI name naming a server that checks client
 * certificates (421). The request itself is routed by its Host, as NGINX
 * routes it. */
#include "ssl.h"

#include <stdio.h>
#include <string.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "../core/log.h"
#include "../core/net.h"
#include "../core/stapling.h"
#include "../core/ocsp_check.h"
#include "../core/ocsp_fetch.h"
#include "../core/tls.h"
#include "../core/arena.h"
#include "../core/tls_cert.h"
#include "errpage.h"
#include "router.h"
#include "server.h"
#include "uri.h"
#include "vars.h"
#include "accesslog.h"

/* The SNI function: the server named picks the SSL_CTX (certificates)
 * and the client-certificate settings, as ngx_http_ssl_servername(); a
 * server with ssl_reject_handshake on (the default server when no name
 * is sent) ends the handshake with an unrecognized_name alert. */
static int sni_choose(SSL *ssl, void *owner, const char *name)
{
    pv_hconn_t *c = owner;
    const pv_listen_group_t *g = &c->w->conf->http->listens[c->group];
    if (!name) /* ssl_reject_handshake of the default server */
        return g->default_srv->ssl.reject_handshake ? PV_ERR : PV_OK;
    size_t len = strlen(name);
    char low[256];
    if (len == 0 || len >= sizeof(low) || pv_uri_host_normalize(name, len, low, &len) != 0)
        return PV_ERR;
    const pv_server_t *s = pv_router_find_server(g, (pv_str_t){low, len});
    if (s->ssl.reject_handshake)
        return PV_ERR;
    SSL_CTX *ctx = s->ssl.ctx;
    if (!ctx || ctx == SSL_get_SSL_CTX(ssl))
        return PV_OK;
    if (!SSL_set_SSL_CTX(ssl, ctx))
        return PV_ERR;
    /* what SSL_set_SSL_CTX leaves as the first context set it */
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
    SSL_clear_options(ssl, SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
    SSL_set_options(ssl, SSL_CTX_get_options(ctx));
    return PV_OK;
}

static void peer_text(void *owner, char *buf, size_t len);

/* One ssl_certificate / _key value for this handshake: evaluated when it
 * has variables, under the prefix when relative and not "data:". */
static const char *cert_name(pv_request_t *r, const pv_ssl_conf_t *sc, const pv_ssl_file_t *f)
{
    if (!f->cv)
        return f->path;
    size_t n = pv_cv_eval(f->cv, r, PV_ESCAPE_NONE, NULL, 0);
    char *v = pv_arena_alloc(r->arena, n + 1);
    if (!v)
        return NULL;
    pv_cv_eval(f->cv, r, PV_ESCAPE_NONE, v, n + 1);
    v[n] = 0;
    if (v[0] == '/' || strncmp(v, "data:", 5) == 0)
        return v;
    return pv_arena_printf(r->arena, "%s/%s", sc->prefix, v);
}

/* The server whose certificates a handshake of c takes, in the worker's
 * current snapshot (the session's SSL_CTX may be an older one's): the
 * one its SNI name picks when that one has certificates, else the
 * address's default, as sni_choose() switches. */
static const pv_server_t *cert_server(SSL *ssl, const pv_hconn_t *c)
{
    const pv_listen_group_t *g = &c->w->conf->http->listens[c->group];
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char low[256];
    size_t len = name ? strlen(name) : 0;
    if (!len || len >= sizeof(low) || pv_uri_host_normalize(name, len, low, &len) != 0)
        return g->default_srv;
    const pv_server_t *s = pv_router_find_server(g, (pv_str_t){low, len});
    return s->ssl.ctx ? s : g->default_srv;
}

/* The certificate callback of a server whose certificates have
 * variables: a request made for the connection (as NGINX makes one)
 * evaluates them, and each pair is loaded onto the session. */
static int cert_choose(SSL *ssl, void *owner)
{
    pv_hconn_t *c = owner;
    const pv_server_t *s = cert_server(ssl, c);
    const pv_ssl_conf_t *sc = &s->ssl;
    pv_hreq_t *hr = pv_server_req_new(c->w, c->group, &c->peer, c->id, c->nreq);
    if (!hr)
        return PV_ERR;
    hr->r.xprt = &c->x;
    hr->r.srv = (pv_server_t *)s;
    hr->r.conn_start_ns = c->start_ns;
    char who[80];
    peer_text(c, who, sizeof(who));
    int rc = sc->ncerts ? PV_OK : PV_ERR;
    for (int i = 0; i < sc->ncerts && i < sc->nkeys && rc == PV_OK; i++) {
        const char *cert = cert_name(&hr->r, sc, &sc->certs[i]);
        const char *key = cert_name(&hr->r, sc, &sc->keys[i]);
        rc = cert && key ? pv_tls_cert_use(ssl, cert, key, sc->passwords, sc->passwords_len, who) : PV_ERR;
    }
    pv_server_req_free(hr);
    return rc;
}

static void peer_text(void *owner, char *buf, size_t len)
{
    const pv_hconn_t *c = owner;
    char addr[48];
    pv_net_addr_text((const struct sockaddr *)&c->peer, addr, sizeof(addr));
    snprintf(buf, len, "client: %s", addr);
}

int pv_http_ssl_accept(pv_hconn_t *c, const pv_listen_group_t *g)
{
    if (!g->listen.ssl)
        return PV_OK;
    return pv_tls_server(&c->x, g->default_srv->ssl.ctx, c);
}

/* Errors X509 may report that ssl_verify_client optional_no_ca lets by
 * (ngx_ssl_verify_error_optional()). */
static int verify_error_optional(long n)
{
    return n == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || n == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           n == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || n == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           n == X509_V_ERR_CERT_UNTRUSTED || n == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

/* A Host other than an SNI name that named a server, when the Host's
 * server (or the default) checks client certificates: the certificate
 * was checked against the SNI server's settings, so NGINX answers 421
 * (ngx_http_set_virtual_server()). */
static int misdirected(const pv_hreq_t *hr, SSL *ssl)
{
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!sni || hr->r.srv->ssl.verify_client == PV_VERIFY_OFF)
        return 0;
    char low[256];
    size_t len = strlen(sni);
    if (len >= sizeof(low) || pv_uri_host_normalize(sni, len, low, &len) != 0)
        return 0;
    if (len == hr->r.host.len && memcmp(low, hr->r.host.p, len) == 0)
        return 0;
    return pv_router_match_server(hr->lgroup, (pv_str_t){low, len}) != NULL;
}

/* Methods a replayed copy of cannot harm (RFC 8470 5.1: safe methods);
 * others sent as TLS 1.3 early data get 425 Too Early. */
static int replay_safe(const pv_request_t *r)
{
    static const char *const safe[] = {"GET", "HEAD", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < PV_NELEM(safe); i++)
        if (r->method.len == strlen(safe[i]) && memcmp(r->method.p, safe[i], r->method.len) == 0)
            return 1;
    return 0;
}

/* Post-read, once the Host chose the server block. */
static int check_tls(pv_hreq_t *hr)
{
    const pv_xprt_t *x = hr->r.xprt; /* the connection's, whatever the protocol */
    if (pv_tls_is_plain(x)) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent plain HTTP request to HTTPS port, client: %s", pv_log_client(&hr->r));
        pv_server_error(hr, PV_HTTP_TO_HTTPS);
        return PV_PHASE_DONE;
    }
    SSL *ssl = pv_tls_ssl(x);
    if (ssl && misdirected(hr, ssl)) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client attempted to request the server name different from the one "
               "that was negotiated, client: %s", pv_log_client(&hr->r));
        pv_resp_local(hr, 421, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (ssl && !SSL_is_init_finished(ssl) && hr->r.srv->ssl.early_data && !replay_safe(&hr->r)) {
        pv_resp_local(hr, 425, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    int verify = hr->r.srv->ssl.verify_client;
    if (!ssl || verify == PV_VERIFY_OFF)
        return PV_PHASE_NEXT;
    long rc = SSL_get_verify_result(ssl);
    if (rc != X509_V_OK && (verify != PV_VERIFY_OPTIONAL_NO_CA || !verify_error_optional(rc))) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client SSL certificate verify error: (%ld:%s), client: %s", rc,
               X509_verify_cert_error_string(rc), pv_log_client(&hr->r));
        SSL_CTX_remove_session(pv_tls_session_ctx(ssl), SSL_get0_session(ssl));
        pv_server_error(hr, PV_HTTPS_CERT_ERROR);
        return PV_PHASE_DONE;
    }
    if (verify == PV_VERIFY_ON && !SSL_get0_peer_certificate(ssl)) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent no required SSL certificate, client: %s", pv_log_client(&hr->r));
        SSL_CTX_remove_session(pv_tls_session_ctx(ssl), SSL_get0_session(ssl));
        pv_server_error(hr, PV_HTTPS_NO_CERT);
        return PV_PHASE_DONE;
    }
    const char *why = pv_ocsp_check_failure(ssl);
    if (why) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client SSL certificate verify error: %s, client: %s", why,
                 pv_log_client(&hr->r));
        SSL_CTX_remove_session(pv_tls_session_ctx(ssl), SSL_get0_session(ssl));
        pv_server_error(hr, PV_HTTPS_CERT_ERROR);
        return PV_PHASE_DONE;
    }
    return PV_PHASE_NEXT;
}

/* Once a handshake is done: ssl_ocsp's checks of the client's
 * certificate, on the connection's worker loop; nothing is read until
 * they are over. */
static int post_handshake(SSL *ssl, void *owner, void (*resume)(void *arg), void *arg)
{
    pv_hconn_t *c = owner;
    if (!c)
        return PV_OK;
    char who[80];
    peer_text(c, who, sizeof(who));
    return pv_ocsp_check_start(ssl, c->w->loop, who, resume, arg);
}

static int mod_init(void)
{
    pv_tls_set_hooks(sni_choose, peer_text);
    pv_tls_cert_hook(cert_choose);
    pv_tls_set_post_handshake(post_handshake);
    pv_phases_register(PV_PHASE_POST_READ, check_tls);
    return PV_OK;
}

/* Fetches of OCSP responses (ssl_stapling) run on the worker's loop. */
static int worker_init(pv_worker_t *w)
{
    pv_stapling_thread_init(w->loop);
    return PV_OK;
}

static void worker_exit(pv_worker_t *w)
{
    pv_stapling_thread_exit();
    pv_ocsp_fetch_thread_exit();
    pv_tls_cert_cache_clear();
}

pv_module_t pv_http_ssl_module = {
    .name = "http_ssl",
    .init = mod_init,
    .worker_init = worker_init,
    .worker_exit = worker_exit,
};
