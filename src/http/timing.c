#include "timing.h"

#include <string.h>

#include "../core/time.h"
#include "vars.h"

/* " : " at the end of a non-empty list (append_list() in the proxy adds
 * no ", " after it). */
static void list_redirect(char *dst, size_t cap)
{
    size_t l = strlen(dst);
    if (l && l + 3 < cap)
        memcpy(dst + l, " : ", 4);
}

void pv_utry_next(pv_request_t *r, int first)
{
    uint64_t now = pv_loop_time_ns();
    if (!r->utry->end_ns)
        r->utry->end_ns = now; /* as NGINX's upstream_connect() closes the last state */
    if (r->nutries == r->cutries) {
        uint16_t cap = (uint16_t)(r->cutries * 4);
        if (cap <= r->cutries || !r->arena)
            return;
        pv_utry_t *n = pv_arena_alloc(r->arena, sizeof(*n) * cap);
        memcpy(n, r->utries, sizeof(*n) * r->nutries);
        r->utries = n;
        r->cutries = cap;
    }
    pv_utry_t *t = r->utry = &r->utries[r->nutries++];
    *t = (pv_utry_t){.start_ns = now, .redirect = first && r->nutries > 1};
    if (t->redirect) {
        list_redirect(r->upstream_addr, sizeof(r->upstream_addr));
        list_redirect(r->upstream_status, sizeof(r->upstream_status));
    }
}

void pv_utry_reopen(pv_request_t *r)
{
    if (r->utry)
        r->utry->end_ns = 0;
}

/* "N.ddd": v / 1000 and its three decimals (buf: at least 24 bytes). */
static size_t fmt_thousandths(uint64_t v, char *buf)
{
    size_t n = pv_u64_digits(buf, v / 1000);
    unsigned f = (unsigned)(v % 1000);
    buf[n] = '.';
    buf[n + 1] = (char)('0' + f / 100);
    buf[n + 2] = (char)('0' + f / 10 % 10);
    buf[n + 3] = (char)('0' + f % 10);
    return n + 4;
}

/* "S.mmm" of microseconds, NGINX's "%T.%03M" of milliseconds. */
static size_t fmt_sec(int64_t us, char *buf)
{
    return fmt_thousandths((uint64_t)us / 1000, buf);
}

/* Milliseconds with microseconds: "12.345". */
static size_t fmt_ms(uint64_t us, char *buf)
{
    return fmt_thousandths(us, buf);
}

/* Microseconds from the try's start to a point; -1 when not reached. */
static int64_t utry_field(const pv_utry_t *t, int what)
{
    uint64_t at = what == PV_UTRY_CONNECT ? t->connect_ns : what == PV_UTRY_HEADER ? t->header_ns : t->end_ns;
    if (!at)
        return -1;
    return at > t->start_ns ? (int64_t)((at - t->start_ns) / 1000) : 0;
}

int64_t pv_utry_last_us(const pv_request_t *r, int what)
{
    return r->nutries ? utry_field(&r->utries[r->nutries - 1], what) : -1;
}

/* Every try's time, in NGINX's list format; not found with no try. */
static int list_value(pv_request_t *r, int what, pv_var_out_t *o)
{
    if (!r->nutries)
        return PV_VAL_MISSING;
    char buf[32];
    for (int i = 0; i < r->nutries; i++) {
        const pv_utry_t *t = &r->utries[i];
        if (i)
            pv_var_put(o, t->redirect ? " : " : ", ", t->redirect ? 3 : 2);
        int64_t us = utry_field(t, what);
        if (us < 0)
            pv_var_put(o, "-", 1);
        else
            pv_var_put(o, buf, fmt_sec(us, buf));
    }
    return PV_VAL_WRITTEN;
}

/* Every try's byte count, in NGINX's list format; not found with no try. */
static int list_bytes(pv_request_t *r, int what, pv_var_out_t *o)
{
    if (!r->nutries)
        return PV_VAL_MISSING;
    char buf[24];
    for (int i = 0; i < r->nutries; i++) {
        const pv_utry_t *t = &r->utries[i];
        if (i)
            pv_var_put(o, t->redirect ? " : " : ", ", t->redirect ? 3 : 2);
        uint64_t n = what == 0 ? t->sent : what == 1 ? t->received : t->head ? t->received - t->head : 0;
        pv_var_put(o, buf, pv_u64_digits(buf, n));
    }
    return PV_VAL_WRITTEN;
}

static int bytes_sent_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_bytes(r, 0, o);
}

static int bytes_received_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_bytes(r, 1, o);
}

/* The body's bytes as they came (framing included), as NGINX counts them. */
static int response_length_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_bytes(r, 2, o);
}

static int connect_time_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_value(r, PV_UTRY_CONNECT, o);
}

static int header_time_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_value(r, PV_UTRY_HEADER, o);
}

static int response_time_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return list_value(r, PV_UTRY_RESPONSE, o);
}

/* ---- numbers for JSON logs ------------------------------------------------ */

static uint64_t since_start_us(const pv_request_t *r)
{
    uint64_t now = pv_now_ns();
    return r->start_ns && now > r->start_ns ? (now - r->start_ns) / 1000 : 0;
}

static int request_duration_ms_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                  pv_str_t *v)
{
    *v = (pv_str_t){o->scratch, fmt_ms(since_start_us(r), o->scratch)};
    return PV_VAL_FOUND;
}

/* The last try's time; not found without a try, or when it never got there. */
static int last_ms(pv_request_t *r, int what, pv_var_out_t *o, pv_str_t *v)
{
    if (!r->nutries)
        return PV_VAL_MISSING;
    int64_t us = utry_field(&r->utries[r->nutries - 1], what);
    if (us < 0)
        return PV_VAL_MISSING;
    *v = (pv_str_t){o->scratch, fmt_ms((uint64_t)us, o->scratch)};
    return PV_VAL_FOUND;
}

static int up_connect_ms_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return last_ms(r, PV_UTRY_CONNECT, o, v);
}

static int up_header_ms_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return last_ms(r, PV_UTRY_HEADER, o, v);
}

static int up_ms_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return last_ms(r, PV_UTRY_RESPONSE, o, v);
}

/* Wall-clock nanoseconds of the request's first byte (millisecond
 * precision), and of now on the same scale. */
static uint64_t start_unix_ns(const pv_request_t *r)
{
    return (uint64_t)(r->start_wall_ms > 0 ? r->start_wall_ms : 0) * 1000000u;
}

static int start_unix_nano_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = (pv_str_t){o->scratch, pv_u64_digits(o->scratch, start_unix_ns(r))};
    return PV_VAL_FOUND;
}

static int end_unix_nano_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = (pv_str_t){o->scratch, pv_u64_digits(o->scratch, start_unix_ns(r) + since_start_us(r) * 1000)};
    return PV_VAL_FOUND;
}

/* OTLP's Status.code of a server span: 2 (error) for a 5xx, else 0 (unset). */
static int otel_status_code_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    *v = r->status >= 500 ? PV_STR("2") : PV_STR("0");
    return PV_VAL_FOUND;
}

pv_str_t pv_timing_server_timing(pv_request_t *r)
{
    char *p = pv_arena_alloc(r->arena, 80);
    memcpy(p, "gateway;dur=", 12);
    size_t n = 12 + fmt_ms(since_start_us(r), p + 12);
    if (r->utry && r->utry->header_ns) {
        memcpy(p + n, ", upstream;dur=", 15);
        n += 15;
        n += fmt_ms((uint64_t)utry_field(r->utry, PV_UTRY_HEADER), p + n);
    }
    return (pv_str_t){p, n};
}

const pv_var_t pv_vars_timing[] = {
    PV_VAR("upstream_connect_time", connect_time_cb, 0),
    PV_VAR("upstream_header_time", header_time_cb, 0),
    PV_VAR("upstream_response_time", response_time_cb, 0),
    PV_VAR("upstream_bytes_sent", bytes_sent_cb, 0),
    PV_VAR("upstream_bytes_received", bytes_received_cb, 0),
    PV_VAR("upstream_response_length", response_length_cb, 0),
    PV_VAR("request_duration_ms", request_duration_ms_cb, PV_VAR_F_NUMBER | PV_VAR_F_PLAIN),
    PV_VAR("upstream_connect_duration_ms", up_connect_ms_cb, PV_VAR_F_NUMBER | PV_VAR_F_PLAIN),
    PV_VAR("upstream_header_duration_ms", up_header_ms_cb, PV_VAR_F_NUMBER | PV_VAR_F_PLAIN),
    PV_VAR("upstream_duration_ms", up_ms_cb, PV_VAR_F_NUMBER | PV_VAR_F_PLAIN),
    PV_VAR("request_start_unix_nano", start_unix_nano_cb, PV_VAR_F_PLAIN),
    PV_VAR("request_end_unix_nano", end_unix_nano_cb, PV_VAR_F_PLAIN),
    PV_VAR("otel_status_code", otel_status_code_cb, PV_VAR_F_PLAIN),
    PV_VAR_END,
};
