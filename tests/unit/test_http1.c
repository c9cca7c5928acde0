/* The HTTP/1 server side driven through its interfaces over an in-memory
 * transport (fake_xprt.h): requests split at every byte boundary, keepalive
 * and pipelining, a chunked body read through the body stream, 400 and
 * 413 with the connection closed, a client taking one byte per write, and
 * a client gone in the middle of a head or a body. A test content handler
 * ("echo", on /echo locations) records the parsed request, reads the body
 * through pv_body_*() and answers the body back through pv_resp_*(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_xprt.h"

static const char conf_text[] =
    "http {\n"
    "  access_log off;\n"
    "  client_max_body_size 100;\n"
    "  lingering_close off;\n" /* the tests below see the close at once */
    "  server {\n"
    "    listen 127.0.0.1:1;\n"
    "    server_name example.com;\n"
    "    location /echo { }\n"
    "    location = /hello { return 200 \"hi $uri\"; }\n"
    "    location /linger { lingering_close on; }\n"
    "  }\n"
    "}\n";

/* ---- the echo content handler -------------------------------------------- */

typedef struct seen_s {
    char method[16], uri[128], args[64], host[64];
    int nheaders;
    char hname[8][32], hvalue[8][64];
    char body[4096];
    size_t nbody;
    int aborted;     /* the request ended before the handler answered */
} seen_t;

static seen_t seen[8];
static int nseen;

static void cpy(char *dst, size_t cap, pv_str_t s)
{
    snprintf(dst, cap, "%.*s", (int)s.len, s.p ? s.p : "");
}

static void echo_step(pv_hreq_t *hr);

static void echo_readable(pv_hreq_t *hr) { echo_step(hr); }
static void echo_proceed(pv_hreq_t *hr) { (void)hr; }
static void echo_abort(pv_hreq_t *hr) { ((seen_t *)hr->handler_ctx)->aborted = 1; }
static void echo_cleanup(pv_hreq_t *hr) { hr->handler_ctx = NULL; }

static const pv_handler_t echo_handler = {"echo", echo_proceed, echo_readable, echo_abort, echo_cleanup};

/* Take the body as it comes; once it is whole, answer it back. */
static void echo_step(pv_hreq_t *hr)
{
    seen_t *s = hr->handler_ctx;
    for (;;) {
        pv_str_t sp[16];
        int n = pv_body_take(hr, sp, 16);
        if (n < 0) {
            hr->handling = 0;
            pv_resp_error(hr, pv_body_error(hr));
            return;
        }
        for (int i = 0; i < n; i++) {
            assert_true(s->nbody + sp[i].len <= sizeof(s->body));
            memcpy(s->body + s->nbody, sp[i].p, sp[i].len);
            s->nbody += sp[i].len;
        }
        if (pv_body_done(hr))
            break;
        if (pv_body_buffered(hr))
            continue;
        int rc = pv_body_read(hr);
        if (rc == PV_AGAIN)
            return; /* readable() comes back */
        if (rc == PV_ERR) {
            pv_resp_abort(hr);
            return;
        }
    }
    pv_resp_head_t h = {.status = 200, .content_type = PV_STR("text/plain"), .content_length = (int64_t)s->nbody};
    assert_int_equal(pv_resp_send_head(hr, &h), PV_OK);
    pv_str_t b = {s->body, s->nbody};
    pv_resp_send_body(hr, &b, 1);
    hr->handling = 0;
    pv_resp_finish(hr);
}

static int echo_claims(const pv_location_t *loc)
{
    return !loc->proxy_pass && loc->name.len >= 5 && memcmp(loc->name.p, "/echo", 5) == 0;
}

static int echo_content(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    assert_true(nseen < (int)PV_NELEM(seen));
    seen_t *s = &seen[nseen++];
    memset(s, 0, sizeof(*s));
    cpy(s->method, sizeof(s->method), r->method);
    cpy(s->uri, sizeof(s->uri), r->uri);
    cpy(s->args, sizeof(s->args), r->args);
    cpy(s->host, sizeof(s->host), r->host);
    s->nheaders = r->nheaders;
    for (int i = 0; i < r->nheaders && i < 8; i++) {
        cpy(s->hname[i], sizeof(s->hname[i]), r->headers[i].name);
        cpy(s->hvalue[i], sizeof(s->hvalue[i]), r->headers[i].value);
    }
    hr->handler = &echo_handler;
    hr->handler_ctx = s;
    hr->handling = 1;
    pv_body_hold(hr);
    echo_step(hr);
    return PV_PHASE_DONE;
}

static const pv_content_t echo_content_handler = {"echo", echo_claims, echo_content, NULL};

/* ---- helpers ------------------------------------------------------------- */

static fx_t cf; /* the client's transport */

static void pump(void)
{
    fx_t *const fs[] = {&cf, NULL};
    fx_pump_all(fs);
}

/* A new client connection whose script the caller fills next. */
static pv_hconn_t *client(void)
{
    fx_init(&cf);
    nseen = 0;
    pv_hconn_t *c = fx_client(&cf);
    assert_non_null(c);
    return c;
}

/* The client ends the stream; the server closes the connection. */
static void hang_up(void)
{
    if (!cf.closed) {
        fx_eof(&cf);
        pump();
    }
    assert_true(cf.closed);
}

/* The echo answer to a body, as bytes. */
static size_t ok_resp(char *out, size_t cap, const char *body, size_t blen, int keep)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 200 OK\r\nServer: portvakt/" PV_VERSION "\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                     fx_date(), blen, keep ? "keep-alive" : "close");
    memcpy(out + n, body, blen);
    return (size_t)n + blen;
}

/* ---- tests ---------------------------------------------------------------- */

static const char req1[] = "POST /echo/a%20b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A: one\r\n"
                           "x-a:  two \r\nContent-Length: 5\r\n\r\nhello";

static void check_req1(void)
{
    assert_int_equal(nseen, 1);
    const seen_t *s = &seen[0];
    assert_string_equal(s->method, "POST");
    assert_string_equal(s->uri, "/echo/a b");
    assert_string_equal(s->args, "x=1&y");
    assert_string_equal(s->host, "example.com");
    assert_int_equal(s->nheaders, 4);
    assert_string_equal(s->hname[0], "Host");
    assert_string_equal(s->hvalue[0], "Example.COM:8080");
    assert_string_equal(s->hname[2], "x-a");
    assert_string_equal(s->hvalue[2], "two");
    assert_string_equal(s->hvalue[3], "5");
    assert_int_equal(s->nbody, 5);
    assert_memory_equal(s->body, "hello", 5);
    assert_false(s->aborted);
}

/* The same request and the same answer wherever the bytes are split. */
static void test_split_everywhere(void **st)
{
    (void)st;
    char want[512];
    size_t wn = ok_resp(want, sizeof(want), "hello", 5, 1);
    size_t len = sizeof(req1) - 1;
    for (size_t at = 1; at < len; at++) {
        client();
        fx_split_at(&cf, req1, len, at);
        pump();
        check_req1();
        fx_assert_out(&cf, want, wn);
        assert_false(cf.closed); /* kept alive */
        hang_up();
    }
    /* one byte per read, a pause after each */
    client();
    fx_pieces(&cf, req1, len, 1);
    pump();
    check_req1();
    fx_assert_out(&cf, want, wn);
    hang_up();
}

/* Two requests in one piece, then a third on the same connection asking
 * for its close: three answers in order, the connection closed after the
 * last. Every split of the pipelined pair gives the same bytes. */
static void test_pipelined_keepalive(void **st)
{
    (void)st;
    static const char two[] = "GET /echo/1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
                              "POST /echo/2 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc";
    static const char third[] = "GET /hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n";
    char want[1024];
    size_t wn = ok_resp(want, sizeof(want), "", 0, 1);
    wn += ok_resp(want + wn, sizeof(want) - wn, "abc", 3, 1);
    size_t w2 = wn;
    wn += (size_t)snprintf(want + wn, sizeof(want) - wn,
                           "HTTP/1.1 200 OK\r\nServer: portvakt/" PV_VERSION "\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 9\r\nConnection: close\r\n\r\nhi /hello",
                           fx_date());
    for (size_t at = 0; at < sizeof(two) - 1; at++) {
        client();
        if (at)
            fx_split_at(&cf, two, sizeof(two) - 1, at);
        else
            fx_str(&cf, two);
        pump();
        assert_int_equal(nseen, 2);
        assert_string_equal(seen[0].uri, "/echo/1");
        assert_int_equal(seen[0].nbody, 0);
        assert_string_equal(seen[1].method, "POST");
        assert_string_equal(seen[1].uri, "/echo/2");
        assert_int_equal(seen[1].nbody, 3);
        fx_assert_out(&cf, want, w2);
        assert_false(cf.closed);
        fx_str(&cf, third);
        pump();
        fx_assert_out(&cf, want, wn);
        assert_true(cf.closed);
    }
}

/* A chunked body (extensions, a trailer) read through the body stream in
 * awkward pieces; the request after it is parsed from the right byte. */
static void test_chunked_body(void **st)
{
    (void)st;
    static const char req[] = "POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
                              "GET /echo/next HTTP/1.1\r\nHost: example.com\r\n\r\n";
    char want[512];
    size_t wn = ok_resp(want, sizeof(want), "hello world", 11, 1);
    wn += ok_resp(want + wn, sizeof(want) - wn, "", 0, 1);
    for (size_t piece = 1; piece <= 9; piece++) {
        client();
        fx_pieces(&cf, req, sizeof(req) - 1, piece);
        pump();
        assert_int_equal(nseen, 2);
        assert_int_equal(seen[0].nbody, 11);
        assert_memory_equal(seen[0].body, "hello world", 11);
        assert_string_equal(seen[1].uri, "/echo/next");
        fx_assert_out(&cf, want, wn);
        hang_up();
    }
    for (size_t at = 1; at < sizeof(req) - 1; at++) {
        client();
        fx_split_at(&cf, req, sizeof(req) - 1, at);
        pump();
        assert_int_equal(nseen, 2);
        assert_memory_equal(seen[0].body, "hello world", 11);
        fx_assert_out(&cf, want, wn);
        hang_up();
    }
}

/* Requests the server must refuse with 400: the page, Connection: close,
 * and the connection closed without the client hanging up. */
static void test_bad_request(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "GET /echo HTTP/1.1\r\nHost: example.com\r\nBad Name: x\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        /* bare CR and obs-fold stay refused, with LF line ends too */
        "GET /echo HTTP/1.1\rHost: example.com\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: example.com\r\nX-A: a\rb\r\n\r\n",
        "GET /echo HTTP/1.1\nHost: example.com\nX-A: a\rb\n\n",
        "GET /echo HTTP/1.1\nHost: example.com\r\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: example.com\r\nX-A: a\r\n b\r\n\r\n",
        "GET /echo HTTP/1.1\nHost: example.com\nX-A: a\n\tb\n\n",
        /* a bare LF in chunked framing, after a bare LF head */
        "POST /echo HTTP/1.1\nHost: example.com\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n",
        "GET /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /echo HTTP/1.1\r\n\r\n",
        /* broken chunked framing, found by the body stream */
        "POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    char want[1024];
    size_t wn = fx_errpage(want, sizeof(want), 400, "Bad Request", 0);
    for (size_t i = 0; i < PV_NELEM(bad); i++) {
        client();
        fx_str(&cf, bad[i]);
        pump();
        fx_assert_out(&cf, want, wn);
        if (!cf.closed)
            fail_msg("kept open after: %s", bad[i]);
    }
    assert_non_null(strstr(fx_log(), "client sent invalid chunked body"));
}

/* req1 with bare LF line ends: in the request line only, in the fields
 * only, everywhere, as the head's end only, mixed, after leading empty
 * lines. Each is the same request with the same answer wherever the bytes
 * are split (a CR ending one read and its LF starting the next is CRLF). */
static const char *const req1_lf[] = {
    "POST /echo/a%20b?x=1&y HTTP/1.1\nHost: Example.COM:8080\r\nX-A: one\r\nx-a:  two \r\n"
    "Content-Length: 5\r\n\r\nhello",
    "POST /echo/a%20b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\nX-A: one\nx-a:  two \n"
    "Content-Length: 5\n\r\nhello",
    "POST /echo/a%20b?x=1&y HTTP/1.1\nHost: Example.COM:8080\nX-A: one\nx-a:  two \n"
    "Content-Length: 5\n\nhello",
    "POST /echo/a%20b?x=1&y HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A: one\r\nx-a:  two \r\n"
    "Content-Length: 5\r\n\nhello",
    "POST /echo/a%20b?x=1&y HTTP/1.1\nHost: Example.COM:8080\r\nX-A: one\nx-a:  two \r\n"
    "Content-Length: 5\n\nhello",
    "\n\r\n\nPOST /echo/a%20b?x=1&y HTTP/1.1\nHost: Example.COM:8080\nX-A: one\nx-a:  two \n"
    "Content-Length: 5\n\nhello",
};

static void test_bare_lf(void **st)
{
    (void)st;
    char want[512];
    size_t wn = ok_resp(want, sizeof(want), "hello", 5, 1);
    for (size_t i = 0; i < PV_NELEM(req1_lf); i++) {
        size_t len = strlen(req1_lf[i]);
        for (size_t at = 1; at < len; at++) {
            client();
            fx_split_at(&cf, req1_lf[i], len, at);
            pump();
            if (nseen != 1)
                fail_msg("request %zu split at %zu: %.*s", i, at, (int)cf.nout, cf.out);
            check_req1();
            fx_assert_out(&cf, want, wn);
            assert_false(cf.closed);
            hang_up();
        }
        client();
        fx_pieces(&cf, req1_lf[i], len, 1);
        pump();
        check_req1();
        fx_assert_out(&cf, want, wn);
        hang_up();
    }
}

/* A body with bare LFs after a bare LF head arrives unchanged, and the
 * pipelined request after it (bare LFs again) is parsed from the right
 * byte, wherever the bytes are split. */
static void test_bare_lf_body(void **st)
{
    (void)st;
    static const char two[] = "POST /echo/1 HTTP/1.1\nHost: example.com\nContent-Length: 9\n\na\nb\n\nc\r\n\n"
                              "GET /echo/2 HTTP/1.1\nHost: example.com\nX-B: \n\n";
    char want[1024];
    size_t wn = ok_resp(want, sizeof(want), "a\nb\n\nc\r\n\n", 9, 1);
    wn += ok_resp(want + wn, sizeof(want) - wn, "", 0, 1);
    for (size_t at = 0; at < sizeof(two) - 1; at++) {
        client();
        if (at)
            fx_split_at(&cf, two, sizeof(two) - 1, at);
        else
            fx_str(&cf, two);
        pump();
        assert_int_equal(nseen, 2);
        assert_int_equal(seen[0].nbody, 9);
        assert_memory_equal(seen[0].body, "a\nb\n\nc\r\n\n", 9);
        assert_string_equal(seen[1].uri, "/echo/2");
        assert_int_equal(seen[1].nheaders, 2);
        assert_string_equal(seen[1].hname[1], "X-B");
        assert_string_equal(seen[1].hvalue[1], "");
        fx_assert_out(&cf, want, wn);
        hang_up();
    }
}

/* A head of exactly the large_client_header_buffers total (4 8k) passes
 * whatever its line ends, the CRs inserted not counting; one byte more is
 * 431. In one piece and in 1000-byte pieces. */
static char bighead[40000];

static size_t big_head(const char *eol, size_t total)
{
    size_t el = strlen(eol), n = (size_t)snprintf(bighead, sizeof(bighead), "GET /echo HTTP/1.1%sHost: example.com%s", eol, eol);
    for (int i = 0; n + 1000 < total; i++)
        n += (size_t)snprintf(bighead + n, sizeof(bighead) - n, "X-%02d: %0*d%s", i, (int)(1000 - 5 - el), 0, eol);
    size_t pad = total - n - 3 - 2 * el;
    n += (size_t)snprintf(bighead + n, sizeof(bighead) - n, "Y: %*s%s%s", (int)pad, "z", eol, eol);
    assert_int_equal(n, total);
    return n;
}

static void test_bare_lf_limit(void **st)
{
    (void)st;
    char want[512], bad[1024];
    size_t wn = ok_resp(want, sizeof(want), "", 0, 1);
    size_t bn = fx_errpage(bad, sizeof(bad), 431, "Request Header Fields Too Large", 0);
    static const char *const eols[] = {"\r\n", "\n"};
    for (size_t e = 0; e < 2; e++) {
        for (size_t piece = 1000; piece <= 40000; piece += 39000) {
            client();
            size_t n = big_head(eols[e], 32768);
            fx_pieces(&cf, bighead, n, piece);
            pump();
            assert_int_equal(nseen, 1);
            fx_assert_out(&cf, want, wn);
            hang_up();

            client();
            n = big_head(eols[e], 32769);
            fx_pieces(&cf, bighead, n, piece);
            pump();
            assert_int_equal(nseen, 0);
            fx_assert_out(&cf, bad, bn);
            assert_true(cf.closed);
        }
    }
    /* nothing but LFs: empty lines before a request line that never comes */
    memset(bighead, '\n', 32769);
    client();
    fx_pieces(&cf, bighead, 32769, 4096);
    pump();
    assert_int_equal(nseen, 0);
    bn = fx_errpage(bad, sizeof(bad), 414, "Request-URI Too Large", 0);
    fx_assert_out(&cf, bad, bn);
    assert_true(cf.closed);
}

/* An HTTP/0.9 GET ending in a bare LF is served as with CRLF (NGINX). */
static void test_http09_lf(void **st)
{
    (void)st;
    client();
    fx_str(&cf, "GET /hello\n");
    pump();
    fx_assert_out(&cf, "hi /hello", 9);
    assert_true(cf.closed);
}

/* A body over client_max_body_size: 413 for a declared length before the
 * body is read, and for a chunked body once it passes the limit. */
static void test_too_large(void **st)
{
    (void)st;
    static char chunked[512];
    char body[101];
    memset(body, 'b', sizeof(body));
    snprintf(chunked, sizeof(chunked),
             "POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n%.101s\r\n0\r\n\r\n",
             body);
    const char *const big[] = {
        "POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 101\r\n\r\n",
        chunked,
    };
    char want[1024];
    size_t wn = fx_errpage(want, sizeof(want), 413, "Request Entity Too Large", 0);
    fx_log();
    for (size_t i = 0; i < PV_NELEM(big); i++) {
        client();
        fx_pieces(&cf, big[i], strlen(big[i]), 40);
        pump();
        fx_assert_out(&cf, want, wn);
        assert_true(cf.closed);
    }
    /* lingering_close on: the answer, a half-close, and the close when
     * the client is done sending */
    static const char linger[] = "POST /linger HTTP/1.1\r\nHost: example.com\r\nContent-Length: 101\r\n\r\nbbbb";
    client();
    fx_str(&cf, linger);
    pump();
    fx_assert_out(&cf, want, wn);
    assert_true(cf.shut);
    assert_false(cf.closed);
    hang_up();
    const char *log = fx_log();
    assert_non_null(strstr(log, "client intended to send too large body: 101 bytes"));
    assert_non_null(strstr(log, "client intended to send too large chunked body: 101+ bytes"));
    /* at the limit it passes */
    client();
    snprintf(chunked, sizeof(chunked),
             "POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n%.100s\r\n0\r\n\r\n",
             body);
    fx_str(&cf, chunked);
    pump();
    assert_int_equal(seen[0].nbody, 100);
    hang_up();
}

/* A client that takes one byte per write, with or without stalling after
 * each: the same bytes, one write per byte. */
static void test_short_writes(void **st)
{
    (void)st;
    char want[512], bad[1024];
    size_t wn = ok_resp(want, sizeof(want), "hello", 5, 1);
    size_t bn = fx_errpage(bad, sizeof(bad), 400, "Bad Request", 0);
    for (int stall = 0; stall <= 1; stall++) {
        client();
        cf.wmax = 1;
        cf.wstall = stall;
        fx_pieces(&cf, req1, sizeof(req1) - 1, 7);
        pump();
        check_req1();
        fx_assert_out(&cf, want, wn);
        assert_int_equal(cf.nwrites, (int)wn);
        hang_up();

        /* a local error answer goes out the same way before the close */
        client();
        cf.wmax = 1;
        cf.wstall = stall;
        fx_str(&cf, "GET /echo HTTP/1.1\r\nHost: example.com\r\nHost: x\r\n\r\n");
        pump();
        fx_assert_out(&cf, bad, bn);
        assert_int_equal(cf.nwrites, (int)bn);
        assert_true(cf.closed);
    }
}

/* The client goes away mid-head or mid-body: nothing is answered, the
 * connection is closed, the log says why. */
static void test_client_gone(void **st)
{
    (void)st;
    fx_log();
    client();
    fx_str(&cf, "GET /echo HTTP/1.1\r\nHost: exa");
    fx_eof(&cf);
    pump();
    assert_int_equal(cf.nout, 0);
    assert_true(cf.closed);
    assert_int_equal(nseen, 0);
    assert_non_null(strstr(fx_log(), "client prematurely closed connection, client: 127.0.0.1"));

    /* after a pause, the same */
    client();
    fx_str(&cf, "GET /echo HTTP/1.1\r\n");
    fx_again(&cf);
    fx_eof(&cf);
    pump();
    assert_int_equal(cf.nout, 0);
    assert_true(cf.closed);

    /* a reset mid-head */
    client();
    fx_str(&cf, "GET /echo HTTP/1.1\r\nHost");
    fx_again(&cf);
    fx_error(&cf, ECONNRESET);
    pump();
    assert_int_equal(cf.nout, 0);
    assert_true(cf.closed);

    /* mid-body: the handler's read fails, the request is aborted */
    client();
    fx_str(&cf, "POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\nabc");
    fx_again(&cf);
    fx_str(&cf, "de");
    fx_again(&cf);
    fx_eof(&cf);
    pump();
    assert_int_equal(nseen, 1);
    assert_int_equal(seen[0].nbody, 5);
    assert_true(seen[0].aborted);
    assert_int_equal(cf.nout, 0);
    assert_true(cf.closed);
    assert_non_null(strstr(fx_log(), "client prematurely closed connection while sending request body"));
}

static int setup(void **st)
{
    (void)st;
    fx_worker_start(conf_text);
    pv_phases_content(&echo_content_handler);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    unlink(fx_logpath);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_pipelined_keepalive),
        cmocka_unit_test(test_chunked_body),     cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_too_large),        cmocka_unit_test(test_short_writes),
        cmocka_unit_test(test_client_gone),      cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_bare_lf_body),     cmocka_unit_test(test_bare_lf_limit),
        cmocka_unit_test(test_http09_lf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
