/* Residency without a server: the ISO codes, the built-in groups, the
 * places table, address anonymisation, trusted networks, and the walk of
 * a loaded config's routes (what the map prints). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "config/conf.h"
#include "config/residency.h"
#include "core/net.h"
#include "http/vars.h"

static int count_codes(const char *codes)
{
    int n = 0;
    for (const char *p = codes; *p; p += p[2] ? 3 : 2) {
        char cc[3] = {p[0], p[1], 0};
        assert_int_not_equal(pv_jur_code(cc), PV_JUR_NONE);
        n++;
    }
    return n;
}

static void test_codes(void **state)
{
    char cc[3];
    assert_string_equal(pv_jur_text(pv_jur_code("NO"), cc), "NO");
    assert_int_equal(pv_jur_code("no"), pv_jur_code("NO"));
    assert_int_equal(pv_jur_code("XX"), PV_JUR_NONE);
    assert_int_equal(pv_jur_code("EL"), PV_JUR_NONE); /* the EU's code for Greece, not ISO's */
    assert_int_equal(pv_jur_code("UK"), PV_JUR_NONE); /* reserved, not assigned: GB */
    assert_int_equal(pv_jur_code("N"), PV_JUR_NONE);
    assert_int_equal(pv_jur_code("NOR"), PV_JUR_NONE);
    assert_string_equal(pv_jur_text(PV_JUR_NONE, cc), "--");
}

static void test_groups(void **state)
{
    assert_int_equal(count_codes(pv_res_builtin_group("EU")), 27);
    assert_int_equal(count_codes(pv_res_builtin_group("EEA")), 30);
    assert_non_null(strstr(pv_res_builtin_group("EEA"), "NO"));
    assert_null(strstr(pv_res_builtin_group("EU"), "NO"));
    assert_null(strstr(pv_res_builtin_group("EU"), "GB"));
    assert_null(pv_res_builtin_group("NORDIC"));
    assert_string_equal(pv_res_groups_date, "2020-02-01");
}

static void test_places(void **state)
{
    const pv_jur_place_t *no = pv_jur_place(pv_jur_code("NO")), *de = pv_jur_place(pv_jur_code("DE")),
                         *us = pv_jur_place(pv_jur_code("US"));
    assert_non_null(no);
    assert_non_null(de);
    assert_non_null(us);
    assert_null(pv_jur_place(pv_jur_code("TV")));
    double d = pv_jur_distance_km(no, de);
    assert_true(d > 900 && d < 1300); /* the centres: south Norway to central Germany */
    d = pv_jur_distance_km(no, us);
    assert_true(d > 6500 && d < 8500);
    assert_true(pv_jur_distance_km(no, no) < 1e-6);
}

static void test_trusted(void **state)
{
    pv_cidr_t nets[2] = {{.family = AF_INET, .bits = 12}, {.family = AF_INET6, .bits = 7}};
    inet_pton(AF_INET, "172.16.0.0", nets[0].addr);
    inet_pton(AF_INET6, "fc00::", nets[1].addr);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "172.31.255.1", &a.sin_addr);
    assert_true(pv_res_trusted(nets, 2, (struct sockaddr *)&a));
    inet_pton(AF_INET, "172.32.0.1", &a.sin_addr);
    assert_false(pv_res_trusted(nets, 2, (struct sockaddr *)&a));
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "fd12::1", &b.sin6_addr);
    assert_true(pv_res_trusted(nets, 2, (struct sockaddr *)&b));
    inet_pton(AF_INET6, "fe80::1", &b.sin6_addr);
    assert_false(pv_res_trusted(nets, 2, (struct sockaddr *)&b));
}

typedef struct seen_s {
    int n, allowed, plain;
} seen_t;

static int count(void *arg, const pv_res_reach_t *r)
{
    seen_t *s = arg;
    s->n++;
    s->allowed += r->allowed;
    s->plain += r->plain_untrusted;
    assert_non_null(strstr(r->route, "-> server "));
    return 0;
}

static void test_walk(void **state)
{
    static const char text[] =
        "http {\n gateway_jurisdiction NO;\n trusted_network 127.0.0.0/8;\n"
        " upstream a { jurisdiction NO; server 127.0.0.1:1; server 127.0.0.2:1 jurisdiction=SE backup; }\n"
        " upstream b { server 127.0.0.3:1 jurisdiction=SE; }\n"
        " server {\n  listen 127.0.0.1:8080;\n  residency NO SE;\n"
        "  location / { error_page 502 /b; proxy_pass http://a; }\n"
        "  location /b { proxy_pass https://b; }\n"
        "  location /pub { residency off; proxy_pass http://192.0.2.1:1; }\n }\n}\n";
    char err[1024];
    pv_conf_t *c = pv_conf_load_text("/t/gw.conf", text, sizeof(text) - 1, PV_CONF_F_NO_DNS | PV_CONF_F_NO_INCLUDE,
                                     err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    pv_arena_t a;
    pv_arena_init(&a, 4096);
    seen_t s = {0};
    assert_int_equal(pv_residency_walk(c, &a, count, &s), 0);
    /* "/": a's two servers and, through error_page, b's; "/b": b's */
    assert_int_equal(s.n, 4);
    assert_int_equal(s.allowed, 4);
    assert_int_equal(s.plain, 0);
    pv_arena_free(&a);
    pv_conf_unref(c);
}

int main(void)
{
    pv_http_vars_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),  cmocka_unit_test(test_groups),  cmocka_unit_test(test_places),
        cmocka_unit_test(test_trusted), cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
