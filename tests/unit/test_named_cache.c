/* Named caches shared by the workers: one cache per name and registry
 * while any reference lasts, the bound set anew by each taker, expiry,
 * replacement, least recently used eviction, and the user's own bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/named_cache.h"

static int freed;

static void ext_free(void *ext)
{
    freed = *(int *)ext;
}

static pv_ncache_registry_t ra = PV_NCACHE_REGISTRY(sizeof(int), ext_free);
static pv_ncache_registry_t rb = PV_NCACHE_REGISTRY(0, NULL);

static void copy_int(const unsigned char *val, size_t len, void *arg)
{
    assert_int_equal(len, sizeof(int));
    memcpy(arg, val, len);
}

static int get(pv_ncache_t *c, const char *key, int touch)
{
    int v = -1;
    return pv_ncache_lookup(c, key, strlen(key), touch, copy_int, &v) ? v : -1;
}

static void put(pv_ncache_t *c, const char *key, int v, int64_t expire)
{
    pv_ncache_store(c, key, strlen(key), &v, sizeof(v), expire);
}

static void test_registry(void **state)
{
    pv_ncache_t *a = pv_ncache_get(&ra, "one", 4), *b = pv_ncache_get(&ra, "one", 8);
    pv_ncache_t *other = pv_ncache_get(&rb, "one", 4), *two = pv_ncache_get(&ra, "two", 4);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, other);
    assert_ptr_not_equal(a, two);
    assert_int_equal(pv_ncache_capacity(a), 8);
    *(int *)pv_ncache_ext(a) = 7;
    put(a, "k", 1, (int64_t)time(NULL) + 60);
    pv_ncache_unref(b);
    assert_int_equal(get(a, "k", 1), 1); /* a reference remains */
    freed = 0;
    pv_ncache_unref(a);
    assert_int_equal(freed, 7);
    a = pv_ncache_get(&ra, "one", 4);
    assert_int_equal(get(a, "k", 1), -1); /* made anew */
    assert_int_equal(*(int *)pv_ncache_ext(a), 0);
    pv_ncache_unref(a);
    pv_ncache_unref(other);
    pv_ncache_unref(two);
}

static void test_entries(void **state)
{
    int64_t later = (int64_t)time(NULL) + 60;
    pv_ncache_t *c = pv_ncache_get(&rb, "lru", 3);
    put(c, "a", 1, later);
    put(c, "b", 2, later);
    put(c, "c", 3, later);
    put(c, "a", 10, later); /* replaced: the newest now */
    assert_int_equal(pv_ncache_count(c), 3);
    assert_int_equal(get(c, "a", 1), 10);
    put(c, "d", 4, later); /* b, the least recently used, goes */
    assert_int_equal(get(c, "b", 1), -1);
    assert_int_equal(get(c, "c", 0), 3); /* looked at, not touched */
    put(c, "e", 5, later); /* so c goes next */
    assert_int_equal(get(c, "c", 1), -1);
    assert_int_equal(get(c, "d", 1), 4);
    put(c, "old", 6, (int64_t)time(NULL) - 1);
    assert_int_equal(get(c, "old", 1), -1); /* expired, and dropped */
    assert_int_equal(pv_ncache_count(c), 2);
    pv_ncache_remove(c, "d", 1);
    assert_int_equal(get(c, "d", 1), -1);
    assert_int_equal(pv_ncache_count(c), 1);
    pv_ncache_t *again = pv_ncache_get(&rb, "lru", 0); /* a smaller bound empties it */
    assert_int_equal(pv_ncache_count(c), 0);
    put(c, "f", 7, later); /* nothing is kept without room */
    assert_int_equal(pv_ncache_count(c), 0);
    pv_ncache_unref(again);
    pv_ncache_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
