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
#include "../http/router.h"
#include "../http/trace.h"
#include "../http/uri.h"
#include "../http/uvars.h"
#include "cookie.h"
#include "pcache.h"
#include "../http/vars.h"
#include "../upstream/response.h"

static inline __attribute__((always_inline)) void put_field(pv_wr_t *w, pv_str_t name, pv_str_t value)
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
    if (pp && pp->cv) {
        /* variables: a URI part is sent as it evaluated; without one, as
         * a proxy_pass without a URI part (NGINX's proxy_create_request) */
        if (r->proxy_uri.len) {
            pv_wr_str(w, r->proxy_uri);
            return;
        }
        pp = NULL;
    }
    int rewritten = (r->flags & (PV_REQ_F_REWRITTEN | PV_REQ_F_ARGS_SET)) != 0;
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

size_t pv_proxy_upstream_uri(const pv_request_t *r, const pv_location_t *loc, char *buf, size_t cap)
{
    pv_wr_t w = {buf, buf + cap, 0};
    put_upstream_uri(&w, r, loc);
    return w.over ? cap + 1 : (size_t)(w.p - buf);
}

/* trace_context: the traceparent naming the gateway's span as the parent,
 * and the client's tracestate when its trace goes on; request_id_header:
 * the request id. */
static __attribute__((noinline)) void put_trace_fields(pv_wr_t *w, pv_request_t *r, const pv_trace_conf_t *tc)
{
    if (tc->context) {
        const pv_trace_t *t = pv_trace_get(r);
        if (t) {
            put_field(w, PV_STR("traceparent"), (pv_str_t){t->traceparent, 55});
            if (t->tracestate.len)
                put_field(w, PV_STR("tracestate"), t->tracestate);
        }
    }
    if (tc->rid_header_len)
        put_field(w, (pv_str_t){tc->rid_header, tc->rid_header_len}, pv_request_id(r));
}

/* 1 if the client field must not be passed on. */
/* With proxy_cache, NGINX's cache header set: the client's
 * preconditions and ranges stay here (the cache answers them), so the
 * upstream sends the whole response to store; not when the response
 * cannot be stored (a method the cache does not take, min_uses not
 * reached, a range past proxy_cache_max_range_offset). */
static int cache_drops(pv_str_t name)
{
    return PV_STR_IEQ(name, "If-Modified-Since") || PV_STR_IEQ(name, "If-Unmodified-Since") ||
           PV_STR_IEQ(name, "If-None-Match") || PV_STR_IEQ(name, "If-Match") || PV_STR_IEQ(name, "Range") ||
           PV_STR_IEQ(name, "If-Range");
}

static int skip_client_field(pv_str_t name, const pv_loc_conf_t *lc, const pv_request_t *r, int has_conn)
{
    if (default_bit(name) || pv_header_is_hop_by_hop(name))
        return 1;
    if (r->pcache && !r->pcache->pass_client && cache_drops(name))
        return 1;
    if (r->hide_header.len && name.len == r->hide_header.len && pv_str_ieq(name, r->hide_header.p, name.len))
        return 1; /* the API key stays at the gateway */
    for (int i = 0; i < lc->nset_headers; i++) {
        pv_str_t sn = lc->set_headers[i].name;
        if (sn.len == name.len && pv_str_ieq(name, sn.p, sn.len))
            return 1;
    }
    if (lc->trace.upstream && pv_trace_replaces(&lc->trace, name))
        return 1; /* the gateway's own values go instead */
    return has_conn && pv_conn_lists_name(r->headers, r->nheaders, name);
}

ssize_t pv_proxy_build_request(pv_request_t *r, const pv_location_t *loc, int body_mode, int64_t body_len,
                               char *buf, size_t cap)
{
    pv_wr_t w = {buf, buf + cap, 0};
    const pv_loc_conf_t *lc = &loc->conf;

    pv_str_t set_body = {NULL, 0};
    if (lc->proxy_set_body) {
        /* proxy_set_body: this text is the body, whatever the client sent */
        set_body = pv_cv_eval_arena(lc->proxy_set_body, r);
        body_mode = PV_BODY_LENGTH;
        body_len = (int64_t)set_body.len;
    }
    if (r->upstream_method.len)
        pv_wr_str(&w, r->upstream_method);
    else if (lc->proxy_method)
        pv_wr_str(&w, pv_cv_eval_arena(lc->proxy_method, r));
    else
        pv_wr_str(&w, r->method);
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
    /* proxy_cache_revalidate: the expired entry's validators */
    pv_str_t etag, lm;
    pv_pcache_validators(r, &etag, &lm);
    if (lm.len)
        put_field(&w, PV_STR("If-Modified-Since"), lm);
    if (etag.len)
        put_field(&w, PV_STR("If-None-Match"), etag);
    if (body_mode == PV_BODY_LENGTH) {
        PV_WR_LIT(&w, "Content-Length: ");
        put_i64(&w, body_len);
        PV_WR_LIT(&w, "\r\n");
    } else if (body_mode == PV_BODY_CHUNKED) {
        PV_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    if (lc->trace.upstream)
        put_trace_fields(&w, r, &lc->trace);

    int has_conn = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (PV_STR_IEQ(r->headers[i].name, "connection")) {
            has_conn = 1;
            break;
        }
    }
    for (int i = 0; i < r->nheaders && lc->proxy_pass_request_headers; i++) {
        const pv_header_t *h = &r->headers[i];
        if (skip_client_field(h->name, lc, r, has_conn))
            continue;
        put_field(&w, h->name, h->value);
    }
    PV_WR_LIT(&w, "\r\n");
    pv_wr_str(&w, set_body);
    return w.over ? -1 : (ssize_t)(w.p - buf);
}

/* Upstream fields never passed to the client as they are: NGINX's
 * proxy_hide_header defaults (unless proxy_pass_header names them), and
 * fields portvakt writes itself. */
static int hidden_by_default(pv_str_t n)
{
    switch (n.len) {
    case 4:
        return PV_STR_IEQ(n, "date");
    case 5:
        return PV_STR_IEQ(n, "x-pad");
    case 6:
        return PV_STR_IEQ(n, "server");
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

static int hidden_response_field(pv_str_t n, const pv_hdr_conf_t *hc)
{
    if (PV_STR_IEQ(n, "content-type") || PV_STR_IEQ(n, "content-length"))
        return 1;
    if (!hc)
        return hidden_by_default(n);
    if (pv_str_in_ilist(n, hc->hide, hc->nhide))
        return 1;
    return hidden_by_default(n) && !pv_str_in_ilist(n, hc->pass, hc->npass);
}

/* Replace v[prefix, prefix + len) with rep, in the request arena. */
static pv_str_t splice(pv_request_t *r, pv_str_t v, size_t prefix, size_t len, pv_str_t rep)
{
    size_t n = v.len - len + rep.len;
    char *s = pv_arena_alloc(r->arena, n + 1);
    memcpy(s, v.p, prefix);
    memcpy(s + prefix, rep.p, rep.len);
    memcpy(s + prefix + rep.len, v.p + prefix + len, v.len - prefix - len);
    s[n] = '\0';
    return (pv_str_t){s, n};
}

/* `proxy_redirect` on v from prefix on (ngx_http_proxy_rewrite_redirect):
 * the first line whose text is a prefix there (case-sensitive), or whose
 * regex matches the rest, replaces it. Without lines, the location's
 * default: the proxy_pass URL becomes the location name ("URL/" becomes
 * "/" for a URL without a URI). 1 with *out set, else 0. */
static int redirect_rewrite(const pv_upstream_response_t *u, pv_str_t v, size_t prefix, pv_str_t *out)
{
    pv_request_t *r = (pv_request_t *)u->r;
    const pv_hdr_conf_t *hc = &u->loc->conf.hdr;
    size_t len = v.len - prefix;
    if (!hc->redirect)
        return 0;
    if (!hc->nredirects) {
        const pv_proxy_pass_t *pp = u->loc->proxy_pass;
        if (!pp || !pp->url.len)
            return 0;
        pv_str_t pat = pp->url;
        int slash = !pp->has_uri;
        const pv_location_t *nl = u->loc;
        while (nl->parent)
            nl = nl->parent;
        if (len < pat.len + (size_t)slash || memcmp(v.p + prefix, pat.p, pat.len) != 0 ||
            (slash && v.p[prefix + pat.len] != '/'))
            return 0;
        *out = splice(r, v, prefix, pat.len + (size_t)slash, pp->has_uri ? nl->name : PV_STR("/"));
        return 1;
    }
    for (int i = 0; i < hc->nredirects; i++) {
        const pv_redirect_t *rd = &hc->redirects[i];
        if (rd->re) {
            if (pv_regex_exec(r, rd->re, (pv_str_t){v.p + prefix, len}) <= 0)
                continue;
            *out = splice(r, v, prefix, len, pv_cv_eval_arena(&rd->replacement, r));
            return 1;
        }
        pv_str_t pat = pv_cv_eval_arena(&rd->pattern, r);
        if (pat.len > len || memcmp(v.p + prefix, pat.p, pat.len) != 0)
            continue;
        *out = splice(r, v, prefix, pat.len, pv_cv_eval_arena(&rd->replacement, r));
        return 1;
    }
    return 0;
}

/* Refresh: proxy_redirect applies after its "url=" (case-insensitive). */
static int refresh_rewrite(const pv_upstream_response_t *u, pv_str_t v, pv_str_t *out)
{
    for (size_t i = 0; i + 4 <= v.len; i++)
        if (pv_str_ieq((pv_str_t){v.p + i, 4}, "url=", 4))
            return redirect_rewrite(u, v, i + 4, out);
    return 0;
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
    const pv_hdr_conf_t *hc = u->loc ? &u->loc->conf.hdr : NULL;
    int rw = u->r && u->loc;
    int cookies = rw && pv_proxy_cookie_any(&hc->cookie);
    int has_conn = 0;
    for (int i = 0; i < u->nheaders; i++) {
        pv_str_t n = u->headers[i].name;
        if (n.len == 12 && PV_STR_IEQ(n, "content-type"))
            ct = &u->headers[i];
        else if (n.len == 10 && PV_STR_IEQ(n, "connection"))
            has_conn = 1;
        else if (n.len == 15 && rw && PV_STR_IEQ(n, "x-accel-charset") &&
                 (hc->ignore == PV_UNSET || !(hc->ignore & PV_IGN_X_ACCEL_CHARSET)))
            ((pv_request_t *)u->r)->accel_charset = u->headers[i].value; /* the charset to recode into */
    }
    if (ct && u->status != 204)
        h->content_type = ct->value.p ? ct->value : (pv_str_t){"", 0};
    else if (u->r && u->r->accel_type.p && u->status != 204)
        h->content_type = u->r->accel_type;

    int n = 0;
    for (int i = 0; i < u->nheaders; i++) {
        const pv_header_t *f = &u->headers[i];
        if (hidden_response_field(f->name, hc))
            continue;
        /* a 101 passes Upgrade on: the client needs the chosen protocol */
        if (!(upgrade && PV_STR_IEQ(f->name, "upgrade"))) {
            if (pv_header_is_hop_by_hop(f->name))
                continue;
            if (has_conn && pv_conn_lists_name(u->headers, u->nheaders, f->name))
                continue;
        }
        pv_str_t v;
        if (rw && !loc_h && PV_STR_IEQ(f->name, "location") && redirect_rewrite(u, f->value, 0, &v)) {
            /* the rewritten one takes NGINX's place for Location */
            loc_h = f;
            h->location = pv_router_location_url(u->r, v, 0, (pv_str_t){NULL, 0});
            continue;
        }
        fields[n] = *f;
        if (rw && PV_STR_IEQ(f->name, "refresh") && refresh_rewrite(u, f->value, &v))
            fields[n].value = v;
        else if (cookies && PV_STR_IEQ(f->name, "set-cookie") &&
                 pv_proxy_cookie_rewrite((pv_request_t *)u->r, &hc->cookie, f->value, &v))
            fields[n].value = v;
        if (PV_STR_IEQ(f->name, "server"))
            h->server = (pv_str_t){"", 0}; /* passed: no Server of our own */
        else if (PV_STR_IEQ(f->name, "date"))
            h->no_date = 1;
        n++;
    }
    h->nfields = n;
    /* a Date or Server passed on that the upstream did not send: none at
     * all, as NGINX (its empty stand-ins for them are passed) */
    if (hc && hc->npass) {
        if (pv_str_in_ilist((pv_str_t)PV_STR("date"), hc->pass, hc->npass))
            h->no_date = 1;
        if (pv_str_in_ilist((pv_str_t)PV_STR("server"), hc->pass, hc->npass))
            h->server = (pv_str_t){"", 0};
    }
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

/* Whether the request head we send asks the upstream to keep the
 * connection: HTTP/1.1 and a `Connection` header set to something other
 * than "close" (NGINX's default is `Connection: close`). */
int pv_proxy_request_keeps(const pv_location_t *loc)
{
    if (loc->conf.proxy_http_version != 11)
        return 0;
    for (int i = 0; i < loc->conf.nset_headers; i++) {
        const pv_set_header_t *sh = &loc->conf.set_headers[i];
        if (!PV_STR_IEQ(sh->name, "connection"))
            continue;
        if (!sh->value.is_const)
            return 1;
        if (sh->value.nparts == 0)
            return 1;
        return !pv_conn_has_token(sh->value.parts[0].text, "close");
    }
    return 0;
}
