/* Charset recoding (src/core/recode.c): NGINX's UTF-8 decoding, each
 * direction, and a UTF-8 sequence cut at every point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/recode.h"

static uint8_t page0[256], page4[256], *pages[256];
static uint8_t u8[256 * 4];

static void setup_tables(void)
{
    memset(pages, 0, sizeof(pages));
    pages[0] = page0, pages[4] = page4;
    for (int i = 0; i < 256; i++) {
        page0[i] = i < 128 ? (uint8_t)i : 0;
        u8[i * 4] = 1;
        u8[i * 4 + 1] = i < 128 ? (uint8_t)i : '?';
    }
    memset(page4, 0, sizeof(page4));
    page4[0x30] = 0xc1; /* U+0430 */
    memcpy(&u8[0xc1 * 4], "\x02\xd0\xb0", 3);
}

static uint32_t decode(const char *s, size_t n, size_t *used)
{
    const uint8_t *p = (const uint8_t *)s;
    uint32_t cp = pv_utf8_decode(&p, n);
    *used = (size_t)(p - (const uint8_t *)s);
    return cp;
}

static void test_decode(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(decode("\xd0\xb0", 2, &used), 0x430);
    assert_int_equal(used, 2);
    assert_int_equal(decode("\xf0\x9f\x98\x80", 4, &used), 0x1f600);
    assert_int_equal(decode("\xd0", 1, &used), PV_UTF8_INCOMPLETE);
    assert_int_equal(used, 0);
    assert_int_equal(decode("\xc0\x80", 2, &used), PV_UTF8_INVALID); /* overlong lead */
    assert_int_equal(used, 1);
    assert_int_equal(decode("\xc3" "A", 2, &used), PV_UTF8_INVALID); /* the ASCII byte goes too */
    assert_int_equal(used, 2);
    assert_int_equal(decode("\xe0\x80\x80", 3, &used), PV_UTF8_INVALID); /* overlong */
}

static size_t from(pv_recode_t *st, const char *in, size_t n, uint8_t *out)
{
    return pv_recode_from_utf8(st, pages, (const uint8_t *)in, n, out);
}

static void test_from_utf8(void **state)
{
    (void)state;
    setup_tables();
    const char in[] = "a\xd0\xb0\xe2\x82\xac\xf0\x9f\x98\x80\xff b\xd0";
    uint8_t out[PV_RECODE_MAX(sizeof(in))];
    pv_recode_t st = {{0}, 0};
    size_t k = from(&st, in, sizeof(in) - 1, out);
    assert_int_equal(st.nsaved, 1); /* the cut \xd0 waits */
    assert_memory_equal(out, "a\xc1&#8364;&#128512;?b", k);
    assert_int_equal(k, strlen("a\xc1&#8364;&#128512;?b"));
    k = from(&st, "\xb0!", 2, out);
    assert_memory_equal(out, "\xc1!", 2);
    assert_int_equal(k, 2);
}

/* a valid body gives the same bytes cut anywhere */
static void test_from_utf8_cut_anywhere(void **state)
{
    (void)state;
    setup_tables();
    const char in[] = "x\xd0\xb0y\xe2\x82\xacz\xf0\x9f\x98\x80.";
    size_t n = sizeof(in) - 1;
    uint8_t whole[256], cut[256];
    pv_recode_t st = {{0}, 0};
    size_t w = from(&st, in, n, whole);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            pv_recode_t s2 = {{0}, 0};
            size_t c = from(&s2, in, a, cut);
            c += from(&s2, in + a, b - a, cut + c);
            c += from(&s2, in + b, n - b, cut + c);
            assert_int_equal(c, w);
            assert_memory_equal(cut, whole, w);
        }
    }
}

static void test_to_utf8_and_bytes(void **state)
{
    (void)state;
    setup_tables();
    uint8_t out[64];
    const uint8_t in[] = {'a', 0xc1, 0xff};
    assert_true(pv_recode_to_utf8_needed(u8, in, 3));
    assert_false(pv_recode_to_utf8_needed(u8, in, 1));
    size_t k = pv_recode_to_utf8(u8, in, 3, out);
    assert_int_equal(k, 4);
    assert_memory_equal(out, "a\xd0\xb0?", 4);
    uint8_t table[256];
    for (int i = 0; i < 256; i++)
        table[i] = (uint8_t)i;
    table['X'] = 'Y';
    assert_false(pv_recode_bytes_needed(table, (const uint8_t *)"abc", 3));
    assert_true(pv_recode_bytes_needed(table, (const uint8_t *)"aXc", 3));
    k = pv_recode_bytes(table, (const uint8_t *)"aXc", 3, out);
    assert_memory_equal(out, "aYc", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_from_utf8),
        cmocka_unit_test(test_from_utf8_cut_anywhere),
        cmocka_unit_test(test_to_utf8_and_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
