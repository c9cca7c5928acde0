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

/* Parse the head of s fed in pieces of step bytes. Returns PV_URESP_* and
 * the head's length in *head. */
static int parse_step(const char *s, size_t len, size_t step, int head_req, size_t *head)
{
    size_t off = 0, used = 0;
    pv_uresp_init(&rp, head_req);
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        int rc = pv_uresp_parse(&rp, s + off, n, &used);
        if (rc == PV_URESP_DONE) {
            *head = off + used;
            return rc;
        }
        if (rc == PV_URESP_ERR)
            return rc;
        off += n;
    }
    return PV_URESP_AGAIN;
}

static int parse(const char *s, int head_req)
{
    size_t head = 0;
    return parse_step(s, strlen(s), strlen(s), head_req, &head);
}

/* The body after the head, decoded into out. Returns the bytes of body. */
static size_t body(const char *s, size_t head, char *out)
{
    size_t off = head, len = strlen(s), o = 0;
    while (off < len && !rp.body_done) {
        pv_str_t spans[4];
        int ns = 0;
        ssize_t used = pv_uresp_body(&rp, s + off, len - off, spans, &ns, 4);
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
    assert_int_equal(body(s, head, out), 5);
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
    assert_int_equal(body(s, head, out), 6);
    assert_memory_equal(out, "hello!", 6);
    assert_true(rp.body_done);
    /* a broken chunk size is a framing error */
    s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_int_equal(parse_step(s, strlen(s), strlen(s), 0, &head), PV_URESP_DONE);
    pv_str_t spans[2];
    int ns;
    assert_int_equal(pv_uresp_body(&rp, s + head, strlen(s) - head, spans, &ns, 2), -1);
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
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length), cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_interim),        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_keepalive),      cmocka_unit_test(test_refused),
        cmocka_unit_test(test_too_many_fields), cmocka_unit_test(test_incomplete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
