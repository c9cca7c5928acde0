/* Variables of what the gateway did with a request: the response and its
 * sizes, the upstream tries and timings, the clock, the access phase's
 * results ($consumer, $jwt_*, $limit_*, auth_request_set) and a few
 * process-wide values, with NGINX 1.22's semantics. One table entry and
 * one getter per variable; the evaluator (vars.c) calls the getter through
 * the entry. */
#include "vars.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../config/conf.h"
#include "../core/time.h"
#include "../policy/jwt.h"
#include "headers.h"
#include "request.h"

#define PV_NGINX_VERSION "1.22.1"

/* Decimal digits of v into buf (at least 20 bytes). */
static pv_str_t fmt_u64(uint64_t v, char *buf)
{
    return (pv_str_t){buf, pv_u64_digits(buf, v)};
}

/* "S.mmm" from milliseconds, NGINX's "%T.%03M". */
static pv_str_t fmt_msec(uint64_t ms, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%llu.%03u", (unsigned long long)(ms / 1000),
                     (unsigned)(ms % 1000));
    return (pv_str_t){buf, n < 0 ? 0 : PV_MIN((size_t)n, cap - 1)};
}

/* A NUL-terminated string, not found when NULL. */
static int cstr_value(const char *s, pv_str_t *v)
{
    if (!s)
        return PV_VAL_MISSING;
    *v = (pv_str_t){s, strlen(s)};
    return PV_VAL_FOUND;
}

/* ---- response ---------------------------------------------------------- */

/* Three digits; "000" before a response. */
static int status_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    /* an error_page's status first, as NGINX's $status: the page's
     * location sees the code it answers for */
    int st = r->err_status > 0 ? r->err_status : r->status < 0 ? 0 : r->status;
    if (st == 0 && o->escape == PV_ESCAPE_JSON) {
        *v = PV_STR("0"); /* a valid JSON number, not "000" */
        return PV_VAL_FOUND;
    }
    if (st > 999) {
        *v = fmt_u64((uint64_t)st, o->scratch);
        return PV_VAL_FOUND;
    }
    o->scratch[0] = (char)('0' + st / 100);
    o->scratch[1] = (char)('0' + st / 10 % 10);
    o->scratch[2] = (char)('0' + st % 10);
    *v = (pv_str_t){o->scratch, 3};
    return PV_VAL_FOUND;
}

static int body_bytes_sent_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                              pv_str_t *v)
{
    *v = fmt_u64(r->body_bytes_sent, o->scratch);
    return PV_VAL_FOUND;
}

static int bytes_sent_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = fmt_u64(r->bytes_sent, o->scratch);
    return PV_VAL_FOUND;
}

/* $limit_rate: the rate in effect (set when the response started, by
 * `set $limit_rate` or X-Accel-Limit-Rate); 0 before or without one. */
static int limit_rate_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = fmt_u64((uint64_t)r->limit_rate, o->scratch);
    return PV_VAL_FOUND;
}

/* $sent_http_NAME: the first response field so named. NGINX 1.22 joins
 * a repeated Cache-Control or Link with ", ". */
/* The HTTP/1 head as sent, as header fields: status line skipped. */
static void index_sent_head(pv_request_t *r)
{
    const char *p = r->sent_head.p, *end = p + r->sent_head.len;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    int n = 0;
    for (const char *q = eol; q && q < end; q = memchr(q + 1, '\n', (size_t)(end - q - 1)))
        n++;
    pv_header_t *h = pv_arena_alloc(r->arena, sizeof(*h) * (size_t)(n ? n : 1));
    n = 0;
    for (p = eol ? eol + 1 : end; p < end;) {
        const char *e = memchr(p, '\r', (size_t)(end - p));
        const char *colon = e ? memchr(p, ':', (size_t)(e - p)) : NULL;
        if (!colon)
            break;
        pv_str_t v = pv_http_trim_ows((pv_str_t){colon + 1, (size_t)(e - colon - 1)});
        h[n++] = (pv_header_t){(pv_str_t){p, (size_t)(colon - p)}, v};
        p = e + 2;
    }
    r->resp_headers = h;
    r->nresp_headers = n;
    r->sent_head = (pv_str_t){NULL, 0};
}

static int sent_http_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (r->sent_head.len)
        index_sent_head(r);
    int count;
    const pv_header_t *h = pv_var_hdr_first(r->resp_headers, r->nresp_headers, part->text, &count);
    if (!h)
        return PV_VAL_MISSING;
    if (count > 1 && (pv_var_hdr_eq(part->text, PV_STR("cache-control")) ||
                      PV_STR_IEQ(part->text, "link")))
        return pv_var_hdr_join(r->resp_headers, r->nresp_headers, part->text, ',', o);
    *v = pv_var_hdr_value(h);
    return PV_VAL_FOUND;
}

/* $sent_trailer_NAME: the first trailer so named among those made so far
 * (NGINX 1.22 takes the first of a repeated one). */
static int sent_trailer_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    const char *p = r->sent_trailers.p, *end = p + r->sent_trailers.len;
    while (p && p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *colon = e ? memchr(p, ':', (size_t)(e - p)) : NULL;
        if (!colon)
            break;
        if (pv_var_hdr_eq((pv_str_t){p, (size_t)(colon - p)}, part->text)) {
            *v = pv_http_trim_ows((pv_str_t){colon + 1, (size_t)(e - colon - 1)});
            return PV_VAL_FOUND;
        }
        p = e + 1;
    }
    return PV_VAL_MISSING;
}

/* ---- upstream and proxy ------------------------------------------------ */

/* Addresses tried, ", "-separated; not found when none was. */
static int upstream_addr_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                            pv_str_t *v)
{
    return r->upstream_addr[0] ? cstr_value(r->upstream_addr, v) : PV_VAL_MISSING;
}

static int upstream_status_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                              pv_str_t *v)
{
    return r->upstream_status[0] ? cstr_value(r->upstream_status, v) : PV_VAL_MISSING;
}

/* $upstream_cache_status: what the response cache did */
static int upstream_cache_status_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                    pv_str_t *v)
{
    static const char *const names[] = {"", "MISS", "BYPASS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "HIT"};
    if (!r->cache_status || r->cache_status > PV_CACHE_HIT)
        return PV_VAL_MISSING;
    return cstr_value(names[r->cache_status], v);
}

/* $upstream_http_NAME: the first field of the last upstream response. */
static int upstream_http_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                            pv_str_t *v)
{
    const pv_header_t *h =
        pv_var_hdr_first(r->upstream_headers, r->nupstream_headers, part->text, NULL);
    if (!h)
        return PV_VAL_MISSING;
    *v = pv_var_hdr_value(h);
    return PV_VAL_FOUND;
}

static int upstream_cookie_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return pv_var_set_cookie(r->upstream_headers, r->nupstream_headers, part->text, v);
}

/* $proxy_host is what the proxy recorded; while the response has not
 * started (proxy_set_header time) the location's proxy_pass stands in. */
static int proxy_host_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (r->proxy_host.len) {
        *v = r->proxy_host;
        return PV_VAL_FOUND;
    }
    if (r->status == 0 && r->loc && r->loc->proxy_pass && r->loc->proxy_pass->proxy_host.len) {
        *v = r->loc->proxy_pass->proxy_host;
        return PV_VAL_FOUND;
    }
    return PV_VAL_MISSING;
}

/* The port part of $proxy_host "host:port" / "[v6]:port"; "80" if none. */
static int proxy_port_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pv_str_t host;
    if (proxy_host_cb(r, part, o, &host) != PV_VAL_FOUND)
        return PV_VAL_MISSING;
    size_t i = host.len;
    while (i > 0 && host.p[i - 1] >= '0' && host.p[i - 1] <= '9')
        i--;
    *v = PV_STR("80");
    if (i > 0 && i < host.len && host.p[i - 1] == ':') {
        /* "::1" style bare IPv6 has no port; bracketed form ends in "]:" */
        if (!(i >= 2 && memchr(host.p, ':', i - 1) && host.p[i - 2] != ']'))
            *v = (pv_str_t){host.p + i, host.len - i};
    }
    return PV_VAL_FOUND;
}

/* ---- timings and the clock --------------------------------------------- */

/* Since the first byte of the request; never negative. */
static int request_time_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                           pv_str_t *v)
{
    uint64_t now = pv_now_ns();
    uint64_t ms = (r->start_ns && now > r->start_ns) ? (now - r->start_ns) / 1000000u : 0;
    *v = fmt_msec(ms, o->scratch, o->scratchlen);
    return PV_VAL_FOUND;
}

/* A clock string, copied: the per-thread cache changes with the next second. */
static int clock_value(pv_str_t t, pv_var_out_t *o, pv_str_t *v)
{
    size_t n = PV_MIN(t.len, o->scratchlen);
    memcpy(o->scratch, t.p, n);
    *v = (pv_str_t){o->scratch, n};
    return PV_VAL_FOUND;
}

static int time_local_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return clock_value(pv_time_local(), o, v);
}

static int time_iso8601_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                           pv_str_t *v)
{
    return clock_value(pv_time_iso8601(), o, v);
}

static int msec_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    char buf[PV_TIME_MSEC_LEN];
    size_t n = pv_time_msec(buf);
    return clock_value((pv_str_t){buf, n}, o, v);
}

/* ---- access phase ------------------------------------------------------ */

/* Owner of the API key presented. */
static int consumer_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->consumer.len)
        return PV_VAL_MISSING;
    *v = r->consumer;
    return PV_VAL_FOUND;
}

/* A claim or header parameter of the verified token: a string points into
 * the token, other values are formatted into scratch or, when longer, into
 * the request arena. */
static int jwt_value(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v,
                     int (*get)(const pv_jwt_t *, const char *, size_t, char *, size_t, pv_str_t *))
{
    if (!r->jwt)
        return PV_VAL_MISSING;
    int rc = get(r->jwt, part->text.p, part->text.len, o->scratch, o->scratchlen, v);
    if (rc == -ENOSPC && r->arena) {
        size_t cap = 64 * 1024;
        char *buf = pv_arena_alloc(r->arena, cap);
        rc = get(r->jwt, part->text.p, part->text.len, buf, cap, v);
    }
    return rc == PV_OK ? PV_VAL_FOUND : PV_VAL_MISSING;
}

static int jwt_claim_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return jwt_value(r, part, o, v, pv_jwt_claim);
}

static int jwt_header_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return jwt_value(r, part, o, v, pv_jwt_header);
}

/* NULL when no limit applied. */
static int limit_req_status_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                               pv_str_t *v)
{
    return cstr_value(r->limit_req_status, v);
}

static int limit_conn_status_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                pv_str_t *v)
{
    return cstr_value(r->limit_conn_status, v);
}

/* A variable auth_request_set declared; part->text is its name. */
static int declared_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    /* the last set wins: a later location's auth_request_set after an
     * internal redirect */
    for (int i = r->nuvars - 1; i >= 0; i--) {
        if (r->uvars[i].name.len == part->text.len &&
            strncasecmp(r->uvars[i].name.p, part->text.p, part->text.len) == 0) {
            *v = pv_var_hdr_value(&r->uvars[i]);
            return PV_VAL_FOUND;
        }
    }
    return PV_VAL_MISSING;
}

/* ---- process-wide values ----------------------------------------------- */

static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
static char proc_hostname[256];
static size_t proc_hostname_len;
static char proc_pid[24];
static size_t proc_pid_len;

/* Host name (lowercased, as NGINX keeps it) and pid, computed once. */
static void proc_init_cb(void)
{
    if (gethostname(proc_hostname, sizeof(proc_hostname) - 1) != 0)
        proc_hostname[0] = '\0';
    proc_hostname[sizeof(proc_hostname) - 1] = '\0';
    for (char *p = proc_hostname; *p; p++)
        *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p | 0x20) : *p;
    proc_hostname_len = strlen(proc_hostname);
    snprintf(proc_pid, sizeof(proc_pid), "%d", (int)getpid());
    proc_pid_len = strlen(proc_pid);
}

static int pid_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pthread_once(&proc_once, proc_init_cb);
    *v = (pv_str_t){proc_pid, proc_pid_len};
    return PV_VAL_FOUND;
}

static int hostname_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pthread_once(&proc_once, proc_init_cb);
    *v = (pv_str_t){proc_hostname, proc_hostname_len};
    return PV_VAL_FOUND;
}

static int nginx_version_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                            pv_str_t *v)
{
    *v = PV_STR(PV_NGINX_VERSION);
    return PV_VAL_FOUND;
}

/* ---- the table --------------------------------------------------------- */

const pv_var_t pv_vars_response[] = {
    PV_VAR("status", status_cb, PV_VAR_F_PLAIN),
    PV_VAR("body_bytes_sent", body_bytes_sent_cb, PV_VAR_F_PLAIN),
    PV_VAR("bytes_sent", bytes_sent_cb, PV_VAR_F_PLAIN),
    PV_VAR("limit_rate", limit_rate_cb, 0),
    PV_VAR("sent_http_", sent_http_cb, PV_VAR_F_PREFIX | PV_VAR_F_HEADER),
    PV_VAR("sent_trailer_", sent_trailer_cb, PV_VAR_F_PREFIX | PV_VAR_F_HEADER),
    PV_VAR("upstream_addr", upstream_addr_cb, 0),
    PV_VAR("upstream_status", upstream_status_cb, 0),
    PV_VAR("upstream_cache_status", upstream_cache_status_cb, 0),
    PV_VAR("upstream_http_", upstream_http_cb, PV_VAR_F_PREFIX | PV_VAR_F_HEADER | PV_VAR_F_UPSTREAM),
    PV_VAR("upstream_cookie_", upstream_cookie_cb, PV_VAR_F_PREFIX | PV_VAR_F_UPSTREAM),
    PV_VAR("proxy_host", proxy_host_cb, 0),
    PV_VAR("proxy_port", proxy_port_cb, 0),
    PV_VAR("request_time", request_time_cb, PV_VAR_F_PLAIN),
    PV_VAR("time_local", time_local_cb, PV_VAR_F_PLAIN),
    PV_VAR("time_iso8601", time_iso8601_cb, PV_VAR_F_PLAIN),
    PV_VAR("msec", msec_cb, PV_VAR_F_PLAIN),
    PV_VAR("consumer", consumer_cb, PV_VAR_F_LATE),
    PV_VAR("jwt_claim_", jwt_claim_cb, PV_VAR_F_PREFIX | PV_VAR_F_LATE),
    PV_VAR("jwt_header_", jwt_header_cb, PV_VAR_F_PREFIX | PV_VAR_F_LATE),
    PV_VAR("limit_req_status", limit_req_status_cb, 0),
    PV_VAR("limit_conn_status", limit_conn_status_cb, 0),
    PV_VAR("pid", pid_cb, 0),
    PV_VAR("hostname", hostname_cb, 0),
    PV_VAR("nginx_version", nginx_version_cb, 0),
    PV_VAR_END,
};

const pv_var_t pv_var_declared = PV_VAR("", declared_cb, PV_VAR_F_LATE);
