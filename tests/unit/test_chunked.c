/* Chunked decoder: valid streams in every split, and every framing error
 * that differs between lenient parsers refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/http/chunked.h"

/* Decode all of in, fed in pieces of `step` bytes; collect the data.
 * Returns 0 when complete, 1 when incomplete, -1 on error. */
static int decode_all(const char *in, size_t len, size_t step, char *out, size_t *outlen, size_t *consumed)
{
    pv_chunked_t c;
    pv_chunked_init(&c);
    size_t off = 0, o = 0;
    while (off < len && !c.done) {
        size_t n = len - off < step ? len - off : step;
        size_t fed = 0;
        while (fed < n && !c.done) {
            pv_str_t spans[4];
            int ns = 0;
            ssize_t used = pv_chunked_decode(&c, in + off + fed, n - fed, spans, &ns, 4);
            if (used < 0)
                return -1;
            for (int i = 0; i < ns; i++) {
                memcpy(out + o, spans[i].p, spans[i].len);
                o += spans[i].len;
            }
            fed += (size_t)used;
        }
        off += fed;
    }
    *outlen = o;
    if (consumed)
        *consumed = off;
    return c.done ? 0 : 1;
}

static void test_valid_every_split(void **state)
{
    (void)state;
    const char *msg = "5\r\nhello\r\n6;ext=1;q=\"a;b\"\r\n world\r\n000\r\nX-Trailer: yes\r\n\r\nGET /next";
    size_t body_end = strlen(msg) - strlen("GET /next");
    for (size_t step = 1; step <= strlen(msg); step++) {
        char out[64];
        size_t ol = 0, used = 0;
        assert_int_equal(decode_all(msg, strlen(msg), step, out, &ol, &used), 0);
        assert_int_equal(ol, 11);
        assert_memory_equal(out, "hello world", 11);
        assert_int_equal(used, body_end); /* stops exactly at the message end */
    }
}

static void test_uppercase_hex_and_large(void **state)
{
    (void)state;
    char buf[300], out[300];
    memset(buf, 0, sizeof(buf));
    strcpy(buf, "1A\r\n");
    memset(buf + 4, 'x', 26);
    strcpy(buf + 30, "\r\n0\r\n\r\n");
    size_t ol;
    assert_int_equal(decode_all(buf, strlen(buf), 7, out, &ol, NULL), 0);
    assert_int_equal(ol, 26);
}

static void test_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        "5\nhello\r\n0\r\n\r\n",          /* bare LF after size */
        "5\r\nhello\n0\r\n\r\n",          /* bare LF after data */
        "5\r\nhelloX\r\n0\r\n\r\n",       /* data longer than size */
        "\r\n",                           /* no digits */
        "-5\r\nhello\r\n0\r\n\r\n",       /* sign */
        "0x5\r\nhello\r\n0\r\n\r\n",      /* prefix */
        "5 \r\nhello\r\n0\r\n\r\n",       /* whitespace not followed by an extension */
        "fffffffffffffffff\r\n",          /* overflow */
        "5;a\"b\r\nhello\r\n0\r\n\r\n",   /* quote inside a token */
        "5;=1\r\nhello\r\n0\r\n\r\n",      /* extension without a name */
        "5;a b\r\nhello\r\n0\r\n\r\n",     /* two names without ';' */
        "5;q=\"a\rb\"\r\nhello\r\n0\r\n\r\n", /* CR inside quoted string */
        "0\r\nX: a\nY: b\r\n\r\n",        /* bare LF in trailer */
        "0\r\n folded\r\n\r\n",           /* obs-fold in trailer */
        "0\r\n\r\r",                      /* bad final CRLF */
        "5\r\nhello\r\n0\r\n\n",          /* bare LF final */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        size_t ol;
        int rc = decode_all(bad[i], strlen(bad[i]), 64, out, &ol, NULL);
        assert_int_equal(rc, -1);
    }
}

static void test_incomplete(void **state)
{
    (void)state;
    char out[64];
    size_t ol;
    assert_int_equal(decode_all("5\r\nhel", 6, 64, out, &ol, NULL), 1);
    assert_int_equal(ol, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_every_split),
        cmocka_unit_test(test_uppercase_hex_and_large),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_incomplete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
