/* Strict base64 decoding (RFC 4648), standard or URL-safe alphabet. */
#ifndef PV_BASE64_H
#define PV_BASE64_H

#include <stddef.h>

/* Decode in[0..len) into out[0..cap): url selects the URL-safe alphabet
 * (which has no padding); with the standard one padding is optional
 * unless pad is set, and when present must complete the last group.
 * Unused low bits of the last character must be zero. PV_OK with *outlen,
 * or PV_ERR. */
int pv_b64_decode(const char *in, size_t len, int url, int pad, unsigned char *out, size_t cap, size_t *outlen);

#endif
