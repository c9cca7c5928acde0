/* Variables of what the client sent: its address and connection, the
 * request line, the arguments and the header fields, with NGINX 1.22's
 * semantics. One table entry and one getter per variable; the evaluator
 * (vars.c) calls the getter through the entry. */
#include "vars.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../config/conf.h"
#include "../core/anon.h"
#include "../core/loop.h"
#include "../core/net.h"
#include "../core/proxy_proto.h"
#include "../core/time.h"
#include "realip.h"
#include "../core/tls.h"
#include "request.h"

static const char *const empty_value = "";

/* Decimal digits of v into buf (at least 20 bytes). */
static pv_str_t fmt_u64(uint64_t v, char *buf)
{
    return (pv_str_t){buf, pv_u64_digits(buf, v)};
}

/* Slice of a NUL-terminated string. */
static pv_str_t cstr(const char *s)
{
    return (pv_str_t){s, strlen(s)};
}

/* ---- anonymised addresses (log_anonymize, $remote_addr_anon) ----------- */

/* An address as text, anonymised into scratch; "-" when it is none. */
static pv_str_t anon_text(const char *p, size_t n, pv_var_out_t *o)
{
    size_t k = pv_anon_addr_text(p, n, o->scratch, o->scratchlen);
    return k ? (pv_str_t){o->scratch, k} : PV_STR("-");
}

/* One element of an address list: "a.b.c.d", "a.b.c.d:port", "v6",
 * "[v6]" or "[v6]:port" (X-Forwarded-For, X-Real-IP). */
static void put_anon_element(pv_var_out_t *o, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    char buf[PV_ANON_TEXT_MAX];
    size_t k = 0;
    const char *close = n && p[0] == '[' ? memchr(p, ']', n) : NULL;
    const char *colon = memchr(p, ':', n);
    if (close)
        k = pv_anon_addr_text(p + 1, (size_t)(close - p - 1), buf, sizeof(buf));
    else if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - p) - 1))
        k = pv_anon_addr_text(p, (size_t)(colon - p), buf, sizeof(buf)); /* v4 with a port */
    else
        k = pv_anon_addr_text(p, n, buf, sizeof(buf));
    if (k)
        pv_var_put(o, buf, k);
    else
        pv_var_put(o, "-", 1); /* not an address: nothing of it is kept */
}

/* A comma-separated address list with every element anonymised. */
static void put_anon_list(pv_var_out_t *o, pv_str_t v, int *first)
{
    size_t i = 0;
    while (i <= v.len) {
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        if (!*first)
            pv_var_put(o, ", ", 2);
        *first = 0;
        put_anon_element(o, v.p + s, i - s);
        i++;
    }
}

/* Whether $http_NAME holds client addresses that log_anonymize hides:
 * X-Forwarded-For, X-Real-IP and the location's real_ip_header. */
static int address_field(const pv_request_t *r, pv_str_t name)
{
    if (pv_var_hdr_eq(name, PV_STR("x-forwarded-for")) || pv_var_hdr_eq(name, PV_STR("x-real-ip")))
        return 1;
    const char *rh = r->loc ? r->loc->conf.realip.header : r->srv ? r->srv->conf.realip.header : NULL;
    return rh && pv_var_hdr_eq(name, cstr(rh));
}

/* Every field so named, as one anonymised address list. */
static int anon_fields(pv_request_t *r, pv_str_t name, pv_var_out_t *o)
{
    int first = 1;
    for (int i = 0; i < r->nheaders; i++)
        if (pv_var_hdr_eq(r->headers[i].name, name))
            put_anon_list(o, r->headers[i].value, &first);
    return PV_VAL_WRITTEN;
}

static int remote_addr_anon_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = anon_text(r->peer_text, strlen(r->peer_text), o);
    return PV_VAL_FOUND;
}

/* ---- connection and addresses ------------------------------------------ */

const char *pv_log_client(const pv_request_t *r)
{
    static __thread char buf[PV_ANON_TEXT_MAX];
    if (!(r->flags & PV_REQ_F_RES_ANON))
        return r->peer_text;
    if (!pv_anon_addr_text(r->peer_text, strlen(r->peer_text), buf, sizeof(buf)))
        return "-";
    return buf;
}

/* An address as the request's log line may show it: anonymised while a
 * residency scope's line is written. */
static pv_str_t log_addr(pv_request_t *r, pv_var_out_t *o, const char *text)
{
    if (!(r->flags & PV_REQ_F_LOG_ANON))
        return cstr(text);
    return anon_text(text, strlen(text), o);
}

static int remote_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (pv_unlikely(o->anon))
        return remote_addr_anon_cb(r, part, o, v);
    *v = log_addr(r, o, r->peer_text);
    return PV_VAL_FOUND;
}

/* Port 0 (unix socket, unknown) is found but empty, for both ports. */
static int remote_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = r->peer_port ? fmt_u64(r->peer_port, o->scratch) : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

/* The connection's address and port, whatever realip made of the request's. */
static int realip_remote_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const char *t = r->realip ? r->realip->orig_text : r->peer_text;
    *v = o->anon ? anon_text(t, strlen(t), o) : log_addr(r, o, t);
    return PV_VAL_FOUND;
}

static int realip_remote_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    uint16_t port = r->realip ? r->realip->orig_port : r->peer_port;
    *v = port ? fmt_u64(port, o->scratch) : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

static int server_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = r->local_port ? fmt_u64(r->local_port, o->scratch) : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

static int server_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = cstr(r->local_text);
    return PV_VAL_FOUND;
}

/* $proxy_protocol_addr, _port, _server_addr, _server_port: what the
 * connection's PROXY protocol header said; not found without one, a
 * port 0 empty (as NGINX's). */
static const pv_pp_t *pp_of(const pv_request_t *r)
{
    return r->xprt ? r->xprt->pp : NULL;
}

static int pp_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const pv_pp_t *pp = pp_of(r);
    if (!pp)
        return PV_VAL_MISSING;
    *v = cstr(pp->src_addr);
    return PV_VAL_FOUND;
}

static int pp_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const pv_pp_t *pp = pp_of(r);
    if (!pp)
        return PV_VAL_MISSING;
    *v = pp->src_port ? fmt_u64(pp->src_port, o->scratch) : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

static int pp_server_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const pv_pp_t *pp = pp_of(r);
    if (!pp)
        return PV_VAL_MISSING;
    *v = cstr(pp->dst_addr);
    return PV_VAL_FOUND;
}

static int pp_server_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const pv_pp_t *pp = pp_of(r);
    if (!pp)
        return PV_VAL_MISSING;
    *v = pp->dst_port ? fmt_u64(pp->dst_port, o->scratch) : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

/* The address in network order; without a sockaddr the text is parsed;
 * a unix domain socket's client is its text. */
static int binary_remote_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                 pv_str_t *v)
{
    if (r->peer && r->peer->sa_family == AF_INET) {
        *v = (pv_str_t){(const char *)&((const struct sockaddr_in *)r->peer)->sin_addr, 4};
    } else if (r->peer && r->peer->sa_family == AF_INET6) {
        *v = (pv_str_t){(const char *)&((const struct sockaddr_in6 *)r->peer)->sin6_addr, 16};
    } else if (r->peer && r->peer->sa_family == AF_UNIX) {
        *v = cstr(r->peer_text); /* "unix:", as NGINX gives it */
        return PV_VAL_FOUND;
    } else if (inet_pton(AF_INET, r->peer_text, o->scratch) == 1) {
        *v = (pv_str_t){o->scratch, 4};
    } else if (inet_pton(AF_INET6, r->peer_text, o->scratch) == 1) {
        *v = (pv_str_t){o->scratch, 16};
    } else {
        *v = (pv_str_t){empty_value, 0};
    }
    if (o->anon && v->len) {
        memmove(o->scratch, v->p, v->len);
        pv_anon_addr_bin((uint8_t *)o->scratch, v->len);
        v->p = o->scratch;
    }
    return PV_VAL_FOUND;
}

static int connection_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = fmt_u64(r->conn_id, o->scratch);
    return PV_VAL_FOUND;
}

static int connection_requests_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                  pv_str_t *v)
{
    *v = fmt_u64(r->conn_requests, o->scratch);
    return PV_VAL_FOUND;
}

/* Seconds since the connection began, to the millisecond ("%T.%03M") */
static int connection_time_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    uint64_t now = pv_loop_time_ns();
    uint64_t ms = now > r->conn_start_ns ? (now - r->conn_start_ns) / 1000000 : 0;
    int n = snprintf(o->scratch, 32, "%llu.%03u", (unsigned long long)(ms / 1000), (unsigned)(ms % 1000));
    *v = (pv_str_t){o->scratch, (size_t)n};
    return PV_VAL_FOUND;
}

/* "p" when the request was pipelined (buffered behind the one before it
 * on the connection), else "." */
static int pipe_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = (r->flags & PV_REQ_F_PIPELINED) ? (pv_str_t){"p", 1} : (pv_str_t){".", 1};
    return PV_VAL_FOUND;
}

/* Every X-Forwarded-For value, each followed by ", ", then the client;
 * just the client when there is none (nothing was written then). */
static int proxy_add_x_forwarded_for_cb(pv_request_t *r, const pv_cv_part_t *part,
                                        pv_var_out_t *o, pv_str_t *v)
{
    static const pv_str_t xff = {"x-forwarded-for", 15};
    if (o->anon) {
        int first = 1;
        for (int i = 0; i < r->nheaders; i++)
            if (pv_var_hdr_eq(r->headers[i].name, xff))
                put_anon_list(o, r->headers[i].value, &first);
        if (!first)
            pv_var_put(o, ", ", 2);
        put_anon_element(o, r->peer_text, strlen(r->peer_text));
        return PV_VAL_WRITTEN;
    }
    int found = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (!pv_var_hdr_eq(r->headers[i].name, xff))
            continue;
        pv_var_put(o, r->headers[i].value.p, r->headers[i].value.len);
        pv_var_put(o, ", ", 2);
        found = 1;
    }
    *v = cstr(r->peer_text);
    if (!found)
        return PV_VAL_FOUND;
    pv_var_put(o, v->p, v->len);
    return PV_VAL_WRITTEN;
}

/* ---- host and server name ---------------------------------------------- */

/* NGINX's $server_name: the server's first name as written, lowercased
 * unless a regex ("~" kept), ".example.com" without its dot, wildcards
 * with their '*'. */
static int server_name_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const pv_server_t *srv = r->srv;
    if (!srv || !srv->first_name.p) {
        *v = (pv_str_t){empty_value, 0};
        return PV_VAL_FOUND;
    }
    *v = srv->first_name;
    return PV_VAL_FOUND;
}

/* The request's host, else the server's name. */
static int host_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (r->host.len) {
        *v = r->host;
        return PV_VAL_FOUND;
    }
    return server_name_cb(r, part, o, v);
}

/* ---- header fields ----------------------------------------------------- */

/* $http_NAME: the first field so named. NGINX 1.22 joins the fields of a
 * repeated Cookie (with "; ") and X-Forwarded-For (with ", "). */
static int http_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    int count;
    const pv_header_t *h = pv_var_hdr_first(r->headers, r->nheaders, part->text, &count);
    if (!h)
        return PV_VAL_MISSING;
    if (pv_unlikely(o->anon) && address_field(r, part->text))
        return anon_fields(r, part->text, o);
    if (count > 1) {
        if (PV_STR_IEQ(part->text, "cookie"))
            return pv_var_hdr_join(r->headers, r->nheaders, part->text, ';', o);
        if (pv_var_hdr_eq(part->text, PV_STR("x-forwarded-for")))
            return pv_var_hdr_join(r->headers, r->nheaders, part->text, ',', o);
    }
    *v = pv_var_hdr_value(h);
    return PV_VAL_FOUND;
}

/* The first field named name. */
static int header_value(const pv_request_t *r, pv_str_t name, pv_str_t *v)
{
    const pv_header_t *h = pv_var_hdr_first(r->headers, r->nheaders, name, NULL);
    if (!h)
        return PV_VAL_MISSING;
    *v = pv_var_hdr_value(h);
    return PV_VAL_FOUND;
}

static int content_length_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                             pv_str_t *v)
{
    return header_value(r, PV_STR("content-length"), v);
}

static int content_type_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return header_value(r, PV_STR("content-type"), v);
}

/* ---- $remote_user: the user of "Authorization: Basic" ------------------ */

/* Decode b64[0..n) (already validated), writing the first `take` bytes to
 * o if o is given; returns the index of the first ':' or -1. */
static long b64_decode_user(const char *b64, size_t n, pv_var_out_t *o, size_t take)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)pv_b64_value((unsigned char)b64[i], 0);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char c = (char)((acc >> bits) & 0xff);
            if (o) {
                if (out >= take)
                    return -1;
                pv_var_put(o, &c, 1);
            } else if (c == ':') {
                return (long)out;
            }
            out++;
        }
    }
    return -1;
}

/* Finds the base64 credentials and the user's decoded length, following
 * ngx_http_auth_basic_user(): "Basic " (any case), spaces, base64 up to
 * the first '='; the user must be non-empty and followed by ':'. */
static int basic_user(const pv_request_t *r, pv_str_t *b64, size_t *userlen)
{
    const pv_header_t *h =
        pv_var_hdr_first(r->headers, r->nheaders, PV_STR("authorization"), NULL);
    if (!h || h->value.len < 6 || !pv_str_ieq((pv_str_t){h->value.p, 6}, "Basic ", 6))
        return 0;
    const char *p = h->value.p + 6;
    size_t n = h->value.len - 6;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    if (n == 0)
        return 0;
    size_t len = 0;
    while (len < n && p[len] != '=') {
        if (pv_b64_value((unsigned char)p[len], 0) < 0)
            return 0;
        len++;
    }
    if (len % 4 == 1)
        return 0;
    long colon = b64_decode_user(p, len, NULL, 0);
    if (colon <= 0)
        return 0;
    *b64 = (pv_str_t){p, len};
    *userlen = (size_t)colon;
    return 1;
}

/* Decoded straight into the output, so a user name of any length fits. */
static int remote_user_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pv_str_t b64;
    size_t ulen;
    if (!basic_user(r, &b64, &ulen))
        return PV_VAL_MISSING;
    b64_decode_user(b64.p, b64.len, o, ulen);
    return PV_VAL_WRITTEN;
}

/* ---- request line and arguments ---------------------------------------- */

static int scheme_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = r->xprt && pv_tls_ssl(r->xprt) ? PV_STR("https") : PV_STR("http");
    return PV_VAL_FOUND;
}

/* NGINX's $http2: the protocol an HTTP/2 request came in with, else empty. */
static int http2_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (r->http_major != 2)
        *v = PV_STR("");
    else
        *v = r->xprt && pv_tls_ssl(r->xprt) ? PV_STR("h2") : PV_STR("h2c");
    return PV_VAL_FOUND;
}

static int request_uri_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = (pv_str_t){r->request_uri.p ? r->request_uri.p : empty_value, r->request_uri.len};
    return PV_VAL_FOUND;
}

/* $uri and $document_uri. */
static int uri_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = (pv_str_t){r->uri.p ? r->uri.p : empty_value, r->uri.len};
    return PV_VAL_FOUND;
}

/* $args and $query_string: NGINX leaves them unset for both "/x" and "/x?". */
static int args_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->args.len)
        return PV_VAL_MISSING;
    *v = r->args;
    return PV_VAL_FOUND;
}

static int is_args_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = r->args.len ? PV_STR("?") : (pv_str_t){empty_value, 0};
    return PV_VAL_FOUND;
}

/* $arg_NAME: the first "NAME=" at the start of args or after '&', raw. */
static int arg_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pv_str_t args = r->args, name = part->text;
    if (!args.p || name.len == 0)
        return PV_VAL_MISSING;
    for (size_t i = 0; i + name.len < args.len; i++) {
        if (i > 0 && args.p[i - 1] != '&')
            continue;
        if (args.p[i + name.len] != '=')
            continue;
        if (!pv_str_ieq((pv_str_t){args.p + i, name.len}, name.p, name.len))
            continue;
        size_t s = i + name.len + 1, e = s;
        while (e < args.len && args.p[e] != '&')
            e++;
        *v = (pv_str_t){args.p + s, e - s};
        return PV_VAL_FOUND;
    }
    return PV_VAL_MISSING;
}

static int cookie_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return pv_var_cookie(r->headers, r->nheaders, part->text, v);
}

static int request_method_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                             pv_str_t *v)
{
    if (!r->method.p)
        return PV_VAL_MISSING;
    *v = r->method;
    return PV_VAL_FOUND;
}

static int request_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->request_line.p)
        return PV_VAL_MISSING;
    *v = r->request_line;
    return PV_VAL_FOUND;
}

static int server_protocol_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                              pv_str_t *v)
{
    if (r->http_major <= 0)
        return PV_VAL_MISSING;
    int n = snprintf(o->scratch, o->scratchlen, "HTTP/%d.%d", r->http_major, r->http_minor);
    *v = (pv_str_t){o->scratch, PV_MIN((size_t)n, o->scratchlen - 1)};
    return PV_VAL_FOUND;
}

/* Bytes of request line, head and body read (known when logging). */
static int request_length_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                             pv_str_t *v)
{
    *v = fmt_u64(r->request_length, o->scratch);
    return PV_VAL_FOUND;
}

/* $request_body: the body when it was read whole into memory (a body
 * sent on as it streams, or kept in a file, has none, as in NGINX). */
static int request_body_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->request_body.p)
        return PV_VAL_MISSING;
    *v = r->request_body;
    return PV_VAL_FOUND;
}

static int request_body_file_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->request_body_file)
        return PV_VAL_MISSING;
    *v = (pv_str_t){r->request_body_file, strlen(r->request_body_file)};
    return PV_VAL_FOUND;
}

/* ---- the table --------------------------------------------------------- */

const pv_var_t pv_vars_request[] = {
    PV_VAR("remote_addr", remote_addr_cb, 0),
    PV_VAR("remote_addr_anon", remote_addr_anon_cb, PV_VAR_F_PLAIN),
    PV_VAR("remote_port", remote_port_cb, 0),
    PV_VAR("realip_remote_addr", realip_remote_addr_cb, 0),
    PV_VAR("realip_remote_port", realip_remote_port_cb, 0),
    PV_VAR("binary_remote_addr", binary_remote_addr_cb, 0),
    PV_VAR("server_addr", server_addr_cb, 0),
    PV_VAR("server_port", server_port_cb, 0),
    PV_VAR("proxy_protocol_addr", pp_addr_cb, 0),
    PV_VAR("proxy_protocol_port", pp_port_cb, 0),
    PV_VAR("proxy_protocol_server_addr", pp_server_addr_cb, 0),
    PV_VAR("proxy_protocol_server_port", pp_server_port_cb, 0),
    PV_VAR("connection", connection_cb, PV_VAR_F_PLAIN),
    PV_VAR("connection_requests", connection_requests_cb, PV_VAR_F_PLAIN),
    PV_VAR("connection_time", connection_time_cb, PV_VAR_F_PLAIN),
    PV_VAR("pipe", pipe_cb, PV_VAR_F_PLAIN),
    PV_VAR("proxy_add_x_forwarded_for", proxy_add_x_forwarded_for_cb, 0),
    PV_VAR("host", host_cb, 0),
    PV_VAR("server_name", server_name_cb, 0),
    PV_VAR("http_", http_cb, PV_VAR_F_PREFIX | PV_VAR_F_HEADER),
    PV_VAR("content_length", content_length_cb, 0),
    PV_VAR("content_type", content_type_cb, 0),
    PV_VAR("remote_user", remote_user_cb, 0),
    PV_VAR("scheme", scheme_cb, 0),
    PV_VAR("request_uri", request_uri_cb, 0),
    PV_VAR("uri", uri_cb, 0),
    PV_VAR("document_uri", uri_cb, 0),
    PV_VAR("args", args_cb, 0),
    PV_VAR("query_string", args_cb, 0),
    PV_VAR("is_args", is_args_cb, 0),
    PV_VAR("arg_", arg_cb, PV_VAR_F_PREFIX),
    PV_VAR("cookie_", cookie_cb, PV_VAR_F_PREFIX),
    PV_VAR("request_method", request_method_cb, 0),
    PV_VAR("request", request_cb, 0),
    PV_VAR("server_protocol", server_protocol_cb, 0),
    PV_VAR("http2", http2_cb, 0),
    PV_VAR("request_length", request_length_cb, PV_VAR_F_PLAIN),
    PV_VAR("request_body", request_body_cb, 0),
    PV_VAR("request_body_file", request_body_file_cb, 0),
    PV_VAR_END,
};
