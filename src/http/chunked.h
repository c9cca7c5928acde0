/* Strict, streaming decoder for the chunked transfer coding (RFC 9112
 * section 7.1). Zero-copy: it returns spans of chunk data that point into
 * the input. Chunk extensions are checked and dropped; trailer fields are
 * checked, and kept in tbuf when the caller set one. Anything lenient parsers disagree on (bare LF,
 * whitespace around the size, over-long sizes, bad extensions) is an error,
 * because disagreement between hops is what request smuggling exploits. */
#ifndef PV_CHUNKED_H
#define PV_CHUNKED_H

#include <stdint.h>
#include <sys/types.h>
#include "../core/common.h"

#define PV_CHUNKED_LINE_MAX 4096 /* longest size line or trailer line accepted */

typedef struct pv_chunked_s {
    uint64_t remaining; /* data bytes left in the current chunk */
    uint32_t linelen;   /* bytes of the current size/trailer line so far */
    uint8_t state;      /* decoder state */
    uint8_t done;       /* last chunk and trailers consumed */
    uint8_t ext;        /* chunk-extension sub-state */
    uint8_t tover;      /* the trailer lines did not fit tbuf: none are kept */
    char *tbuf;         /* where trailer lines go ("name: value\n" each), or NULL */
    uint32_t tcap, tlen; /* its size and the bytes kept */
} pv_chunked_t;

void pv_chunked_init(pv_chunked_t *c);
/* Decode in[0..len). Up to maxspans data spans are stored in spans.
 * Returns the number of input bytes consumed (fewer than len when the
 * message ended or spans ran out), or -1 on a framing error. */
ssize_t pv_chunked_decode(pv_chunked_t *c, const char *in, size_t len, pv_str_t *spans, int *nspans,
                          int maxspans);

#endif
