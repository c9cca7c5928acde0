/* An in-memory transport (a pv_xprt_ops_t) and a worker harness for
 * driving the HTTP/1 server side and the proxy exchange without sockets
 * on the data path.
 *
 * A fake transport reads from a script: data in chosen pieces, pauses
 * (EAGAIN: the reader waits for the next edge), the end of the stream and
 * errors; it captures everything written, and may take at most wmax bytes
 * per writev, stall (EAGAIN) after every write until the next WRITE event,
 * or fail. Its descriptor is an eventfd the loop can watch but that never
 * fires: the harness is the loop. fx_pump() plays epoll: it calls the io
 * callback of each transport with the events due (new input after a
 * pause, writable again after a stall), then runs the worker's reap hooks
 * as its before-sleep hook does, until nothing is due. */
#ifndef FAKE_XPRT_H
#define FAKE_XPRT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "../../src/core/log.h"
#include "../../src/core/time.h"
#include "../../src/core/xprt.h"
#include "../../src/http/server.h"
#include "../../src/http/vars.h"
#include "../../src/proc/worker.h"
#include "../../src/proxy/proxy.h"
#include "../../src/upstream/upstream.h"

enum { FX_DATA, FX_AGAIN, FX_EOF, FX_ERR };

typedef struct fx_step_s {
    int kind;       /* FX_* */
    const char *p;  /* FX_DATA: the bytes (kept by the test) */
    size_t len;
    int err;        /* FX_ERR: errno */
} fx_step_t;

#define FX_STEPS 8192
#define FX_OUT (256 * 1024)

typedef struct fx_s {
    fx_step_t steps[FX_STEPS];
    int nsteps, cur;   /* script, and the step being read */
    size_t off;        /* bytes of steps[cur] already read */
    int edge;          /* input arrived since the last READ event: one is due */
    size_t gate;       /* nothing can be read before this many bytes were written (a reply) */
    int fresh;         /* not yet reported to the loop: its first events are due */
    size_t nout;       /* bytes in out */
    size_t wmax;       /* most bytes one writev takes; 0: as many as offered */
    int wstall;        /* after each write that took bytes the next stalls until a WRITE event */
    int wready;        /* a write may take bytes now (wstall) */
    int wblocked;      /* a write stalled: a WRITE event is due */
    int werr;          /* writes fail with this errno */
    int nwrites;       /* writev calls that took bytes */
    int shut, closed;
    int fd;            /* eventfd standing for the socket */
    pv_xprt_t *x;      /* the transport in its connection, once known */
    char out[FX_OUT];  /* everything written (last: not cleared) */
} fx_t;

static inline void fx_init(fx_t *f)
{
    memset(f, 0, offsetof(fx_t, out));
    f->wready = 1;
    f->fresh = 1;
    f->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static inline void fx_step(fx_t *f, int kind, const char *p, size_t len, int err)
{
    if (f->nsteps == FX_STEPS) {
        fprintf(stderr, "fake transport: script too long\n");
        abort();
    }
    /* whatever arrives brings an edge (a scripted pause brings its own) */
    if (kind != FX_DATA || len)
        f->edge = 1;
    f->steps[f->nsteps++] = (fx_step_t){kind, p, len, err};
}

static inline void fx_data(fx_t *f, const char *p, size_t len) { fx_step(f, FX_DATA, p, len, 0); }
static inline void fx_str(fx_t *f, const char *s) { fx_data(f, s, strlen(s)); }
static inline void fx_again(fx_t *f) { fx_step(f, FX_AGAIN, NULL, 0, 0); }
static inline void fx_eof(fx_t *f) { fx_step(f, FX_EOF, NULL, 0, 0); }
static inline void fx_error(fx_t *f, int err) { fx_step(f, FX_ERR, NULL, 0, err); }

/* len bytes at p in pieces of `piece` bytes, a pause after each. */
static inline void fx_pieces(fx_t *f, const char *p, size_t len, size_t piece)
{
    for (size_t off = 0; off < len; off += piece) {
        fx_data(f, p + off, len - off < piece ? len - off : piece);
        fx_again(f);
    }
}

/* The first `at` bytes, a pause, the rest. */
static inline void fx_split_at(fx_t *f, const char *p, size_t len, size_t at)
{
    fx_data(f, p, at);
    fx_again(f);
    fx_data(f, p + at, len - at);
}

static ssize_t fx_read(pv_xprt_t *x, void *buf, size_t len)
{
    fx_t *f = x->ctx;
    f->x = x;
    for (;;) {
        if (f->cur == f->nsteps || f->nout < f->gate) {
            x->readable = 0;
            return PV_AGAIN;
        }
        fx_step_t *s = &f->steps[f->cur];
        switch (s->kind) {
        case FX_DATA: {
            size_t n = s->len - f->off < len ? s->len - f->off : len;
            memcpy(buf, s->p + f->off, n);
            f->off += n;
            if (f->off == s->len) {
                f->cur++;
                f->off = 0;
            }
            if (n == 0 && len)
                continue; /* an empty piece */
            return (ssize_t)n;
        }
        case FX_AGAIN:
            f->cur++;
            x->readable = 0;
            if (f->cur < f->nsteps)
                f->edge = 1;
            return PV_AGAIN;
        case FX_EOF:
            return 0;
        default:
            errno = s->err;
            return PV_ERR;
        }
    }
}

static ssize_t fx_writev(pv_xprt_t *x, const struct iovec *iov, int iovcnt)
{
    fx_t *f = x->ctx;
    f->x = x;
    if (f->werr) {
        errno = f->werr;
        return PV_ERR;
    }
    if (!f->wready) {
        x->writable = 0;
        f->wblocked = 1;
        return PV_AGAIN;
    }
    size_t room = f->wmax ? f->wmax : (size_t)-1, n = 0;
    for (int i = 0; i < iovcnt && room; i++) {
        size_t k = iov[i].iov_len < room ? iov[i].iov_len : room;
        if (f->nout + k > FX_OUT) {
            fprintf(stderr, "fake transport: output overflow\n");
            abort();
        }
        memcpy(f->out + f->nout, iov[i].iov_base, k);
        f->nout += k;
        n += k;
        room -= k;
    }
    if (n) {
        f->nwrites++;
        if (f->wstall)
            f->wready = 0;
    }
    return (ssize_t)n;
}

static int fx_peek(pv_xprt_t *x)
{
    fx_t *f = x->ctx;
    f->x = x;
    if (f->nout < f->gate)
        return PV_AGAIN;
    for (int i = f->cur; i < f->nsteps; i++) {
        const fx_step_t *s = &f->steps[i];
        if (s->kind == FX_DATA && s->len > (i == f->cur ? f->off : 0))
            return 1;
        if (s->kind == FX_EOF)
            return 0;
        if (s->kind == FX_ERR)
            return PV_ERR;
        if (s->kind == FX_AGAIN)
            return PV_AGAIN;
    }
    return PV_AGAIN;
}

static int fx_shutdown(pv_xprt_t *x)
{
    ((fx_t *)x->ctx)->shut = 1;
    return PV_OK;
}

static void fx_close(pv_xprt_t *x)
{
    fx_t *f = x->ctx;
    f->closed = 1;
    f->x = NULL;
    close(f->fd);
    f->fd = -1;
}

static const pv_xprt_ops_t fx_ops = {
    .name = "fake", .read = fx_read, .writev = fx_writev, .peek = fx_peek,
    .shutdown = fx_shutdown, .close = fx_close,
};

/* A transport over f, as pv_xprt_init() makes one over a socket. */
static inline void fx_xprt(fx_t *f, pv_xprt_t *x)
{
    pv_xprt_init(x, f->fd, NULL, NULL);
    x->ops = &fx_ops;
    x->ctx = f;
}

/* Whether the stream's end is in before the next pause (the FIN is queued). */
static inline int fx_fin_queued(const fx_t *f)
{
    for (int i = f->cur; i < f->nsteps; i++) {
        if (f->steps[i].kind == FX_AGAIN)
            return 0;
        if (f->steps[i].kind != FX_DATA)
            return 1;
    }
    return 0;
}

/* The events due on f now (and clear them), as epoll would report them. */
static inline unsigned fx_events(fx_t *f)
{
    unsigned ev = 0;
    if (!f->x || f->closed)
        return 0;
    if (f->fresh) {
        f->fresh = 0;
        ev |= PV_EV_WRITE;
    }
    if (f->wblocked) {
        f->wblocked = 0;
        f->wready = 1;
        ev |= PV_EV_WRITE;
    }
    if (f->edge && f->nout >= f->gate) {
        f->edge = 0;
        ev |= PV_EV_READ;
        if (fx_fin_queued(f))
            ev |= PV_EV_RDHUP;
    }
    return ev;
}

/* ---- the worker harness ------------------------------------------------- */

static pv_worker_t fx_w;
static char fx_logpath[64];
static long fx_logoff;

/* A worker over the config text, with the modules the gateway runs on
 * the request path; the error log goes to a file fx_log() reads. */
static inline void fx_worker_start(const char *conf_text)
{
    char err[512];
    pv_http_vars_init(); /* as main() does before any config */
    pv_conf_t *conf = pv_conf_load_text("test.conf", conf_text, strlen(conf_text), PV_CONF_F_NO_DNS, err,
                                        sizeof(err));
    if (!conf) {
        fprintf(stderr, "test config: %s\n", err);
        abort();
    }
    snprintf(fx_logpath, sizeof(fx_logpath), "/tmp/pv-unit-log-%d", (int)getpid());
    unlink(fx_logpath);
    pv_log_open(fx_logpath, PV_LOG_INFO);
    static pv_module_t *const mods[] = {&pv_http_module, &pv_access_module, &pv_proxy_module,
                                        &pv_upstream_module, NULL};
    if (pv_worker_modules(mods) != PV_OK || pv_worker_init(&fx_w, 1, conf, NULL, 0) != PV_OK ||
        pv_worker_gen_start(&fx_w) != PV_OK)
        abort();
    pv_conf_unref(conf);
}

/* The error log lines written since the last call. */
static inline const char *fx_log(void)
{
    static char buf[16384];
    FILE *fp = fopen(fx_logpath, "r");
    size_t n = 0;
    if (fp) {
        fseek(fp, fx_logoff, SEEK_SET);
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fx_logoff += (long)n;
        fclose(fp);
    }
    buf[n] = '\0';
    return buf;
}

/* A client connection over f, as accept() makes one. */
static inline pv_hconn_t *fx_client(fx_t *f)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000001)};
    pv_xprt_t x;
    fx_xprt(f, &x);
    pv_hconn_t *c = pv_server_conn_open(&fx_w, 0, &x, (const struct sockaddr *)&sa, sizeof(sa));
    if (c)
        f->x = &c->x;
    return c;
}

/* Play the loop for the transports given (NULL-terminated): deliver the
 * events due, then reap as the before-sleep hook does, until none is due. */
static inline void fx_pump_all(fx_t *const *fs)
{
    for (int round = 0; round < 100000; round++) {
        int any = 0;
        for (int i = 0; fs[i]; i++) {
            unsigned ev = fx_events(fs[i]);
            if (!ev)
                continue;
            any = 1;
            pv_io_t *io = &fs[i]->x->io;
            io->cb(io, ev);
            pv_server_reap(&fx_w);
            pv_upstream_reap(&fx_w);
        }
        if (!any)
            return;
    }
    fprintf(stderr, "fake transport: the exchange does not settle\n");
    abort();
}

/* The Date field value responses carry: the thread's clock is read once
 * and never moves, as no loop runs to update it. */
static inline const char *fx_date(void)
{
    static char d[64];
    pv_str_t s = pv_time_http_date();
    snprintf(d, sizeof(d), "%.*s", (int)s.len, s.p);
    return d;
}

/* An error page as the gateway writes it, for status and reason. */
static inline size_t fx_errpage(char *out, size_t cap, int status, const char *reason, int keep)
{
    char page[512];
    int pl = snprintf(page, sizeof(page),
                      "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n"
                      "<hr><center>portvakt/" PV_VERSION "</center>\r\n</body>\r\n</html>\r\n",
                      status, reason, status, reason);
    return (size_t)snprintf(out, cap,
                            "HTTP/1.1 %d %s\r\nServer: portvakt/" PV_VERSION "\r\nDate: %s\r\nContent-Type: text/html\r\n"
                            "Content-Length: %d\r\nConnection: %s\r\n\r\n%s",
                            status, reason, fx_date(), pl, keep ? "keep-alive" : "close", page);
}

/* Whether the 29 bytes at p are an IMF-fixdate ("Thu, 03 Dec 2026 19:00:00 GMT"). */
static inline int fx_is_date(const char *p)
{
    return p[3] == ',' && p[4] == ' ' && p[7] == ' ' && p[11] == ' ' && p[16] == ' ' && p[19] == ':' &&
           p[22] == ':' && memcmp(p + 25, " GMT", 4) == 0;
}

/* want, with each Date value replaced by the one f wrote at the same
 * place when that one is a well-formed date: the clock a test expects may
 * have ticked into the next second before the response was written. */
static inline const char *fx_same_dates(const fx_t *f, const char *want, size_t n)
{
    static char w[FX_OUT];
    if (n > sizeof(w) || f->nout != n)
        return want;
    memcpy(w, want, n);
    for (const char *d = memmem(w, n, "\r\nDate: ", 8); d; d = memmem(d + 1, n - (size_t)(d + 1 - w), "\r\nDate: ", 8)) {
        size_t at = (size_t)(d - w) + 8;
        if (at + 29 <= n && fx_is_date(w + at) && fx_is_date(f->out + at))
            memcpy(w + at, f->out + at, 29);
    }
    return w;
}

/* Check that f captured exactly the n bytes at want (Date values aside). */
#define fx_assert_out(f, want, n)                                                                             \
    do {                                                                                                       \
        const char *fx_want_ = fx_same_dates((f), (want), (n));                                                \
        if ((f)->nout != (n) || memcmp((f)->out, fx_want_, (n)) != 0)                                          \
            fail_msg("written (%zu bytes):\n%.*s\nwanted (%zu bytes):\n%.*s", (f)->nout, (int)(f)->nout,   \
                     (f)->out, (size_t)(n), (int)(n), fx_want_);                                               \
    } while (0)

#endif
