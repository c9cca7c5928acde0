/* Upstream request heads and client response heads for proxied requests:
 * proxy_pass URI rules, proxy_set_header merging in NGINX's order, and
 * hop-by-hop removal. Expected heads were checked against nginx 1.22.1
 * except where RFC 9110 §7.6.1 asks for more removal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/conf.h"
#include "http/uri.h"
#include "http/vars.h"
#include "proxy/rewrite.h"

static pv_arena_t arena;

static pv_cv_t cv(const char *src)
{
    pv_cv_t v;
    char err[128];
    if (pv_cv_compile(&v, &arena, src, strlen(src), err, sizeof(err)) != PV_OK)
        fail_msg("compile %s: %s", src, err);
    return v;
}

static void set_header(pv_location_t *l, const char *name, const char *value)
{
    pv_set_header_t *n = pv_arena_alloc(&arena, sizeof(*n) * (size_t)(l->conf.nset_headers + 1));
    if (l->conf.nset_headers)
        memcpy(n, l->conf.set_headers, sizeof(*n) * (size_t)l->conf.nset_headers);
    n[l->conf.nset_headers].name = (pv_str_t){name, strlen(name)};
    n[l->conf.nset_headers].value = cv(value);
    l->conf.set_headers = n;
    l->conf.nset_headers++;
}

static pv_location_t *location(int match, const char *name, const char *host, const char *uri, int version)
{
    pv_location_t *l = pv_arena_calloc(&arena, sizeof(*l));
    l->match = match;
    l->name = (pv_str_t){name, strlen(name)};
    l->proxy_pass = pv_arena_calloc(&arena, sizeof(*l->proxy_pass));
    l->proxy_pass->proxy_host = (pv_str_t){host, strlen(host)};
    if (uri) {
        l->proxy_pass->uri = (pv_str_t){uri, strlen(uri)};
        l->proxy_pass->has_uri = 1;
    }
    l->conf.proxy_http_version = version;
    l->conf.proxy_pass_request_headers = 1;
    l->conf.hdr.redirect = 1; /* proxy_redirect default */
    size_t ul = 7 + strlen(host) + (uri ? strlen(uri) : 0);
    char *url = pv_arena_alloc(&arena, ul + 1);
    snprintf(url, ul + 1, "http://%s%s", host, uri ? uri : "");
    l->proxy_pass->url = (pv_str_t){url, ul};
    return l;
}

/* A request as the server side builds it from a target and fields. */
static void request(pv_request_t *r, const char *method, const char *target, pv_header_t *hs, int n)
{
    memset(r, 0, sizeof(*r));
    r->arena = &arena;
    r->method = (pv_str_t){method, strlen(method)};
    pv_uri_target_t t;
    assert_int_equal(pv_uri_parse_target(&arena, (pv_str_t){target, strlen(target)}, 0, &t), 0);
    r->request_uri = t.request_uri;
    r->uri = t.uri;
    r->args = t.args;
    r->has_args = t.has_args;
    r->headers = hs;
    r->nheaders = n;
    r->content_length = -1;
    strcpy(r->peer_text, "127.0.0.1");
    r->peer_port = 50000;
    r->http_major = 1;
    r->http_minor = 1;
}

static void expect_head(pv_request_t *r, const pv_location_t *l, int mode, int64_t len, const char *want)
{
    char buf[4096];
    r->proxy_host = l->proxy_pass->proxy_host;
    ssize_t n = pv_proxy_build_request(r, l, mode, len, buf, sizeof(buf));
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
    /* every smaller buffer is refused, never written past */
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        char *small = malloc(cap ? cap : 1);
        assert_int_equal(pv_proxy_build_request(r, l, mode, len, small, cap), -1);
        free(small);
    }
}

static int setup(void **state)
{
    (void)state;
    pv_arena_init(&arena, 16384);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pv_arena_free(&arena);
    return 0;
}

static pv_location_t *seed_location(void)
{
    pv_location_t *l = location(PV_LOC_PREFIX, "/api/auth/", "auth_service", "/", 11);
    set_header(l, "Connection", "");
    set_header(l, "X-Real-IP", "$remote_addr");
    set_header(l, "X-Forwarded-For", "$proxy_add_x_forwarded_for");
    return l;
}

/* The seed config; nginx 1.22.1 sent the same head plus X-Foo and
 * Proxy-Connection, which RFC 9110 §7.6.1 says to drop. */
static void test_seed_request(void **state)
{
    (void)state;
    pv_header_t hs[] = {
        {PV_STR("Host"), PV_STR("Example.COM.:18080")},
        {PV_STR("User-Agent"), PV_STR("t")},
        {PV_STR("Connection"), PV_STR("keep-alive, X-Foo")},
        {PV_STR("X-Foo"), PV_STR("bar")},
        {PV_STR("TE"), PV_STR("trailers")},
        {PV_STR("Upgrade"), PV_STR("h2c")},
        {PV_STR("Proxy-Connection"), PV_STR("x")},
        {PV_STR("X-Real-IP"), PV_STR("spoof")},
        {PV_STR("Expect"), PV_STR("100-continue")},
        {PV_STR("Accept"), PV_STR("*/*")},
        {PV_STR("Content-Length"), PV_STR("3")},
        {PV_STR("Keep-Alive"), PV_STR("300")},
        {PV_STR("Trailer"), PV_STR("x")},
    };
    pv_request_t r;
    request(&r, "GET", "/api/auth/login?x=1", hs, (int)PV_NELEM(hs));
    expect_head(&r, seed_location(), PV_BODY_LENGTH, 3,
                "GET /login?x=1 HTTP/1.1\r\n"
                "X-Real-IP: 127.0.0.1\r\n"
                "X-Forwarded-For: 127.0.0.1\r\n"
                "Host: auth_service\r\n"
                "Content-Length: 3\r\n"
                "User-Agent: t\r\n"
                "Accept: */*\r\n"
                "\r\n");
}

static void test_forwarded_for_and_chunked(void **state)
{
    (void)state;
    pv_header_t hs[] = {
        {PV_STR("host"), PV_STR("h")},
        {PV_STR("X-Forwarded-For"), PV_STR("10.0.0.1")},
        {PV_STR("Transfer-Encoding"), PV_STR("chunked")},
    };
    pv_request_t r;
    request(&r, "POST", "/api/auth/", hs, 3);
    expect_head(&r, seed_location(), PV_BODY_CHUNKED, 0,
                "POST / HTTP/1.1\r\n"
                "X-Real-IP: 127.0.0.1\r\n"
                "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"
                "Host: auth_service\r\n"
                "Transfer-Encoding: chunked\r\n"
                "\r\n");
}

/* proxy_pass without a URI part passes the target exactly as received. */
static void test_no_uri_passes_target(void **state)
{
    (void)state;
    pv_location_t *l = location(PV_LOC_PREFIX, "/api/auth/", "127.0.0.1:8081", NULL, 10);
    pv_request_t r;
    request(&r, "GET", "/api/auth/%7Euser//a?b", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0,
                "GET /api/auth/%7Euser//a?b HTTP/1.0\r\n"
                "Host: 127.0.0.1:8081\r\n"
                "Connection: close\r\n"
                "\r\n");
    /* absolute-form: the origin-form part only */
    request(&r, "GET", "http://Other:81/api/auth/x?y#f", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0,
                "GET /api/auth/x?y#f HTTP/1.0\r\nHost: 127.0.0.1:8081\r\nConnection: close\r\n\r\n");
}

static void test_uri_replacement(void **state)
{
    (void)state;
    pv_location_t *l = location(PV_LOC_PREFIX, "/api/auth/", "auth_service", "/v2/", 10);
    pv_request_t r;
    /* the normalised path is used: dot segments and merged slashes */
    request(&r, "GET", "/api/auth//x/../login", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0,
                "GET /v2/login HTTP/1.0\r\nHost: auth_service\r\nConnection: close\r\n\r\n");
    /* escaped again only when the client used %-escapes (nginx 1.22.1) */
    request(&r, "GET", "/api/auth/a%20b/%3F/x?z", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0,
                "GET /v2/a%20b/%3F/x?z HTTP/1.0\r\nHost: auth_service\r\nConnection: close\r\n\r\n");
    request(&r, "GET", "/api/auth/~user\"x", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0,
                "GET /v2/~user\"x HTTP/1.0\r\nHost: auth_service\r\nConnection: close\r\n\r\n");
    /* "?" with nothing after it is not passed on */
    request(&r, "GET", "/api/auth/x?", NULL, 0);
    expect_head(&r, l, PV_BODY_NONE, 0, "GET /v2/x HTTP/1.0\r\nHost: auth_service\r\nConnection: close\r\n\r\n");

    pv_location_t *e = location(PV_LOC_EXACT, "/login", "b", "/auth", 10);
    request(&r, "DELETE", "/login?x", NULL, 0);
    expect_head(&r, e, PV_BODY_NONE, 0, "DELETE /auth?x HTTP/1.0\r\nHost: b\r\nConnection: close\r\n\r\n");
}

static void test_user_overrides(void **state)
{
    (void)state;
    pv_location_t *l = location(PV_LOC_PREFIX_STOP, "/", "up", NULL, 11);
    set_header(l, "host", "$host");
    set_header(l, "X-Empty", "$http_nothing");
    set_header(l, "Content-Length", "99");
    set_header(l, "Upgrade", "$http_upgrade");
    set_header(l, "connection", "upgrade");
    set_header(l, "X-Uri", "$uri");
    pv_header_t hs[] = {
        {PV_STR("Host"), PV_STR("client.example")},
        {PV_STR("Upgrade"), PV_STR("websocket")},
        {PV_STR("Connection"), PV_STR("Upgrade")},
        {PV_STR("x-empty"), PV_STR("from client")},
        {PV_STR("X-Other"), PV_STR("1")},
        {PV_STR("X-Other"), PV_STR("2")},
    };
    pv_request_t r;
    request(&r, "GET", "/a%0d%0aInjected:%20x", hs, (int)PV_NELEM(hs));
    r.host = PV_STR("client.example");
    expect_head(&r, l, PV_BODY_LENGTH, 5,
                "GET /a%0d%0aInjected:%20x HTTP/1.1\r\n"
                "host: client.example\r\n"
                "Upgrade: websocket\r\n"
                "connection: upgrade\r\n"
                "X-Uri: /a  Injected: x\r\n"
                "Content-Length: 5\r\n"
                "X-Other: 1\r\n"
                "X-Other: 2\r\n"
                "\r\n");
}

static const char *DATE = "Thu, 26 Nov 2026 20:45:12 GMT";

static void expect_resp(const pv_upstream_response_t *u, int frame, int64_t cl, int ka, const char *want)
{
    char buf[4096];
    ssize_t n = pv_proxy_build_response(u, (pv_str_t){DATE, strlen(DATE)}, frame, cl, ka, buf, sizeof(buf));
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        assert_int_equal(pv_proxy_build_response(u, (pv_str_t){DATE, strlen(DATE)}, frame, cl, ka, buf, cap), -1);
}

/* Same upstream response nginx 1.22.1 got; it passed X-Drop, Trailer and
 * Proxy-Connection on, which RFC 9110 §7.6.1 removes. */
static void test_response_head(void **state)
{
    (void)state;
    pv_header_t hs[] = {
        {PV_STR("X-A"), PV_STR("1")},
        {PV_STR("Server"), PV_STR("upstream")},
        {PV_STR("Date"), PV_STR("x")},
        {PV_STR("Last-Modified"), PV_STR("Mon, 01 Jan 2024 00:00:00 GMT")},
        {PV_STR("Content-Type"), PV_STR("text/plain")},
        {PV_STR("Connection"), PV_STR("x-drop, keep-alive")},
        {PV_STR("X-Drop"), PV_STR("1")},
        {PV_STR("Keep-Alive"), PV_STR("timeout=5")},
        {PV_STR("Trailer"), PV_STR("foo")},
        {PV_STR("Proxy-Connection"), PV_STR("k")},
        {PV_STR("X-Pad"), PV_STR("p")},
        {PV_STR("X-Accel-Charset"), PV_STR("c")},
        {PV_STR("Location"), PV_STR("/rel")},
        {PV_STR("Set-Cookie"), PV_STR("a=b")},
        {PV_STR("Content-Length"), PV_STR("2")},
    };
    pv_upstream_response_t u = {200, PV_STR("Fine"), hs, (int)PV_NELEM(hs), NULL, NULL};
    expect_resp(&u, PV_RESP_LENGTH, 2, 1,
                "HTTP/1.1 200 Fine\r\n"
                "Server: portvakt\r\n"
                "Date: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Content-Type: text/plain\r\n"
                "Content-Length: 2\r\n"
                "Connection: keep-alive\r\n"
                "X-A: 1\r\n"
                "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                "Location: /rel\r\n"
                "Set-Cookie: a=b\r\n"
                "\r\n");
}

static void test_response_variants(void **state)
{
    (void)state;
    pv_header_t hs[] = {
        {PV_STR("Content-Type"), PV_STR("a/b")},
        {PV_STR("Transfer-Encoding"), PV_STR("chunked")},
        {PV_STR("X-Accel-Redirect"), PV_STR("/x")},
    };
    pv_upstream_response_t u = {404, {NULL, 0}, hs, 3, NULL, NULL};
    expect_resp(&u, PV_RESP_CHUNKED, 0, 0,
                "HTTP/1.1 404 Not Found\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Content-Type: a/b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    u.status = 204;
    expect_resp(&u, PV_RESP_NONE, 0, 1,
                "HTTP/1.1 204 No Content\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Connection: keep-alive\r\n\r\n");

    pv_header_t up[] = {
        {PV_STR("Upgrade"), PV_STR("websocket")},
        {PV_STR("Connection"), PV_STR("Upgrade")},
        {PV_STR("Sec-WebSocket-Accept"), PV_STR("k")},
    };
    pv_upstream_response_t w = {101, PV_STR("Switching Protocols"), up, 3, NULL, NULL};
    expect_resp(&w, PV_RESP_NONE, 0, 1,
                "HTTP/1.1 101 Switching Protocols\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\n\r\n");
}

/* proxy_redirect default, as nginx 1.22.1 did it for the seed location:
 * the proxy_pass URL prefix becomes the location name, the result is made
 * absolute and moves in front of Transfer-Encoding. */
static void test_response_redirect_default(void **state)
{
    (void)state;
    pv_header_t hs[] = {
        {PV_STR("Content-Type"), PV_STR("text/plain")},
        {PV_STR("X-A"), PV_STR("1")},
        {PV_STR("Location"), PV_STR("http://auth_service/login?a=1")},
        {PV_STR("Transfer-Encoding"), PV_STR("chunked")},
    };
    pv_request_t r;
    request(&r, "GET", "/api/auth/x", NULL, 0);
    r.host = PV_STR("h");
    r.local_port = 18080;
    pv_upstream_response_t u = {200, PV_STR("Fine"), hs, 4, &r, seed_location()};
    expect_resp(&u, PV_RESP_CHUNKED, 0, 0,
                "HTTP/1.1 200 Fine\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Content-Type: text/plain\r\n"
                "Location: http://h:18080/api/auth/login?a=1\r\n"
                "Transfer-Encoding: chunked\r\nConnection: close\r\nX-A: 1\r\n\r\n");

    /* without a URI part the URL plus "/" becomes "/"; other URLs stay put */
    pv_location_t *raw = location(PV_LOC_PREFIX, "/raw/", "127.0.0.1:8081", NULL, 10);
    u.loc = raw;
    hs[2].value = PV_STR("http://127.0.0.1:8081/raw/y");
    r.host = (pv_str_t){NULL, 0};
    r.local_text = "::1";
    r.local_port = 80;
    expect_resp(&u, PV_RESP_NONE, 0, 1,
                "HTTP/1.1 200 Fine\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Content-Type: text/plain\r\nLocation: http://[::1]/raw/y\r\n"
                "Connection: keep-alive\r\nX-A: 1\r\n\r\n");
    hs[2].value = PV_STR("http://other/z");
    expect_resp(&u, PV_RESP_NONE, 0, 1,
                "HTTP/1.1 200 Fine\r\nServer: portvakt\r\nDate: Thu, 26 Nov 2026 20:45:12 GMT\r\n"
                "Content-Type: text/plain\r\nConnection: keep-alive\r\nX-A: 1\r\n"
                "Location: http://other/z\r\n\r\n");
}

int main(void)
{
    pv_http_vars_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_request),
        cmocka_unit_test(test_forwarded_for_and_chunked),
        cmocka_unit_test(test_no_uri_passes_target),
        cmocka_unit_test(test_uri_replacement),
        cmocka_unit_test(test_user_overrides),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_variants),
        cmocka_unit_test(test_response_redirect_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
