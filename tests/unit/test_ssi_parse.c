/* The SSI command parser: NGINX's grammar, every split of the input
 * giving the same result, bounded names, values and parameter counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "../../src/http/ssi_parse.h"

/* Parse in, fed `step` bytes at a time, into a rendering: text as it is,
 * a command as [name k=v k=v], a malformed one as [ERR], and at the end
 * {HELD} when the stream ended inside a tag or a command. */
static void render(const char *in, size_t step, size_t value_len, char *out, size_t cap)
{
    static char vbuf[(PV_SSI_PARAMS_MAX + 1) * 256];
    pv_ssi_parser_t p;
    assert_true(pv_ssi_vbuf_size(value_len) <= sizeof(vbuf));
    pv_ssi_init(&p, value_len, vbuf);
    size_t len = strlen(in), off = 0, o = 0;
    out[0] = '\0';
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t done = 0;
        while (done < n) {
            pv_str_t text[2];
            int nt;
            size_t used;
            int rc = pv_ssi_parse(&p, in + off + done, n - done, &used, text, &nt);
            assert_true(used <= n - done);
            for (int i = 0; i < nt; i++)
                o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)text[i].len, text[i].p);
            if (rc == PV_SSI_COMMAND) {
                o += (size_t)snprintf(out + o, cap - o, "[%s", p.cmd);
                for (int i = 0; i < p.nparams; i++) {
                    pv_str_t v = pv_ssi_value(&p, i);
                    o += (size_t)snprintf(out + o, cap - o, " %s=%.*s", p.params[i].name, (int)v.len, v.p);
                }
                o += (size_t)snprintf(out + o, cap - o, "]");
            } else if (rc == PV_SSI_BAD) {
                o += (size_t)snprintf(out + o, cap - o, "[ERR]");
            } else {
                assert_int_equal(used, n - done);
            }
            done += used;
        }
        off += n;
    }
    if (pv_ssi_pending(&p))
        snprintf(out + o, cap - o, "{HELD}");
}

/* in gives want, whatever the split. */
static void check(const char *in, size_t value_len, const char *want)
{
    for (size_t step = 1; step <= strlen(in) + 1; step++) {
        char out[2048];
        render(in, step, value_len, out, sizeof(out));
        if (strcmp(out, want) != 0)
            fail_msg("step %zu: \"%s\" gave \"%s\", want \"%s\"", step, in, out, want);
    }
}

static void test_commands(void **state)
{
    (void)state;
    check("a<!--#include virtual=\"/x\" -->b", 256, "a[include virtual=/x]b");
    check("<!--#echo var='v'-->", 256, "[echo var=v]");
    check("<!--#  echo \r\n var = \"x\"\t -->", 256, "[echo var=x]");
    check("<!--#endif-->", 256, "[endif]");
    check("<!--#set var=\"a\" value=\"b c\" --><!--#echo var=\"a\" -->", 256, "[set var=a value=b c][echo var=a]");
    /* backslashes are kept for the value's evaluation */
    check("<!--#echo var=\"a\\\"b\\\\\" -->", 256, "[echo var=a\\\"b\\\\]");
    check("<!--#if expr='$a = /x-->y/' -->", 256, "[if expr=$a = /x-->y/]");
}

static void test_text(void **state)
{
    (void)state;
    check("plain <b>text</b>", 256, "plain <b>text</b>");
    check("<!-- a comment --> <!- <!x <<!--#x-->", 256, "<!-- a comment --> <!- <!x <[x]");
    check("<<<!--#a-->", 256, "<<[a]");
    check("<!--<!--#a-->", 256, "<!--[a]");
    check("<!--!", 256, "<!--!");
    /* held at the end (NGINX outputs nothing of them) */
    check("abc<!-", 256, "abc{HELD}");
    check("abc<", 256, "abc{HELD}");
    check("abc<!--#inc", 256, "abc{HELD}");
}

static void test_errors(void **state)
{
    (void)state;
    /* value before its quote, stray symbols, a parameter without a value */
    check("a<!--#echo var=x -->b", 256, "a[ERR]b");
    check("a<!--#echo var=\"x\"y -->b", 256, "a[ERR]b");
    check("a<!--#echo var -->b", 256, "a[ERR]b");
    check("a<!--#echo var-->b", 256, "a[ERR]b");
    check("a<!--#echo -x-->b", 256, "a[ERR]b");
    check("a<!--#echo --->b-->c", 256, "a[ERR]c");
    /* the error skips to the first "-->", even inside quotes */
    check("<!--#echo var=x \"-->\" -->", 256, "[ERR]\" -->");
    /* "<!--#-->": "-" is the command's name, then '>' is unexpected */
    check("<!--#-->t-->u", 256, "[ERR]u");
}

static void test_limits(void **state)
{
    (void)state;
    char in[600], want[600];
    /* a name of 32 is taken, 33 is not */
    snprintf(in, sizeof(in), "<!--#%s -->", "abcdefghijklmnopqrstuvwxyz012345");
    check(in, 256, "[abcdefghijklmnopqrstuvwxyz012345]");
    snprintf(in, sizeof(in), "<!--#%s -->", "abcdefghijklmnopqrstuvwxyz0123456");
    check(in, 256, "[ERR]");
    snprintf(in, sizeof(in), "<!--#x %s=\"v\" -->", "abcdefghijklmnopqrstuvwxyz012345");
    check(in, 256, "[x abcdefghijklmnopqrstuvwxyz012345=v]");
    snprintf(in, sizeof(in), "<!--#x %s=\"v\" -->", "abcdefghijklmnopqrstuvwxyz0123456");
    check(in, 256, "[ERR]");
    /* values of value_len bytes are taken, longer ones are not */
    check("<!--#x a=\"12345678\" -->", 8, "[x a=12345678]");
    check("<!--#x a=\"123456789\" -->", 8, "[ERR]");
    check("<!--#x a=\"1234567\\8\" -->", 8, "[ERR]");
    /* 16 parameters, then 17 */
    size_t o = (size_t)snprintf(in, sizeof(in), "<!--#x");
    size_t w = (size_t)snprintf(want, sizeof(want), "[x");
    for (int i = 0; i < 16; i++) {
        o += (size_t)snprintf(in + o, sizeof(in) - o, " p%d=\"%d\"", i, i);
        w += (size_t)snprintf(want + w, sizeof(want) - w, " p%d=%d", i, i);
    }
    snprintf(in + o, sizeof(in) - o, " -->");
    snprintf(want + w, sizeof(want) - w, "]");
    check(in, 64, want);
    snprintf(in + o, sizeof(in) - o, " q=\"-->\" -->");
    check(in, 64, "[ERR]");
}

/* Variables for the evaluation tests: a=1, b_c=/abs, empty= (set, empty). */
static int lookup(void *ctx, pv_str_t name, pv_str_t *val)
{
    (void)ctx;
    static const char *vars[][2] = {{"a", "1"}, {"b_c", "/abs"}, {"empty", ""}};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (strlen(vars[i][0]) == name.len && strncasecmp(vars[i][0], name.p, name.len) == 0) {
            *val = (pv_str_t){vars[i][1], strlen(vars[i][1])};
            return 1;
        }
    return 0;
}

/* text evaluates to want (NULL: want_rc) with flags, base "/dir/page.html". */
static void eval_check(const char *text, int flags, const char *want, ssize_t want_rc)
{
    char out[256];
    pv_str_t t = {text, strlen(text)}, base = {"/dir/page.html", 14};
    ssize_t n = pv_ssi_eval(t, flags, base, lookup, NULL, out, sizeof(out));
    ssize_t m = pv_ssi_eval(t, flags, base, lookup, NULL, NULL, 0);
    if (!want) {
        assert_int_equal(n, want_rc);
        return;
    }
    if (n < 0 || (size_t)n != strlen(want) || memcmp(out, want, (size_t)n) != 0)
        fail_msg("\"%s\" gave \"%.*s\" (%zd), want \"%s\"", text, n < 0 ? 0 : (int)n, out, n, want);
    assert_int_equal(m, n); /* measuring gives the same length */
}

static void test_eval(void **state)
{
    (void)state;
    eval_check("plain", 0, "plain", 0);
    eval_check("x$a${a}y${b_c}", 0, "x11y/abs", 0);
    eval_check("$A$nothing-$a", 0, "1-1", 0);
    eval_check("$a.$a", 0, "1.1", 0);
    /* backslashes: before \\ ' \" $ they quote it, elsewhere they stay */
    eval_check("\\$a \\\\ \\' \\x", 0, "$a \\ ' \\x", 0);
    eval_check("\\$a$a\\\"", 0, "$a1\"", 0);
    eval_check("no var \\$", 0, "no var $", 0);
    /* bad variables */
    eval_check("x$", 0, NULL, PV_SSI_EVAL_BAD);
    eval_check("x${", 0, NULL, PV_SSI_EVAL_BAD);
    eval_check("x${a", 0, NULL, PV_SSI_EVAL_BAD);
    eval_check("x${a-}", 0, NULL, PV_SSI_EVAL_BAD);
    eval_check("x$-", 0, NULL, PV_SSI_EVAL_BAD);
    /* include virtual=: relative to the page's directory */
    eval_check("inc.html", PV_SSI_ADD_PREFIX, "/dir/inc.html", 0);
    eval_check("/inc.html", PV_SSI_ADD_PREFIX, "/inc.html", 0);
    eval_check("$a/x", PV_SSI_ADD_PREFIX, "/dir/1/x", 0);
    eval_check("$b_c/x", PV_SSI_ADD_PREFIX, "/abs/x", 0);
    eval_check("$empty$nothing/x", PV_SSI_ADD_PREFIX, "/x", 0);
    eval_check("$empty", PV_SSI_ADD_PREFIX, "", 0);
    /* too long for the output */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    eval_check(big, 0, NULL, PV_SSI_EVAL_LONG);
}

/* expr splits into want_left, op, want_right (NULL: invalid). */
static void if_check(const char *expr, const char *want_left, int op, const char *want_right, int regex)
{
    char buf[128];
    pv_ssi_if_t e;
    snprintf(buf, sizeof(buf), "%s", expr);
    int rc = pv_ssi_if_split(buf, strlen(buf), &e);
    if (!want_left) {
        assert_int_equal(rc, PV_ERR);
        return;
    }
    assert_int_equal(rc, PV_OK);
    if (e.left.len != strlen(want_left) || memcmp(e.left.p, want_left, e.left.len) != 0)
        fail_msg("\"%s\": left \"%.*s\"", expr, (int)e.left.len, e.left.p);
    assert_int_equal(e.op, op);
    if (op != PV_SSI_IF_TEST &&
        (e.right.len != strlen(want_right) || memcmp(e.right.p, want_right, e.right.len) != 0))
        fail_msg("\"%s\": right \"%.*s\"", expr, (int)e.right.len, e.right.p);
    assert_int_equal(e.regex, regex);
}

static void test_if_split(void **state)
{
    (void)state;
    if_check("$A_b", "$a_b", PV_SSI_IF_TEST, NULL, 0);
    if_check("${Foo}", "${foo}", PV_SSI_IF_TEST, NULL, 0);
    if_check("", "", PV_SSI_IF_TEST, NULL, 0);
    if_check("$a = text", "$a", PV_SSI_IF_EQ, "text", 0);
    if_check("$a=Text", "$a", PV_SSI_IF_EQ, "Text", 0);
    if_check("$a  !=  /^x(y)$/", "$a", PV_SSI_IF_NE, "^x(y)$", 1);
    if_check("$a = \\/x/", "$a", PV_SSI_IF_EQ, "/x/", 0);
    if_check("$a = /", "$a", PV_SSI_IF_EQ, "/", 0);
    if_check("$a = ", "$a", PV_SSI_IF_EQ, "", 0);
    if_check("$a = /x", NULL, 0, NULL, 0);
    if_check("$a == b", "$a", PV_SSI_IF_EQ, "= b", 0);
    if_check("$a ! b", NULL, 0, NULL, 0);
    if_check("$a-b", NULL, 0, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_if_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
