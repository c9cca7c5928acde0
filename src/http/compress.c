/* Whether a response is compressed, and its head when it is: NGINX's
 * gzip header filter and ngx_http_gzip_ok() (http core), ngx_brotli's
 * header filter, and the client's Accept-Encoding q-values choosing
 * between gzip and Brotli. The encoder itself is zfilter.c. */
#include "compress.h"

#include "bfilter.h"

#include <string.h>
#include <strings.h>
#include <time.h>
#include <brotli/encode.h>
#include <zlib.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "server.h"
#include "uvars.h"

/* ---- Accept-Encoding ------------------------------------------------------- */

/* A q-value as NGINX reads it: 0 or 1, then up to three decimals; more
 * than 1, or anything else, is 0. p points after "q=". */
static int qvalue(const char *p, const char *end)
{
    if (p == end || (*p != '0' && *p != '1'))
        return 0;
    int q = (*p++ - '0') * 1000;
    if (p == end || *p == ',' || *p == ' ')
        return q;
    if (*p++ != '.')
        return 0;
    int scale = 100, n = 0;
    while (p < end && *p != ',' && *p != ' ') {
        if (*p < '0' || *p > '9' || ++n > 3)
            return 0;
        q += (*p++ - '0') * scale;
        scale /= 10;
    }
    return q > 1000 ? 0 : q;
}

int pv_accept_coding_q(pv_str_t v, const char *coding, size_t len)
{
    const char *p = v.p, *end = v.p + v.len;
    /* the first mention starting the value or after ',' or ' ' */
    for (;;) {
        const char *m = NULL;
        for (const char *s = p; s + len <= end && !m; s++)
            if (strncasecmp(s, coding, len) == 0)
                m = s;
        if (!m)
            return -1;
        if (m == v.p || m[-1] == ',' || m[-1] == ' ') {
            p = m + len;
            break;
        }
        p = m + len;
    }
    while (p < end) {
        char c = *p++;
        if (c == ',')
            return 1000;
        if (c == ';')
            goto params;
        if (c != ' ')
            return 0;
    }
    return 1000;
params:
    while (p < end) {
        char c = *p++;
        if (c == 'q' || c == 'Q')
            goto equal;
        if (c != ' ')
            return 0;
    }
    return 1000;
equal:
    if (end - p < 2 || *p++ != '=')
        return 0;
    return qvalue(p, end);
}

int pv_ua_msie6(pv_str_t ua)
{
    const char *m = memmem(ua.p, ua.len, "MSIE ", 5);
    if (!m || memmem(ua.p, ua.len, "Opera", 5))
        return 0;
    const char *end = ua.p + ua.len;
    if (m + 7 >= end || m[6] != '.')
        return 0;
    if (m[5] == '4' || m[5] == '5')
        return 1;
    return m[5] == '6' && !memmem(m + 8, (size_t)(end - m - 8), "SV1", 3);
}

/* ---- the response head ----------------------------------------------------- */

static const pv_header_t *field(const pv_resp_head_t *h, const char *name, size_t len)
{
    for (int i = 0; i < h->nfields; i++)
        if (h->fields[i].name.len == len && strncasecmp(h->fields[i].name.p, name, len) == 0)
            return &h->fields[i];
    return NULL;
}

/* Whether a comma-separated list field holds token (NGINX's
 * ngx_http_parse_multi_header_lines()). */
static int has_token(const pv_header_t *f, const char *tok, size_t len)
{
    const char *p = f->value.p, *end = p + f->value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '=' && *p != ';')
            p++;
        if ((size_t)(p - s) == len && strncasecmp(s, tok, len) == 0)
            return 1;
        while (p < end && *p != ',')
            p++;
    }
    return 0;
}

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds; -1 when
 * it is not one. */
static int64_t http_time(pv_str_t v)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    char buf[64];
    if (v.len >= sizeof(buf))
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    const char *e = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e || *e)
        return -1;
    return (int64_t)timegm(&tm);
}

/* gzip_proxied for a request that came through a proxy (it has Via). */
static int proxied_ok(const pv_request_t *r, const pv_resp_head_t *h, int p)
{
    if (p & PV_GZ_PROXIED_OFF)
        return 0;
    if (p & PV_GZ_PROXIED_ANY)
        return 1;
    if ((p & PV_GZ_PROXIED_AUTH) && pv_request_header(r, "Authorization", 13))
        return 1;
    const pv_header_t *e = field(h, "Expires", 7);
    if (e) {
        if (!(p & PV_GZ_PROXIED_EXPIRED))
            return 0;
        int64_t expires = http_time(e->value), date = (int64_t)time(NULL);
        const pv_header_t *d = field(h, "Date", 4);
        if (d)
            date = http_time(d->value);
        return expires >= 0 && date >= 0 && expires < date;
    }
    const pv_header_t *cc = field(h, "Cache-Control", 13);
    if (cc)
        return ((p & PV_GZ_PROXIED_NO_CACHE) && has_token(cc, "no-cache", 8)) ||
               ((p & PV_GZ_PROXIED_NO_STORE) && has_token(cc, "no-store", 8)) ||
               ((p & PV_GZ_PROXIED_PRIVATE) && has_token(cc, "private", 7));
    if ((p & PV_GZ_PROXIED_NO_LM) && field(h, "Last-Modified", 13))
        return 0;
    if ((p & PV_GZ_PROXIED_NO_ETAG) && field(h, "ETag", 4))
        return 0;
    return 1;
}

/* The request side of NGINX's ngx_http_gzip_ok(), less Accept-Encoding. */
static int request_ok(const pv_request_t *r, const pv_resp_head_t *h, const pv_zip_conf_t *z)
{
    if (r->http_major * 10 + r->http_minor < z->gzip_http_version)
        return 0;
    if (pv_request_header(r, "Via", 3) && !proxied_ok(r, h, z->gzip_proxied))
        return 0;
    const pv_header_t *ua = pv_request_header(r, "User-Agent", 10);
    if (ua) {
        for (int i = 0; i < z->ngzip_disable; i++)
            if (pv_regex_test(z->gzip_disable[i], ua->value) == 1)
                return 0;
        if (z->gzip_disable_msie6 && pv_ua_msie6(ua->value))
            return 0;
    }
    return 1;
}

/* The response side: may this coding apply at all (min_length, types)? */
static int response_ok(const pv_resp_head_t *h, const pv_mime_list_t *types, int64_t min_length)
{
    /* "*" takes a response without Content-Type too, as in NGINX */
    return (h->content_length == -1 || h->content_length >= min_length) &&
           (types->any || (h->content_type.p && pv_bf_type_listed(types, h->content_type)));
}

static int rewrite_head(pv_hreq_t *hr, pv_resp_head_t *h, int coding, int vary, int head_only)
{
    pv_header_t *f = pv_arena_alloc(&hr->arena, sizeof(*f) * (size_t)(h->nfields + 2));
    if (!f)
        return PV_RESP_NOMEM;
    int n = 0;
    if (vary)
        f[n++] = (pv_header_t){PV_STR("Vary"), PV_STR("Accept-Encoding")};
    for (int i = 0; i < h->nfields; i++) {
        pv_header_t x = h->fields[i];
        if (coding && x.name.len == 13 && strncasecmp(x.name.p, "Accept-Ranges", 13) == 0)
            continue;
        if (coding == PV_CODING_GUNZIP && x.name.len == 16 && strncasecmp(x.name.p, "Content-Encoding", 16) == 0)
            continue;
        int keep = coding && x.name.len == 4 && strncasecmp(x.name.p, "ETag", 4) == 0
                       ? pv_bf_weak_etag(&hr->arena, &x.value) : 1;
        if (keep < 0)
            return PV_RESP_NOMEM;
        if (keep)
            f[n++] = x;
    }
    if (coding == PV_CODING_GZIP)
        f[n++] = (pv_header_t){PV_STR("Content-Encoding"), PV_STR("gzip")};
    else if (coding == PV_CODING_BR)
        f[n++] = (pv_header_t){PV_STR("Content-Encoding"), PV_STR("br")};
    h->fields = f;
    h->nfields = n;
    if (coding) {
        h->content_length = -1;
        h->frame = head_only ? PV_FRAME_NONE : PV_FRAME_CHUNKED;
    }
    return PV_OK;
}

/* The coding for the response described by h (PV_CODING_*), and in
 * *vary whether Vary: Accept-Encoding goes with it. */
static int decide(const pv_hreq_t *hr, const pv_resp_head_t *h, const pv_zip_conf_t *z, int *vary)
{
    const pv_request_t *r = &hr->r;
    *vary = 0;
    if (!z || (!z->gzip && !z->brotli) || (h->status != 200 && h->status != 403 && h->status != 404) ||
        h->upgrade)
        return PV_CODING_NONE;
    const pv_header_t *ce = field(h, "Content-Encoding", 16);
    const pv_header_t *cc = field(h, "Cache-Control", 13);
    if ((ce && ce->value.len) || (cc && has_token(cc, "no-transform", 12)))
        return PV_CODING_NONE;
    int gz = z->gzip && response_ok(h, z->gzip_types, z->gzip_min_length);
    int br = z->brotli && response_ok(h, z->brotli_types, z->brotli_min_length);
    if (!gz && !br)
        return PV_CODING_NONE;
    *vary = z->gzip_vary;
    const pv_header_t *ae = pv_request_header(r, "Accept-Encoding", 15);
    int gq = -1, bq = -1;
    if (ae && request_ok(r, h, z)) {
        gq = gz ? pv_accept_coding_q(ae->value, "gzip", 4) : -1;
        bq = br ? pv_accept_coding_q(ae->value, "br", 2) : -1;
    }
    if (bq > 0 && bq >= gq)
        return PV_CODING_BR;
    return gq > 0 ? PV_CODING_GZIP : PV_CODING_NONE;
}

static const pv_zip_conf_t *zconf(const pv_hreq_t *hr)
{
    const pv_request_t *r = &hr->r;
    return r->loc ? &r->loc->conf.zip : r->srv ? &r->srv->conf.zip : NULL;
}

/* NGINX's gunzip header filter: a gzip body for a client that does not
 * take gzip is decoded; one that does gets it as it is. -1: not gzip. */
static int gunzip_wanted(const pv_resp_head_t *h, const pv_zip_conf_t *z)
{
    const pv_header_t *ce = field(h, "Content-Encoding", 16);
    return z && z->gunzip && ce && ce->value.len == 4 && strncasecmp(ce->value.p, "gzip", 4) == 0 &&
           h->status >= 200 && h->status != 204 && h->status != 304;
}

static int gunzip_decide(const pv_hreq_t *hr, const pv_resp_head_t *h, const pv_zip_conf_t *z, int *vary)
{
    if (!gunzip_wanted(h, z))
        return -1;
    *vary = z->gzip_vary;
    const pv_header_t *ae = pv_request_header(&hr->r, "Accept-Encoding", 15);
    if (ae && request_ok(&hr->r, h, z) && pv_accept_coding_q(ae->value, "gzip", 4) > 0)
        return PV_CODING_NONE;
    return PV_CODING_GUNZIP;
}

int pv_gzip_ok(const pv_hreq_t *hr)
{
    const pv_zip_conf_t *z = zconf(hr);
    const pv_header_t *ae = pv_request_header(&hr->r, "Accept-Encoding", 15);
    pv_resp_head_t none = {.content_length = -1};
    return z && ae && request_ok(&hr->r, &none, z) && pv_accept_coding_q(ae->value, "gzip", 4) > 0;
}

int pv_compress_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    const pv_zip_conf_t *z = zconf(hr);
    int vary, coding = gunzip_decide(hr, h, z, &vary);
    if (coding < 0)
        coding = decide(hr, h, z, &vary);
    if ((hr->r.flags & PV_REQ_F_GZIP_VARY) && z && z->gzip_vary)
        vary = 1; /* gzip_static found the .gz file */
    if (!coding && !vary)
        return PV_OK;
    /* a HEAD gets the head of the encoded response, as from NGINX */
    int head_only = (hr->r.flags & PV_REQ_F_HEAD) != 0;
    if (coding && !head_only && pv_compress_start(hr, coding, z, h->content_length) != PV_OK) {
        pv_cache_nomem("a compression filter", pv_log_client(&hr->r));
        return PV_RESP_NOMEM;
    }
    return rewrite_head(hr, h, coding, vary, head_only);
}

int pv_compress_sub_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    const pv_zip_conf_t *z = zconf(hr);
    if (!gunzip_wanted(h, z))
        return PV_OK;
    int head_only = (hr->r.flags & PV_REQ_F_HEAD) != 0;
    if (!head_only && pv_compress_start(hr, PV_CODING_GUNZIP, z, h->content_length) != PV_OK) {
        pv_cache_nomem("a compression filter", pv_log_client(&hr->r));
        return PV_RESP_NOMEM;
    }
    return rewrite_head(hr, h, PV_CODING_GUNZIP, 0, head_only);
}

/* body encoded whole into the request arena; -1 when memory ran out */
static ssize_t encode_whole(pv_hreq_t *hr, int coding, int level, pv_str_t body, char **out)
{
    size_t cap = coding == PV_CODING_GZIP ? compressBound((uLong)body.len) + 18
                                          : BrotliEncoderMaxCompressedSize(body.len);
    uint8_t *p = pv_arena_alloc(&hr->arena, cap);
    if (!p)
        return -1;
    *out = (char *)p;
    if (coding == PV_CODING_BR) {
        size_t n = cap;
        if (!BrotliEncoderCompress(level, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, body.len,
                                   (const uint8_t *)body.p, &n, p))
            return -1;
        return (ssize_t)n;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(p, head, sizeof(head));
    zs.next_in = (Bytef *)(uintptr_t)body.p;
    zs.avail_in = (uInt)body.len;
    zs.next_out = p + 10;
    zs.avail_out = (uInt)(cap - 18);
    int rc = deflate(&zs, Z_FINISH);
    size_t n = 10 + zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return -1;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)body.p, (uInt)body.len);
    uint32_t len = (uint32_t)body.len;
    for (int i = 0; i < 4; i++) {
        p[n + (size_t)i] = (uint8_t)(crc >> (8 * i));
        p[n + 4 + (size_t)i] = (uint8_t)(len >> (8 * i));
    }
    return (ssize_t)(n + 8);
}

int pv_compress_local(pv_hreq_t *hr, pv_resp_head_t *h, pv_str_t *body)
{
    const pv_zip_conf_t *z = zconf(hr);
    int vary, coding = decide(hr, h, z, &vary);
    if ((hr->r.flags & PV_REQ_F_GZIP_VARY) && z && z->gzip_vary)
        vary = 1; /* gzip_static found the .gz file */
    if (!coding && !vary)
        return PV_OK;
    int head_only = (hr->r.flags & PV_REQ_F_HEAD) != 0;
    if (coding && !head_only) {
        char *out;
        int level = coding == PV_CODING_GZIP ? z->gzip_comp_level : z->brotli_comp_level;
        ssize_t n = encode_whole(hr, coding, level, *body, &out);
        if (n < 0) {
            pv_cache_nomem("a compressed page", pv_log_client(&hr->r));
            return PV_RESP_NOMEM;
        }
        *body = (pv_str_t){out, (size_t)n};
    }
    return rewrite_head(hr, h, coding, vary, head_only);
}
