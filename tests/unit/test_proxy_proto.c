/* The PROXY protocol header parser: v1 and v2 headers as NGINX takes
 * them, headers still coming, and the refusals with NGINX's words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/proxy_proto.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";

static ssize_t parse(const void *p, size_t n, pv_pp_t *pp, int *has, char *err)
{
    memset(pp, 0x55, sizeof(*pp));
    err[0] = '\0';
    return pv_pp_parse(p, n, pp, has, err, 200);
}

static void test_v1(void **state)
{
    pv_pp_t pp;
    int has;
    char err[200];
    const char *h = "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\nGET /";
    assert_int_equal(parse(h, strlen(h), &pp, &has, err), 41);
    assert_int_equal(has, 1);
    assert_string_equal(pp.src_addr, "192.0.2.1");
    assert_string_equal(pp.dst_addr, "192.0.2.2");
    assert_int_equal(pp.src_port, 123);
    assert_int_equal(pp.dst_port, 5678);
    for (size_t k = 0; k < 41; k++) /* every prefix waits */
        assert_int_equal(parse(h, k, &pp, &has, err), 0);
    h = "PROXY TCP6 2001:DB8::1 ::1 0 65535\r\n";
    assert_int_equal(parse(h, strlen(h), &pp, &has, err), (ssize_t)strlen(h));
    assert_string_equal(pp.src_addr, "2001:DB8::1");
    assert_int_equal(pp.dst_port, 65535);
    h = "PROXY UNKNOWN whatever\r\n";
    assert_int_equal(parse(h, strlen(h), &pp, &has, err), (ssize_t)strlen(h));
    assert_int_equal(has, 0);
    static const char *bad[] = {
        "PROXY TCP4 192.0.2.1 192.0.2.2 123 65536\r\n", "PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\n",
        "PROXY TCP4 192.0.2.z 192.0.2.2 1 2\r\n",       "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2  2\r\n",         "PROXY UNKNOWN\n",
        "GET / HTTP/1.1\r\n",                            "PROXY\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], strlen(bad[i]), &pp, &has, err), -1);
        assert_true(strncmp(err, "broken header: \"", 16) == 0);
    }
    parse("GET /\x01 HTTP/1.1\r\n", 17, &pp, &has, err);
    assert_string_equal(err, "broken header: \"GET /\\x01 HTTP/1.1\"");
    char longline[200];
    memset(longline, '1', sizeof(longline));
    memcpy(longline, "PROXY TCP4 ", 11);
    assert_int_equal(parse(longline, 106, &pp, &has, err), 0);
    assert_int_equal(parse(longline, 107, &pp, &has, err), -1); /* no LF within 107 bytes */
}

static size_t v2(uint8_t *b, int ver_cmd, int fam, const uint8_t *payload, size_t plen)
{
    memcpy(b, sig, 12);
    b[12] = (uint8_t)ver_cmd;
    b[13] = (uint8_t)fam;
    b[14] = (uint8_t)(plen >> 8);
    b[15] = (uint8_t)plen;
    memcpy(b + 16, payload, plen);
    return 16 + plen;
}

static void test_v2(void **state)
{
    pv_pp_t pp;
    int has;
    char err[200];
    uint8_t b[PV_PP_MAX + 16];
    const uint8_t in4[] = {192, 0, 2, 1, 192, 0, 2, 2, 0, 123, 0x16, 0x2e, 4, 0, 1, 0};
    size_t n = v2(b, 0x21, 0x11, in4, sizeof(in4)); /* with a NOOP TLV */
    assert_int_equal(parse(b, n + 3, &pp, &has, err), (ssize_t)n);
    assert_int_equal(has, 1);
    assert_string_equal(pp.src_addr, "192.0.2.1");
    assert_string_equal(pp.dst_addr, "192.0.2.2");
    assert_int_equal(pp.src_port, 123);
    assert_int_equal(pp.dst_port, 5678);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(parse(b, k, &pp, &has, err), 0);
    uint8_t in6[36] = {0x20, 0x01, 0x0d, 0xb8};
    in6[15] = 1;
    in6[31] = 1;
    in6[33] = 80;
    n = v2(b, 0x21, 0x21, in6, sizeof(in6));
    assert_int_equal(parse(b, n, &pp, &has, err), (ssize_t)n);
    assert_string_equal(pp.src_addr, "2001:db8::1");
    assert_string_equal(pp.dst_addr, "::1");
    assert_int_equal(pp.src_port, 80);
    /* LOCAL, UDP, AF_UNIX: valid, no addresses */
    n = v2(b, 0x20, 0x00, in4, 0);
    assert_int_equal(parse(b, n, &pp, &has, err), 16);
    assert_int_equal(has, 0);
    n = v2(b, 0x21, 0x12, in4, 12);
    assert_int_equal(parse(b, n, &pp, &has, err), 28);
    assert_int_equal(has, 0);
    n = v2(b, 0x21, 0x31, in4, 12);
    assert_int_equal(parse(b, n, &pp, &has, err), 28);
    assert_int_equal(has, 0);
    /* refused */
    n = v2(b, 0x31, 0x11, in4, 12);
    assert_int_equal(parse(b, n, &pp, &has, err), -1);
    assert_string_equal(err, "unknown PROXY protocol version: 3");
    n = v2(b, 0x21, 0x11, in4, 8);
    assert_int_equal(parse(b, n, &pp, &has, err), -1);
    static uint8_t big[PV_PP_MAX];
    n = v2(b, 0x21, 0x11, big, PV_PP_MAX - 15);
    assert_int_equal(parse(b, n, &pp, &has, err), -1);
    assert_string_equal(err, "header is too large");
    n = v2(b, 0x21, 0x11, big, PV_PP_MAX - 16);
    assert_int_equal(parse(b, n, &pp, &has, err), PV_PP_MAX);
    b[5] = 'X'; /* a broken signature */
    assert_int_equal(parse(b, 8, &pp, &has, err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_v1), cmocka_unit_test(test_v2)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
