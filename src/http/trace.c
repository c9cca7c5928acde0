#include "trace.h"

#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../core/time.h"
#include "vars.h"

static const char hex_lower[] = "0123456789abcdef";

/* ---- random bits: xoshiro256** per thread, seeded from getrandom ------- */

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

uint64_t pv_rand64(void)
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

/* n random bytes, never all zero (an all-zero id is invalid). */
static void rand_id(uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t x = pv_rand64();
            memcpy(out + i, &x, PV_MIN(8, n - i));
        }
    } while (pv_unlikely(out[0] == 0 && memcmp(out, out + 1, n - 1) == 0));
}

static char *hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *out++ = hex_lower[p[i] >> 4];
        *out++ = hex_lower[p[i] & 0xf];
    }
    return out;
}

/* 64 bits as 16 lowercase hex digits. */
static void hex64(char *out, uint64_t x)
{
    for (int i = 15; i >= 0; i--, x >>= 4)
        out[i] = hex_lower[x & 0xf];
}

/* ---- traceparent -------------------------------------------------------- */

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is invalid too */
}

/* n bytes from 2n lowercase hex digits; -1 when one is not, or when
 * nonzero is asked and all are zero. */
static int parse_hex(const char *s, uint8_t *out, size_t n, int nonzero)
{
    uint8_t any = 0;
    for (size_t i = 0; i < n; i++) {
        int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
        any |= out[i];
    }
    return nonzero && !any ? -1 : 0;
}

int pv_traceparent_parse(const char *s, size_t n, pv_traceparent_t *tp)
{
    /* version "-" trace-id(32) "-" parent-id(16) "-" flags(2) = 55 */
    if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    if (parse_hex(s, &tp->version, 1, 0) < 0 || tp->version == 0xff)
        return -1;
    if (tp->version == 0 ? n != 55 : (n > 55 && s[55] != '-'))
        return -1;
    if (parse_hex(s + 3, tp->trace_id, 16, 1) < 0 || parse_hex(s + 36, tp->parent_id, 8, 1) < 0)
        return -1;
    return parse_hex(s + 53, &tp->flags, 1, 0);
}

/* ---- a request's trace -------------------------------------------------- */

static const pv_loc_conf_t *req_conf(const pv_request_t *r)
{
    if (r->loc)
        return &r->loc->conf;
    if (r->srv)
        return &r->srv->conf;
    return r->conf && r->conf->http ? &r->conf->http->conf : NULL;
}

/* The client's tracestate fields joined with ",", or empty. */
static pv_str_t join_tracestate(pv_request_t *r)
{
    size_t len = 0;
    int n = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (PV_STR_IEQ(r->headers[i].name, "tracestate") && r->headers[i].value.len) {
            len += r->headers[i].value.len + 1;
            n++;
        }
    }
    /* W3C: at most 32 members; a longer list is not ours to trim */
    if (n == 0 || len > 8192)
        return (pv_str_t){NULL, 0};
    char *p = pv_arena_alloc(r->arena, len), *d = p;
    for (int i = 0; i < r->nheaders; i++) {
        const pv_header_t *h = &r->headers[i];
        if (!PV_STR_IEQ(h->name, "tracestate") || !h->value.len)
            continue;
        if (d != p)
            *d++ = ',';
        memcpy(d, h->value.p, h->value.len);
        d += h->value.len;
    }
    return (pv_str_t){p, (size_t)(d - p)};
}

/* The client's traceparent, when it sent exactly one and it is valid. */
static int client_parent(const pv_request_t *r, pv_traceparent_t *tp)
{
    const pv_header_t *found = NULL;
    for (int i = 0; i < r->nheaders; i++) {
        if (!PV_STR_IEQ(r->headers[i].name, "traceparent"))
            continue;
        if (found)
            return -1; /* two of them: start again (W3C 3.2) */
        found = &r->headers[i];
    }
    return found ? pv_traceparent_parse(found->value.p, found->value.len, tp) : -1;
}

pv_trace_t *pv_trace_get(pv_request_t *r)
{
    if (r->trace)
        return r->trace;
    pv_trace_t *t = pv_arena_calloc(r->arena, sizeof(*t));
    pv_traceparent_t tp;
    if (client_parent(r, &tp) == 0) {
        memcpy(t->trace_id, tp.trace_id, 16);
        memcpy(t->parent_id, tp.parent_id, 8);
        t->has_parent = 1;
        t->flags = tp.flags & 0x03; /* the flags defined so far; the others are sent as 0 */
        t->tracestate = join_tracestate(r);
    } else {
        rand_id(t->trace_id, 16);
        t->flags = 0x01; /* sampled: every request is logged */
    }
    rand_id(t->span_id, 8);
    char *p = t->traceparent;
    memcpy(p, "00-", 3);
    p = hex(p + 3, t->trace_id, 16);
    *p++ = '-';
    p = hex(p, t->span_id, 8);
    *p++ = '-';
    p = hex(p, &t->flags, 1);
    *p = '\0';
    r->trace = t;
    return t;
}

int pv_trace_replaces(const pv_trace_conf_t *tc, pv_str_t name)
{
    if (tc->context && (PV_STR_IEQ(name, "traceparent") || PV_STR_IEQ(name, "tracestate")))
        return 1;
    return tc->rid_header_len && name.len == tc->rid_header_len &&
           pv_str_ieq(name, tc->rid_header, tc->rid_header_len);
}

/* ---- request id --------------------------------------------------------- */

/* A client's request id is taken when it is 1 to 128 of [A-Za-z0-9._:+/=-]:
 * enough for UUIDs, ULIDs and base64 ids, nothing that needs escaping. */
static int rid_valid(pv_str_t v)
{
    if (v.len == 0 || v.len > 128)
        return 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '=' || c == '-'))
            return 0;
    }
    return 1;
}

pv_str_t pv_request_id(pv_request_t *r)
{
    if (r->rid.len)
        return r->rid;
    const pv_loc_conf_t *lc = req_conf(r);
    if (lc && lc->trace.rid_trust && lc->trace.rid_header_len) {
        const pv_header_t *h = pv_request_header(r, lc->trace.rid_header, lc->trace.rid_header_len);
        if (h && rid_valid(h->value)) {
            r->rid = h->value;
            return r->rid;
        }
    }
    hex64(r->request_id, pv_rand64());
    hex64(r->request_id + 16, pv_rand64());
    r->request_id[32] = '\0';
    r->rid = (pv_str_t){r->request_id, 32};
    return r->rid;
}

size_t pv_request_id_log(const void *req, char *buf, size_t cap)
{
    pv_str_t id = pv_request_id((pv_request_t *)req);
    size_t n = PV_MIN(id.len, cap);
    memcpy(buf, id.p, n);
    return n;
}

/* ---- variables ---------------------------------------------------------- */

static int hex_value(const uint8_t *p, size_t n, pv_var_out_t *o, pv_str_t *v)
{
    *v = (pv_str_t){o->scratch, (size_t)(hex(o->scratch, p, n) - o->scratch)};
    return PV_VAL_FOUND;
}

/* The ids as text are in the traceparent: "00-TRACE_ID-SPAN_ID-FLAGS". */
static int traceparent_part(pv_request_t *r, size_t off, size_t len, pv_str_t *v)
{
    pv_trace_t *t = pv_trace_get(r);
    if (!t)
        return PV_VAL_MISSING;
    *v = (pv_str_t){t->traceparent + off, len};
    return PV_VAL_FOUND;
}

static int trace_id_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return traceparent_part(r, 3, 32, v);
}

static int span_id_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return traceparent_part(r, 36, 16, v);
}

/* The client's span; not found when the trace started here. */
static int parent_span_id_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    pv_trace_t *t = pv_trace_get(r);
    return t && t->has_parent ? hex_value(t->parent_id, 8, o, v) : PV_VAL_MISSING;
}

static int traceparent_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return traceparent_part(r, 0, 55, v);
}

static int request_id_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = pv_request_id(r);
    return PV_VAL_FOUND;
}

const pv_var_t pv_vars_trace[] = {
    PV_VAR("trace_id", trace_id_cb, PV_VAR_F_PLAIN),
    PV_VAR("span_id", span_id_cb, PV_VAR_F_PLAIN),
    PV_VAR("parent_span_id", parent_span_id_cb, PV_VAR_F_PLAIN),
    PV_VAR("traceparent", traceparent_cb, PV_VAR_F_PLAIN),
    PV_VAR("request_id", request_id_cb, PV_VAR_F_PLAIN),
    PV_VAR_END,
};
