/* W3C trace context and address anonymisation without a server: the
 * traceparent parser's rules, a request's trace (continued or started),
 * the request id taken from a trusted client, and pv_anon_addr_*(). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "config/conf.h"
#include "core/anon.h"
#include "http/trace.h"
#include "http/vars.h"

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, pv_traceparent_t *tp)
{
    return pv_traceparent_parse(s, strlen(s), tp);
}

static void test_traceparent_valid(void **state)
{
    pv_traceparent_t tp;
    assert_int_equal(parse(TP_OK, &tp), 0);
    assert_int_equal(tp.version, 0);
    assert_int_equal(tp.trace_id[0], 0x4b);
    assert_int_equal(tp.trace_id[15], 0x36);
    assert_int_equal(tp.parent_id[0], 0x00);
    assert_int_equal(tp.parent_id[7], 0xb7);
    assert_int_equal(tp.flags, 1);
    /* a later version may carry more after a '-' */
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-ever", &tp), 0);
    assert_int_equal(tp.version, 0xcc);
    assert_int_equal(tp.flags, 9);
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &tp), 0);
}

static void test_traceparent_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",    /* 00 is exactly 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero parent */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",  /* later version: '-' after */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    pv_traceparent_t tp;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &tp) != -1)
            fail_msg("accepted: \"%s\"", bad[i]);
}

typedef struct {
    pv_arena_t arena;
    pv_request_t r;
    pv_server_t srv;
    pv_header_t hdr[8];
} rfx_t;

static rfx_t *rfx_new(void)
{
    rfx_t *f = calloc(1, sizeof(*f));
    pv_arena_init(&f->arena, 1024);
    f->r.arena = &f->arena;
    f->r.headers = f->hdr;
    f->r.srv = &f->srv;
    f->srv.conf.trace.rid_header = "";
    return f;
}

static void rfx_free(rfx_t *f)
{
    pv_arena_free(&f->arena);
    free(f);
}

static void add(rfx_t *f, const char *n, const char *v)
{
    f->hdr[f->r.nheaders++] = (pv_header_t){{n, strlen(n)}, {v, strlen(v)}};
}

static void hexs(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void test_trace_continued(void **state)
{
    rfx_t *f = rfx_new();
    add(f, "Traceparent", TP_OK);
    add(f, "tracestate", "rojo=00f067aa0ba902b7");
    add(f, "TraceState", "congo=t61rcWkgMzE");
    pv_trace_t *t = pv_trace_get(&f->r);
    assert_non_null(t);
    assert_ptr_equal(pv_trace_get(&f->r), t); /* made once */
    char id[40];
    hexs(t->trace_id, 16, id);
    assert_string_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");
    hexs(t->parent_id, 8, id);
    assert_string_equal(id, "00f067aa0ba902b7");
    assert_true(t->has_parent);
    assert_int_equal(t->tracestate.len, strlen("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    assert_memory_equal(t->tracestate.p, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", t->tracestate.len);
    /* upstream: same trace, the gateway's span as the parent, same flags */
    assert_int_equal(strlen(t->traceparent), 55);
    assert_memory_equal(t->traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    hexs(t->span_id, 8, id);
    assert_memory_equal(t->traceparent + 36, id, 16);
    assert_string_not_equal(id, "00f067aa0ba902b7");
    assert_string_equal(t->traceparent + 52, "-01");
    rfx_free(f);
}

static void test_trace_started(void **state)
{
    /* invalid, twice sent, or absent: a new trace, no tracestate */
    static const char *const cases[][2] = {
        {"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent", TP_OK},
        {"x-other", "1"},
    };
    for (size_t i = 0; i < 3; i++) {
        rfx_t *f = rfx_new();
        add(f, cases[i][0], cases[i][1]);
        if (i == 1)
            add(f, "traceparent", TP_OK);
        add(f, "tracestate", "rojo=1");
        pv_trace_t *t = pv_trace_get(&f->r);
        assert_false(t->has_parent);
        assert_int_equal(t->tracestate.len, 0);
        pv_traceparent_t tp;
        assert_int_equal(pv_traceparent_parse(t->traceparent, 55, &tp), 0);
        assert_int_equal(tp.flags, 1);
        assert_memory_not_equal(t->traceparent, TP_OK, 36);
        rfx_free(f);
    }
}

static void test_request_id_trust(void **state)
{
    rfx_t *f = rfx_new();
    add(f, "X-Request-ID", "abc-123");
    pv_str_t id = pv_request_id(&f->r);
    assert_int_equal(id.len, 32); /* not trusted: made here */
    rfx_free(f);

    static const struct {
        const char *sent;
        int taken;
    } cases[] = {{"abc-123", 1}, {"0f8fad5b-d9cb-469f-a165-70867728950e", 1}, {"a b", 0},
                 {"x\"y", 0}, {"", 0}, {"é", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f = rfx_new();
        f->srv.conf.trace.rid_header = "X-Request-ID";
        f->srv.conf.trace.rid_header_len = 12;
        f->srv.conf.trace.rid_trust = 1;
        add(f, "x-request-id", cases[i].sent);
        id = pv_request_id(&f->r);
        if (cases[i].taken) {
            assert_int_equal(id.len, strlen(cases[i].sent));
            assert_memory_equal(id.p, cases[i].sent, id.len);
        } else {
            assert_int_equal(id.len, 32);
        }
        rfx_free(f);
    }
}

static void test_anon(void **state)
{
    char out[PV_ANON_TEXT_MAX];
    static const char *const cases[][2] = {
        {"192.0.2.7", "192.0.2.0"},
        {"10.1.2.255", "10.1.2.0"},
        {"2001:db8:1234:5678::1", "2001:db8:1234::"},
        {"::1", "::"},
        {"::ffff:198.51.100.9", "::ffff:198.51.100.0"},
        {"fe80::1:2:3:4", "fe80::"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = pv_anon_addr_text(cases[i][0], strlen(cases[i][0]), out, sizeof(out));
        assert_int_equal(n, strlen(cases[i][1]));
        assert_string_equal(out, cases[i][1]);
    }
    assert_int_equal(pv_anon_addr_text("unknown", 7, out, sizeof(out)), 0);
    assert_int_equal(pv_anon_addr_text("1.2.3.4:80", 10, out, sizeof(out)), 0);
    assert_int_equal(pv_anon_addr_text("", 0, out, sizeof(out)), 0);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8:a:b:c:d:e:f", &s6.sin6_addr);
    assert_int_equal(pv_anon_addr_sa((struct sockaddr *)&s6, out, sizeof(out)), strlen("2001:db8:a::"));
    assert_string_equal(out, "2001:db8:a::");
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.200", &s4.sin_addr);
    pv_anon_addr_sa((struct sockaddr *)&s4, out, sizeof(out));
    assert_string_equal(out, "203.0.113.0");
    uint8_t b[5] = {1, 2, 3, 4, 5};
    assert_int_equal(pv_anon_addr_bin(b, 5), -1);
    assert_int_equal(pv_anon_addr_bin(b, 4), 0);
    assert_int_equal(b[3], 0);
}

int main(void)
{
    pv_http_vars_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid),
        cmocka_unit_test(test_traceparent_invalid),
        cmocka_unit_test(test_trace_continued),
        cmocka_unit_test(test_trace_started),
        cmocka_unit_test(test_request_id_trust),
        cmocka_unit_test(test_anon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
