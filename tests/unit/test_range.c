/* The pure parts of file serving: Range parsing as NGINX's range filter
 * does it, If-Range, entity tag lists, HTTP dates and path joining. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/range.h"

static int parse(const char *v, int64_t size, int max, pv_range_t *out, int *n)
{
    return pv_range_parse((pv_str_t){v, strlen(v)}, size, max, out, 8, n);
}

static void expect_ranges(const char *v, int64_t size, int n, const int64_t *se)
{
    pv_range_t r[8];
    int got = -1;
    int rc = parse(v, size, 100, r, &got);
    if (rc != PV_RANGE_OK)
        fail_msg("%s: rc %d", v, rc);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r[i].start, se[2 * i]);
        assert_int_equal(r[i].end, se[2 * i + 1]);
    }
}

static void expect_kind(const char *v, int64_t size, int max, int kind)
{
    pv_range_t r[8];
    int n;
    int rc = parse(v, size, max, r, &n);
    if (rc != kind)
        fail_msg("%s (size %lld, max %d): rc %d, wanted %d", v, (long long)size, max, rc, kind);
}

static void test_ranges(void **state)
{
    (void)state;
    expect_ranges("bytes=0-4", 13, 1, (int64_t[]){0, 5});
    expect_ranges("bytes=7-", 13, 1, (int64_t[]){7, 13});
    expect_ranges("bytes=-6", 13, 1, (int64_t[]){7, 13});
    expect_ranges("bytes=-100", 13, 1, (int64_t[]){0, 13});
    expect_ranges("bytes=5-100", 13, 1, (int64_t[]){5, 13});
    expect_ranges("BYTES=1-1", 13, 1, (int64_t[]){1, 2});
    expect_ranges("bytes= 0-1 , 3-4 ,6-", 13, 3, (int64_t[]){0, 2, 3, 5, 6, 13});
    expect_ranges("bytes=0-0,-1", 13, 2, (int64_t[]){0, 1, 12, 13});
    /* unsatisfiable parts are skipped while one is left */
    expect_ranges("bytes=20-30,0-1", 13, 1, (int64_t[]){0, 2});
}

static void test_range_kinds(void **state)
{
    (void)state;
    expect_kind("bytes=13-", 13, 100, PV_RANGE_416);
    expect_kind("bytes=20-30", 13, 100, PV_RANGE_416);
    expect_kind("bytes=x-y", 13, 100, PV_RANGE_416);
    expect_kind("bytes=1-2x", 13, 100, PV_RANGE_416);
    expect_kind("bytes=1", 13, 100, PV_RANGE_416);
    expect_kind("bytes=-", 13, 100, PV_RANGE_416);
    expect_kind("bytes=99999999999999999999-", 13, 100, PV_RANGE_416);
    expect_kind("items=0-1", 13, 100, PV_RANGE_NONE);
    expect_kind("bytes=", 13, 100, PV_RANGE_NONE);
    expect_kind("bytes=0-10,2-12", 13, 100, PV_RANGE_NONE);   /* more than the body */
    expect_kind("bytes=0-1,3-4", 13, 1, PV_RANGE_NONE);       /* max_ranges */
    expect_kind("bytes=0-1", 13, 0, PV_RANGE_NONE);
    expect_kind("bytes=0-1", 0, 100, PV_RANGE_NONE);          /* empty body: start 0 declines */
    expect_kind("bytes=-5", 0, 100, PV_RANGE_NONE);
    expect_kind("bytes=5-", 0, 100, PV_RANGE_416);
}

static void test_if_range(void **state)
{
    (void)state;
    pv_str_t etag = PV_STR("\"6553f100-d\"");
    assert_true(pv_range_if_range(PV_STR("\"6553f100-d\""), etag, 1700000000));
    assert_false(pv_range_if_range(PV_STR("\"other\""), etag, 1700000000));
    assert_false(pv_range_if_range(PV_STR("W/\"6553f100-d\""), etag, 1700000000));
    assert_true(pv_range_if_range(PV_STR("Tue, 14 Nov 2023 22:13:20 GMT"), etag, 1700000000));
    assert_false(pv_range_if_range(PV_STR("Tue, 14 Nov 2023 22:13:21 GMT"), etag, 1700000000));
    assert_false(pv_range_if_range(PV_STR("junk"), etag, 1700000000));
}

static void test_etag_lists(void **state)
{
    (void)state;
    pv_str_t e = PV_STR("\"abc\"");
    assert_true(pv_etag_match(PV_STR("\"abc\""), e, 0));
    assert_true(pv_etag_match(PV_STR("*"), e, 0));
    assert_true(pv_etag_match(PV_STR("\"x\", \"abc\""), e, 0));
    assert_true(pv_etag_match(PV_STR("\"x\",\"abc\" "), e, 0));
    assert_false(pv_etag_match(PV_STR("\"abcd\""), e, 0));
    assert_false(pv_etag_match(PV_STR("W/\"abc\""), e, 0));
    assert_true(pv_etag_match(PV_STR("W/\"abc\""), e, 1));
    assert_true(pv_etag_match(PV_STR("\"abc\""), PV_STR("W/\"abc\""), 1));
    assert_false(pv_etag_match(PV_STR("\"abc\""), (pv_str_t){NULL, 0}, 0));
    assert_false(pv_etag_match(PV_STR(""), e, 1));
}

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(pv_http_time_parse(PV_STR("Tue, 14 Nov 2023 22:13:20 GMT")), 1700000000);
    assert_int_equal(pv_http_time_parse(PV_STR("Tuesday, 14-Nov-23 22:13:20 GMT")), 1700000000);
    assert_int_equal(pv_http_time_parse(PV_STR("Tue Nov 14 22:13:20 2023")), 1700000000);
    assert_int_equal(pv_http_time_parse(PV_STR("Sun Nov  6 08:49:37 1994")), 784111777);
    assert_int_equal(pv_http_time_parse(PV_STR("Thu, 01 Jan 1970 00:00:00 GMT")), 0);
    assert_int_equal(pv_http_time_parse(PV_STR("Tue, 31 Feb 2023 22:13:20 GMT")), -1);
    assert_int_equal(pv_http_time_parse(PV_STR("Tue, 14 Nov 2023 25:13:20 GMT")), -1);
    assert_int_equal(pv_http_time_parse(PV_STR("garbage")), -1);
    assert_int_equal(pv_http_time_parse(PV_STR("")), -1);
    char b[32];
    assert_int_equal(pv_http_time_format(1700000000, b), 29);
    assert_string_equal(b, "Tue, 14 Nov 2023 22:13:20 GMT");
    pv_http_time_format(0, b);
    assert_string_equal(b, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void expect_join(const char *root, const char *uri, size_t skip, const char *want)
{
    char out[256];
    ssize_t n = pv_path_join(root, strlen(root), (pv_str_t){uri, strlen(uri)}, skip, out, sizeof(out));
    if (!want) {
        if (n >= 0)
            fail_msg("%s + %s (skip %zu): %s, wanted a refusal", root, uri, skip, out);
        return;
    }
    if (n < 0)
        fail_msg("%s + %s (skip %zu) refused", root, uri, skip);
    assert_string_equal(out, want);
}

static void test_paths(void **state)
{
    (void)state;
    expect_join("/srv/www", "/a/b.txt", 0, "/srv/www/a/b.txt");
    expect_join("/srv/img/", "/i/top.gif", 3, "/srv/img/top.gif");
    expect_join("/srv/img", "/i/top.gif", 2, "/srv/img/top.gif");
    expect_join("/srv/www", "/.well-known/x", 0, "/srv/www/.well-known/x");
    expect_join("/srv/www", "/a..b/c", 0, "/srv/www/a..b/c");
    expect_join("/srv/www", "/a/../b", 0, NULL);
    expect_join("/srv/www", "/..", 0, NULL);
    expect_join("/srv/www", "/a/.", 0, NULL);
    expect_join("/srv/img/", "/i../etc/passwd", 2, NULL);   /* alias without its slash */
    expect_join("/srv/www", "/a\0b", 0, "/srv/www/a");      /* strlen stops at the NUL */
    char out[8];
    assert_true(pv_path_join("/srv/www", 8, PV_STR("/long"), 0, out, sizeof(out)) < 0);
    char o2[64];
    assert_true(pv_path_join("/srv", 4, (pv_str_t){"/a\0b", 4}, 0, o2, sizeof(o2)) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),    cmocka_unit_test(test_range_kinds), cmocka_unit_test(test_if_range),
        cmocka_unit_test(test_etag_lists), cmocka_unit_test(test_dates),      cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
