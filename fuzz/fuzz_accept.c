/* libFuzzer target: pv_report_wants_openmetrics(), the Accept reading
 * that chooses between the Prometheus text format and OpenMetrics. The
 * input is the field value. Checks: the value with OpenMetrics put in
 * front at q=1 and nothing else above it is chosen; with OpenMetrics
 * refused (q=0) at the end and no other mention, it is not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/proxy/report.h"

static char buf[1 << 16];

static int mentions(const char *p, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (strncasecmp(p + i, name, len) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char om[] = "application/openmetrics-text";
    if (size > sizeof(buf) - 64)
        return 0;
    int got = pv_report_wants_openmetrics((const char *)data, size);
    if (got && !mentions((const char *)data, size, om, sizeof(om) - 1))
        abort();
    /* OpenMetrics at q=1 in front wins unless a text type also at q=1 */
    size_t pre = sizeof(om) - 1 + 1;
    memcpy(buf, om, sizeof(om) - 1);
    buf[pre - 1] = ',';
    memcpy(buf + pre, data, size);
    if (!mentions((const char *)data, size, "text/", 5) && !mentions((const char *)data, size, "*/*", 3) &&
        !pv_report_wants_openmetrics(buf, pre + size))
        abort();
    return 0;
}
