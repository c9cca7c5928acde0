/* libFuzzer target: pv_http_head_crlf(), the bare LF to CRLF pass every
 * request and upstream response head goes through. The first byte picks
 * the piece size; the rest is fed in pieces as reads bring it, with just
 * enough room each time after one refusal for too little. Checks: the
 * result equals a plain copying rewrite of the whole input (every bare
 * LF up to the first empty line after a non-empty one made CRLF, everything
 * after the head's first empty line unchanged), whatever the split, and a
 * call with too little room changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/http/headers.h"

static char ref[1 << 17], buf[1 << 17];

/* The rewrite done plainly, into a second buffer. */
static size_t reference(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0, o = 0, line = 0; /* where the current line starts */
    int started = 0;                /* a line with more than CRs was seen */
    for (; i < n; i++) {
        if (in[i] == '\n') {
            if (i == 0 || in[i - 1] != '\r')
                out[o++] = '\r';
            out[o++] = '\n';
            size_t k = line;
            while (k < i && in[k] == '\r')
                k++;
            line = i + 1;
            if (k < i)
                started = 1;
            else if (started) { /* a line of nothing but CRs: the head's end */
                i++;
                break;
            }
            continue;
        }
        out[o++] = (char)in[i];
    }
    memcpy(out + o, in + i, n - i);
    return o + n - i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 40000)
        return 0;
    size_t step = (size_t)(data[0] % 37) + 1;
    data++;
    size--;
    size_t want = reference(data, size, ref);

    pv_crlf_t st;
    pv_http_crlf_init(&st, 0);
    size_t off = 0, last = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        memcpy(buf + last, data + off, n);
        last += n;
        off += n;
        size_t l = last;
        size_t crs = pv_http_head_crlf(buf, &l, last, &st);
        if (crs) {
            /* too little room: nothing moved; then exactly enough */
            if (l != last || memcmp(buf + last - n, data + off - n, n) != 0)
                abort();
            if (pv_http_head_crlf(buf, &l, last + crs, &st) != 0 || l != last + crs)
                abort();
        } else if (l != last) {
            abort();
        }
        last = l;
        if (st.off > last || st.added != last - off)
            abort();
    }
    if (last != want || memcmp(buf, ref, want) != 0)
        abort();
    return 0;
}
