/* proxy_store and fastcgi_store (see pstore.h). The file operations follow NGINX's
 * ngx_ext_rename_file(): access bits and mtime on the temp file, then
 * rename(); a missing directory made (each missing one, with the access
 * bits plus x where r is given) and the rename tried again; across file
 * systems a copy beside the target renamed into place. A failure is
 * logged at crit and the temp file removed. */
#include "pstore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/file.h"
#include "../core/log.h"
#include "../http/accesslog.h"
#include "../http/range.h"
#include "../http/reqbody.h"
#include "../http/server.h"
#include "../http/static.h"
#include "../http/vars.h"
#include "proxy.h"

typedef struct pv_pstore_s {
    pv_hreq_t *hr;
    const pv_store_conf_t *sc;     /* the module's *_store settings */
    const pv_temp_path_t *temp_path;
    int fd;          /* the temp file; -1 until the first byte */
    char *temp;      /* its name (request arena) */
    int64_t expect;  /* the upstream's Content-Length; -1: none */
    int64_t written;
    time_t mtime;    /* Last-Modified; -1: none */
} pv_pstore_t;

static void fail(pv_pstore_t *s, const char *what, const char *name, int err)
{
    pv_log_r(&s->hr->r, PV_LOG_CRIT, "%s \"%s\" failed (%d: %s), client: %s", what, name, err, strerror(err),
             pv_log_client(&s->hr->r));
}

void pv_pstore_drop(pv_pstore_t *s)
{
    if (!s || s->fd < 0)
        return;
    close(s->fd);
    s->fd = -1;
    if (unlink(s->temp) != 0)
        fail(s, "unlink()", s->temp, errno);
}

void pv_pstore_begin(pv_proxy_t *px, const pv_store_conf_t *sc, const pv_temp_path_t *temp_path,
                     const pv_header_t *fields, int nfields, int64_t clen)
{
    pv_hreq_t *hr = px->hr;
    if (!sc->on || px->status != 200 || !px->pipe.buffering || px->sub_done)
        return;
    pv_pstore_t *s = pv_arena_alloc(&hr->arena, sizeof(*s));
    s->hr = hr;
    s->sc = sc;
    s->temp_path = temp_path;
    s->fd = -1;
    s->temp = NULL;
    s->expect = clen;
    s->written = 0;
    s->mtime = -1;
    for (int i = 0; i < nfields; i++) {
        if (PV_STR_IEQ(fields[i].name, "last-modified")) {
            s->mtime = pv_http_time_parse(fields[i].value); /* the first one, as NGINX */
            break;
        }
    }
    px->pipe.store = s;
    px->pipe.used = 1; /* pv_pipe_end() drops what is left */
    hr->read_on = 1;   /* a client write that fails leaves the body read on */
}

void pv_pstore_start(pv_proxy_t *px)
{
    const pv_loc_conf_t *lc = &px->loc->conf;
    pv_pstore_begin(px, &lc->proxy_store, lc->proxy_temp_path, px->rp.fields, px->rp.nfields,
                    px->rp.has_cl ? px->rp.content_length : -1);
}

static int open_temp(pv_pstore_t *s)
{
    s->fd = pv_temp_file_open(s->hr, s->temp_path, &s->temp);
    return s->fd < 0 ? -1 : 0;
}

int pv_pstore_body(pv_proxy_t *px, const pv_str_t *spans, int n)
{
    pv_pstore_t *s = px->pipe.store;
    if (s->fd < 0 && open_temp(s) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (spans[i].len && pv_file_write_all(s->fd, spans[i].p, spans[i].len) < 0) {
            fail(s, "write()", s->temp, errno);
            return -1;
        }
        s->written += (int64_t)spans[i].len;
    }
    return 0;
}

/* ---- the rename ------------------------------------------------------------- */

/* NGINX's ngx_create_full_path(): every directory of path up to its last
 * '/' made; an existing one (or one not ours to look at) is passed. */
static int make_dirs(char *path, mode_t mode)
{
    int err = 0;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        err = mkdir(path, mode) == 0 ? 0 : errno;
        *p = '/';
        if (err == EEXIST)
            err = 0;
        else if (err && err != EACCES)
            return err;
    }
    return err;
}

/* Across file systems: a copy as "TO.NNNNNNNNNN" renamed to TO. */
static int copy_over(pv_pstore_t *s, const char *to, int access)
{
    static atomic_uint seq;
    char name[PATH_MAX + 16], buf[16384];
    snprintf(name, sizeof(name), "%s.%010u", to, (unsigned)(time(NULL) + atomic_fetch_add(&seq, 1)) % 1000000000u);
    int in = open(s->temp, O_RDONLY | O_CLOEXEC);
    int out = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, access);
    int ok = in >= 0 && out >= 0;
    for (ssize_t r; ok && (r = read(in, buf, sizeof(buf))) != 0;)
        ok = r > 0 && pv_file_write_all(out, buf, (size_t)r) == 0;
    if (!ok)
        fail(s, in < 0 ? "open()" : out < 0 ? "open()" : "copy", in < 0 ? s->temp : name, errno);
    if (ok && s->mtime != -1) {
        struct timespec ts[2] = {{time(NULL), 0}, {s->mtime, 0}};
        if (futimens(out, ts) != 0) {
            fail(s, "utimes()", name, errno);
            ok = 0;
        }
    }
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (ok && rename(name, to) != 0) {
        pv_log_r(&s->hr->r, PV_LOG_CRIT, "rename() \"%s\" to \"%s\" failed (%d: %s), client: %s", name, to, errno,
                 strerror(errno), pv_log_client(&s->hr->r));
        ok = 0;
    }
    if (!ok && out >= 0)
        unlink(name);
    return ok ? 0 : -1;
}

/* Give the temp file its bits and time, and move it to path. */
static void put_in_place(pv_pstore_t *s, char *path, int access)
{
    int err = 0;
    if (fchmod(s->fd, (mode_t)access) != 0) {
        fail(s, "chmod()", s->temp, errno);
        goto failed;
    }
    if (s->mtime != -1) {
        struct timespec ts[2] = {{time(NULL), 0}, {s->mtime, 0}};
        if (futimens(s->fd, ts) != 0) {
            fail(s, "utimes()", s->temp, errno);
            goto failed;
        }
    }
    if (rename(s->temp, path) == 0)
        goto done;
    err = errno;
    if (err == ENOENT) {
        /* the directory access: the file's, with x wherever r is */
        err = make_dirs(path, (mode_t)(access | (access & 0444) >> 2));
        if (err) {
            fail(s, "mkdir()", path, err);
            goto failed;
        }
        if (rename(s->temp, path) == 0)
            goto done;
        err = errno;
    }
    if (err == EXDEV) {
        if (copy_over(s, path, access) == 0)
            goto failed; /* in place: the temp file goes */
        err = 0;
    }
failed:
    if (err)
        pv_log_r(&s->hr->r, PV_LOG_CRIT, "rename() \"%s\" to \"%s\" failed (%d: %s), client: %s", s->temp, path,
                 err, strerror(err), pv_log_client(&s->hr->r));
    pv_pstore_drop(s);
    return;
done:
    close(s->fd);
    s->fd = -1;
}

void pv_pstore_done(pv_proxy_t *px)
{
    pv_pstore_t *s = px->pipe.store;
    if (!s)
        return;
    px->pipe.store = NULL;
    if ((s->expect >= 0 && s->expect != s->written) || (s->fd < 0 && open_temp(s) < 0)) {
        pv_pstore_drop(s); /* a length the body did not keep, or no file for an empty one */
        return;
    }
    char path[PATH_MAX];
    if (s->sc->cv) {
        size_t n = pv_cv_eval(s->sc->cv, px->r, 0, path, sizeof(path));
        if (n >= sizeof(path)) {
            fail(s, "rename()", s->temp, ENAMETOOLONG);
            pv_pstore_drop(s);
            return;
        }
        path[n] = '\0';
    } else {
        size_t root;
        if (pv_static_map(px->r, px->loc, path, sizeof(path), &root) < 0) {
            pv_pstore_drop(s); /* logged, or a URI no file can have */
            return;
        }
    }
    put_in_place(s, path, s->sc->access);
}
