/* Charset recoding as NGINX's charset filter does it, without I/O: a
 * byte charset to another through a 256-byte table, to UTF-8 through a
 * table of each byte's UTF-8 text, and from UTF-8 through pages of a
 * code point's byte (unmapped code points become "&#N;", invalid bytes
 * "?"). A UTF-8 sequence cut at the end of the input is kept in the
 * state and completed by the next input. Fuzzed by fuzz/fuzz_recode.c. */
#ifndef PV_CORE_RECODE_H
#define PV_CORE_RECODE_H

#include <stddef.h>
#include <stdint.h>

#define PV_UTF8_INVALID 0xffffffffu    /* not UTF-8 (the bad byte is consumed) */
#define PV_UTF8_INCOMPLETE 0xfffffffeu /* the sequence goes past the input */

/* Decode the UTF-8 sequence at *p (n > 0 bytes there), as NGINX's
 * ngx_utf8_decode(): its code point, or one of the two values above;
 * *p is advanced past what was read. Overlong forms are invalid;
 * values above 0x10FFFF come back as they are. */
uint32_t pv_utf8_decode(const uint8_t **p, size_t n);

/* Per response state of a recoding from UTF-8. */
typedef struct pv_recode_s {
    uint8_t saved[4];   /* a cut sequence's first bytes */
    uint8_t nsaved;
} pv_recode_t;

/* Most bytes recoding n input bytes can give (each direction). */
#define PV_RECODE_MAX(n) (4 * (n) + 16)

/* 1 when recoding would change in: a byte the table changes (bytes), a
 * byte whose UTF-8 text is not itself (to UTF-8), a byte past ASCII or
 * a cut sequence waiting (from UTF-8). */
int pv_recode_bytes_needed(const uint8_t *table, const uint8_t *in, size_t n);
int pv_recode_to_utf8_needed(const uint8_t *u8, const uint8_t *in, size_t n);
int pv_recode_from_utf8_needed(const pv_recode_t *st, const uint8_t *in, size_t n);

/* Recode n bytes of in into out (room for PV_RECODE_MAX(n)); the count
 * written. */
size_t pv_recode_bytes(const uint8_t *table, const uint8_t *in, size_t n, uint8_t *out);
size_t pv_recode_to_utf8(const uint8_t *u8, const uint8_t *in, size_t n, uint8_t *out);
size_t pv_recode_from_utf8(pv_recode_t *st, uint8_t *const *pages, const uint8_t *in, size_t n, uint8_t *out);

#endif
