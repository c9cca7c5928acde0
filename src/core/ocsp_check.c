#include "ocsp_check.h"

#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "common.h"
#include "log.h"
#include "ocsp_fetch.h"
#include "tls.h"

#define REQUEST_MAX 4096

/* ctx's settings (ex_data of the SSL_CTX). */
typedef struct {
    pv_ocsp_check_conf_t c;
    pv_ocsp_url_t url;
    struct sockaddr_storage addr;
    pv_resolver_conf_t rcf;
} conf_t;

/* One session's checks (ex_data of the SSL). */
typedef struct {
    const conf_t *cf;
    SSL_CTX *ctx;               /* whose store verifies the answers (a reference) */
    STACK_OF(X509) *certs;      /* the verified chain, leaf first */
    int n, i;                   /* its length; the next certificate to check */
    int status;                 /* PV_AGAIN while checking, then PV_OK or PV_ERR */
    int cert_status;            /* V_OCSP_CERTSTATUS_* of the first not good */
    OCSP_CERTID *id;            /* the certificate being asked about */
    pv_ocsp_fetch_t *fetch;
    pv_loop_t *loop;
    void (*done)(void *arg);    /* set once waited for */
    void *arg;
    char who[80];
} check_t;

static int conf_index = -1, check_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void check_free(check_t *k)
{
    if (k->fetch)
        pv_ocsp_fetch_cancel(k->fetch);
    OCSP_CERTID_free(k->id);
    sk_X509_pop_free(k->certs, X509_free);
    SSL_CTX_free(k->ctx);
    free(k);
}

static void free_conf(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    conf_t *cf = ptr;
    if (cf)
        pv_ocsp_cache_unref(cf->c.cache);
    free(cf);
}

static void free_check(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    if (ptr)
        check_free(ptr);
}

static void make_indexes(void)
{
    conf_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_conf);
    check_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_check);
}

int pv_ocsp_check_attach(SSL_CTX *ctx, const pv_ocsp_check_conf_t *c)
{
    pthread_once(&index_once, make_indexes);
    conf_t *cf = calloc(1, sizeof(*cf));
    if (!cf)
        return PV_ERR;
    cf->c = *c;
    if (c->url) {
        cf->url = *c->url;
        cf->c.url = &cf->url;
    }
    if (c->addr) {
        cf->addr = *c->addr;
        cf->c.addr = &cf->addr;
    }
    if (c->resolver) {
        cf->rcf = *c->resolver;
        cf->rcf.zone = NULL;
        cf->c.resolver = &cf->rcf;
    }
    if (!SSL_CTX_set_ex_data(ctx, conf_index, cf)) {
        free(cf);
        return PV_ERR;
    }
    return PV_OK;
}

static void klog(const check_t *k, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void klog(const check_t *k, int level, const char *fmt, ...)
{
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    pv_log(level, "%s while SSL handshaking%s%s", m, k->who[0] ? ", " : "", k->who);
}

/* The responder of the certificate being checked: the configured one, else
 * its AIA's first URL (an address, or a name that the resolver looks up).
 * PV_ERR after logging why there is none. */
static int responder(check_t *k, X509 *cert, pv_ocsp_url_t *u, struct sockaddr_storage *ss, pv_ocsp_peer_t *p)
{
    const pv_ocsp_check_conf_t *c = &k->cf->c;
    *p = (pv_ocsp_peer_t){.url = c->url, .addr = c->addr, .addrlen = c->addrlen, .literal = c->literal,
                          .resolver = c->resolver, .resolver_timeout = c->resolver_timeout};
    if (c->url)
        return PV_OK;
    STACK_OF(OPENSSL_STRING) *aia = X509_get1_ocsp(cert);
    const char *s = sk_OPENSSL_STRING_value(aia, 0);
    const char *why = NULL;
    int rc = PV_ERR;
    if (!s)
        klog(k, PV_LOG_ERR, "no OCSP responder URL in certificate");
    else if (pv_ocsp_url_parse(s, strlen(s), u, &why) != PV_OK)
        klog(k, PV_LOG_ERR, "%s in OCSP responder \"%s\" in certificate", why,
             strncasecmp(s, "http://", 7) == 0 ? s + 7 : s);
    else
        rc = PV_OK;
    X509_email_free(aia);
    if (rc != PV_OK)
        return rc;
    p->url = u;
    p->addr = NULL;
    p->addrlen = 0;
    p->literal = 0;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, u->name, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)u->port);
        p->addrlen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, u->name, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)u->port);
        p->addrlen = sizeof(*in6);
    }
    if (p->addrlen) {
        p->addr = ss;
        p->literal = 1;
    }
    return PV_OK;
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(t, &tm))
        return -1;
    return timegm(&tm);
}

/* The answer about k->id, as NGINX checks it: PV_OK with *status and
 * *valid (its nextUpdate), else PV_ERR (logged). */
static int verify(check_t *k, pv_ocsp_fetch_t *f, const unsigned char *der, size_t len, int *status, time_t *valid)
{
    char t[400];
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *basic = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
    int rc = PV_ERR, n;
    if (!resp) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "d2i_OCSP_RESPONSE() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if ((n = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "OCSP response not successful (%d: %s)", n, OCSP_response_status_str(n));
    } else if (!(basic = OCSP_response_get1_basic(resp))) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "OCSP_response_get1_basic() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (OCSP_basic_verify(basic, k->certs, SSL_CTX_get_cert_store(k->ctx), 0) != 1) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "OCSP_basic_verify() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (OCSP_resp_find_status(basic, k->id, status, NULL, NULL, &thisupd, &nextupd) != 1) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "certificate status not found in the OCSP response");
    } else if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "OCSP_check_validity() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (nextupd && (*valid = asn1_time(nextupd)) == (time_t)-1) {
        pv_ocsp_fetch_log(f, PV_LOG_ERR, "invalid nextUpdate time in certificate status");
    } else {
        if (!nextupd)
            *valid = (time_t)INT64_MAX;
        rc = PV_OK;
    }
    ERR_clear_error();
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* The checks are over: status is PV_OK or PV_ERR. k may be freed by
 * done(). */
static void finish(check_t *k, int status)
{
    k->status = status;
    if (k->done)
        k->done(k->arg);
}

static void next(check_t *k);

/* k->id's cache key. */
static int id_key(const check_t *k, unsigned char *key, size_t cap)
{
    int n = i2d_OCSP_CERTID(k->id, NULL);
    if (n <= 0 || (size_t)n > cap)
        return 0;
    unsigned char *p = key;
    return i2d_OCSP_CERTID(k->id, &p);
}

static void fetched(void *arg, pv_ocsp_fetch_t *f, const unsigned char *der, size_t len)
{
    check_t *k = arg;
    k->fetch = NULL;
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    time_t valid = 0;
    if (!der || verify(k, f, der, len, &status, &valid) != PV_OK) {
        finish(k, PV_ERR);
        return;
    }
    unsigned char key[256];
    int klen = k->cf->c.cache ? id_key(k, key, sizeof(key)) : 0;
    if (klen > 0)
        pv_ocsp_cache_store(k->cf->c.cache, key, (size_t)klen, status, (int64_t)valid);
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        k->cert_status = status;
        finish(k, PV_OK);
        return;
    }
    next(k);
}

/* Ask about the next certificate of the chain; the last one (the root)
 * is not asked about, nor any after the leaf with ssl_ocsp leaf. */
static void next(check_t *k)
{
    for (;;) {
        if (k->i >= k->n - 1 || (k->cf->c.mode == PV_OCSP_LEAF && k->i == 1)) {
            finish(k, PV_OK);
            return;
        }
        X509 *cert = sk_X509_value(k->certs, k->i), *issuer = sk_X509_value(k->certs, k->i + 1);
        pv_ocsp_url_t u;
        struct sockaddr_storage ss;
        pv_ocsp_peer_t p;
        if (responder(k, cert, &u, &ss, &p) != PV_OK) {
            finish(k, PV_ERR);
            return;
        }
        k->i++;
        OCSP_CERTID_free(k->id);
        k->id = OCSP_cert_to_id(NULL, cert, issuer);
        if (!k->id) {
            finish(k, PV_ERR);
            return;
        }
        unsigned char key[256];
        int klen = k->cf->c.cache ? id_key(k, key, sizeof(key)) : 0, status;
        if (klen > 0 && pv_ocsp_cache_lookup(k->cf->c.cache, key, (size_t)klen, &status)) {
            if (status == V_OCSP_CERTSTATUS_GOOD)
                continue;
            k->cert_status = status;
            finish(k, PV_OK);
            return;
        }
        char req[REQUEST_MAX];
        long len = pv_ocsp_request_for(p.url, k->id, req, sizeof(req));
        if (len < 0 || !(k->fetch = pv_ocsp_fetch(k->loop, &p, req, (size_t)len, NULL, fetched, k))) {
            finish(k, PV_ERR);
            return;
        }
        return;
    }
}

/* The chain the certificate verified with: the session's, or, for a
 * resumed session, built again from the store. */
static STACK_OF(X509) *verified_chain(SSL *ssl, SSL_CTX *ctx, X509 *cert)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    if (chain)
        return X509_chain_up_ref(chain);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    if (sc && X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), cert, SSL_get_peer_cert_chain(ssl)) == 1 &&
        X509_verify_cert(sc) > 0)
        chain = X509_STORE_CTX_get1_chain(sc);
    X509_STORE_CTX_free(sc);
    ERR_clear_error();
    return chain;
}

int pv_ocsp_check_start(SSL *ssl, pv_loop_t *loop, const char *who, void (*done)(void *arg), void *arg)
{
    pthread_once(&index_once, make_indexes);
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    const conf_t *cf = SSL_CTX_get_ex_data(ctx, conf_index);
    if (!cf || SSL_get_ex_data(ssl, check_index) || SSL_get_verify_result(ssl) != X509_V_OK)
        return PV_OK;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return PV_OK;
    check_t *k = calloc(1, sizeof(*k));
    if (!k || !SSL_set_ex_data(ssl, check_index, k)) {
        free(k);
        X509_free(cert);
        return PV_ERR;
    }
    k->cf = cf;
    k->ctx = ctx;
    SSL_CTX_up_ref(ctx);
    k->loop = loop;
    k->status = PV_AGAIN;
    k->cert_status = V_OCSP_CERTSTATUS_GOOD;
    snprintf(k->who, sizeof(k->who), "%s", who ? who : "");
    k->certs = verified_chain(ssl, ctx, cert);
    X509_free(cert);
    if (!k->certs) {
        klog(k, PV_LOG_ERR, "X509_verify_cert() failed");
        k->status = PV_ERR;
        return PV_OK;
    }
    k->n = sk_X509_num(k->certs);
    next(k);
    if (k->status != PV_AGAIN)
        return PV_OK;
    k->done = done;
    k->arg = arg;
    return PV_AGAIN;
}

const char *pv_ocsp_check_failure(SSL *ssl)
{
    if (check_index < 0)
        return NULL;
    const check_t *k = SSL_get_ex_data(ssl, check_index);
    if (!k)
        return NULL;
    if (k->status == PV_ERR)
        return "certificate status request failed";
    switch (k->cert_status) {
    case V_OCSP_CERTSTATUS_GOOD:
        return NULL;
    case V_OCSP_CERTSTATUS_REVOKED:
        return "certificate revoked";
    default:
        return "certificate status unknown";
    }
}
