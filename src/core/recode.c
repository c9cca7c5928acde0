/* Charset recoding (recode.h), byte for byte as NGINX's charset filter
 * recodes, including its handling of invalid and cut UTF-8. */
#include "recode.h"

#include <string.h>

uint32_t pv_utf8_decode(const uint8_t **p, size_t n)
{
    uint32_t u = **p, valid;
    size_t len;
    if (u >= 0xf0) {
        u &= 0x07;
        valid = 0xffff;
        len = 3;
    } else if (u >= 0xe0) {
        u &= 0x0f;
        valid = 0x7ff;
        len = 2;
    } else if (u >= 0xc2) {
        u &= 0x1f;
        valid = 0x7f;
        len = 1;
    } else {
        (*p)++;
        return PV_UTF8_INVALID;
    }
    if (n - 1 < len)
        return PV_UTF8_INCOMPLETE;
    (*p)++;
    while (len--) {
        uint32_t c = *(*p)++;
        if (c < 0x80)
            return PV_UTF8_INVALID; /* the ASCII byte is consumed with the rest, as in NGINX */
        u = (u << 6) | (c & 0x3f);
    }
    return u > valid ? u : PV_UTF8_INVALID;
}

int pv_recode_bytes_needed(const uint8_t *table, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (table[in[i]] != in[i])
            return 1;
    return 0;
}

int pv_recode_to_utf8_needed(const uint8_t *u8, const uint8_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *t = &u8[in[i] * 4];
        if (t[0] != 1 || t[1] != in[i])
            return 1;
    }
    return 0;
}

int pv_recode_from_utf8_needed(const pv_recode_t *st, const uint8_t *in, size_t n)
{
    if (st->nsaved)
        return n > 0;
    for (size_t i = 0; i < n; i++)
        if (in[i] >= 0x80)
            return 1;
    return 0;
}

size_t pv_recode_bytes(const uint8_t *table, const uint8_t *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = table[in[i]];
    return n;
}

size_t pv_recode_to_utf8(const uint8_t *u8, const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t *o = out;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *t = &u8[in[i] * 4];
        for (int k = 1; k <= t[0]; k++)
            *o++ = t[k];
    }
    return (size_t)(o - out);
}

/* "&#N;": the code point as an HTML character reference */
static uint8_t *entity(uint8_t *o, uint32_t cp)
{
    char d[10];
    int k = 0;
    do {
        d[k++] = (char)('0' + cp % 10);
        cp /= 10;
    } while (cp);
    *o++ = '&';
    *o++ = '#';
    while (k)
        *o++ = (uint8_t)d[--k];
    *o++ = ';';
    return o;
}

static uint8_t mapped(uint8_t *const *pages, uint32_t cp)
{
    if (cp >= 0x10000 || !pages[cp >> 8])
        return 0;
    return pages[cp >> 8][cp & 0xff];
}

/* The sequence cut at the end of the last input, completed by this one's
 * first bytes: NGINX's handling (a bad continuation byte costs what was
 * kept). Returns the input bytes used, or n with everything kept. */
static size_t complete_saved(pv_recode_t *st, uint8_t *const *pages, const uint8_t *in, size_t n,
                             uint8_t **o)
{
    size_t room = 4u - st->nsaved, take = room < n ? room : n;
    memcpy(st->saved + st->nsaved, in, take);
    size_t total = st->nsaved + take;
    const uint8_t *p = st->saved;
    uint32_t cp = pv_utf8_decode(&p, total);
    if (cp == PV_UTF8_INCOMPLETE && total < 4) {
        st->nsaved = (uint8_t)total;
        return n;
    }
    uint8_t c = mapped(pages, cp);
    if (c) {
        *(*o)++ = c;
    } else if (cp == PV_UTF8_INCOMPLETE) {
        *(*o)++ = '?';
        p = st->saved + 4;
    } else if (cp > 0x10ffff) {
        *(*o)++ = '?';
        if (p < st->saved + st->nsaved)
            p = st->saved + st->nsaved;
    } else {
        *o = entity(*o, cp);
    }
    size_t used = (size_t)(p - st->saved) - st->nsaved;
    st->nsaved = 0;
    return used;
}

size_t pv_recode_from_utf8(pv_recode_t *st, uint8_t *const *pages, const uint8_t *in, size_t n, uint8_t *out)
{
    uint8_t *o = out;
    const uint8_t *s = in, *end = in + n;
    if (n == 0)
        return 0;
    if (st->nsaved)
        s += complete_saved(st, pages, in, n, &o);
    while (s < end) {
        if (*s < 0x80) {
            *o++ = *s++;
            continue;
        }
        size_t left = (size_t)(end - s);
        uint32_t cp = pv_utf8_decode(&s, left);
        if (cp == PV_UTF8_INCOMPLETE) {
            memcpy(st->saved, s, left);
            st->nsaved = (uint8_t)left;
            break;
        }
        uint8_t c = mapped(pages, cp);
        if (c)
            *o++ = c;
        else if (cp > 0x10ffff)
            *o++ = '?';
        else
            o = entity(o, cp);
    }
    return (size_t)(o - out);
}
