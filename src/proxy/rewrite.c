/* Upstream request head and client response head for proxied requests.
 * One forward pass with memcpy into the caller's buffer; nothing is
 * allocated and header names are compared in place. */
#include "rewrite.h"
#include <inttypes.h>
#include <stdio.h>
#include "../core/wr.h"
#include "../http/errpage.h"
#include "../http/headers.h"
#include "../http/response.h"
#include "../http/uri.h"
#include "../http/vars.h"
#include "../upstream/response.h"

static void put_field(pv_wr_t *w, pv_str_t name, pv_str_t value)
{
    pv_wr_str(w, name);
    PV_WR_LIT(w, ": ");
    pv_wr_str(w, value);
    PV_WR_LIT(w, "\r\n");
}

static void put_i64(pv_wr_t *w, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    if (v < 0) {
        tmp[n++] = '-';
        n += pv_u64_digits(tmp + 1, (uint64_t)0 - (uint64_t)v);
    } else {
        n = pv_u64_digits(tmp, (uint64_t)v);
    }
    pv_wr_put(w, tmp, n);
}

/* NGINX's default proxy_set_header names (ngx_http_proxy_headers). */
enum {
    DEF_HOST = 0x01,
    DEF_CONNECTION = 0x02,
    DEF_CONTENT_LENGTH = 0x04,
    DEF_TRANSFER_ENCODING = 0x08,
    DEF_TE = 0x10,
    DEF_KEEP_ALIVE = 0x20,
    DEF_EXPECT = 0x40,
    DEF_UPGRADE = 0x80
};

static int default_bit(pv_str_t n)
{
    switch (n.len) {
    case 2:
        return PV_STR_IEQ(n, "te") ? DEF_TE : 0;
    case 4:
        return PV_STR_IEQ(n, "host") ? DEF_HOST : 0;
    case 6:
        return PV_STR_IEQ(n, "expect") ? DEF_EXPECT : 0;
    case 7:
        return PV_STR_IEQ(n, "upgrade") ? DEF_UPGRADE : 0;
    case 10:
        return PV_STR_IEQ(n, "connection") ? DEF_CONNECTION
               : PV_STR_IEQ(n, "keep-alive") ? DEF_KEEP_ALIVE
                                             : 0;
    case 14:
        return PV_STR_IEQ(n, "content-length") ? DEF_CONTENT_LENGTH : 0;
    case 17:
        return PV_STR_IEQ(n, "transfer-encoding") ? DEF_TRANSFER_ENCODING : 0;
    default:
        return 0;
    }
}

/* Evaluate one proxy_set_header value straight after "Name: ". Values
 * that come out empty drop the whole field, as in NGINX. CR, LF and NUL
 * (possible through a decoded $uri) become SP so a variable can never
 * split the head (RFC 9110 §5.5). */
static void put_set_header(pv_wr_t *w, pv_request_t *r, const pv_set_header_t *sh)
{
    if (w->over)
        return;
    char *start = w->p;
    pv_wr_str(w, sh->name);
    PV_WR_LIT(w, ": ");
    if (w->over)
        return;
    size_t n;
    if (sh->value.is_const) {
        pv_str_t v = sh->value.nparts ? sh->value.parts[0].text : (pv_str_t){"", 0};
        n = v.len;
        pv_wr_str(w, v);
    } else {
        size_t room = (size_t)(w->end - w->p);
        n = pv_cv_eval(&sh->value, r, PV_ESCAPE_NONE, w->p, room);
        if (n > room) {
            w->over = 1;
            return;
        }
        w->p += n;
    }
    if (w->over)
        return;
    if (n == 0) {
        w->p = start;
        return;
    }
    for (char *q = w->p - n; q < w->p; q++) {
        if (*q == '\r' || *q == '\n' || *q == '\0')
            *q = ' ';
    }
    PV_WR_LIT(w, "\r\n");
}

/* The request-target sent upstream (ngx_http_proxy_create_request). A
 * URI changed by `rewrite` is sent escaped, with its arguments; after
 * `rewrite ... break` the proxy_pass URI part is dropped and the whole
 * changed URI sent (NGINX's valid_location). */
static void put_upstream_uri(pv_wr_t *w, const pv_request_t *r, const pv_location_t *loc)
{
    const pv_proxy_pass_t *pp = loc->proxy_pass;
    int rewritten = (r->flags & PV_REQ_F_REWRITTEN) != 0;
    if ((!pp || !pp->has_uri) && !rewritten) {
        /* no URI part: the client's target as received */
        pv_wr_str(w, r->request_uri);
        return;
    }
    int valid_location = !(r->flags & PV_REQ_F_LOC_INVALID);
    size_t skip = 0;
    if (pp && pp->has_uri && valid_location &&
        (loc->match == PV_LOC_PREFIX || loc->match == PV_LOC_PREFIX_STOP || loc->match == PV_LOC_EXACT))
        skip = PV_MIN(loc->name.len, r->uri.len);
    if (pp && pp->has_uri && valid_location)
        pv_wr_str(w, pp->uri);
    const char *rest = r->uri.p + skip;
    size_t rlen = r->uri.len - skip;
    if (rewritten || pv_uri_path_quoted(r->request_uri)) {
        /* the client escaped something, or the URI is a rewrite's: escape it */
        size_t n = pv_uri_escape(NULL, rest, rlen);
        if (w->over || (size_t)(w->end - w->p) < n) {
            w->over = 1;
            return;
        }
        w->p += pv_uri_escape(w->p, rest, rlen);
    } else {
        pv_wr_put(w, rest, rlen);
    }
    if (r->args.len) {
        PV_WR_LIT(w, "?");
        pv_wr_str(w, r->args);
    }
}

/* 1 if the client field must not be passed on. */
static int skip_client_field(pv_str_t name, const pv_loc_conf_t *lc, const pv_request_t *r, int has_conn)
{
    if (default_bit(name) || pv_header_is_hop_by_hop(name))
        return 1;
    if (r->hide_header.len && name.len == r->hide_header.len && pv_str_ieq(name, r->hide_header.p, name.len))
        return 1; /* the API key stays at the gateway */
    for (int i = 0; i < lc->nset_headers; i++) {
        pv_str_t sn = lc->set_headers[i].name;
        if (sn.len == name.len && pv_str_ieq(name, sn.p, sn.len))
            return 1;
    }
    return has_conn && pv_conn_lists_name(r->headers, r->nheaders, name);
}

ssize_t pv_proxy_build_request(pv_request_t *r, const pv_location_t *loc, int body_mode, int64_t body_len,
                               char *buf, size_t cap)
{
    pv_wr_t w = {buf, buf + cap, 0};
    const pv_loc_conf_t *lc = &loc->conf;

    pv_wr_str(&w, r->upstream_method.len ? r->upstream_method : r->method);
    PV_WR_LIT(&w, " ");
    put_upstream_uri(&w, r, loc);
    if (lc->proxy_http_version == 11)
        PV_WR_LIT(&w, " HTTP/1.1\r\n");
    else
        PV_WR_LIT(&w, " HTTP/1.0\r\n");

    /* the location's list first, in order; framing fields stay ours so
     * the head always agrees with how the body is actually sent */
    int set = 0;
    for (int i = 0; i < lc->nset_headers; i++) {
        const pv_set_header_t *sh = &lc->set_headers[i];
        int bit = default_bit(sh->name);
        set |= bit;
        if (bit & (DEF_CONTENT_LENGTH | DEF_TRANSFER_ENCODING))
            continue;
        put_set_header(&w, r, sh);
    }
    /* then NGINX's defaults the list does not name, in NGINX's order */
    if (!(set & DEF_HOST) && r->proxy_host.len)
        put_field(&w, PV_STR("Host"), r->proxy_host);
    if (!(set & DEF_CONNECTION))
        PV_WR_LIT(&w, "Connection: close\r\n");
    if (body_mode == PV_BODY_LENGTH) {
        PV_WR_LIT(&w, "Content-Length: ");
        put_i64(&w, body_len);
        PV_WR_LIT(&w, "\r\n");
    } else if (body_mode == PV_BODY_CHUNKED) {
        PV_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }

    int has_conn = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (PV_STR_IEQ(r->headers[i].name, "connection")) {
            has_conn = 1;
            break;
        }
    }
    for (int i = 0; i < r->nheaders; i++) {
        const pv_header_t *h = &r->headers[i];
        if (skip_client_field(h->name, lc, r, has_conn))
            continue;
        put_field(&w, h->name, h->value);
    }
    PV_WR_LIT(&w, "\r\n");
    return w.over ? -1 : (ssize_t)(w.p - buf);
}

/* Upstream fields never passed to the client as they are: NGINX's
 * proxy_hide_header defaults, and fields portvakt writes itself. */
static int hidden_response_field(pv_str_t n)
{
    switch (n.len) {
    case 4:
        return PV_STR_IEQ(n, "date");
    case 5:
        return PV_STR_IEQ(n, "x-pad");
    case 6:
        return PV_STR_IEQ(n, "server");
    case 12:
        return PV_STR_IEQ(n, "content-type");
    case 14:
        return PV_STR_IEQ(n, "content-length");
    case 15:
        return PV_STR_IEQ(n, "x-accel-expires") || PV_STR_IEQ(n, "x-accel-charset");
    case 16:
        return PV_STR_IEQ(n, "x-accel-redirect");
    case 17:
        return PV_STR_IEQ(n, "x-accel-buffering");
    case 18:
        return PV_STR_IEQ(n, "x-accel-limit-rate");
    default:
        return 0;
    }
}

/* `proxy_redirect default`: a Location starting with the proxy_pass URL
 * ("http://" $proxy_host URI, or "/" without a URI) gets that prefix
 * replaced by the location name (or "/"). Returns 1 and the rewritten
 * path pieces, or 0 when the value does not start with the URL. */
static int redirect_rewrite(const pv_location_t *loc, pv_str_t v, pv_str_t *repl, pv_str_t *rest)
{
    const pv_proxy_pass_t *pp = loc->proxy_pass;
    if (!pp)
        return 0;
    pv_str_t uri = pp->has_uri ? pp->uri : PV_STR("/");
    size_t plen = 7 + pp->proxy_host.len + uri.len;
    if (v.len < plen || memcmp(v.p, "http://", 7) != 0 ||
        memcmp(v.p + 7, pp->proxy_host.p, pp->proxy_host.len) != 0 ||
        memcmp(v.p + 7 + pp->proxy_host.len, uri.p, uri.len) != 0)
        return 0;
    *repl = pp->has_uri ? loc->name : PV_STR("/");
    *rest = (pv_str_t){v.p + plen, v.len - plen};
    return 1;
}

/* The rewritten Location, composed in the request arena (redirects
 * only): NGINX makes a relative one absolute with the request's Host (or
 * the local address) and port: "http://host[:port]" + path. */
static pv_str_t abs_location(const pv_request_t *r, pv_str_t repl, pv_str_t rest)
{
    size_t cap = repl.len + rest.len + 1;
    int rel = repl.len && repl.p[0] == '/';
    if (rel)
        cap += 7 + (r->host.len ? r->host.len : strlen(r->local_text) + 2) + 6;
    char *buf = pv_arena_alloc(r->arena, cap);
    pv_wr_t w = {buf, buf + cap, 0};
    if (rel) {
        PV_WR_LIT(&w, "http://");
        if (r->host.len) {
            pv_wr_str(&w, r->host);
        } else if (strchr(r->local_text, ':')) {
            PV_WR_LIT(&w, "[");
            pv_wr_put(&w, r->local_text, strlen(r->local_text));
            PV_WR_LIT(&w, "]");
        } else {
            pv_wr_put(&w, r->local_text, strlen(r->local_text));
        }
        if (r->local_port != 80) {
            PV_WR_LIT(&w, ":");
            put_i64(&w, r->local_port);
        }
    }
    pv_wr_str(&w, repl);
    pv_wr_str(&w, rest);
    return (pv_str_t){buf, (size_t)(w.p - buf)};
}

int pv_proxy_response_head(const pv_upstream_response_t *u, int frame, int64_t content_length,
                           pv_header_t *fields, pv_resp_head_t *h)
{
    int upgrade = u->status == 101;
    *h = (pv_resp_head_t){
        .status = u->status,
        .reason = u->reason.len ? u->reason : (pv_str_t){NULL, 0},
        .content_length = frame == PV_RESP_LENGTH ? content_length : -1,
        .frame = frame == PV_RESP_CHUNKED ? PV_FRAME_CHUNKED : PV_FRAME_NONE,
        .upgrade = (uint8_t)upgrade,
        .fields = fields,
    };

    /* NGINX keeps the last Content-Type and drops it on 204 */
    const pv_header_t *ct = NULL, *loc_h = NULL;
    pv_str_t repl = {NULL, 0}, rest = {NULL, 0};
    int has_conn = 0;
    for (int i = 0; i < u->nheaders; i++) {
        pv_str_t n = u->headers[i].name;
        if (n.len == 12 && PV_STR_IEQ(n, "content-type"))
            ct = &u->headers[i];
        else if (n.len == 10 && PV_STR_IEQ(n, "connection"))
            has_conn = 1;
        else if (n.len == 8 && PV_STR_IEQ(n, "location") && !loc_h && u->r && u->loc &&
                 redirect_rewrite(u->loc, u->headers[i].value, &repl, &rest))
            loc_h = &u->headers[i];
    }
    if (ct && u->status != 204)
        h->content_type = ct->value.p ? ct->value : (pv_str_t){"", 0};
    if (loc_h)
        h->location = abs_location(u->r, repl, rest);

    int n = 0;
    for (int i = 0; i < u->nheaders; i++) {
        const pv_header_t *f = &u->headers[i];
        if (f == loc_h || hidden_response_field(f->name))
            continue;
        /* a 101 passes Upgrade on: the client needs the chosen protocol */
        if (!(upgrade && PV_STR_IEQ(f->name, "upgrade"))) {
            if (pv_header_is_hop_by_hop(f->name))
                continue;
            if (has_conn && pv_conn_lists_name(u->headers, u->nheaders, f->name))
                continue;
        }
        fields[n++] = *f;
    }
    h->nfields = n;
    return 0;
}

ssize_t pv_proxy_build_response(const pv_upstream_response_t *u, pv_str_t date, int frame,
                                int64_t content_length, int keepalive, char *buf, size_t cap)
{
    pv_header_t fields[PV_URESP_MAX_FIELDS];
    pv_resp_head_t h;
    if (u->nheaders > PV_URESP_MAX_FIELDS)
        return -1;
    pv_proxy_response_head(u, frame, content_length, fields, &h);
    return pv_http_write_head(&h, date, keepalive, buf, cap);
}
