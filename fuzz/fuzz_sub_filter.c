/* libFuzzer target: sub_filter's matcher (src/core/submatch.c).
 *
 * Input: byte 0 sets sub_filter_once (bit 7) and how many strings follow
 * (1 + bits 0-2); byte 1 seeds where the body is cut; then the strings,
 * each up to a '\n' (lowercased; an empty one becomes "a"); the rest is
 * the body. The body fed in pieces must give what it gives fed whole,
 * and both what a plain search with NGINX's rules gives; the bytes held
 * between pieces stay under the longest string's length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/submatch.h"

#define MAXP 8

typedef struct out_s {
    char buf[1 << 16];
    size_t len;
} out_t;

static void put(out_t *o, const char *p, size_t n)
{
    if (n > sizeof(o->buf) - o->len)
        abort(); /* a replacement is 2 bytes: the output is bounded */
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static int emit(void *ctx, int kind, const char *p, size_t n)
{
    out_t *o = ctx;
    if (kind == PV_SUB_REPLACE) {
        char r[2] = {'\x01', (char)('0' + n)};
        put(o, r, 2);
    } else {
        put(o, p, n);
    }
    return PV_OK;
}

static uint8_t low(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

/* NGINX's rules without tables or holding: each position in turn, the
 * strings in their order; one that runs past the end ends the search */
static void plain(const pv_sub_tables_t *t, int once, const char *b, size_t n, out_t *o)
{
    uint8_t done[MAXP] = {0};
    int applied = 0;
    size_t s = 0, from = 0;
    while (s + t->min <= n && !(once && applied == t->n)) {
        int hit = -1, stop = 0;
        for (int i = 0; i < t->n && hit < 0 && !stop; i++) {
            pv_str_t m = t->pat[i];
            if ((once && done[i]) || (uint8_t)m.p[t->min - 1] != low((uint8_t)b[s + t->min - 1]))
                continue;
            size_t k = 0;
            while (k < m.len && s + k < n && low((uint8_t)b[s + k]) == (uint8_t)m.p[k])
                k++;
            if (k == m.len)
                hit = i;
            else if (s + k == n)
                stop = 1;
        }
        if (stop)
            break;
        if (hit < 0) {
            s++;
            continue;
        }
        put(o, b + from, s - from);
        emit(o, PV_SUB_REPLACE, NULL, t->orig[hit]);
        s += t->pat[hit].len;
        from = s;
        done[hit] = 1;
        applied++;
    }
    put(o, b + from, n - from);
}

static out_t one, pieces, ref;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int once = data[0] >> 7, np = 1 + (data[0] & 7);
    uint32_t seed = data[1] | 1u;
    const char *p = (const char *)data + 2, *end = (const char *)data + size;
    char lowbuf[MAXP][64];
    pv_str_t in[MAXP], pat[MAXP];
    uint8_t orig[MAXP];
    for (int i = 0; i < np; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len > sizeof(lowbuf[i]))
            len = sizeof(lowbuf[i]);
        for (size_t k = 0; k < len; k++)
            lowbuf[i][k] = (char)low((uint8_t)p[k]);
        if (!len)
            lowbuf[i][len++] = 'a';
        in[i] = (pv_str_t){lowbuf[i], len};
        p = nl ? nl + 1 : end;
    }
    size_t blen = (size_t)(end - p);
    if (blen > 8192)
        return 0;
    pv_sub_tables_t t;
    pv_sub_tables_build(&t, in, np, pat, orig);
    char hold[64];
    uint8_t done[MAXP];
    pv_sub_match_t m;

    one.len = pieces.len = ref.len = 0;
    pv_sub_match_init(&m, &t, once, hold, done);
    pv_sub_feed(&m, p, blen, emit, &one);
    pv_sub_end(&m, emit, &one);

    pv_sub_match_init(&m, &t, once, hold, done);
    for (size_t off = 0; off < blen;) {
        seed = seed * 1103515245u + 12345u;
        size_t k = PV_MIN(blen - off, (size_t)(seed >> 16) % 9);
        pv_sub_feed(&m, p + off, k, emit, &pieces);
        if (m.hlen >= t.max)
            abort();
        off += k;
    }
    pv_sub_end(&m, emit, &pieces);

    plain(&t, once, p, blen, &ref);
    if (one.len != pieces.len || memcmp(one.buf, pieces.buf, one.len) != 0)
        abort();
    if (one.len != ref.len || memcmp(one.buf, ref.buf, one.len) != 0)
        abort();
    return 0;
}
