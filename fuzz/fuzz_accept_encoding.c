/* libFuzzer target: pv_accept_coding_q(), the Accept-Encoding reading
 * that chooses between gzip and Brotli, and pv_ua_msie6(). The input is
 * the field value. Checks: a q-value is -1 or 0 to 1000, and -1 when the
 * name is nowhere in the value; the value with "gzip, " or "br, " put in
 * front names the coding at q=1 whatever follows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/http/compress.h"

static char buf[1 << 16];

static int mentions(const char *p, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (strncasecmp(p + i, name, len) == 0)
            return 1;
    return 0;
}

static void check(pv_str_t v, const char *name, size_t len)
{
    int q = pv_accept_coding_q(v, name, len);
    if (q < -1 || q > 1000)
        abort();
    if (q != -1 && !mentions(v.p, v.len, name, len))
        abort();
    size_t pre = len + 2;
    if (v.len + pre > sizeof(buf))
        return;
    memcpy(buf, name, len);
    memcpy(buf + len, ", ", 2);
    memcpy(buf + pre, v.p, v.len);
    if (pv_accept_coding_q((pv_str_t){buf, v.len + pre}, name, len) != 1000)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv_str_t v = {(const char *)data, size};
    check(v, "gzip", 4);
    check(v, "br", 2);
    (void)pv_ua_msie6(v);
    return 0;
}
