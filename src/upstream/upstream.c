#include "upstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/tcp.h>

#include "discovery.h"
#include "../core/cache.h"
#include "../core/counters.h"
#include "../core/fault.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../core/tls.h"
#include "../http/stats.h"
#include "../proc/worker.h"
#include "discovery.h"
#include "failure.h"
#include "queue.h"

_Static_assert(PV_UPF_COUNT <= PV_STAT_CAUSES, "failure causes fit the metrics");

/* Freelist of connection objects, bounded and given back after a burst. */
static __thread pv_cache_t upconn_cache = {.name = "upstream connection", .size = sizeof(pv_upconn_t), .max = 1024};
/* connections closed during this loop iteration, freed before it waits */
static __thread pv_upconn_t *reap_up;

static void upconn_io_cb(pv_io_t *io, unsigned events);
static void idle_unlink(pv_upool_t *p, pv_upconn_t *u);
static void idle_counted(pv_upool_t *p, const pv_upconn_t *u);
static void upconn_timer_cb(pv_timer_t *t);

/* The pool's recent peak of connections in use: the most at once in this
 * keepalive_grace window or the one before it (HAProxy sizes its idle
 * pools by the same kind of figure). */
static int pool_peak(pv_upool_t *p, uint64_t now)
{
    uint64_t w = (uint64_t)p->cf->keepalive_grace;
    if (now - p->peak_at >= w) {
        p->peak_prev = now - p->peak_at >= 2 * w ? 0 : p->peak_cur;
        p->peak_cur = p->busy;
        p->peak_at = now;
    }
    return PV_MAX(p->peak_cur, p->peak_prev);
}

/* u is given to an exchange. */
static void busy_add(pv_upool_t *p, pv_upconn_t *u, uint64_t now)
{
    u->busy = 1;
    p->busy++;
    if (p->cf->keepalive_grace > 0 && p->busy > pool_peak(p, now))
        p->peak_cur = p->busy;
}

static void busy_end(pv_upconn_t *u)
{
    if (u->busy) {
        u->busy = 0;
        u->pool->busy--;
    }
}

/* ---- max_conns across workers ------------------------------------------
 * Connections to a server with max_conns are counted in its peer's open,
 * shared by every worker: one is opened only in a place reserved below
 * max_conns, and each close gives its place back. A worker refused a
 * place marks the server wanted; while it is, the other workers close
 * their idle connections to it (their idle timers look every
 * WANT_POLL_MS) and those that come back from a request, so that a
 * queued request gets a place at its queue's next poll. */

/* A refusal keeps a server wanted this long: past two of the queue's
 * 100 ms polls, so a request still waiting renews it. */
#define WANTED_MS 250
#define WANT_POLL_MS 100

static int wanted_now(pv_peer_t *peer, uint64_t now)
{
    uint64_t w = atomic_load_explicit(&peer->wanted, memory_order_relaxed);
    return w && (int64_t)(now - w) < WANTED_MS;
}

/* A place for a new connection in peer's open count, when below max. */
static int open_reserve(pv_peer_t *peer, int max)
{
    int n = atomic_load(&peer->open);
    while (n < max)
        if (atomic_compare_exchange_weak(&peer->open, &n, n + 1))
            return 1;
    return 0;
}

/* Give back the place the last pick reserved and no connection took. */
static void resv_drop(pv_upool_t *p)
{
    if (p->resv) {
        atomic_fetch_sub(&p->peers[p->resv - 1]->open, 1);
        p->resv = 0;
    }
}

static pv_upconn_t *idle_of(pv_upool_t *p, int server)
{
    for (pv_upconn_t *u = p->idle_head; u; u = u->next)
        if (u->server == server)
            return u;
    return NULL;
}

/* Whether server s (just picked) can carry the request: no max_conns, an
 * idle connection of this pool, or a place reserved for a new one. */
static int conn_room(pv_upool_t *p, int s, uint64_t now)
{
    int max = p->cf->servers[s].max_conns;
    if (!max || idle_of(p, s))
        return 1;
    if (open_reserve(p->peers[s], max)) {
        p->resv = s + 1;
        return 1;
    }
    atomic_store_explicit(&p->peers[s]->wanted, now ? now : 1, memory_order_relaxed);
    return 0;
}

/* A place in the open count for a new connection to server: the one its
 * pick reserved, a free one, or that of an idle connection of this pool
 * (one the request could not take), which is closed. */
static int open_place(pv_upool_t *p, int server)
{
    if (p->resv == server + 1) {
        p->resv = 0;
        return 1;
    }
    resv_drop(p);
    if (open_reserve(p->peers[server], p->cf->servers[server].max_conns))
        return 1;
    pv_upconn_t *u = idle_of(p, server);
    if (!u || !u->counted)
        return 0;
    u->counted = 0;
    u->close_why = PV_SCLOSE_POOL_FULL;
    pv_upstream_close(u);
    return 1;
}

/* Take the shared peer of every server of p's upstream. */
static int pool_peers(pv_upool_t *p)
{
    const pv_upstream_conf_t *cf = p->cf;
    for (int i = 0; i < cf->nservers; i++) {
        const pv_upstream_server_t *s = &cf->servers[i];
        p->capped |= s->max_conns > 0;
        int nth = 0;
        for (int j = 0; j < i; j++)
            nth += cf->servers[j].addrlen == s->addrlen && memcmp(&cf->servers[j].addr, &s->addr, s->addrlen) == 0;
        p->peers[i] = pv_peer_acquire(cf->name, (const struct sockaddr *)&s->addr, s->addrlen, nth);
        if (!p->peers[i])
            return -1;
        int checks = !cf->health ? PV_PEER_HC_NONE : cf->health->mandatory ? PV_PEER_HC_MANDATORY : PV_PEER_HC_ON;
        pv_peer_configure(p->peers[i], s->weight, checks);
        if (s->resolve_host)
            pv_discovery_slot_init(p->peers[i], s, checks);
    }
    return 0;
}

int pv_upstream_pool_init(pv_upool_t *p, pv_upstream_conf_t *cf)
{
    p->cf = cf;
    int ns = cf->nservers ? cf->nservers : 1;
    p->peers = calloc((size_t)ns, sizeof(pv_peer_t *));
    return p->peers && pool_peers(p) == 0 ? PV_OK : PV_ERR;
}

void pv_upstream_pool_fini(pv_upool_t *p)
{
    pv_upqueue_fini(p);
    if (p->peers)
        resv_drop(p);
    while (p->idle_head)
        pv_upstream_close(p->idle_head);
    for (int j = 0; p->peers && j < p->cf->nservers; j++)
        pv_peer_release(p->peers[j]);
    free(p->peers);
    p->peers = NULL;
}

pv_upool_t *pv_upstream_pools_new(pv_worker_t *w, pv_conf_t *conf, int *npools)
{
    int n = conf->http ? conf->http->nupstreams : 0;
    pv_upool_t *pools = calloc((size_t)(n ? n : 1), sizeof(pv_upool_t));
    if (!pools)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (pv_upstream_pool_init(&pools[i], conf->http->upstreams[i]) != PV_OK) {
            pv_upstream_pools_free(pools, i + 1);
            return NULL;
        }
        pools[i].loop = w ? w->loop : NULL;
    }
    *npools = n;
    return pools;
}

void pv_upstream_pools_free(pv_upool_t *pools, int n)
{
    if (!pools)
        return;
    for (int i = 0; i < n; i++)
        pv_upstream_pool_fini(&pools[i]);
    free(pools);
}

/* The server of `to` with the same address as server s of `from`, or -1. */
static int same_server(const pv_upool_t *to, const pv_upool_t *from, int s)
{
    const pv_upstream_server_t *a = &from->cf->servers[s];
    for (int i = 0; i < to->cf->nservers; i++) {
        const pv_upstream_server_t *b = &to->cf->servers[i];
        if (a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0)
            return i;
    }
    return -1;
}

void pv_upstream_pools_adopt(pv_upool_t *to, int nto, pv_upool_t *from, int nfrom)
{
    for (int i = 0; i < nfrom; i++) {
        pv_upool_t *f = &from[i];
        f->retired = 1;
        pv_upool_t *t = NULL;
        for (int j = 0; j < nto && !t; j++)
            if (strcmp(to[j].cf->name, f->cf->name) == 0)
                t = &to[j];
        /* oldest first, so the most recently used ends up at the head */
        while (f->idle_tail) {
            pv_upconn_t *u = f->idle_tail;
            /* a TLS connection's settings belong to the old snapshot: it
             * is closed, and a new one resumes the session */
            int s = t && !u->tls && t->cf->keepalive > 0 && t->nidle < t->cf->keepalive ? same_server(t, f, u->server) : -1;
            if (s < 0) {
                pv_upstream_close(u);
                continue;
            }
            idle_unlink(f, u);
            u->pool = t;
            u->server = s;
            u->next = t->idle_head;
            if (t->idle_head)
                t->idle_head->prev = u;
            t->idle_head = u;
            if (!t->idle_tail)
                t->idle_tail = u;
            t->nidle++;
            idle_counted(t, u);
            if (t->cf->servers[s].max_conns && !u->counted) {
                /* the server got max_conns with the reload: counted from now */
                u->counted = 1;
                atomic_fetch_add(&u->peer->open, 1);
                pv_timer_set(u->w->loop, &u->timer, WANT_POLL_MS);
            }
        }
    }
}

void pv_upstream_pick_init(pv_upool_t *p, pv_upick_t *k, uint64_t *tried_words, const char *key, size_t keylen,
                           const struct sockaddr *client, int64_t max_tries)
{
    pv_bal_init(k, p->cf, tried_words, key, keylen, client, max_tries);
}

/* Whether group g's retry budget lets one more retry start; under its lock. */
static int budget_left(const pv_upstream_conf_t *cf, const pv_peer_group_t *g)
{
    return !cf->retry_budget || g->retrying < PV_MAX(cf->retry_min, g->active * cf->retry_budget / 100);
}

/* Pick as the method does, passing over servers whose connections are
 * all open elsewhere (conn_room()): such a pick is dropped and the server
 * is left untried, for a later try of the same request. Under the lock. */
static int pick_room(pv_upool_t *p, pv_upick_t *k, uint64_t now)
{
    int skip[16], nskip = 0, s;
    for (;;) {
        s = pv_bal_get(k, p->cf, p->peers, (int64_t)now);
        if (s < 0 || conn_room(p, s, now))
            break;
        pv_bal_free(k, p->cf, p->peers, PV_BAL_DROP, (int64_t)now);
        int again = 0;
        for (int j = 0; j < nskip; j++)
            again |= skip[j] == s;
        if (again || nskip == (int)(sizeof(skip) / sizeof(skip[0]))) {
            s = -1; /* the method came back to it (a lone server) */
            break;
        }
        skip[nskip++] = s;
    }
    for (int j = 0; j < nskip; j++)
        k->tried[skip[j] >> 6] &= ~(1ull << (skip[j] & 63));
    return s;
}

int pv_upstream_get(pv_upool_t *p, pv_upick_t *k, uint64_t now)
{
    pv_peer_group_t *g = p->peers[0]->group;
    resv_drop(p);
    pthread_mutex_lock(&g->lock);
    if (k->picks > 0 && !budget_left(p->cf, g)) {
        pthread_mutex_unlock(&g->lock);
        return PV_UPSTREAM_NO_BUDGET;
    }
    int s = p->capped ? pick_room(p, k, now) : pv_bal_get(k, p->cf, p->peers, (int64_t)now);
    if (s >= 0) {
        k->retry = k->picks > 0;
        k->picks++;
        g->active++;
        g->retrying += k->retry;
    }
    pthread_mutex_unlock(&g->lock);
    return s;
}

int pv_upstream_retry_allowed(pv_upool_t *p)
{
    pv_peer_group_t *g = p->peers[0]->group;
    pthread_mutex_lock(&g->lock);
    int ok = budget_left(p->cf, g);
    pthread_mutex_unlock(&g->lock);
    return ok;
}

void pv_upstream_free(pv_upool_t *p, pv_upick_t *k, int verdict, int status, uint64_t now)
{
    resv_drop(p);
    if (!k->held)
        return;
    int server = k->server;
    pv_peer_group_t *g = p->peers[0]->group;
    pthread_mutex_lock(&g->lock);
    g->active--;
    g->retrying -= k->retry;
    k->retry = 0;
    if (verdict == PV_BAL_DROP)
        k->picks--;
    int64_t ejected = pv_bal_observe(k, p->cf, p->peers, verdict, status, (int64_t)now);
    int out = pv_bal_free(k, p->cf, p->peers, verdict, (int64_t)now);
    pthread_mutex_unlock(&g->lock);
    pv_upqueue_kick(p);
    if (verdict == PV_BAL_FAILED)
        pv_discovery_hint(p, server);
    char text[64];
    if (ejected)
        pv_log(PV_LOG_WARN, "upstream server %s in upstream \"%s\" ejected for %lld ms after %d failures in a row",
               pv_upstream_server_text(p, server, text, sizeof(text)), p->cf->name, (long long)ejected,
               p->cf->od_consecutive);
    if (out)
        pv_log(PV_LOG_WARN, "upstream server temporarily disabled: %s in upstream \"%s\"",
               pv_upstream_server_text(p, server, text, sizeof(text)), p->cf->name);
}

static void idle_unlink(pv_upool_t *p, pv_upconn_t *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        p->idle_head = u->next;
    if (u->next)
        u->next->prev = u->prev;
    else
        p->idle_tail = u->prev;
    u->prev = u->next = NULL;
    p->nidle--;
    if (p->st)
        pv_ctr_add(&p->st[u->server].idle_out, 1);
}

/* u goes into p's idle list (counted for the idle gauge). */
static void idle_counted(pv_upool_t *p, const pv_upconn_t *u)
{
    if (p->st)
        pv_ctr_add(&p->st[u->server].idle_in, 1);
}

/* Whether an idle socket may still carry a request: the upstream's FIN,
 * an error or stray bytes may already be queued without the loop having
 * seen the event yet (it arrived in this iteration, or with the last read
 * of the response), and a request written there is lost. */
static int idle_alive(pv_upconn_t *u)
{
    if (u->x.fin)
        return 0;
    return pv_xprt_peek(&u->x) == PV_AGAIN;
}

/* Added to twice a connection's idle time before it is compared with the
 * time after which the server closes idle ones: a server that closes
 * within this of its answer closes before its FIN could warn us. */
#define IDLE_MARGIN_MS 10

/* The server closed u while it sat idle in the pool. */
static void idle_closed(pv_upconn_t *u, uint64_t now)
{
    pv_peer_idle_closed(u->pool->peers[u->server], now, now - u->idle_ms);
}

pv_upconn_t *pv_upstream_take_idle(pv_upool_t *p, int server, int unsafe, const pv_upstream_tls_t *tls)
{
    uint64_t now = p->idle_head ? pv_loop_now(p->idle_head->w->loop) : 0;
    int64_t limit = unsafe && p->idle_head ? pv_peer_idle_limit(p->peers[server], now) : -1;
    pv_upconn_t *next;
    for (pv_upconn_t *u = p->idle_head; u; u = next) {
        next = u->next;
        if (u->server != server || u->tls != tls)
            continue;
        if (u->addr_gen && u->addr_gen != atomic_load(&u->peer->cur_gen)) {
            pv_upstream_close(u); /* the slot's address changed since it was opened */
            continue;
        }
        if (!idle_alive(u)) {
            idle_closed(u, now);
            u->close_why = PV_SCLOSE_PEER_CLOSED;
            pv_upstream_close(u);
            continue;
        }
        if (limit >= 0 && 2 * (now - u->idle_ms) + IDLE_MARGIN_MS >= (uint64_t)limit)
            continue; /* left for a request that may be sent again */
        idle_unlink(p, u);
        pv_timer_del(u->w->loop, &u->timer);
        busy_add(p, u, now);
        resv_drop(p);
        u->idle_ms = now - u->idle_ms;
        pv_count(PV_CTR_UPSTREAM_REUSED);
        if (p->st)
            pv_ctr_add(&p->st[server].reused, 1);
        return u;
    }
    return NULL;
}

void pv_upstream_stale(pv_upconn_t *u)
{
    uint64_t now = pv_loop_now(u->w->loop);
    pv_peer_idle_closed(u->pool->peers[u->server], now, u->idle_ms);
}

/* The default opener: a non-blocking connect() under the plain transport. */
static int plain_open(pv_xprt_t *x, const pv_upstream_server_t *s, const pv_net_bind_t *local)
{
    int fd = pv_net_connect_from((const struct sockaddr *)&s->addr, s->addrlen, local);
    if (fd < 0)
        return PV_ERR;
    pv_xprt_init(x, fd, NULL, NULL);
    return PV_OK;
}

static pv_upstream_open_t opener = plain_open;

void pv_upstream_set_opener(pv_upstream_open_t fn)
{
    opener = fn ? fn : plain_open;
}

/* Save a session the server gave (the transport's callback). */
static void save_session(void *arg, SSL_SESSION *sess)
{
    pv_peer_save_session(arg, sess);
}

/* Whether name is an IP literal, which SNI may not carry (RFC 6066). */
static int ip_literal(const char *name)
{
    struct in_addr a;
    return strchr(name, ':') || inet_pton(AF_INET, name, &a) == 1;
}

/* Make x, just opened, a TLS client under tls's settings for name. */
static int tls_open(pv_xprt_t *x, const pv_upstream_tls_t *tls, const char *name, pv_peer_t *peer,
                    const pv_tls_cert_files_t *certs)
{
    pv_tls_client_t c = {
        .ctx = tls->ctx,
        .certs = certs,
        .sni = tls->server_name && name[0] && !ip_literal(name) ? name : NULL,
        .verify_name = tls->verify ? name : NULL,
    };
    if (tls->session_reuse) {
        c.save = save_session;
        c.save_arg = peer;
        c.session = pv_peer_load_session(peer);
        /* a session made under another server name is not offered */
        const char *h = c.session ? SSL_SESSION_get0_hostname(c.session) : NULL;
        if (c.session && (h ? !c.sni || strcmp(h, c.sni) != 0 : c.sni != NULL)) {
            SSL_SESSION_free(c.session);
            c.session = NULL;
        }
    }
    errno = 0;
    int rc = pv_tls_client(x, &c);
    SSL_SESSION_free(c.session);
    if (rc != PV_OK && errno != EINVAL)
        errno = ENOMEM;
    return rc;
}

pv_upconn_t *pv_upstream_connect(pv_worker_t *w, pv_upool_t *p, int server, const pv_upstream_tls_t *tls,
                                 const char *name, const pv_tls_cert_files_t *certs, const pv_net_bind_t *local)
{
    pv_upstream_server_t *s = &p->cf->servers[server], now;
    uint32_t gen = 0;
    if (s->resolve_host) {
        /* a `resolve` slot: the address its name gives it now */
        now = *s;
        if (!(gen = pv_discovery_slot_addr(p->peers[server], &now.addr, &now.addrlen, now.text, sizeof(now.text)))) {
            errno = EHOSTUNREACH;
            return NULL;
        }
        s = &now;
    }
    int counted = 0;
    if (s->max_conns && !(counted = open_place(p, server))) {
        errno = EBUSY; /* another worker took the last place since the pick */
        return NULL;
    }
    pv_xprt_t x;
    int rc = opener(&x, s, local);
    if (rc == PV_ERR)
        goto failed;
    if (tls && tls_open(&x, tls, name ? name : tls->name, p->peers[server], certs) != PV_OK) {
        int e = errno;
        pv_xprt_close(&x);
        errno = e;
        goto failed;
    }
    pv_upconn_t *u = NULL;
    if (!pv_fault_alloc(PV_FAULT_OTHER) && !(u = pv_cache_get(&upconn_cache)))
        u = malloc(sizeof(*u));
    if (!u) {
        pv_xprt_close(&x);
        errno = ENOMEM;
        goto failed;
    }
    memset(u, 0, sizeof(*u));
    u->x = x;
    u->x.io.cb = upconn_io_cb;
    u->x.io.data = u;
    u->connected = rc == PV_UPSTREAM_OPEN_CONNECTED;
    u->w = w;
    u->pool = p;
    u->server = server;
    u->tls = tls;
    u->peer = p->peers[server];
    u->close_why = PV_SCLOSE_SHUTDOWN;
    u->addr_gen = gen;
    pv_peer_hold(u->peer);
    u->created_ms = pv_loop_now(w->loop);
    pv_timer_init(&u->timer, upconn_timer_cb, u);
    if (pv_loop_add(w->loop, &u->x.io) < 0) {
        int e = errno;
        pv_xprt_close(&u->x);
        pv_peer_release(u->peer);
        if (pv_cache_put(&upconn_cache, u) < 0)
            free(u);
        errno = e;
        goto failed;
    }
    u->counted = (uint8_t)counted;
    busy_add(p, u, u->created_ms);
    p->opened++;
    pv_count(PV_CTR_UPSTREAM_OPENED);
    if (p->st)
        pv_ctr_add(&p->st[server].opened, 1);
    return u;
failed:
    if (counted) {
        int e = errno;
        atomic_fetch_sub(&p->peers[server]->open, 1);
        errno = e;
    }
    return NULL;
}

void pv_upstream_attach(pv_upconn_t *u, const pv_upconn_ops_t *ops, void *owner)
{
    u->ops = ops;
    u->owner = owner;
}

/* Every rule for taking a connection back, in one list (NGINX's
 * free_keepalive_peer, h2o's socketpool): a connection is reused only when
 * nothing about its state is in doubt. */
int pv_upstream_reusable(const pv_upconn_t *u, const pv_upstream_done_t *d, uint64_t now)
{
    const pv_upstream_conf_t *cf = u->pool->cf;
    if (d->failed || d->upgraded || !d->resp_complete || !d->req_complete)
        return 0;
    /* an early answer (401, 413 before the body was read): the upstream
     * may not have read the rest of the body, which would then be taken
     * for the start of the next request */
    if (d->early_response)
        return 0;
    if (!d->keep || d->leftover || u->x.fin || u->closing)
        return 0;
    if (cf->keepalive <= 0 || u->pool->retired || u->w->draining)
        return 0;
    if ((int64_t)u->requests >= cf->keepalive_requests)
        return 0;
    if ((int64_t)(now - u->created_ms) >= cf->keepalive_time)
        return 0;
    return 1;
}

/* An idle connection beyond `keepalive` stays while the pool holds fewer
 * than the recent peak of connections in use, for keepalive_grace at
 * most: a load that keeps more requests in flight than the pool's size
 * reuses its connections instead of closing one as it comes back and
 * opening another a moment later (what NGINX does, and what
 * `keepalive_grace off` keeps). When the load falls the peak falls with
 * it, and the extra connections close once idle for the grace. */
void pv_upstream_release(pv_upconn_t *u, const pv_upstream_done_t *d)
{
    pv_upool_t *p = u->pool;
    uint64_t now = pv_loop_now(u->w->loop);
    int reusable = pv_upstream_reusable(u, d, now);
    busy_end(u);
    u->owner = NULL;
    u->log_req = NULL;
    u->ops = NULL;
    if (!reusable) {
        u->close_why = d->failed ? PV_SCLOSE_ERROR : PV_SCLOSE_NOT_REUSABLE;
        pv_upstream_close(u);
        return;
    }
    if (u->counted && wanted_now(u->peer, now)) {
        u->close_why = PV_SCLOSE_POOL_FULL; /* a request of another worker waits for its place */
        pv_upstream_close(u);
        return;
    }
    int64_t grace = p->cf->keepalive_grace;
    if (p->nidle >= p->cf->keepalive && (grace <= 0 || p->nidle >= pool_peak(p, now))) {
        p->idle_tail->close_why = PV_SCLOSE_POOL_FULL;
        pv_upstream_close(p->idle_tail); /* least recently used goes */
    }
    idle_counted(p, u);
    u->prev = NULL;
    u->next = p->idle_head;
    if (p->idle_head)
        p->idle_head->prev = u;
    p->idle_head = u;
    if (!p->idle_tail)
        p->idle_tail = u;
    p->nidle++;
    u->x.readable = 0;
    u->idle_ms = now;
    int64_t t = p->cf->keepalive_timeout;
    if (p->nidle > p->cf->keepalive && grace < t)
        t = grace;
    if (u->counted && t > WANT_POLL_MS)
        t = WANT_POLL_MS;
    pv_timer_set(u->w->loop, &u->timer, (uint64_t)t);
}

int pv_upstream_unacked_since(const pv_upconn_t *u, uint64_t before)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(u->x.io.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
        return 0;
    /* the peer's acknowledgement of our SYN counts one byte */
    return ti.tcpi_bytes_acked <= before + 1;
}

void pv_upstream_close(pv_upconn_t *u)
{
    if (u->closing)
        return;
    busy_end(u);
    pv_worker_t *w = u->w;
    if (!u->owner && (u->prev || u->next || u->pool->idle_head == u))
        idle_unlink(u->pool, u);
    u->closing = 1;
    u->owner = NULL;
    if (u->pool->st)
        pv_ctr_add(&u->pool->st[u->server].closed[u->close_why], 1);
    pv_timer_del(w->loop, &u->timer);
    pv_loop_del(w->loop, &u->x.io);
    pv_xprt_close(&u->x);
    if (u->counted) {
        u->counted = 0;
        atomic_fetch_sub(&u->peer->open, 1);
    }
    pv_peer_release(u->peer);
    u->peer = NULL;
    u->next = reap_up;
    u->prev = NULL;
    reap_up = u;
}

void pv_upstream_reap(pv_worker_t *w)
{
    while (reap_up) {
        pv_upconn_t *u = reap_up;
        reap_up = u->next;
        if (pv_cache_put(&upconn_cache, u) < 0)
            free(u);
    }
}

static void upconn_io_cb(pv_io_t *io, unsigned events)
{
    pv_upconn_t *u = io->data;
    if (u->closing)
        return;
    if (u->owner) {
        pv_log_req_set(u->log_req);
        u->ops->event_cb(u->owner, events);
        pv_log_req_set(NULL);
        return;
    }
    events = pv_xprt_events(&u->x, events);
    /* idle in the pool: readable means the upstream closed it or sent
     * something unasked; either way it cannot carry a request. The read
     * tells: a TLS record that carries no data (a session ticket) leaves
     * nothing to read, and the connection stays. */
    char ch;
    if ((events & PV_EV_HUP) || ((events & PV_EV_READ) && pv_xprt_read(&u->x, &ch, 1) != PV_AGAIN)) {
        idle_closed(u, pv_loop_now(u->w->loop));
        u->close_why = PV_SCLOSE_PEER_CLOSED;
        pv_upstream_close(u);
    }
}

static void upconn_timer_cb(pv_timer_t *t)
{
    pv_upconn_t *u = t->data;
    if (u->owner) {
        pv_log_req_set(u->log_req);
        u->ops->timeout_cb(u->owner);
        pv_log_req_set(NULL);
        return;
    }
    /* idle for keepalive_grace beyond `keepalive`: it goes if the pool is
     * still above its size, else it waits out keepalive_timeout */
    pv_upool_t *p = u->pool;
    uint64_t now = pv_loop_now(u->w->loop), idle = now - u->idle_ms;
    int64_t timeout = p->cf->keepalive_timeout;
    if (u->counted) {
        /* a max_conns server's: it goes when another worker wants its place */
        if (wanted_now(u->peer, now)) {
            u->close_why = PV_SCLOSE_POOL_FULL;
            pv_upstream_close(u);
            return;
        }
        int64_t due = p->nidle > p->cf->keepalive && p->cf->keepalive_grace < timeout ? p->cf->keepalive_grace : timeout;
        if ((int64_t)idle < due) {
            pv_timer_set(u->w->loop, &u->timer, PV_MIN((uint64_t)due - idle, WANT_POLL_MS));
            return;
        }
    }
    if (p->nidle <= p->cf->keepalive && idle < (uint64_t)timeout) {
        uint64_t left = (uint64_t)timeout - idle;
        pv_timer_set(u->w->loop, &u->timer, u->counted ? PV_MIN(left, WANT_POLL_MS) : left);
        return;
    }
    u->close_why = PV_SCLOSE_IDLE_TIMEOUT;
    pv_upstream_close(u); /* keepalive_timeout in the pool */
}

/* ---- worker module ------------------------------------------------------ */

/* A generation's pools (pv_wgen_t.mod slot). */
typedef struct upools_s {
    pv_upool_t *pools; /* one per upstream of the snapshot */
    int n;
} upools_t;

pv_upool_t *pv_upstream_pool(pv_wgen_t *g, int i)
{
    upools_t *up = g->mod[pv_upstream_module.index];
    return &up->pools[i];
}

static int mod_gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
    upools_t *up = calloc(1, sizeof(*up));
    if (!up || !(up->pools = pv_upstream_pools_new(w, g->conf, &up->n))) {
        free(up);
        return PV_ERR;
    }
    g->mod[pv_upstream_module.index] = up;
    pv_stats_t *st = pv_stats_of(g);
    for (int i = 0; st && i < up->n; i++) {
        up->pools[i].st = st->peer + up->pools[i].cf->peer_base;
        up->pools[i].ust = st->ups + i;
    }
    upools_t *from = old ? old->mod[pv_upstream_module.index] : NULL;
    if (from)
        pv_upstream_pools_adopt(up->pools, up->n, from->pools, from->n);
    return PV_OK;
}

static void mod_gen_free(pv_wgen_t *g)
{
    upools_t *up = g->mod[pv_upstream_module.index];
    pv_upstream_pools_free(up->pools, up->n);
    free(up);
    g->mod[pv_upstream_module.index] = NULL;
}

pv_module_t pv_upstream_module = {
    .name = "upstream",
    .gen_init = mod_gen_init,
    .gen_free = mod_gen_free,
    .reap = pv_upstream_reap,
};
