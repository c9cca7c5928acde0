/* The blocking file operations of static serving and the sending of a
 * file's bytes: each operation runs on the thread pool (aio threads) or
 * in place (aio off); its results come back in the request's pv_file_t.
 * With aio threads, an open or a read that cannot block (the path's
 * lookup in the dentry cache, the bytes in the page cache) is done in
 * place too: only what would wait for a disk goes to the pool. */
#include "fileop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "server.h"
#include "accesslog.h"
#include "response.h"

static __thread pv_tport_t port;
static __thread int port_ready;

int pv_file_worker_init(pv_loop_t *loop)
{
    if (pv_tpool_start() != PV_OK)
        return PV_ERR;
    if (pv_tport_init(&port, loop) != PV_OK)
        return PV_ERR;
    port_ready = 1;
    return PV_OK;
}

/* One freed state kept per thread for the next request: most of it
 * (path, ranges) is never cleared, so a request costs no 6 KiB calloc. */
static __thread pv_file_t *spare;

void pv_file_worker_exit(void)
{
    if (port_ready)
        pv_tport_close(&port);
    port_ready = 0;
    free(spare);
    spare = NULL;
}

/* ---- state ------------------------------------------------------------------ */

/* The most one read takes: the buffer, within output_buffers' size. */
static int64_t read_size(const pv_file_t *f)
{
    int64_t n = (int64_t)f->buf->size;
    return f->read_max > 0 && f->read_max < n ? f->read_max : n;
}

static void file_free(pv_file_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    for (int i = 0; i < f->ncand; i++)
        free(f->cand[i]);
    for (int i = 0; i < f->nents; i++)
        free(f->ents[i].name);
    free(f->ents);
    pv_buf_put(f->buf);
    if (!spare)
        spare = f;
    else
        free(f);
}

pv_file_t *pv_file_new(pv_hreq_t *hr, const pv_static_conf_t *s)
{
    if (hr->handler == &pv_file_handler) {
        /* a second step of the same request: start clean */
        pv_file_release(hr);
    } else if (hr->handler && hr->handler->cleanup) {
        /* another handler's finished work (the proxy's after an
         * auth_request subrequest) gives its state back first */
        hr->handler->cleanup(hr);
        hr->handler = NULL;
    }
    pv_file_t *f = spare ? spare : malloc(sizeof(*f));
    if (!f) {
        pv_cache_nomem("a file state", pv_log_client(&hr->r));
        return NULL;
    }
    spare = NULL;
    memset(f, 0, offsetof(pv_file_t, path));
    f->path[0] = '\0';
    f->hr = hr;
    f->fd = -1;
    f->found = -1;
    f->symlinks = s->disable_symlinks;
    f->task.work = NULL;
    pv_timer_init(&f->yield, NULL, NULL);
    hr->handler_ctx = f;
    hr->handler = &pv_file_handler;
    return f;
}

static void uncork(pv_hreq_t *hr, pv_file_t *f)
{
    int off = 0;
    if (f->corked && !(hr->c->flags & PV_HC_F_CLOSING))
        setsockopt(hr->c->x.io.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
    f->corked = 0;
}

/* Orphan f when an operation runs (it frees itself), else free it. */
static void drop(pv_file_t *f)
{
    if (f->hr) {
        if (pv_timer_armed(&f->yield))
            pv_timer_del(f->hr->w->loop, &f->yield);
        uncork(f->hr, f);
        f->hr->write_wait = 0;
    }
    if (f->op != PV_FOP_NONE)
        f->hr = NULL;
    else
        file_free(f);
}

void pv_file_release(pv_hreq_t *hr)
{
    if (hr->handler != &pv_file_handler)
        return;
    pv_file_t *f = hr->handler_ctx;
    hr->handler_ctx = NULL;
    hr->handler = NULL;
    hr->handling = 0;
    if (f)
        drop(f);
}

/* ---- the operations (any thread) --------------------------------------------------- */

/* Open each component below from with O_NOFOLLOW; if_not_owner lets a
 * link through when it and its target have the same owner. */
static int open_nofollow(int symlinks, const char *path, size_t from)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(buf))
        return errno = ENAMETOOLONG, -1;
    memcpy(buf, path, len + 1);
    if (from == 0 || from > len)
        from = 1;
    char save = buf[from];
    buf[from] = '\0';
    int dir = open(buf, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_DIRECTORY);
    buf[from] = save;
    if (dir < 0)
        return -1;
    char *p = buf + from;
    while (*p == '/')
        p++;
    while (*p) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        /* a name followed by a slash must be a directory */
        int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | (slash ? O_DIRECTORY : 0);
        int fd = openat(dir, p, flags);
        if (fd < 0 && errno == ELOOP && symlinks == PV_SYMLINKS_IF_NOT_OWNER) {
            struct stat ls, ts;
            fd = -1;
            if (fstatat(dir, p, &ls, AT_SYMLINK_NOFOLLOW) == 0 && (fd = openat(dir, p, flags & ~O_NOFOLLOW)) >= 0 &&
                (fstat(fd, &ts) != 0 || ts.st_uid != ls.st_uid)) {
                close(fd);
                fd = -1;
            }
            if (fd < 0)
                errno = ELOOP;
        }
        int e = errno;
        close(dir);
        if (fd < 0)
            return errno = e, -1;
        dir = fd;
        if (!slash)
            break;
        p = slash + 1;
        while (*p == '/')
            p++;
    }
    return dir;
}

int pv_file_open(int symlinks, size_t from, const char *path, struct stat *st)
{
    int plain = symlinks == PV_SYMLINKS_OFF || (from && from >= strlen(path)); /* from= names it all */
    int fd = plain ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : open_nofollow(symlinks, path, from);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return errno = e, -1;
    }
    return fd;
}

static int cmp_entries(const void *a, const void *b)
{
    const pv_dirent_t *x = a, *y = b;
    if (x->dir != y->dir)
        return x->dir ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The listing of f->path into f->ents (malloc: another thread reads it). */
static void read_dir(pv_file_t *f)
{
    DIR *d = opendir(f->path);
    if (!d) {
        f->err = errno;
        return;
    }
    int cap = 0;
    struct dirent *de;
    char file[PATH_MAX];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        int fl = snprintf(file, sizeof(file), "%s/%s", f->path, de->d_name);
        struct stat st;
        if (fl < 0 || (size_t)fl >= sizeof(file) || (stat(file, &st) != 0 && lstat(file, &st) != 0))
            continue;
        if (f->nents == cap) {
            cap = cap ? cap * 2 : 32;
            pv_dirent_t *ne = realloc(f->ents, (size_t)cap * sizeof(*ne));
            if (!ne)
                break;
            f->ents = ne;
        }
        char *name = strdup(de->d_name);
        if (!name)
            break;
        f->ents[f->nents++] = (pv_dirent_t){name, strlen(name), S_ISDIR(st.st_mode) != 0,
                                            !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode), st.st_mtime, st.st_size};
    }
    closedir(d);
    if (f->nents > 1)
        qsort(f->ents, (size_t)f->nents, sizeof(*f->ents), cmp_entries);
}

static void work(pv_task_t *t)
{
    pv_file_t *f = (pv_file_t *)t;
    f->err = 0;
    switch (f->op) {
    case PV_FOP_OPEN:
        f->fd = pv_file_open(f->symlinks, f->sym_from, f->path, &f->st);
        if (f->fd < 0) {
            f->err = errno;
        } else if (f->buf && S_ISREG(f->st.st_mode) && f->st.st_size > 0) {
            /* read the start ahead: most answers send it, and it saves
             * a second trip to the pool */
            ssize_t n = pread(f->fd, f->buf->data, (size_t)PV_MIN((int64_t)f->buf->size, f->st.st_size), 0);
            f->pre_n = n > 0 ? (int)n : 0;
        }
        break;
    case PV_FOP_INDEX:
        for (int i = 0; i < f->ncand && f->found < 0; i++) {
            struct stat st;
            int fd = pv_file_open(f->symlinks, f->sym_from, f->cand[i], &st);
            if (fd >= 0) {
                close(fd);
                f->found = i;
            } else if (errno != ENOENT) {
                f->err = errno;
                f->found = i;
            }
        }
        if (f->found < 0 && stat(f->path, &f->st) != 0)
            f->err = errno;
        break;
    case PV_FOP_TRY:
        /* as NGINX's try_files: a name that cannot be opened under
         * disable_symlinks is not there */
        for (int i = 0; i < f->ncand && f->found < 0; i++) {
            struct stat st;
            int fd = f->symlinks == PV_SYMLINKS_OFF ? -2 : pv_file_open(f->symlinks, f->cand_from[i], f->cand[i], &st);
            if (fd >= 0)
                close(fd);
            if (fd == -1 || (fd == -2 && stat(f->cand[i], &st) != 0)) {
                if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG && !f->err)
                    f->err = errno; /* logged on the loop */
                continue;
            }
            if ((S_ISDIR(st.st_mode) != 0) == (f->cand_dir[i] != 0))
                f->found = i;
        }
        break;
    case PV_FOP_READ: {
        const pv_range_t *rg = &f->ranges[f->cur];
        size_t want = (size_t)PV_MIN(read_size(f), rg->end - f->pos);
        ssize_t n = pread(f->fd, f->buf->data, want, f->pos + f->base);
        f->read_n = (int)n;
        if (n < 0)
            f->err = errno;
        break;
    }
    case PV_FOP_DIR:
        read_dir(f);
        break;
    }
}

/* ---- back on the loop ------------------------------------------------------------- */

static void done(pv_task_t *t)
{
    pv_file_t *f = (pv_file_t *)t;
    f->op = PV_FOP_NONE;
    pv_hreq_t *hr = f->hr;
    if (!hr) {
        file_free(f);
        return;
    }
    hr->handling = 0;
    pv_log_req_set(&hr->r);
    f->then(hr, f);
    pv_log_req_set(NULL);
}

/* The kernel has no RESOLVE_CACHED (before Linux 5.12): opens go to the pool. */
static __thread int no_cached_open;

/* A read of what the page cache holds: the bytes read, or -1 with
 * errno (EAGAIN: they are not cached; then nothing was read). */
static ssize_t read_cached(pv_file_t *f, void *to, size_t len, off_t off)
{
    struct iovec v = {to, len};
    ssize_t n = preadv2(f->fd, &v, 1, off, RWF_NOWAIT);
    if (n < 0 && errno == EOPNOTSUPP)
        errno = EAGAIN; /* a file system without RWF_NOWAIT: the pool reads */
    return n;
}

/* Open f->path only as far as the dentry cache answers (the pool's open
 * when the path needs I/O), fstat it and read ahead what is cached.
 * 1: done (f->fd, or f->err), 0: the pool must do it. */
static int open_cached(pv_file_t *f)
{
    if (f->symlinks != PV_SYMLINKS_OFF || no_cached_open)
        return 0;
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK, .resolve = RESOLVE_CACHED};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, f->path, &how, sizeof(how));
    if (fd < 0) {
        if (errno == ENOSYS || errno == EINVAL)
            no_cached_open = 1;
        if (errno == EAGAIN || no_cached_open)
            return 0;
        f->err = errno;
        return 1;
    }
    if (fstat(fd, &f->st) != 0) {
        f->err = errno;
        close(fd);
        return 1;
    }
    f->fd = fd;
    if (f->buf && S_ISREG(f->st.st_mode) && f->st.st_size > 0) {
        ssize_t n = read_cached(f, f->buf->data, (size_t)PV_MIN((int64_t)f->buf->size, f->st.st_size), 0);
        f->pre_n = n > 0 ? (int)n : 0;
    }
    return 1;
}

/* aio threads: the operation done in place when it cannot block. */
static int try_in_place(pv_file_t *f)
{
    f->err = 0;
    if (f->op == PV_FOP_OPEN)
        return open_cached(f);
    if (f->op != PV_FOP_READ)
        return 0;
    const pv_range_t *rg = &f->ranges[f->cur];
    size_t want = (size_t)PV_MIN(read_size(f), rg->end - f->pos);
    ssize_t n = read_cached(f, f->buf->data, want, f->pos + f->base);
    if (n < 0 && errno == EAGAIN)
        return 0;
    f->read_n = (int)n;
    if (n < 0)
        f->err = errno;
    return 1;
}

int pv_file_run(pv_file_t *f, int op, pv_file_cb then)
{
    const pv_loc_conf_t *lc = &f->hr->r.loc->conf;
    f->op = op;
    if (lc->st.aio == PV_AIO_OFF || !port_ready || (f->in_place && op == PV_FOP_READ)) {
        work(&f->task);
        f->op = PV_FOP_NONE;
        return 1;
    }
    if (try_in_place(f)) {
        f->op = PV_FOP_NONE;
        return 1;
    }
    f->then = then;
    f->task.work = work;
    f->task.done = done;
    f->hr->handling = 1; /* the client's events go to pv_file_handler meanwhile */
    pv_tpool_submit(&port, &f->task);
    return 0;
}

/* ---- sending ---------------------------------------------------------------------- */

static void finish(pv_hreq_t *hr, int ok)
{
    hr->handling = 0;
    if (hr->handler_ctx)
        uncork(hr, hr->handler_ctx);
    pv_file_release(hr);
    if (ok)
        pv_resp_finish(hr);
    else
        pv_resp_abort(hr);
}

static void read_done(pv_hreq_t *hr, pv_file_t *f)
{
    pv_file_send(hr);
}

/* The next bytes of the current range are in buf: queue them. -1 when
 * the read failed. */
static int take_read(pv_hreq_t *hr, pv_file_t *f)
{
    if (f->read_n <= 0) {
        pv_log_r(&hr->r, PV_LOG_CRIT, "pread() failed or the file was truncated (%d: %s), client: %s", f->err,
               f->err ? strerror(f->err) : "end of file", pv_log_client(&hr->r));
        return -1;
    }
    f->pos += f->read_n;
    f->have = (size_t)f->read_n;
    f->read_n = 0;
    pv_resp_send_body(hr, &(pv_str_t){f->buf->data, f->have}, 1);
    return 0;
}

void pv_file_sendfile_check(pv_hreq_t *hr, pv_file_t *f)
{
    const pv_static_conf_t *s = &hr->r.loc->conf.st;
    f->sendfile = s->sendfile == 1 && f->fd >= 0 && hr->proto->resp == &pv_h1_resp &&
                  hr->c->x.ops == &pv_xprt_plain && !hr->zf && !hr->bf && !hr->tee && !hr->resp_chunked &&
                  !hr->r.limit_rate && !(hr->r.flags & PV_REQ_F_HEAD);
    f->chunk_max = s->sendfile_max_chunk;
    f->read_max = s->output_bufs_size;
    if (f->sendfile && s->tcp_nopush == 1) {
        /* tcp_nopush: the head and the file's first bytes in full packets */
        int on = 1;
        if (setsockopt(hr->c->x.io.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0)
            f->corked = 1;
    }
}

static void yield_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = t->data;
    pv_file_send(hr);
}

/* Send the current range's next bytes from the file to the socket with
 * sendfile(2), the queued bytes (the head, a part's head) first: PV_OK to
 * go on, PV_AGAIN when the socket is full or a whole sendfile_max_chunk
 * went (the rest follows on the loop's next turn), PV_ERR. */
static int send_part(pv_hreq_t *hr, pv_file_t *f, const pv_range_t *rg)
{
    if (pv_resp_flush(hr) != PV_OK) {
        hr->handling = 1;
        return PV_AGAIN; /* proceed() follows, or the connection is gone */
    }
    int64_t want = rg->end - f->pos;
    if (f->chunk_max > 0 && want > f->chunk_max)
        want = f->chunk_max;
    off_t off = (off_t)(f->base + f->pos);
    ssize_t n;
    do
        n = sendfile(hr->c->x.io.fd, f->fd, &off, (size_t)want);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        f->pos += n;
        hr->r.bytes_sent += (uint64_t)n;
        if (f->chunk_max > 0 && n == want && f->pos < rg->end) {
            /* sendfile_max_chunk: other connections get their turn */
            hr->handling = 1;
            pv_timer_init(&f->yield, yield_cb, hr);
            pv_timer_set(hr->w->loop, &f->yield, 0);
            return PV_AGAIN;
        }
        return PV_OK;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        hr->c->x.writable = 0;
        hr->write_wait = 1;
        hr->handling = 1;
        pv_timer_set(hr->w->loop, &hr->c->timer, (uint64_t)hr->r.loc->conf.send_timeout);
        return PV_AGAIN;
    }
    if (n == 0)
        pv_log_r(&hr->r, PV_LOG_CRIT, "sendfile() reported that \"%s\" was truncated, client: %s", f->path,
                 pv_log_client(&hr->r));
    else if (errno != EPIPE && errno != ECONNRESET)
        pv_log_r(&hr->r, PV_LOG_CRIT, "sendfile() failed (%d: %s), client: %s", errno, strerror(errno),
                 pv_log_client(&hr->r));
    return PV_ERR;
}

void pv_file_send(pv_hreq_t *hr)
{
    pv_file_t *f = hr->handler_ctx;
    if (f->read_n && take_read(hr, f) < 0) {
        finish(hr, 0);
        return;
    }
    for (;;) {
        if (f->have) {
            /* buf is queued: it may be reused once written */
            if (pv_resp_flush(hr) != PV_OK) {
                hr->handling = 1;
                return; /* proceed() follows, or the connection is gone */
            }
            f->have = 0;
        }
        if (f->cur == f->nranges) {
            if (f->tail.len && f->part_head_sent != 2) {
                f->part_head_sent = 2;
                pv_resp_send_body(hr, &f->tail, 1);
                continue;
            }
            finish(hr, 1);
            return;
        }
        pv_range_t *rg = &f->ranges[f->cur];
        if (f->boundary_head.len && !f->part_head_sent) {
            int n = snprintf(f->part, sizeof(f->part), "%lld-%lld/%lld\r\n\r\n", (long long)rg->start,
                             (long long)rg->end - 1, (long long)f->size);
            pv_str_t sp[2] = {f->boundary_head, {f->part, (size_t)n}};
            pv_resp_send_body(hr, sp, 2);
            f->part_head_sent = 1;
            f->pos = rg->start;
        }
        if (f->pos >= rg->end) {
            f->cur++;
            f->part_head_sent = 0;
            if (f->cur < f->nranges && !f->boundary_head.len)
                f->pos = f->ranges[f->cur].start;
            continue;
        }
        if (f->pos < (int64_t)f->prefix.len) {
            /* flv: the header sent before the file's bytes (constant storage) */
            int64_t end = PV_MIN(rg->end, (int64_t)f->prefix.len);
            pv_str_t sp = {f->prefix.p + f->pos, (size_t)(end - f->pos)};
            pv_resp_send_body(hr, &sp, 1);
            f->pos = end;
            if (f->boundary_head.len && pv_resp_flush(hr) != PV_OK) {
                hr->handling = 1; /* the part's head in f->part is written before the next one */
                return;
            }
            continue;
        }
        if (f->pre_n && f->pos == 0) {
            /* the open read the start ahead into buf */
            f->read_n = (int)PV_MIN((int64_t)f->pre_n, rg->end);
            f->pre_n = 0;
        } else if (f->sendfile) {
            f->pre_n = 0;
            int rc = send_part(hr, f, rg);
            if (rc == PV_AGAIN)
                return;
            if (rc == PV_ERR) {
                finish(hr, 0);
                return;
            }
            continue;
        } else {
            f->pre_n = 0;
            if (f->buf->size < PV_FILE_BIG_BUF && rg->end - f->pos > (int64_t)f->buf->size &&
                (!f->read_max || f->read_max > (int64_t)f->buf->size)) {
                /* more than a standard buffer still to read: larger reads */
                pv_buf_t *b = pv_buf_get_size(PV_FILE_BIG_BUF);
                if (b) {
                    pv_buf_put(f->buf);
                    f->buf = b;
                }
            }
            if (!pv_file_run(f, PV_FOP_READ, read_done))
                return;
        }
        if (take_read(hr, f) < 0) {
            finish(hr, 0);
            return;
        }
    }
}

static void file_proceed(pv_hreq_t *hr)
{
    pv_file_t *f = hr->handler_ctx;
    if (f && f->op == PV_FOP_NONE)
        pv_file_send(hr);
}

static void file_readable(pv_hreq_t *hr)
{
    /* a body sent with a file request is not read; the connection is
     * not kept after it */
}

static void file_abort(pv_hreq_t *hr)
{
    pv_file_release(hr);
}

static void file_cleanup(pv_hreq_t *hr)
{
    pv_file_release(hr);
}

const pv_handler_t pv_file_handler = {"static", file_proceed, file_readable, file_abort, file_cleanup};
