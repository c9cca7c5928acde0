/* Variables: every table entry against a hand-built request, escaping, the
 * snprintf-style contract of pv_cv_eval, and the cached clock strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../src/core/time.c"
#include "config/conf.h"
#include "http/request.h"
#include "http/timing.h"
#include "http/vars.h"

/* The library objects linked into this test reference the config module;
 * these weak fallbacks let the test link while that module is absent and
 * give way to the real definitions when it is there. */
__attribute__((weak)) void pv_conf_ref(pv_conf_t *c) { (void)c; }
__attribute__((weak)) void pv_conf_unref(pv_conf_t *c) { (void)c; }
__attribute__((weak)) pv_conf_t *pv_conf_load(const char *path, char *err, size_t errlen)
{
    (void)path;
    snprintf(err, errlen, "no config module");
    return NULL;
}
__attribute__((weak)) int pv_conf_auto_workers(const char *sys_root, char *why, size_t whylen)
{
    (void)sys_root;
    snprintf(why, whylen, "no config module");
    return 1;
}
__attribute__((weak)) int pv_cv_compile(pv_cv_t *cv, pv_arena_t *arena, const char *src,
                                        size_t len, char *err, size_t errlen)
{
    (void)cv, (void)arena, (void)src, (void)len;
    snprintf(err, errlen, "no config module");
    return PV_ERR;
}

/* A small "$var" compiler, so these tests do not depend on the config
 * grammar; names are looked up with pv_var_find() in the tables that
 * main() registers. */
#include <stdlib.h>
#include <string.h>

static int test_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Compile src; aborts on an unknown variable (a broken test). Release with
 * test_cv_free(). */
static pv_cv_t test_cv(const char *src)
{
    pv_cv_t cv = {calloc(64, sizeof(pv_cv_part_t)), 0, 0};
    const char *p = src, *lit = src;
    while (*p) {
        if (*p != '$') {
            p++;
            continue;
        }
        if (p > lit)
            cv.parts[cv.nparts++] = (pv_cv_part_t){NULL, {lit, (size_t)(p - lit)}, 0};
        const char *n = p + 1, *e;
        int braced = *n == '{';
        if (braced) {
            n++;
            e = strchr(n, '}');
        } else {
            for (e = n; test_is_name_char(*e); e++)
                ;
        }
        size_t nl = (size_t)(e - n);
        char low[128];
        if (nl >= sizeof(low))
            abort();
        for (size_t i = 0; i < nl; i++)
            low[i] = (n[i] >= 'A' && n[i] <= 'Z') ? (char)(n[i] | 0x20) : n[i];
        pv_str_t rest;
        const pv_var_t *var = pv_var_find(low, nl, &rest);
        if (!var)
            abort();
        pv_cv_part_t *pt = &cv.parts[cv.nparts++];
        *pt = (pv_cv_part_t){var, {NULL, 0}, 0};
        if (var->flags & PV_VAR_F_PREFIX) {
            char *t = strndup(rest.p, rest.len);
            for (char *q = t; *q; q++)
                if (*q == '_' && (var->flags & PV_VAR_F_HEADER))
                    *q = '-';
            pt->text = (pv_str_t){t, rest.len};
        }
        p = lit = e + braced;
    }
    if (p > lit)
        cv.parts[cv.nparts++] = (pv_cv_part_t){NULL, {lit, (size_t)(p - lit)}, 0};
    cv.is_const = cv.nparts == 1 && cv.parts[0].var == NULL;
    return cv;
}

/* Free what test_cv() allocated. */
static void test_cv_free(pv_cv_t *cv)
{
    for (int i = 0; i < cv->nparts; i++) {
        const pv_var_t *v = cv->parts[i].var;
        if (v && (v->flags & PV_VAR_F_PREFIX))
            free((char *)cv->parts[i].text.p);
    }
    free(cv->parts);
}

/* ---- fixtures ----------------------------------------------------------- */

typedef struct fixture_s {
    pv_request_t r;             /* the request under test */
    pv_arena_t arena;           /* its arena */
    pv_header_t hdr[16];        /* request headers */
    pv_header_t resp[8];        /* response headers */
    struct sockaddr_in peer4;   /* client address */
    pv_server_t srv;            /* chosen server */
    pv_server_name_t names[2];  /* its names */
} fixture_t;

static pv_str_t S(const char *s)
{
    return (pv_str_t){s, strlen(s)};
}

static void add_hdr(fixture_t *f, const char *name, const char *value)
{
    f->hdr[f->r.nheaders++] = (pv_header_t){S(name), S(value)};
}

static void add_resp(fixture_t *f, const char *name, const char *value)
{
    f->resp[f->r.nresp_headers++] = (pv_header_t){S(name), S(value)};
}

static fixture_t *fx_new(void)
{
    fixture_t *f = calloc(1, sizeof(*f));
    pv_arena_init(&f->arena, 1024);
    pv_request_t *r = &f->r;
    r->arena = &f->arena;
    f->peer4.sin_family = AF_INET;
    f->peer4.sin_port = htons(41454);
    inet_pton(AF_INET, "127.0.0.1", &f->peer4.sin_addr);
    r->peer = (const struct sockaddr *)&f->peer4;
    strcpy(r->peer_text, "127.0.0.1");
    r->peer_port = 41454;
    r->local_text = "127.0.0.2";
    r->local_port = 8080;
    r->conn_id = 7;
    r->conn_requests = 3;
    r->method = S("GET");
    r->request_line = S("GET /a%20b?x=1&Y=2&z HTTP/1.1");
    r->request_uri = S("/a%20b?x=1&Y=2&z");
    r->uri = S("/a b");
    r->args = S("x=1&Y=2&z");
    r->has_args = 1;
    r->http_major = 1;
    r->http_minor = 1;
    r->headers = f->hdr;
    r->resp_headers = f->resp;
    r->host = S("example.com");
    r->content_length = -1;
    r->start_ns = pv_now_ns();
    f->names[0] = (pv_server_name_t){PV_SN_EXACT, S("main.test"), NULL, NULL};
    f->srv.first_name = S("main.test");
    f->srv.names = f->names;
    f->srv.nnames = 1;
    r->srv = &f->srv;
    return f;
}

static void fx_free(fixture_t *f)
{
    pv_arena_free(&f->arena);
    free(f);
}

/* Evaluate src with escaping; returns a static NUL-terminated copy. */
static const char *ev(fixture_t *f, const char *src, int escape)
{
    static char out[4096];
    pv_cv_t cv = test_cv(src);
    size_t n = pv_cv_eval(&cv, &f->r, escape, out, sizeof(out) - 1);
    assert_true(n < sizeof(out));
    out[n] = '\0';
    test_cv_free(&cv);
    return out;
}

#define EV(f, src) ev((f), (src), PV_ESCAPE_NONE)
#define EVLOG(f, src) ev((f), (src), PV_ESCAPE_DEFAULT)

/* pv_var_get for one variable; NULL when the variable is not found. */
static const char *get(fixture_t *f, const char *src, size_t *len)
{
    static char scratch[64];
    static char copy[4096];
    pv_cv_t cv = test_cv(src);
    assert_int_equal(cv.nparts, 1);
    pv_str_t v = pv_var_get(&f->r, &cv.parts[0], scratch, sizeof(scratch));
    test_cv_free(&cv);
    if (len)
        *len = v.len;
    if (!v.p)
        return NULL;
    memcpy(copy, v.p, v.len);
    copy[v.len] = '\0';
    return copy;
}

/* ---- connection and addresses ------------------------------------------ */

static void test_addresses(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$remote_addr:$remote_port"), "127.0.0.1:41454");
    assert_string_equal(EV(f, "$server_addr:$server_port"), "127.0.0.2:8080");
    assert_string_equal(EV(f, "$connection/$connection_requests"), "7/3");
    size_t len;
    const char *b = get(f, "$binary_remote_addr", &len);
    assert_int_equal(len, 4);
    assert_memory_equal(b, "\x7f\x00\x00\x01", 4);
    assert_string_equal(EVLOG(f, "$binary_remote_addr"), "\\x7F\\x00\\x00\\x01");

    struct sockaddr_in6 p6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &p6.sin6_addr);
    f->r.peer = (const struct sockaddr *)&p6;
    b = get(f, "$binary_remote_addr", &len);
    assert_int_equal(len, 16);
    assert_memory_equal(b, &p6.sin6_addr, 16);

    /* without a sockaddr the text form is parsed */
    f->r.peer = NULL;
    strcpy(f->r.peer_text, "10.1.2.3");
    b = get(f, "$binary_remote_addr", &len);
    assert_int_equal(len, 4);
    assert_memory_equal(b, "\x0a\x01\x02\x03", 4);

    /* port 0 (unix socket, unknown) is found but empty */
    f->r.peer_port = 0;
    f->r.local_port = 0;
    assert_string_equal(EVLOG(f, "[$remote_port][$server_port]"), "[][]");
    fx_free(f);
}

static void test_x_forwarded_for(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$proxy_add_x_forwarded_for"), "127.0.0.1");
    assert_null(get(f, "$http_x_forwarded_for", NULL));
    assert_string_equal(EVLOG(f, "$http_x_forwarded_for"), "-");

    add_hdr(f, "X-Forwarded-For", "1.1.1.1");
    assert_string_equal(EV(f, "$proxy_add_x_forwarded_for"), "1.1.1.1, 127.0.0.1");
    assert_string_equal(EV(f, "$http_x_forwarded_for"), "1.1.1.1");

    add_hdr(f, "x-forwarded-for", "");
    add_hdr(f, "X-FORWARDED-FOR", "3.3.3.3");
    assert_string_equal(EV(f, "$http_x_forwarded_for"), "1.1.1.1, , 3.3.3.3");
    assert_string_equal(get(f, "$http_x_forwarded_for", NULL), "1.1.1.1, , 3.3.3.3");
    assert_string_equal(EV(f, "$proxy_add_x_forwarded_for"), "1.1.1.1, , 3.3.3.3, 127.0.0.1");
    assert_string_equal(get(f, "$proxy_add_x_forwarded_for", NULL),
                        "1.1.1.1, , 3.3.3.3, 127.0.0.1");
    fx_free(f);

    /* a single empty header still counts, as in NGINX: ", addr" */
    f = fx_new();
    add_hdr(f, "X-Forwarded-For", "");
    assert_string_equal(EV(f, "$proxy_add_x_forwarded_for"), ", 127.0.0.1");
    assert_string_equal(EVLOG(f, "[$http_x_forwarded_for]"), "[]");
    fx_free(f);
}

/* ---- host and server names --------------------------------------------- */

static void test_host_and_server_name(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$host|$server_name"), "example.com|main.test");
    f->r.host = (pv_str_t){NULL, 0};
    assert_string_equal(EV(f, "$host"), "main.test");

    /* the first name as the loader keeps it (server_name_in_redirect) */
    f->srv.first_name = S("example.org"); /* from ".example.org" */
    assert_string_equal(EV(f, "$host|$server_name"), "example.org|example.org");
    f->srv.first_name = S("*.example.org");
    assert_string_equal(EV(f, "$server_name"), "*.example.org");
    f->srv.first_name = S("www.example.*");
    assert_string_equal(EV(f, "$server_name"), "www.example.*");
    f->srv.first_name = S("~^re\\d+\\.com$");
    assert_string_equal(EV(f, "$server_name"), "~^re\\d+\\.com$");
    assert_string_equal(get(f, "$server_name", NULL), "~^re\\d+\\.com$");
    assert_string_equal(EVLOG(f, "$host"), "~^re\\x5Cd+\\x5C.com$");

    f->srv.nnames = 0;
    f->srv.first_name = (pv_str_t){NULL, 0};
    assert_string_equal(EVLOG(f, "[$server_name][$host]"), "[][]");
    f->r.srv = NULL;
    assert_string_equal(EVLOG(f, "[$server_name]"), "[]");
    fx_free(f);
}

/* ---- request headers --------------------------------------------------- */

static void test_http_headers(void **state)
{
    fixture_t *f = fx_new();
    add_hdr(f, "User-Agent", "curl/8");
    add_hdr(f, "X-Real-IP", "9.9.9.9");
    add_hdr(f, "Foo", "f1");
    add_hdr(f, "foo", "f2");
    add_hdr(f, "Cookie", "a=1");
    add_hdr(f, "Accept", "");
    add_hdr(f, "X_Under", "u");
    assert_string_equal(EV(f, "$http_user_agent"), "curl/8");
    assert_string_equal(EV(f, "$http_x_real_ip"), "9.9.9.9");
    assert_string_equal(EV(f, "$http_X_REAL_IP"), "9.9.9.9");
    assert_string_equal(EV(f, "$http_x_under"), "u");
    /* other repeated headers yield the first one in 1.22 */
    assert_string_equal(EV(f, "$http_foo"), "f1");
    assert_string_equal(EV(f, "$http_cookie"), "a=1");
    add_hdr(f, "Cookie", "b=2");
    assert_string_equal(EV(f, "$http_cookie"), "a=1; b=2");
    assert_string_equal(get(f, "$http_cookie", NULL), "a=1; b=2");

    /* found-but-empty vs not found */
    size_t len = 9;
    const char *v = get(f, "$http_accept", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(get(f, "$http_referer", NULL));
    assert_string_equal(EVLOG(f, "\"$http_referer\" \"$http_accept\""), "\"-\" \"\"");
    assert_string_equal(EV(f, "\"$http_referer\""), "\"\"");
    assert_string_equal(ev(f, "\"$http_referer\"", PV_ESCAPE_JSON), "\"\"");

    assert_null(get(f, "$content_length", NULL));
    assert_null(get(f, "$content_type", NULL));
    add_hdr(f, "Content-Length", "12");
    add_hdr(f, "content-type", "text/plain");
    assert_string_equal(EV(f, "$content_length $content_type"), "12 text/plain");
    fx_free(f);
}

static void test_joined_longer_than_scratch(void **state)
{
    fixture_t *f = fx_new();
    char a[100], b[100];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memset(b, 'b', sizeof(b) - 1);
    b[sizeof(b) - 1] = '\0';
    add_hdr(f, "Cookie", a);
    add_hdr(f, "Cookie", b);
    size_t len;
    const char *v = get(f, "$http_cookie", &len);
    assert_int_equal(len, 99 + 2 + 99);
    assert_memory_equal(v, a, 99);
    assert_memory_equal(v + 99, "; ", 2);
    assert_memory_equal(v + 101, b, 99);
    fx_free(f);
}

static void test_sent_http(void **state)
{
    fixture_t *f = fx_new();
    assert_null(get(f, "$sent_http_x_a", NULL));
    assert_string_equal(EVLOG(f, "$sent_http_x_a"), "-");
    add_resp(f, "X-A", "a1");
    add_resp(f, "X-A", "a2");
    add_resp(f, "Cache-Control", "c1");
    add_resp(f, "Cache-Control", "c2");
    add_resp(f, "Link", "<a>");
    add_resp(f, "Link", "<b>");
    add_resp(f, "Content-Type", "text/html");
    assert_string_equal(EV(f, "$sent_http_x_a"), "a1");
    assert_string_equal(EV(f, "$sent_http_cache_control"), "c1, c2");
    assert_string_equal(EV(f, "$sent_http_link"), "<a>, <b>");
    assert_string_equal(EV(f, "$sent_http_content_type"), "text/html");
    fx_free(f);
}

/* ---- request line and arguments ---------------------------------------- */

static void test_request_line(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$request_method $request_uri $uri $document_uri"),
                        "GET /a%20b?x=1&Y=2&z /a b /a b");
    assert_string_equal(EV(f, "$request"), "GET /a%20b?x=1&Y=2&z HTTP/1.1");
    assert_string_equal(EV(f, "$scheme $server_protocol"), "http HTTP/1.1");
    f->r.http_minor = 0;
    assert_string_equal(EV(f, "$server_protocol"), "HTTP/1.0");
    assert_string_equal(EV(f, "$args|$query_string|$is_args"), "x=1&Y=2&z|x=1&Y=2&z|?");
    assert_string_equal(EV(f, "$nginx_version"), "1.22.1");
    fx_free(f);
}

static void test_args(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$arg_x"), "1");
    assert_string_equal(EV(f, "$arg_y"), "2");   /* names match case-insensitively */
    assert_string_equal(EV(f, "$arg_Y"), "2");
    assert_null(get(f, "$arg_z", NULL));          /* "z" has no '=' */
    assert_null(get(f, "$arg_w", NULL));
    assert_string_equal(EVLOG(f, "[$arg_w]"), "[-]");

    f->r.args = S("ax=0&x=&x=3");
    assert_string_equal(EVLOG(f, "[$arg_x]"), "[]"); /* first "x=", empty but found */
    f->r.args = S("a=%20b+c&b=2");
    assert_string_equal(EV(f, "$arg_a"), "%20b+c"); /* raw, not decoded */

    /* "/x?" and "/x": $args not found, $is_args empty */
    f->r.args = (pv_str_t){f->r.request_uri.p + 7, 0};
    assert_null(get(f, "$args", NULL));
    assert_string_equal(EVLOG(f, "[$args][$query_string][$is_args]"), "[-][-][]");
    f->r.args = (pv_str_t){NULL, 0};
    f->r.has_args = 0;
    assert_string_equal(EVLOG(f, "[$args][$is_args][$arg_x]"), "[-][][-]");
    fx_free(f);
}

/* ---- request id, status and timings ------------------------------------ */

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void test_request_id(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(f->r.request_id, "");
    char first[64];
    strcpy(first, EV(f, "$request_id"));
    assert_int_equal(strlen(first), 32);
    assert_true(is_lower_hex(first, 32));
    assert_string_equal(f->r.request_id, first);
    assert_string_equal(EV(f, "$request_id"), first); /* stable within the request */
    fixture_t *g = fx_new();
    assert_string_not_equal(EV(g, "$request_id"), first);
    fx_free(g);
    fx_free(f);
}

static void test_status_and_sizes(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EV(f, "$status"), "000");
    f->r.status = 204;
    f->r.body_bytes_sent = 0;
    f->r.bytes_sent = 123;
    f->r.request_length = 77;
    assert_string_equal(EV(f, "$status $body_bytes_sent $bytes_sent $request_length"),
                        "204 0 123 77");
    f->r.body_bytes_sent = 18446744073709551615ull;
    assert_string_equal(EV(f, "$body_bytes_sent"), "18446744073709551615");
    assert_string_equal(EV(f, "$limit_rate"), "0");
    f->r.limit_rate = 102400;
    assert_string_equal(EV(f, "$limit_rate"), "102400");
    fx_free(f);
}

static void test_times(void **state)
{
    fixture_t *f = fx_new();
    f->r.start_ns = pv_now_ns() - 3500000; /* 3.5 ms ago */
    const char *t = EV(f, "$request_time");
    assert_int_equal(strlen(t), 5);
    assert_memory_equal(t, "0.00", 4);
    assert_true(t[4] >= '3' && t[4] <= '9');
    f->r.start_ns = pv_now_ns() - 12345000000ull;
    t = EV(f, "$request_time");
    assert_memory_equal(t, "12.3", 4);
    f->r.start_ns = pv_now_ns() + 1000000000ull; /* clock skew never goes negative */
    assert_string_equal(EV(f, "$request_time"), "0.000");

    assert_null(get(f, "$upstream_response_time", NULL));
    assert_string_equal(EVLOG(f, "$upstream_response_time $upstream_connect_time"), "- -");
    const uint64_t S = 1000000000000ull; /* a try's start on the loop's clock */
    pv_utry_t one[1] = {{S, S + 1234567000, 0, S + 2999000, 0, 0, 0, 0}};
    f->r.utries = f->r.utry = one;
    f->r.nutries = f->r.cutries = 1;
    assert_string_equal(EV(f, "$upstream_response_time $upstream_connect_time"),
                        "0.002 1.234");
    assert_string_equal(EVLOG(f, "$upstream_header_time"), "-");
    /* NGINX's lists: ", " between tries, " : " before an internal redirect's */
    pv_utry_t three[3] = {{S, S + 1000000, S + 2000000, S + 3000000, 0, 120, 200, 80},
                          {S, 0, 0, S + 5000000, 0, 0, 0, 0},
                          {S, S, S + 1500000, S + 9999000, 1, 95, 30, 0}};
    f->r.utries = three;
    f->r.utry = &three[2];
    f->r.nutries = f->r.cutries = 3;
    assert_string_equal(EV(f, "$upstream_response_time"), "0.003, 0.005 : 0.009");
    assert_string_equal(EV(f, "$upstream_connect_time"), "0.001, - : 0.000");
    assert_string_equal(EV(f, "$upstream_header_time"), "0.002, - : 0.001");
    /* the bytes: sent, read, and the body's (0 before a whole head) */
    assert_string_equal(EV(f, "$upstream_bytes_sent"), "120, 0 : 95");
    assert_string_equal(EV(f, "$upstream_bytes_received"), "200, 0 : 30");
    assert_string_equal(EV(f, "$upstream_response_length"), "120, 0 : 0");
    /* the numeric ones: the last try, milliseconds with microseconds */
    assert_string_equal(EV(f, "$upstream_duration_ms $upstream_header_duration_ms"), "9.999 1.500");
    assert_string_equal(EV(f, "$upstream_connect_duration_ms"), "0.000");
    f->r.nutries = 0;
    f->r.utry = NULL;
    assert_string_equal(EVLOG(f, "$upstream_duration_ms"), "-");

    pv_time_update();
    char msec[64];
    strcpy(msec, EV(f, "$msec"));
    char *dot = strchr(msec, '.');
    assert_non_null(dot);
    assert_int_equal(strlen(dot), 4);
    long long sec = atoll(msec);
    assert_true(llabs(sec - (long long)time(NULL)) <= 1);
    assert_int_equal(strlen(EV(f, "$time_local")), strlen("26/Nov/2026:19:00:00 +0000"));
    assert_int_equal(strlen(EV(f, "$time_iso8601")), strlen("2026-11-26T19:00:00+00:00"));
    fx_free(f);
}

static void test_upstream_and_proxy(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(EVLOG(f, "$upstream_addr $upstream_status $proxy_host $proxy_port"),
                        "- - - -");
    strcpy(f->r.upstream_addr, "127.0.0.1:9000, 127.0.0.1:9001");
    strcpy(f->r.upstream_status, "502, 200");
    f->r.proxy_host = S("backend");
    assert_string_equal(EV(f, "$upstream_addr|$upstream_status|$proxy_host|$proxy_port"),
                        "127.0.0.1:9000, 127.0.0.1:9001|502, 200|backend|80");
    f->r.proxy_host = S("127.0.0.1:9000");
    assert_string_equal(EV(f, "$proxy_host $proxy_port"), "127.0.0.1:9000 9000");
    f->r.proxy_host = S("[::1]:9001");
    assert_string_equal(EV(f, "$proxy_port"), "9001");
    f->r.proxy_host = S("[::1]");
    assert_string_equal(EV(f, "$proxy_port"), "80");

    /* before the response starts, the location's proxy_pass stands in */
    f->r.proxy_host = (pv_str_t){NULL, 0};
    pv_proxy_pass_t pp = {.proxy_host = S("up.internal:8081")};
    pv_location_t loc = {.proxy_pass = &pp};
    f->r.loc = &loc;
    assert_string_equal(EV(f, "$proxy_host $proxy_port"), "up.internal:8081 8081");
    f->r.status = 401; /* answered without proxying: not found, as in NGINX */
    assert_string_equal(EVLOG(f, "$proxy_host"), "-");
    fx_free(f);
}

static void test_remote_user(void **state)
{
    static const struct {
        const char *auth; /* Authorization value */
        const char *user; /* expected $remote_user, NULL if not found */
    } cases[] = {
        {"Basic dXNlcjpwYXNz", "user"},          /* user:pass */
        {"basic dXNlcjpwYXNz", "user"},          /* scheme is case-insensitive */
        {"Basic   dXNlcjo=junk", "user"},        /* spaces; stops at '=' */
        {"Basic dXNlcg==", NULL},                /* "user": no ':' */
        {"Basic OnBhc3M=", NULL},                /* ":pass": empty user */
        {"Basic dXNl*jpwYXNz", NULL},            /* bad character */
        {"Basic ", NULL},
        {"Bearer dXNlcjpwYXNz", NULL},
        {"Basic ZnLDvjpwdw==", "fr\xc3\xbe"},    /* non-ASCII user */
        {"Basic YWI6", "ab"},                    /* "ab:" without padding */
    };
    for (size_t i = 0; i < PV_NELEM(cases); i++) {
        fixture_t *f = fx_new();
        add_hdr(f, "Authorization", cases[i].auth);
        const char *u = get(f, "$remote_user", NULL);
        if (cases[i].user) {
            assert_non_null(u);
            assert_string_equal(u, cases[i].user);
            assert_string_equal(EV(f, "$remote_user"), cases[i].user);
        } else {
            assert_null(u);
            assert_string_equal(EVLOG(f, "$remote_user"), "-");
        }
        fx_free(f);
    }
    fixture_t *f = fx_new();
    assert_string_equal(EVLOG(f, "$remote_user"), "-");
    add_hdr(f, "Authorization", "Basic ZnLDvjpwdw==");
    assert_string_equal(EVLOG(f, "$remote_user"), "fr\\xC3\\xBE");
    fx_free(f);

    /* a long user name streams without a buffer */
    f = fx_new();
    char user[400], b64[600];
    memset(user, 'u', 300);
    strcpy(user + 300, ":p");
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(user), o = 0;
    strcpy(b64, "Basic ");
    o = 6;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)user[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(unsigned char)user[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)user[i + 2];
        b64[o++] = tbl[v >> 18];
        b64[o++] = tbl[(v >> 12) & 63];
        b64[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        b64[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    b64[o] = '\0';
    add_hdr(f, "Authorization", b64);
    const char *u = EV(f, "$remote_user");
    assert_int_equal(strlen(u), 300);
    assert_memory_equal(u, user, 300);
    size_t len;
    get(f, "$remote_user", &len);
    assert_int_equal(len, 300);
    fx_free(f);
}

static void test_process_values(void **state)
{
    fixture_t *f = fx_new();
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    assert_string_equal(EV(f, "$pid"), pid);
    char hn[256] = "";
    gethostname(hn, sizeof(hn) - 1);
    for (char *p = hn; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p |= 0x20;
    assert_string_equal(EV(f, "$hostname"), hn);
    fx_free(f);
}

/* ---- the tables -------------------------------------------------------- */

/* Every entry has a lowercase name and a getter, and its name (with a
 * rest, for a prefix) compiles to that entry and no other. */
/* $cookie_ and $upstream_cookie_ as NGINX 1.22 reads the fields. */
static void test_cookies(void **state)
{
    pv_header_t hs[] = {
        {PV_STR("Host"), PV_STR("x")},
        {PV_STR("Cookie"), PV_STR("a=1; bb = 2 ,c=3;d")},
        {PV_STR("cookie"), PV_STR("E=5, f=x,y; g=")},
    };
    static const char *const cases[][2] = {
        {"a", "1"}, {"bb", "2 ,c=3"}, {"c", "3"}, {"e", "5, f=x,y"}, {"f", "x,y"}, {"g", ""},
        {"d", NULL}, {"b", NULL}, {"y", NULL}, {"zz", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pv_str_t v = {0};
        int rc = pv_var_cookie(hs, 3, (pv_str_t){(char *)cases[i][0], strlen(cases[i][0])}, &v);
        if (!cases[i][1]) {
            assert_int_equal(rc, PV_VAL_MISSING);
            continue;
        }
        assert_int_equal(rc, PV_VAL_FOUND);
        assert_int_equal(v.len, strlen(cases[i][1]));
        assert_memory_equal(v.p, cases[i][1], v.len);
    }
    pv_header_t sc[] = {
        {PV_STR("Set-Cookie"), PV_STR("sid=abc; Path=/; HttpOnly")},
        {PV_STR("Set-Cookie"), PV_STR("Lang = en")},
        {PV_STR("Set-Cookie"), PV_STR("x=1; tc=2")},
    };
    pv_str_t v = {0};
    assert_int_equal(pv_var_set_cookie(sc, 3, PV_STR("sid"), &v), PV_VAL_FOUND);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.p, "abc", 3);
    assert_int_equal(pv_var_set_cookie(sc, 3, PV_STR("lang"), &v), PV_VAL_FOUND);
    assert_int_equal(v.len, 2); /* spaces after "=" skipped, as NGINX */
    assert_int_equal(pv_var_set_cookie(sc, 3, PV_STR("tc"), &v), PV_VAL_MISSING); /* only the first pair */
    assert_int_equal(pv_var_set_cookie(sc, 3, PV_STR("path"), &v), PV_VAL_MISSING);
}

static void test_tables(void **state)
{
    const pv_var_t *const tables[] = {pv_vars_request, pv_vars_response, pv_vars_timing, pv_vars_trace};
    int count = 0;
    for (size_t t = 0; t < PV_NELEM(tables); t++) {
        for (const pv_var_t *v = tables[t]; v->name.len; v++, count++) {
            char name[64];
            assert_non_null(v->get);
            assert_true(v->name.len + 2 < sizeof(name));
            for (size_t i = 0; i < v->name.len; i++)
                assert_true((v->name.p[i] >= 'a' && v->name.p[i] <= 'z') ||
                            (v->name.p[i] >= '0' && v->name.p[i] <= '9') || v->name.p[i] == '_');
            memcpy(name, v->name.p, v->name.len);
            size_t n = v->name.len;
            pv_str_t rest;
            if (v->flags & PV_VAR_F_PREFIX) {
                assert_int_equal(name[n - 1], '_');
                /* "$http_" alone names the field "" (none), as in NGINX */
                assert_ptr_equal(pv_var_find(name, n, &rest), v);
                assert_int_equal(rest.len, 0);
                name[n++] = 'x';
            } else {
                assert_false(v->flags & PV_VAR_F_HEADER);
            }
            assert_ptr_equal(pv_var_find(name, n, &rest), v);
            if (v->flags & PV_VAR_F_PREFIX)
                assert_memory_equal(rest.p, "x", rest.len);
            else
                assert_int_equal(rest.len, 0);
        }
    }
    assert_int_equal(count, 82);
    assert_null(pv_var_find("foo", 3, &(pv_str_t){0}));
    assert_null(pv_var_find("hosts", 5, &(pv_str_t){0}));
    /* a declared variable is not in the tables: its getter finds it by name */
    fixture_t *f = fx_new();
    pv_header_t uv[1] = {{S("auth_user"), S("alice")}};
    pv_cv_part_t part = {&pv_var_declared, S("auth_user"), 0};
    char scratch[64];
    assert_null(pv_var_get(&f->r, &part, scratch, sizeof(scratch)).p);
    f->r.uvars = uv;
    f->r.nuvars = 1;
    assert_string_equal(pv_var_get(&f->r, &part, scratch, sizeof(scratch)).p, "alice");
    fx_free(f);
}

/* ---- escaping and the snprintf contract -------------------------------- */

static void test_escapes(void **state)
{
    fixture_t *f = fx_new();
    add_hdr(f, "Foo", "\"q\\\x01\xc3\xa9\x7f\ta\x1b\x1f z");
    /* literals are never escaped */
    assert_string_equal(EVLOG(f, "\"[$http_foo]\""),
                        "\"[\\x22q\\x5C\\x01\\xC3\\xA9\\x7F\\x09a\\x1B\\x1F z]\"");
    assert_string_equal(ev(f, "\"[$http_foo]\"", PV_ESCAPE_JSON),
                        "\"[\\\"q\\\\\\u0001\xc3\xa9\x7f\\ta\\u001B\\u001F z]\"");
    assert_string_equal(EV(f, "$http_foo"), "\"q\\\x01\xc3\xa9\x7f\ta\x1b\x1f z");
    add_hdr(f, "Bar", "\n\r\b\f");
    assert_string_equal(ev(f, "$http_bar", PV_ESCAPE_JSON), "\\n\\r\\b\\f");
    assert_string_equal(EVLOG(f, "$http_bar"), "\\x0A\\x0D\\x08\\x0C");
    /* json and none print nothing for a missing variable */
    assert_string_equal(ev(f, "[$http_none]", PV_ESCAPE_JSON), "[]");
    assert_string_equal(ev(f, "[$http_none]", PV_ESCAPE_NONE), "[]");
    assert_string_equal(ev(f, "[$http_none]", PV_ESCAPE_DEFAULT), "[-]");
    fx_free(f);
}

/* log_anonymize: every client address variable in its anonymised form */
static void test_anonymised_addresses(void **state)
{
    fixture_t *f = fx_new();
    int anon = PV_ESCAPE_DEFAULT | PV_CV_ANON;
    assert_string_equal(EV(f, "$remote_addr_anon"), "127.0.0.0");
    assert_string_equal(EV(f, "$remote_addr"), "127.0.0.1");
    assert_string_equal(ev(f, "$remote_addr $realip_remote_addr", anon), "127.0.0.0 127.0.0.0");
    assert_string_equal(ev(f, "$binary_remote_addr", anon), "\\x7F\\x00\\x00\\x00");
    add_hdr(f, "X-Forwarded-For", "203.0.113.9, [2001:db8:1:2::5]:443, unknown");
    add_hdr(f, "X-Forwarded-For", "198.51.100.7:8080");
    add_hdr(f, "X-Real-IP", "2001:db8:aa:bb::1");
    assert_string_equal(ev(f, "$http_x_forwarded_for", anon),
                        "203.0.113.0, 2001:db8:1::, -, 198.51.100.0");
    assert_string_equal(ev(f, "$http_x_real_ip", anon), "2001:db8:aa::");
    assert_string_equal(ev(f, "$proxy_add_x_forwarded_for", anon),
                        "203.0.113.0, 2001:db8:1::, -, 198.51.100.0, 127.0.0.0");
    /* without the flag, nothing changes */
    assert_string_equal(EV(f, "$http_x_real_ip"), "2001:db8:aa:bb::1");
    strcpy(f->r.peer_text, "2001:db8:5:6:7::8");
    f->r.peer = NULL;
    assert_string_equal(EV(f, "$remote_addr_anon"), "2001:db8:5::");
    fx_free(f);
}

/* escape=json: a numeric variable without a value is null */
static void test_json_numbers(void **state)
{
    fixture_t *f = fx_new();
    assert_string_equal(ev(f, "{\"u\":$upstream_duration_ms,\"s\":$status}", PV_ESCAPE_JSON),
                        "{\"u\":null,\"s\":0}");
    f->r.start_ns = pv_now_ns() - 2500000;
    const char *d = ev(f, "$request_duration_ms", PV_ESCAPE_JSON);
    assert_true(strtod(d, NULL) >= 2.5);
    assert_non_null(strchr(d, '.'));
    fx_free(f);
}

static void test_eval_truncation(void **state)
{
    fixture_t *f = fx_new();
    add_hdr(f, "Foo", "\"xyz\"");
    pv_cv_t cv = test_cv("a=$http_foo;b=$remote_addr");
    const char *full = "a=\\x22xyz\\x22;b=127.0.0.1";
    size_t need = pv_cv_eval(&cv, &f->r, PV_ESCAPE_DEFAULT, NULL, 0);
    assert_int_equal(need, strlen(full));
    for (size_t cap = 0; cap <= need + 1; cap++) {
        char buf[64];
        memset(buf, '#', sizeof(buf));
        size_t n = pv_cv_eval(&cv, &f->r, PV_ESCAPE_DEFAULT, buf, cap);
        assert_int_equal(n, need);
        assert_memory_equal(buf, full, PV_MIN(cap, need));
        assert_int_equal(buf[cap], '#'); /* nothing written past cap */
    }
    test_cv_free(&cv);

    pv_cv_t c = test_cv("constant");
    assert_true(c.is_const);
    char b[4];
    assert_int_equal(pv_cv_eval(&c, &f->r, PV_ESCAPE_DEFAULT, b, sizeof(b)), 8);
    assert_memory_equal(b, "cons", 4);
    test_cv_free(&c);
    pv_cv_t empty = {NULL, 0, 0};
    assert_int_equal(pv_cv_eval(&empty, &f->r, PV_ESCAPE_NONE, b, sizeof(b)), 0);
    fx_free(f);
}

static void test_combined_line(void **state)
{
    fixture_t *f = fx_new();
    add_hdr(f, "Host", "example.com");
    add_hdr(f, "User-Agent", "Mozilla/5.0 (X11; \"Linux\")");
    add_hdr(f, "Authorization", "Basic dXNlcjpwYXNz");
    f->r.status = 200;
    f->r.body_bytes_sent = 3;
    pv_time_update();
    char expect[512];
    pv_str_t tl = pv_time_local();
    snprintf(expect, sizeof(expect),
             "127.0.0.1 - user [%.*s] \"GET /a%%20b?x=1&Y=2&z HTTP/1.1\" 200 3 \"-\" "
             "\"Mozilla/5.0 (X11; \\x22Linux\\x22)\"",
             (int)tl.len, tl.p);
    assert_string_equal(EVLOG(f, "$remote_addr - $remote_user [$time_local] \"$request\" "
                                 "$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\""),
                        expect);
    fx_free(f);
}

/* ---- the clock cache ---------------------------------------------------- */

static void test_time_strings(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    tc.valid = 0;
    time_format(1795719600); /* 2026-11-26 19:00:00 UTC, a Thursday */
    tc.valid = 1;
    tc.ms = 1795719600042;
    pv_str_t s = pv_time_http_date();
    assert_int_equal(s.len, 29);
    assert_memory_equal(s.p, "Thu, 26 Nov 2026 19:00:00 GMT", 29);
    s = pv_time_local();
    assert_memory_equal(s.p, "26/Nov/2026:19:00:00 +0000", s.len);
    s = pv_time_iso8601();
    assert_memory_equal(s.p, "2026-11-26T19:00:00+00:00", s.len);
    s = pv_time_err_log();
    assert_memory_equal(s.p, "2026/11/26 19:00:00", s.len);
    char buf[PV_TIME_MSEC_LEN];
    assert_int_equal(pv_time_msec(buf), 14);
    assert_string_equal(buf, "1795719600.042");
    assert_int_equal(pv_time_ms(), 1795719600042);

    /* a zone with a half-hour offset, and one west of UTC (POSIX TZ syntax) */
    setenv("TZ", "IST-5:30", 1);
    tzset();
    tc.valid = 0;
    time_format(1795719600);
    tc.valid = 1;
    s = pv_time_local();
    assert_memory_equal(s.p, "27/Nov/2026:00:30:00 +0530", s.len);
    s = pv_time_iso8601();
    assert_memory_equal(s.p, "2026-11-27T00:30:00+05:30", s.len);
    s = pv_time_http_date();
    assert_memory_equal(s.p, "Thu, 26 Nov 2026 19:00:00 GMT", s.len);
    setenv("TZ", "XST+3", 1);
    tzset();
    tc.valid = 0;
    time_format(1795719605);
    tc.valid = 1;
    s = pv_time_local();
    assert_memory_equal(s.p, "26/Nov/2026:16:00:05 -0300", s.len);
    s = pv_time_err_log();
    assert_memory_equal(s.p, "2026/11/26 16:00:05", s.len);

    setenv("TZ", "UTC", 1);
    tzset();
    tc.valid = 0;
    pv_time_update();
    assert_true(llabs(pv_time_ms() / 1000 - (long long)time(NULL)) <= 1);
    uint64_t a = pv_now_ns(), b = pv_now_ns();
    assert_true(b >= a);
    assert_true(pv_now_ms() >= a / 1000000);
}

int main(void)
{
    pv_http_vars_init();
    setenv("TZ", "UTC", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_x_forwarded_for),
        cmocka_unit_test(test_host_and_server_name),
        cmocka_unit_test(test_http_headers),
        cmocka_unit_test(test_joined_longer_than_scratch),
        cmocka_unit_test(test_sent_http),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_status_and_sizes),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_upstream_and_proxy),
        cmocka_unit_test(test_remote_user),
        cmocka_unit_test(test_process_values),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_cookies),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_eval_truncation),
        cmocka_unit_test(test_anonymised_addresses),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_combined_line),
        cmocka_unit_test(test_time_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
