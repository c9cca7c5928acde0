/* Upstream pool rules: weighted round robin, failure windows, the
 * keepalive bound with least-recently-used eviction, and idle sockets
 * dropped as soon as the upstream closes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/proc/worker.h"
#include "../../src/upstream/discovery.h"
#include "../../src/upstream/upstream.h"

/* an exchange that ended cleanly, and one that failed */
static const pv_upstream_done_t keep_done = {.resp_complete = 1, .req_complete = 1, .keep = 1};
static const pv_upstream_done_t fail_done = {.failed = 1};

static pv_upstream_server_t servers[3];
static pv_upstream_conf_t ucf;

static void setup_conf(int n, const int *weights, int port)
{
    memset(servers, 0, sizeof(servers));
    memset(&ucf, 0, sizeof(ucf));
    for (int i = 0; i < n; i++) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&servers[i].addr;
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        sa->sin_addr.s_addr = htonl(0x7f000001);
        servers[i].addrlen = sizeof(*sa);
        snprintf(servers[i].text, sizeof(servers[i].text), "127.0.0.1:%d", port);
        servers[i].weight = weights[i];
        servers[i].max_fails = 1;
        servers[i].fail_timeout = 10000;
    }
    ucf.name = "backend";
    ucf.servers = servers;
    ucf.nservers = n;
    ucf.nprimary = n;
    ucf.keepalive = 2;
    ucf.keepalive_requests = 1000;
    ucf.keepalive_timeout = 60000;
    ucf.keepalive_time = 3600000;
}

/* A pool over ucf whose peers are new (a fresh upstream name each time,
 * so no state carries over from another test). */
static void make_pool(pv_upool_t *p)
{
    static int serial;
    static pv_peer_t *peers[3];
    static char name[32];
    memset(p, 0, sizeof(*p));
    p->cf = &ucf;
    snprintf(name, sizeof(name), "backend%d", ++serial);
    for (int i = 0; i < ucf.nservers; i++) {
        peers[i] = pv_peer_acquire(name, (struct sockaddr *)&servers[i].addr, servers[i].addrlen, i);
        pv_peer_configure(peers[i], servers[i].weight, PV_PEER_HC_NONE);
    }
    p->peers = peers;
}

/* One pick for a new request, released as a success. */
static int pick_ok(pv_upool_t *p, uint64_t now)
{
    pv_upick_t k;
    pv_upstream_pick_init(p, &k, NULL, NULL, 0, NULL, 0);
    int s = pv_upstream_get(p, &k, now);
    pv_upstream_free(p, &k, PV_BAL_OK, 0, now);
    return s;
}

/* A request to server `want` (picked first) that fails there. */
static void fail_once(pv_upool_t *p, int want, uint64_t now)
{
    for (int n = 0; n < 16; n++) {
        pv_upick_t k;
        pv_upstream_pick_init(p, &k, NULL, NULL, 0, NULL, 0);
        int s = pv_upstream_get(p, &k, now);
        pv_upstream_free(p, &k, s == want ? PV_BAL_FAILED : PV_BAL_OK, 0, now);
        if (s == want)
            return;
    }
    fail();
}

static void test_smooth_weighted_rr(void **state)
{
    (void)state;
    int w[3] = {5, 1, 1};
    setup_conf(3, w, 1);
    pv_upool_t p;
    make_pool(&p);
    char seq[8] = {0};
    for (int i = 0; i < 7; i++)
        seq[i] = (char)('a' + pick_ok(&p, 0));
    /* NGINX's documented sequence for weights 5,1,1 */
    assert_string_equal(seq, "aabacaa");
}

static void test_fail_window_and_exclude(void **state)
{
    (void)state;
    int w[2] = {1, 1};
    setup_conf(2, w, 1);
    pv_upool_t p;
    make_pool(&p);
    fail_once(&p, 0, 1000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick_ok(&p, 2000), 1);
    /* after fail_timeout it comes back */
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 |= pick_ok(&p, 1000 + 10001) == 0;
    assert_true(seen0);
    /* both tried: nothing left */
    pv_upick_t k;
    pv_upstream_pick_init(&p, &k, NULL, NULL, 0, NULL, 0);
    int a = pv_upstream_get(&p, &k, 50000), b = pv_upstream_get(&p, &k, 50000);
    assert_int_equal(a + b, 1);
    assert_int_equal(pv_upstream_get(&p, &k, 50000), -1);
    pv_upstream_free(&p, &k, PV_BAL_OK, 0, 50000);
}

static int listen_port(int *lfd)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t l = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &l);
    *lfd = fd;
    return ntohs(sa.sin_port);
}

/* One upstream server listening on loopback, a worker with a loop, and
 * the pool in front of the server. */
static void one_server(int *lfd, pv_worker_t *w, pv_upool_t *p)
{
    int w1[1] = {1};
    setup_conf(1, w1, listen_port(lfd));
    memset(w, 0, sizeof(*w));
    w->loop = pv_loop_new();
    make_pool(p);
}

static pv_loop_t *stop_loop;
static void stop_cb(pv_timer_t *t)
{
    (void)t;
    pv_loop_stop(stop_loop);
}

static void run_for(pv_worker_t *w, int ms)
{
    pv_timer_t t;
    pv_timer_init(&t, stop_cb, NULL);
    stop_loop = w->loop;
    pv_timer_set(w->loop, &t, (uint64_t)ms);
    pv_loop_run(w->loop);
}

static void test_pool_bound_and_idle_close(void **state)
{
    (void)state;
    int lfd;
    pv_worker_t w;
    pv_upool_t p;
    one_server(&lfd, &w, &p);

    pv_upconn_t *u[3];
    int peer[3];
    for (int i = 0; i < 3; i++) {
        u[i] = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
        assert_non_null(u[i]);
        peer[i] = accept(lfd, NULL, NULL);
        assert_true(peer[i] >= 0);
        u[i]->connected = 1;
    }
    assert_int_equal(p.opened, 3);
    pv_upstream_release(u[0], &keep_done);
    pv_upstream_release(u[1], &keep_done);
    assert_int_equal(p.nidle, 2);
    /* the pool is full: the least recently used (u[0]) makes room */
    pv_upstream_release(u[2], &keep_done);
    assert_int_equal(p.nidle, 2);
    assert_true(u[0]->closing);
    assert_ptr_equal(p.idle_head, u[2]);
    assert_ptr_equal(p.idle_tail, u[1]);
    /* not reusable: closed, not pooled */
    pv_upconn_t *x = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
    int px = accept(lfd, NULL, NULL);
    pv_upstream_release(x, &fail_done);
    assert_true(x->closing);
    assert_int_equal(p.nidle, 2);
    /* the upstream closes an idle connection: it leaves the pool at once */
    close(peer[1]);
    run_for(&w, 50);
    assert_int_equal(p.nidle, 1);
    assert_ptr_equal(p.idle_head, u[2]);
    /* take_idle hands out the survivor, then nothing */
    pv_upconn_t *t = pv_upstream_take_idle(&p, 0, 0, NULL);
    assert_ptr_equal(t, u[2]);
    assert_null(pv_upstream_take_idle(&p, 0, 0, NULL));
    pv_upstream_close(t);
    pv_upstream_reap(&w);
    close(px);
    close(peer[0]);
    close(peer[2]);
    close(lfd);
    pv_loop_free(w.loop);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    int lfd;
    pv_worker_t w;
    pv_upool_t p;
    one_server(&lfd, &w, &p);
    ucf.keepalive_timeout = 30;
    pv_upconn_t *u = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
    int peer = accept(lfd, NULL, NULL);
    u->connected = 1;
    pv_upstream_release(u, &keep_done);
    assert_int_equal(p.nidle, 1);
    run_for(&w, 100);
    assert_int_equal(p.nidle, 0);
    pv_upstream_reap(&w);
    close(peer);
    close(lfd);
    pv_loop_free(w.loop);
}

/* The pool's guard list, one rule at a time against a clean exchange. */
static void test_return_rule(void **state)
{
    (void)state;
    int w1[1] = {1};
    setup_conf(1, w1, 1);
    pv_worker_t w;
    memset(&w, 0, sizeof(w));
    pv_upool_t p;
    make_pool(&p);
    pv_upconn_t u;
    memset(&u, 0, sizeof(u));
    u.w = &w;
    u.pool = &p;
    u.requests = 1;
    u.created_ms = 1000;
    const uint64_t now = 2000;
    pv_upstream_done_t d = keep_done;
    assert_true(pv_upstream_reusable(&u, &d, now));

    /* what the exchange reports */
    pv_upstream_done_t bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = keep_done;
    bad[0].failed = 1;
    bad[1].resp_complete = 0;
    bad[2].req_complete = 0;
    bad[3].early_response = 1; /* answered before the body was all written */
    bad[4].keep = 0;
    bad[5].leftover = 1;
    for (int i = 0; i < 6; i++)
        assert_false(pv_upstream_reusable(&u, &bad[i], now));

    /* what the connection and the pool know */
    u.x.fin = 1;
    assert_false(pv_upstream_reusable(&u, &d, now));
    u.x.fin = 0;
    u.requests = (uint32_t)ucf.keepalive_requests;
    assert_false(pv_upstream_reusable(&u, &d, now));
    u.requests = 1;
    assert_false(pv_upstream_reusable(&u, &d, u.created_ms + (uint64_t)ucf.keepalive_time));
    w.draining = 1;
    assert_false(pv_upstream_reusable(&u, &d, now));
    w.draining = 0;
    p.retired = 1;
    assert_false(pv_upstream_reusable(&u, &d, now));
    p.retired = 0;
    ucf.keepalive = 0;
    assert_false(pv_upstream_reusable(&u, &d, now));
    ucf.keepalive = 2;
    assert_true(pv_upstream_reusable(&u, &d, now));
}

/* A FIN already queued on an idle socket, not yet seen by the loop: the
 * connection is discarded instead of being handed out. */
static void test_take_idle_peeks_for_fin(void **state)
{
    (void)state;
    int lfd;
    pv_worker_t w;
    pv_upool_t p;
    one_server(&lfd, &w, &p);
    pv_upconn_t *u = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
    int peer = accept(lfd, NULL, NULL);
    u->connected = 1;
    pv_upstream_release(u, &keep_done);
    assert_int_equal(p.nidle, 1);
    close(peer);
    usleep(20000); /* the FIN reaches the socket; the loop has not run */
    assert_null(pv_upstream_take_idle(&p, 0, 0, NULL));
    assert_int_equal(p.nidle, 0);
    assert_true(u->closing);
    pv_upstream_reap(&w);
    close(lfd);
    pv_loop_free(w.loop);
}

/* The peer learns how long the server lets a pooled connection sit idle,
 * and a request that must not be sent twice only gets connections idle
 * for less than half that; the others stay for safe requests. */
static void test_idle_close_learned(void **state)
{
    (void)state;
    int lfd;
    pv_worker_t w;
    pv_upool_t p;
    one_server(&lfd, &w, &p);
    pv_peer_t *peer = p.peers[0];
    assert_int_equal(pv_peer_idle_limit(peer, 5000), -1);

    /* the memory of one sighting: the shortest time wins while it lasts */
    pv_peer_idle_closed(peer, 5000, 800);
    assert_int_equal(pv_peer_idle_limit(peer, 5000), 800);
    pv_peer_idle_closed(peer, 5100, 2000);
    assert_int_equal(pv_peer_idle_limit(peer, 5100), 800);
    pv_peer_idle_closed(peer, 5200, 300);
    assert_int_equal(pv_peer_idle_limit(peer, 5200), 300);
    assert_int_equal(pv_peer_idle_limit(peer, 5200 + PV_PEER_IDLE_MEMORY_MS), -1);
    pv_peer_idle_closed(peer, 5200 + PV_PEER_IDLE_MEMORY_MS, 2000);
    assert_int_equal(pv_peer_idle_limit(peer, 5200 + PV_PEER_IDLE_MEMORY_MS), 2000);

    /* the server closes a pooled connection at once after its answer */
    pv_upconn_t *u = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
    int fd = accept(lfd, NULL, NULL);
    u->connected = 1;
    pv_upstream_release(u, &keep_done);
    close(fd);
    run_for(&w, 50);
    assert_int_equal(p.nidle, 0);
    int64_t learned = pv_peer_idle_limit(peer, pv_loop_now(w.loop));
    assert_true(learned >= 0 && learned <= 50);

    /* a live idle connection: a safe request takes it, an unsafe one not */
    u = pv_upstream_connect(&w, &p, 0, NULL, NULL, NULL, NULL);
    fd = accept(lfd, NULL, NULL);
    u->connected = 1;
    pv_upstream_release(u, &keep_done);
    assert_null(pv_upstream_take_idle(&p, 0, 1, NULL));
    assert_int_equal(p.nidle, 1);
    assert_ptr_equal(pv_upstream_take_idle(&p, 0, 0, NULL), u);

    /* a reused connection that fails before any answer teaches the same */
    atomic_store(&peer->idle_close, 0); /* nothing learned yet */
    u->idle_ms = 40;                     /* how long it sat idle before it was taken */
    pv_upstream_stale(u);
    assert_int_equal(pv_peer_idle_limit(peer, pv_loop_now(w.loop)), 40);
    pv_upstream_close(u);
    pv_upstream_reap(&w);
    close(fd);
    close(lfd);
    pv_loop_free(w.loop);
}

/* More servers than one word of the tried set holds. */
static void test_tried_set_past_64_servers(void **state)
{
    (void)state;
    enum { N = 130 };
    static pv_upstream_server_t many[N];
    static pv_peer_t *peers[N];
    pv_upstream_conf_t cf = {.name = "wide", .servers = many, .nservers = N, .nprimary = N};
    for (int i = 0; i < N; i++) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&many[i].addr;
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)(1000 + i));
        sa->sin_addr.s_addr = htonl(0x7f000001);
        many[i].addrlen = sizeof(*sa);
        many[i].weight = 1;
        peers[i] = pv_peer_acquire(cf.name, (struct sockaddr *)sa, many[i].addrlen, 0);
        pv_peer_configure(peers[i], 1, PV_PEER_HC_NONE);
    }
    pv_upool_t p = {.cf = &cf, .peers = peers};
    uint64_t tried[PV_UPSTREAM_SET_WORDS(N)];
    memset(tried, 0, sizeof(tried));
    pv_upick_t k;
    pv_upstream_pick_init(&p, &k, tried, NULL, 0, NULL, 0);
    memset(tried, 0xff, sizeof(tried));
    tried[129 >> 6] &= ~(1ull << (129 & 63));
    assert_int_equal(pv_upstream_get(&p, &k, 0), 129);
    pv_upstream_free(&p, &k, PV_BAL_OK, 0, 0);
    assert_int_equal(pv_upstream_get(&p, &k, 0), -1);
    for (int i = 0; i < N; i++)
        pv_peer_release(peers[i]);
}

static pv_conf_t *reload_conf(pv_upstream_conf_t *u, pv_http_conf_t *h, pv_upstream_conf_t **list)
{
    static pv_conf_t c;
    memset(&c, 0, sizeof(c));
    memset(h, 0, sizeof(*h));
    list[0] = u;
    h->upstreams = list;
    h->nupstreams = 1;
    c.http = h;
    return &c;
}

/* A reload keeps the state of a server that stays (same upstream name and
 * address) and drops the peer of a removed one. */
static void test_peer_registry_across_reloads(void **state)
{
    (void)state;
    int w2[3] = {1, 1, 1};
    setup_conf(3, w2, 1);
    /* three distinct addresses: ports 1, 2, 3 */
    for (int i = 0; i < 3; i++)
        ((struct sockaddr_in *)&servers[i].addr)->sin_port = htons((uint16_t)(i + 1));
    static pv_upstream_server_t before[2], after[2];
    before[0] = servers[0]; /* A */
    before[1] = servers[1]; /* B */
    after[0] = servers[2];  /* C, new */
    after[1] = servers[0];  /* A, kept (moved in the list) */
    pv_upstream_conf_t ua = ucf, ub = ucf;
    ua.name = ub.name = "reloaded";
    ua.servers = before;
    ub.servers = after;
    ua.nservers = ub.nservers = 2;
    ua.nprimary = ub.nprimary = 2;
    int base = pv_peer_count();

    pv_http_conf_t h1, h2;
    pv_upstream_conf_t *l1[1], *l2[1];
    pv_worker_t w;
    memset(&w, 0, sizeof(w));
    int n1, n2;
    pv_upool_t *old = pv_upstream_pools_new(&w, reload_conf(&ua, &h1, l1), &n1);
    assert_non_null(old);
    assert_int_equal(pv_peer_count(), base + 2);
    fail_once(old, 0, 1000); /* A fails once */
    assert_int_equal(old->peers[0]->bal.fails, 1);

    pv_upool_t *cur = pv_upstream_pools_new(&w, reload_conf(&ub, &h2, l2), &n2);
    assert_non_null(cur);
    assert_int_equal(pv_peer_count(), base + 3);
    /* A is the same object with its failure; C starts clean */
    assert_ptr_equal(cur->peers[1], old->peers[0]);
    assert_int_equal(cur->peers[1]->bal.fails, 1);
    assert_int_equal(cur->peers[0]->bal.fails, 0);
    /* another worker's pools for the same snapshot share the peers */
    pv_upool_t *other = pv_upstream_pools_new(&w, reload_conf(&ub, &h2, l2), &n2);
    assert_ptr_equal(other->peers[1], cur->peers[1]);
    pv_upstream_pools_free(other, n2);

    /* the old generation goes: B is dropped, A and C stay */
    pv_upstream_pools_free(old, n1);
    assert_int_equal(pv_peer_count(), base + 2);
    assert_int_equal(cur->peers[1]->bal.fails, 1);
    /* a success once its window has passed clears it for every worker */
    for (int i = 0; i < 4; i++)
        pick_ok(cur, 1000 + 10001);
    assert_int_equal(cur->peers[1]->bal.fails, 0);
    pv_upstream_pools_free(cur, n2);
    assert_int_equal(pv_peer_count(), base);
}

static struct sockaddr_storage v4(uint32_t host, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sa = (struct sockaddr_in *)&ss;
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    sa->sin_addr.s_addr = htonl(host);
    return ss;
}

/* `server app.test resolve`: the slots of a line follow the answers; an
 * address keeps its slot and state, a gone one empties its slot, which
 * the balancer then skips, and a pooled connection's generation goes
 * stale with its address. */
static void test_resolve_slots(void **state)
{
    (void)state;
    int w[3] = {1, 1, 1};
    setup_conf(3, w, 80);
    for (int i = 0; i < 3; i++) {
        memset(&servers[i].addr, 0, sizeof(servers[i].addr));
        servers[i].addr.ss_family = AF_UNSPEC;
        memcpy((char *)&servers[i].addr + 2, "app.test", 9);
        servers[i].addrlen = 2 + 9;
        servers[i].resolve_host = "app.test";
        servers[i].resolve_port = 80;
        servers[i].resolve_first = 0;
        servers[i].max_fails = 0;
    }
    servers[0].init = v4(0x0a000001, 80);
    servers[0].initlen = sizeof(struct sockaddr_in);
    ucf.name = "slots";
    pv_upool_t p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(pv_upstream_pool_init(&p, &ucf), PV_OK);
    char text[64];
    assert_string_equal(pv_upstream_server_text(&p, 0, text, sizeof(text)), "10.0.0.1:80");
    assert_int_equal(p.peers[1]->bal.hc_down, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pick_ok(&p, 1000), 0); /* the empty slots are skipped */
    p.peers[0]->bal.fails = 1;                  /* state that must stay with 10.0.0.1 */
    uint32_t gen0 = atomic_load(&p.peers[0]->cur_gen);

    struct sockaddr_storage a[2] = {v4(0x0a000002, 80), v4(0x0a000001, 80)};
    socklen_t l[2] = {sizeof(struct sockaddr_in), sizeof(struct sockaddr_in)};
    int added, removed;
    pv_discovery_update(&p, 0, 3, a, l, NULL, 2, &added, &removed);
    assert_int_equal(added, 1);
    assert_int_equal(removed, 0);
    assert_string_equal(pv_upstream_server_text(&p, 0, text, sizeof(text)), "10.0.0.1:80");
    assert_string_equal(pv_upstream_server_text(&p, 1, text, sizeof(text)), "10.0.0.2:80");
    assert_int_equal(p.peers[0]->bal.fails, 1);
    assert_int_equal(atomic_load(&p.peers[0]->cur_gen), gen0);

    /* 10.0.0.1 goes, 10.0.0.3 comes: it takes an empty slot, fresh */
    a[1] = v4(0x0a000003, 80);
    pv_discovery_update(&p, 0, 3, a, l, NULL, 2, &added, &removed);
    assert_int_equal(added, 1);
    assert_int_equal(removed, 1);
    assert_string_equal(pv_upstream_server_text(&p, 1, text, sizeof(text)), "10.0.0.2:80");
    assert_int_not_equal(atomic_load(&p.peers[0]->cur_gen), gen0);
    assert_int_equal(p.peers[0]->bal.fails, 0);
    int seen[3] = {0};
    for (int i = 0; i < 6; i++)
        seen[pick_ok(&p, 2000)]++;
    assert_int_equal(seen[0], 3);
    assert_int_equal(seen[1], 3);
    assert_int_equal(seen[2], 0);
    /* nothing answered: the slots empty, and no server can be picked */
    pv_discovery_update(&p, 0, 3, a, l, NULL, 0, &added, &removed);
    assert_int_equal(removed, 2);
    assert_int_equal(pick_ok(&p, 3000), -1);
    pv_upstream_pool_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smooth_weighted_rr),
        cmocka_unit_test(test_fail_window_and_exclude),
        cmocka_unit_test(test_pool_bound_and_idle_close),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_return_rule),
        cmocka_unit_test(test_take_idle_peeks_for_fin),
        cmocka_unit_test(test_idle_close_learned),
        cmocka_unit_test(test_tried_set_past_64_servers),
        cmocka_unit_test(test_peer_registry_across_reloads),
        cmocka_unit_test(test_resolve_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
