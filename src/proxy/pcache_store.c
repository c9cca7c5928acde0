/* Storing a response in the cache (pcache.h): whether it may be stored
 * and until when, as NGINX decides from X-Accel-Expires, Cache-Control,
 * Expires, Set-Cookie and Vary (each unless proxy_ignore_headers names
 * it) and proxy_cache_valid; then a tee on the response calls writes the
 * head and the body into a temp file as they go to the client, renamed
 * into the entry's place once the response is complete. */
#include "pcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/file.h"
#include "../core/log.h"
#include "../http/range.h"
#include "../http/server.h"

int pv_pcache_serve_stale(pv_proxy_t *px, int cond);
int pv_pcache_main_key(pv_pcache_t *c);

static int has_token(pv_str_t v, const char *t)
{
    size_t n = strlen(t);
    for (size_t i = 0; i + n <= v.len; i++)
        if (strncasecmp(v.p + i, t, n) == 0)
            return 1;
    return 0;
}

/* "max-age=N" style: N, or -1 when absent or not a number */
static int64_t directive_num(pv_str_t v, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n <= v.len; i++) {
        if (strncasecmp(v.p + i, name, n) != 0 || (i && v.p[i - 1] != ' ' && v.p[i - 1] != ','))
            continue;
        int64_t x = 0;
        size_t k = i + n, d = 0;
        for (; k < v.len && v.p[k] >= '0' && v.p[k] <= '9' && d < 12; k++, d++)
            x = x * 10 + (v.p[k] - '0');
        return d ? x : -1;
    }
    return -1;
}

static int64_t parse_secs(pv_str_t v, int *abs)
{
    *abs = v.len && v.p[0] == '@';
    int64_t x = 0;
    size_t i = *abs, d = 0;
    for (; i < v.len && v.p[i] >= '0' && v.p[i] <= '9' && d < 12; i++, d++)
        x = x * 10 + (v.p[i] - '0');
    return d && i == v.len ? x : -1;
}

/* "stale-while-revalidate=N" style past fresh-until: N (at most
 * UINT32_MAX), -1 absent, -2 not a number (NGINX stores nothing then). */
static int64_t extension_num(pv_str_t v, const char *name)
{
    int64_t x = directive_num(v, name);
    if (x >= 0)
        return x > UINT32_MAX ? UINT32_MAX : x;
    size_t n = strlen(name);
    for (size_t i = 0; i + n <= v.len; i++)
        if (strncasecmp(v.p + i, name, n) == 0 && (i == 0 || v.p[i - 1] == ' ' || v.p[i - 1] == ','))
            return -2;
    return -1;
}

/* A Cache-Control value's extensions: stale-while-revalidate lets the
 * entry answer while it is updated (and for an error), stale-if-error
 * for an error; they hold whatever else sets the entry's time, as
 * NGINX keeps them with X-Accel-Expires. -1 when one is malformed. */
static int cc_extensions(pv_str_t v, pv_pcache_t *c)
{
    int64_t w = extension_num(v, "stale-while-revalidate="), e = extension_num(v, "stale-if-error=");
    if (w == -2 || e == -2)
        return -1;
    if (w >= 0)
        c->updating_sec = c->error_sec = (uint32_t)w;
    if (e >= 0)
        c->error_sec = (uint32_t)e;
    return 0;
}

/* Until when a response may be kept (seconds) by its fields: -1 when a
 * field forbids storing it (NGINX's u->cacheable cleared while the head
 * is parsed), 0 when none gives a time; *vary gets its Vary value, c its
 * Cache-Control extensions. */
static int64_t fields_time(pv_request_t *r, pv_pcache_t *c, const pv_header_t *fs, int n, pv_str_t *vary)
{
    int ign = c->use.ignore == PV_UNSET ? 0 : c->use.ignore;
    int64_t now = (int64_t)time(NULL), xae = 0, cc = 0, exp = 0;
    int private = 0;
    for (int i = 0; i < n; i++) {
        pv_str_t nm = fs[i].name, v = fs[i].value;
        if (!(ign & PV_IGN_X_ACCEL_EXPIRES) && PV_STR_IEQ(nm, "X-Accel-Expires")) {
            int abs;
            int64_t x = parse_secs(v, &abs);
            if (x == 0 && !abs)
                return -1;
            if (x > 0)
                xae = abs ? x : now + x;
        } else if (!(ign & PV_IGN_CACHE_CONTROL) && PV_STR_IEQ(nm, "Cache-Control")) {
            if (has_token(v, "no-cache") || has_token(v, "no-store") || has_token(v, "private"))
                private = 1;
            else if (cc_extensions(v, c) < 0)
                return -1;
            int64_t x = directive_num(v, "s-maxage=");
            if (x < 0)
                x = directive_num(v, "max-age=");
            if (x == 0)
                private = 1;
            else if (x > 0 && !cc)
                cc = now + x;
        } else if (!(ign & PV_IGN_EXPIRES) && PV_STR_IEQ(nm, "Expires")) {
            time_t t = pv_http_time_parse(v);
            exp = t == -1 || t <= now ? -1 : (int64_t)t;
        } else if (!(ign & PV_IGN_SET_COOKIE) && PV_STR_IEQ(nm, "Set-Cookie")) {
            return -1;
        } else if (!(ign & PV_IGN_VARY) && PV_STR_IEQ(nm, "Vary")) {
            /* several Vary lines: all their names, as NGINX since 1.23 */
            if (has_token(v, "*") || (vary->len ? vary->len + 1 : 0) + v.len > PV_FC_VARY_MAX)
                return -1;
            if (vary->len) {
                char *j = pv_arena_printf(r->arena, "%.*s,%.*s", (int)vary->len, vary->p, (int)v.len, v.p);
                if (!j)
                    return -1;
                v = (pv_str_t){j, vary->len + 1 + v.len};
            }
            *vary = v;
        }
    }
    if (xae)
        return xae;
    if (private)
        return -1;
    if (cc)
        return cc;
    if (exp)
        return exp > 0 ? exp : -1;
    return 0;
}

/* proxy_cache_valid's time for status: fresh until, or 0. */
static int64_t valid_time(const pv_pcache_conf_t *pc, int status)
{
    for (int i = 0; i < pc->nvalid; i++)
        if (pc->valid[i].status == status || pc->valid[i].status == 0)
            return pc->valid[i].ms / 1000 > 0 ? (int64_t)time(NULL) + pc->valid[i].ms / 1000 : 0;
    return 0;
}

/* Until when the response may be kept (seconds): -1 when a field forbids
 * storing it, 0 when neither its fields nor proxy_cache_valid give it a
 * time. */
static int64_t freshness(pv_request_t *r, pv_pcache_t *c, int status, const pv_header_t *fs, int n,
                         pv_str_t *vary)
{
    int64_t t = fields_time(r, c, fs, n, vary);
    return t ? t : valid_time(c->pc, status);
}

/* ---- the tee ------------------------------------------------------------------ */

static void store_fail(pv_hreq_t *hr, pv_pcache_t *c, const char *what)
{
    if (what)
        pv_log(PV_LOG_CRIT, "%s \"%s\" failed (%d: %s) while caching, client: %s", what, c->temp, errno,
               strerror(errno), hr->r.peer_text);
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->temp);
        c->fd = -1;
    }
    hr->tee = NULL;
    pv_fc_filled(&c->ref, 0, 0, 0);
}

static size_t add_line(char *buf, size_t at, size_t cap, pv_str_t name, pv_str_t value)
{
    if (at + name.len + value.len + 4 > cap)
        return cap + 1;
    memcpy(buf + at, name.p, name.len);
    at += name.len;
    memcpy(buf + at, ": ", 2);
    at += 2;
    memcpy(buf + at, value.p, value.len);
    at += value.len;
    memcpy(buf + at, "\r\n", 2);
    return at + 2;
}

static void tee_head(pv_hreq_t *hr, const pv_resp_head_t *h)
{
    pv_pcache_t *c = hr->tee_ctx;
    char head[PV_FC_HEAD_MAX];
    size_t n = (size_t)snprintf(head, sizeof(head), "%03d %.*s\r\n", h->status, (int)PV_MIN(h->reason.len, 256),
                                h->reason.p ? h->reason.p : "");
    pv_fc_entry_t e;
    memset(&e, 0, sizeof(e));
    e.last_modified = -1;
    if (h->content_type.p)
        n = add_line(head, n, sizeof(head), (pv_str_t)PV_STR("Content-Type"), h->content_type);
    const pv_request_t *r = c->req ? c->req : &hr->r; /* an auth subrequest's, or hr's */
    if (r->accel_charset.len && n <= sizeof(head)) /* hidden from the client, kept for the next hit */
        n = add_line(head, n, sizeof(head), (pv_str_t)PV_STR("X-Accel-Charset"), r->accel_charset);
    if (h->location.p && n <= sizeof(head))
        n = add_line(head, n, sizeof(head), (pv_str_t)PV_STR("Location"), h->location);
    for (int i = 0; i < h->nfields && n <= sizeof(head); i++) {
        const pv_header_t *f = &h->fields[i];
        if (PV_STR_IEQ(f->name, "ETag"))
            e.etag = f->value;
        else if (PV_STR_IEQ(f->name, "Last-Modified"))
            e.last_modified = (int64_t)pv_http_time_parse(f->value);
        n = add_line(head, n, sizeof(head), f->name, f->value);
    }
    char *hdr = malloc(PV_FC_HEAD_MAX);
    if (n > sizeof(head) || !hdr) {
        free(hdr);
        store_fail(hr, c, NULL); /* too large to keep */
        return;
    }
    memcpy(e.md5, c->ref.md5, 16);
    memcpy(e.variant, c->variant, 16);
    e.valid_sec = c->valid_sec;
    e.updating_sec = c->updating_sec;
    e.error_sec = c->error_sec;
    e.date = (int64_t)time(NULL);
    e.status = h->status;
    e.key = c->key;
    e.head = (pv_str_t){head, n};
    e.vary = c->vary;
    e.body_len = 0;
    ssize_t hl = pv_fc_entry_write(&e, hdr, PV_FC_HEAD_MAX);
    c->expect = (r->flags & PV_REQ_F_HEAD) && !c->head_as_get && !c->use.fastcgi ? 0 : h->content_length;
    if (hl < 0) {
        free(hdr);
        store_fail(hr, c, NULL);
        return;
    }
    const char *tdir = NULL;
    const pv_temp_path_t *tp = c->use.temp;
    if (c->zone->use_temp_path && tp)
        tdir = tp->path;
    pv_fc_temp_path(&c->ref, tdir, c->temp, sizeof(c->temp));
    c->fd = open(c->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (c->fd < 0 && errno == ENOENT && tdir && (mkdir(tdir, 0700) == 0 || errno == EEXIST))
        c->fd = open(c->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* the default temp path, made now */
    if (c->fd < 0 || pv_file_write_all(c->fd, hdr, (size_t)hl) < 0) {
        free(hdr);
        store_fail(hr, c, c->fd < 0 ? "open()" : "write()");
        return;
    }
    free(hdr);
}

static void tee_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    pv_pcache_t *c = hr->tee_ctx;
    if (c->fd < 0)
        return;
    for (int i = 0; i < n; i++) {
        if (spans[i].len && pv_file_write_all(c->fd, spans[i].p, spans[i].len) < 0) {
            store_fail(hr, c, "write()");
            return;
        }
        c->written += (int64_t)spans[i].len;
    }
}

static void tee_done(pv_hreq_t *hr, int complete)
{
    pv_pcache_t *c = hr->tee_ctx;
    if (c->fd < 0)
        return;
    struct stat st;
    if (!complete || (c->expect >= 0 && c->written != c->expect)) {
        store_fail(hr, c, NULL);
        return;
    }
    if (pwrite(c->fd, &c->written, sizeof(c->written), 64) != (ssize_t)sizeof(c->written) || fstat(c->fd, &st) != 0) {
        store_fail(hr, c, "pwrite()");
        return;
    }
    close(c->fd);
    c->fd = -1;
    if (pv_fc_commit(&c->ref, c->temp) != 0) {
        pv_log(PV_LOG_CRIT, "rename() \"%s\" to \"%s\" failed (%d: %s) while caching, client: %s", c->temp,
               c->ref.path, errno, strerror(errno), hr->r.peer_text);
        unlink(c->temp);
        pv_fc_filled(&c->ref, 0, 0, 0);
        return;
    }
    c->ref.updating_sec = c->updating_sec;
    c->ref.error_sec = c->error_sec;
    pv_fc_filled(&c->ref, 1, PV_FC_FS_SIZE(st.st_size), c->valid_sec);
}

static const pv_tee_t store_tee = {tee_head, tee_body, tee_done};

void pv_pcache_unbuffered(pv_hreq_t *hr)
{
    if (hr->tee == &store_tee)
        store_fail(hr, hr->tee_ctx, NULL);
}

/* ---- the decision --------------------------------------------------------------- */

/* The upstream answered 304 to the entry's validators: the entry is
 * fresh again and answers. Its time is the 304's, else the one its own
 * stored fields give from now, else proxy_cache_valid's for its status,
 * as NGINX's; so are its Cache-Control extensions. */
static void revalidated(pv_proxy_t *px, pv_pcache_t *c, const pv_header_t *fields, int nfields)
{
    pv_str_t vary = {NULL, 0};
    c->updating_sec = c->error_sec = 0;
    int64_t valid = fields_time(px->r, c, fields, nfields, &vary);
    if (valid <= 0) {
        c->updating_sec = c->error_sec = 0;
        valid = fields_time(px->r, c, c->reval_fields, c->reval_nfields, &vary);
    }
    if (valid <= 0)
        valid = valid_time(c->pc, c->reval_status);
    if (valid > 0) {
        uint32_t stale[2] = {c->updating_sec, c->error_sec};
        int fd = open(c->ref.path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0 && pwrite(fd, &valid, sizeof(valid), PV_FC_OFF_VALID) == (ssize_t)sizeof(valid) &&
            pwrite(fd, stale, sizeof(stale), PV_FC_OFF_STALE) == (ssize_t)sizeof(stale)) {
            c->ref.updating_sec = stale[0];
            c->ref.error_sec = stale[1];
            pv_fc_refresh(&c->ref, valid);
        }
        if (fd >= 0)
            close(fd);
    }
    pv_fc_filled(&c->ref, 0, 0, 0);
    pv_pcache_serve_entry_later(px, PV_CACHE_REVALIDATED);
}

void pv_pcache_intercepted(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields)
{
    pv_request_t *r = px->r;
    pv_pcache_t *c = r->pcache;
    if (!c || !c->ref.fill || px->sub_done)
        return;
    pv_str_t vary = {NULL, 0};
    int64_t valid = 0;
    if (!c->no_store && !pv_pcache_any(r, c->pc->no_cache, c->pc->nno_cache))
        valid = freshness(r, c, status, fields, nfields, &vary);
    if (valid > 0)
        pv_fc_error(&c->ref, status, valid);
    else
        pv_fc_filled(&c->ref, 0, 0, 0);
}

void pv_pcache_failed_status(pv_proxy_t *px, int status)
{
    pv_pcache_t *c = px->r->pcache;
    if (!c || !c->ref.fill || c->no_store || (status != 502 && status != 504))
        return;
    int64_t valid = valid_time(c->pc, status);
    if (valid > 0)
        pv_fc_error(&c->ref, status, valid);
}

/* The status the upstream answered, in $upstream_status, when the entry
 * answers in its place. */
static int answered_by_entry(pv_request_t *r, int status)
{
    size_t n = strlen(r->upstream_status);
    snprintf(r->upstream_status + n, sizeof(r->upstream_status) - n, "%s%d", n ? ", " : "", status);
    return 1;
}

int pv_pcache_entry_answers(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields)
{
    pv_request_t *r = px->r;
    pv_pcache_t *c = r->pcache;
    if (!c || px->sub_done)
        return 0;
    static const struct {
        int status, flag;
    } stale_on[] = {{500, PV_NEXT_F_HTTP_500}, {502, PV_NEXT_F_HTTP_502}, {503, PV_NEXT_F_HTTP_503},
                    {504, PV_NEXT_F_HTTP_504}, {403, PV_NEXT_F_HTTP_403}, {404, PV_NEXT_F_HTTP_404},
                    {429, PV_NEXT_F_HTTP_429}};
    for (size_t i = 0; i < PV_NELEM(stale_on); i++)
        if (stale_on[i].status == status && pv_pcache_serve_stale(px, stale_on[i].flag))
            return answered_by_entry(r, status);
    if (c->revalidating && status == 304) {
        revalidated(px, c, fields, nfields);
        return answered_by_entry(r, status);
    }
    return 0;
}

void pv_pcache_response(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    pv_pcache_t *c = r->pcache;
    if (!c)
        return;
    /* with proxy_cache_convert_head off, a HEAD's answer is stored as it
     * is, as NGINX does (the key then had better name the method) */
    pv_str_t vary = {NULL, 0};
    c->updating_sec = c->error_sec = 0;
    c->valid_sec = freshness(r, c, status, fields, nfields, &vary);
    c->head_cacheable = c->ref.fill && !c->no_store && c->valid_sec >= 0;
    r->notmod_off = !c->head_cacheable; /* NGINX: disable_not_modified = !u->cacheable */
    if (!c->ref.fill || c->no_store || status == 206 || status < 200)
        goto no;
    if (pv_pcache_any(r, c->pc->no_cache, c->pc->nno_cache))
        goto no;
    if (c->valid_sec <= 0)
        goto no;
    uint8_t v[16] = {0};
    if (vary.len) {
        c->vary = (pv_str_t){pv_arena_strndup(r->arena, vary.p, vary.len), vary.len};
        pv_pcache_variant(r, c->vary, v);
    }
    /* a variant is stored under its secondary key while its Vary is the
     * one that key was made of, else under the main key */
    if (c->secondary && (!vary.len || memcmp(v, c->variant, 16) != 0) && pv_pcache_main_key(c) < 0)
        goto no;
    memcpy(c->variant, v, 16);
    hr->tee = &store_tee;
    hr->tee_ctx = c;
    return;
no:
    pv_fc_filled(&c->ref, 0, 0, 0);
}
