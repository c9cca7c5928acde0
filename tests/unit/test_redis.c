/* Cluster-wide limit_req over Redis: a real redis-server on a free loopback
 * port, the async client on a portvakt loop. Two clients share one limit;
 * checks pipeline; a cancelled check never calls back; a flushed script
 * cache is survived; a killed server makes checks fail fast with the outage
 * logged once, and a restarted one is found again by itself; a stopped
 * (hung) server times replies out. Skipped when redis-server is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/core/loop.c"
#include "../../src/policy/redis.c"

static char redis_bin[512];      /* redis-server path; empty when not installed */
static int redis_port;           /* the port our server listens on */
static pid_t redis_pid = -1;     /* the running server */
static pv_loop_t *loop;          /* the loop both clients run on */
static pv_redis_t *r1, *r2;      /* two clients, as two workers (or two instances) */
static pv_limit_req_zone_t *zone;
static char log_path[] = "/tmp/pv_test_redis_XXXXXX";

/* ---- harness -------------------------------------------------------------- */

static int find_redis(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/sbin:/usr/local/bin", path ? path : "");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(redis_bin, sizeof(redis_bin), "%s/redis-server", dir);
        if (access(redis_bin, X_OK) == 0)
            return 1;
    }
    redis_bin[0] = '\0';
    return 0;
}

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static int port_open(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void start_redis(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    assert_true(redis_pid >= 0);
    if (redis_pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(redis_bin, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && !port_open(redis_port); i++)
        usleep(10000);
    assert_true(port_open(redis_port));
}

static void stop_redis(void)
{
    if (redis_pid <= 0)
        return;
    kill(redis_pid, SIGCONT);
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = -1;
}

/* Run the loop until pred() holds or ms pass; returns pred(). */
typedef int (*pred_fn)(void);
static pred_fn cur_pred;
static uint64_t deadline;
static pv_timer_t poll_timer;

static void poll_cb(pv_timer_t *t)
{
    if (cur_pred() || pv_loop_now(loop) >= deadline)
        pv_loop_stop(loop);
    else
        pv_timer_set(loop, t, 2);
}

static int run_until(pred_fn pred, uint64_t ms)
{
    loop->stop = 0;
    loop->now = pv_now_ms();
    deadline = loop->now + ms;
    cur_pred = pred;
    pv_timer_set(loop, &poll_timer, 0);
    pv_loop_run(loop);
    pv_timer_del(loop, &poll_timer);
    return pred();
}

static int never(void)
{
    return 0;
}

static int both_up(void)
{
    return pv_redis_up(r1) && pv_redis_up(r2);
}

static int both_down(void)
{
    return !pv_redis_up(r1) && !pv_redis_up(r2);
}

/* Replies collected in arrival order. */
typedef struct got_s {
    int n;                 /* replies so far */
    int action[64];        /* PV_LIMIT_* per reply, -1 for errors */
    uint64_t excess[64];   /* excess per reply */
    uint64_t delay[64];    /* delay_ms per reply */
    const char *err[64];   /* error per reply */
} got_t;

static got_t got;
static int want;

static void got_cb(void *arg, const pv_limit_req_result_t *res, const char *err)
{
    got_t *g = arg;
    int i = g->n++;
    assert_true(i < 64);
    g->action[i] = res ? res->action : -1;
    g->excess[i] = res ? res->excess : 0;
    g->delay[i] = res ? res->delay_ms : 0;
    g->err[i] = err;
}

static int got_all(void)
{
    return got.n >= want;
}

static void ask(pv_redis_t *r, const pv_limit_req_t *l, const char *key)
{
    const char *err = NULL;
    pv_str_t k = {key, strlen(key)};
    loop->now = pv_now_ms(); /* as inside a loop callback */
    assert_int_equal(pv_redis_limit(r, l, k, got_cb, &got, NULL, &err), PV_AGAIN);
}

static void reset_got(int n)
{
    memset(&got, 0, sizeof(got));
    want = n;
}

static int count_in_log(const char *needle)
{
    FILE *f = fopen(log_path, "r");
    char line[2048];
    int n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* A blocking side connection, as an operator would use redis-cli. */
static void redis_cmd(const char *cmd)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *rep = redisCommand(c, cmd);
    assert_non_null(rep);
    assert_int_not_equal(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    redisFree(c);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    int fd = mkstemp(log_path);
    if (fd < 0)
        return -1;
    close(fd);
    pv_log_open(log_path, PV_LOG_INFO);
    if (!find_redis())
        return 0;
    redis_port = free_port();
    if (redis_port <= 0)
        return -1;
    start_redis();
    loop = pv_loop_new();
    pv_timer_init(&poll_timer, poll_cb, NULL);
    r1 = pv_redis_new(loop, &(pv_redis_target_t){.addr = {.host = "127.0.0.1", .port = redis_port}});
    r2 = pv_redis_new(loop, &(pv_redis_target_t){.addr = {.host = "127.0.0.1", .port = redis_port}});
    if (!r1 || !r2)
        return -1;
    pv_redis_set_timeouts(r1, 300, 300, 20, 200);
    pv_redis_set_timeouts(r2, 300, 300, 20, 200);
    zone = pv_limit_req_zone_new("api", 64 * 1024, 1000);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (loop) {
        pv_redis_free(r1);
        pv_redis_free(r2);
        pv_loop_free(loop);
    }
    pv_limit_req_zone_free(zone);
    stop_redis();
    unlink(log_path);
    return 0;
}

/* ---- tests ------------------------------------------------------------------- */

/* Checks queued while the first connection is made go out with it; both
 * clients then see one bucket per key. */
static void test_shared_limit(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 0, 0};

    reset_got(1);
    ask(r1, &l, "early");
    assert_true(run_until(got_all, 3000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
    assert_true(run_until(both_up, 3000));

    reset_got(1);
    ask(r1, &l, "user");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
    assert_int_equal(got.excess[0], 0);
    reset_got(1);
    ask(r2, &l, "user");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_REJECT);
    assert_true(got.excess[0] > 0 && got.excess[0] <= 1000);

    /* binary keys ($binary_remote_addr): NUL bytes are part of the key */
    const char *err = NULL;
    pv_str_t a = {"\x0a\x00\x00\x01", 4}, b = {"\x0a\x00\x00\x02", 4};
    reset_got(3);
    loop->now = pv_now_ms();
    assert_int_equal(pv_redis_limit(r1, &l, a, got_cb, &got, NULL, &err), PV_AGAIN);
    assert_int_equal(pv_redis_limit(r1, &l, b, got_cb, &got, NULL, &err), PV_AGAIN);
    assert_int_equal(pv_redis_limit(r1, &l, a, got_cb, &got, NULL, &err), PV_AGAIN);
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
    assert_int_equal(got.action[1], PV_LIMIT_PASS);
    assert_int_equal(got.action[2], PV_LIMIT_REJECT);
}

/* Twenty checks in one go ride one connection; replies keep their order:
 * rate=1r/s burst=5 nodelay lets exactly six through. */
static void test_pipeline_and_delay(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 5000, PV_LIMIT_NODELAY};
    reset_got(20);
    for (int i = 0; i < 20; i++)
        ask(r1, &l, "pipe");
    assert_int_equal(r1->inflight, 20);
    assert_true(run_until(got_all, 2000));
    for (int i = 0; i < 20; i++)
        assert_int_equal(got.action[i], i < 6 ? PV_LIMIT_PASS : PV_LIMIT_REJECT);
    assert_true(got.excess[5] > 4900 && got.excess[5] <= 5000); /* Redis time may tick */

    /* from both clients at once: still exactly six per key */
    reset_got(20);
    for (int i = 0; i < 20; i++)
        ask(i % 2 ? r2 : r1, &l, "pipe2");
    assert_true(run_until(got_all, 2000));
    int pass = 0;
    for (int i = 0; i < 20; i++) {
        assert_int_not_equal(got.action[i], -1);
        pass += got.action[i] == PV_LIMIT_PASS;
    }
    assert_int_equal(pass, 6);

    /* 12 MB of pipelined checks while Redis is paused fill the socket:
     * writing stops on EAGAIN (no spinning) and resumes on the EPOLLOUT
     * edge once Redis reads again */
    enum { BIG = 60, BIGKEY = 200000 };
    char *keys = malloc((size_t)BIG * BIGKEY);
    const char *err = NULL;
    pv_redis_set_timeouts(r1, 0, 10000, 0, 0);
    kill(redis_pid, SIGSTOP);
    reset_got(BIG);
    loop->now = pv_now_ms();
    for (int i = 0; i < BIG; i++) {
        char *k = keys + (size_t)i * BIGKEY;
        memset(k, 'a' + i % 26, BIGKEY);
        snprintf(k, 16, "big-%d", i);
        pv_str_t ks = {k, BIGKEY};
        assert_int_equal(pv_redis_limit(r1, &l, ks, got_cb, &got, NULL, &err), PV_AGAIN);
    }
    run_until(never, 200);
    assert_int_equal(r1->want_write, 1);
    assert_false(pv_timer_armed(&r1->flush));
    assert_int_equal(got.n, 0);
    kill(redis_pid, SIGCONT);
    assert_true(run_until(got_all, 10000));
    for (int i = 0; i < BIG; i++)
        assert_int_equal(got.action[i], PV_LIMIT_PASS);
    free(keys);
    pv_redis_set_timeouts(r1, 0, 300, 0, 0);

    /* without nodelay the second request waits excess * 1000 / rate */
    pv_limit_req_t d = {zone, 5000, 0};
    reset_got(2);
    ask(r1, &d, "slow");
    ask(r1, &d, "slow");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
    assert_int_equal(got.action[1], PV_LIMIT_DELAY);
    assert_true(got.delay[1] > 900 && got.delay[1] <= 1000);
}

/* A cancelled check is answered by Redis but never reaches its caller;
 * a later check on the same connection still gets its own answer. */
static void test_cancel(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 0, 0};
    got_t lost = {0};
    pv_redis_req_t *q = NULL;
    const char *err = NULL;
    pv_str_t k = {"cancelled", 9};
    assert_int_equal(pv_redis_limit(r1, &l, k, got_cb, &lost, &q, &err), PV_AGAIN);
    assert_non_null(q);
    pv_redis_cancel(q);
    reset_got(1);
    ask(r1, &l, "after-cancel");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
    assert_int_equal(lost.n, 0);
    assert_int_equal(r1->inflight, 0);
}

/* After SCRIPT FLUSH, EVALSHA gets NOSCRIPT and the check is resent with
 * the script itself, transparently. */
static void test_noscript(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    redis_cmd("SCRIPT FLUSH");
    pv_limit_req_t l = {zone, 0, 0};
    reset_got(2);
    ask(r1, &l, "flushed");
    ask(r2, &l, "flushed");
    assert_true(run_until(got_all, 2000));
    assert_null(got.err[0]);
    assert_null(got.err[1]);
    assert_int_equal(got.action[0] + got.action[1], PV_LIMIT_PASS + PV_LIMIT_REJECT);
}

/* Redis dies: checks in flight fail, new ones fail at once, the outage is
 * logged once per client however many reconnects fail, and a restarted
 * server is found again without help (and that logged once too). */
static void test_outage_and_recovery(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 0, 0};
    int down0 = count_in_log("unavailable");
    int back0 = count_in_log("is back after");

    reset_got(1);
    ask(r1, &l, "in-flight");
    stop_redis();
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], -1);
    assert_non_null(got.err[0]);
    assert_true(run_until(both_down, 2000));

    const char *err = NULL;
    pv_str_t k = {"x", 1};
    uint64_t t0 = pv_now_ms();
    assert_int_equal(pv_redis_limit(r1, &l, k, got_cb, &got, NULL, &err), PV_ERR);
    assert_string_equal(err, "redis unavailable");
    assert_true(pv_now_ms() - t0 < 50);
    assert_int_equal(got.n, 1);

    uint64_t a1 = r1->attempts, a2 = r2->attempts;
    run_until(never, 600);
    assert_true(r1->attempts >= a1 + 2);
    assert_true(r2->attempts >= a2 + 2);
    assert_int_equal(count_in_log("unavailable") - down0, 2);
    assert_int_equal(count_in_log("is back after"), back0);

    start_redis();
    assert_true(run_until(both_up, 3000));
    assert_int_equal(count_in_log("is back after") - back0, 2);
    assert_int_equal(count_in_log("unavailable") - down0, 2);

    /* a fresh server: a fresh bucket */
    reset_got(2);
    ask(r1, &l, "user");
    ask(r2, &l, "user");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0] + got.action[1], PV_LIMIT_PASS + PV_LIMIT_REJECT);
}

/* A hung server (SIGSTOP) still accepts TCP connections from its backlog:
 * the reply timeout fails the check, reconnects do not count as recovery
 * until Redis answers, and the outage is logged once. */
static void test_hung_server(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 0, 0};
    int down0 = count_in_log("unavailable");
    int back0 = count_in_log("is back after");

    kill(redis_pid, SIGSTOP);
    reset_got(1);
    ask(r1, &l, "hung");
    uint64_t t0 = pv_now_ms();
    assert_true(run_until(got_all, 3000));
    assert_int_equal(got.action[0], -1);
    assert_string_equal(got.err[0], "redis reply timed out");
    assert_true(pv_now_ms() - t0 >= 250);
    assert_false(pv_redis_up(r1));
    run_until(never, 800);
    assert_false(pv_redis_up(r1));
    assert_int_equal(count_in_log("unavailable") - down0, 1);
    assert_int_equal(count_in_log("redis reply timed out"), 1);

    kill(redis_pid, SIGCONT);
    assert_true(run_until(both_up, 3000));
    assert_int_equal(count_in_log("is back after") - back0, 1);
    reset_got(1);
    ask(r1, &l, "after-hang");
    assert_true(run_until(got_all, 2000));
    assert_int_equal(got.action[0], PV_LIMIT_PASS);
}

/* Freeing a client with a check in flight answers it with an error. */
static void test_free_pending(void **state)
{
    (void)state;
    if (!redis_bin[0])
        skip();
    pv_limit_req_t l = {zone, 0, 0};
    pv_redis_t *r3 = pv_redis_new(loop, &(pv_redis_target_t){.addr = {.host = "127.0.0.1", .port = redis_port}});
    assert_non_null(r3);
    reset_got(1);
    ask(r3, &l, "closing");
    pv_redis_free(r3);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.err[0], "redis client closed");
    assert_null(pv_redis_new(loop, &(pv_redis_target_t){.addr = {.host = "127.0.0.1", .port = 0}}));
    assert_null(pv_redis_new(loop, &(pv_redis_target_t){.db = 1}));
    /* a name is looked up by the config loader, never by the client */
    pv_redis_target_t named = {.addr = {.host = "localhost", .port = redis_port}};
    assert_null(pv_redis_new(loop, &named));
    char err[128];
    assert_int_equal(pv_redis_resolve(&named.addr, err, sizeof(err)), 0);
    assert_true(strcmp(named.addr.ip, "127.0.0.1") == 0 || strcmp(named.addr.ip, "::1") == 0);
    pv_redis_t *r4 = pv_redis_new(loop, &named);
    assert_non_null(r4);
    pv_redis_free(r4);
    pv_redis_addr_t nowhere = {.host = "nowhere.invalid", .port = 1};
    assert_int_equal(pv_redis_resolve(&nowhere, err, sizeof(err)), -1);
    assert_string_equal(nowhere.ip, "");
    assert_true(err[0] != '\0');
}

/* Clients are shared by workers' zones with the same target only. */
static void test_target_eq(void **state)
{
    (void)state;
    pv_redis_addr_t s1[] = {{.host = "127.0.0.1", .port = 26379}, {.host = "127.0.0.2", .port = 26379}};
    pv_redis_addr_t s2[] = {{.host = "127.0.0.1", .port = 26379}, {.host = "127.0.0.2", .port = 26380}};
    pv_redis_target_t a = {.addr = {.host = "h", .port = 1}, .db = 2, .user = "u", .password = "p"};
    pv_redis_target_t b = a;
    assert_true(pv_redis_target_eq(&a, &b));
    /* the same name at another address (a reload resolved it anew) */
    strcpy(b.addr.ip, "10.0.0.2");
    assert_false(pv_redis_target_eq(&a, &b));
    b = a;
    b.password = "q";
    assert_false(pv_redis_target_eq(&a, &b));
    b = a;
    b.user = NULL;
    assert_false(pv_redis_target_eq(&a, &b));
    b = a;
    b.db = 0;
    assert_false(pv_redis_target_eq(&a, &b));
    pv_redis_target_t c = {.sentinels = s1, .nsentinels = 2, .master = "m"};
    pv_redis_target_t d = c;
    assert_true(pv_redis_target_eq(&c, &d));
    d.sentinels = s2;
    assert_false(pv_redis_target_eq(&c, &d));
    d = c;
    d.master = "n";
    assert_false(pv_redis_target_eq(&c, &d));
    pv_redis_target_t u = {.unix_path = "/run/redis.sock"}, v = {.unix_path = "/run/other.sock"};
    assert_false(pv_redis_target_eq(&u, &v));
    assert_false(pv_redis_target_eq(&u, &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_eq),
        cmocka_unit_test(test_shared_limit),
        cmocka_unit_test(test_pipeline_and_delay),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_outage_and_recovery),
        cmocka_unit_test(test_hung_server),
        cmocka_unit_test(test_free_pending),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
