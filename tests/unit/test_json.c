/* JSON parser: what RFC 8259 accepts is parsed, everything else refused
 * (with where), duplicate names refused, node counts exact, strings
 * unescaped to UTF-8, numbers converted at their limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/json.h"

#define MAXN 256

static pv_json_node_t g_nodes[MAXN];

/* Parse s with room for MAXN nodes; returns the rc. */
static int parse(pv_json_t *d, const char *s, unsigned depth)
{
    return pv_json_parse(d, s, strlen(s), g_nodes, MAXN, depth);
}

static void test_valid_documents(void **state)
{
    (void)state;
    static const char *ok[] = {
        "0", "-0", "1", "-1.5", "1e9", "1E+9", "2.5e-3", "123456789012345678901234567890", "true", "false",
        "null", "\"\"", "\"x\"", "[]", "{}", " \t\r\n[ 1 , 2 ]\n", "{\"a\":{\"b\":[true,false,null]}}",
        "[[],[[]],{}]", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\uFFFF\\ud83d\\ude00\"",
        "\"\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\"", "{\"a\":1,\"b\":1,\"A\":1}", "[{\"a\":1},{\"a\":2}]",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        pv_json_t d;
        if (parse(&d, ok[i], 16) != PV_OK)
            fail_msg("refused %s: %s at %zu", ok[i], d.err, d.erroff);
        assert_int_equal(d.n, pv_json_count(ok[i], strlen(ok[i]))); /* the count is exact */
        assert_true(d.n <= (strlen(ok[i]) + 1) / 2);
        assert_non_null(pv_json_root(&d));
    }
}

static void test_invalid_documents(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *err;
        size_t off;
    } bad[] = {
        {"", "unexpected end of text", 0},
        {"   ", "unexpected end of text", 3},
        {"[1,]", "unexpected character", 3},
        {"{\"a\":1,}", "expected member name", 7},
        {"{\"a\" 1}", "expected ':'", 5},
        {"[1 2]", "expected ',' or ']'", 3},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'", 7},
        {"[1]x", "trailing characters after the value", 3},
        {"1 2", "trailing characters after the value", 2},
        {"01", "leading zero in number", 1},
        {"-", "bad number", 1},
        {"1.", "bad number", 2},
        {".5", "unexpected character", 0},
        {"1e", "bad number", 2},
        {"+1", "unexpected character", 0},
        {"0x10", "trailing characters after the value", 1},
        {"NaN", "unexpected character", 0},
        {"Infinity", "unexpected character", 0},
        {"tru", "unexpected character", 0},
        {"nul", "unexpected character", 0},
        {"True", "unexpected character", 0},
        {"'a'", "unexpected character", 0},
        {"\"abc", "unterminated string", 4},
        {"\"a\\", "unterminated string", 2},
        {"\"\\x\"", "bad escape in string", 1},
        {"\"\\u12\"", "bad \\u escape", 1},
        {"\"\\u12G4\"", "bad \\u escape", 1},
        {"\"\\ud800\"", "unpaired surrogate in \\u escape", 1},
        {"\"\\ud800\\u0041\"", "unpaired surrogate in \\u escape", 1},
        {"\"\\udc00\"", "unpaired surrogate in \\u escape", 1},
        {"\"a\tb\"", "control character in string", 2},
        {"\"a\nb\"", "control character in string", 2},
        {"\"\xff\"", "invalid UTF-8 in string", 1},
        {"\"\xc0\x80\"", "invalid UTF-8 in string", 1},     /* overlong NUL */
        {"\"\xe0\x80\xaf\"", "invalid UTF-8 in string", 1}, /* overlong */
        {"\"\xed\xa0\x80\"", "invalid UTF-8 in string", 1}, /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string", 1}, /* above U+10FFFF */
        {"\"\xe2\x82\"", "invalid UTF-8 in string", 1},     /* truncated */
        {"\"\x80\"", "invalid UTF-8 in string", 1},
        {"{\"a\":1,\"a\":2}", "duplicate member name", 7},
        {"{\"a\":1,\"\\u0061\":2}", "duplicate member name", 7},
        {"{\"\\u00e9\":1,\"\xc3\xa9\":2}", "duplicate member name", 12},
        {"{\"a\":1,\"b\":{},\"a\":2}", "duplicate member name", 14},
        {"\xef\xbb\xbf{}", "unexpected character", 0},
        {"{} \v", "trailing characters after the value", 3},
        {"[\"a\" , \"\\uD834\\uDD1E\"", "expected ',' or ']'", 21},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pv_json_t d;
        if (parse(&d, bad[i].text, 16) != PV_ERR)
            fail_msg("accepted %s", bad[i].text);
        assert_int_equal(d.n, 0);
        if (strcmp(d.err, bad[i].err) != 0 || d.erroff != bad[i].off)
            fail_msg("%s: got \"%s\" at %zu, want \"%s\" at %zu", bad[i].text, d.err, d.erroff, bad[i].err,
                     bad[i].off);
    }
    /* an embedded NUL is an unexpected character, not an end */
    pv_json_t d;
    assert_int_equal(pv_json_parse(&d, "[1]\0", 4, g_nodes, MAXN, 4), PV_ERR);
    assert_int_equal(pv_json_parse(&d, "\"a\0b\"", 5, g_nodes, MAXN, 4), PV_ERR);
    assert_string_equal(d.err, "control character in string");
}

static void test_depth_and_capacity(void **state)
{
    (void)state;
    pv_json_t d;
    assert_int_equal(parse(&d, "[[[1]]]", 3), PV_OK);
    assert_int_equal(parse(&d, "[[[1]]]", 2), PV_ERR);
    assert_string_equal(d.err, "nesting too deep");
    assert_int_equal(d.erroff, 2);
    assert_int_equal(parse(&d, "{\"a\":{}}", 1), PV_ERR);
    assert_int_equal(parse(&d, "1", 0), PV_OK); /* scalars need no depth */
    assert_int_equal(parse(&d, "[]", 0), PV_ERR);
    /* a hard ceiling whatever the caller asks */
    char deep[2 * PV_JSON_DEPTH_MAX + 8];
    size_t n = PV_JSON_DEPTH_MAX + 1;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    pv_json_node_t *many = malloc(sizeof(*many) * (n + 1));
    assert_int_equal(pv_json_parse(&d, deep, 2 * n, many, n + 1, 100000), PV_ERR);
    assert_string_equal(d.err, "nesting too deep");
    assert_int_equal(pv_json_parse(&d, deep + 1, 2 * n - 2, many, n + 1, 100000), PV_OK);
    free(many);
    /* too few nodes */
    pv_json_node_t two[2];
    assert_int_equal(pv_json_parse(&d, "[1,2]", 5, two, 2, 4), PV_ERR);
    assert_string_equal(d.err, "too many values");
    pv_json_node_t three[3];
    assert_int_equal(pv_json_parse(&d, "[1,2]", 5, three, 3, 4), PV_OK);
    assert_int_equal(d.n, 3);
}

static void test_navigation(void **state)
{
    (void)state;
    static const char text[] = "{\"a\": [1, \"two\", {\"x\": null}], \"b\\u0021\": {}, \"c\": \"\"}";
    pv_json_t d;
    assert_int_equal(parse(&d, text, 8), PV_OK);
    const pv_json_node_t *root = pv_json_root(&d);
    assert_int_equal(root->type, PV_JSON_OBJECT);
    assert_int_equal(root->count, 3);
    const pv_json_node_t *a = pv_json_get(&d, root, "a", 1);
    assert_non_null(a);
    assert_int_equal(a->type, PV_JSON_ARRAY);
    assert_int_equal(a->count, 3);
    pv_str_t raw = pv_json_raw(&d, a);
    assert_int_equal(raw.len, strlen("[1, \"two\", {\"x\": null}]"));
    assert_memory_equal(raw.p, "[1, \"two\", {\"x\": null}]", raw.len);
    const pv_json_node_t *e = pv_json_first(&d, a);
    assert_int_equal(e->type, PV_JSON_NUMBER);
    e = pv_json_next(&d, e);
    assert_true(pv_json_streq(&d, e, "two", 3));
    raw = pv_json_raw(&d, e);
    assert_int_equal(raw.len, 5);
    assert_memory_equal(raw.p, "\"two\"", 5);
    e = pv_json_next(&d, e);
    assert_int_equal(e->type, PV_JSON_OBJECT);
    assert_int_equal(pv_json_get(&d, e, "x", 1)->type, PV_JSON_NULL);
    assert_null(pv_json_next(&d, e));
    /* member names compare unescaped */
    assert_non_null(pv_json_get(&d, root, "b!", 2));
    assert_null(pv_json_get(&d, root, "b\\u0021", 7));
    assert_null(pv_json_get(&d, root, "b", 1));
    assert_null(pv_json_get(&d, root, "missing", 7));
    assert_null(pv_json_get(&d, a, "a", 1)); /* not an object */
    assert_null(pv_json_first(&d, pv_json_get(&d, root, "b!", 2)));
    assert_int_equal(pv_json_get(&d, root, "c", 1)->len, 0);
    /* members in order: name, value, name, value ... */
    const char *names[] = {"a", "b!", "c"};
    size_t i = 0;
    for (const pv_json_node_t *k = pv_json_first(&d, root); k; k = pv_json_next(&d, pv_json_next(&d, k)))
        assert_true(pv_json_streq(&d, k, names[i], strlen(names[i])) && ++i);
    assert_int_equal(i, 3);
    assert_int_equal(pv_json_line("a\nb\nc", 5, 0), 1);
    assert_int_equal(pv_json_line("a\nb\nc", 5, 2), 2);
    assert_int_equal(pv_json_line("a\nb\nc", 5, 99), 3);
}

static void test_strings(void **state)
{
    (void)state;
    pv_json_t d;
    assert_int_equal(parse(&d, "\"plain\"", 1), PV_OK);
    const pv_json_node_t *n = pv_json_root(&d);
    pv_str_t s;
    char buf[64];
    assert_int_equal(pv_json_str(&d, n, NULL, 0, &s), PV_OK); /* no escapes: no copy */
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.p, "plain", 5);
    assert_int_equal(n->flags & PV_JSON_F_ESCAPED, 0);

    static const char esc[] = "\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t \\u0041\\u00e9\\u20AC\\uD83D\\uDE00\\u0000.\"";
    static const char want[] = "q\"b\\s/\b\f\n\r\t A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0.";
    assert_int_equal(parse(&d, esc, 1), PV_OK);
    n = pv_json_root(&d);
    assert_true(n->flags & PV_JSON_F_ESCAPED);
    assert_int_equal(pv_json_strlen(&d, n), sizeof(want) - 1);
    assert_int_equal(pv_json_str(&d, n, buf, sizeof(buf), &s), PV_OK);
    assert_ptr_equal(s.p, buf);
    assert_int_equal(s.len, sizeof(want) - 1);
    assert_memory_equal(s.p, want, s.len);
    assert_true(pv_json_streq(&d, n, want, sizeof(want) - 1));
    assert_false(pv_json_streq(&d, n, want, sizeof(want) - 2));
    assert_false(pv_json_streq(&d, n, "q", 1));
    assert_int_equal(pv_json_str(&d, n, buf, sizeof(want) - 2, &s), PV_ERR); /* one byte short */
    assert_int_equal(pv_json_str(&d, n, buf, sizeof(want) - 1, &s), PV_OK);
    /* not a string */
    assert_int_equal(parse(&d, "1", 1), PV_OK);
    assert_int_equal(pv_json_str(&d, pv_json_root(&d), buf, sizeof(buf), &s), PV_ERR);
    assert_false(pv_json_streq(&d, pv_json_root(&d), "1", 1));
    assert_int_equal(pv_json_strlen(&d, pv_json_root(&d)), 0);
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        int64_t v;
    } ints[] = {
        {"0", 1, 0},
        {"-0", 1, 0},
        {"42", 1, 42},
        {"-42", 1, -42},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0},
        {"-9223372036854775809", 0, 0},
        {"99999999999999999999", 0, 0},
        {"1.0", 0, 0},
        {"1e2", 0, 0},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        pv_json_t d;
        int64_t v = 12345;
        assert_int_equal(parse(&d, ints[i].text, 1), PV_OK);
        int rc = pv_json_int64(&d, pv_json_root(&d), &v);
        if (ints[i].ok) {
            assert_int_equal(rc, PV_OK);
            assert_true(v == ints[i].v);
        } else {
            assert_int_equal(rc, PV_ERR);
        }
    }
    pv_json_t d;
    double v = 0;
    assert_int_equal(parse(&d, "-1.5e3", 1), PV_OK);
    assert_int_equal(pv_json_root(&d)->flags & PV_JSON_F_INTEGER, 0);
    assert_int_equal(pv_json_double(&d, pv_json_root(&d), &v), PV_OK);
    assert_true(v == -1500.0);
    assert_int_equal(parse(&d, "1300819380", 1), PV_OK);
    assert_true(pv_json_root(&d)->flags & PV_JSON_F_INTEGER);
    assert_int_equal(pv_json_double(&d, pv_json_root(&d), &v), PV_OK);
    assert_true(v == 1300819380.0);
    assert_int_equal(parse(&d, "1e400", 1), PV_OK);
    assert_int_equal(pv_json_double(&d, pv_json_root(&d), &v), PV_OK);
    assert_true(v > 1e308);
    assert_int_equal(parse(&d, "\"1\"", 1), PV_OK);
    assert_int_equal(pv_json_double(&d, pv_json_root(&d), &v), PV_ERR);
    int64_t iv;
    assert_int_equal(pv_json_int64(&d, pv_json_root(&d), &iv), PV_ERR);
    /* longer than PV_JSON_NUMBER_MAX: parsed, not converted */
    char longnum[PV_JSON_NUMBER_MAX + 8];
    memset(longnum, '1', PV_JSON_NUMBER_MAX + 1);
    longnum[PV_JSON_NUMBER_MAX + 1] = '\0';
    assert_int_equal(parse(&d, longnum, 1), PV_OK);
    assert_int_equal(pv_json_double(&d, pv_json_root(&d), &v), PV_ERR);
}

/* pv_json_count is exact for valid texts even with tricky strings. */
static void test_count(void **state)
{
    (void)state;
    static const char *texts[] = {
        "{\"a\\\"]\":[1,-2e-3,\"x,y:[z\"],\"b\":{\"c\":true,\"d\":null}}",
        "[\"\\\\\",\"\\\\\\\"\",0,[],{}]",
        "  \"  \"  ",
    };
    static const size_t want[] = {12, 6, 1};
    for (size_t i = 0; i < 3; i++) {
        pv_json_t d;
        assert_int_equal(pv_json_count(texts[i], strlen(texts[i])), want[i]);
        assert_int_equal(parse(&d, texts[i], 8), PV_OK);
        assert_int_equal(d.n, want[i]);
    }
    assert_int_equal(pv_json_count("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_depth_and_capacity),
        cmocka_unit_test(test_navigation),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
