/* The proxy exchange driven through its interfaces over in-memory
 * transports (fake_xprt.h): a client connection and the upstream
 * connections the pool opens through pv_upstream_set_opener(). What the
 * upstream receives (request line, proxy_set_header, the body), how each
 * response framing (Content-Length, chunked, until the close) reaches the
 * client whatever its split, the pooled connection reused, and the
 * failures that become a 502 with their cause in the error log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_xprt.h"
#include "../../src/http/chunked.h"

static const char conf_text[] =
    "http {\n"
    "  access_log off;\n"
    "  lingering_close off;\n" /* a closed client connection is seen at once */
    "  upstream backend { server 127.0.0.1:9; keepalive 4; }\n"
    "  upstream old { server 127.0.0.2:10; }\n"
    "  server {\n"
    "    listen 127.0.0.1:1;\n"
    "    server_name example.com;\n"
    "    location /api/ {\n"
    "      proxy_pass http://backend/v1/;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_set_header Connection \"\";\n"
    "      proxy_set_header X-Real-IP $remote_addr;\n"
    "      proxy_set_header X-Gone \"\";\n"
    "      proxy_request_buffering off;\n"
    "    }\n"
    "    location /old/ { proxy_pass http://old; }\n"
    "    location /ws/ {\n"
    "      proxy_pass http://backend/;\n"
    "      proxy_http_version 1.1;\n"
    "      proxy_set_header Upgrade $http_upgrade;\n"
    "      proxy_set_header Connection \"upgrade\";\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- fixtures ------------------------------------------------------------ */

static fx_t cf;     /* the client */
static fx_t uf[2];  /* upstream connections, in the order they are opened */
static int nopened; /* upstream connections opened */
static int refuse;  /* errno the next open fails with; 0: it succeeds */

/* The pool's opener: the next upstream transport, connected at once. */
static int fake_open(pv_xprt_t *x, const pv_upstream_server_t *s, const pv_net_bind_t *local)
{
    (void)s;
    (void)local;
    if (refuse) {
        errno = refuse;
        refuse = 0;
        return PV_ERR;
    }
    assert_true(nopened < (int)PV_NELEM(uf));
    fx_xprt(&uf[nopened++], x);
    return PV_UPSTREAM_OPEN_CONNECTED;
}

static void pump(void)
{
    fx_t *const fs[] = {&cf, &uf[0], &uf[1], NULL};
    fx_pump_all(fs);
}

/* A fresh client connection and upstream scripts; the caller fills them. */
static void start(void)
{
    fx_init(&cf);
    for (size_t i = 0; i < PV_NELEM(uf); i++)
        fx_init(&uf[i]);
    nopened = 0;
    refuse = 0;
    assert_non_null(fx_client(&cf));
    fx_log();
}

/* End of a case: the client hangs up, and any upstream connection left
 * idle in the pool is closed by its upstream (the pool drops it). */
static void finish(void)
{
    if (!cf.closed) {
        fx_eof(&cf);
        pump();
    }
    assert_true(cf.closed);
    for (int i = 0; i < nopened; i++) {
        if (!uf[i].closed) {
            fx_eof(&uf[i]);
            pump();
        }
        assert_true(uf[i].closed);
    }
}

/* A client response head as the gateway writes it; fields end in CRLF.
 * Its Date is the one the client got (the clock may have passed a second
 * boundary while the exchange ran), else the current one. */
static size_t head(char *out, size_t cap, const char *status, const char *fields)
{
    char date[64];
    snprintf(date, sizeof(date), "%s", fx_date());
    const char *d = cf.nout ? memmem(cf.out, cf.nout, "\r\nDate: ", 8) : NULL;
    if (d && (size_t)(d + 8 + 29 - cf.out) <= cf.nout)
        snprintf(date, sizeof(date), "%.29s", d + 8);
    return (size_t)snprintf(out, cap, "HTTP/1.1 %s\r\nServer: portvakt/" PV_VERSION "\r\nDate: %s\r\n%s\r\n", status, date,
                            fields);
}

/* The client's bytes after the head, with the chunked coding removed. */
static size_t dechunk(const fx_t *f, size_t head_len, char *out, size_t cap)
{
    pv_chunked_t ck;
    pv_chunked_init(&ck);
    size_t o = 0, off = head_len;
    while (off < f->nout && !ck.done) {
        pv_str_t sp[8];
        int ns = 0;
        ssize_t used = pv_chunked_decode(&ck, f->out + off, f->nout - off, sp, &ns, 8);
        assert_true(used > 0);
        for (int i = 0; i < ns; i++) {
            assert_true(o + sp[i].len <= cap);
            memcpy(out + o, sp[i].p, sp[i].len);
            o += sp[i].len;
        }
        off += (size_t)used;
    }
    assert_true(ck.done);
    assert_int_equal(off, f->nout); /* nothing after the last chunk */
    return o;
}

/* ---- tests ---------------------------------------------------------------- */

static const char get_api[] = "GET /api/items?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n"
                              "Connection: keep-alive\r\nX-Gone: client\r\nX-Client: c\r\n\r\n";
static const char get_api_up[] = "GET /v1/items?q=1 HTTP/1.1\r\nX-Real-IP: 127.0.0.1\r\nHost: backend\r\n"
                                 "User-Agent: t/1\r\nX-Client: c\r\n\r\n";

/* What the upstream receives, and a Content-Length response split at
 * every byte reaching the client exactly; the upstream connection goes
 * back to the pool and carries the next request. */
static void test_content_length(void **st)
{
    (void)st;
    static const char resp[] = "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 5\r\nX-U: 1\r\n\r\nhello";
    char want[512];
    size_t wn = head(want, sizeof(want), "200 OK", "Content-Length: 5\r\nConnection: keep-alive\r\nX-U: 1\r\n");
    memcpy(want + wn, "hello", 5);
    wn += 5;
    for (size_t at = 1; at < sizeof(resp) - 1; at++) {
        start();
        fx_str(&cf, get_api);
        fx_split_at(&uf[0], resp, sizeof(resp) - 1, at);
        pump();
        fx_assert_out(&uf[0], get_api_up, sizeof(get_api_up) - 1);
        fx_assert_out(&cf, want, wn);
        assert_false(cf.closed);
        assert_false(uf[0].closed); /* pooled */
        finish();
    }

    /* the pooled connection takes the next request of the client */
    start();
    fx_str(&cf, get_api);
    fx_str(&uf[0], resp);
    pump();
    fx_str(&cf, get_api);
    fx_again(&uf[0]);
    fx_str(&uf[0], resp);
    pump();
    assert_int_equal(nopened, 1);
    char up2[512];
    memcpy(up2, get_api_up, sizeof(get_api_up) - 1);
    memcpy(up2 + sizeof(get_api_up) - 1, get_api_up, sizeof(get_api_up) - 1);
    fx_assert_out(&uf[0], up2, 2 * (sizeof(get_api_up) - 1));
    char want2[1024];
    memcpy(want2, want, wn);
    memcpy(want2 + wn, want, wn);
    fx_assert_out(&cf, want2, 2 * wn);
    finish();
}

/* A request body goes upstream as announced; the default HTTP/1.0 head
 * with Connection: close; the upstream taking 3 bytes per write. */
static void test_request_body(void **st)
{
    (void)st;
    static const char post[] = "POST /old/submit HTTP/1.1\r\nHost: example.com:8080\r\nContent-Type: a/b\r\n"
                               "Content-Length: 11\r\n\r\nhello world";
    static const char post_up[] = "POST /old/submit HTTP/1.0\r\nHost: old\r\nConnection: close\r\n"
                                  "Content-Length: 11\r\nContent-Type: a/b\r\n\r\nhello world";
    static const char resp[] = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    char want[512];
    size_t wn = head(want, sizeof(want), "201 Created", "Content-Length: 2\r\nConnection: keep-alive\r\n");
    memcpy(want + wn, "ok", 2);
    wn += 2;
    for (int stall = 0; stall <= 1; stall++) {
        start();
        uf[0].wmax = 3;
        uf[0].wstall = stall;
        uf[0].gate = sizeof(post_up) - 1; /* it answers once it has the request */
        fx_pieces(&cf, post, sizeof(post) - 1, 13);
        fx_str(&uf[0], resp);
        pump();
        fx_assert_out(&uf[0], post_up, sizeof(post_up) - 1);
        fx_assert_out(&cf, want, wn);
        assert_true(uf[0].closed); /* Connection: close: not pooled */
        finish();
    }

    /* a chunked body to an HTTP/1.1 upstream (unbuffered): after the head
     * alone it streams, decoded and framed again, what came at once one
     * chunk; come whole with the head, it goes with its length (NGINX) */
    static const char chunked[] = "POST /api/up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nX-T: t\r\n\r\n";
    static const char chunked_up[] = "POST /v1/up HTTP/1.1\r\nX-Real-IP: 127.0.0.1\r\nHost: backend\r\n"
                                     "Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n";
    static const char whole_up[] = "POST /v1/up HTTP/1.1\r\nX-Real-IP: 127.0.0.1\r\nHost: backend\r\n"
                                   "Content-Length: 5\r\n\r\nabcde";
    for (int whole = 0; whole <= 1; whole++) {
        const char *up = whole ? whole_up : chunked_up;
        start();
        uf[0].gate = strlen(up);
        if (whole)
            fx_str(&cf, chunked);
        else
            fx_split_at(&cf, chunked, sizeof(chunked) - 1, strstr(chunked, "\r\n\r\n") + 4 - chunked);
        fx_str(&uf[0], resp);
        pump();
        fx_assert_out(&uf[0], up, strlen(up));
        fx_assert_out(&cf, want, wn);
        finish();
    }
}

/* A chunked response is relayed chunked, decoded to the same body
 * whatever the split; in one piece, byte for byte. */
static void test_chunked_response(void **st)
{
    (void)st;
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-U: 2\r\n\r\n"
                               "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n";
    char want[512];
    size_t hn = head(want, sizeof(want), "200 OK", "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nX-U: 2\r\n");
    size_t wn = hn + (size_t)snprintf(want + hn, sizeof(want) - hn, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    start();
    fx_str(&cf, get_api);
    fx_str(&uf[0], resp);
    pump();
    fx_assert_out(&cf, want, wn);
    assert_false(uf[0].closed);
    finish();
    for (size_t at = 1; at < sizeof(resp) - 1; at++) {
        start();
        fx_str(&cf, get_api);
        fx_split_at(&uf[0], resp, sizeof(resp) - 1, at);
        pump();
        assert_true(cf.nout > hn);
        assert_memory_equal(cf.out, want, hn);
        char body[64];
        size_t bn = dechunk(&cf, hn, body, sizeof(body));
        assert_int_equal(bn, 11);
        assert_memory_equal(body, "hello world", 11);
        assert_false(uf[0].closed);
        finish();
    }
}

/* A body delimited by the upstream's close: chunked for an HTTP/1.1
 * client, as it came for an HTTP/1.0 one (then closed); a large body
 * through a client taking one byte per write. */
static void test_close_delimited(void **st)
{
    (void)st;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    char want[512];
    size_t hn = head(want, sizeof(want), "200 OK",
                     "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n");
    for (size_t at = 1; at < sizeof(resp) - 1; at += 3) {
        start();
        fx_str(&cf, get_api);
        fx_split_at(&uf[0], resp, sizeof(resp) - 1, at);
        fx_again(&uf[0]);
        fx_eof(&uf[0]);
        pump();
        assert_memory_equal(cf.out, want, hn);
        char body[64];
        assert_int_equal(dechunk(&cf, hn, body, sizeof(body)), 13);
        assert_memory_equal(body, "until the end", 13);
        assert_true(uf[0].closed);
        assert_false(cf.closed);
        finish();
    }

    /* HTTP/1.0 client: the body as it came, then the close */
    start();
    fx_str(&cf, "GET /api/x HTTP/1.0\r\nHost: example.com\r\n\r\n");
    fx_str(&uf[0], resp);
    fx_eof(&uf[0]);
    pump();
    size_t wn = head(want, sizeof(want), "200 OK", "Content-Type: text/plain\r\nConnection: close\r\n");
    memcpy(want + wn, "until the end", 13);
    fx_assert_out(&cf, want, wn + 13);
    assert_true(cf.closed);
    finish();

    /* 40000 bytes through a client that takes one byte and stalls, then
     * more than one buffer of the upstream's is waiting behind it */
    static char big[40100];
    int bh = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n");
    for (int i = 0; i < 40000; i++)
        big[bh + i] = (char)('a' + i % 26);
    start();
    cf.wmax = 1;
    cf.wstall = 1;
    fx_str(&cf, get_api);
    fx_pieces(&uf[0], big, (size_t)bh + 40000, 4096);
    pump();
    wn = head(want, sizeof(want), "200 OK", "Content-Length: 40000\r\nConnection: keep-alive\r\n");
    assert_int_equal(cf.nout, wn + 40000);
    assert_memory_equal(cf.out, want, wn);
    assert_memory_equal(cf.out + wn, big + bh, 40000);
    assert_false(uf[0].closed);
    finish();
}

/* The upstream closes (or resets) before a complete head: 502, the cause
 * in the error log, the client connection kept. */
static void test_upstream_gone(void **st)
{
    (void)st;
    char want[1024];
    size_t wn = fx_errpage(want, sizeof(want), 502, "Bad Gateway", 1);
    static const char *const partial[] = {"", "HTTP/1.1 200 OK\r\nContent-Le"};
    for (size_t i = 0; i < PV_NELEM(partial); i++) {
        start();
        fx_str(&cf, get_api);
        fx_str(&uf[0], partial[i]);
        fx_again(&uf[0]);
        fx_eof(&uf[0]);
        pump();
        fx_assert_out(&uf[0], get_api_up, sizeof(get_api_up) - 1);
        fx_assert_out(&cf, want, wn);
        assert_true(uf[0].closed);
        assert_false(cf.closed);
        assert_non_null(strstr(fx_log(), "upstream prematurely closed connection while reading response header "
                                         "from upstream, upstream: 127.0.0.1:9, client: 127.0.0.1"));
        finish();
    }

    start();
    fx_str(&cf, get_api);
    fx_error(&uf[0], ECONNRESET);
    pump();
    fx_assert_out(&cf, want, wn);
    assert_non_null(strstr(fx_log(), "recv() failed (104: Connection reset by peer) while reading response header "
                                     "from upstream"));
    finish();

    /* connect() refused */
    start();
    refuse = ECONNREFUSED;
    fx_str(&cf, get_api);
    pump();
    fx_assert_out(&cf, want, wn);
    assert_int_equal(nopened, 0);
    assert_non_null(strstr(fx_log(), "connect() failed (111: Connection refused) while connecting to upstream, "
                                     "upstream: 127.0.0.1:9"));
    finish();

    /* the body was cut after the head went out: the client is cut off */
    start();
    fx_str(&cf, get_api);
    fx_str(&uf[0], "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    fx_eof(&uf[0]);
    pump();
    size_t hn = head(want, sizeof(want), "200 OK", "Content-Length: 10\r\nConnection: keep-alive\r\n");
    memcpy(want + hn, "abc", 3);
    fx_assert_out(&cf, want, hn + 3);
    assert_true(cf.closed);
    assert_non_null(strstr(fx_log(), "upstream prematurely closed connection while reading upstream"));
    finish();
}

/* Bare LF line ends, taken as CRLF on both sides: the upstream gets a
 * CRLF head and the body's bare LFs unchanged; the client gets the
 * response as from a CRLF head, its body's bare LFs unchanged too,
 * wherever the response is split. */
static void test_bare_lf(void **st)
{
    (void)st;
    static const char post[] = "POST /old/submit HTTP/1.1\nHost: example.com:8080\r\nContent-Type: a/b\n"
                               "Content-Length: 7\n\nab\n\ncd\n";
    static const char post_up[] = "POST /old/submit HTTP/1.0\r\nHost: old\r\nConnection: close\r\n"
                                  "Content-Length: 7\r\nContent-Type: a/b\r\n\r\nab\n\ncd\n";
    static const char resp[] = "HTTP/1.1 200 OK\nX-U: 1\r\nContent-Length: 6\n\nx\n\ny\r\n";
    char want[512];
    size_t wn = head(want, sizeof(want), "200 OK", "Content-Length: 6\r\nConnection: keep-alive\r\nX-U: 1\r\n");
    memcpy(want + wn, "x\n\ny\r\n", 6);
    wn += 6;
    for (size_t at = 1; at < sizeof(resp) - 1; at++) {
        start();
        uf[0].gate = sizeof(post_up) - 1;
        fx_pieces(&cf, post, sizeof(post) - 1, at);
        fx_split_at(&uf[0], resp, sizeof(resp) - 1, at);
        pump();
        fx_assert_out(&uf[0], post_up, sizeof(post_up) - 1);
        fx_assert_out(&cf, want, wn);
        finish();
    }
}

/* An invalid response head is a 502 whatever its split. */
static void test_invalid_head(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nX-A: a\n b\nContent-Length: 0\n\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "garbage\r\n\r\n",
    };
    char want[1024];
    size_t wn = fx_errpage(want, sizeof(want), 502, "Bad Gateway", 1);
    for (size_t i = 0; i < PV_NELEM(bad); i++) {
        size_t len = strlen(bad[i]);
        for (size_t at = 1; at < len; at += 5) {
            start();
            fx_str(&cf, get_api);
            fx_split_at(&uf[0], bad[i], len, at);
            pump();
            fx_assert_out(&cf, want, wn);
            assert_true(uf[0].closed);
            if (!strstr(fx_log(), "upstream sent invalid header"))
                fail_msg("no log line for: %s", bad[i]);
            finish();
        }
    }
}

static int setup(void **st)
{
    (void)st;
    fx_worker_start(conf_text);
    pv_upstream_set_opener(fake_open);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    pv_upstream_set_opener(NULL);
    unlink(fx_logpath);
    return 0;
}

/* A 101 at every split turns both connections into a tunnel: the bytes
 * the client sent behind its head and those the upstream sent behind the
 * 101 go through first, then both ways; the client's close ends both and
 * the upstream connection is not pooled. */
static void test_upgrade_tunnel(void **st)
{
    (void)st;
    static const char req[] = "GET /ws/chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\nEARLY";
    static const char up_req[] = "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                                 "Host: backend\r\n\r\nEARLYping";
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\n\r\nHELLO";
    char want[512];
    size_t wn = head(want, sizeof(want), "101 Switching Protocols", "Connection: upgrade\r\nUpgrade: websocket\r\n");
    memcpy(want + wn, "HELLOpong", 9);
    for (size_t at = 1; at < sizeof(resp) - 1; at++) {
        start();
        fx_str(&cf, req);
        fx_split_at(&uf[0], resp, sizeof(resp) - 1, at);
        pump();
        fx_assert_out(&uf[0], up_req, sizeof(up_req) - 1 - 4);
        fx_assert_out(&cf, want, wn + 5);
        fx_str(&cf, "ping");
        fx_str(&uf[0], "pong");
        pump();
        fx_assert_out(&uf[0], up_req, sizeof(up_req) - 1);
        fx_assert_out(&cf, want, wn + 9);
        assert_false(cf.closed);
        fx_eof(&cf);
        pump();
        assert_true(cf.closed);
        assert_true(uf[0].closed); /* never pooled */
        finish();
    }
    /* the same 101 to a request without Upgrade is refused */
    start();
    fx_str(&cf, "GET /ws/x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    fx_str(&uf[0], resp);
    pump();
    char bad[1024];
    size_t bn = fx_errpage(bad, sizeof(bad), 502, "Bad Gateway", 1);
    fx_assert_out(&cf, bad, bn);
    assert_non_null(strstr(fx_log(), "101 Switching Protocols to a request that asked for no upgrade"));
    finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),   cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_chunked_response), cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_upstream_gone),    cmocka_unit_test(test_invalid_head),
        cmocka_unit_test(test_bare_lf),          cmocka_unit_test(test_upgrade_tunnel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
