/* The balancing arithmetic (src/upstream/balance.c) on peers made here,
 * without sockets: each method's choices, NGINX's formulas worked out by
 * hand, failures and effective weights, backups, max_conns, slow_start,
 * tries; the consistent-hash ring; and the upstream block's parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/config/conf_int.h"
#include "../../src/core/crc32.h"
#include "../../src/http/vars.h"
#include "../../src/upstream/balance.h"

#define MAXS 8

static pv_upstream_server_t srv[MAXS];
static pv_upstream_conf_t cf;
static pv_peer_t peer[MAXS];
static pv_peer_t *peers[MAXS];

/* n servers with these weights (names "10.0.0.I:80"), nprimary of them
 * primaries, for method m. */
static void setup(int n, int nprimary, const int *w, int m)
{
    static char names[MAXS][32];
    memset(srv, 0, sizeof(srv));
    memset(&cf, 0, sizeof(cf));
    memset(peer, 0, sizeof(peer));
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "10.0.0.%d:80", i + 1);
        snprintf(srv[i].text, sizeof(srv[i].text), "%s", names[i]);
        srv[i].name = names[i];
        srv[i].line = i;
        srv[i].weight = w[i];
        srv[i].max_fails = 1;
        srv[i].fail_timeout = 10000;
        srv[i].backup = i >= nprimary;
        peer[i].bal.weight = w[i];
        peer[i].bal.effective_weight = w[i];
        peers[i] = &peer[i];
    }
    cf.name = "u";
    cf.servers = srv;
    cf.nservers = n;
    cf.nprimary = nprimary;
    cf.method = m;
}

/* A new request's first pick, released with verdict. */
static int one(const char *key, const struct sockaddr *client, int verdict, int64_t now)
{
    pv_upick_t k;
    pv_bal_init(&k, &cf, NULL, key, key ? strlen(key) : 0, client, 0);
    int s = pv_bal_get(&k, &cf, peers, now);
    pv_bal_free(&k, &cf, peers, verdict, now);
    return s;
}

static void test_crc32(void **state)
{
    assert_int_equal(pv_crc32("123456789", 9), 0xcbf43926u);
    uint32_t c = pv_crc32_update(PV_CRC32_INIT, "1234", 4);
    assert_int_equal(pv_crc32_final(pv_crc32_update(c, "56789", 5)), 0xcbf43926u);
}

static void test_rr_effective_weight(void **state)
{
    int w[3] = {5, 1, 1};
    setup(3, 3, w, PV_BAL_RR);
    srv[0].max_fails = 5;
    /* a failure takes weight / max_fails off the effective weight */
    assert_int_equal(one(NULL, NULL, PV_BAL_FAILED, 100), 0);
    assert_int_equal(peer[0].bal.effective_weight, 4);
    assert_int_equal(peer[0].bal.fails, 1);
    /* each round gives one back */
    one(NULL, NULL, PV_BAL_OK, 200);
    assert_int_equal(peer[0].bal.effective_weight, 5);
    /* a success inside the window does not clear the failures; one after
     * the window (the pick moves the check time on) does */
    for (int i = 0; i < 7; i++)
        one(NULL, NULL, PV_BAL_OK, 300);
    assert_int_equal(peer[0].bal.fails, 1);
    for (int i = 0; i < 7; i++)
        one(NULL, NULL, PV_BAL_OK, 100 + 10001);
    assert_int_equal(peer[0].bal.fails, 0);
}

static void test_rr_fail_window(void **state)
{
    int w[2] = {1, 1};
    setup(2, 2, w, PV_BAL_RR);
    assert_int_equal(one(NULL, NULL, PV_BAL_FAILED, 1000), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(one(NULL, NULL, PV_BAL_OK, 1000 + 10000), 1); /* window end inclusive */
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 |= one(NULL, NULL, PV_BAL_OK, 1000 + 10001) == 0;
    assert_true(seen0);
    /* max_fails=0: never failed out */
    srv[1].max_fails = 0;
    for (int i = 0; i < 3; i++)
        one(NULL, NULL, PV_BAL_FAILED, 30000);
    assert_true(pv_bal_usable(&srv[1], &peer[1].bal, 30000));
}

static void test_backup_and_tries(void **state)
{
    int w[4] = {1, 1, 1, 2};
    setup(4, 2, w, PV_BAL_RR);
    srv[1].down = 1;
    pv_upick_t k;
    pv_bal_init(&k, &cf, NULL, NULL, 0, NULL, 0);
    assert_int_equal(k.tries, 3); /* the down one is not a try */
    assert_int_equal(pv_bal_get(&k, &cf, peers, 0), 0);
    pv_bal_free(&k, &cf, peers, PV_BAL_FAILED, 0);
    assert_int_equal(k.tries, 2);
    /* primaries used up: the backups, heavier first */
    assert_int_equal(pv_bal_get(&k, &cf, peers, 0), 3);
    assert_true(k.backup);
    pv_bal_free(&k, &cf, peers, PV_BAL_FAILED, 0);
    assert_int_equal(pv_bal_get(&k, &cf, peers, 0), 2);
    pv_bal_free(&k, &cf, peers, PV_BAL_OK, 0);
    assert_int_equal(pv_bal_get(&k, &cf, peers, 0), -1);
    assert_int_equal(k.tries, 0);
    /* proxy_next_upstream_tries caps it; a drop gives the try back */
    pv_bal_init(&k, &cf, NULL, NULL, 0, NULL, 2);
    assert_int_equal(k.tries, 2);
    assert_true(pv_bal_get(&k, &cf, peers, 20000) >= 0);
    pv_bal_free(&k, &cf, peers, PV_BAL_DROP, 20000);
    assert_int_equal(k.tries, 2);
    /* a single server: never failed out, and no retry */
    setup(1, 1, w, PV_BAL_RR);
    pv_bal_init(&k, &cf, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pv_bal_get(&k, &cf, peers, 0), 0);
    pv_bal_free(&k, &cf, peers, PV_BAL_FAILED, 0);
    assert_int_equal(k.tries, 0);
    assert_int_equal(peer[0].bal.fails, 0);
}

static void test_max_conns_and_least_conn(void **state)
{
    int w[3] = {1, 2, 1};
    setup(3, 3, w, PV_BAL_LEAST_CONN);
    /* all idle: the round robin among equals picks the heavy one */
    pv_upick_t held;
    pv_bal_init(&held, &cf, NULL, NULL, 0, NULL, 0);
    assert_int_equal(pv_bal_get(&held, &cf, peers, 0), 1);
    /* 1 conn for weight 2 ties 0 conns for weight 1? no: 1*1 > 0*2 */
    assert_int_equal(one(NULL, NULL, PV_BAL_OK, 0) != 1, 1);
    peer[0].bal.conns = 3;
    peer[2].bal.conns = 3;
    /* 1/2 beats 3/1 */
    assert_int_equal(one(NULL, NULL, PV_BAL_OK, 0), 1);
    srv[1].max_conns = 1;
    assert_int_equal(one(NULL, NULL, PV_BAL_OK, 0) != 1, 1);
    pv_bal_free(&held, &cf, peers, PV_BAL_OK, 0);
    assert_int_equal(peer[1].bal.conns, 0);
}

static void test_ip_hash(void **state)
{
    int w[3] = {1, 1, 1};
    setup(3, 3, w, PV_BAL_IP_HASH);
    struct sockaddr_in a = {.sin_family = AF_INET}, b = a, c = a;
    inet_pton(AF_INET, "10.1.2.3", &a.sin_addr);
    inet_pton(AF_INET, "10.1.2.200", &b.sin_addr);
    inet_pton(AF_INET, "10.1.3.3", &c.sin_addr);
    /* h = 89; h = (h * 113 + byte) % 6271 over 10, 1, 2: 2680; 2680 % 3 = 1 */
    assert_int_equal(one(NULL, (struct sockaddr *)&a, PV_BAL_OK, 0), 1);
    /* the same /24 goes to the same server */
    for (int i = 0; i < 5; i++)
        assert_int_equal(one(NULL, (struct sockaddr *)&b, PV_BAL_OK, 0), 1);
    (void)c;
    /* a down server is walked past; the walk is stable */
    srv[1].down = 1;
    int s = one(NULL, (struct sockaddr *)&a, PV_BAL_OK, 0);
    assert_true(s == 0 || s == 2);
    assert_int_equal(one(NULL, (struct sockaddr *)&b, PV_BAL_OK, 0), s);
}

static void test_hash(void **state)
{
    int w[3] = {1, 2, 1};
    setup(3, 3, w, PV_BAL_HASH);
    /* crc32("abc") >> 16 & 0x7fff = 13604; 13604 % 4 = 0: server 0 */
    assert_int_equal(one("abc", NULL, PV_BAL_OK, 0), 0);
    /* then crc32("1abc"): 22746 % 4 = 2, which falls on server 1 */
    srv[0].down = 1;
    assert_int_equal(one("abc", NULL, PV_BAL_OK, 0), 1);
    /* an empty key is round robin */
    srv[0].down = 0;
    char seq[5] = {0};
    for (int i = 0; i < 4; i++)
        seq[i] = (char)('a' + one("", NULL, PV_BAL_OK, 0));
    assert_string_equal(seq, "bacb");
}

static void test_chash_ring(void **state)
{
    int w[3] = {1, 2, 1};
    setup(3, 3, w, PV_BAL_CHASH);
    pv_chash_point_t *pts = calloc(4 * 160, sizeof(*pts));
    int n = pv_conf_chash_ring(srv, 3, pts);
    assert_int_equal(n, 4 * 160);
    int per[3] = {0};
    for (int i = 0; i < n; i++) {
        per[pts[i].line]++;
        if (i)
            assert_true(pts[i - 1].hash < pts[i].hash);
    }
    assert_int_equal(per[1], 320);
    /* the first point: crc32("10.0.0.1" "\0" "80" 00 00 00 00) belongs to line 0 */
    unsigned char in[15] = "10.0.0.1\0" "80";
    uint32_t h0 = pv_crc32(in, 15);
    int found = 0;
    for (int i = 0; i < n; i++)
        found |= pts[i].hash == h0 && pts[i].line == 0;
    assert_true(found);
    /* find: first point at or after */
    assert_int_equal(pv_bal_chash_find(pts, n, 0), 0);
    assert_int_equal(pv_bal_chash_find(pts, n, pts[5].hash), 5);
    assert_int_equal(pv_bal_chash_find(pts, n, pts[5].hash + 1), 6);
    assert_int_equal(pv_bal_chash_find(pts, n, 0xffffffffu), pts[n - 1].hash == 0xffffffffu ? n - 1 : n);
    cf.points = pts;
    cf.npoints = n;
    /* a key's server is the line of its point; the same key, the same one */
    pv_upick_t k;
    pv_bal_init(&k, &cf, NULL, "key42", 5, NULL, 0);
    int line = pts[k.hash % (uint32_t)n].line;
    for (int i = 0; i < 3; i++)
        assert_int_equal(one("key42", NULL, PV_BAL_OK, 0), line);
    /* its server down: the next point of another line */
    srv[line].down = 1;
    int s = one("key42", NULL, PV_BAL_OK, 0);
    assert_true(s >= 0 && s != line);
    free(pts);
}

static void test_random(void **state)
{
    int w[3] = {1, 3, 1};
    setup(3, 3, w, PV_BAL_RANDOM);
    srv[2].down = 1;
    pv_bal_seed(42);
    int count[3] = {0};
    for (int i = 0; i < 400; i++)
        count[one(NULL, NULL, PV_BAL_OK, 0)]++;
    assert_int_equal(count[2], 0);
    assert_true(count[1] > count[0]);
    /* two: the pair's less loaded one */
    cf.method = PV_BAL_RANDOM2;
    srv[2].down = 0;
    peer[1].bal.conns = 100;
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 200; i++)
        count[one(NULL, NULL, PV_BAL_OK, 0)]++;
    assert_true(count[1] < count[0] && count[1] < count[2]);
}

static void test_slow_start(void **state)
{
    int w[2] = {10, 10};
    setup(2, 2, w, PV_BAL_RR);
    srv[0].slow_start = 10000;
    assert_int_equal(one(NULL, NULL, PV_BAL_FAILED, 1000), 0);
    peer[0].bal.effective_weight = 10;
    /* back after its window: it starts at a tenth of its weight */
    int n0 = 0;
    for (int i = 0; i < 22; i++)
        n0 += one(NULL, NULL, PV_BAL_OK, 1000 + 10001) == 0;
    assert_true(peer[0].bal.slow_since != 0);
    assert_true(n0 >= 1 && n0 <= 4);
    /* once slow_start has passed, an equal share */
    n0 = 0;
    for (int i = 0; i < 20; i++)
        n0 += one(NULL, NULL, PV_BAL_OK, 1000 + 10001 + 10000) == 0;
    assert_int_equal(n0, 10);
}

/* A pick of server `want` released after an answer of status. */
static int64_t answer(int want, int verdict, int status, int64_t now)
{
    pv_upick_t k;
    pv_bal_init(&k, &cf, NULL, NULL, 0, NULL, 0);
    for (int n = 0; n < 8; n++) {
        int s = pv_bal_get(&k, &cf, peers, now);
        if (s == want) {
            int64_t t = pv_bal_observe(&k, &cf, peers, verdict, status, now);
            pv_bal_free(&k, &cf, peers, verdict, now);
            return t;
        }
        pv_bal_free(&k, &cf, peers, PV_BAL_OK, now);
        pv_bal_init(&k, &cf, NULL, NULL, 0, NULL, 0);
    }
    fail();
    return -1;
}

static void test_outlier_ejection(void **state)
{
    int w[2] = {1, 1};
    setup(2, 2, w, PV_BAL_RR);
    srv[0].max_fails = srv[1].max_fails = 0;
    cf.od_consecutive = 2;
    cf.od_base = 1000;
    cf.od_max = 2500;
    /* a success between breaks the run */
    assert_int_equal(answer(0, PV_BAL_OK, 502, 0), 0);
    assert_int_equal(answer(0, PV_BAL_OK, 200, 0), 0);
    assert_int_equal(answer(0, PV_BAL_OK, 503, 0), 0);
    /* two in a row (a 5xx, then a failure): out for base_time */
    assert_int_equal(answer(0, PV_BAL_FAILED, 0, 0), 1000);
    assert_false(pv_bal_usable(&srv[0], &peer[0].bal, 999));
    assert_true(pv_bal_usable(&srv[0], &peer[0].bal, 1000));
    /* the next ejection is longer, up to max_time */
    answer(0, PV_BAL_OK, 500, 1000);
    assert_int_equal(answer(0, PV_BAL_OK, 500, 1000), 2000);
    answer(0, PV_BAL_OK, 500, 3000);
    assert_int_equal(answer(0, PV_BAL_OK, 500, 3000), 2500);
    /* never the last one */
    srv[1].down = 1;
    answer(0, PV_BAL_OK, 500, 6000);
    assert_int_equal(answer(0, PV_BAL_OK, 500, 6000), 0);
    assert_true(pv_bal_usable(&srv[0], &peer[0].bal, 6000));
}

/* An ejected server with slow_start comes back at a small share of its
 * weight once the ejection ends, and grows to its weight over slow_start. */
static void test_outlier_slow_start(void **state)
{
    int w[2] = {10, 10};
    setup(2, 2, w, PV_BAL_RR);
    srv[0].max_fails = srv[1].max_fails = 0;
    srv[0].slow_start = 10000;
    cf.od_consecutive = 1;
    cf.od_base = 1000;
    cf.od_max = 1000;
    assert_int_equal(answer(0, PV_BAL_OK, 500, 0), 1000);
    assert_int_equal(peer[0].bal.slow_since, 1000);
    int n0 = 0;
    for (int i = 0; i < 22; i++)
        n0 += one(NULL, NULL, PV_BAL_OK, 1000 + 1000) == 0;
    assert_true(n0 >= 1 && n0 <= 4);
    n0 = 0;
    for (int i = 0; i < 20; i++)
        n0 += one(NULL, NULL, PV_BAL_OK, 1000 + 10000) == 0;
    assert_int_equal(n0, 10);
    assert_int_equal(peer[0].bal.slow_since, 0);
}

/* ---- the upstream block ---- */

static char dir[] = "/tmp/pv-balance-XXXXXX";

static pv_conf_t *load(const char *ups, char *err, size_t errlen)
{
    char path[64], text[2048];
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    snprintf(text, sizeof(text),
             "http {\n upstream u {\n%s\n }\n server {\n  listen 127.0.0.1:8080;\n"
             "  location / { proxy_pass http://u; }\n }\n}\n",
             ups);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    return pv_conf_load(path, err, errlen);
}

static void expect(const char *ups, const char *msg)
{
    char err[512];
    pv_conf_t *c = load(ups, err, sizeof(err));
    if (c)
        fail_msg("loaded: %s", ups);
    if (!strstr(err, msg))
        fail_msg("\"%s\" not in \"%s\"", msg, err);
}

static void test_block_parsing(void **state)
{
    char err[512];
    pv_conf_t *c = load("  hash $request_uri consistent;\n  zone u 64k;\n"
                        "  server 127.0.0.1:81 weight=2 max_conns=5;\n  server 127.0.0.1:82 down;",
                        err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    pv_upstream_conf_t *u = c->http->upstreams[0];
    assert_int_equal(u->method, PV_BAL_CHASH);
    assert_int_equal(u->npoints, 3 * 160);
    assert_int_equal(u->servers[0].max_conns, 5);
    assert_string_equal(u->zone, "u");
    pv_conf_unref(c);
    c = load("  server 127.0.0.1:81 backup slow_start=30s;\n  server 127.0.0.1:82;\n  least_conn;", err,
             sizeof(err));
    if (!c)
        fail_msg("%s", err);
    u = c->http->upstreams[0];
    assert_int_equal(u->method, PV_BAL_LEAST_CONN);
    assert_int_equal(u->nprimary, 1);
    assert_string_equal(u->servers[1].text, "127.0.0.1:81");
    assert_int_equal(u->servers[1].slow_start, 30000);
    pv_conf_unref(c);
    c = load("  random two least_conn;\n  server 127.0.0.1:81;", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->http->upstreams[0]->method, PV_BAL_RANDOM2);
    pv_conf_unref(c);

    expect("  server 127.0.0.1:81 weight=0;", "invalid parameter \"weight=0\"");
    expect("  server 127.0.0.1:81 max_conns=x;", "invalid parameter \"max_conns=x\"");
    expect("  server 127.0.0.1:81 slow_start=1q;", "invalid parameter \"slow_start=1q\"");
    expect("  server 127.0.0.1:81 resolv;", "invalid parameter \"resolv\"");
    expect("  ip_hash;\n  server 127.0.0.1:81 backup;\n  server 127.0.0.1:82;",
           "balancing method does not support parameter \"backup\"");
    expect("  server 127.0.0.1:81 backup;\n  server 127.0.0.1:82;\n  hash $uri;",
           "balancing method does not support parameter \"backup\"");
    expect("  random;\n  server 127.0.0.1:81 slow_start=10s;", "balancing method does not support parameter \"slow_start\"");
    expect("  hash $uri cons;\n  server 127.0.0.1:81;", "invalid parameter \"cons\"");
    expect("  hash $nosuchvar;\n  server 127.0.0.1:81;", "unknown \"nosuchvar\" variable");
    expect("  random three;\n  server 127.0.0.1:81;", "invalid parameter \"three\"");
    expect("  random two most_conn;\n  server 127.0.0.1:81;", "invalid parameter \"most_conn\"");
    expect("  least_conn x;\n  server 127.0.0.1:81;", "invalid number of arguments in \"least_conn\"");
    expect("  zone u 1k;\n  server 127.0.0.1:81;", "zone \"u\" is too small");
    expect("  zone u 1q;\n  server 127.0.0.1:81;", "invalid zone size \"1q\"");
    expect("  zone u;\n  zone v;\n  server 127.0.0.1:81;", "\"zone\" directive is duplicate");
    expect("  server 127.0.0.1:81 backup;", "no servers in upstream \"u\"");
    expect("  outlier_detection consecutive=0;\n  server 127.0.0.1:81;", "invalid parameter \"consecutive=0\"");
    expect("  outlier_detection base_time=10s max_time=5s;\n  server 127.0.0.1:81;",
           "\"max_time\" is less than \"base_time\"");
    c = load("  outlier_detection;\n  server 127.0.0.1:81;", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->http->upstreams[0]->od_consecutive, 5);
    assert_int_equal(c->http->upstreams[0]->od_base, 30000);
    pv_conf_unref(c);
    expect("  retry_budget 20;\n  server 127.0.0.1:81;", "invalid value \"20\" in \"retry_budget\" directive");
    expect("  retry_budget 101%;\n  server 127.0.0.1:81;", "invalid value \"101%\" in \"retry_budget\" directive");
    expect("  retry_budget 20% max=3;\n  server 127.0.0.1:81;", "invalid parameter \"max=3\"");
    c = load("  retry_budget 25% min=0;\n  server 127.0.0.1:81;", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->http->upstreams[0]->retry_budget, 25);
    assert_int_equal(c->http->upstreams[0]->retry_min, 0);
    pv_conf_unref(c);
}

static int setup_all(void **state)
{
    pv_http_vars_init();
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown_all(void **state)
{
    char path[64];
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),        cmocka_unit_test(test_rr_effective_weight),
        cmocka_unit_test(test_rr_fail_window), cmocka_unit_test(test_backup_and_tries),
        cmocka_unit_test(test_max_conns_and_least_conn), cmocka_unit_test(test_ip_hash),
        cmocka_unit_test(test_hash),         cmocka_unit_test(test_chash_ring),
        cmocka_unit_test(test_random),       cmocka_unit_test(test_slow_start), cmocka_unit_test(test_outlier_slow_start),
        cmocka_unit_test(test_outlier_ejection), cmocka_unit_test(test_block_parsing),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
