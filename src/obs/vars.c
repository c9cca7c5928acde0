/* Variable evaluation with NGINX 1.22's semantics.
 *
 * NGINX distinguishes a variable that is "not found" from one that is
 * found but empty: the access log prints "-" for the first only, and only
 * with the default escaping (escape=json and escape=none print nothing).
 * pv_var_get() keeps that distinction in the slice it returns: {NULL, 0}
 * for not found, a non-NULL pointer for a found (possibly empty) value. */
#include "vars.h"

#include <errno.h>
#include <strings.h>

#include "../policy/jwt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../config/conf.h"
#include "../core/time.h"
#include "../http/request.h"

#define PV_NGINX_VERSION "1.22.1"
/* Scratch pv_cv_eval() hands to lookups; every formatted value fits. */
#define PV_VAR_SCRATCH 128

/* Output cursor: writes what fits, counts everything (snprintf-style). */
typedef struct pv_cv_writer_s {
    char *out;   /* destination */
    size_t cap;  /* its size */
    size_t len;  /* bytes the value needs so far */
    int escape;  /* PV_ESCAPE_* applied to variable values */
} pv_cv_writer_t;

/* Outcome of looking a variable up. */
enum {
    VAL_MISSING = 0, /* not found */
    VAL_FOUND,       /* value in the slice */
    VAL_STREAM       /* found; made of several pieces, written by var_stream() */
};

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";
static const char *const empty_value = "";

/* Append bytes as they are. */
static void w_raw(pv_cv_writer_t *w, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (w->len < w->cap) {
        size_t k = PV_MIN(n, w->cap - w->len);
        memcpy(w->out + w->len, p, k);
    }
    w->len += n;
}

/* Append one byte as it is. */
static void w_byte(pv_cv_writer_t *w, char c)
{
    if (w->len < w->cap)
        w->out[w->len] = c;
    w->len++;
}

/* NGINX's log escaping: '"', '\\', control bytes, DEL and non-ASCII. */
static inline int log_needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x7f;
}

/* JSON escaping leaves bytes >= 0x7f alone, as ngx_escape_json() does. */
static inline int json_needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* Append a variable's value with the writer's escaping. */
static void w_escaped(pv_cv_writer_t *w, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, run = 0;

    if (n == 0)
        return;
    if (w->escape == PV_ESCAPE_NONE) {
        w_raw(w, p, n);
        return;
    }
    while (i < n) {
        unsigned char c = s[i];
        int esc = w->escape == PV_ESCAPE_JSON ? json_needs_escape(c) : log_needs_escape(c);
        if (!esc) {
            i++;
            continue;
        }
        w_raw(w, p + run, i - run);
        if (w->escape == PV_ESCAPE_JSON) {
            char e[6] = {'\\', 0};
            switch (c) {
            case '"': case '\\': e[1] = (char)c; w_raw(w, e, 2); break;
            case '\n': w_raw(w, "\\n", 2); break;
            case '\r': w_raw(w, "\\r", 2); break;
            case '\t': w_raw(w, "\\t", 2); break;
            case '\b': w_raw(w, "\\b", 2); break;
            case '\f': w_raw(w, "\\f", 2); break;
            default:
                e[1] = 'u'; e[2] = '0'; e[3] = '0';
                e[4] = hex_upper[c >> 4]; e[5] = hex_upper[c & 0xf];
                w_raw(w, e, 6);
            }
        } else {
            char e[4] = {'\\', 'x', hex_upper[c >> 4], hex_upper[c & 0xf]};
            w_raw(w, e, 4);
        }
        run = ++i;
    }
    w_raw(w, p + run, n - run);
}

/* ---- small helpers ---------------------------------------------------- */

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

/* Slice of a NUL-terminated string. */
static pv_str_t cstr(const char *s)
{
    return (pv_str_t){s, strlen(s)};
}

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Header-name match for $http_/$sent_http_: case-insensitive, and '-' and
 * '_' are the same character (NGINX maps both to '_' before comparing). */
static int hdr_name_eq(pv_str_t h, pv_str_t want)
{
    if (h.len != want.len)
        return 0;
    for (size_t i = 0; i < h.len; i++) {
        unsigned char a = lower((unsigned char)h.p[i]), b = lower((unsigned char)want.p[i]);
        if (a == '_')
            a = '-';
        if (b == '_')
            b = '-';
        if (a != b)
            return 0;
    }
    return 1;
}

/* First header named name (and how many there are, if count). */
static const pv_header_t *hdr_first(const pv_header_t *h, int n, pv_str_t name, int *count)
{
    const pv_header_t *first = NULL;
    int c = 0;
    for (int i = 0; i < n; i++) {
        if (hdr_name_eq(h[i].name, name)) {
            if (!first)
                first = &h[i];
            c++;
        }
    }
    if (count)
        *count = c;
    return first;
}

/* A header's value, never with a NULL pointer (found means non-NULL). */
static pv_str_t hdr_value(const pv_header_t *h)
{
    return (pv_str_t){h->value.p ? h->value.p : empty_value, h->value.len};
}

/* Headers NGINX 1.22 keeps as lists and joins in variables; every other
 * header variable yields the first field. Returns the separator or 0. */
static char joined_sep(int var, pv_str_t name)
{
    if (var == PV_VAR_HTTP) {
        if (PV_STR_IEQ(name, "cookie"))
            return ';';
        if (hdr_name_eq(name, PV_STR("x-forwarded-for")))
            return ',';
    } else if (var == PV_VAR_SENT_HTTP) {
        if (hdr_name_eq(name, PV_STR("cache-control")) || PV_STR_IEQ(name, "link"))
            return ',';
    }
    return 0;
}

/* $arg_NAME: the first "NAME=" at the start of args or after '&'. */
static int arg_find(pv_str_t args, pv_str_t name, pv_str_t *out)
{
    if (!args.p || name.len == 0)
        return 0;
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
        *out = (pv_str_t){args.p + s, e - s};
        return 1;
    }
    return 0;
}

/* ---- $remote_user: the user of "Authorization: Basic" ---------------- */

/* Decode b64[0..n) (already validated), writing the first `take` bytes to
 * w if w is given; returns the index of the first ':' or -1. */
static long b64_decode_user(const char *b64, size_t n, pv_cv_writer_t *w, size_t take)
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
            if (w) {
                if (out >= take)
                    return -1;
                w_escaped(w, &c, 1);
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
    const pv_header_t *h = hdr_first(r->headers, r->nheaders, PV_STR("authorization"), NULL);
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

/* ---- process-wide values --------------------------------------------- */

static pthread_once_t proc_once = PTHREAD_ONCE_INIT;
static char proc_hostname[256];
static char proc_pid[24];

/* Host name (lowercased, as NGINX keeps it) and pid, computed once. */
static void proc_init_cb(void)
{
    if (gethostname(proc_hostname, sizeof(proc_hostname) - 1) != 0)
        proc_hostname[0] = '\0';
    proc_hostname[sizeof(proc_hostname) - 1] = '\0';
    for (char *p = proc_hostname; *p; p++)
        *p = (char)lower((unsigned char)*p);
    snprintf(proc_pid, sizeof(proc_pid), "%d", (int)getpid());
}

/* ---- $request_id: xoshiro256** per thread, seeded from getrandom ------ */

static __thread uint64_t rng_state[4];
static __thread int rng_ready;

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* Seed this thread's generator from the kernel. */
static void rng_seed(void)
{
    if (getrandom(rng_state, sizeof(rng_state), GRND_NONBLOCK) != (ssize_t)sizeof(rng_state)) {
        /* early boot without entropy: mix clocks, thread and stack address */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        x ^= pv_now_ns() ^ ((uint64_t)(uintptr_t)&ts << 16) ^ (uint64_t)pthread_self();
        for (int i = 0; i < 4; i++) {
            uint64_t z = (x += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            rng_state[i] = z ^ (z >> 31);
        }
    }
    if (!(rng_state[0] | rng_state[1] | rng_state[2] | rng_state[3]))
        rng_state[0] = 1;
    rng_ready = 1;
}

/* Next xoshiro256** output. */
static uint64_t rng_next(void)
{
    if (pv_unlikely(!rng_ready))
        rng_seed();
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* 128 random bits as 32 lowercase hex digits, like NGINX's $request_id. */
static void request_id_make(pv_request_t *r)
{
    for (int k = 0; k < 2; k++) {
        uint64_t v = rng_next();
        for (int i = 0; i < 16; i++)
            r->request_id[k * 16 + i] = hex_lower[(v >> (60 - 4 * i)) & 0xf];
    }
    r->request_id[32] = '\0';
}

/* ---- server and proxy names ------------------------------------------- */

/* NGINX's $server_name: the server's first name; ".example.com" loses its
 * dot, a regex keeps its '~'. Returns VAL_STREAM when '~' has to be added. */
static int server_name(const pv_request_t *r, pv_str_t *out)
{
    const pv_server_t *srv = r->srv;
    if (!srv || srv->nnames <= 0 || !srv->names) {
        *out = (pv_str_t){empty_value, 0};
        return VAL_FOUND;
    }
    const pv_server_name_t *sn = &srv->names[0];
    pv_str_t n = {sn->name.p ? sn->name.p : empty_value, sn->name.len};
    if (sn->kind == PV_SN_REGEX && (n.len == 0 || n.p[0] != '~')) {
        *out = n;
        return VAL_STREAM;
    }
    if (sn->kind == PV_SN_WILD_HEAD && n.len && n.p[0] == '.') {
        n.p++;
        n.len--;
    }
    *out = n;
    return VAL_FOUND;
}

/* $proxy_host is what the proxy recorded; while the response has not
 * started (proxy_set_header time) the location's proxy_pass stands in. */
static int proxy_host(const pv_request_t *r, pv_str_t *out)
{
    if (r->proxy_host.len) {
        *out = r->proxy_host;
        return 1;
    }
    if (r->status == 0 && r->loc && r->loc->proxy_pass && r->loc->proxy_pass->proxy_host.len) {
        *out = r->loc->proxy_pass->proxy_host;
        return 1;
    }
    return 0;
}

/* The port part of a proxy_host "host:port" / "[v6]:port"; "80" if none. */
static pv_str_t proxy_port(pv_str_t host)
{
    size_t i = host.len;
    while (i > 0 && host.p[i - 1] >= '0' && host.p[i - 1] <= '9')
        i--;
    if (i > 0 && i < host.len && host.p[i - 1] == ':') {
        /* "::1" style bare IPv6 has no port; bracketed form ends in "]:" */
        if (i >= 2 && memchr(host.p, ':', i - 1) && host.p[i - 2] != ']')
            return PV_STR("80");
        return (pv_str_t){host.p + i, host.len - i};
    }
    return PV_STR("80");
}

/* $jwt_claim_NAME / $jwt_header_NAME of the verified token: a string
 * claim points into the token, other values are formatted into scratch or,
 * when longer, into the request arena. */
static int jwt_value(pv_request_t *r, const pv_cv_part_t *part, char *scratch, size_t slen, pv_str_t *v)
{
    if (!r->jwt)
        return VAL_MISSING;
    int (*get)(const pv_jwt_t *, const char *, size_t, char *, size_t, pv_str_t *) =
        part->var == PV_VAR_JWT_CLAIM ? pv_jwt_claim : pv_jwt_header;
    int rc = get(r->jwt, part->text.p, part->text.len, scratch, slen, v);
    if (rc == -ENOSPC && r->arena) {
        size_t cap = 64 * 1024;
        char *buf = pv_arena_alloc(r->arena, cap);
        rc = get(r->jwt, part->text.p, part->text.len, buf, cap, v);
    }
    return rc == PV_OK ? VAL_FOUND : VAL_MISSING;
}

/* ---- lookup ----------------------------------------------------------- */

/* Looks up one variable. Formatted values go to scratch (>= 64 bytes). */
static int var_lookup(pv_request_t *r, const pv_cv_part_t *part, char *scratch,
                      size_t slen, pv_str_t *v)
{
    const pv_header_t *h;
    int count;

    switch (part->var) {
    case PV_VAR_REMOTE_ADDR:
        *v = cstr(r->peer_text);
        return VAL_FOUND;
    case PV_VAR_REMOTE_PORT:
        *v = r->peer_port ? fmt_u64(r->peer_port, scratch) : (pv_str_t){empty_value, 0};
        return VAL_FOUND;
    case PV_VAR_BINARY_REMOTE_ADDR:
        if (r->peer && r->peer->sa_family == AF_INET) {
            *v = (pv_str_t){(const char *)&((const struct sockaddr_in *)r->peer)->sin_addr, 4};
        } else if (r->peer && r->peer->sa_family == AF_INET6) {
            *v = (pv_str_t){(const char *)&((const struct sockaddr_in6 *)r->peer)->sin6_addr, 16};
        } else if (inet_pton(AF_INET, r->peer_text, scratch) == 1) {
            *v = (pv_str_t){scratch, 4};
        } else if (inet_pton(AF_INET6, r->peer_text, scratch) == 1) {
            *v = (pv_str_t){scratch, 16};
        } else {
            *v = (pv_str_t){empty_value, 0};
        }
        return VAL_FOUND;
    case PV_VAR_PROXY_ADD_X_FORWARDED_FOR:
        if (hdr_first(r->headers, r->nheaders, PV_STR("x-forwarded-for"), NULL))
            return VAL_STREAM;
        *v = cstr(r->peer_text);
        return VAL_FOUND;
    case PV_VAR_HOST:
        if (r->host.len) {
            *v = r->host;
            return VAL_FOUND;
        }
        return server_name(r, v);
    case PV_VAR_SERVER_NAME:
        return server_name(r, v);
    case PV_VAR_HTTP:
    case PV_VAR_SENT_HTTP:
        if (part->var == PV_VAR_HTTP)
            h = hdr_first(r->headers, r->nheaders, part->text, &count);
        else
            h = hdr_first(r->resp_headers, r->nresp_headers, part->text, &count);
        if (!h)
            return VAL_MISSING;
        if (count > 1 && joined_sep(part->var, part->text))
            return VAL_STREAM;
        *v = hdr_value(h);
        return VAL_FOUND;
    case PV_VAR_SCHEME:
        *v = PV_STR("http");
        return VAL_FOUND;
    case PV_VAR_REQUEST_URI:
        *v = (pv_str_t){r->request_uri.p ? r->request_uri.p : empty_value, r->request_uri.len};
        return VAL_FOUND;
    case PV_VAR_URI:
    case PV_VAR_DOCUMENT_URI:
        *v = (pv_str_t){r->uri.p ? r->uri.p : empty_value, r->uri.len};
        return VAL_FOUND;
    case PV_VAR_ARGS:
    case PV_VAR_QUERY_STRING:
        /* NGINX leaves args unset for both "/x" and "/x?" */
        if (!r->args.len)
            return VAL_MISSING;
        *v = r->args;
        return VAL_FOUND;
    case PV_VAR_IS_ARGS:
        *v = r->args.len ? PV_STR("?") : (pv_str_t){empty_value, 0};
        return VAL_FOUND;
    case PV_VAR_ARG:
        return arg_find(r->args, part->text, v) ? VAL_FOUND : VAL_MISSING;
    case PV_VAR_REQUEST_METHOD:
        if (!r->method.p)
            return VAL_MISSING;
        *v = r->method;
        return VAL_FOUND;
    case PV_VAR_REQUEST:
        if (!r->request_line.p)
            return VAL_MISSING;
        *v = r->request_line;
        return VAL_FOUND;
    case PV_VAR_REQUEST_ID:
        if (!r->request_id[0])
            request_id_make(r);
        *v = (pv_str_t){r->request_id, 32};
        return VAL_FOUND;
    case PV_VAR_SERVER_PORT:
        *v = r->local_port ? fmt_u64(r->local_port, scratch) : (pv_str_t){empty_value, 0};
        return VAL_FOUND;
    case PV_VAR_SERVER_ADDR:
        *v = cstr(r->local_text);
        return VAL_FOUND;
    case PV_VAR_SERVER_PROTOCOL:
        if (r->http_major <= 0)
            return VAL_MISSING;
        {
            int n = snprintf(scratch, slen, "HTTP/%d.%d", r->http_major, r->http_minor);
            *v = (pv_str_t){scratch, PV_MIN((size_t)n, slen - 1)};
        }
        return VAL_FOUND;
    case PV_VAR_PROXY_HOST:
        return proxy_host(r, v) ? VAL_FOUND : VAL_MISSING;
    case PV_VAR_PROXY_PORT:
        if (!proxy_host(r, v))
            return VAL_MISSING;
        *v = proxy_port(*v);
        return VAL_FOUND;
    case PV_VAR_UPSTREAM_ADDR:
        if (!r->upstream_addr[0])
            return VAL_MISSING;
        *v = cstr(r->upstream_addr);
        return VAL_FOUND;
    case PV_VAR_UPSTREAM_STATUS:
        if (!r->upstream_status[0])
            return VAL_MISSING;
        *v = cstr(r->upstream_status);
        return VAL_FOUND;
    case PV_VAR_STATUS: {
        int st = r->status < 0 ? 0 : r->status;
        int n = snprintf(scratch, slen, "%03d", st);
        *v = (pv_str_t){scratch, PV_MIN((size_t)n, slen - 1)};
        return VAL_FOUND;
    }
    case PV_VAR_REQUEST_TIME: {
        uint64_t now = pv_now_ns();
        uint64_t ms = (r->start_ns && now > r->start_ns) ? (now - r->start_ns) / 1000000u : 0;
        *v = fmt_msec(ms, scratch, slen);
        return VAL_FOUND;
    }
    case PV_VAR_UPSTREAM_RESPONSE_TIME:
        if (r->upstream_response_us < 0)
            return VAL_MISSING;
        *v = fmt_msec((uint64_t)r->upstream_response_us / 1000u, scratch, slen);
        return VAL_FOUND;
    case PV_VAR_UPSTREAM_CONNECT_TIME:
        if (r->upstream_connect_us < 0)
            return VAL_MISSING;
        *v = fmt_msec((uint64_t)r->upstream_connect_us / 1000u, scratch, slen);
        return VAL_FOUND;
    case PV_VAR_TIME_ISO8601:
    case PV_VAR_TIME_LOCAL: {
        /* copied: the per-thread cache changes with the next second */
        pv_str_t t = part->var == PV_VAR_TIME_LOCAL ? pv_time_local() : pv_time_iso8601();
        size_t n = PV_MIN(t.len, slen);
        memcpy(scratch, t.p, n);
        *v = (pv_str_t){scratch, n};
        return VAL_FOUND;
    }
    case PV_VAR_MSEC: {
        char buf[PV_TIME_MSEC_LEN];
        size_t n = PV_MIN(pv_time_msec(buf), slen);
        memcpy(scratch, buf, n);
        *v = (pv_str_t){scratch, n};
        return VAL_FOUND;
    }
    case PV_VAR_BODY_BYTES_SENT:
        *v = fmt_u64(r->body_bytes_sent, scratch);
        return VAL_FOUND;
    case PV_VAR_BYTES_SENT:
        *v = fmt_u64(r->bytes_sent, scratch);
        return VAL_FOUND;
    case PV_VAR_REQUEST_LENGTH:
        *v = fmt_u64(r->request_length, scratch);
        return VAL_FOUND;
    case PV_VAR_CONTENT_LENGTH:
    case PV_VAR_CONTENT_TYPE:
        h = hdr_first(r->headers, r->nheaders,
                      part->var == PV_VAR_CONTENT_LENGTH ? PV_STR("content-length")
                                                         : PV_STR("content-type"), NULL);
        if (!h)
            return VAL_MISSING;
        *v = hdr_value(h);
        return VAL_FOUND;
    case PV_VAR_REMOTE_USER: {
        pv_str_t b64;
        size_t ulen;
        if (!basic_user(r, &b64, &ulen))
            return VAL_MISSING;
        *v = b64;
        return VAL_STREAM;
    }
    case PV_VAR_CONNECTION:
        *v = fmt_u64(r->conn_id, scratch);
        return VAL_FOUND;
    case PV_VAR_CONNECTION_REQUESTS:
        *v = fmt_u64(r->conn_requests, scratch);
        return VAL_FOUND;
    case PV_VAR_PID:
        pthread_once(&proc_once, proc_init_cb);
        *v = cstr(proc_pid);
        return VAL_FOUND;
    case PV_VAR_HOSTNAME:
        pthread_once(&proc_once, proc_init_cb);
        *v = cstr(proc_hostname);
        return VAL_FOUND;
    case PV_VAR_NGINX_VERSION:
        *v = PV_STR(PV_NGINX_VERSION);
        return VAL_FOUND;
    case PV_VAR_UPSTREAM_HTTP:
        h = hdr_first(r->upstream_headers, r->nupstream_headers, part->text, NULL);
        if (!h)
            return VAL_MISSING;
        *v = hdr_value(h);
        return VAL_FOUND;
    case PV_VAR_CONSUMER:
        if (!r->consumer.len)
            return VAL_MISSING;
        *v = r->consumer;
        return VAL_FOUND;
    case PV_VAR_JWT_CLAIM:
    case PV_VAR_JWT_HEADER:
        return jwt_value(r, part, scratch, slen, v);
    case PV_VAR_LIMIT_REQ_STATUS:
        if (!r->limit_req_status)
            return VAL_MISSING;
        *v = cstr(r->limit_req_status);
        return VAL_FOUND;
    case PV_VAR_LIMIT_CONN_STATUS:
        if (!r->limit_conn_status)
            return VAL_MISSING;
        *v = cstr(r->limit_conn_status);
        return VAL_FOUND;
    case PV_VAR_USER:
        for (int i = 0; i < r->nuvars; i++) {
            if (r->uvars[i].name.len == part->text.len &&
                strncasecmp(r->uvars[i].name.p, part->text.p, part->text.len) == 0) {
                *v = hdr_value(&r->uvars[i]);
                return VAL_FOUND;
            }
        }
        return VAL_MISSING;
    default:
        return VAL_MISSING;
    }
}

/* Writes a VAL_STREAM value (escaped per w) without any buffer of its own. */
static void var_stream(pv_request_t *r, const pv_cv_part_t *part, pv_str_t v, pv_cv_writer_t *w)
{
    switch (part->var) {
    case PV_VAR_HTTP:
    case PV_VAR_SENT_HTTP: {
        const pv_header_t *hs = part->var == PV_VAR_HTTP ? r->headers : r->resp_headers;
        int n = part->var == PV_VAR_HTTP ? r->nheaders : r->nresp_headers;
        char sep[2] = {joined_sep(part->var, part->text), ' '};
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (!hdr_name_eq(hs[i].name, part->text))
                continue;
            if (!first)
                w_escaped(w, sep, 2);
            w_escaped(w, hs[i].value.p, hs[i].value.len);
            first = 0;
        }
        break;
    }
    case PV_VAR_PROXY_ADD_X_FORWARDED_FOR:
        for (int i = 0; i < r->nheaders; i++) {
            if (!hdr_name_eq(r->headers[i].name, PV_STR("x-forwarded-for")))
                continue;
            w_escaped(w, r->headers[i].value.p, r->headers[i].value.len);
            w_escaped(w, ", ", 2);
        }
        w_escaped(w, r->peer_text, strlen(r->peer_text));
        break;
    case PV_VAR_HOST:
    case PV_VAR_SERVER_NAME:
        w_escaped(w, "~", 1);
        w_escaped(w, v.p, v.len);
        break;
    case PV_VAR_REMOTE_USER: {
        pv_str_t b64;
        size_t ulen;
        if (basic_user(r, &b64, &ulen))
            b64_decode_user(b64.p, b64.len, w, ulen);
        break;
    }
    default:
        break;
    }
}

size_t pv_cv_eval(const pv_cv_t *cv, struct pv_request_s *r, int escape, char *out, size_t cap)
{
    pv_cv_writer_t w = {out, cap, 0, escape};
    char scratch[PV_VAR_SCRATCH];

    if (!cv || cv->nparts <= 0)
        return 0;
    if (cv->is_const) {
        w_raw(&w, cv->parts[0].text.p, cv->parts[0].text.len);
        return w.len;
    }
    for (int i = 0; i < cv->nparts; i++) {
        const pv_cv_part_t *part = &cv->parts[i];
        if (part->var == PV_VAR_NONE) {
            w_raw(&w, part->text.p, part->text.len);
            continue;
        }
        pv_str_t v = {empty_value, 0};
        switch (var_lookup(r, part, scratch, sizeof(scratch), &v)) {
        case VAL_FOUND:
            w_escaped(&w, v.p, v.len);
            break;
        case VAL_STREAM:
            var_stream(r, part, v, &w);
            break;
        default:
            if (escape == PV_ESCAPE_DEFAULT)
                w_byte(&w, '-');
            break;
        }
    }
    return w.len;
}

pv_str_t pv_var_get(struct pv_request_s *r, const pv_cv_part_t *part, char *scratch, size_t scratchlen)
{
    pv_str_t v = {empty_value, 0};

    switch (var_lookup(r, part, scratch, scratchlen, &v)) {
    case VAL_MISSING:
        return (pv_str_t){NULL, 0};
    case VAL_FOUND:
        return v;
    default: {
        pv_cv_writer_t w = {scratch, scratchlen, 0, PV_ESCAPE_NONE};
        var_stream(r, part, v, &w);
        if (w.len <= scratchlen)
            return (pv_str_t){scratch, w.len};
        if (!r->arena)
            return (pv_str_t){scratch, scratchlen};
        /* a joined header list longer than scratch lives in the request arena */
        char *p = pv_arena_alloc(r->arena, w.len);
        w = (pv_cv_writer_t){p, w.len, 0, PV_ESCAPE_NONE};
        var_stream(r, part, v, &w);
        return (pv_str_t){p, w.len};
    }
    }
}
