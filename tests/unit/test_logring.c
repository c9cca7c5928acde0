/* The log rings: lines pushed by a thread reach the sink whole and in
 * order; a stuck sink makes pushes drop (counted) without blocking; the
 * error log goes through a ring while the writer runs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/logring.h"

static char dir[] = "/tmp/pv-logring-XXXXXX";

/* A path in the test's directory. */
static const char *tmp_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

/* The whole file as a string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = calloc(1, 1 << 22);
    size_t n = fread(s, 1, (1 << 22) - 1, f);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void test_lines_arrive_in_order(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(pv_logring_start(), PV_OK);
    pv_logsink_t *s = pv_logring_sink(tmp_path("a.log"), "test log", err, sizeof(err));
    assert_non_null(s);
    assert_ptr_equal(pv_logring_sink(tmp_path("a.log"), "test log", err, sizeof(err)), s);
    uint64_t before = pv_logring_dropped();
    for (int i = 0; i < 1000; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "line %d\n", i);
        assert_int_equal(pv_logring_push(s, line, (size_t)n), PV_OK);
    }
    assert_int_equal(pv_logring_flush(5000), PV_OK);
    pv_logring_stop();
    assert_int_equal(pv_logring_dropped(), before);
    char *got = slurp(tmp_path("a.log"));
    char *p = got;
    for (int i = 0; i < 1000; i++) {
        char line[32];
        snprintf(line, sizeof(line), "line %d\n", i);
        assert_memory_equal(p, line, strlen(line));
        p += strlen(line);
    }
    assert_int_equal(*p, '\0');
    free(got);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_full_ring_drops_and_counts(void **state)
{
    (void)state;
    /* a pipe nobody reads: the writer blocks on it at once */
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char fill[4096];
    memset(fill, 'x', sizeof(fill));
    while (write(p[1], fill, sizeof(fill)) > 0)
        ;
    char path[64], err[256];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
    assert_int_equal(pv_logring_start(), PV_OK);
    pv_logsink_t *s = pv_logring_sink(path, "stuck log", err, sizeof(err));
    assert_non_null(s);
    close(p[1]);

    char line[100];
    memset(line, 'l', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    uint64_t before = pv_logring_dropped(), worst = 0;
    int ok = 0, dropped = 0;
    enum { N = 10000 }; /* 1 MB against a 256 KiB ring */
    for (int i = 0; i < N; i++) {
        uint64_t t = mono_ns();
        int rc = pv_logring_push(s, line, sizeof(line));
        t = mono_ns() - t;
        worst = t > worst ? t : worst;
        ok += rc == PV_OK;
        dropped += rc == PV_AGAIN;
    }
    assert_int_equal(ok + dropped, N);
    /* the ring holds whole lines only; everything else was dropped */
    assert_int_equal(ok, PV_LOGRING_SIZE / (int)sizeof(line));
    assert_int_equal(pv_logring_dropped() - before, (uint64_t)dropped);
    assert_true(worst < 50 * 1000000ull);
    assert_int_equal(pv_logring_flush(50), PV_AGAIN);
    /* drain the pipe so stop can finish */
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    char buf[65536];
    uint64_t end = mono_ns() + 5000000000ull;
    while (pv_logring_flush(1) == PV_AGAIN && mono_ns() < end)
        while (read(p[0], buf, sizeof(buf)) > 0)
            ;
    pv_logring_stop();
    close(p[0]);
}

static void test_error_log_through_the_ring(void **state)
{
    (void)state;
    char err[256];
    const char *path = tmp_path("error.log");
    assert_int_equal(pv_log_open(path, PV_LOG_INFO), 0);
    assert_int_equal(pv_logring_start(), PV_OK);
    assert_int_equal(pv_log_use_ring(err, sizeof(err)), PV_OK);
    pv_log(PV_LOG_ERR, "through the ring %d", 1);
    assert_int_equal(pv_logring_flush(5000), PV_OK);
    char *got = slurp(path);
    assert_non_null(strstr(got, "[error] "));
    assert_non_null(strstr(got, ": through the ring 1\n"));
    free(got);
    pv_log_use_direct();
    pv_log(PV_LOG_ERR, "direct again");
    pv_logring_stop();
    got = slurp(path);
    assert_non_null(strstr(got, ": direct again\n"));
    free(got);
    assert_int_equal(pv_log_open("stderr", PV_LOG_ERR), 0);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_arrive_in_order),
        cmocka_unit_test(test_full_ring_drops_and_counts),
        cmocka_unit_test(test_error_log_through_the_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
