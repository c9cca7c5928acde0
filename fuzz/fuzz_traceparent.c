/* libFuzzer target: pv_traceparent_parse() (src/http/trace.c), the W3C
 * traceparent reading that decides whether a client's trace goes on, and
 * pv_anon_addr_text() (src/core/anon.c) on the same bytes.
 *
 * Checks: an accepted value has a version other than ff, nonzero ids, is
 * exactly 55 bytes for version 00, and prints back to its first 55 bytes
 * in lowercase hex; an anonymised address is itself an address that
 * anonymises to itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/anon.h"
#include "http/trace.h"

static int zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void check_traceparent(const char *s, size_t n)
{
    pv_traceparent_t tp;
    if (pv_traceparent_parse(s, n, &tp) != 0)
        return;
    if (tp.version == 0xff || zero(tp.trace_id, 16) || zero(tp.parent_id, 8) || n < 55)
        abort();
    if (tp.version == 0 && n != 55)
        abort();
    char out[64];
    int k = snprintf(out, sizeof(out), "%02x-", tp.version);
    for (int i = 0; i < 16; i++)
        k += snprintf(out + k, sizeof(out) - (size_t)k, "%02x", tp.trace_id[i]);
    out[k++] = '-';
    for (int i = 0; i < 8; i++)
        k += snprintf(out + k, sizeof(out) - (size_t)k, "%02x", tp.parent_id[i]);
    snprintf(out + k, sizeof(out) - (size_t)k, "-%02x", tp.flags);
    if (memcmp(out, s, 55) != 0)
        abort();
}

static void check_anon(const char *s, size_t n)
{
    char a[PV_ANON_TEXT_MAX], b[PV_ANON_TEXT_MAX];
    size_t k = pv_anon_addr_text(s, n, a, sizeof(a));
    if (!k)
        return;
    if (k != strlen(a) || pv_anon_addr_text(a, k, b, sizeof(b)) != k || memcmp(a, b, k) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_traceparent((const char *)data, size);
    check_anon((const char *)data, size);
    return 0;
}
