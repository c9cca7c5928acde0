/* libFuzzer target: the chunked decoder. Feeds the input in pieces whose
 * sizes come from the first byte, and checks the decoder's promises: it
 * never consumes more than it was given, spans lie inside the input, and
 * the same input decodes the same way whatever the split, trailer lines
 * kept included (into a buffer small enough to overflow). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/http/chunked.h"

#define TRAILERS_CAP 64

static char tkept[2][TRAILERS_CAP];
static uint32_t tlen[2];
static uint8_t tover[2];

static int run(const uint8_t *data, size_t size, size_t step, uint8_t *out, size_t *outlen, int k)
{
    pv_chunked_t c;
    pv_chunked_init(&c);
    c.tbuf = tkept[k];
    c.tcap = TRAILERS_CAP;
    size_t off = 0, o = 0;
    while (off < size && !c.done) {
        size_t n = size - off < step ? size - off : step;
        pv_str_t spans[3];
        int ns = 0;
        ssize_t used = pv_chunked_decode(&c, (const char *)data + off, n, spans, &ns, 3);
        if (used < 0)
            return -1;
        if ((size_t)used > n)
            abort();
        for (int i = 0; i < ns; i++) {
            if (spans[i].p < (const char *)data + off || spans[i].p + spans[i].len > (const char *)data + off + n)
                abort();
            memcpy(out + o, spans[i].p, spans[i].len);
            o += spans[i].len;
        }
        off += (size_t)used;
        if (used == 0 && ns == 0)
            abort(); /* no progress */
    }
    *outlen = o;
    if (c.tlen > c.tcap)
        abort();
    tlen[k] = c.tlen;
    tover[k] = c.tover;
    return c.done ? (int)off : -2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    data++;
    size--;
    uint8_t *a = malloc(size + 1), *b = malloc(size + 1);
    size_t la = 0, lb = 0;
    int ra = run(data, size, size ? size : 1, a, &la, 0);
    int rb = run(data, size, step, b, &lb, 1);
    /* one shot and piecewise must agree (an error may surface earlier
     * piecewise only if both fail) */
    if ((ra >= 0) != (rb >= 0) || (ra >= 0 && (ra != rb || la != lb || memcmp(a, b, la) != 0)))
        abort();
    if (ra >= 0 && (tlen[0] != tlen[1] || tover[0] != tover[1] || memcmp(tkept[0], tkept[1], tlen[0]) != 0))
        abort();
    free(a);
    free(b);
    return 0;
}
