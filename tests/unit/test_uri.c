/* URI normalisation, target forms, escaping, Host validation, header
 * helpers and error pages, checked against what NGINX 1.22 does. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/errpage.h"
#include "http/headers.h"
#include "http/uri.h"

/* Normalise in; returns the rc and fills out (NUL-terminated) and args. */
static int norm(const char *in, char *out, char *args, int *has_args)
{
    size_t len = strlen(in), olen = 0;
    char buf[512];
    pv_str_t a;
    int rc = pv_uri_normalize(in, len, buf, &olen, &a, has_args);
    if (rc == 0) {
        memcpy(out, buf, olen);
        out[olen] = '\0';
        memcpy(args, a.p ? a.p : "", a.len);
        args[a.len] = '\0';
    }
    return rc;
}

static void expect_uri(const char *in, const char *uri, const char *args, int has_args)
{
    char out[512], a[512];
    int ha = -1;
    if (norm(in, out, a, &ha) != 0)
        fail_msg("normalize(%s) failed", in);
    assert_string_equal(out, uri);
    assert_string_equal(a, args);
    assert_int_equal(ha, has_args);
}

static void expect_bad(const char *in)
{
    char out[512], a[512];
    int ha;
    if (norm(in, out, a, &ha) == 0)
        fail_msg("normalize(%s) accepted as %s", in, out);
}

static void test_normalize_plain(void **state)
{
    (void)state;
    expect_uri("/", "/", "", 0);
    expect_uri("/a/b", "/a/b", "", 0);
    expect_uri("/a/b?x=1&y", "/a/b", "x=1&y", 1);
    expect_uri("/a?", "/a", "", 1);
    expect_uri("/.hidden/...", "/.hidden/...", "", 0);
    expect_uri("/a.b/c.", "/a.b/c.", "", 0);
}

static void test_normalize_slashes_dots(void **state)
{
    (void)state;
    expect_uri("/a//b///c", "/a/b/c", "", 0);
    expect_uri("//", "/", "", 0);
    expect_uri("/a/./b/.", "/a/b/", "", 0);
    expect_uri("/a/b/../c", "/a/c", "", 0);
    expect_uri("/a/b/..", "/a/", "", 0);
    expect_uri("/a/b/../../c/", "/c/", "", 0);
    expect_uri("/a/.?x", "/a/", "x", 1);
    expect_uri("/a/b/..?x", "/a/", "x", 1);
    expect_uri("/a/..#f", "/", "", 0);
    expect_uri("/api/auth/..//login", "/api/login", "", 0);
}

static void test_normalize_traversal(void **state)
{
    (void)state;
    expect_bad("/..");
    expect_bad("/../x");
    expect_bad("/a/../../x");
    expect_bad("//..//x");
    expect_bad("/%2e%2e/x");
    expect_bad("/a/%2E%2E/%2e%2e/etc/passwd");
    expect_bad("/..?x");
    expect_uri("/a/%2e%2e/b", "/b", "", 0);
    /* a decoded '?' is data, so this is a segment named "..?" */
    expect_uri("/..%3F", "/..?", "", 0);
}

static void test_normalize_percent(void **state)
{
    (void)state;
    expect_uri("/%7Euser", "/~user", "", 0);
    expect_uri("/a%2Fb", "/a/b", "", 0);
    expect_uri("/a%2F%2Fb", "/a/b", "", 0);
    expect_uri("/a%3Fb?c=d", "/a?b", "c=d", 1);
    expect_uri("/a%23b", "/a#b", "", 0);
    expect_uri("/a%2525", "/a%25", "", 0);
    expect_uri("/a%20b", "/a b", "", 0);
    expect_uri("/%0a", "/\n", "", 0);
    expect_uri("/x?a=%zz", "/x", "a=%zz", 1);
    expect_bad("/%00");
    expect_bad("/a%0");
    expect_bad("/a%");
    expect_bad("/a%zz");
    expect_bad("/a%g1");
}

static void test_normalize_fragment_controls(void **state)
{
    (void)state;
    expect_uri("/a#frag?x", "/a", "", 0);
    expect_uri("/a?x#f", "/a", "x", 1);
    expect_uri("", "/", "", 0);
    expect_uri("?x", "/", "x", 1);
    expect_bad("/a b");
    expect_bad("/a\tb");
    expect_bad("/a\x7f");
    expect_bad("/a?b c");
    expect_bad("x/a");
}

static void test_parse_target(void **state)
{
    (void)state;
    pv_arena_t a;
    pv_arena_init(&a, 4096);
    pv_uri_target_t t;

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("/api/auth/%7Euser//a?b"), 0, &t), 0);
    assert_false(t.absolute);
    assert_true(pv_str_eq(t.request_uri, "/api/auth/%7Euser//a?b", 22));
    assert_string_equal(t.uri.p, "/api/auth/~user/a");
    assert_true(pv_str_eq(t.args, "b", 1));

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("hTTp://Example.com:8080/p/../q?z"), 0, &t), 0);
    assert_true(t.absolute);
    assert_true(pv_str_eq(t.scheme, "hTTp", 4));
    assert_true(pv_str_eq(t.host, "Example.com:8080", 16));
    assert_true(pv_str_eq(t.request_uri, "/p/../q?z", 9));
    assert_string_equal(t.uri.p, "/q");
    assert_true(pv_str_eq(t.args, "z", 1));

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http://h"), 0, &t), 0);
    assert_true(pv_str_eq(t.request_uri, "/", 1));
    assert_string_equal(t.uri.p, "/");

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http://h?x=1"), 0, &t), 0);
    assert_true(pv_str_eq(t.request_uri, "/?x=1", 5));
    assert_true(pv_str_eq(t.args, "x=1", 3));

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http://[::1]:80/x"), 0, &t), 0);
    assert_true(pv_str_eq(t.host, "[::1]:80", 8));

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("*"), 1, &t), 0);
    assert_true(t.asterisk);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("*"), 0, &t), -1);

    assert_int_equal(pv_uri_parse_target(&a, PV_STR("foo"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http:/x"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http:///x"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http://u@h/"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("http://h#f"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR("/../x"), 0, &t), -1);
    assert_int_equal(pv_uri_parse_target(&a, PV_STR(""), 0, &t), -1);
    pv_arena_free(&a);
}

static void test_path_quoted(void **state)
{
    (void)state;
    assert_true(pv_uri_path_quoted(PV_STR("/a%20b")));
    assert_false(pv_uri_path_quoted(PV_STR("/a?b=%20")));
    assert_false(pv_uri_path_quoted(PV_STR("/a#%20")));
    assert_true(pv_uri_path_quoted(PV_STR("%")));
    assert_true(pv_uri_path_quoted(PV_STR("/a%3F?b")));
    assert_false(pv_uri_path_quoted(PV_STR("/a?b#%")));
    assert_false(pv_uri_path_quoted(PV_STR("/plain/path")));
    assert_false(pv_uri_path_quoted((pv_str_t){NULL, 0}));
    assert_false(pv_uri_path_quoted(PV_STR("/plain")));
}

static void test_escape(void **state)
{
    (void)state;
    const char in[] = "/a b\"#%<>?\\^`{|}~!$&'()*+,;=:@[]\x01\x7f\xc3\xa9";
    char out[256];
    size_t n = pv_uri_escape(NULL, in, sizeof(in) - 1);
    assert_int_equal(pv_uri_escape(out, in, sizeof(in) - 1), n);
    out[n] = '\0';
    assert_string_equal(out, "/a%20b%22%23%25%3C%3E%3F%5C%5E%60%7B%7C%7D~!$&'()*+,;=:@[]%01%7F%C3%A9");
}

static void expect_host(const char *in, const char *want)
{
    char out[256];
    size_t n;
    int rc = pv_uri_host_normalize(in, strlen(in), out, &n);
    if (!want) {
        if (rc == 0)
            fail_msg("host %s accepted", in);
        return;
    }
    assert_int_equal(rc, 0);
    out[n] = '\0';
    assert_string_equal(out, want);
}

static void test_host(void **state)
{
    (void)state;
    expect_host("Example.COM.:8080", "example.com");
    expect_host("example.com", "example.com");
    expect_host("[::1]:80", "[::1]");
    expect_host("[::1]", "[::1]");
    expect_host("127.0.0.1:8080", "127.0.0.1");
    expect_host("a_b", "a_b");
    expect_host("a..b", NULL);
    expect_host("a/b", NULL);
    expect_host("a b", NULL);
    expect_host("", NULL);
    expect_host(":80", NULL);
    expect_host(".", NULL);

    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_str_t in = PV_STR("plain.org:81"), out;
    assert_int_equal(pv_uri_validate_host(&a, in, &out), 0);
    assert_ptr_equal(out.p, in.p);
    assert_int_equal(out.len, 9);
    assert_int_equal(pv_uri_validate_host(&a, PV_STR("UP.org"), &out), 0);
    assert_true(pv_str_eq(out, "up.org", 6));
    pv_arena_free(&a);
}

static void test_header_syntax(void **state)
{
    (void)state;
    assert_true(pv_header_name_valid(PV_STR("X-Real-IP")));
    assert_true(pv_header_name_valid(PV_STR("a!#$%&'*+-.^_`|~9")));
    assert_false(pv_header_name_valid(PV_STR("")));
    assert_false(pv_header_name_valid(PV_STR("Bad Name")));
    assert_false(pv_header_name_valid(PV_STR("a:b")));
    assert_false(pv_header_name_valid(PV_STR("a\"")));
    assert_true(pv_header_value_valid(PV_STR("text/html; q=1\t\xff")));
    assert_true(pv_header_value_valid(PV_STR("")));
    assert_false(pv_header_value_valid(PV_STR("a\rb")));
    assert_false(pv_header_value_valid(PV_STR("a\nb")));
    assert_false(pv_header_value_valid((pv_str_t){"a\0b", 3}));
    assert_false(pv_header_value_valid(PV_STR("a\x7f")));
    /* the word-at-a-time scan agrees with the rule for every pair of
     * bytes, at every place in and across the eight-byte words */
    char buf[19];
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            int ok = !((a < 0x20 && a != '\t') || a == 0x7f || (b < 0x20 && b != '\t') || b == 0x7f);
            for (size_t at = (size_t)(a + b) % 3; at < sizeof(buf) - 1; at += 6) {
                memset(buf, (a ^ b) & 1 ? '\xff' : 'z', sizeof(buf));
                buf[at] = (char)a;
                buf[at + 1] = (char)b;
                if (pv_header_value_valid((pv_str_t){buf, sizeof(buf)}) != ok)
                    fail_msg("bytes %02x %02x at %zu", a, b, at);
            }
        }
    }
}

static void test_content_length(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_int_equal(pv_http_parse_content_length(PV_STR("0"), &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(pv_http_parse_content_length(PV_STR("00123"), &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(pv_http_parse_content_length(PV_STR("9223372036854775807"), &v), 0);
    assert_true(v == INT64_MAX);
    const char *bad[] = {"9223372036854775808", "99999999999999999999", "+1", "-1", " 1", "1 ",
                         "1,1", "", "0x10", "1.0"};
    for (size_t i = 0; i < PV_NELEM(bad); i++) {
        if (pv_http_parse_content_length((pv_str_t){bad[i], strlen(bad[i])}, &v) == 0)
            fail_msg("accepted Content-Length \"%s\"", bad[i]);
    }
}

static void test_connection_tokens(void **state)
{
    (void)state;
    assert_true(pv_conn_has_token(PV_STR("keep-alive, Upgrade"), "upgrade"));
    assert_true(pv_conn_has_token(PV_STR(" , ,Close ,"), "close"));
    assert_false(pv_conn_has_token(PV_STR("closed"), "close"));
    assert_false(pv_conn_has_token(PV_STR(""), "close"));
    pv_str_t rest = PV_STR("a ,\tb,,c"), tok;
    assert_true(pv_conn_next_token(&rest, &tok));
    assert_true(pv_str_eq(tok, "a", 1));
    assert_true(pv_conn_next_token(&rest, &tok));
    assert_true(pv_str_eq(tok, "b", 1));
    assert_true(pv_conn_next_token(&rest, &tok));
    assert_true(pv_str_eq(tok, "c", 1));
    assert_false(pv_conn_next_token(&rest, &tok));

    pv_header_t hs[] = {
        {PV_STR("Connection"), PV_STR("keep-alive")},
        {PV_STR("X-Foo"), PV_STR("1")},
        {PV_STR("connection"), PV_STR("x-foo, X-Bar")},
    };
    assert_true(pv_conn_lists_name(hs, 3, PV_STR("X-FOO")));
    assert_true(pv_conn_lists_name(hs, 3, PV_STR("x-bar")));
    assert_false(pv_conn_lists_name(hs, 3, PV_STR("x-baz")));
    assert_true(pv_header_is_hop_by_hop(PV_STR("Proxy-Connection")));
    assert_true(pv_header_is_hop_by_hop(PV_STR("te")));
    assert_true(pv_header_is_hop_by_hop(PV_STR("TRAILER")));
    assert_false(pv_header_is_hop_by_hop(PV_STR("Host")));

    pv_request_t r = {0};
    r.headers = hs;
    r.nheaders = 3;
    const pv_header_t *h = pv_request_header(&r, "CONNECTION", 10);
    assert_ptr_equal(h, &hs[0]);
    assert_null(pv_request_header(&r, "host", 4));
}

static void test_http_date(void **state)
{
    (void)state;
    char d[30];
    assert_int_equal(pv_http_date(784111777, d), PV_HTTP_DATE_LEN);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    pv_http_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static const char *DATE = "Thu, 26 Nov 2026 20:45:15 GMT";

static void test_errpage_404(void **state)
{
    (void)state;
    char buf[1024];
    ssize_t n = pv_errpage_build(404, 1, DATE, NULL, 0, buf, sizeof(buf));
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf,
                        "HTTP/1.1 404 Not Found\r\nServer: portvakt\r\n"
                        "Date: Thu, 26 Nov 2026 20:45:15 GMT\r\nContent-Type: text/html\r\n"
                        "Content-Length: 149\r\nConnection: keep-alive\r\n\r\n"
                        "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
                        "<center><h1>404 Not Found</h1></center>\r\n"
                        "<hr><center>portvakt</center>\r\n</body>\r\n</html>\r\n");
}

static void test_errpage_redirect_head(void **state)
{
    (void)state;
    char buf[1024];
    ssize_t n = pv_errpage_build(301, 0, DATE, "http://h:8080/api/auth/", 1, buf, sizeof(buf));
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf,
                        "HTTP/1.1 301 Moved Permanently\r\nServer: portvakt\r\n"
                        "Date: Thu, 26 Nov 2026 20:45:15 GMT\r\nContent-Type: text/html\r\n"
                        "Content-Length: 165\r\nLocation: http://h:8080/api/auth/\r\n"
                        "Connection: close\r\n\r\n");
    n = pv_errpage_build(302, 1, DATE, "/x", 0, buf, sizeof(buf));
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 302 Moved Temporarily\r\n"));
    assert_non_null(strstr(buf, "<title>302 Found</title>"));
}

static void test_errpage_all(void **state)
{
    (void)state;
    static const int codes[] = {301, 302, 400, 403, 404, 405, 408, 411, 413, 414, 429, 431,
                                500, 501, 502, 503, 504, 505};
    char buf[1024], want[128];
    for (size_t i = 0; i < PV_NELEM(codes); i++) {
        ssize_t n = pv_errpage_build(codes[i], 1, DATE, NULL, 0, buf, sizeof(buf));
        assert_true(n > 0);
        buf[n] = '\0';
        snprintf(want, sizeof(want), "<center><h1>%d ", codes[i]);
        assert_non_null(strstr(buf, want));
        const char *body = strstr(buf, "\r\n\r\n") + 4;
        const char *cl = strstr(buf, "Content-Length: ");
        assert_int_equal(atoi(cl + 16), (int)strlen(body));
        /* too small a buffer is reported, never truncated */
        assert_int_equal(pv_errpage_build(codes[i], 1, DATE, NULL, 0, buf, (size_t)n - 1), -1);
    }
    assert_string_equal(pv_http_reason(405), "Not Allowed");
    assert_string_equal(pv_http_reason(504), "Gateway Time-out");
    assert_string_equal(pv_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(pv_http_reason(799), "");
    assert_false(pv_errpage_keepalive_ok(400));
    assert_true(pv_errpage_keepalive_ok(404));
    ssize_t n = pv_errpage_build(431, 0, DATE, NULL, 0, buf, sizeof(buf));
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_plain),
        cmocka_unit_test(test_normalize_slashes_dots),
        cmocka_unit_test(test_normalize_traversal),
        cmocka_unit_test(test_normalize_percent),
        cmocka_unit_test(test_normalize_fragment_controls),
        cmocka_unit_test(test_parse_target),
        cmocka_unit_test(test_path_quoted),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_header_syntax),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_errpage_404),
        cmocka_unit_test(test_errpage_redirect_head),
        cmocka_unit_test(test_errpage_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
