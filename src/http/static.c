/* Static files, as NGINX's static, index and try_files code serves them:
 * a location without proxy_pass maps the URI to a file under its root or
 * alias; a URI ending in '/' tries the index files (an internal redirect
 * to the first that exists), then autoindex, then 403; a directory
 * without its slash gets a 301. Validators (Last-Modified, ETag) and the
 * preconditions answer 304 and 412; Range answers 206 (one part, or
 * multipart/byteranges) and 416. The body is read with pread() into one
 * buffer at a time, sent through the response calls, so it works over
 * every transport and protocol. */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "bfilter.h"
#include "charset.h"
#include "compress.h"
#include "errpage.h"
#include "fileop.h"
#include "hfilter.h"
#include "notmod.h"
#include "fcache.h"
#include "ofcache.h"
#include "phases.h"
#include "range.h"
#include "redirect.h"
#include "router.h"
#include "server.h"
#include "vars.h"
#include "accesslog.h"

/* ---- mapping -------------------------------------------------------------- */

/* The location's root (or alias) evaluated, made absolute against the
 * prefix: its length, or -1 when it does not fit out. */
static ssize_t eval_root(pv_request_t *r, const pv_location_t *loc, char *out, size_t cap)
{
    size_t n = pv_cv_eval(loc->conf.st.root, r, PV_ESCAPE_NONE, out, cap);
    if (n >= cap)
        return -1;
    if (n == 0 || out[0] != '/') {
        /* a root made of variables is relative to the prefix */
        size_t pl = strlen(r->conf->prefix);
        if (pl + 1 + n >= cap)
            return -1;
        memmove(out + pl + 1, out, n);
        memcpy(out, r->conf->prefix, pl);
        out[pl] = '/';
        n += pl + 1;
    }
    out[n] = '\0';
    return (ssize_t)n;
}

ssize_t pv_static_map(pv_request_t *r, const pv_location_t *loc, char *out, size_t cap, size_t *root_len)
{
    const pv_static_conf_t *s = &loc->conf.st;
    char root[PATH_MAX];
    ssize_t n = eval_root(r, loc, root, sizeof(root));
    if (n < 0)
        return -1;
    size_t skip = 0;
    pv_str_t uri = r->uri;
    if (s->alias) {
        if (r->flags & PV_REQ_F_LOC_INVALID) {
            pv_log_r(r, PV_LOG_ERR, "\"alias\" cannot be used in location \"%s\" where URI was rewritten, client: %s",
                   loc->name.p, pv_log_client(r));
            return -1;
        }
        if (s->alias_len == PV_ALIAS_REGEX) {
            if (!(r->flags & PV_REQ_F_ADD_URI_TO_ALIAS))
                uri.len = 0;
        } else {
            skip = PV_MIN(s->alias_len, uri.len);
        }
    }
    *root_len = (size_t)n;
    return pv_path_join(root, (size_t)n, uri, skip, out, cap);
}

pv_str_t pv_static_type(const pv_static_conf_t *s, pv_str_t uri)
{
    /* NGINX's exten: after the last '.' of the last segment, not a leading one */
    size_t i = uri.len;
    while (i > 1) {
        i--;
        if (uri.p[i] == '/')
            break;
        if (uri.p[i] == '.' && uri.p[i - 1] != '/') {
            char low[32];
            size_t n = uri.len - i - 1;
            if (n == 0 || n >= sizeof(low))
                break;
            for (size_t k = 0; k < n; k++) {
                char c = uri.p[i + 1 + k];
                low[k] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            }
            int lo = 0, hi = s->ntypes - 1;
            while (lo <= hi) {
                int mid = (lo + hi) / 2;
                const pv_mime_t *m = &s->types[mid];
                int c = memcmp(m->ext.p, low, PV_MIN(m->ext.len, n));
                if (!c)
                    c = (m->ext.len > n) - (m->ext.len < n);
                if (!c)
                    return m->type;
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid - 1;
            }
            break;
        }
    }
    return s->default_type;
}

/* disable_symlinks from=: how much of path is not checked */
static size_t symlinks_from(pv_request_t *r, const pv_static_conf_t *s, const char *path)
{
    if (s->disable_symlinks == PV_SYMLINKS_OFF || !s->has_symlinks_from)
        return 0;
    char f[PATH_MAX];
    size_t n = pv_cv_eval(&s->symlinks_from, r, PV_ESCAPE_NONE, f, sizeof(f));
    if (n < sizeof(f) && n <= strlen(path) && memcmp(f, path, n) == 0)
        return n; /* as NGINX: a plain prefix */
    return 0;
}

int pv_static_stat(pv_request_t *r, const char *path, struct stat *st)
{
    const pv_static_conf_t *s = r->loc ? &r->loc->conf.st : NULL;
    if (!s || s->disable_symlinks == PV_SYMLINKS_OFF)
        return stat(path, st);
    int fd = pv_file_open(s->disable_symlinks, symlinks_from(r, s, path), path, st);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* ---- internal redirects ---------------------------------------------------- */

/* Go on with uri as if it had been asked for. try_files' final URI
 * takes its own arguments (none without a '?'), as NGINX splits it; an
 * index file keeps the request's. */
static void redirect(pv_hreq_t *hr, const char *uri, size_t len, int keep_args)
{
    pv_request_t *r = &hr->r;
    pv_file_release(hr);
    if (keep_args) {
        pv_internal_redirect(hr, (pv_str_t){uri, len}, r->args);
        return;
    }
    const char *q = memchr(uri, '?', len);
    size_t ul = q ? (size_t)(q - uri) : len;
    pv_str_t args = q ? (pv_str_t){q + 1, len - ul - 1} : (pv_str_t){NULL, 0};
    pv_internal_redirect(hr, (pv_str_t){uri, ul}, args);
}

/* try_files' @name: the named location of the server. */
static void named(pv_hreq_t *hr, pv_str_t name)
{
    pv_file_release(hr);
    pv_named_location(hr, name);
}

static void answer(pv_hreq_t *hr, int status)
{
    pv_file_release(hr);
    pv_resp_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

/* ---- try_files -------------------------------------------------------------- */

/* The name of try_files' argument i (evaluated, a location prefix an alias
 * replaces taken off) into name; its length, or -1. */
static ssize_t try_name(pv_request_t *r, const pv_static_conf_t *s, int i, char *name, size_t cap, size_t *skip)
{
    *skip = 0;
    size_t n = pv_cv_eval(&s->try_files[i], r, PV_ESCAPE_NONE, name, cap);
    if (n >= cap || memchr(name, '\0', n))
        return -1;
    if (s->alias && s->alias_len != PV_ALIAS_REGEX && !s->try_files[i].is_const && s->alias_len <= r->uri.len &&
        n >= s->alias_len && memcmp(name, r->uri.p, s->alias_len) == 0)
        *skip = s->alias_len;
    return (ssize_t)n;
}

/* The URI try_files found (candidate i): NGINX's r->uri rules. */
static void try_found(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    char name[PATH_MAX];
    size_t skip;
    int i = f->cand_arg[f->found];
    ssize_t n = try_name(r, s, i, name, sizeof(name), &skip);
    int is_dir = s->try_dir[i];
    if (n < 0 || (size_t)n < skip)
        n = 0, skip = 0;
    size_t nl = (size_t)n - skip;
    char *u = pv_arena_strndup(r->arena, name + skip, nl);
    if (!s->alias) {
        r->uri = (pv_str_t){u, nl};
    } else if (s->alias_len == PV_ALIAS_REGEX) {
        if (!is_dir) {
            r->uri = (pv_str_t){u, nl};
            r->flags |= PV_REQ_F_ADD_URI_TO_ALIAS;
        }
    } else {
        size_t al = PV_MIN(s->alias_len, r->uri.len);
        char *x = pv_arena_alloc(r->arena, al + nl + 1);
        memcpy(x, r->uri.p, al);
        memcpy(x + al, u, nl);
        x[al + nl] = '\0';
        r->uri = (pv_str_t){x, al + nl};
    }
}

/* After the candidates were tested: the one found, or the last argument. */
static void try_tested(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    if (f->err)
        pv_log_r(r, PV_LOG_CRIT, "stat() in try_files failed (%d: %s), client: %s", f->err, strerror(f->err),
               pv_log_client(r));
    if (f->found >= 0) {
        int parked = f->then != NULL; /* it ran on the pool: go on with the phases */
        try_found(hr, f);
        pv_file_release(hr);
        if (parked)
            pv_phases_resume(hr);
        return;
    }
    if (s->try_kind == PV_TRY_CODE) {
        answer(hr, s->try_code);
        return;
    }
    if (s->try_kind == PV_TRY_NAMED) {
        named(hr, s->try_last);
        return;
    }
    char name[PATH_MAX];
    size_t n = pv_cv_eval(&s->try_uri, r, PV_ESCAPE_NONE, name, sizeof(name));
    if (n >= sizeof(name)) {
        answer(hr, 500);
        return;
    }
    redirect(hr, name, n, 0);
}

static int try_files(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    const pv_location_t *loc = r->loc;
    const pv_static_conf_t *s = loc ? &loc->conf.st : NULL;
    if (!s || !s->try_last.p)
        return PV_PHASE_NEXT;
    pv_file_t *f = pv_file_new(hr, s);
    if (!f) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    /* the full path of each argument: root (or alias) and its name */
    char path[PATH_MAX], name[PATH_MAX];
    for (int i = 0; i < s->ntry && f->ncand < PV_FILE_MAX_CAND; i++) {
        size_t skip, root;
        ssize_t n = try_name(r, s, i, name, sizeof(name), &skip);
        pv_str_t save = r->uri;
        unsigned fl = r->flags;
        r->uri = (pv_str_t){"", 0};
        r->flags &= ~(unsigned)PV_REQ_F_ADD_URI_TO_ALIAS;
        ssize_t rl = pv_static_map(r, loc, path, sizeof(path), &root);
        r->uri = save;
        r->flags = fl;
        if (n < 0 || rl < 0 || (size_t)rl + (size_t)n - skip + 1 > sizeof(path))
            continue;
        if (pv_path_join(path, (size_t)rl, (pv_str_t){name, (size_t)n}, skip, path, sizeof(path)) < 0)
            continue;
        int k = f->ncand++;
        f->cand[k] = strdup(path);
        f->cand_dir[k] = s->try_dir[i];
        f->cand_arg[k] = (uint8_t)i;
        f->cand_from[k] = (uint16_t)symlinks_from(r, s, path);
        if (!f->cand[k]) {
            f->ncand--;
            break;
        }
    }
    if (!pv_file_run(f, PV_FOP_TRY, try_tested))
        return PV_PHASE_PARKED;
    int found = f->found >= 0;
    try_tested(hr, f);
    return found ? PV_PHASE_NEXT : PV_PHASE_DONE;
}

/* ---- errors ------------------------------------------------------------------ */

/* NGINX's answer to a failed open: 404, 403 or 500, logged as it does. */
static void open_failed(pv_hreq_t *hr, const char *what, const char *path, int err)
{
    const pv_static_conf_t *s = &hr->r.loc->conf.st;
    int status = 500, level = PV_LOG_CRIT;
    if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG) {
        status = 404;
        level = PV_LOG_ERR;
    } else if (err == EACCES || err == EMLINK || err == ELOOP) {
        status = 403;
        level = PV_LOG_ERR;
    }
    if (status != 404 || s->log_not_found)
        pv_log_r(&hr->r, level, "%s \"%s\" failed (%d: %s), client: %s, request: \"%.*s\"", what, path, err, strerror(err),
               pv_log_client(&hr->r), (int)hr->r.request_line.len, hr->r.request_line.p);
    answer(hr, status);
}

/* ---- index ------------------------------------------------------------------- */

static int is_get_head_post(const pv_request_t *r)
{
    return PV_STR_IEQ(r->method, "GET") || PV_STR_IEQ(r->method, "HEAD") || PV_STR_IEQ(r->method, "POST");
}

static void listed(pv_hreq_t *hr, pv_file_t *f)
{
    pv_autoindex(hr, f);
}

/* The index files were tried: redirect to the one found, else autoindex,
 * else 403 (the directory exists) or 404. */
static void index_tested(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    if (f->found >= 0) {
        const char *c = f->cand[f->found];
        const char *name = strrchr(c, '/') + 1;
        if (f->err) {
            open_failed(hr, "open()", c, f->err);
            return;
        }
        size_t n = strlen(name);
        char *u = pv_arena_alloc(r->arena, r->uri.len + n + 1);
        memcpy(u, r->uri.p, r->uri.len);
        memcpy(u + r->uri.len, name, n);
        redirect(hr, u, r->uri.len + n, 1);
        return;
    }
    if (f->err) {
        if (f->err == ENOENT || f->err == ENOTDIR) {
            if (s->log_not_found)
                pv_log_r(r, PV_LOG_ERR, "\"%s\" is not found (%d: %s), client: %s, request: \"%.*s\"", f->path, f->err,
                       strerror(f->err), pv_log_client(r), (int)r->request_line.len, r->request_line.p);
            answer(hr, 404);
            return;
        }
        open_failed(hr, "stat()", f->path, f->err);
        return;
    }
    if (s->autoindex && (PV_STR_IEQ(r->method, "GET") || PV_STR_IEQ(r->method, "HEAD")) && S_ISDIR(f->st.st_mode)) {
        if (pv_file_run(f, PV_FOP_DIR, listed))
            listed(hr, f);
        return;
    }
    pv_log_r(r, PV_LOG_ERR, "directory index of \"%s\" is forbidden, client: %s, request: \"%.*s\"", f->path, pv_log_client(r),
           (int)r->request_line.len, r->request_line.p);
    answer(hr, 403);
}

/* A URI ending in '/': the index files, in order. */
static int index_dir(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    char path[PATH_MAX];
    size_t root;
    ssize_t pl = pv_static_map(r, r->loc, path, sizeof(path), &root);
    if (pl < 0) {
        pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    pv_file_t *f = pv_file_new(hr, s);
    if (!f) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    memcpy(f->path, path, (size_t)pl + 1);
    f->sym_from = symlinks_from(r, s, path);
    for (int i = 0; i < s->nindex && f->ncand < PV_FILE_MAX_CAND; i++) {
        char name[PATH_MAX];
        size_t n = pv_cv_eval(&s->index[i], r, PV_ESCAPE_NONE, name, sizeof(name));
        if (n >= sizeof(name) || n == 0 || memchr(name, '\0', n))
            continue;
        if (name[0] == '/') {
            if (f->ncand == 0) {
                /* an absolute index is redirected to unchecked */
                redirect(hr, name, n, 1);
                return PV_PHASE_DONE;
            }
            break;
        }
        if ((size_t)pl + n + 1 > sizeof(path) || memchr(name, '/', n))
            continue;
        memcpy(path + pl, name, n);
        path[(size_t)pl + n] = '\0';
        if (!(f->cand[f->ncand] = strdup(path)))
            break;
        f->ncand++;
    }
    if (!is_get_head_post(r))
        f->ncand = 0; /* index files are for GET, HEAD and POST */
    f->path[pl > 1 ? pl - 1 : pl] = '\0'; /* the directory itself, without its slash */
    if (pv_file_run(f, PV_FOP_INDEX, index_tested))
        index_tested(hr, f);
    return PV_PHASE_DONE;
}

/* ---- the response head --------------------------------------------------------- */

#define MAX_FIELDS 8

void pv_static_416(pv_hreq_t *hr, int64_t size)
{
    pv_request_t *r = &hr->r;
    char *page = pv_arena_alloc(r->arena, 512);
    ssize_t plen = pv_errpage_page(416, pv_hfilter_token(hr), page, 512);
    pv_resp_head_t h;
    pv_errpage_head(416, NULL, plen, &h);
    char *cr = pv_arena_alloc(r->arena, 48);
    int n = snprintf(cr, 48, "bytes */%lld", (long long)size);
    pv_header_t *f = pv_arena_alloc(r->arena, sizeof(*f));
    f[0] = (pv_header_t){PV_STR("Content-Range"), {cr, (size_t)n}};
    h.fields = f;
    h.nfields = 1;
    if (pv_resp_send_head(hr, &h) != PV_OK) {
        pv_resp_abort(hr);
        return;
    }
    if (plen > 0 && !(r->flags & PV_REQ_F_HEAD))
        pv_resp_send_body(hr, &(pv_str_t){page, (size_t)plen}, 1);
    pv_resp_finish(hr);
}

static uint64_t boundary_seq;

/* A 206 with several parts: the boundary, each part's head and the
 * length of it all. */
static void multipart(pv_request_t *r, pv_file_t *f, pv_resp_head_t *h)
{
    unsigned long long b = (++boundary_seq + pv_now_ns()) % 10000000000ULL;
    char *ct = pv_arena_alloc(r->arena, 80);
    int n = snprintf(ct, 80, "multipart/byteranges; boundary=%020llu", b);
    size_t bl = 128 + h->content_type.len;
    char *bh = pv_arena_alloc(r->arena, bl);
    int m = h->content_type.len ? snprintf(bh, bl, "\r\n--%020llu\r\nContent-Type: %.*s\r\nContent-Range: bytes ", b,
                                           (int)h->content_type.len, h->content_type.p)
                                : snprintf(bh, bl, "\r\n--%020llu\r\nContent-Range: bytes ", b);
    f->boundary_head = (pv_str_t){bh, (size_t)m};
    char *tl = pv_arena_alloc(r->arena, 32);
    int t = snprintf(tl, 32, "\r\n--%020llu--\r\n", b);
    f->tail = (pv_str_t){tl, (size_t)t};
    int64_t len = t;
    for (int i = 0; i < f->nranges; i++) {
        char tmp[96];
        len += m + snprintf(tmp, sizeof(tmp), "%lld-%lld/%lld\r\n\r\n", (long long)f->ranges[i].start,
                            (long long)f->ranges[i].end - 1, (long long)f->size) +
               (f->ranges[i].end - f->ranges[i].start);
    }
    h->content_type = (pv_str_t){ct, (size_t)n};
    h->content_length = len;
}

/* 412, or 304 with the validators in fld, when the request's
 * preconditions say so: 1 when answered. */
static int precondition_answer(pv_hreq_t *hr, const pv_static_conf_t *s, pv_str_t etag, time_t mtime,
                               pv_header_t *fld, int nf)
{
    int pre = pv_notmod_test(&hr->r, s->if_modified_since, etag, mtime);
    if (pre == 412) {
        answer(hr, 412);
        return 1;
    }
    if (pre != 304)
        return 0;
    pv_file_release(hr);
    pv_resp_head_t h = {.status = 304, .content_length = -1, .fields = fld, .nfields = nf};
    if (pv_resp_send_head(hr, &h) != PV_OK)
        pv_resp_abort(hr);
    else
        pv_resp_finish(hr);
    return 1;
}

/* flv: the "start" argument as NGINX's flv module reads it (the first
 * start= at the start of the arguments or after '&', its value all
 * digits), 0 when there is none, it is malformed or not below size. */
static int64_t flv_start(pv_str_t args, int64_t size)
{
    for (size_t i = 0; args.p && i + 5 < args.len; i++) {
        if ((i > 0 && args.p[i - 1] != '&') || args.p[i + 5] != '=' ||
            !pv_str_ieq((pv_str_t){args.p + i, 5}, "start", 5))
            continue;
        size_t k = i + 6;
        int64_t v = 0;
        if (k == args.len || args.p[k] == '&')
            return 0;
        for (; k < args.len && args.p[k] != '&'; k++) {
            if (args.p[k] < '0' || args.p[k] > '9' || v > (INT64_MAX - 9) / 10)
                return 0;
            v = v * 10 + (args.p[k] - '0');
        }
        return v < size ? v : 0;
    }
    return 0;
}

/* The 13 bytes NGINX's flv module sends before the file from start=. */
static const char flv_header[] = "FLV\x1\x5\0\0\0\x9\0\0\0\0";

/* The answer for the open file f: 304, 412, 416, 206 or 200. */
static void serve_file(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    pv_header_t *fld = pv_arena_alloc(r->arena, MAX_FIELDS * sizeof(*fld));
    int nf = 0;
    time_t mtime = f->st.st_mtime;
    char *lm = pv_arena_alloc(r->arena, 32);
    fld[nf++] = (pv_header_t){PV_STR("Last-Modified"), {lm, pv_http_time_format(mtime, lm)}};
    f->size = f->st.st_size;
    /* flv: the header and the file from start=, its ETag from that length */
    int64_t start = s->flv && !f->gz ? flv_start(r->args, f->size) : 0;
    if (start) {
        f->prefix = (pv_str_t){flv_header, sizeof(flv_header) - 1};
        f->base = start - (int64_t)f->prefix.len;
        f->size = f->size - start + (int64_t)f->prefix.len;
        f->pre_n = 0; /* what the open read ahead is the file's start */
    }
    pv_str_t etag = {NULL, 0};
    if (s->etag) {
        /* NGINX's "%xT-%xO" */
        char *e = pv_arena_alloc(r->arena, 48);
        size_t n = 0;
        e[n++] = '"';
        n += pv_u64_hex(e + n, (uint64_t)mtime);
        e[n++] = '-';
        n += pv_u64_hex(e + n, (uint64_t)f->size);
        e[n++] = '"';
        etag = (pv_str_t){e, n};
        fld[nf++] = (pv_header_t){PV_STR("ETag"), etag};
    }
    if (precondition_answer(hr, s, etag, mtime, fld, nf))
        return;
    pv_resp_head_t h = {.status = 200, .content_type = r->accel_type.p ? r->accel_type : pv_static_type(s, r->uri),
                        .content_length = f->size};
    if (f->gz) /* NGINX's gzip_static answers no range */
        fld[nf++] = (pv_header_t){PV_STR("Content-Encoding"), PV_STR("gzip")};
    pv_static_answer(hr, f, &h, fld, nf, etag, mtime, !f->gz, 0);
}

/* If-Range against the ETag and Last-Modified the answer will carry:
 * add_header's when it replaces them (NGINX's headers filter runs before
 * its range filter; the preconditions above saw the file's own). */
static int if_range(pv_hreq_t *hr, pv_str_t value, pv_str_t etag, time_t mtime)
{
    pv_str_t lm;
    pv_hfilter_replaced(hr, 200, "ETag", 4, &etag);
    if (pv_hfilter_replaced(hr, 200, "Last-Modified", 13, &lm))
        mtime = lm.len ? pv_http_time_parse(lm) : (time_t)-1;
    return pv_range_if_range(value, etag, mtime);
}

void pv_static_answer(pv_hreq_t *hr, pv_file_t *f, pv_resp_head_t *h, pv_header_t *fld, int nf, pv_str_t etag,
                      time_t mtime, int ranges, int validate)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    r->notmod_off = 1; /* the validators are tested here, before the file is read */
    if (validate && h->status == 200 && precondition_answer(hr, s, etag, mtime, fld, nf))
        return;
    h->fields = fld; /* charset sees a Content-Encoding (gzip_static) */
    h->nfields = nf;
    if (pv_charset_prepare(hr, h))
        ranges = 0; /* recoded to or from utf-8: the length is not known (NGINX's range filter declines) */
    if (ranges && pv_bf_changes(hr, h))
        ranges = 0; /* a body filter changes it: no range of it, nor Accept-Ranges */
    const pv_header_t *range = ranges && h->status == 200 ? pv_request_header(r, "Range", 5) : NULL;
    const pv_header_t *ifr = pv_request_header(r, "If-Range", 8);
    int kind = PV_RANGE_NONE;
    if (range && s->max_ranges > 0 && (!ifr || if_range(hr, ifr->value, etag, mtime)))
        kind = pv_range_parse(range->value, f->size, s->max_ranges, f->ranges, PV_FILE_MAX_RANGES, &f->nranges);
    if (kind == PV_RANGE_NONE && s->max_ranges > 0 && ranges && h->status == 200)
        fld[nf++] = (pv_header_t){PV_STR("Accept-Ranges"), PV_STR("bytes")};
    if (kind == PV_RANGE_416) {
        int64_t size = f->size; /* f goes with the release */
        pv_file_release(hr);
        pv_static_416(hr, size); /* an error page: the validators go */
        return;
    }
    if (kind == PV_RANGE_NONE) {
        f->ranges[0] = (pv_range_t){0, f->size};
        f->nranges = 1;
    } else if (f->nranges == 1) {
        h->status = 206;
        h->content_length = f->ranges[0].end - f->ranges[0].start;
        char *cr = pv_arena_alloc(r->arena, 80);
        int n = snprintf(cr, 80, "bytes %lld-%lld/%lld", (long long)f->ranges[0].start,
                         (long long)f->ranges[0].end - 1, (long long)f->size);
        fld[nf++] = (pv_header_t){PV_STR("Content-Range"), {cr, (size_t)n}};
    } else {
        h->status = 206;
        multipart(r, f, h);
    }
    h->fields = fld;
    h->nfields = nf;
    if (pv_resp_send_head(hr, h) != PV_OK) {
        pv_file_release(hr);
        pv_resp_abort(hr);
        return;
    }
    if ((r->flags & PV_REQ_F_HEAD) || h->content_length == 0) {
        pv_file_release(hr);
        pv_resp_finish(hr);
        return;
    }
    if (!f->buf && !(f->buf = f->size > PV_BUF_SIZE ? pv_buf_get_size(PV_FILE_BIG_BUF) : pv_buf_get())) {
        pv_cache_nomem("a file buffer", pv_log_client(r));
        pv_file_release(hr);
        pv_resp_abort(hr);
        return;
    }
    f->pos = f->ranges[0].start;
    pv_file_sendfile_check(hr, f);
    pv_file_send(hr);
}

/* ---- the content handler ---------------------------------------------------------- */

/* The file is open (or failed to): 301 for a directory, 404 for what is
 * not a regular file, 405 for POST, else the file. */
static void opened(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    if (f->fd < 0) {
        open_failed(hr, "open()", f->path, f->err);
        return;
    }
    if (S_ISDIR(f->st.st_mode)) {
        char *u = pv_arena_alloc(r->arena, r->uri.len + 2);
        memcpy(u, r->uri.p, r->uri.len);
        u[r->uri.len] = '/';
        pv_str_t url = pv_router_location_url(r, (pv_str_t){u, r->uri.len + 1}, 1, r->args);
        pv_file_release(hr);
        pv_resp_local(hr, 301, url.p, (pv_str_t){NULL, 0});
        return;
    }
    if (!S_ISREG(f->st.st_mode)) {
        pv_log_r(r, PV_LOG_CRIT, "\"%s\" is not a regular file, client: %s", f->path, pv_log_client(r));
        answer(hr, 404);
        return;
    }
    if (PV_STR_IEQ(r->method, "POST")) {
        answer(hr, 405);
        return;
    }
    serve_file(hr, f);
}

static void gz_opened(pv_hreq_t *hr, pv_file_t *f);

/* The file was opened: open_file_cache keeps the result. */
static void opened_store(pv_hreq_t *hr, pv_file_t *f)
{
    pv_ofc_store(&hr->r.loc->conf.st, f->path, f->symlinks, f->sym_from, f->fd, f->err, &f->st);
    if (f->gz == 1)
        gz_opened(hr, f);
    else
        opened(hr, f);
}

/* Open f->path (looked up in open_file_cache first), then opened_store(). */
static void open_path(pv_hreq_t *hr, pv_file_t *f)
{
    const pv_static_conf_t *s = &hr->r.loc->conf.st;
    if (pv_ofc_lookup(s, f->path, f->symlinks, f->sym_from, &f->fd, &f->err, &f->st)) {
        if (f->gz == 1)
            gz_opened(hr, f);
        else
            opened(hr, f);
        return;
    }
    /* the buffer the open reads the start into, when it runs on the pool */
    if (s->aio != PV_AIO_OFF && !f->buf && !(f->buf = pv_buf_get())) {
        answer(hr, 500);
        return;
    }
    if (pv_file_run(f, PV_FOP_OPEN, opened_store))
        opened_store(hr, f);
}

/* gzip_static: the .gz file was opened (or not), as NGINX's gzip_static
 * handler: a missing one, or a client that may not have it, goes on to
 * the file itself; the .gz found sets Vary (with gzip_vary). */
static void gz_opened(pv_hreq_t *hr, pv_file_t *f)
{
    if (f->fd < 0 && f->err != ENOENT && f->err != ENOTDIR && f->err != ENAMETOOLONG) {
        pv_log(PV_LOG_CRIT, "open() \"%s\" failed (%d: %s), client: %s", f->path, f->err, strerror(f->err),
               hr->r.peer_text);
        answer(hr, 500);
        return;
    }
    /* found: Vary with gzip_vary (only `on` asks the client); a directory
     * named FILE.gz is passed over */
    if (f->fd >= 0 && hr->r.loc->conf.zip.gzip_static == PV_GZ_STATIC_ON)
        hr->r.flags |= PV_REQ_F_GZIP_VARY;
    if (f->fd >= 0 && f->gz_ok && !S_ISDIR(f->st.st_mode)) {
        if (!S_ISREG(f->st.st_mode)) {
            pv_log(PV_LOG_CRIT, "\"%s\" is not a regular file, client: %s", f->path, hr->r.peer_text);
            answer(hr, 404);
            return;
        }
        f->gz = 2;
        serve_file(hr, f);
        return;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->err = 0;
    f->pre_n = 0;
    f->gz = 0;
    f->path[strlen(f->path) - 3] = '\0';
    open_path(hr, f);
}

static int content(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    if (!is_get_head_post(r)) {
        pv_resp_local(hr, 405, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (r->uri.len && r->uri.p[r->uri.len - 1] == '/')
        return index_dir(hr);
    pv_file_t *f = pv_file_new(hr, s);
    if (!f) {
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    size_t root;
    if (pv_static_map(r, r->loc, f->path, sizeof(f->path), &root) < 0) {
        answer(hr, 404);
        return PV_PHASE_DONE;
    }
    f->sym_from = symlinks_from(r, s, f->path);
    int gzs = r->loc->conf.zip.gzip_static;
    if (gzs != PV_GZ_STATIC_OFF && !PV_STR_IEQ(r->method, "POST")) {
        /* gzip_static: the .gz file first, for GET and HEAD */
        f->gz_ok = (uint8_t)(gzs == PV_GZ_STATIC_ALWAYS || pv_gzip_ok(hr));
        size_t n = strlen(f->path);
        if ((f->gz_ok || r->loc->conf.zip.gzip_vary) && n + 3 < sizeof(f->path)) {
            memcpy(f->path + n, ".gz", 4);
            f->gz = 1;
        }
    }
    open_path(hr, f);
    return PV_PHASE_DONE;
}

/* ---- variables ------------------------------------------------------------------- */

/* $request_filename: the file the URI maps to */
static int request_filename_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    char path[PATH_MAX];
    size_t root;
    ssize_t n;
    if (!r->loc || (n = pv_static_map(r, r->loc, path, sizeof(path), &root)) < 0)
        return PV_VAL_MISSING;
    *v = (pv_str_t){pv_arena_strndup(r->arena, path, (size_t)n), (size_t)n};
    return PV_VAL_FOUND;
}

/* $document_root: the root or alias, evaluated */
static int document_root_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    char root[PATH_MAX];
    ssize_t n;
    if (!r->loc || (n = eval_root(r, r->loc, root, sizeof(root))) < 0)
        return PV_VAL_MISSING;
    *v = (pv_str_t){pv_arena_strndup(r->arena, root, (size_t)n), (size_t)n};
    return PV_VAL_FOUND;
}

/* $realpath_root: the same with every symbolic link resolved */
static int realpath_root_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    char root[PATH_MAX], real[PATH_MAX];
    if (!r->loc || eval_root(r, r->loc, root, sizeof(root)) < 0)
        return PV_VAL_MISSING;
    if (!realpath(root, real)) {
        pv_log_r(r, PV_LOG_CRIT, "realpath() \"%s\" failed (%d: %s), client: %s", root, errno, strerror(errno),
               pv_log_client(r));
        return PV_VAL_MISSING;
    }
    size_t n = strlen(real);
    *v = (pv_str_t){pv_arena_strndup(r->arena, real, n), n};
    return PV_VAL_FOUND;
}

const pv_var_t pv_vars_static[] = {
    PV_VAR("request_filename", request_filename_cb, 0),
    PV_VAR("document_root", document_root_cb, 0),
    PV_VAR("realpath_root", realpath_root_cb, 0),
    PV_VAR_END,
};

/* ---- the module ------------------------------------------------------------------- */

static int claims(const pv_location_t *loc)
{
    return loc->proxy_pass == NULL;
}

/* The status of a file test for a subrequest: 0 for a regular file,
 * 1 for a directory, else the status NGINX's static module answers. */
static int sub_test(pv_request_t *sr, const char *path)
{
    struct stat st;
    if (pv_static_stat(sr, path, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG ? 404 : errno == EACCES ? 403 : 500;
    return S_ISDIR(st.st_mode) ? 1 : S_ISREG(st.st_mode) ? 0 : 404;
}

/* The status of the index a directory URI gets: 200 for an index file
 * or autoindex, 403 for a directory without either, 404 for none. An
 * absolute index name (an internal redirect in NGINX) is not followed. */
static int sub_index(pv_request_t *sr, char *path, size_t pl)
{
    const pv_static_conf_t *s = &sr->loc->conf.st;
    for (int i = 0; i < s->nindex; i++) {
        char name[PATH_MAX];
        size_t n = pv_cv_eval(&s->index[i], sr, PV_ESCAPE_NONE, name, sizeof(name));
        if (n >= sizeof(name) || n == 0 || name[0] == '/' || memchr(name, '/', n) || pl + n + 1 > PATH_MAX)
            continue;
        memcpy(path + pl, name, n);
        path[pl + n] = '\0';
        if (sub_test(sr, path) == 0)
            return 200;
    }
    path[pl > 1 ? pl - 1 : pl] = '\0';
    int st = sub_test(sr, path);
    return st != 1 ? (st == 0 ? 404 : st) : s->autoindex ? 200 : 403;
}

/* An auth_request subrequest to a location serving files: only its
 * status counts (NGINX reads no body of it), so the file is looked at,
 * not read: 200 for a file, 301 for a directory named without its slash,
 * 404 or 403 as the static and index modules answer. */
static void subrequest(pv_hreq_t *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done)
{
    char path[PATH_MAX];
    size_t root;
    sr->loc = loc;
    ssize_t pl = pv_static_map(sr, loc, path, sizeof(path), &root);
    int status;
    if (pl < 0)
        status = 404;
    else if (sr->uri.len && sr->uri.p[sr->uri.len - 1] == '/')
        status = sub_index(sr, path, (size_t)pl);
    else
        status = (status = sub_test(sr, path)) == 0 ? 200 : status == 1 ? 301 : status;
    done(hr, sr, status);
}

static const pv_content_t static_content = {"static", claims, content, subrequest};

static int mod_init(void)
{
    pv_phases_register(PV_PHASE_PRECONTENT, try_files);
    pv_phases_content(&static_content);
    return PV_OK;
}

static int worker_init(pv_worker_t *w)
{
    if (pv_file_worker_init(w->loop) != PV_OK) {
        pv_log(PV_LOG_EMERG, "the file thread pool could not be set up for worker %d", w->id);
        return PV_ERR;
    }
    return PV_OK;
}

static void worker_exit(pv_worker_t *w)
{
    pv_file_worker_exit();
    pv_ofc_clear();
    pv_fc_keep_clear();
}

pv_module_t pv_static_module = {
    .name = "static",
    .init = mod_init,
    .worker_init = worker_init,
    .worker_exit = worker_exit,
};
