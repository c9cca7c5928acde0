#include "stapling.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "common.h"
#include "log.h"
#include "net.h"
#include "ocsp_fetch.h"
#include "tls.h"

#define REQUEST_MAX 4096

/* A response read from ssl_stapling_file, per SSL_CTX. */
typedef struct {
    size_t len;
    unsigned char der[];
} file_staple_t;

/* A fetched response, per certificate; shared by the workers. */
typedef struct staple_s {
    pthread_mutex_t lock;
    atomic_int refs;                /* the certificate, and a fetch under way */
    unsigned char *der;             /* the response stapled, or NULL */
    size_t len;
    time_t valid;                   /* stapled until then (nextUpdate) */
    time_t refresh;                 /* fetched again after then */
    int loading;                    /* a worker is fetching */
    /* set at load, read only after */
    OCSP_CERTID *id;
    STACK_OF(X509) *chain;
    X509_STORE *store;
    int verify;
    char *name;
    pv_ocsp_responder_t peer;
    size_t reqlen;
    char request[];
} staple_t;

/* One fetch under way on this worker's loop. */
typedef struct fetch_s {
    struct fetch_s *prev, *next;    /* the thread's fetches */
    staple_t *st;
    pv_ocsp_fetch_t *f;
} fetch_t;

static int file_index = -1, cert_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static __thread pv_loop_t *tloop;
static __thread fetch_t *fetches;

static void staple_unref(staple_t *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    free(st->der);
    OCSP_CERTID_free(st->id);
    sk_X509_pop_free(st->chain, X509_free);
    X509_STORE_free(st->store);
    free(st->name);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void free_file(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void free_cert(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    staple_unref(ptr);
}

static void make_indexes(void)
{
    file_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_file);
    cert_index = X509_get_ex_new_index(0, NULL, NULL, NULL, free_cert);
}

/* ---- a fetch --------------------------------------------------------------- */

/* The staple's fetch is over: the response (NULL: none) and its
 * nextUpdate; it is retried at refresh. */
static void staple_fetched(staple_t *st, const unsigned char *der, size_t len, time_t valid)
{
    time_t now = time(NULL);
    unsigned char *copy = der ? malloc(len) : NULL;
    if (copy)
        memcpy(copy, der, len);
    pthread_mutex_lock(&st->lock);
    st->loading = 0;
    if (copy) {
        free(st->der);
        st->der = copy;
        st->len = len;
        st->valid = valid;
        /* before it expires, not sooner than in 5 minutes, within the hour */
        time_t at = valid - 300 < now + 3600 ? valid - 300 : now + 3600;
        st->refresh = at > now + 300 ? at : now + 300;
    } else {
        st->refresh = now + 300;
    }
    pthread_mutex_unlock(&st->lock);
}

static void fetch_unlink(fetch_t *sf)
{
    if (sf->prev)
        sf->prev->next = sf->next;
    else
        fetches = sf->next;
    if (sf->next)
        sf->next->prev = sf->prev;
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(t, &tm))
        return -1;
    return timegm(&tm);
}

#define flog pv_ocsp_fetch_log

/* Checks of the response, as NGINX makes them; its nextUpdate in
 * *valid. 1 when it is to be stapled, else 0 (why is logged). */
static int check_response(staple_t *st, pv_ocsp_fetch_t *f, const unsigned char *der, size_t len, time_t *valid)
{
    char t[400];
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *basic = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
    int ok = 0, n;
    if (!resp) {
        flog(f, PV_LOG_ERR, "d2i_OCSP_RESPONSE() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if ((n = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        flog(f, PV_LOG_ERR, "OCSP response not successful (%d: %s)", n, OCSP_response_status_str(n));
    } else if (!(basic = OCSP_response_get1_basic(resp))) {
        flog(f, PV_LOG_ERR, "OCSP_response_get1_basic() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (OCSP_basic_verify(basic, st->chain, st->store, st->verify ? OCSP_TRUSTOTHER : OCSP_NOVERIFY) != 1) {
        flog(f, PV_LOG_ERR, "OCSP_basic_verify() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (OCSP_resp_find_status(basic, st->id, &n, NULL, NULL, &thisupd, &nextupd) != 1) {
        flog(f, PV_LOG_ERR, "certificate status not found in the OCSP response");
    } else if (n != V_OCSP_CERTSTATUS_GOOD) {
        flog(f, PV_LOG_ERR, "certificate status \"%s\" in the OCSP response", OCSP_cert_status_str(n));
    } else if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1) {
        flog(f, PV_LOG_ERR, "OCSP_check_validity() failed (%s)", pv_tls_error_text(t, sizeof(t)));
    } else if (nextupd && (*valid = asn1_time(nextupd)) == (time_t)-1) {
        flog(f, PV_LOG_ERR, "invalid nextUpdate time in certificate status");
    } else {
        if (!nextupd)
            *valid = (time_t)INT64_MAX;
        ok = 1;
    }
    ERR_clear_error();
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return ok;
}

static void fetched(void *arg, pv_ocsp_fetch_t *f, const unsigned char *der, size_t len)
{
    fetch_t *sf = arg;
    staple_t *st = sf->st;
    time_t valid = 0;
    if (der && !check_response(st, f, der, len, &valid))
        der = NULL;
    staple_fetched(st, der, len, valid);
    fetch_unlink(sf);
    staple_unref(st);
    free(sf);
}

/* Start a fetch of st on this worker's loop (st->loading is set). */
static void fetch_start(staple_t *st)
{
    fetch_t *sf = calloc(1, sizeof(*sf));
    pv_ocsp_peer_t p = pv_ocsp_responder_peer(&st->peer);
    if (sf)
        sf->f = pv_ocsp_fetch(tloop, &p, st->request, st->reqlen, st->name, fetched, sf);
    if (!sf || !sf->f) {
        free(sf);
        staple_fetched(st, NULL, 0, 0);
        return;
    }
    atomic_fetch_add(&st->refs, 1);
    sf->st = st;
    sf->next = fetches;
    if (fetches)
        fetches->prev = sf;
    fetches = sf;
}

/* ---- the status callback ----------------------------------------------------- */

static int staple_copy(SSL *ssl, const unsigned char *der, size_t len)
{
    unsigned char *p = OPENSSL_malloc(len);
    if (!p)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(p, der, len);
    if (!SSL_set_tlsext_status_ocsp_resp(ssl, p, (long)len)) {
        OPENSSL_free(p);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int status_cb(SSL *ssl, void *arg)
{
    X509 *cert = SSL_get_certificate(ssl);
    staple_t *st = cert ? X509_get_ex_data(cert, cert_index) : NULL;
    if (!st) {
        const file_staple_t *fs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), file_index);
        return fs ? staple_copy(ssl, fs->der, fs->len) : SSL_TLSEXT_ERR_NOACK;
    }
    int rc = SSL_TLSEXT_ERR_NOACK, start = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&st->lock);
    if (st->der && st->valid >= now)
        rc = staple_copy(ssl, st->der, st->len);
    if (tloop && !st->loading && st->refresh < now)
        start = st->loading = 1;
    pthread_mutex_unlock(&st->lock);
    if (start)
        fetch_start(st);
    return rc;
}

/* ---- load ------------------------------------------------------------------- */

int pv_stapling_attach_file(SSL_CTX *ctx, const unsigned char *der, size_t len)
{
    pthread_once(&index_once, make_indexes);
    file_staple_t *fs = malloc(sizeof(*fs) + len);
    if (!fs)
        return PV_ERR;
    fs->len = len;
    memcpy(fs->der, der, len);
    if (!SSL_CTX_set_ex_data(ctx, file_index, fs)) {
        free(fs);
        return PV_ERR;
    }
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    return PV_OK;
}

int pv_stapling_attach(SSL_CTX *ctx, X509 *cert, X509 *issuer, const pv_stapling_conf_t *sc)
{
    pthread_once(&index_once, make_indexes);
    staple_t *st = calloc(1, sizeof(*st) + REQUEST_MAX);
    if (!st)
        return PV_ERR;
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->refs, 1);
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    st->chain = chain ? X509_chain_up_ref(chain) : sk_X509_new_null();
    st->store = SSL_CTX_get_cert_store(ctx);
    if (st->store)
        X509_STORE_up_ref(st->store);
    st->id = OCSP_cert_to_id(NULL, cert, issuer);
    st->name = strdup(sc->name);
    st->verify = sc->verify;
    pv_ocsp_peer_t p = {.url = sc->url, .addr = sc->addr, .addrlen = sc->addrlen, .literal = sc->literal,
                        .resolver = sc->resolver, .resolver_timeout = sc->resolver_timeout};
    pv_ocsp_responder_keep(&st->peer, &p);
    long len = 0;
    if (!st->chain || !st->store || !st->id || !st->name || (len = pv_ocsp_request_for(&st->peer.url, st->id, st->request, REQUEST_MAX)) < 0 ||
        !X509_set_ex_data(cert, cert_index, st)) {
        staple_unref(st);
        return PV_ERR;
    }
    st->reqlen = (size_t)len;
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    return PV_OK;
}

void pv_stapling_thread_init(pv_loop_t *l)
{
    pthread_once(&index_once, make_indexes);
    tloop = l;
}

void pv_stapling_thread_exit(void)
{
    while (fetches) {
        fetch_t *sf = fetches;
        pv_ocsp_fetch_cancel(sf->f);
        staple_fetched(sf->st, NULL, 0, 0);
        fetch_unlink(sf);
        staple_unref(sf->st);
        free(sf);
    }
    tloop = NULL;
}
