#include "ocsp_fetch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <openssl/ocsp.h>

#include "common.h"
#include "log.h"
#include "net.h"

#define REQUEST_MAX 4096

struct pv_ocsp_fetch_s {
    pv_loop_t *loop;
    pv_io_t io;
    pv_timer_t timer;           /* the start (0 ms), then the whole fetch's timeout */
    pv_resolve_wait_t *wait;
    pv_ocsp_responder_t to;
    int started, connected;
    int cancelled;              /* dropped by its owner: freed on the timer */
    struct pv_ocsp_fetch_s *gprev, *gnext; /* the thread's cancelled fetches */
    pv_ocsp_fetch_fn done;
    void *arg;
    char name[512];             /* the certificate's file, or "" */
    char peer[64];
    size_t reqlen, sent, got;
    char request[REQUEST_MAX];
    unsigned char buf[PV_OCSP_RESPONSE_MAX];
};

#define flog pv_ocsp_fetch_log

/* Fetches dropped by their owner from outside their own callbacks: an
 * event of theirs may still wait in the loop's current batch, so they
 * are freed by a timer, which runs after it (or at thread exit). */
static __thread pv_ocsp_fetch_t *graveyard;
static __thread int exiting;

void pv_ocsp_fetch_log(const pv_ocsp_fetch_t *f, int level, const char *fmt, ...)
{
    char m[700], cert[600] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (f->name[0])
        snprintf(cert, sizeof(cert), ", certificate: \"%s\"", f->name);
    pv_log(level, "%s while requesting certificate status, responder: %s%s%s%s", m, f->to.url.host,
           f->peer[0] ? ", peer: " : "", f->peer, cert);
}

/* Stop watching and timing f. */
static void detach(pv_ocsp_fetch_t *f)
{
    if (f->wait)
        pv_resolve_cancel(f->wait);
    f->wait = NULL;
    if (f->io.fd >= 0) {
        pv_loop_del(f->loop, &f->io);
        close(f->io.fd);
        f->io.fd = -1;
    }
    pv_timer_del(f->loop, &f->timer);
}

static void bury(pv_ocsp_fetch_t *f)
{
    if (f->gprev)
        f->gprev->gnext = f->gnext;
    else
        graveyard = f->gnext;
    if (f->gnext)
        f->gnext->gprev = f->gprev;
    free(f);
}

void pv_ocsp_fetch_cancel(pv_ocsp_fetch_t *f)
{
    detach(f);
    if (exiting) {
        free(f);
        return;
    }
    f->cancelled = 1;
    f->gprev = NULL;
    f->gnext = graveyard;
    if (graveyard)
        graveyard->gprev = f;
    graveyard = f;
    pv_timer_set(f->loop, &f->timer, 0);
}

void pv_ocsp_fetch_thread_exit(void)
{
    exiting = 1;
    while (graveyard) {
        pv_ocsp_fetch_t *f = graveyard;
        graveyard = f->gnext;
        free(f);
    }
}

/* From f's own event or timer: nothing of f waits in the loop. */
static void end(pv_ocsp_fetch_t *f, const unsigned char *der, size_t len)
{
    f->done(f->arg, f, der, len);
    detach(f);
    free(f);
}

/* The responder closed: the answer is whole. */
static void answered(pv_ocsp_fetch_t *f)
{
    pv_ocsp_http_t h;
    int rc = pv_ocsp_http_parse(f->buf, f->got, &h);
    if (rc == PV_AGAIN)
        flog(f, PV_LOG_ERR, "OCSP responder prematurely closed connection");
    else if (rc != PV_OK)
        flog(f, PV_LOG_ERR, "OCSP responder sent invalid response");
    else if (h.ctype)
        flog(f, PV_LOG_ERR, "OCSP responder sent invalid \"Content-Type\" header: \"%.*s\"", (int)h.ctype_len,
             h.ctype);
    else if (h.code != 200)
        flog(f, PV_LOG_ERR, "OCSP responder sent status %d", h.code);
    else {
        end(f, f->buf + h.body, f->got - h.body);
        return;
    }
    end(f, NULL, 0);
}

static void fetch_io(pv_io_t *io, unsigned events)
{
    pv_ocsp_fetch_t *f = io->data;
    if (f->cancelled)
        return;
    if (!f->connected) {
        int err = pv_net_sock_error(io->fd);
        if (err) {
            /* NGINX meets a refused connect in its first read */
            flog(f, PV_LOG_ERR, "recv() failed (%d: %s)", err, strerror(err));
            flog(f, PV_LOG_ERR, "OCSP responder prematurely closed connection");
            end(f, NULL, 0);
            return;
        }
        if (!(events & (PV_EV_WRITE | PV_EV_READ)))
            return;
        f->connected = 1;
    }
    while (f->sent < f->reqlen) {
        ssize_t n = send(io->fd, f->request + f->sent, f->reqlen - f->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0) {
            flog(f, PV_LOG_ERR, "send() failed (%d: %s)", errno, strerror(errno));
            end(f, NULL, 0);
            return;
        }
        f->sent += (size_t)n;
    }
    for (;;) {
        if (f->got == sizeof(f->buf)) {
            flog(f, PV_LOG_ERR, "OCSP responder sent too large response");
            end(f, NULL, 0);
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
            end(f, NULL, 0);
            return;
        }
        answered(f);
        return;
    }
}

static void connect_to(pv_ocsp_fetch_t *f, const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    uint16_t port = pv_net_addr_text(sa, host, sizeof(host));
    snprintf(f->peer, sizeof(f->peer), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    int fd = pv_net_connect(sa, len);
    if (fd < 0) {
        flog(f, PV_LOG_ERR, "connect() failed (%d: %s)", errno, strerror(errno));
        end(f, NULL, 0);
        return;
    }
    f->io.fd = fd;
    if (pv_loop_add(f->loop, &f->io) != PV_OK) {
        flog(f, PV_LOG_ERR, "epoll_ctl() failed (%d: %s)", errno, strerror(errno));
        end(f, NULL, 0);
    }
}

static void resolved(void *data, const pv_resolved_t *res)
{
    pv_ocsp_fetch_t *f = data;
    f->wait = NULL;
    if (res->status != PV_RESOLVE_OK || res->naddrs == 0) {
        flog(f, PV_LOG_ERR, "%s could not be resolved (%d: %s)", f->to.url.name, pv_resolve_code(res->status),
             pv_resolve_strerror(res->status));
        end(f, NULL, 0);
        return;
    }
    /* the first address, as NGINX connects */
    struct sockaddr_storage ss = res->addrs[0];
    uint16_t port = htons((uint16_t)f->to.url.port);
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = port;
    else
        ((struct sockaddr_in *)&ss)->sin_port = port;
    connect_to(f, (const struct sockaddr *)&ss, res->lens[0]);
}

static void fetch_timeout(pv_timer_t *t)
{
    pv_ocsp_fetch_t *f = t->data;
    flog(f, PV_LOG_ERR, "OCSP responder timed out (110: Connection timed out)");
    end(f, NULL, 0);
}

/* The first turn of the loop after pv_ocsp_fetch(). */
static void start(pv_timer_t *t)
{
    pv_ocsp_fetch_t *f = t->data;
    f->started = 1;
    pv_timer_set(f->loop, &f->timer, PV_OCSP_FETCH_TIMEOUT);
    if (f->to.literal) {
        connect_to(f, (const struct sockaddr *)&f->to.addr, f->to.addrlen);
        return;
    }
    if (!f->to.has_resolver) {
        if (!f->to.addrlen) {
            flog(f, PV_LOG_ERR, "no resolver defined to resolve %s", f->to.url.name);
            end(f, NULL, 0);
            return;
        }
        flog(f, PV_LOG_WARN, "no resolver defined to resolve %s", f->to.url.name);
        connect_to(f, (const struct sockaddr *)&f->to.addr, f->to.addrlen);
        return;
    }
    pv_resolver_t *r = pv_resolver_get(f->loop, &f->to.rcf);
    pv_resolve_wait_t *w = NULL;
    if (!r || pv_resolve(r, f->to.url.name, f->to.resolver_timeout, resolved, f, &w) == PV_ERR) {
        flog(f, PV_LOG_ERR, "out of memory resolving %s", f->to.url.name);
        end(f, NULL, 0);
        return;
    }
    /* PV_OK: resolved() ran (and may have ended the fetch) */
    if (w)
        f->wait = w;
}

static void timer_cb(pv_timer_t *t)
{
    pv_ocsp_fetch_t *f = t->data;
    if (f->cancelled)
        bury(f);
    else if (f->started)
        fetch_timeout(t);
    else
        start(t);
}

void pv_ocsp_responder_keep(pv_ocsp_responder_t *r, const pv_ocsp_peer_t *p)
{
    memset(r, 0, sizeof(*r));
    r->url = *p->url;
    if (p->addr && p->addrlen) {
        r->addr = *p->addr;
        r->addrlen = p->addrlen;
    }
    r->literal = p->literal;
    if (p->resolver) {
        r->has_resolver = 1;
        r->rcf = *p->resolver;
        r->rcf.zone = NULL;
    }
    r->resolver_timeout = p->resolver_timeout;
}

pv_ocsp_peer_t pv_ocsp_responder_peer(const pv_ocsp_responder_t *r)
{
    return (pv_ocsp_peer_t){
        .url = &r->url, .addr = r->addrlen ? &r->addr : NULL, .addrlen = r->addrlen, .literal = r->literal,
        .resolver = r->has_resolver ? &r->rcf : NULL, .resolver_timeout = r->resolver_timeout,
    };
}

pv_ocsp_fetch_t *pv_ocsp_fetch(pv_loop_t *loop, const pv_ocsp_peer_t *p, const char *request, size_t len,
                               const char *name, pv_ocsp_fetch_fn done, void *arg)
{
    if (len > REQUEST_MAX)
        return NULL;
    pv_ocsp_fetch_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->loop = loop;
    f->io = (pv_io_t){.fd = -1, .cb = fetch_io, .data = f};
    pv_timer_init(&f->timer, timer_cb, f);
    pv_ocsp_responder_keep(&f->to, p);
    f->done = done;
    f->arg = arg;
    snprintf(f->name, sizeof(f->name), "%s", name ? name : "");
    memcpy(f->request, request, len);
    f->reqlen = len;
    pv_timer_set(loop, &f->timer, 0);
    return f;
}

long pv_ocsp_request_for(const pv_ocsp_url_t *u, const void *cid, char *out, size_t cap)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_CERTID_dup((OCSP_CERTID *)cid);
    if (!req || !id || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(req);
        return -1;
    }
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);
    OCSP_REQUEST_free(req);
    if (n <= 0)
        return -1;
    long len = pv_ocsp_request_text(u, der, (size_t)n, out, cap);
    OPENSSL_free(der);
    return len;
}
