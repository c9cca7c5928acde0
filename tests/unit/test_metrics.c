/* The metrics' pure parts: the log-linear histogram (bucket of a value,
 * bounds, quantiles read back within the bucket width), the Accept choice
 * between Prometheus text and OpenMetrics, and the metrics slots and
 * labels a config gets (servers, locations, upstream servers). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config/conf.h"
#include "core/hist.h"
#include "http/vars.h"
#include "proxy/report.h"

static void test_buckets(void **state)
{
    (void)state;
    /* every value lands in the bucket whose bounds hold it, in order */
    unsigned last = 0;
    for (uint64_t v = 0; v < (1u << 27); v = v < 4096 ? v + 1 : v + v / 97) {
        unsigned i = pv_hist_index(v);
        assert_true(i < PV_HIST_N);
        assert_true(i >= last);
        last = i;
        if (i < PV_HIST_N - 1) {
            assert_true(pv_hist_lower(i) <= v);
            assert_true(v < pv_hist_upper(i));
            /* at most 1/16 of the lower bound wide, past the linear start */
            if (v >= 32)
                assert_true((pv_hist_upper(i) - pv_hist_lower(i)) * 16 <= pv_hist_lower(i));
        }
    }
    assert_int_equal(pv_hist_index(1ull << 40), PV_HIST_N - 1);
    for (unsigned i = 0; i + 1 < PV_HIST_N; i++)
        assert_int_equal(pv_hist_upper(i), pv_hist_lower(i + 1));
    assert_int_equal(pv_hist_upper(79), 256);
}

static void test_quantiles(void **state)
{
    (void)state;
    static pv_hist_t h;
    memset(&h, 0, sizeof(h));
    /* 1..1000 ms, uniform: each quantile within 3 % */
    for (uint64_t ms = 1; ms <= 1000; ms++)
        for (int k = 0; k < 10; k++)
            pv_hist_add(&h, ms * 1000 + (uint64_t)k * 97);
    uint64_t b[PV_HIST_N] = {0}, sum = 0;
    pv_hist_sum_into(&h, b, &sum);
    const double qs[] = {0.5, 0.95, 0.99};
    for (int i = 0; i < 3; i++) {
        double want = qs[i] * 1000e3, got = pv_hist_quantile(b, qs[i]);
        if (got < want * 0.97 || got > want * 1.03)
            fail_msg("q%.2f: %f, want %f", qs[i], got, want);
    }
    uint64_t none[PV_HIST_N] = {0};
    assert_true(pv_hist_quantile(none, 0.5) == 0);
}

static void test_accept(void **state)
{
    (void)state;
#define OM(s) pv_report_wants_openmetrics((s), strlen(s))
    assert_true(OM("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_true(OM("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
    assert_true(OM("Application/OpenMetrics-Text"));
    assert_false(OM("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"));
    assert_false(OM("application/openmetrics-text;q=0"));
    assert_false(OM("text/plain"));
    assert_false(OM("*/*"));
    assert_false(OM(""));
    assert_false(OM("application/openmetrics-text;q=2"));
    assert_false(OM("application/openmetrics-text;q=x"));
    assert_false(OM(",,,;;;=q"));
    assert_false(pv_report_wants_openmetrics("application/openmetrics-text", 20)); /* cut short */
#undef OM
}

static pv_conf_t *load(const char *text, char *err, size_t errlen)
{
    return pv_conf_load_text("/tmp/t.conf", text, strlen(text), PV_CONF_F_NO_DNS | PV_CONF_F_NO_INCLUDE, err, errlen);
}

static void test_slots(void **state)
{
    (void)state;
    char err[512] = "";
    pv_conf_t *c = load("events {} http {"
                        " upstream a { server 127.0.0.1:1; server 127.0.0.1:2; }"
                        " upstream b { server 127.0.0.1:3; }"
                        " server { listen 127.0.0.1:8000; server_name x.test;"
                        "   location /api/ { proxy_pass http://a; metrics_name api; }"
                        "   location = /m { portvakt_metrics; }"
                        "   location ~ ^/re { limit_except GET { deny all; } proxy_pass http://b; } }"
                        " server { listen 127.0.0.1:8001; server_name x.test; location /api/ { metrics_name api; } } }",
                        err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    const pv_http_conf_t *h = c->http;
    assert_int_equal(h->nmlocs, 4);
    assert_string_equal(h->servers[0]->mlabel, "x.test");
    assert_string_equal(h->servers[1]->mlabel, "x.test#2");
    assert_string_equal(h->mlocs[0]->metrics_name, "api");
    assert_string_equal(h->mlocs[1]->metrics_name, "= /m");
    assert_string_equal(h->mlocs[2]->metrics_name, "~ ^/re");
    assert_string_equal(h->mlocs[3]->metrics_name, "api"); /* another server's: the server label tells */
    assert_int_equal(h->mlocs[1]->report, PV_REPORT_METRICS);
    assert_int_equal(h->mlocs[2]->lmt->mid, h->mlocs[2]->mid);
    assert_int_equal(h->npeers, 3);
    assert_int_equal(h->upstreams[0]->peer_base + h->upstreams[0]->nservers, h->upstreams[1]->peer_base);
    pv_conf_unref(c);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct { const char *conf, *msg; } bad[] = {
        {"location / { portvakt_metrics; proxy_pass http://127.0.0.1:1; }", "\"portvakt_metrics\" and \"proxy_pass\" in one location"},
        {"location / { stub_status; portvakt_live; }", "\"stub_status\" and \"portvakt_live\" in one location"},
        {"location / { portvakt_status; portvakt_status; }", "\"portvakt_status\" directive is duplicate"},
        {"location / { metrics_name a; metrics_name b; }", "\"metrics_name\" directive is duplicate"},
        {"location / { metrics_name \"\"; }", "empty \"metrics_name\""},
        {"location / { portvakt_metrics x; }", "invalid number of arguments in \"portvakt_metrics\" directive"},
        {"portvakt_metrics;", "\"portvakt_metrics\" directive is not allowed here"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], err[512] = "";
        snprintf(text, sizeof(text), "events {} http { server { listen 127.0.0.1:8000; %s } }", bad[i].conf);
        pv_conf_t *c = load(text, err, sizeof(err));
        if (c || !strstr(err, bad[i].msg))
            fail_msg("%s: got \"%s\"", bad[i].conf, err);
    }
}

int main(void)
{
    pv_http_vars_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets), cmocka_unit_test(test_quantiles), cmocka_unit_test(test_accept),
        cmocka_unit_test(test_slots),   cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
