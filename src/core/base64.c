#include "base64.h"

#include <stdint.h>

#include "common.h"

int pv_b64_decode(const char *in, size_t len, int url, int pad, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t body = len;
    while (!url && body > 0 && in[body - 1] == '=')
        body--;
    size_t npad = len - body;
    if (body % 4 == 1 || npad > 2 || (npad && (body + npad) % 4 != 0) || (pad && len % 4 != 0))
        return PV_ERR;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < body; i++) {
        int v = pv_b64_value((unsigned char)in[i], url);
        if (v < 0)
            return PV_ERR;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return PV_ERR;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return PV_ERR;
    *outlen = o;
    return PV_OK;
}
