/* Directory listings (NGINX's autoindex module): html, the NGINX page
 * with names cut at 50 columns, json, jsonp and xml; directories first, then by
 * name; names starting with '.' left out. The listing is made whole in
 * the request arena and sent chunked, as NGINX sends it. */
#include "static.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/recode.h"
#include "../core/log.h"
#include "charset.h"
#include "fileop.h"
#include "range.h"
#include "server.h"
#include "accesslog.h"

#define NAME_LEN 50 /* NGX_HTTP_AUTOINDEX_NAME_LEN */

typedef pv_dirent_t entry_t;

/* A growing output in the arena. */
typedef struct out_s {
    pv_arena_t *a;
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        char *np = pv_arena_alloc(o->a, cap);
        if (o->len)
            memcpy(np, o->p, o->len);
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out_t *o, const char *fmt, ...)
{
    char b[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, b, (size_t)PV_MIN((size_t)n, sizeof(b) - 1));
}

/* ngx_escape_html: < > & " as entities */
static void put_html(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': puts_(o, "&lt;"); break;
        case '>': puts_(o, "&gt;"); break;
        case '&': puts_(o, "&amp;"); break;
        case '"': puts_(o, "&quot;"); break;
        default: put(o, s + i, 1);
        }
    }
}

/* ngx_escape_uri NGX_ESCAPE_URI_COMPONENT: all but unreserved characters */
static void put_component(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            put(o, s + i, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            put(o, e, 3);
        }
    }
}

/* ngx_escape_json: '"' and '\\' escaped, controls as \u00XX */
static void put_json(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 0x20) {
            putf(o, "\\u%04x", c);
        } else {
            put(o, s + i, 1);
        }
    }
}

static void html_size(out_t *o, const entry_t *e, int exact)
{
    if (exact) {
        if (e->dir)
            puts_(o, "                  -");
        else
            putf(o, "%19lld", (long long)e->size);
        return;
    }
    if (e->dir) {
        puts_(o, "      -");
        return;
    }
    int64_t len = e->size, size;
    char scale = 0;
    if (len > 1024 * 1024 * 1024 - 1) {
        size = len / (1024 * 1024 * 1024) + (len % (1024 * 1024 * 1024) > 1024 * 1024 * 1024 / 2 - 1);
        scale = 'G';
    } else if (len > 1024 * 1024 - 1) {
        size = len / (1024 * 1024) + (len % (1024 * 1024) > 1024 * 1024 / 2 - 1);
        scale = 'M';
    } else if (len > 9999) {
        size = len / 1024 + (len % 1024 > 511);
        scale = 'K';
    } else {
        size = len;
    }
    if (scale)
        putf(o, "%6lld%c", (long long)size, scale);
    else
        putf(o, " %6lld", (long long)size);
}

/* The characters of a UTF-8 name (its bytes when it is not UTF-8, as
 * ngx_utf8_length()), and in *cut the bytes of its first max ones. */
static size_t utf8_chars(const char *s, size_t len, size_t max, size_t *cut)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    size_t n = 0;
    *cut = len;
    while (p < end) {
        if (n == max)
            *cut = (size_t)(p - (const uint8_t *)s);
        if (*p < 0x80)
            p++;
        else if (pv_utf8_decode(&p, (size_t)(end - p)) > 0x10ffff) {
            *cut = max < len ? max : len;
            return len;
        }
        n++;
    }
    return n;
}

/* A name cut at 50 columns; with utf8 (the response's charset is
 * utf-8) columns are characters, as NGINX counts them. */
static void html_name(out_t *o, const entry_t *e, int utf8)
{
    size_t len = e->len, cut = len > NAME_LEN ? NAME_LEN - 3 : len;
    if (utf8)
        len = utf8_chars(e->name, e->len, len > NAME_LEN ? NAME_LEN - 3 : NAME_LEN, &cut);
    if (len > NAME_LEN) {
        put_html(o, e->name, cut);
        puts_(o, "..&gt;</a>");
        return;
    }
    put_html(o, e->name, e->len);
    if (e->dir && NAME_LEN - len > 0) {
        puts_(o, "/");
        len++;
    }
    puts_(o, "</a>");
    for (size_t k = len; k < NAME_LEN; k++)
        puts_(o, " ");
}

static void html(out_t *o, const pv_request_t *r, const entry_t *e, int n, const pv_static_conf_t *s, int utf8)
{
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    puts_(o, "<html>\r\n<head><title>Index of ");
    put_html(o, r->uri.p, r->uri.len);
    puts_(o, "</title></head>\r\n<body>\r\n<h1>Index of ");
    put_html(o, r->uri.p, r->uri.len);
    puts_(o, "</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for (int i = 0; i < n; i++) {
        puts_(o, "<a href=\"");
        if (strchr(e[i].name, ':'))
            puts_(o, "./");
        put_component(o, e[i].name, e[i].len);
        if (e[i].dir)
            puts_(o, "/");
        puts_(o, "\">");
        html_name(o, &e[i], utf8);
        struct tm tm;
        time_t t = e[i].mtime;
        if (s->autoindex_localtime)
            localtime_r(&t, &tm);
        else
            gmtime_r(&t, &tm);
        putf(o, " %02d-%s-%d %02d:%02d ", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
        html_size(o, &e[i], s->autoindex_exact_size);
        puts_(o, "\r\n");
    }
    puts_(o, "</pre><hr></body>\r\n</html>\r\n");
}

static void json(out_t *o, const entry_t *e, int n)
{
    puts_(o, "[\r\n");
    for (int i = 0; i < n; i++) {
        if (i)
            puts_(o, ",\r\n");
        puts_(o, "{ \"name\":\"");
        put_json(o, e[i].name, e[i].len);
        puts_(o, e[i].dir ? "\", \"type\":\"directory\"" : e[i].other ? "\", \"type\":\"other\"" : "\", \"type\":\"file\"");
        char d[32];
        pv_http_time_format(e[i].mtime, d);
        putf(o, ", \"mtime\":\"%s\"", d);
        if (!e[i].dir && !e[i].other)
            putf(o, ", \"size\":%lld", (long long)e[i].size);
        puts_(o, " }");
    }
    puts_(o, "\r\n]");
}

static void xml(out_t *o, const entry_t *e, int n)
{
    puts_(o, "<?xml version=\"1.0\"?>\r\n<list>\r\n");
    for (int i = 0; i < n; i++) {
        const char *tag = e[i].dir ? "directory" : e[i].other ? "other" : "file";
        struct tm tm;
        time_t t = e[i].mtime;
        gmtime_r(&t, &tm);
        putf(o, "<%s mtime=\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", tag, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (!e[i].dir && !e[i].other)
            putf(o, " size=\"%lld\"", (long long)e[i].size);
        puts_(o, ">");
        put_html(o, e[i].name, e[i].len);
        putf(o, "</%s>\r\n", tag);
    }
    puts_(o, "</list>\r\n");
}

/* jsonp's callback: $arg_callback, letters, digits, '_' and '.' only.
 * 1 with *cb set (empty: none), 0 for an invalid one. */
static int jsonp_callback(const pv_request_t *r, pv_str_t *cb)
{
    *cb = (pv_str_t){NULL, 0};
    const char *p = r->args.p, *e = r->args.p + r->args.len;
    while (p && p < e) {
        const char *amp = memchr(p, '&', (size_t)(e - p));
        const char *end = amp ? amp : e;
        if (end - p >= 9 && strncasecmp(p, "callback=", 9) == 0) {
            *cb = (pv_str_t){p + 9, (size_t)(end - p - 9)};
            break;
        }
        p = amp ? amp + 1 : e;
    }
    if (cb->len > 128)
        return 0;
    for (size_t i = 0; i < cb->len; i++) {
        char c = cb->p[i];
        if (!(c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void pv_autoindex(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_static_conf_t *s = &r->loc->conf.st;
    const entry_t *e = f->ents;
    int n = f->nents;
    const char *path = f->path;
    if (f->err) {
        int err = f->err, status = 500, level = PV_LOG_CRIT;
        if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG)
            status = 404, level = PV_LOG_ERR;
        else if (err == EACCES)
            status = 403, level = PV_LOG_ERR;
        pv_log_r(r, level, "opendir() \"%s\" failed (%d: %s), client: %s", path, err, strerror(err), pv_log_client(r));
        pv_file_release(hr);
        pv_resp_local(hr, status, NULL, (pv_str_t){NULL, 0});
        return;
    }
    out_t o = {r->arena, NULL, 0, 0};
    pv_str_t type = PV_STR("text/html"), cb;
    switch (s->autoindex_format) {
    case PV_AUTOINDEX_JSONP:
        if (!jsonp_callback(r, &cb)) {
            pv_log_r(r, PV_LOG_ERR, "client sent invalid callback, client: %s", pv_log_client(r));
            pv_file_release(hr);
            pv_resp_local(hr, 400, NULL, (pv_str_t){NULL, 0});
            return;
        }
        if (cb.len) {
            puts_(&o, "/* callback */\r\n");
            put(&o, cb.p, cb.len);
            puts_(&o, "(");
        }
        json(&o, e, n);
        if (cb.len)
            puts_(&o, ");");
        type = cb.len ? PV_STR("application/javascript") : PV_STR("application/json");
        break;
    case PV_AUTOINDEX_JSON:
        json(&o, e, n);
        type = PV_STR("application/json");
        break;
    case PV_AUTOINDEX_XML:
        xml(&o, e, n);
        type = PV_STR("text/xml; charset=utf-8");
        break;
    default: {
        /* the charset is known before the listing: names are cut by characters in utf-8 */
        pv_resp_head_t t = {.status = 200, .content_type = type, .content_length = -1};
        pv_charset_prepare(hr, &t);
        type = t.content_type;
        html(&o, r, e, n, s, pv_charset_utf8(&t));
    }
    }
    pv_file_release(hr); /* the listing is in the arena */
    pv_resp_head_t h = {.status = 200,
                        .content_type = type,
                        .content_length = -1,
                        .frame = (r->flags & PV_REQ_F_HEAD) ? PV_FRAME_NONE : PV_FRAME_CHUNKED};
    int rc = pv_resp_send_head(hr, &h);
    if (rc == PV_RESP_PRECONDITION) {
        pv_resp_error(hr, 412); /* the not-modified filter */
        return;
    }
    if (rc != PV_OK) {
        pv_resp_abort(hr);
        return;
    }
    if (!(r->flags & PV_REQ_F_HEAD) && o.len)
        pv_resp_send_body(hr, &(pv_str_t){o.p, o.len}, 1);
    pv_resp_finish(hr);
}
