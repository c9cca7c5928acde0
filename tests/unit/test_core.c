/* core/: the event loop (edge-triggered readiness, timers in deadline
 * order, the before-sleep hook), buffers, and the output queue written
 * through the plain transport, whose readiness flags say when to wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/core/buf.h"
#include "../../src/core/common.h"
#include "../../src/core/cache.h"
#include "../../src/core/loop.h"
#include "../../src/core/net.h"
#include "../../src/core/outq.h"
#include "../../src/core/xprt.h"

static int order[8], norder;
static pv_loop_t *loop;

static void record_cb(pv_timer_t *t)
{
    order[norder++] = (int)(intptr_t)t->data;
    if (norder == 3)
        pv_loop_stop(loop);
}

static void test_timers_fire_in_deadline_order(void **state)
{
    (void)state;
    loop = pv_loop_new();
    pv_timer_t a, b, c, d;
    pv_timer_init(&a, record_cb, (void *)1);
    pv_timer_init(&b, record_cb, (void *)2);
    pv_timer_init(&c, record_cb, (void *)3);
    pv_timer_init(&d, record_cb, (void *)4);
    norder = 0;
    pv_timer_set(loop, &a, 30);
    pv_timer_set(loop, &b, 10);
    pv_timer_set(loop, &c, 20);
    pv_timer_set(loop, &d, 5);
    assert_true(pv_timer_armed(&d));
    pv_timer_del(loop, &d); /* disarmed: never fires */
    assert_false(pv_timer_armed(&d));
    pv_timer_set(loop, &a, 1); /* re-arming moves it */
    pv_loop_run(loop);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_false(pv_timer_armed(&a));
    pv_loop_free(loop);
}

struct io_rec {
    pv_xprt_t x;
    unsigned events;
    int calls;
};

static void io_cb(pv_io_t *io, unsigned events)
{
    struct io_rec *r = io->data;
    r->events |= events;
    r->calls++;
    pv_xprt_events(&r->x, events);
}

static int hooks;
static void hook_cb(pv_loop_t *l, void *data)
{
    (void)data;
    if (++hooks >= 2)
        pv_loop_stop(l);
}

static void test_readiness_and_hook(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    loop = pv_loop_new();
    struct io_rec r = {0};
    pv_xprt_init(&r.x, sv[0], io_cb, &r);
    assert_int_equal(pv_loop_add(loop, &r.x.io), 0);
    assert_int_equal(write(sv[1], "hello", 5), 5);
    hooks = 0;
    pv_loop_set_hook(loop, hook_cb, NULL);
    pv_loop_run(loop);
    assert_true(r.events & PV_EV_READ);
    assert_true(r.events & PV_EV_WRITE);
    assert_true(r.x.readable && r.x.writable);

    /* a short read clears the flag: the next byte brings a new edge */
    char buf[64];
    assert_int_equal(pv_xprt_read(&r.x, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_false(r.x.readable);
    assert_int_equal(pv_xprt_peek(&r.x), PV_AGAIN);

    /* the peer's FIN: peek and read both see the end of the stream */
    shutdown(sv[1], SHUT_WR);
    assert_int_equal(pv_xprt_peek(&r.x), 0);
    assert_int_equal(pv_xprt_read(&r.x, buf, sizeof(buf)), 0);
    pv_loop_del(loop, &r.x.io);
    pv_xprt_close(&r.x);
    assert_int_equal(r.x.io.fd, -1);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1); /* closed through the table */
    close(sv[1]);
    pv_loop_free(loop);
}

static void test_outq_partial_writes_resume(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    pv_xprt_t x;
    pv_xprt_init(&x, sv[0], NULL, NULL);
    x.writable = 1;

    static char big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    pv_outq_t q;
    pv_outq_reset(&q);
    pv_outq_push(&q, "head:", 5);
    pv_outq_push_chunk(&q, big, sizeof(big));
    pv_outq_push_last_chunk(&q);
    uint64_t sent = 0;
    assert_int_equal(pv_outq_flush(&q, &x, &sent), PV_AGAIN);
    assert_false(x.writable);
    assert_false(pv_outq_empty(&q));

    /* drain the reader and resume until everything has left, in order */
    static char got[220000];
    size_t ngot = 0;
    int rc = PV_AGAIN;
    for (int i = 0; i < 100000 && rc == PV_AGAIN; i++) {
        ssize_t n = read(sv[1], got + ngot, sizeof(got) - ngot);
        if (n > 0)
            ngot += (size_t)n;
        rc = pv_outq_flush(&q, &x, &sent);
    }
    assert_int_equal(rc, PV_OK);
    assert_true(pv_outq_empty(&q));
    for (ssize_t n; (n = read(sv[1], got + ngot, sizeof(got) - ngot)) > 0;)
        ngot += (size_t)n;
    const char *hex = "head:30d40\r\n";
    assert_int_equal(sent, ngot);
    assert_int_equal(ngot, strlen(hex) + sizeof(big) + 2 + 5);
    assert_memory_equal(got, hex, strlen(hex));
    assert_memory_equal(got + strlen(hex), big, sizeof(big));
    assert_memory_equal(got + ngot - 7, "\r\n0\r\n\r\n", 7);

    /* a reset peer is an error, not a stall */
    close(sv[1]);
    pv_outq_push(&q, "x", 1);
    errno = 0;
    assert_int_equal(pv_outq_flush(&q, &x, &sent), PV_ERR);
    assert_int_equal(errno, EPIPE);
    pv_xprt_close(&x);
}

static void test_buffers(void **state)
{
    (void)state;
    pv_buf_t *b = pv_buf_get();
    assert_non_null(b);
    assert_int_equal(b->pos, 0);
    assert_int_equal(b->last, 0);
    assert_true(b->size >= 1024);
    memcpy(b->data, "abcdef", 6);
    b->last = 6;
    b->pos = 4;
    pv_buf_compact(b);
    assert_int_equal(pv_buf_len(b), 2);
    assert_int_equal(b->pos, 0);
    assert_memory_equal(b->data, "ef", 2);
    pv_buf_t *big = pv_buf_get_size(100000);
    assert_non_null(big);
    assert_true(big->size >= 100000);
    assert_int_equal(pv_buf_free_space(big), big->size);
    pv_buf_put(big);
    pv_buf_put(b);
    pv_buf_put(NULL);
    pv_cache_drain_all();
}

/* Buffers come in power-of-two classes from 1 KiB, each reused. */
static void test_buffer_classes(void **state)
{
    (void)state;
    pv_buf_t *a = pv_buf_get_size(1000), *b = pv_buf_get_size(1025), *c = pv_buf_get_size(PV_BUF_SIZE);
    assert_int_equal(a->size, 1024);
    assert_int_equal(b->size, 2048);
    assert_int_equal(c->size, PV_BUF_SIZE);
    pv_buf_put(b);
    assert_ptr_equal(pv_buf_get_size(1500), b);
    pv_buf_put(a);
    pv_buf_put(b);
    pv_buf_put(c);
    pv_cache_drain_all();
}

/* A cache is bounded, and a trim frees what stayed unused since the last
 * one: after a burst it shrinks to the working set, then to nothing. */
static void test_cache_bound_and_decay(void **state)
{
    (void)state;
    static pv_cache_t cache = {.name = "test", .size = 64, .max = 3};
    void *o[4];
    for (int i = 0; i < 4; i++)
        o[i] = malloc(64);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pv_cache_put(&cache, o[i]), 0);
    assert_int_equal(pv_cache_put(&cache, o[3]), -1);
    free(o[3]);
    assert_int_equal(pv_cache_held(), 3 * 64);
    /* the first trim only starts the watch */
    assert_int_equal(pv_cache_trim_all(), 0);
    void *got = pv_cache_get(&cache);
    assert_non_null(got);
    /* two stayed unused since: they go */
    assert_int_equal(pv_cache_trim_all(), 2 * 64);
    assert_int_equal(cache.n, 0);
    assert_null(pv_cache_get(&cache));
    assert_int_equal(pv_cache_put(&cache, got), 0);
    pv_cache_drain_all();
    assert_int_equal(pv_cache_held(), 0);
}

/* The hand-written dotted quad matches inet_ntop() for every octet width. */
static void test_addr_text(void **state)
{
    (void)state;
    static const char *addrs[] = {"0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "1.99.100.9",
                                  "192.168.0.254"};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
        assert_int_equal(inet_pton(AF_INET, addrs[i], &sin.sin_addr), 1);
        char out[INET6_ADDRSTRLEN];
        memset(out, 'x', sizeof(out));
        assert_int_equal(pv_net_addr_text((struct sockaddr *)&sin, out, sizeof(out)), 8080);
        assert_string_equal(out, addrs[i]);
    }
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    assert_int_equal(inet_pton(AF_INET6, "::1", &sin6.sin6_addr), 1);
    char out6[INET6_ADDRSTRLEN];
    assert_int_equal(pv_net_addr_text((struct sockaddr *)&sin6, out6, sizeof(out6)), 1);
    assert_string_equal(out6, "::1");
}

/* The hand-written digit writers match printf's %llu and %llx. */
static void test_digits(void **state)
{
    (void)state;
    static const uint64_t v[] = {0, 1, 9, 10, 15, 16, 255, 4096, 0x1234abcdULL, 1733366400ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char want[24], got[24];
        snprintf(want, sizeof(want), "%llx", (unsigned long long)v[i]);
        got[pv_u64_hex(got, v[i])] = '\0';
        assert_string_equal(got, want);
        snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
        got[pv_u64_digits(got, v[i])] = '\0';
        assert_string_equal(got, want);
    }
}

/* pv_str_ieq() folds ASCII letters and nothing else, as strncasecmp() in
 * the C locale: every pair of bytes, and longer strings. */
static void test_str_ieq(void **state)
{
    (void)state;
    for (int a = 0; a < 256; a++)
        for (int b = 1; b < 256; b++) {
            char ca = (char)a, cb[2] = {(char)b, 0};
            int la = a >= 'A' && a <= 'Z' ? a | 0x20 : a, lb = b >= 'A' && b <= 'Z' ? b | 0x20 : b;
            assert_int_equal(pv_str_ieq((pv_str_t){&ca, 1}, cb, 1), la == lb);
        }
    assert_true(PV_STR_IEQ(((pv_str_t){"content-TYPE", 12}), "Content-Type"));
    assert_false(PV_STR_IEQ(((pv_str_t){"Content-Typf", 12}), "Content-Type"));
    assert_false(PV_STR_IEQ(((pv_str_t){"Content-Typ", 11}), "Content-Type"));
    assert_false(PV_STR_IEQ(((pv_str_t){"X^Y", 3}), "X~Y"));
    assert_false(PV_STR_IEQ(((pv_str_t){"a_b", 3}), "a\x7f" "b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_fire_in_deadline_order),
        cmocka_unit_test(test_readiness_and_hook),
        cmocka_unit_test(test_outq_partial_writes_resume),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_buffer_classes),
        cmocka_unit_test(test_cache_bound_and_decay),
        cmocka_unit_test(test_addr_text),
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_str_ieq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
