#include "logring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"

#define PV_LR_IOV 64              /* ring segments gathered per writev */
#define PV_LR_POLL_NS 2000000     /* writer's pause between busy drains */
#define PV_LR_BUSY_BYTES 4096     /* a drain this large means busy: pause rather than sleep */
#define PV_LR_STOP_WAIT_S 5       /* how long stop waits for a stuck sink */
#define PV_LR_URGENT_NS 5000000   /* longest an error line's thread waits for the writer */

/* One producer's ring for one sink. head is written only by the producer,
 * tail only by the writer; both only grow (offsets are taken modulo size). */
typedef struct pv_lr_ring_s {
    _Alignas(64) _Atomic uint64_t head; /* bytes ever pushed */
    _Alignas(64) _Atomic uint64_t tail; /* bytes ever written out */
    _Alignas(64) char data[PV_LOGRING_SIZE]; /* the bytes */
} pv_lr_ring_t;

struct pv_logsink_s {
    char *path;                  /* resolved path; the identity of the sink */
    const char *what;            /* "access log", "error log": for reports */
    int urgent;                  /* an error log: its lines end the writer's busy pause */
    int fd;                      /* touched by the writer only, after open */
    int owned;                   /* fd is ours to close/reopen (not 1 or 2) */
    atomic_int gzip;             /* access_log gzip=LEVEL: each write is a gzip member; 0: plain */
    _Atomic size_t hold;         /* buffer=: bytes held before a write; 0: none */
    _Atomic int64_t hold_ms;     /* flush=: longest a held line waits; 0: until hold bytes */
    int64_t held_since;          /* when the writer began holding lines (writer only); 0: none */
    _Atomic uint64_t dropped;    /* lines lost to a full ring */
    uint64_t reported;           /* drops already reported (writer only) */
    int64_t last_err_ms;         /* last write error reported (writer only) */
    /* a path with variables (pv_logring_sink_var) */
    int var;                     /* fd is the writer's: -1, or what next_fd handed it */
    atomic_int next_fd;          /* a file opened for the request, for the writer; -1: none */
    atomic_int keep;             /* the writer keeps its fd after writing (cached) */
    /* the open file cache's record of the file (under al_var_lock) */
    int node;                    /* the cache knows the file */
    int kept;                    /* its descriptor is kept (keep was set) */
    unsigned cache_id;           /* the cache it belongs to (pv_logcache_t id) */
    uint64_t uses;               /* uses since it entered the cache */
    uint64_t used_seq;           /* order of last use, for the least recently used */
    int64_t created, accessed;   /* opened or checked by name; last used */
    dev_t dev;                   /* the kept file's identity */
    ino_t ino;
    _Atomic(pv_lr_ring_t *) rings[PV_LOGRING_MAX_THREADS]; /* by producer slot */
};

static pv_logsink_t *_Atomic al_sinks[PV_LOGRING_MAX_SINKS]; /* published sinks */
static atomic_int al_nsinks;             /* published sinks */
static atomic_int al_nslots;             /* producer slots handed out */
static atomic_uint al_gen = 1;           /* bumps at stop: thread slots expire */
static atomic_int al_sleeping;           /* futex word: 1 while the writer waits, 2 in its busy pause */
static atomic_int al_stop;               /* writer should flush and exit */
static atomic_int al_reopen;             /* writer should reopen file sinks */
static atomic_uint al_reopened;          /* reopens the writer has done */
static atomic_int al_force;              /* writer should write held lines now */
static atomic_int al_running;            /* the writer thread runs */
static _Atomic uint64_t al_dropped_past; /* drops of sinks closed by stop */
static pthread_mutex_t al_lock = PTHREAD_MUTEX_INITIALIZER; /* open/start/stop */
static pthread_mutex_t al_var_lock = PTHREAD_MUTEX_INITIALIZER; /* open file caches */
static pthread_t al_thread;              /* the writer */

/* Per-thread producer state. */
static __thread int al_slot = -1;        /* ring index in every sink */
static __thread unsigned al_slot_gen;    /* al_gen the slot belongs to */
static __thread int al_is_writer;        /* this thread is the writer */

/* Sleep while *word == val, at most ts. */
static int futex_wait(atomic_int *word, int val, const struct timespec *ts)
{
    return (int)syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);
}

/* Wake the thread sleeping on word. */
static void futex_wake(atomic_int *word)
{
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wake the writer if (and only if) it is asleep: one syscall per idle
 * period. An error log line also ends the pause the writer takes while
 * busy, so it is on disk as soon as the answer it concerns (as NGINX
 * writes it at once); access log lines gather over the pause. */
static void writer_wake(int urgent)
{
    int v = atomic_load_explicit(&al_sleeping, memory_order_relaxed);
    if (!v || (v == 2 && !urgent))
        return;
    if (urgent ? atomic_exchange(&al_sleeping, 0) != 0 : atomic_compare_exchange_strong(&al_sleeping, &v, 0))
        futex_wake(&al_sleeping);
}

/* ---- producer side ------------------------------------------------------ */

/* This thread's ring index, registering it on first use. */
static int slot_get(void)
{
    unsigned gen = atomic_load_explicit(&al_gen, memory_order_acquire);
    if (pv_likely(al_slot >= 0 && al_slot_gen == gen))
        return al_slot;
    int s = atomic_fetch_add(&al_nslots, 1);
    if (s >= PV_LOGRING_MAX_THREADS) {
        atomic_fetch_sub(&al_nslots, 1);
        return -1;
    }
    al_slot = s;
    al_slot_gen = gen;
    return s;
}

int pv_logring_register_thread(void)
{
    return slot_get() >= 0 ? PV_OK : PV_ERR;
}

/* Append one whole line; 0 when it does not fit (the caller drops it). */
static int ring_push(pv_lr_ring_t *rg, const char *p, size_t n)
{
    uint64_t h = atomic_load_explicit(&rg->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&rg->tail, memory_order_acquire);
    if (PV_LOGRING_SIZE - (h - t) < n)
        return 0;
    size_t off = (size_t)(h % PV_LOGRING_SIZE);
    size_t first = PV_MIN(n, PV_LOGRING_SIZE - off);
    memcpy(rg->data + off, p, first);
    memcpy(rg->data, p + first, n - first);
    atomic_store_explicit(&rg->head, h + n, memory_order_release);
    return 1;
}

/* This thread's ring for sink s, made on first use. */
static pv_lr_ring_t *ring_of(pv_logsink_t *s, int slot)
{
    pv_lr_ring_t *rg = atomic_load_explicit(&s->rings[slot], memory_order_acquire);
    if (pv_likely(rg != NULL))
        return rg;
    /* once per thread and sink: the ring stays for the sink's lifetime */
    rg = aligned_alloc(64, sizeof(*rg));
    if (!rg)
        return NULL;
    atomic_init(&rg->head, 0);
    atomic_init(&rg->tail, 0);
    atomic_store_explicit(&s->rings[slot], rg, memory_order_release);
    return rg;
}

/* An error log line is in the file before its thread goes on, as NGINX
 * writes it at once: a client that has its answer finds the line. The
 * thread waits for the writer to pass the line, at most PV_LR_URGENT_NS,
 * so a stuck disk delays it no longer than that. */
static void urgent_wait(pv_lr_ring_t *rg, uint64_t end)
{
    if (al_is_writer || !atomic_load_explicit(&al_running, memory_order_acquire) ||
        atomic_load_explicit(&al_stop, memory_order_relaxed))
        return;
    struct timespec t0, now, nap = {0, 20000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; atomic_load_explicit(&rg->tail, memory_order_acquire) < end; i++) {
        if (i < 8) {
            sched_yield();
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000000000LL + (now.tv_nsec - t0.tv_nsec) >= PV_LR_URGENT_NS)
            return;
        nanosleep(&nap, NULL);
    }
}

int pv_logring_push(pv_logsink_t *s, const char *p, size_t n)
{
    int slot = slot_get();
    pv_lr_ring_t *rg = slot >= 0 ? ring_of(s, slot) : NULL;
    if (!rg || !ring_push(rg, p, n)) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return PV_AGAIN;
    }
    atomic_thread_fence(memory_order_seq_cst);
    writer_wake(s->urgent);
    if (s->urgent)
        urgent_wait(rg, atomic_load_explicit(&rg->head, memory_order_relaxed));
    return PV_OK;
}

void pv_logring_drop(pv_logsink_t *s)
{
    atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
}

int pv_logring_running(void)
{
    return atomic_load_explicit(&al_running, memory_order_acquire);
}

/* ---- writer side ------------------------------------------------------- */

/* Monotonic milliseconds for the writer's rate limits. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write the whole iovec; gives up only on an error other than EINTR. */
static void sink_write(pv_logsink_t *s, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(s->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                /* someone made the fd non-blocking: wait a moment */
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
                if (atomic_load(&al_stop))
                    return;
                continue;
            }
            int64_t now = mono_ms();
            if (now - s->last_err_ms >= 1000) {
                s->last_err_ms = now;
                pv_log(PV_LOG_ERR, "write() to \"%s\" failed (%d: %s)", s->path, errno,
                       strerror(errno));
            }
            return;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
}

/* access_log ... gzip: the lines of one write as one gzip member (a
 * reader of the file sees the members as one stream, as NGINX writes
 * them). Written plain when memory or zlib fails. */
static void sink_write_gzip(pv_logsink_t *s, struct iovec *iov, int n, int level)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (deflateInit2(&zs, level, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        sink_write(s, iov, n);
        return;
    }
    size_t cap = deflateBound(&zs, (uLong)total);
    unsigned char *out = malloc(cap);
    int rc = out ? Z_OK : Z_MEM_ERROR;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    for (int i = 0; i < n && rc == Z_OK; i++) {
        zs.next_in = iov[i].iov_base;
        zs.avail_in = (uInt)iov[i].iov_len;
        rc = deflate(&zs, i == n - 1 ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_END)
            break;
    }
    if (rc == Z_STREAM_END) {
        struct iovec z = {out, zs.total_out};
        sink_write(s, &z, 1);
    } else {
        sink_write(s, iov, n);
    }
    deflateEnd(&zs);
    free(out);
}

/* Drain every ring of one sink with as few writev calls as possible;
 * returns the bytes moved. Tails advance only after the write, so an empty
 * ring means its lines reached the sink. */
static size_t sink_drain(pv_logsink_t *s, int nslots)
{
    struct iovec iov[PV_LR_IOV];
    pv_lr_ring_t *used[PV_LR_IOV / 2];
    uint64_t upto[PV_LR_IOV / 2];
    size_t moved = 0;
    int slot = 0;

    while (slot < nslots) {
        int niov = 0, nused = 0;
        for (; slot < nslots && niov + 2 <= PV_LR_IOV; slot++) {
            pv_lr_ring_t *rg = atomic_load_explicit(&s->rings[slot], memory_order_acquire);
            if (!rg)
                continue;
            uint64_t t = atomic_load_explicit(&rg->tail, memory_order_relaxed);
            uint64_t h = atomic_load_explicit(&rg->head, memory_order_acquire);
            if (h == t)
                continue;
            size_t off = (size_t)(t % PV_LOGRING_SIZE), n = (size_t)(h - t);
            size_t first = PV_MIN(n, PV_LOGRING_SIZE - off);
            iov[niov++] = (struct iovec){rg->data + off, first};
            if (n > first)
                iov[niov++] = (struct iovec){rg->data, n - first};
            used[nused] = rg;
            upto[nused++] = h;
            moved += n;
        }
        if (niov == 0)
            break;
        int level = atomic_load_explicit(&s->gzip, memory_order_relaxed);
        if (s->fd < 0)
            ; /* a log path with variables that could not be opened: lines lost */
        else if (level)
            sink_write_gzip(s, iov, niov, level);
        else
            sink_write(s, iov, niov);
        for (int i = 0; i < nused; i++)
            atomic_store_explicit(&used[i]->tail, upto[i], memory_order_release);
    }
    return moved;
}

/* Whether a buffered sink keeps its lines for now (buffer=, flush=):
 * fewer bytes wait than its buffer, no ring is half full, and the oldest
 * held line is younger than its flush time. Notes when holding began. */
static int sink_holds(pv_logsink_t *s, int nslots, int64_t now)
{
    size_t hold = atomic_load_explicit(&s->hold, memory_order_relaxed), waiting = 0;
    if (!hold)
        return 0;
    for (int k = 0; k < nslots; k++) {
        pv_lr_ring_t *rg = atomic_load_explicit(&s->rings[k], memory_order_acquire);
        if (!rg)
            continue;
        size_t n = (size_t)(atomic_load_explicit(&rg->head, memory_order_acquire) -
                            atomic_load_explicit(&rg->tail, memory_order_relaxed));
        if (n >= PV_LOGRING_SIZE / 2)
            waiting = hold; /* a ring must not fill while its sink holds */
        waiting += n;
    }
    int64_t ms = atomic_load_explicit(&s->hold_ms, memory_order_relaxed);
    if (waiting == 0 || waiting >= hold || (ms && s->held_since && now - s->held_since >= ms)) {
        s->held_since = 0;
        return waiting == 0;
    }
    if (!s->held_since)
        s->held_since = now;
    return 1;
}

/* How long the writer may sleep: until the first held line is due, at
 * most a second. */
static int64_t held_sleep_ms(void)
{
    int64_t now = mono_ms(), wait = 1000;
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        int64_t ms = atomic_load_explicit(&s->hold_ms, memory_order_relaxed);
        if (s->held_since && ms)
            wait = PV_MIN(wait, PV_MAX(s->held_since + ms - now, 1));
    }
    return wait;
}

/* Whether a ring of s holds bytes not yet written. */
static int sink_pending(pv_logsink_t *s, int nslots)
{
    for (int k = 0; k < nslots; k++) {
        pv_lr_ring_t *rg = atomic_load_explicit(&s->rings[k], memory_order_acquire);
        if (rg && atomic_load_explicit(&rg->head, memory_order_acquire) !=
                      atomic_load_explicit(&rg->tail, memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* Whether any ring holds bytes not yet written; skip_held: not counting
 * the sinks the writer holds (writer only). */
static int sinks_pending(int skip_held)
{
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    int nslots = PV_MIN(atomic_load(&al_nslots), PV_LOGRING_MAX_THREADS);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        if (skip_held && (s->held_since || (s->var && s->fd < 0 && atomic_load(&s->next_fd) < 0)))
            continue; /* held, or waiting for its file (its hand-over wakes the writer) */
        if (sink_pending(s, nslots))
            return 1;
    }
    return 0;
}

/* Write out what the rings of s hold. A path with variables writes to the
 * file last opened for it, and keeps it open only while its cache does. */
static size_t sink_out(pv_logsink_t *s, int nslots)
{
    if (!s->var)
        return sink_drain(s, nslots);
    int fd = atomic_exchange(&s->next_fd, -1);
    if (fd >= 0) {
        if (s->fd >= 0)
            close(s->fd);
        s->fd = fd;
    }
    /* without a file, lines wait for the one their request hands over */
    size_t moved = s->fd >= 0 ? sink_drain(s, nslots) : 0;
    if (s->fd >= 0 && !atomic_load(&s->keep)) {
        close(s->fd);
        s->fd = -1;
    }
    return moved;
}

/* Error-log the drops since the last report, per sink. */
static void sinks_report_drops(void)
{
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        uint64_t d = atomic_load_explicit(&s->dropped, memory_order_relaxed);
        if (d > s->reported) {
            pv_log(PV_LOG_ERR, "%s: %llu lines dropped (sink too slow), \"%s\"", s->what,
                   (unsigned long long)(d - s->reported), s->path);
            s->reported = d;
        }
    }
}

/* Reopen file sinks by path (after rotation). */
static void sinks_reopen(void)
{
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        if (!s->owned || s->var)
            continue; /* a cached file of a path with variables stays, as in NGINX */
        int fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            pv_log(PV_LOG_ALERT, "open() \"%s\" failed (%d: %s)", s->path, errno,
                   strerror(errno));
            continue;
        }
        close(s->fd);
        s->fd = fd;
    }
}

/* The writer: drain, report, then poll briefly while busy or sleep while idle. */
static void *writer_main_cb(void *arg)
{
    PV_UNUSED(arg);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the main thread */
    al_is_writer = 1;

    int64_t last_report = mono_ms();
    for (;;) {
        int stopping = atomic_load(&al_stop);
        int reopen = atomic_exchange(&al_reopen, 0);
        /* held lines go out at a reopen, at stop, and when asked to */
        int force = stopping || reopen || atomic_exchange(&al_force, 0);

        size_t moved = 0;
        int64_t now = mono_ms();
        int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
        int nslots = PV_MIN(atomic_load(&al_nslots), PV_LOGRING_MAX_THREADS);
        if (reopen) {
            /* a buffered file's held lines to the file they were for, as
             * NGINX flushes before reopening; the others go to the new one */
            for (int i = 0; i < ns; i++) {
                pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
                if (atomic_load_explicit(&s->hold, memory_order_relaxed))
                    moved += sink_drain(s, nslots);
            }
            sinks_reopen();
            atomic_fetch_add(&al_reopened, 1);
        }
        for (int i = 0; i < ns; i++) {
            pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
            if (force)
                s->held_since = 0;
            else if (sink_holds(s, nslots, now))
                continue;
            moved += sink_out(s, nslots);
        }

        if (now - last_report >= 1000) {
            sinks_report_drops();
            last_report = now;
        }
        if (stopping) {
            if (!moved)
                break;
            continue;
        }
        if (moved >= PV_LR_BUSY_BYTES) {
            /* busy: let lines gather instead of being woken per line
             * (a few lines are not: the next one is written at once, as
             * a client reading the log after its answer expects) */
            struct timespec ts = {0, PV_LR_POLL_NS};
            atomic_store(&al_sleeping, 2);
            atomic_thread_fence(memory_order_seq_cst);
            futex_wait(&al_sleeping, 2, &ts);
            atomic_store(&al_sleeping, 0);
            continue;
        }
        atomic_store(&al_sleeping, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (sinks_pending(1) || atomic_load(&al_stop) || atomic_load(&al_reopen) || atomic_load(&al_force)) {
            atomic_store(&al_sleeping, 0);
            continue;
        }
        int64_t wait = held_sleep_ms();
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
        futex_wait(&al_sleeping, 1, &ts);
        atomic_store(&al_sleeping, 0);
    }
    sinks_report_drops();
    return NULL;
}

int pv_logring_start(void)
{
    pthread_mutex_lock(&al_lock);
    int rc = PV_OK;
    if (!atomic_load(&al_running)) {
        atomic_store(&al_stop, 0);
        if (pthread_create(&al_thread, NULL, writer_main_cb, NULL) == 0)
            atomic_store(&al_running, 1);
        else
            rc = PV_ERR;
    }
    pthread_mutex_unlock(&al_lock);
    return rc;
}

void pv_logring_stop(void)
{
    pthread_mutex_lock(&al_lock);
    int joined = 1;
    if (atomic_load(&al_running)) {
        atomic_store(&al_stop, 1);
        atomic_store(&al_sleeping, 0);
        futex_wake(&al_sleeping);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += PV_LR_STOP_WAIT_S;
        if (pthread_timedjoin_np(al_thread, NULL, &dl) != 0) {
            /* a sink is stuck: leave the writer (and what it uses) alone */
            pv_log(PV_LOG_ALERT, "logs: writer did not finish in %ds, lines lost",
                   PV_LR_STOP_WAIT_S);
            pthread_detach(al_thread);
            joined = 0;
        }
        atomic_store(&al_running, 0);
    }
    if (joined) {
        int ns = atomic_load(&al_nsinks);
        for (int i = 0; i < ns; i++) {
            pv_logsink_t *s = atomic_load(&al_sinks[i]);
            atomic_fetch_add(&al_dropped_past, atomic_load(&s->dropped));
            for (int k = 0; k < PV_LOGRING_MAX_THREADS; k++)
                free(atomic_load(&s->rings[k]));
            if (s->owned && s->fd >= 0)
                close(s->fd);
            if (s->var && atomic_load(&s->next_fd) >= 0)
                close(atomic_load(&s->next_fd));
            free(s->path);
            free(s);
            atomic_store(&al_sinks[i], NULL);
        }
        atomic_store(&al_nsinks, 0);
        atomic_store(&al_nslots, 0);
        atomic_fetch_add(&al_gen, 1);
    }
    pthread_mutex_unlock(&al_lock);
}

void pv_logring_reopen(void)
{
    unsigned done = atomic_load(&al_reopened);
    atomic_store(&al_reopen, 1);
    atomic_thread_fence(memory_order_seq_cst);
    writer_wake(1);
    /* wait (a little) for the writer: once the new files exist, every
     * line after goes to them */
    for (int i = 0; i < 1000 && atomic_load(&al_running) && atomic_load(&al_reopened) == done; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

int pv_logring_flush(int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        if (!sinks_pending(0))
            return PV_OK;
        if (mono_ms() >= end)
            return PV_AGAIN;
        atomic_store(&al_force, 1);
        writer_wake(1);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

uint64_t pv_logring_dropped(void)
{
    uint64_t d = atomic_load(&al_dropped_past);
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        d += atomic_load_explicit(&s->dropped, memory_order_relaxed);
    }
    return d;
}

/* ---- opening sinks (main thread) -------------------------------------- */

static pv_logsink_t *sink_get(const char *path, const char *what, int var, char *err, size_t errlen);

void pv_logring_sink_gzip(pv_logsink_t *s, int level)
{
    atomic_store(&s->gzip, level);
}

void pv_logring_sink_buffer(pv_logsink_t *s, size_t size, int64_t flush_ms)
{
    atomic_store(&s->hold, PV_MIN(size, (size_t)PV_LOGRING_SIZE / 2));
    atomic_store(&s->hold_ms, flush_ms);
    atomic_store(&al_force, 1); /* what was held under the old settings goes out */
    writer_wake(1);
}

pv_logsink_t *pv_logring_sink(const char *path, const char *what, char *err, size_t errlen)
{
    pthread_mutex_lock(&al_lock);
    pv_logsink_t *s = sink_get(path, what, 0, err, errlen);
    pthread_mutex_unlock(&al_lock);
    return s;
}

/* ---- the open file cache of log paths with variables (request side) ------ */

static uint64_t al_var_seq;    /* use order (under al_var_lock) */
static int64_t al_var_swept;   /* last inactive sweep (under al_var_lock) */

/* The cache forgets s: the writer closes its file once its lines are out. */
static void var_forget(pv_logsink_t *s)
{
    s->node = 0;
    s->kept = 0;
    s->uses = 0;
    atomic_store(&s->keep, 0);
}

/* Forget the files of cache c unused for its inactive time; with full:
 * also the least recently used when c holds max files, as NGINX's. */
static void var_expire(const pv_logcache_t *c, int64_t now, int full)
{
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire), n = 0;
    pv_logsink_t *lru = NULL;
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        if (!s->var || !s->node || s->cache_id != c->id)
            continue;
        if (now - s->accessed > c->inactive_ms) {
            var_forget(s);
            continue;
        }
        n++;
        if (!lru || s->used_seq < lru->used_seq)
            lru = s;
    }
    if (full && n >= c->max && lru)
        var_forget(lru);
}

/* Open the file of s (appending, creating it) for one request; st its identity. */
static int var_open(pv_logsink_t *s, int *fd, struct stat *st, char *err, size_t errlen)
{
    *fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", s->path, errno, strerror(errno));
        return PV_ERR;
    }
    if (fstat(*fd, st) != 0)
        memset(st, 0, sizeof(*st));
    return PV_OK;
}

/* One use of s by a request, as NGINX's open file cache counts it (c NULL:
 * no cache, the file opened for each line). *fd: a file opened for this
 * use, or -1 when the writer's kept one serves. */
static int var_use(pv_logsink_t *s, const pv_logcache_t *c, int *fd, char *err, size_t errlen)
{
    struct stat st;
    int64_t now = mono_ms();
    *fd = -1;
    if (!c) {
        var_forget(s);
        return var_open(s, fd, &st, err, errlen);
    }
    if (s->node && s->cache_id != c->id)
        var_forget(s); /* another cache names the path now */
    if (now - al_var_swept >= 1000) {
        al_var_swept = now;
        var_expire(c, now, 0);
    }
    if (!s->node) {
        if (var_open(s, fd, &st, err, errlen) != PV_OK)
            return PV_ERR; /* a file that cannot be opened takes no place */
        var_expire(c, now, 1);
        s->node = 1;
        s->cache_id = c->id;
        s->created = now;
    } else if (!s->kept || now - s->created >= c->valid_ms) {
        /* not used often enough to be kept, or to be checked by name:
         * gone is an error (the next use creates it again), another
         * file is opened instead of the kept one */
        int gone = s->kept && stat(s->path, &st) != 0;
        if (gone)
            snprintf(err, errlen, "stat() \"%s\" failed (%d: %s)", s->path, errno, strerror(errno));
        if (gone || ((!s->kept || st.st_dev != s->dev || st.st_ino != s->ino) &&
                     var_open(s, fd, &st, err, errlen) != PV_OK)) {
            var_forget(s);
            return PV_ERR;
        }
        s->created = now;
    }
    if (*fd >= 0) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    s->accessed = now;
    s->used_seq = ++al_var_seq;
    s->uses++;
    s->kept = s->uses >= (uint64_t)c->min_uses;
    atomic_store(&s->keep, s->kept);
    return PV_OK;
}

void pv_logring_var_handover(pv_logsink_t *s, int fd)
{
    if (fd < 0)
        return;
    int old = atomic_exchange(&s->next_fd, fd);
    if (old >= 0)
        close(old);
    atomic_thread_fence(memory_order_seq_cst);
    writer_wake(1);
}

pv_logsink_t *pv_logring_sink_var(const char *path, const pv_logcache_t *c, int *fd, char *err, size_t errlen)
{
    pv_logsink_t *s = NULL;
    int ns = atomic_load_explicit(&al_nsinks, memory_order_acquire);
    for (int i = 0; i < ns && !s; i++) {
        pv_logsink_t *t = atomic_load_explicit(&al_sinks[i], memory_order_acquire);
        if (t->var && strcmp(t->path, path) == 0)
            s = t;
    }
    if (!s) {
        pthread_mutex_lock(&al_lock);
        s = sink_get(path, "access log", 1, err, errlen);
        pthread_mutex_unlock(&al_lock);
        if (!s)
            return NULL;
    }
    pthread_mutex_lock(&al_var_lock);
    int rc = var_use(s, c && c->max > 0 ? c : NULL, fd, err, errlen);
    pthread_mutex_unlock(&al_var_lock);
    return rc == PV_OK ? s : NULL;
}

/* The sink for path, opened and published if it is new. */
static pv_logsink_t *sink_get(const char *path, const char *what, int var, char *err, size_t errlen)
{
    int ns = atomic_load(&al_nsinks);
    for (int i = 0; i < ns; i++) {
        pv_logsink_t *s = atomic_load(&al_sinks[i]);
        if (s->var == var && strcmp(s->path, path) == 0)
            return s;
    }
    if (ns >= PV_LOGRING_MAX_SINKS) {
        snprintf(err, errlen, "too many log files (at most %d)", PV_LOGRING_MAX_SINKS);
        return NULL;
    }
    int fd, owned = 0;
    if (var) {
        fd = -1; /* var_use() opens it */
        owned = 1;
    } else if (strcmp(path, "/dev/stdout") == 0) {
        fd = STDOUT_FILENO;
    } else if (strcmp(path, "/dev/stderr") == 0) {
        fd = STDERR_FILENO;
    } else {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
            return NULL;
        }
        owned = 1;
    }
    pv_logsink_t *s = calloc(1, sizeof(*s));
    char *p = strdup(path);
    if (!s || !p) {
        free(s);
        free(p);
        if (owned)
            close(fd);
        snprintf(err, errlen, "out of memory opening \"%s\"", path);
        return NULL;
    }
    s->path = p;
    s->what = what;
    s->urgent = strcmp(what, "error log") == 0;
    s->fd = fd;
    s->owned = owned;
    s->var = var;
    atomic_init(&s->next_fd, -1);
    s->last_err_ms = -1000000;
    atomic_store_explicit(&al_sinks[ns], s, memory_order_release);
    atomic_store_explicit(&al_nsinks, ns + 1, memory_order_release);
    return s;
}

