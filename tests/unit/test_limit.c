/* limit_req and limit_conn zones: NGINX's arithmetic to the milli-request
 * (rates, burst, nodelay, delay=, r/m truncation, clocks seen behind), the
 * multi-limit rules of ngx_http_limit_req_handler, $limit_req_status and
 * the log lines, LRU eviction and idle expiry in a tiny zone, no-memory
 * rejects, limit_conn counting, and two threads hammering one zone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/core/log.h"
#include "../../src/policy/limit.c"

static char log_path[] = "/tmp/pv_test_limit_XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    int fd = mkstemp(log_path);
    if (fd < 0)
        return -1;
    close(fd);
    return pv_log_open(log_path, PV_LOG_INFO);
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(log_path);
    return 0;
}

/* Everything logged since the last call. */
static char *log_take(void)
{
    static long off;
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    char *buf = calloc(1, (size_t)(end - off) + 1);
    fseek(f, off, SEEK_SET);
    size_t n = fread(buf, 1, (size_t)(end - off), f);
    buf[n] = '\0';
    fclose(f);
    off = end;
    return buf;
}

static pv_str_t S(const char *s)
{
    return (pv_str_t){s, strlen(s)};
}

static uint64_t rate_of(const char *s)
{
    uint64_t r = 0;
    assert_int_equal(pv_limit_rate_parse(S(s), &r), PV_OK);
    return r;
}

/* One limit, one key, at time t. */
static int check1(const pv_limit_req_t *l, const char *key, uint64_t t, pv_limit_req_result_t *res)
{
    pv_str_t k = S(key);
    return pv_limit_req_check(l, &k, 1, t, res);
}

static int zone_has(pv_limit_req_zone_t *z, const char *key)
{
    pv_str_t k = S(key);
    uint64_t h = siphash13(z->t.seed, (const unsigned char *)k.p, k.len);
    unsigned idx;
    pv_lshard_t *s = table_shard(&z->t, h, &idx);
    return shard_find(s, (uint32_t)h, k) != NULL;
}

/* No entry may stay held by a check once it returned. */
static void assert_unpinned(pv_limit_req_zone_t *z)
{
    for (unsigned s = 0; s < z->t.nshards; s++)
        for (pv_lnode_t *n = z->t.shards[s].head; n; n = n->next)
            assert_int_equal(n->count, 0);
}

static void test_rate_parse(void **state)
{
    (void)state;
    uint64_t r;
    /* ngx_http_limit_req_zone: rate * 1000 / scale, integer division */
    assert_int_equal(rate_of("10r/s"), 10000);
    assert_int_equal(rate_of("30r/m"), 500);
    assert_int_equal(rate_of("1r/m"), 16);
    assert_int_equal(rate_of("5"), 5000);
    assert_int_equal(pv_limit_rate_parse(S("0r/s"), &r), PV_ERR);
    assert_int_equal(pv_limit_rate_parse(S("r/s"), &r), PV_ERR);
    assert_int_equal(pv_limit_rate_parse(S("10r/h"), &r), PV_ERR);
    assert_int_equal(pv_limit_rate_parse(S("-1r/s"), &r), PV_ERR);
    assert_int_equal(pv_limit_rate_parse(S(""), &r), PV_ERR);
}

static void test_zone_sizing(void **state)
{
    (void)state;
    /* 52 bytes of state + key, in 64-byte units */
    assert_int_equal(PV_LNODE_HDR, 52);
    assert_int_equal(node_units(4), 1);
    assert_int_equal(node_units(12), 1);
    assert_int_equal(node_units(16), 2);
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("one", 1024 * 1024, 1000);
    assert_non_null(z);
    size_t cap = 0;
    for (unsigned i = 0; i < z->t.nshards; i++)
        cap += z->t.shards[i].cap;
    assert_int_equal(cap, 16384);
    assert_int_equal(z->t.nshards, 64);
    assert_string_equal(pv_limit_req_zone_name(z), "one");
    assert_int_equal(pv_limit_req_zone_rate(z), 1000);
    pv_limit_req_zone_free(z);
    assert_null(pv_limit_req_zone_new("x", 10, 1000));
    assert_null(pv_limit_req_zone_new("x", 4096, 0));
}

/* rate=1r/s, no burst: one request per 1000 ms; rejects do not count. */
static void test_one_per_second(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("one", 64 * 1024, rate_of("1r/s"));
    pv_limit_req_t l = {z, 0, 0};
    pv_limit_req_result_t res;

    assert_int_equal(check1(&l, "a", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 0);
    assert_int_equal(check1(&l, "a", 500, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 500);
    assert_int_equal(res.which, 0);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.reset_ms, 500);
    assert_int_equal(check1(&l, "a", 999, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 1);
    /* the rejects left last = 0, excess = 0 */
    assert_int_equal(check1(&l, "a", 1000, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 0);
    assert_int_equal(check1(&l, "a", 1999, &res), PV_LIMIT_REJECT);
    assert_int_equal(check1(&l, "a", 2000, &res), PV_LIMIT_PASS);
    /* keys are independent */
    assert_int_equal(check1(&l, "b", 2000, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 2);
    pv_limit_req_zone_free(z);
}

/* rate=10r/s burst=5 nodelay: six at once, the seventh rejected; every
 * 100 ms one more slot. */
static void test_burst_nodelay(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("b", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_t l = {z, 5 * 1000, PV_LIMIT_NODELAY};
    pv_limit_req_result_t res;

    for (int i = 0; i < 6; i++) {
        assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_PASS);
        assert_int_equal(res.excess, (uint64_t)i * 1000);
        assert_int_equal(res.remaining, (uint64_t)(5 - i));
        assert_int_equal(res.reset_ms, (uint64_t)i * 100);
    }
    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 6000);
    assert_int_equal(res.reset_ms, 100);
    assert_int_equal(check1(&l, "k", 50, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 5500);
    assert_int_equal(check1(&l, "k", 100, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 5000);
    assert_int_equal(check1(&l, "k", 100, &res), PV_LIMIT_REJECT);
    /* drained after 600 ms more */
    assert_int_equal(check1(&l, "k", 700, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 0);
    pv_limit_req_zone_free(z);
}

/* Without nodelay every excess is delayed by excess * 1000 / rate; with
 * delay=2 the first two excess requests go at once (two-stage limiting). */
static void test_delay(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("d", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_t plain = {z, 5 * 1000, 0};
    pv_limit_req_t staged = {z, 5 * 1000, 2 * 1000};
    pv_limit_req_result_t res;

    assert_int_equal(check1(&plain, "p", 0, &res), PV_LIMIT_PASS);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(check1(&plain, "p", 0, &res), PV_LIMIT_DELAY);
        assert_int_equal(res.delay_ms, (uint64_t)i * 100);
        assert_int_equal(res.excess, (uint64_t)i * 1000);
    }
    assert_int_equal(check1(&plain, "p", 0, &res), PV_LIMIT_REJECT);

    uint64_t want[] = {0, 0, 0, 100, 200, 300};
    for (int i = 0; i < 6; i++) {
        int a = check1(&staged, "s", 0, &res);
        assert_int_equal(a, want[i] ? PV_LIMIT_DELAY : PV_LIMIT_PASS);
        assert_int_equal(res.delay_ms, want[i]);
    }
    assert_int_equal(check1(&staged, "s", 0, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 6000);
    pv_limit_req_zone_free(z);
}

/* r/m rates keep NGINX's truncation: 1r/m leaks 16 milli-requests a second,
 * so the next request passes after 62.5 s, not 60 s. */
static void test_per_minute(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("m", 64 * 1024, rate_of("30r/m"));
    pv_limit_req_t l = {z, 0, 0};
    pv_limit_req_result_t res;

    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k", 1000, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 500);
    assert_int_equal(check1(&l, "k", 2000, &res), PV_LIMIT_PASS);
    pv_limit_req_zone_free(z);

    z = pv_limit_req_zone_new("m1", 64 * 1024, rate_of("1r/m"));
    l.zone = z;
    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k", 60000, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 40);
    assert_int_equal(res.reset_ms, 2500);
    assert_int_equal(check1(&l, "k", 62499, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.excess, 1);
    assert_int_equal(check1(&l, "k", 62500, &res), PV_LIMIT_PASS);
    pv_limit_req_zone_free(z);
}

/* The single-limit result the Redis zones build from the script's reply. */
static void test_decide(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("r", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_t l = {z, 5000, 2000};
    pv_limit_req_result_t res;

    pv_limit_req_decide(&l, 2000, 0, &res);
    assert_int_equal(res.action, PV_LIMIT_PASS);
    assert_int_equal(res.which, 0);
    assert_int_equal(res.remaining, 3);
    assert_int_equal(res.reset_ms, 200);
    pv_limit_req_decide(&l, 4500, 0, &res);
    assert_int_equal(res.action, PV_LIMIT_DELAY);
    assert_int_equal(res.delay_ms, 250);
    pv_limit_req_decide(&l, 5300, 1, &res);
    assert_int_equal(res.action, PV_LIMIT_REJECT);
    assert_int_equal(res.delay_ms, 0);
    assert_int_equal(res.remaining, 0);
    assert_int_equal(res.reset_ms, 30);
    assert_string_equal(pv_limit_req_status(&res, 0), "REJECTED");
    pv_limit_req_zone_free(z);
}

/* Another thread's cached clock may be a little behind: NGINX counts a
 * negative interval as 0 (and keeps `last`), one over a minute as 1 ms. */
static void test_clock_behind(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("c", 64 * 1024, rate_of("1r/s"));
    pv_limit_req_t l = {z, 5000, PV_LIMIT_NODELAY};
    pv_limit_req_result_t res;

    assert_int_equal(check1(&l, "k", 100000, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k", 99990, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 1000);
    /* last stayed at 100000: no leak counted from 99990 */
    assert_int_equal(check1(&l, "k", 100000, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 2000);
    assert_int_equal(check1(&l, "k", 30000, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 2999);
    pv_limit_req_zone_free(z);
}

/* Several limits: a later limit's reject charges nothing to the earlier
 * ones (ngx_http_limit_req_unlock), and the first reject stops the walk so
 * later zones do not even see the key. */
static void test_multi_reject(void **state)
{
    (void)state;
    pv_limit_req_zone_t *za = pv_limit_req_zone_new("a", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_zone_t *zb = pv_limit_req_zone_new("b", 64 * 1024, rate_of("1r/s"));
    pv_limit_req_t ls[2] = {{za, 5000, PV_LIMIT_NODELAY}, {zb, 0, 0}};
    pv_str_t keys[2] = {S("k"), S("k")};
    pv_limit_req_result_t res;

    assert_int_equal(pv_limit_req_check(ls, keys, 2, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(za), 1);
    assert_int_equal(pv_limit_req_zone_count(zb), 1);
    assert_int_equal(pv_limit_req_check(ls, keys, 2, 10, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.which, 1);
    assert_int_equal(res.excess, 990);
    /* zone a was not charged for the rejected request: 0 - 100 + 1000 */
    assert_int_equal(check1(&ls[0], "k", 10, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 900);

    /* now a rejects first: zone b must not learn key "new" */
    pv_limit_req_t tight[2] = {{zb, 0, 0}, {za, 5000, 0}};
    pv_str_t k2[2] = {S("k"), S("new")};
    assert_int_equal(pv_limit_req_check(tight, k2, 2, 20, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.which, 0);
    assert_int_equal(pv_limit_req_zone_count(za), 1);
    assert_false(zone_has(za, "new"));
    pv_limit_req_zone_free(za);
    pv_limit_req_zone_free(zb);
}

/* When every limit passes, each is charged and the longest delay wins. */
static void test_multi_delay(void **state)
{
    (void)state;
    pv_limit_req_zone_t *fast = pv_limit_req_zone_new("fast", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_zone_t *slow = pv_limit_req_zone_new("slow", 64 * 1024, rate_of("2r/s"));
    pv_str_t keys[2] = {S("k"), S("k")};
    pv_limit_req_result_t res;

    pv_limit_req_t ls[2] = {{fast, 10000, 0}, {slow, 10000, 0}};
    assert_int_equal(pv_limit_req_check(ls, keys, 2, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.which, 1);
    assert_int_equal(pv_limit_req_check(ls, keys, 2, 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.delay_ms, 500);
    assert_int_equal(res.which, 1);
    assert_int_equal(res.excess, 1000);

    /* slow first: the earlier (accounted late) limit gives the longest delay */
    pv_limit_req_t rev[2] = {{slow, 10000, 0}, {fast, 10000, 0}};
    pv_str_t k2[2] = {S("j"), S("j")};
    assert_int_equal(pv_limit_req_check(rev, k2, 2, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_check(rev, k2, 2, 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.delay_ms, 500);
    assert_int_equal(res.which, 0);
    /* both were charged: fast's excess is 1000, slow's too */
    assert_int_equal(check1(&rev[1], "j", 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.excess, 2000);
    assert_int_equal(check1(&rev[0], "j", 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.excess, 2000);
    /* RateLimit numbers come from the tightest limit */
    assert_int_equal(pv_limit_req_check(rev, k2, 2, 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.remaining, 7);
    assert_int_equal(res.reset_ms, 1500);

    /* nodelay on the slow limit: only fast's delay is left */
    pv_limit_req_t nd[2] = {{slow, 10000, PV_LIMIT_NODELAY}, {fast, 10000, 0}};
    pv_str_t k3[2] = {S("n"), S("n")};
    assert_int_equal(pv_limit_req_check(nd, k3, 2, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_check(nd, k3, 2, 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.delay_ms, 100);
    assert_int_equal(res.which, 1);
    pv_limit_req_zone_free(fast);
    pv_limit_req_zone_free(slow);
}

/* Empty keys skip their limit; a skipped last limit leaves the earlier ones
 * pinned and accounted; no key at all means no limit applied. */
static void test_multi_empty_keys(void **state)
{
    (void)state;
    pv_limit_req_zone_t *za = pv_limit_req_zone_new("a", 64 * 1024, rate_of("10r/s"));
    pv_limit_req_zone_t *zb = pv_limit_req_zone_new("b", 64 * 1024, rate_of("1r/s"));
    pv_limit_req_t ls[2] = {{za, 5000, 0}, {zb, 0, 0}};
    pv_str_t keys[2] = {S("k"), S("")};
    pv_limit_req_result_t res;

    assert_int_equal(pv_limit_req_check(ls, keys, 2, 0, &res), PV_LIMIT_PASS);
    assert_string_equal(pv_limit_req_status(&res, 0), "PASSED");
    assert_int_equal(pv_limit_req_check(ls, keys, 2, 0, &res), PV_LIMIT_DELAY);
    assert_int_equal(res.which, 0);
    assert_int_equal(res.delay_ms, 100);
    assert_int_equal(pv_limit_req_zone_count(zb), 0);
    assert_unpinned(za);

    pv_str_t none[2] = {S(""), S("")};
    assert_int_equal(pv_limit_req_check(ls, none, 2, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.which, -1);
    assert_null(pv_limit_req_status(&res, 0));
    assert_int_equal(pv_limit_req_check(ls, none, 0, 0, &res), PV_LIMIT_PASS);

    /* a key over 65535 bytes is skipped with an error, as NGINX does */
    size_t big = PV_LIMIT_REQ_KEY_MAX + 1;
    char *p = malloc(big);
    memset(p, 'x', big);
    pv_str_t huge = {p, big};
    assert_int_equal(pv_limit_req_check(&ls[1], &huge, 1, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.which, -1);
    free(p);
    char *log = log_take();
    assert_non_null(strstr(log, "[error]"));
    assert_non_null(strstr(log, "more than 65535 bytes"));
    free(log);
    pv_limit_req_zone_free(za);
    pv_limit_req_zone_free(zb);
}

/* More limits than the on-stack pin array holds. */
static void test_many_limits(void **state)
{
    (void)state;
    enum { N = 12 };
    pv_limit_req_zone_t *zs[N];
    pv_limit_req_t ls[N];
    pv_str_t keys[N];
    pv_limit_req_result_t res;

    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "z%d", i);
        zs[i] = pv_limit_req_zone_new(name, 64 * 1024, rate_of("1r/s"));
        ls[i] = (pv_limit_req_t){zs[i], i == 5 ? 0 : 1000, PV_LIMIT_NODELAY};
        keys[i] = S("k");
    }
    assert_int_equal(pv_limit_req_check(ls, keys, N, 0, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_check(ls, keys, N, 0, &res), PV_LIMIT_REJECT);
    assert_int_equal(res.which, 5);
    for (int i = 0; i < N; i++) {
        assert_int_equal(pv_limit_req_zone_count(zs[i]), 1);
        assert_unpinned(zs[i]);
        pv_limit_req_zone_free(zs[i]);
    }
}

/* $limit_req_status and the error log lines, with and without dry run.
 * Dry run changes neither the decision nor the state. */
static void test_status_and_log(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("one", 64 * 1024, rate_of("1r/s"));
    pv_limit_req_t l = {z, 1000, 0};
    pv_limit_req_result_t res;
    char *log = log_take();
    free(log);

    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_PASS);
    pv_limit_req_log(&l, &res, PV_LOG_ERR, 0, ", client: 127.0.0.1");
    assert_string_equal(pv_limit_req_status(&res, 1), "PASSED");
    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_DELAY);
    assert_string_equal(pv_limit_req_status(&res, 0), "DELAYED");
    assert_string_equal(pv_limit_req_status(&res, 1), "DELAYED_DRY_RUN");
    pv_limit_req_log(&l, &res, PV_LOG_WARN, 1, ", client: 127.0.0.1");
    assert_int_equal(check1(&l, "k", 0, &res), PV_LIMIT_REJECT);
    assert_string_equal(pv_limit_req_status(&res, 0), "REJECTED");
    assert_string_equal(pv_limit_req_status(&res, 1), "REJECTED_DRY_RUN");
    pv_limit_req_log(&l, &res, PV_LOG_ERR, 1, NULL);
    pv_limit_req_log(&l, &res, PV_LOG_ERR, 0, NULL);

    log = log_take();
    assert_non_null(strstr(log, "[notice] "));
    assert_non_null(strstr(log, "delaying request, dry run, excess: 1.000, by zone \"one\", client: 127.0.0.1\n"));
    assert_non_null(strstr(log, "[error] "));
    assert_non_null(strstr(log, "limiting requests, dry run, excess: 2.000 by zone \"one\"\n"));
    assert_non_null(strstr(log, "limiting requests, excess: 2.000 by zone \"one\"\n"));
    assert_null(strstr(log, "PASS"));
    free(log);

    pv_limit_conn_zone_t *cz = pv_limit_conn_zone_new("addr", 64 * 1024);
    pv_limit_conn_t cl = {cz, 1};
    pv_limit_conn_log(&cl, PV_LOG_WARN, 1, NULL);
    pv_limit_conn_log(&cl, PV_LOG_WARN, 0, ", client: ::1");
    log = log_take();
    assert_non_null(strstr(log, "[warn] "));
    assert_non_null(strstr(log, "limiting connections, dry run, by zone \"addr\"\n"));
    assert_non_null(strstr(log, "limiting connections by zone \"addr\", client: ::1\n"));
    free(log);
    pv_limit_conn_zone_free(cz);
    pv_limit_req_zone_free(z);
}

/* A four-unit zone (one shard): the least recently used key goes when a new
 * one needs room; a lookup, even a rejected one, refreshes a key. */
static void test_lru_eviction(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("tiny", 4 * PV_LIMIT_UNIT, rate_of("1r/s"));
    pv_limit_req_t l = {z, 0, 0};
    pv_limit_req_result_t res;

    assert_int_equal(z->t.nshards, 1);
    assert_int_equal(check1(&l, "k1", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k2", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k3", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "k4", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 4);
    assert_int_equal(check1(&l, "k5", 1, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 4);
    assert_false(zone_has(z, "k1"));
    assert_int_equal(check1(&l, "k3", 2, &res), PV_LIMIT_REJECT);
    assert_int_equal(check1(&l, "k6", 3, &res), PV_LIMIT_PASS);
    assert_false(zone_has(z, "k2"));
    assert_true(zone_has(z, "k3"));
    assert_true(zone_has(z, "k4"));
    assert_true(zone_has(z, "k5"));
    assert_true(zone_has(z, "k6"));
    /* an evicted key starts afresh: it passes where it would have been rejected */
    assert_int_equal(check1(&l, "k1", 4, &res), PV_LIMIT_PASS);
    assert_false(zone_has(z, "k4"));

    /* a key of two units pushes out two entries */
    char wide[40];
    memset(wide, 'w', sizeof(wide) - 1);
    wide[sizeof(wide) - 1] = '\0';
    assert_int_equal(check1(&l, wide, 5, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 3);
    assert_int_equal(z->t.shards[0].used, 4);
    pv_limit_req_zone_free(z);
}

/* NGINX frees up to two drained entries idle for a minute whenever it
 * creates one, full or not; an entry still owing requests stops the walk. */
static void test_idle_expiry(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("idle", 100 * PV_LIMIT_UNIT, rate_of("1r/s"));
    pv_limit_req_t l = {z, 100 * 1000, PV_LIMIT_NODELAY};
    pv_limit_req_result_t res;

    assert_int_equal(check1(&l, "a", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "b", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "c", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "d", 59999, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 4);
    assert_int_equal(check1(&l, "e", 61000, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 3);
    assert_false(zone_has(z, "a"));
    assert_false(zone_has(z, "b"));
    assert_true(zone_has(z, "c"));
    pv_limit_req_zone_free(z);

    z = pv_limit_req_zone_new("owing", 100 * PV_LIMIT_UNIT, rate_of("1r/s"));
    l.zone = z;
    for (int i = 0; i < 80; i++)
        assert_int_equal(check1(&l, "a", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 79000);
    assert_int_equal(check1(&l, "b", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(check1(&l, "c", 61000, &res), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_req_zone_count(z), 3);
    pv_limit_req_zone_free(z);
}

/* No room and the only entry held by a check in progress: rejected as
 * NGINX's NGX_ERROR ("could not allocate node"), logged at alert. */
static void test_nomem(void **state)
{
    (void)state;
    pv_limit_req_zone_t *z = pv_limit_req_zone_new("full", PV_LIMIT_UNIT, rate_of("1r/s"));
    pv_limit_req_t l = {z, 0, 0};
    pv_limit_req_result_t res;
    char *log = log_take();
    free(log);

    assert_int_equal(check1(&l, "a", 0, &res), PV_LIMIT_PASS);
    pv_lnode_t *a = z->t.shards[0].head;
    a->count = 1;
    assert_int_equal(check1(&l, "b", 0, &res), PV_LIMIT_REJECT);
    assert_true(res.nomem);
    assert_int_equal(res.which, 0);
    assert_string_equal(pv_limit_req_status(&res, 0), "REJECTED");
    log = log_take();
    assert_non_null(strstr(log, "[alert] "));
    assert_non_null(strstr(log, "could not allocate node in limit_req zone \"full\""));
    free(log);
    a->count = 0;
    assert_int_equal(check1(&l, "b", 0, &res), PV_LIMIT_PASS);
    assert_false(zone_has(z, "a"));
    pv_limit_req_zone_free(z);
}

static void test_conn_basic(void **state)
{
    (void)state;
    pv_limit_conn_zone_t *z = pv_limit_conn_zone_new("addr", 64 * 1024);
    pv_limit_conn_ref_t r[4];

    assert_string_equal(pv_limit_conn_zone_name(z), "addr");
    assert_int_equal(pv_limit_conn_acquire(z, S("1.2.3.4"), 2, &r[0]), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_conn_acquire(z, S("1.2.3.4"), 2, &r[1]), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_conn_acquire(z, S("1.2.3.4"), 2, &r[2]), PV_LIMIT_REJECT);
    assert_null(r[2].zone);
    assert_int_equal(pv_limit_conn_acquire(z, S("5.6.7.8"), 2, &r[3]), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_conn_zone_count(z), 2);
    pv_limit_conn_release(&r[0]);
    pv_limit_conn_release(&r[0]);
    assert_int_equal(pv_limit_conn_acquire(z, S("1.2.3.4"), 2, &r[0]), PV_LIMIT_PASS);
    pv_limit_conn_release_all(r, 4);
    assert_int_equal(pv_limit_conn_zone_count(z), 0);
    /* empty key: not limited, nothing held */
    assert_int_equal(pv_limit_conn_acquire(z, S(""), 1, &r[0]), PV_LIMIT_PASS);
    assert_null(r[0].zone);
    pv_limit_conn_zone_free(z);
}

/* A full limit_conn zone rejects new keys and never evicts held ones; a
 * multi-limit reject releases what the request already took. */
static void test_conn_full_and_multi(void **state)
{
    (void)state;
    pv_limit_conn_zone_t *z = pv_limit_conn_zone_new("tiny", 2 * PV_LIMIT_UNIT);
    pv_limit_conn_ref_t r[3];

    assert_int_equal(pv_limit_conn_acquire(z, S("a"), 10, &r[0]), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_conn_acquire(z, S("b"), 10, &r[1]), PV_LIMIT_PASS);
    assert_int_equal(pv_limit_conn_acquire(z, S("c"), 10, &r[2]), PV_LIMIT_NOMEM);
    pv_limit_conn_release(&r[0]);
    assert_int_equal(pv_limit_conn_acquire(z, S("c"), 10, &r[2]), PV_LIMIT_PASS);
    pv_limit_conn_release(&r[1]);
    pv_limit_conn_release(&r[2]);

    pv_limit_conn_zone_t *per_ip = pv_limit_conn_zone_new("ip", 64 * 1024);
    pv_limit_conn_zone_t *per_srv = pv_limit_conn_zone_new("srv", 64 * 1024);
    pv_limit_conn_t ls[2] = {{per_ip, 5}, {per_srv, 1}};
    pv_str_t keys[2] = {S("10.0.0.1"), S("api")};
    pv_limit_conn_ref_t h1[2], h2[2];
    int which;
    assert_int_equal(pv_limit_conn_check(ls, keys, 2, h1, &which), PV_LIMIT_PASS);
    assert_int_equal(which, -1);
    assert_int_equal(pv_limit_conn_check(ls, keys, 2, h2, &which), PV_LIMIT_REJECT);
    assert_int_equal(which, 1);
    /* the per-ip slot taken by the rejected request was given back */
    pv_limit_conn_release_all(h1, 2);
    assert_int_equal(pv_limit_conn_zone_count(per_ip), 0);
    assert_int_equal(pv_limit_conn_zone_count(per_srv), 0);

    char big[PV_LIMIT_CONN_KEY_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pv_str_t k2[2] = {S(big), S("")};
    assert_int_equal(pv_limit_conn_check(ls, k2, 2, h1, &which), PV_LIMIT_PASS);
    assert_null(h1[0].zone);
    assert_null(h1[1].zone);
    char *log = log_take();
    assert_non_null(strstr(log, "more than 255 bytes"));
    free(log);
    pv_limit_conn_zone_free(per_ip);
    pv_limit_conn_zone_free(per_srv);
    pv_limit_conn_zone_free(z);
}

/* ---- two threads on one zone -------------------------------------------- */

enum { T_KEYS = 500, T_ROUNDS = 20, T_SAME = 20000 };

typedef struct thr_arg_s {
    const pv_limit_req_t *limits; /* one or two limits */
    int nlimits;
    atomic_int *passes;           /* per key */
    atomic_int *same;             /* passes on the shared hot key */
} thr_arg_t;

static void *req_hammer(void *p)
{
    thr_arg_t *a = p;
    pv_limit_req_result_t res;
    char key[16];
    for (int r = 0; r < T_ROUNDS; r++) {
        for (int i = 0; i < T_KEYS; i++) {
            snprintf(key, sizeof(key), "key-%d", i);
            pv_str_t k[2] = {S(key), S(key)};
            if (pv_limit_req_check(a->limits, k, a->nlimits, 0, &res) != PV_LIMIT_REJECT)
                atomic_fetch_add(&a->passes[i], 1);
        }
    }
    for (int i = 0; i < T_SAME; i++) {
        pv_str_t k[2] = {S("hot"), S("hot")};
        if (pv_limit_req_check(a->limits, k, a->nlimits, 0, &res) != PV_LIMIT_REJECT)
            atomic_fetch_add(a->same, 1);
    }
    return NULL;
}

static void run_pair(thr_arg_t *arg)
{
    pthread_t th[2];
    for (int i = 0; i < T_KEYS; i++)
        atomic_store(&arg->passes[i], 0);
    atomic_store(arg->same, 0);
    pthread_create(&th[0], NULL, req_hammer, arg);
    pthread_create(&th[1], NULL, req_hammer, arg);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
}

/* With the clock stopped, each key passes exactly burst/1000 + 1 times in
 * total whatever the interleaving; with two limits exactly the tighter
 * one's count, and the looser one is charged exactly that often. */
static void test_threads_req(void **state)
{
    (void)state;
    static atomic_int passes[T_KEYS];
    atomic_int same = 0;
    pv_limit_req_result_t res;

    pv_limit_req_zone_t *za = pv_limit_req_zone_new("a", 1024 * 1024, rate_of("1r/s"));
    pv_limit_req_zone_t *zb = pv_limit_req_zone_new("b", 1024 * 1024, rate_of("1r/s"));
    pv_limit_req_t one[1] = {{za, 3000, PV_LIMIT_NODELAY}};
    thr_arg_t arg = {one, 1, passes, &same};
    run_pair(&arg);
    for (int i = 0; i < T_KEYS; i++)
        assert_int_equal(atomic_load(&passes[i]), 4);
    assert_int_equal(atomic_load(&same), 4);
    assert_int_equal(pv_limit_req_zone_count(za), T_KEYS + 1);
    pv_limit_req_zone_free(za);

    za = pv_limit_req_zone_new("a", 1024 * 1024, rate_of("1r/s"));
    pv_limit_req_t two[2] = {{za, 3000, PV_LIMIT_NODELAY}, {zb, 1000, PV_LIMIT_NODELAY}};
    arg = (thr_arg_t){two, 2, passes, &same};
    run_pair(&arg);
    for (int i = 0; i < T_KEYS; i++)
        assert_int_equal(atomic_load(&passes[i]), 2);
    assert_int_equal(atomic_load(&same), 2);
    assert_unpinned(za);
    /* zone a was charged for the two passes only: the next one is 2.000 */
    assert_int_equal(check1(&two[0], "key-7", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 2000);
    assert_int_equal(check1(&two[0], "hot", 0, &res), PV_LIMIT_PASS);
    assert_int_equal(res.excess, 2000);
    pv_limit_req_zone_free(za);
    pv_limit_req_zone_free(zb);
}

typedef struct conn_arg_s {
    pv_limit_conn_zone_t *z; /* shared zone */
    atomic_int *holders;     /* slots held right now */
    atomic_int *peak;        /* most ever held at once */
} conn_arg_t;

static void *conn_hammer(void *p)
{
    conn_arg_t *a = p;
    pv_limit_conn_ref_t ref;
    for (int i = 0; i < 50000; i++) {
        if (pv_limit_conn_acquire(a->z, S("k"), 3, &ref) != PV_LIMIT_PASS)
            continue;
        int h = atomic_fetch_add(a->holders, 1) + 1;
        int pk = atomic_load(a->peak);
        while (h > pk && !atomic_compare_exchange_weak(a->peak, &pk, h))
            ;
        atomic_fetch_sub(a->holders, 1);
        pv_limit_conn_release(&ref);
    }
    return NULL;
}

static void test_threads_conn(void **state)
{
    (void)state;
    pv_limit_conn_zone_t *z = pv_limit_conn_zone_new("c", 64 * 1024);
    atomic_int holders = 0, peak = 0;
    conn_arg_t arg = {z, &holders, &peak};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, conn_hammer, &arg);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&peak) <= 3);
    assert_true(atomic_load(&peak) >= 1);
    assert_int_equal(pv_limit_conn_zone_count(z), 0);
    pv_limit_conn_zone_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_zone_sizing),
        cmocka_unit_test(test_one_per_second),
        cmocka_unit_test(test_burst_nodelay),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_per_minute),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_clock_behind),
        cmocka_unit_test(test_multi_reject),
        cmocka_unit_test(test_multi_delay),
        cmocka_unit_test(test_multi_empty_keys),
        cmocka_unit_test(test_many_limits),
        cmocka_unit_test(test_status_and_log),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_idle_expiry),
        cmocka_unit_test(test_nomem),
        cmocka_unit_test(test_conn_basic),
        cmocka_unit_test(test_conn_full_and_multi),
        cmocka_unit_test(test_threads_req),
        cmocka_unit_test(test_threads_conn),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
