/* libFuzzer target: charset recoding (src/core/recode.c).
 *
 * Input: byte 0 picks the direction (from UTF-8, to UTF-8, bytes), bytes
 * 1 and 2 two cut points; the rest is the body, given in up to three
 * pieces. Every piece's output fits PV_RECODE_MAX(); the state keeps at
 * most three bytes; and a body of valid UTF-8 recodes the same whole or
 * cut anywhere. The table maps a few code points, taken from the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/recode.h"

static uint8_t page0[256], page4[256], page22[256], *pages[256];
static uint8_t u8[256 * 4], bytes[256];

static void tables(void)
{
    pages[0] = page0, pages[0x04] = page4, pages[0x22] = page22;
    for (int i = 0; i < 256; i++) {
        page0[i] = i < 128 ? (uint8_t)i : 0;
        page4[i] = (uint8_t)(0x80 | (i & 0x7f));
        page22[i] = i & 1 ? (uint8_t)(0xc0 | (i & 0x3f)) : 0;
        bytes[i] = (uint8_t)(i < 128 ? i : 255 - i);
        uint8_t *t = &u8[i * 4];
        if (i < 128) {
            t[0] = 1, t[1] = (uint8_t)i;
        } else if (i < 192) {
            t[0] = 2, t[1] = 0xd0, t[2] = (uint8_t)(0x80 | (i & 0x3f));
        } else {
            t[0] = 3, t[1] = 0xe2, t[2] = 0x88, t[3] = (uint8_t)(0x80 | (i & 0x3f));
        }
    }
}

static size_t run(int mode, pv_recode_t *st, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t k;
    if (mode == 0)
        k = pv_recode_from_utf8(st, pages, in, n, out);
    else if (mode == 1)
        k = pv_recode_to_utf8(u8, in, n, out);
    else
        k = pv_recode_bytes(bytes, in, n, out);
    if (k > PV_RECODE_MAX(n) || st->nsaved > 3)
        abort();
    return k;
}

/* every sequence decodes to a code point, none cut at the end */
static int valid_utf8(const uint8_t *p, size_t n)
{
    const uint8_t *e = p + n;
    while (p < e) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (pv_utf8_decode(&p, (size_t)(e - p)) > 0x10ffff)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (!pages[0])
        tables();
    int mode = data[0] % 3;
    const uint8_t *body = data + 3;
    size_t n = size - 3, a = n ? data[1] % (n + 1) : 0, b = n ? data[2] % (n + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b, b = t;
    }
    uint8_t *whole = malloc(PV_RECODE_MAX(n)), *cut = malloc(3 * PV_RECODE_MAX(n) + 3);
    pv_recode_t s1 = {{0}, 0}, s2 = {{0}, 0};
    size_t w = run(mode, &s1, body, n, whole), c = 0;
    c += run(mode, &s2, body, a, cut + c);
    c += run(mode, &s2, body + a, b - a, cut + c);
    c += run(mode, &s2, body + b, n - b, cut + c);
    if (mode != 0 || valid_utf8(body, n)) {
        if (w != c || memcmp(whole, cut, w) != 0 || s1.nsaved != s2.nsaved)
            abort();
    }
    /* the needed tests agree with what recoding does */
    pv_recode_t s3 = {{0}, 0};
    int needed = mode == 0 ? pv_recode_from_utf8_needed(&s3, body, n)
                 : mode == 1 ? pv_recode_to_utf8_needed(u8, body, n) : pv_recode_bytes_needed(bytes, body, n);
    if (!needed && (w != n || memcmp(whole, body, n) != 0))
        abort();
    free(whole);
    free(cut);
    return 0;
}
