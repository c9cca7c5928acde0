/* The text side of an OCSP fetch: responder URLs as NGINX takes them
 * (and the words of its refusals), the GET carrying the request, and
 * the responder's answer up to its body. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "core/common.h"
#include "core/ocsp.h"

static const char *refused(const char *url)
{
    pv_ocsp_url_t u;
    const char *why = NULL;
    assert_int_equal(pv_ocsp_url_parse(url, strlen(url), &u, &why), PV_ERR);
    assert_non_null(why);
    return why;
}

static void test_url(void **state)
{
    pv_ocsp_url_t u;
    const char *why = NULL;
    const char *s = "http://127.0.0.1:8080/ocsp";
    assert_int_equal(pv_ocsp_url_parse(s, strlen(s), &u, &why), PV_OK);
    assert_string_equal(u.host, "127.0.0.1");
    assert_string_equal(u.name, "127.0.0.1");
    assert_int_equal(u.port, 8080);
    assert_string_equal(u.uri, "/ocsp");
    s = "HTTP://ocsp.example.com";
    assert_int_equal(pv_ocsp_url_parse(s, strlen(s), &u, &why), PV_OK);
    assert_string_equal(u.host, "ocsp.example.com");
    assert_int_equal(u.port, 80);
    assert_string_equal(u.uri, "/");
    s = "http://[::1]:81/a/";
    assert_int_equal(pv_ocsp_url_parse(s, strlen(s), &u, &why), PV_OK);
    assert_string_equal(u.host, "[::1]");
    assert_string_equal(u.name, "::1");
    assert_int_equal(u.port, 81);
    assert_string_equal(u.uri, "/a/");
    assert_string_equal(refused("ftp://x/"), "invalid URL prefix");
    assert_string_equal(refused("http://"), "invalid URL prefix");
    assert_string_equal(refused("http://:80/"), "no host");
    assert_string_equal(refused("http://x:0/"), "invalid port");
    assert_string_equal(refused("http://x:65536/"), "invalid port");
    assert_string_equal(refused("http://x:8a/"), "invalid port");
    assert_string_equal(refused("http://[::1/"), "invalid host");
    assert_string_equal(refused("http://a b/"), "invalid host");
    assert_string_equal(refused("http://a/b c"), "invalid URI");
}

static void test_request(void **state)
{
    pv_ocsp_url_t u;
    const char *why;
    const char *s = "http://r.test/ocsp";
    assert_int_equal(pv_ocsp_url_parse(s, strlen(s), &u, &why), PV_OK);
    /* base64 "+/8=" for fb ff: '+', '/' and '=' escaped */
    static const unsigned char der[] = {0xfb, 0xff};
    char out[256];
    long n = pv_ocsp_request_text(&u, der, sizeof(der), out, sizeof(out));
    const char *want = "GET /ocsp/%2B%2F8%3D HTTP/1.0\r\nHost: r.test\r\n\r\n";
    assert_int_equal(n, (long)strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(pv_ocsp_request_text(&u, der, sizeof(der), out, 20), -1);
}

static int parse(const char *s, pv_ocsp_http_t *h)
{
    return pv_ocsp_http_parse((const unsigned char *)s, strlen(s), h);
}

static void test_answer(void **state)
{
    pv_ocsp_http_t h;
    const char *ok = "HTTP/1.0 200 OK\r\nContent-Type: application/OCSP-response \r\nX:\r\n\r\nBODY";
    assert_int_equal(parse(ok, &h), PV_OK);
    assert_int_equal(h.code, 200);
    assert_null(h.ctype);
    assert_string_equal(ok + h.body, "BODY");
    assert_int_equal(parse("HTTP/1.1 200 OK\nContent-Type: text/html\n\n<p>", &h), PV_OK);
    assert_non_null(h.ctype);
    assert_int_equal(h.ctype_len, 9);
    assert_memory_equal(h.ctype, "text/html", 9);
    assert_int_equal(parse("HTTP/1.0 403.1\r\n\r\n", &h), PV_OK);
    assert_int_equal(h.code, 403);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Ty", &h), PV_AGAIN);
    assert_int_equal(parse("HTTP/1.", &h), PV_AGAIN);
    assert_int_equal(parse("", &h), PV_AGAIN);
    assert_int_equal(parse("HTTX/1.0 200 OK\r\n\r\n", &h), PV_ERR);
    assert_int_equal(parse("HTTP/0.9 200 OK\r\n\r\n", &h), PV_ERR);
    assert_int_equal(parse("HTTP/1.0 20x OK\r\n\r\n", &h), PV_ERR);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nBad Name: x\r\n\r\n", &h), PV_ERR);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nA: b\rc\r\n\r\n", &h), PV_ERR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
