#include "reqhead.h"

#include <string.h>

#include "../core/log.h"
#include "headers.h"
#include "uri.h"
#include "accesslog.h"
#include "errpage.h"
#include "router.h"

static inline __attribute__((always_inline)) int target_check(pv_request_t *r, pv_str_t target,
                                                              const pv_str_t *host_field);

/* ---- the fields ---------------------------------------------------------- */

/* Parse a Transfer-Encoding list: only "chunked", once, is supported.
 * Returns 0 ok, 400 for malformed, 501 for a coding we do not implement. */
static int check_te(pv_request_t *r, pv_str_t v, int *nchunked)
{
    const char *p = v.p, *end = v.p + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        pv_str_t tok = pv_http_trim_ows((pv_str_t){s, (size_t)(p - s)});
        if (tok.len == 0)
            continue;
        if (*nchunked)
            return 400; /* chunked must be the last coding, and only once */
        if (PV_STR_IEQ(tok, "chunked"))
            (*nchunked)++;
        else
            return 501;
    }
    PV_UNUSED(r);
    return 0;
}

/* The fields NGINX 1.22 takes once only: Host (ngx_http_process_host)
 * and the ngx_http_headers_in[] entries handled by
 * ngx_http_process_unique_header_line. A second one is refused with 400:
 * code that reads the first and a backend that reads the last would see
 * different requests (a token nobody verified, another body length). */
enum { SF_HOST, SF_TE, SF_CL, SF_EXPECT }; /* entries pv_reqhead_build() reads */
static const pv_str_t single_fields[] = {
    [SF_HOST] = PV_STR("Host"),       [SF_TE] = PV_STR("Transfer-Encoding"),
    [SF_CL] = PV_STR("Content-Length"), [SF_EXPECT] = PV_STR("Expect"),
    PV_STR("Authorization"),          PV_STR("Content-Range"),
    PV_STR("If-Modified-Since"),      PV_STR("If-Unmodified-Since"),
    PV_STR("If-Match"),               PV_STR("If-None-Match"),
    PV_STR("If-Range"),
};

_Static_assert(PV_NELEM(single_fields) == PV_NELEM(((pv_reqfields_t *)0)->single), "one slot per single field");

/* Index of name in single_fields, or -1. */
static int single_field(pv_str_t name)
{
    for (size_t i = 0; i < PV_NELEM(single_fields); i++)
        if (name.len == single_fields[i].len && pv_str_ieq(name, single_fields[i].p, name.len))
            return (int)i;
    return -1;
}

/* A field name NGINX's parser takes as valid (ngx_http_parse_header_line). */
static int nginx_name(pv_str_t name, int underscores)
{
    for (size_t i = 0; i < name.len; i++) {
        unsigned char ch = (unsigned char)name.p[i];
        if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-' &&
            !(ch == '_' && underscores))
            return 0;
    }
    return 1;
}

int pv_reqhead_field_ignored(const pv_request_t *r, pv_str_t name)
{
    return r->srv->ignore_invalid_headers && !nginx_name(name, r->srv->underscores_in_headers);
}

int pv_reqhead_too_many(pv_request_t *r)
{
    pv_log_r(r, PV_LOG_INFO, "client sent too many header lines, client: %s", pv_log_client(r));
    return PV_HTTP_HEADER_TOO_LARGE;
}

int pv_reqhead_over_all(pv_hreq_t *hr)
{
    const char *base = hr->c->in->data;
    for (; hr->nscanned < hr->nfields; hr->nscanned++) {
        pv_str_t name = {base + hr->hname[hr->nscanned].off, hr->hname[hr->nscanned].len};
        if (!pv_reqhead_field_ignored(&hr->r, name) && ++hr->nkept > hr->lgroup->max_headers_hi)
            return 1;
    }
    return 0;
}

static inline __attribute__((always_inline)) int field_check(pv_request_t *r, pv_reqfields_t *f, const pv_header_t *h)
{
    if (!pv_header_name_valid(h->name) || !pv_header_value_valid(h->value))
        return 400;
    if (pv_reqhead_field_ignored(r, h->name)) {
        /* NGINX takes letters, digits and '-' in a name ('_' with
         * underscores_in_headers on) and drops other fields while
         * ignore_invalid_headers is on, as here. CGI-style upstreams
         * read "Transfer_Encoding" as Transfer-Encoding, so by default
         * it is never forwarded. */
        pv_log_r(r, PV_LOG_INFO, "client sent invalid header line: \"%.*s\", client: %s", (int)h->name.len,
               h->name.p, pv_log_client(r));
        return -1;
    }
    /* max_headers counts the fields kept, each before it is looked at;
     * HTTP/2's cookies are one field apart (NGINX joins them and counts
     * none) */
    if (!(r->http_major == 2 && PV_STR_IEQ(h->name, "cookie")) && f->count++ >= f->limit)
        return pv_reqhead_too_many(r);
    int si = single_field(h->name);
    if (si >= 0) {
        const pv_header_t *prev = f->single[si];
        if (prev) {
            pv_log_r(r, PV_LOG_INFO,
                   "client sent duplicate %s: \"%.*s: %.*s\", previous value: \"%.*s: %.*s\", client: %s",
                   si == SF_HOST ? "host header" : "header line", (int)h->name.len, h->name.p,
                   (int)h->value.len, h->value.p, (int)prev->name.len, prev->name.p, (int)prev->value.len,
                   prev->value.p, pv_log_client(r));
            return 400;
        }
        f->single[si] = h;
    } else if (PV_STR_IEQ(h->name, "connection")) {
        if (pv_conn_has_token(h->value, "close"))
            f->conn_close = 1;
        if (pv_conn_has_token(h->value, "keep-alive"))
            f->conn_ka = 1;
    } else if (PV_STR_IEQ(h->name, "upgrade")) {
        f->upgrade = 1;
    }
    return 0;
}

int pv_reqhead_field(pv_request_t *r, pv_reqfields_t *f, const pv_header_t *h)
{
    return field_check(r, f, h);
}

/* Check the parsed fields, drop those NGINX drops and copy the rest into
 * r->headers. Returns 0, or the status to answer with. */
static int scan_fields(pv_hreq_t *hr, pv_reqfields_t *f)
{
    pv_request_t *r = &hr->r;
    const char *base = hr->c->in->data;
    r->headers = pv_arena_alloc(&hr->arena, sizeof(pv_header_t) * (size_t)(hr->nfields ? hr->nfields : 1));
    r->nheaders = 0;
    f->limit = r->srv->max_headers;
    for (int i = 0; i < hr->nfields; i++) {
        pv_header_t *h = &r->headers[r->nheaders];
        h->name = (pv_str_t){base + hr->hname[i].off, hr->hname[i].len};
        h->value = pv_http_trim_ows((pv_str_t){base + hr->hvalue[i].off, hr->hvalue[i].len});
        int st = field_check(r, f, h);
        if (st > 0)
            return st;
        if (st < 0)
            continue;
        r->nheaders++;
        pv_str_t host;
        if (f->single[SF_HOST] == h && hr->lgroup->max_headers_lo != hr->lgroup->max_headers_hi &&
            pv_uri_validate_host(r->arena, h->value, &host) == 0)
            /* NGINX takes the server from a valid Host at once: its
             * max_headers counts the fields after */
            f->limit = pv_router_request_server(r, hr->lgroup, host)->max_headers;
    }
    return 0;
}

/* Decide the body's framing from Content-Length and Transfer-Encoding,
 * looked at after every field as NGINX does (a repeated field is 400
 * before any 501). Returns 0, or the status to answer with. */
static int set_framing(pv_hreq_t *hr, const pv_reqfields_t *f)
{
    pv_request_t *r = &hr->r;
    const pv_header_t *te_h = f->single[SF_TE], *cl_h = f->single[SF_CL];
    if (cl_h && pv_http_parse_content_length(cl_h->value, &r->content_length) != 0)
        return 400;
    if (te_h) {
        int nchunked = 0;
        int rc = check_te(r, te_h->value, &nchunked);
        if (rc)
            return rc;
        if (r->http_minor == 0 || cl_h)
            return 400; /* TE on HTTP/1.0, or TE beside CL (RFC 9112 6.1) */
        if (!nchunked)
            return 400;
        r->flags |= PV_REQ_F_CHUNKED;
        hr->body_frame = PV_FRAME_CHUNKED;
        pv_chunked_init(&hr->chunk);
    } else if (cl_h) {
        r->flags |= PV_REQ_F_HAS_CL;
        hr->body_frame = r->content_length > 0 ? PV_FRAME_LENGTH : PV_FRAME_NONE;
        hr->body_left = (uint64_t)r->content_length;
    } else {
        hr->body_frame = PV_FRAME_NONE;
    }
    hr->body_done = hr->body_frame == PV_FRAME_NONE;
    return 0;
}

/* The request line's version and method. An HTTP/0.9 line (no version)
 * was recognised before llhttp saw it. Returns 0 or the status. */
static int set_version(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    if (r->flags & PV_REQ_F_HTTP09) {
        r->http_major = 0;
        r->http_minor = 9;
        r->method_id = HTTP_GET;
    } else {
        if (hr->parser.http_major != 1)
            return hr->parser.http_major == 0 ? 400 : 505;
        r->http_major = 1;
        r->http_minor = hr->parser.http_minor;
        r->method_id = hr->parser.method;
    }
    const char *mname = llhttp_method_name((llhttp_method_t)r->method_id);
    r->method = (pv_str_t){mname, strlen(mname)};
    if (r->method_id == HTTP_HEAD)
        r->flags |= PV_REQ_F_HEAD;
    if (r->method_id == HTTP_CONNECT)
        return 400; /* a tunnel request; a gateway serves none, and an
                       origin-form target makes it malformed besides */
    return 0;
}

int pv_reqhead_build(pv_hreq_t *hr)
{
    uint32_t head_end = hr->head_len;
    pv_request_t *r = &hr->r;
    const char *base = hr->c->in->data;

    if (!pv_http_head_line_endings_ok(base, head_end))
        return 400;
    int st = set_version(hr);
    if (st)
        return st;
    const char *eol = memchr(base, '\r', head_end);
    r->request_line = (pv_str_t){base, eol ? (size_t)(eol - base) : 0};

    pv_reqfields_t f = {0};
    if ((st = scan_fields(hr, &f)) != 0 || (st = set_framing(hr, &f)) != 0) {
        /* NGINX has taken the server from a valid Host by then: its
         * error_page answers */
        const pv_header_t *h = f.single[SF_HOST];
        if (h && pv_uri_validate_host(r->arena, h->value, &r->host) != 0)
            r->host = (pv_str_t){NULL, 0};
        hr->body_done |= hr->body_frame == PV_FRAME_NONE; /* no framing: no body to read */
        return st;
    }
    const pv_header_t *host_h = f.single[SF_HOST], *expect = f.single[SF_EXPECT];
    if (expect && PV_STR_IEQ(expect->value, "100-continue"))
        r->flags |= PV_REQ_F_EXPECT_CONTINUE;
    if (!host_h && r->http_minor == 1)
        return 400;
    if (r->http_minor == 1 ? !f.conn_close : (f.conn_ka && !f.conn_close))
        r->flags |= PV_REQ_F_KEEPALIVE;
    /* only HTTP/1.1 may switch protocols: a server ignores Upgrade in an
     * HTTP/1.0 request (RFC 9110 7.8) */
    if (f.upgrade && r->http_minor == 1)
        r->flags |= PV_REQ_F_UPGRADE;

    pv_str_t target = {base + hr->url.off, hr->url.len};
    return target_check(&hr->r, target, host_h ? &host_h->value : NULL);
}

void pv_reqhead_refused_server(pv_hreq_t *hr)
{
    const char *base = hr->c->in->data;
    for (int i = 0; i < hr->nfields; i++) {
        pv_str_t name = {base + hr->hname[i].off, hr->hname[i].len}, host;
        uint32_t end = hr->hvalue[i].off + hr->hvalue[i].len;
        if (single_field(name) != SF_HOST)
            continue;
        if (!hr->hvalue[i].off || end >= hr->c->in->last || base[end] != '\r')
            return; /* its value is not whole */
        pv_str_t v = pv_http_trim_ows((pv_str_t){base + hr->hvalue[i].off, hr->hvalue[i].len});
        if (pv_uri_validate_host(hr->r.arena, v, &host) == 0)
            hr->r.srv = pv_router_request_server(&hr->r, hr->lgroup, host);
        return;
    }
}

int pv_reqhead_target(pv_request_t *r, pv_str_t target, const pv_str_t *host_field)
{
    return target_check(r, target, host_field);
}

static inline __attribute__((always_inline)) int target_check(pv_request_t *r, pv_str_t target,
                                                              const pv_str_t *host_field)
{
    /* target: origin-form, absolute-form, or "*" */
    pv_uri_target_t t;
    if (pv_uri_parse_target(r->arena, target, r->method_id == HTTP_OPTIONS, &t) != 0)
        return 400;
    r->request_uri = t.request_uri;
    r->uri = t.uri;
    r->args = t.args;
    r->has_args = t.has_args;
    pv_str_t host = t.host;
    if (t.absolute)
        r->flags |= PV_REQ_F_ABSOLUTE_FORM;
    else if (host_field)
        host = *host_field;
    if (host.len || host_field) {
        if (pv_uri_validate_host(r->arena, host, &r->host) != 0)
            return 400;
    }
    return 0;
}

/* ---- the request line, before llhttp ------------------------------------ */

/* An upper-case token followed by a space: a method, just not one llhttp
 * knows (RFC 9110 9.1: 501). Anything else is a malformed line (400). */
static int unknown_method(const char *p, size_t len)
{
    size_t i = 0;
    while (i < len && (p[i] == '\r' || p[i] == '\n'))
        i++;
    size_t s = i;
    while (i < len && ((p[i] >= 'A' && p[i] <= 'Z') || p[i] == '-' || p[i] == '_'))
        i++;
    return i > s && i < len && p[i] == ' ';
}

/* The request line's version before llhttp sees it (llhttp knows only
 * 0.9, 1.0, 1.1 and 2.0): HTTP/1.x with x > 1 is served as HTTP/1.1
 * (RFC 9110 2.5) and a higher major version gets 505. Returns 0 or the
 * status to answer with. */
static int check_version(char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    if (len < 9 || line[len - 9] != ' ' || memcmp(line + len - 8, "HTTP/", 5) != 0 || line[len - 2] != '.')
        return 0; /* not this shape: llhttp decides */
    char major = line[len - 3], *minor = &line[len - 1];
    if (major < '0' || major > '9' || *minor < '0' || *minor > '9')
        return 0;
    if (major == '1' && *minor > '1')
        *minor = '1';
    else if (major >= '2' && !(major == '2' && *minor == '0'))
        return 505;
    return 0;
}

/* A request line without a version is HTTP/0.9: NGINX serves it for GET
 * (no fields are read; the answer is the body alone, then the connection
 * closes) and answers any other method with a headless 400. line starts at
 * the method and lf is its LF. Returns PV_REQHEAD_HTTP09 for a GET to serve
 * (the target noted in hr->url), 400 to refuse it, 0 for another kind of
 * line. */
static int http09_line(pv_hreq_t *hr, const char *line, const char *lf)
{
    const char *p = line, *end = lf;
    if (end > p && end[-1] == '\r')
        end--; /* always: a bare LF was made CRLF before (pv_http_head_crlf) */
    while (p < end && ((*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_'))
        p++;
    size_t mlen = (size_t)(p - line);
    if (mlen == 0 || p == end || *p != ' ')
        return 0;
    while (p < end && *p == ' ')
        p++;
    const char *t = p;
    while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
        p++;
    const char *tend = p;
    while (p < end && *p == ' ')
        p++;
    if (p != end || tend == t)
        return 0; /* a control character in the target: llhttp refuses it */
    if (*t != '/' && !memmem(t, (size_t)(tend - t), "://", 3))
        return 0; /* "GET  HTTP/1.1": no target; llhttp refuses it, as NGINX */
    hr->r.flags |= PV_REQ_F_HTTP09;
    if (mlen != 3 || memcmp(line, "GET", 3) != 0) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid method in HTTP/0.9 request, client: %s", pv_log_client(&hr->r));
        return 400;
    }
    hr->url = (pv_hspan_t){(uint32_t)(t - hr->c->in->data), (uint32_t)(tend - t)};
    return PV_REQHEAD_HTTP09;
}

/* Whether the fields parsed so far name Transfer-Encoding twice: llhttp
 * stops at a second one before pv_reqhead_build() sees it. */
static int te_repeated(pv_hreq_t *hr)
{
    int n = 0;
    for (int i = 0; i < hr->nfields; i++) {
        pv_str_t name = {hr->c->in->data + hr->hname[i].off, hr->hname[i].len};
        n += single_field(name) == SF_TE;
    }
    return n > 1;
}

int pv_reqhead_check_line(pv_hreq_t *hr, char *line, char *lf)
{
    int st = check_version(line, (size_t)(lf - line) + 1);
    if (st)
        return st;
    /* a line ending in " HTTP/d.d" has a version: no need to scan it for
     * the HTTP/0.9 form (the common case, so checked from the end) */
    const char *end = lf > line && lf[-1] == '\r' ? lf - 1 : lf;
    if (end - line >= 9 && end[-9] == ' ' && memcmp(end - 8, "HTTP/", 5) == 0)
        return 0;
    return http09_line(hr, line, lf);
}

int pv_reqhead_parse_error(pv_hreq_t *hr, llhttp_errno_t e, const char *p, size_t len)
{
    if (hr->err_status)
        return hr->err_status; /* a limit, logged where it was found */
    int status = 400;
    if (e == HPE_INVALID_TRANSFER_ENCODING && !te_repeated(hr))
        status = 501; /* a repeated field is a duplicate (400), as in pv_reqhead_build() */
    if (e == HPE_INVALID_METHOD && unknown_method(p, len))
        status = 501; /* a well-formed method this gateway does not know */
    pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid request (%s), client: %s", llhttp_get_error_reason(&hr->parser),
           pv_log_client(&hr->r));
    return status;
}
