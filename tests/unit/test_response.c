/* Upstream response parser: framing and keepalive decisions, interim
 * heads, every head the relay must refuse, and the same answer whatever
 * the bytes' split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/upstream/response.h"

static pv_uresp_t rp;
static char buf[65536]; /* the bytes as the proxy holds them: the head expanded, then the rest */
static size_t buf_len;

/* Parse the head of s fed in pieces of step bytes into buf, as the proxy
 * reads them. Returns PV_URESP_* and the head's length in buf in *head;
 * buf then holds the rest of s after it. */
static int parse_step(const char *s, size_t len, size_t step, int head_req, size_t *head)
{
    size_t off = 0, pos = 0, used = 0;
    pv_uresp_init(&rp, head_req);
    buf_len = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        memcpy(buf + buf_len, s + off, n);
        buf_len += n;
        off += n;
        size_t l = buf_len - pos;
        int rc = pv_uresp_parse(&rp, buf + pos, &l, sizeof(buf) - pos, &used);
        buf_len = pos + l;
        if (rc == PV_URESP_DONE) {
            *head = pos + used;
            memcpy(buf + buf_len, s + off, len - off);
            buf_len += len - off;
            return rc;
        }
        if (rc != PV_URESP_AGAIN)
            return rc;
        pos = buf_len;
    }
    return PV_URESP_AGAIN;
}

static int parse(const char *s, int head_req)
{
    size_t head = 0;
    return parse_step(s, strlen(s), strlen(s), head_req, &head);
}

/* The body after the head in buf, decoded into out. Returns the bytes of body. */
static size_t body(size_t head, char *out)
{
    size_t off = head, o = 0;
    while (off < buf_len && !rp.body_done) {
        pv_str_t spans[4];
        int ns = 0;
        ssize_t used = pv_uresp_body(&rp, buf + off, buf_len - off, spans, &ns, 4);
        assert_true(used >= 0);
        for (int i = 0; i < ns; i++) {
            memcpy(out + o, spans[i].p, spans[i].len);
            o += spans[i].len;
        }
        off += (size_t)used;
    }
    return o;
}

static void test_content_length(void **st)
{
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
    size_t head = 0;
    char out[64];
    assert_int_equal(parse_step(s, strlen(s), strlen(s), 0, &head), PV_URESP_DONE);
    assert_int_equal(head, strstr(s, "hello") - s);
    assert_int_equal(rp.status, 200);
    assert_true(rp.reason.len == 2 && memcmp(rp.reason.p, "OK", 2) == 0);
    assert_int_equal(rp.frame, PV_FRAME_LENGTH);
    assert_int_equal(rp.content_length, 5);
    assert_true(rp.keepalive);
    assert_int_equal(rp.nfields, 2);
    assert_true(rp.fields[1].value.len == 1 && rp.fields[1].value.p[0] == '5');
    assert_int_equal(body(head, out), 5);
    assert_memory_equal(out, "hello", 5);
    assert_true(rp.body_done);
}

static void test_chunked(void **st)
{
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nT: 1\r\n\r\n";
    size_t head = 0;
    char out[64];
    assert_int_equal(parse_step(s, strlen(s), 3, 0, &head), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_CHUNKED);
    assert_int_equal(rp.content_length, -1);
    assert_int_equal(body(head, out), 6);
    assert_memory_equal(out, "hello!", 6);
    assert_true(rp.body_done);
    /* a broken chunk size is a framing error */
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_int_equal(parse_step(s, strlen(s), strlen(s), 0, &head), PV_URESP_DONE);
    pv_str_t spans[2];
    int ns;
    assert_int_equal(pv_uresp_body(&rp, buf + head, buf_len - head, spans, &ns, 2), -1);
}

static void test_interim(void **st)
{
    (void)st;
    const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    for (size_t step = 1; step <= strlen(s); step++) {
        size_t head = 0;
        assert_int_equal(parse_step(s, strlen(s), step, 0, &head), PV_URESP_DONE);
        assert_int_equal(head, strlen(s));
        assert_int_equal(rp.status, 201);
        assert_int_equal(rp.ninterim, 2);
        assert_int_equal(rp.nfields, 1);
        assert_int_equal(rp.frame, PV_FRAME_NONE);
        assert_true(rp.has_cl && rp.body_done);
    }
}

static void test_no_body(void **st)
{
    (void)st;
    assert_int_equal(parse("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_NONE);
    assert_true(rp.body_done && rp.keepalive);
    assert_int_equal(parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 0), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_NONE);
    /* a HEAD response announces a body it does not carry */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 1), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_NONE);
    assert_int_equal(rp.content_length, 100);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_NONE);
}

static void test_keepalive(void **st)
{
    (void)st;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", 0), PV_URESP_DONE);
    assert_false(rp.keepalive);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", 0), PV_URESP_DONE);
    assert_false(rp.keepalive);
    assert_int_equal(rp.http_minor, 0);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", 0),
                     PV_URESP_DONE);
    assert_true(rp.keepalive);
    /* a body delimited by the close never allows reuse */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", 0), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_CLOSE);
    assert_false(rp.keepalive);
}

static void test_refused(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nX-A: a\n\tb\nContent-Length: 0\n\n",
        "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTPT/1.1 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i], 0);
        if (rc != PV_URESP_ERR)
            fail_msg("accepted: %s", bad[i]);
    }
    /* even identical repeated lengths: llhttp refuses them */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 0), PV_URESP_ERR);
    assert_non_null(rp.error);
}

static void test_too_many_fields(void **st)
{
    (void)st;
    static char s[8192];
    size_t n = (size_t)snprintf(s, sizeof(s), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < PV_URESP_MAX_FIELDS; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "X-%d: v\r\n", i);
    snprintf(s + n, sizeof(s) - n, "\r\n");
    assert_int_equal(parse(s, 0), PV_URESP_DONE);
    assert_int_equal(rp.nfields, PV_URESP_MAX_FIELDS);
    snprintf(s + n, sizeof(s) - n, "X-last: v\r\n\r\n");
    assert_int_equal(parse(s, 0), PV_URESP_ERR);
    assert_non_null(rp.error); /* llhttp stopped it: its reason is logged */
}

static void test_incomplete(void **st)
{
    (void)st;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Le", 0), PV_URESP_AGAIN);
    /* trailing OWS is trimmed from values */
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX-A: v \t\r\nContent-Length: 0\r\n\r\n", 0), PV_URESP_DONE);
    assert_int_equal(rp.fields[0].value.len, 1);
}

/* A head with bare LF line ends is taken as its CRLF form (NGINX takes
 * LF alone); the body after it arrives unchanged, bare LFs and all. */
static void test_bare_lf(void **st)
{
    (void)st;
    static const char *const heads[] = {
        "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 9\n\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\nContent-Length: 9\r\n\n",
        "HTTP/1.1 200 OK\nContent-Type: text/plain\r\nContent-Length: 9\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\n",
    };
    const char *crlf = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n";
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char s[256];
        snprintf(s, sizeof(s), "%sa\nb\n\nc\r\ndEXTRA", heads[i]);
        for (size_t step = 1; step <= strlen(s); step++) {
            size_t head = 0;
            char out[64];
            assert_int_equal(parse_step(s, strlen(s), step, 0, &head), PV_URESP_DONE);
            assert_int_equal(head, strlen(crlf));
            assert_memory_equal(buf, crlf, head);
            assert_int_equal(rp.status, 200);
            assert_int_equal(rp.nfields, 2);
            assert_true(rp.fields[1].value.len == 1 && rp.fields[1].value.p[0] == '9');
            assert_true(rp.reason.len == 2 && memcmp(rp.reason.p, "OK", 2) == 0);
            assert_int_equal(body(head, out), 9);
            assert_memory_equal(out, "a\nb\n\nc\r\nd", 9);
            assert_memory_equal(buf + head + 9, "EXTRA", 5);
        }
    }
    /* interim heads with bare LFs, the final one too */
    const char *s = "HTTP/1.1 100 Continue\n\nHTTP/1.1 103 Early Hints\nLink: </a>\n\n"
                    "HTTP/1.1 201 Created\nContent-Length: 2\n\n\n\n";
    for (size_t step = 1; step <= strlen(s); step++) {
        size_t head = 0;
        char out[8];
        assert_int_equal(parse_step(s, strlen(s), step, 0, &head), PV_URESP_DONE);
        assert_int_equal(rp.status, 201);
        assert_int_equal(rp.ninterim, 2);
        assert_int_equal(body(head, out), 2);
        assert_memory_equal(out, "\n\n", 2);
    }
    /* a chunked body keeps its own rule: a bare LF in its framing is invalid */
    s = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n";
    size_t head = 0;
    assert_int_equal(parse_step(s, strlen(s), strlen(s), 0, &head), PV_URESP_DONE);
    assert_int_equal(rp.frame, PV_FRAME_CHUNKED);
    pv_str_t spans[2];
    int ns;
    assert_int_equal(pv_uresp_body(&rp, buf + head, buf_len - head, spans, &ns, 2), -1);
}

/* No room for the CRs: PV_URESP_FULL and nothing changed; with room, the
 * head is taken. */
static void test_bare_lf_full(void **st)
{
    (void)st;
    char b[64];
    const char *s = "HTTP/1.1 204 No Content\nX-A: 1\n\n";
    size_t n = strlen(s), l = n, used = 0;
    memcpy(b, s, n);
    pv_uresp_init(&rp, 0);
    assert_int_equal(pv_uresp_parse(&rp, b, &l, n + 2, &used), PV_URESP_FULL);
    assert_int_equal(l, n);
    assert_memory_equal(b, s, n);
    pv_uresp_init(&rp, 0);
    assert_int_equal(pv_uresp_parse(&rp, b, &l, n + 3, &used), PV_URESP_DONE);
    assert_int_equal(l, n + 3);
    assert_int_equal(used, n + 3);
    assert_int_equal(rp.status, 204);
}

/* Parse s whole for a request that asked for an upgrade. */
static int parse_upgrade(const char *s, size_t *head)
{
    size_t len = strlen(s);
    memcpy(buf, s, len);
    pv_uresp_init(&rp, 0);
    rp.upgrade_asked = 1;
    return pv_uresp_parse(&rp, buf, &len, sizeof(buf), head);
}

/* A 101 is final for a request that asked to switch, with the bytes
 * after it left for the new protocol; without Upgrade, or unasked, it is
 * refused with a reason. */
static void test_upgrade(void **st)
{
    (void)st;
    size_t head = 0;
    const char *ok = "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                     "\x81\x05hello";
    assert_int_equal(parse_upgrade(ok, &head), PV_URESP_DONE);
    assert_int_equal(rp.status, 101);
    assert_int_equal(rp.ninterim, 1);
    assert_int_equal(strlen(ok) - head, 7);
    assert_int_equal(rp.frame, PV_FRAME_NONE);
    assert_true(rp.body_done);
    assert_false(rp.keepalive);

    assert_int_equal(parse_upgrade("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", &head),
                     PV_URESP_ERR);
    assert_string_equal(rp.error, "101 Switching Protocols without Upgrade");
    assert_int_equal(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0), PV_URESP_ERR);
    assert_string_equal(rp.error, "101 Switching Protocols to a request that asked for no upgrade");
    /* other answers to an upgrade request are ordinary responses */
    assert_int_equal(parse_upgrade("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &head), PV_URESP_DONE);
    assert_int_equal(rp.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length), cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_interim),        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_keepalive),      cmocka_unit_test(test_refused),
        cmocka_unit_test(test_too_many_fields), cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_bare_lf),        cmocka_unit_test(test_bare_lf_full),
        cmocka_unit_test(test_upgrade),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
