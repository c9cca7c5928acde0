/* The header filters' pure parts: the Expires and Cache-Control values of
 * every `expires` form (NGINX's ngx_http_set_expires). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/conf.h"
#include "http/hfilter.h"

/* Thu, 03 Dec 2026 20:00:00 GMT */
#define NOW 1796328000LL

static void expect(int kind, int64_t t, int64_t lm, const char *date, const char *cc)
{
    char d[40], c[32];
    pv_hfilter_expires(kind, t, NOW, lm, d, c);
    assert_string_equal(d, date);
    assert_string_equal(c, cc);
}

static void test_expires_forms(void **state)
{
    (void)state;
    expect(PV_EXPIRES_EPOCH, 0, -1, "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache");
    expect(PV_EXPIRES_MAX, 0, -1, "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000");
    expect(PV_EXPIRES_ACCESS, 0, -1, "Thu, 03 Dec 2026 20:00:00 GMT", "max-age=0");
    expect(PV_EXPIRES_ACCESS, 3600, -1, "Thu, 03 Dec 2026 21:00:00 GMT", "max-age=3600");
    /* negative: a date in the past, and no-cache */
    expect(PV_EXPIRES_ACCESS, -60, -1, "Thu, 03 Dec 2026 19:59:00 GMT", "no-cache");
    /* modified: from Last-Modified; without one, from now */
    expect(PV_EXPIRES_MODIFIED, 7200, NOW - 3600, "Thu, 03 Dec 2026 21:00:00 GMT", "max-age=3600");
    expect(PV_EXPIRES_MODIFIED, 60, NOW - 3600, "Thu, 03 Dec 2026 19:01:00 GMT", "no-cache");
    expect(PV_EXPIRES_MODIFIED, 60, -1, "Thu, 03 Dec 2026 20:01:00 GMT", "max-age=60");
}

static void test_expires_daily(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    /* @21h: later today; @19h: tomorrow */
    expect(PV_EXPIRES_DAILY, 21 * 3600, -1, "Thu, 03 Dec 2026 21:00:00 GMT", "max-age=3600");
    expect(PV_EXPIRES_DAILY, 19 * 3600, -1, "Fri, 04 Dec 2026 19:00:00 GMT", "max-age=82800");
    /* @0 is midnight, never "now" */
    expect(PV_EXPIRES_DAILY, 0, -1, "Fri, 04 Dec 2026 00:00:00 GMT", "max-age=14400");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expires_forms),
        cmocka_unit_test(test_expires_daily),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
