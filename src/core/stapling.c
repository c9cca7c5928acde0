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
#include "tls.h"

#define FETCH_TIMEOUT 60000  /* ms for connect, request and answer (NGINX's staple timeout) */
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
    pv_ocsp_url_t url;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int literal;
    int has_resolver;
    pv_resolver_conf_t rcf;
    int64_t resolver_timeout;
    size_t reqlen;
    char request[];
} staple_t;

/* One fetch under way on a worker's loop. */
typedef struct fetch_s {
    struct fetch_s *prev, *next;    /* the thread's fetches */
    staple_t *st;
    pv_loop_t *loop;
    pv_io_t io;
    pv_timer_t timer;
    pv_resolve_wait_t *wait;
    int connected;
    size_t sent, got;
    char peer[64];
    unsigned char buf[PV_OCSP_RESPONSE_MAX];
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

static void flog(const fetch_t *f, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A line with NGINX's context for a fetch. */
static void flog(const fetch_t *f, int level, const char *fmt, ...)
{
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (f->peer[0])
        pv_log(level, "%s while requesting certificate status, responder: %s, peer: %s, certificate: \"%s\"", m,
               f->st->url.host, f->peer, f->st->name);
    else
        pv_log(level, "%s while requesting certificate status, responder: %s, certificate: \"%s\"", m,
               f->st->url.host, f->st->name);
}

/* The fetch ends; the staple is retried at refresh. */
static void fetch_end(fetch_t *f, const unsigned char *der, size_t len, time_t valid)
{
    if (f->wait)
        pv_resolve_cancel(f->wait);
    if (f->io.fd >= 0) {
        pv_loop_del(f->loop, &f->io);
        close(f->io.fd);
    }
    pv_timer_del(f->loop, &f->timer);
    if (f->prev)
        f->prev->next = f->next;
    else
        fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
    staple_t *st = f->st;
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
    staple_unref(st);
    free(f);
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!ASN1_TIME_to_tm(t, &tm))
        return -1;
    return timegm(&tm);
}

/* Checks of the response, as NGINX makes them; its nextUpdate in
 * *valid. NULL when it is to be stapled, else why not (logged). */
static int check_response(fetch_t *f, const unsigned char *der, size_t len, time_t *valid)
{
    staple_t *st = f->st;
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

/* The responder closed: the answer is whole. */
static void answered(fetch_t *f)
{
    pv_ocsp_http_t h;
    int rc = pv_ocsp_http_parse(f->buf, f->got, &h);
    time_t valid = 0;
    if (rc == PV_AGAIN)
        flog(f, PV_LOG_ERR, "OCSP responder prematurely closed connection");
    else if (rc != PV_OK)
        flog(f, PV_LOG_ERR, "OCSP responder sent invalid response");
    else if (h.ctype)
        flog(f, PV_LOG_ERR, "OCSP responder sent invalid \"Content-Type\" header: \"%.*s\"", (int)h.ctype_len,
             h.ctype);
    else if (h.code != 200)
        flog(f, PV_LOG_ERR, "OCSP responder sent status %d", h.code);
    else if (check_response(f, f->buf + h.body, f->got - h.body, &valid)) {
        fetch_end(f, f->buf + h.body, f->got - h.body, valid);
        return;
    }
    fetch_end(f, NULL, 0, 0);
}

static void fetch_io(pv_io_t *io, unsigned events)
{
    fetch_t *f = io->data;
    staple_t *st = f->st;
    if (!f->connected) {
        int err = pv_net_sock_error(io->fd);
        if (err) {
            /* NGINX meets a refused connect in its first read */
            flog(f, PV_LOG_ERR, "recv() failed (%d: %s)", err, strerror(err));
            flog(f, PV_LOG_ERR, "OCSP responder prematurely closed connection");
            fetch_end(f, NULL, 0, 0);
            return;
        }
        if (!(events & (PV_EV_WRITE | PV_EV_READ)))
            return;
        f->connected = 1;
    }
    while (f->sent < st->reqlen) {
        ssize_t n = send(io->fd, st->request + f->sent, st->reqlen - f->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            flog(f, PV_LOG_ERR, "send() failed (%d: %s)", errno, strerror(errno));
            fetch_end(f, NULL, 0, 0);
            return;
        }
        f->sent += (size_t)n;
    }
    for (;;) {
        if (f->got == sizeof(f->buf)) {
            flog(f, PV_LOG_ERR, "OCSP responder sent too large response");
            fetch_end(f, NULL, 0, 0);
            return;
        }
        ssize_t n = recv(io->fd, f->buf + f->got, sizeof(f->buf) - f->got, 0);
        if (n > 0) {
            f->got += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            flog(f, PV_LOG_ERR, "recv() failed (%d: %s)", errno, strerror(errno));
            fetch_end(f, NULL, 0, 0);
            return;
        }
        answered(f);
        return;
    }
}

static void fetch_timeout(pv_timer_t *t)
{
    fetch_t *f = t->data;
    flog(f, PV_LOG_ERR, "OCSP responder timed out (110: Connection timed out)");
    fetch_end(f, NULL, 0, 0);
}

static void fetch_connect(fetch_t *f, const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    uint16_t port = pv_net_addr_text(sa, host, sizeof(host));
    snprintf(f->peer, sizeof(f->peer), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    int fd = pv_net_connect(sa, len);
    if (fd < 0) {
        flog(f, PV_LOG_ERR, "connect() failed (%d: %s)", errno, strerror(errno));
        fetch_end(f, NULL, 0, 0);
        return;
    }
    f->io.fd = fd;
    if (pv_loop_add(f->loop, &f->io) != PV_OK) {
        flog(f, PV_LOG_ERR, "epoll_ctl() failed (%d: %s)", errno, strerror(errno));
        fetch_end(f, NULL, 0, 0);
        return;
    }
    pv_timer_set(f->loop, &f->timer, FETCH_TIMEOUT);
}

static void resolved(void *data, const pv_resolved_t *res)
{
    fetch_t *f = data;
    f->wait = NULL;
    if (res->status != PV_RESOLVE_OK || res->naddrs == 0) {
        flog(f, PV_LOG_ERR, "%s could not be resolved (%d: %s)", f->st->url.name, pv_resolve_code(res->status),
             pv_resolve_strerror(res->status));
        fetch_end(f, NULL, 0, 0);
        return;
    }
    /* the first address, as NGINX connects */
    struct sockaddr_storage ss = res->addrs[0];
    uint16_t port = htons((uint16_t)f->st->url.port);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = port;
    else
        ((struct sockaddr_in *)&ss)->sin_port = port;
    fetch_connect(f, (const struct sockaddr *)&ss, res->lens[0]);
}

/* Start a fetch of st on this worker's loop (st->loading is set). */
static void fetch_start(staple_t *st)
{
    fetch_t *f = calloc(1, sizeof(*f));
    if (!f) {
        pthread_mutex_lock(&st->lock);
        st->loading = 0;
        pthread_mutex_unlock(&st->lock);
        return;
    }
    atomic_fetch_add(&st->refs, 1);
    f->st = st;
    f->loop = tloop;
    f->io = (pv_io_t){.fd = -1, .cb = fetch_io, .data = f};
    pv_timer_init(&f->timer, fetch_timeout, f);
    f->next = fetches;
    if (fetches)
        fetches->prev = f;
    fetches = f;
    if (st->literal) {
        fetch_connect(f, (const struct sockaddr *)&st->addr, st->addrlen);
        return;
    }
    pv_resolver_t *r = st->has_resolver ? pv_resolver_get(tloop, &st->rcf) : NULL;
    if (!st->has_resolver) {
        flog(f, PV_LOG_WARN, "no resolver defined to resolve %s", st->url.name);
        fetch_connect(f, (const struct sockaddr *)&st->addr, st->addrlen);
        return;
    }
    pv_resolve_wait_t *w = NULL;
    if (!r || pv_resolve(r, st->url.name, st->resolver_timeout, resolved, f, &w) == PV_ERR) {
        flog(f, PV_LOG_ERR, "out of memory resolving %s", st->url.name);
        fetch_end(f, NULL, 0, 0);
        return;
    }
    /* PV_OK: resolved() ran (and may have ended the fetch) */
    if (w)
        f->wait = w;
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

/* The DER OCSP request for st->id into st->request as a GET. */
static int make_request(staple_t *st, size_t cap)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_CERTID_dup(st->id);
    if (!req || !id || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(req);
        return PV_ERR;
    }
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);
    OCSP_REQUEST_free(req);
    if (n <= 0)
        return PV_ERR;
    long len = pv_ocsp_request_text(&st->url, der, (size_t)n, st->request, cap);
    OPENSSL_free(der);
    if (len < 0)
        return PV_ERR;
    st->reqlen = (size_t)len;
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
    st->url = *sc->url;
    st->addr = *sc->addr;
    st->addrlen = sc->addrlen;
    st->literal = sc->literal;
    if (sc->resolver) {
        st->has_resolver = 1;
        st->rcf = *sc->resolver;
        st->rcf.zone = NULL;
    }
    st->resolver_timeout = sc->resolver_timeout;
    if (!st->chain || !st->store || !st->id || !st->name || make_request(st, REQUEST_MAX) != PV_OK ||
        !X509_set_ex_data(cert, cert_index, st)) {
        staple_unref(st);
        return PV_ERR;
    }
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
    while (fetches)
        fetch_end(fetches, NULL, 0, 0);
    tloop = NULL;
}
