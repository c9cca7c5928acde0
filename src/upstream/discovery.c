/* `server NAME[:PORT] resolve` (NGINX Plus and 1.27's syntax): the line
 * has PV_RESOLVED_MAX slots (config/upstream_conf.c), each a server of
 * the upstream whose peer holds the address the name gives it now. The
 * balancer skips a slot without one. Worker 1 looks each name up again
 * when its answer's TTL (or the resolver's valid=) runs out, through the
 * worker's resolver (core/resolver.c), and updates the slots under the
 * upstream's group lock, so every worker's next pick sees the change:
 * an address that stays keeps its slot and its state (failures,
 * weights), a gone one empties its slot (requests in flight to it
 * finish; its pooled connections are not reused), a new one takes an
 * empty slot with fresh state and the line's parameters. A failed
 * look-up keeps the last addresses and is logged once. */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "../core/log.h"
#include "../core/net.h"
#include "../core/resolver.h"
#include "../proc/worker.h"

#define RETRY_MS 1000   /* a failed look-up is tried again after this */
#define HURRY_MS 500    /* after a failed try at a slot, its name is asked again, at most this often */
#define MIN_TTL_MS 1000 /* and a TTL of 0 is taken as this */

static void set_text(pv_peer_t *p)
{
    char ip[64];
    uint16_t port = pv_net_addr_text((const struct sockaddr *)&p->cur, ip, sizeof(ip));
    snprintf(p->cur_text, sizeof(p->cur_text), p->cur.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* The active checks of an upstream, as pv_peer_configure() takes them. */
static int checks_of(const pv_upstream_conf_t *cf)
{
    return !cf->health ? PV_PEER_HC_NONE : cf->health->mandatory ? PV_PEER_HC_MANDATORY : PV_PEER_HC_ON;
}

/* Give slot p the address sa (NULL: none), with fresh state: with
 * mandatory checks a new address takes no traffic before its first check
 * passes. Under the group lock. */
static void slot_set(pv_peer_t *p, const struct sockaddr_storage *sa, socklen_t len, int checks, int weight)
{
    pv_bal_state_t *st = &p->bal;
    if (sa) {
        if (weight > 0)
            st->weight = weight;
        memcpy(&p->cur, sa, len);
        p->curlen = len;
        set_text(p);
        st->effective_weight = st->weight;
        st->current_weight = 0;
        st->fails = 0;
        st->accessed = st->checked = st->slow_since = 0;
        st->od_run = st->od_ejections = 0;
        st->od_until = 0;
        st->hc_checked = 0;
        st->hc_fails = st->hc_passes = 0;
    } else {
        p->curlen = 0;
    }
    st->hc_down = sa == NULL || checks == PV_PEER_HC_MANDATORY;
    atomic_fetch_add(&p->cur_gen, 1);
}

void pv_discovery_slot_init(pv_peer_t *p, const pv_upstream_server_t *s, int checks)
{
    const struct sockaddr_storage *init = s->initlen ? &s->init : NULL;
    socklen_t initlen = s->initlen;
    struct sockaddr_storage had[PV_RESOLVED_MAX];
    socklen_t hadlen[PV_RESOLVED_MAX];
    if (!init && !s->resolve_service && atomic_load(&p->cur_gen) == 0 &&
        pv_peer_host_addrs(p->upstream, s->resolve_host, s->resolve_port, had, hadlen, PV_RESOLVED_MAX) > p->nth) {
        /* a reload changed the line (its port) while its name does not
         * resolve: the addresses the old line had, as NGINX's zone keeps */
        init = &had[p->nth];
        initlen = hadlen[p->nth];
    }
    pthread_mutex_lock(&p->group->lock);
    if (atomic_load(&p->cur_gen) == 0)
        slot_set(p, init, initlen, checks, 0);
    else if (p->curlen == 0)
        p->bal.hc_down = 1; /* pv_peer_configure() may have cleared it */
    pthread_mutex_unlock(&p->group->lock);
}

uint32_t pv_discovery_slot_addr(pv_peer_t *p, struct sockaddr_storage *ss, socklen_t *len, char *text, size_t tlen)
{
    uint32_t gen = 0;
    pthread_mutex_lock(&p->group->lock);
    if (p->curlen) {
        memcpy(ss, &p->cur, p->curlen);
        *len = p->curlen;
        snprintf(text, tlen, "%s", p->cur_text);
        gen = atomic_load(&p->cur_gen);
    }
    pthread_mutex_unlock(&p->group->lock);
    return gen;
}

const char *pv_discovery_slot_text(pv_upool_t *p, int s, char *buf, size_t len)
{
    const pv_upstream_server_t *sv = &p->cf->servers[s];
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!pv_discovery_slot_addr(p->peers[s], &ss, &sl, buf, len))
        snprintf(buf, len, "%s", sv->text);
    return buf;
}

void pv_discovery_update(pv_upool_t *p, int first, int n, const struct sockaddr_storage *addrs,
                         const socklen_t *lens, const int *weights, int naddrs, int *added, int *removed)
{
    uint8_t kept[PV_RESOLVED_MAX] = {0};
    int checks = checks_of(p->cf);
    *added = *removed = 0;
    naddrs = naddrs < PV_RESOLVED_MAX ? naddrs : PV_RESOLVED_MAX;
    pthread_mutex_t *lock = &p->peers[first]->group->lock;
    pthread_mutex_lock(lock);
    for (int i = 0; i < n; i++) {
        pv_peer_t *peer = p->peers[first + i];
        if (!peer->curlen)
            continue;
        int j = 0;
        while (j < naddrs && (kept[j] || lens[j] != peer->curlen || memcmp(&addrs[j], &peer->cur, lens[j]) != 0))
            j++;
        if (j < naddrs) {
            kept[j] = 1;
            if (weights && peer->bal.weight != weights[j]) {
                peer->bal.weight = peer->bal.effective_weight = weights[j];
                peer->bal.current_weight = 0;
            }
        } else {
            slot_set(peer, NULL, 0, checks, 0);
            (*removed)++;
        }
    }
    for (int j = 0; j < naddrs; j++) {
        if (kept[j])
            continue;
        for (int i = 0; i < n; i++) {
            pv_peer_t *peer = p->peers[first + i];
            if (!peer->curlen) {
                slot_set(peer, &addrs[j], lens[j], checks, weights ? weights[j] : 0);
                (*added)++;
                break;
            }
        }
    }
    pthread_mutex_unlock(lock);
}

/* ---- the look-ups, on worker 1 ------------------------------------------ */

struct job_s;

/* One SRV record's target being looked up. */
typedef struct target_s {
    struct job_s *j;
    uint16_t port, weight;
    pv_resolve_wait_t *wait;
} target_t;

typedef struct job_s {
    struct disc_s *d;              /* the generation's jobs */
    pv_worker_t *w;
    pv_upool_t *pool;
    int first, n;                  /* the line's slots */
    const pv_upstream_server_t *s; /* its first slot (name, port, service) */
    const pv_resolver_conf_t *rc;
    int64_t timeout;
    pv_timer_t timer;
    pv_resolve_wait_t *wait;
    uint8_t failing;               /* a failure was logged; the next success is too */
    uint8_t hurried;               /* the timer is set early: a try at a slot failed */
    uint8_t fresh;                 /* this look-up bypasses cached answers */
    uint64_t asked;                /* loop ms of the last look-up */
    /* service=: the records' targets being looked up, and what they gave */
    target_t tg[PV_RESOLVED_MAX];
    int ntg, pending, tfailed;
    struct sockaddr_storage addrs[PV_RESOLVED_MAX];
    socklen_t lens[PV_RESOLVED_MAX];
    int weights[PV_RESOLVED_MAX];
    int naddrs;
    uint64_t expires;
} job_t;

typedef struct disc_s {
    job_t *jobs;
    int n;
} disc_t;

static void job_timer_cb(pv_timer_t *t);

/* The worker that runs the look-ups (worker 1), for the others to poke. */
static _Atomic(pv_worker_t *) looker;

static const char *job_name(const job_t *j)
{
    return j->s->resolve_service ? j->s->resolve_service : j->s->resolve_host;
}

/* A look-up failed: the last addresses stay, logged once. */
static void job_failed(job_t *j, int status)
{
    if (!j->failing)
        pv_log(PV_LOG_ERR, "upstream \"%s\": %s could not be resolved (%d: %s), its last addresses are kept",
               j->pool->cf->name, job_name(j), pv_resolve_code(status), pv_resolve_strerror(status));
    j->failing = 1;
    j->fresh = 0;
    pv_timer_set(j->w->loop, &j->timer, RETRY_MS);
}

/* A look-up past the cache found what may be a new answer: every other
 * line asking the same name, through the same resolver, reads it from
 * the cache now instead of keeping the old one until its own timer. */
static void share_fresh(job_t *j)
{
    for (int i = 0; i < j->d->n; i++) {
        job_t *o = &j->d->jobs[i];
        if (o == j || o->rc != j->rc || o->wait || o->pending || !o->s->resolve_service != !j->s->resolve_service ||
            strcmp(job_name(o), job_name(j)) != 0)
            continue;
        for (int k = 0; k < o->n; k++)
            atomic_store(&o->pool->peers[o->first + k]->ask_again, 0);
        o->hurried = 0;
        pv_timer_set(o->w->loop, &o->timer, 0);
    }
}

/* The line's addresses now (ports set): into its slots, and the next
 * look-up when the answer expires. */
static void job_apply(job_t *j, const struct sockaddr_storage *addrs, const socklen_t *lens, const int *weights,
                      int n, uint64_t expires)
{
    uint64_t now = pv_loop_now(j->w->loop);
    int added, removed;
    pv_discovery_update(j->pool, j->first, j->n, addrs, lens, weights, n, &added, &removed);
    if (added || removed || j->failing)
        pv_log(PV_LOG_NOTICE, "upstream \"%s\": %s resolved to %d address%s (%d new, %d gone)", j->pool->cf->name,
               j->s->resolve_service ? j->s->resolve_service : j->s->name, n, n == 1 ? "" : "es", added, removed);
    if (j->fresh)
        share_fresh(j);
    j->failing = j->fresh = 0;
    pv_timer_set(j->w->loop, &j->timer, expires > now + MIN_TTL_MS ? expires - now : MIN_TTL_MS);
}

static void set_port(struct sockaddr_storage *sa, int port)
{
    uint16_t p = htons((uint16_t)port);
    if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = p;
    else
        ((struct sockaddr_in *)sa)->sin_port = p;
}

static void answered(void *data, const pv_resolved_t *res)
{
    job_t *j = data;
    j->wait = NULL;
    if (res->status == PV_RESOLVE_NOTFOUND) {
        /* the name is gone (NXDOMAIN, or no record): so are its servers, as NGINX */
        pv_log(PV_LOG_ERR, "upstream \"%s\": %s could not be resolved (3: Host not found)", j->pool->cf->name,
               job_name(j));
        job_apply(j, NULL, NULL, NULL, 0, res->expires);
        return;
    }
    if (res->status != PV_RESOLVE_OK) {
        job_failed(j, res->status);
        return;
    }
    struct sockaddr_storage addrs[PV_RESOLVED_MAX];
    socklen_t lens[PV_RESOLVED_MAX];
    int n = res->naddrs;
    for (int i = 0; i < n; i++) {
        addrs[i] = res->addrs[i];
        lens[i] = res->lens[i];
        set_port(&addrs[i], j->s->resolve_port);
    }
    job_apply(j, addrs, lens, NULL, n, res->expires);
}

/* Every target of the records has answered. As in NGINX, a target
 * that does not exist adds nothing, but one whose look-up failed (a
 * server failure, a timeout) leaves the line as it was. */
static void srv_done(job_t *j)
{
    if (j->tfailed) {
        job_failed(j, j->tfailed);
        return;
    }
    job_apply(j, j->addrs, j->lens, j->weights, j->naddrs, j->expires);
}

static void target_answered(void *data, const pv_resolved_t *res)
{
    target_t *t = data;
    job_t *j = t->j;
    t->wait = NULL;
    if (res->status == PV_RESOLVE_OK) {
        for (int i = 0; i < res->naddrs && j->naddrs < PV_RESOLVED_MAX; i++) {
            j->addrs[j->naddrs] = res->addrs[i];
            j->lens[j->naddrs] = res->lens[i];
            set_port(&j->addrs[j->naddrs], t->port);
            j->weights[j->naddrs++] = t->weight ? t->weight : 1;
        }
        if (res->expires < j->expires)
            j->expires = res->expires;
    } else if (res->status != PV_RESOLVE_NOTFOUND) {
        j->tfailed = res->status;
    }
    if (--j->pending == 0)
        srv_done(j);
}

/* The SRV records: the line's tier of them (the lowest priority value,
 * or the others), and each target's addresses looked up. */
static void srv_answered(void *data, const pv_resolved_t *res)
{
    job_t *j = data;
    j->wait = NULL;
    if (res->status == PV_RESOLVE_NOTFOUND) {
        /* no records (NXDOMAIN, or none of the type): no servers, as NGINX */
        job_apply(j, NULL, NULL, NULL, 0, res->expires);
        return;
    }
    if (res->status != PV_RESOLVE_OK) {
        job_failed(j, res->status);
        return;
    }
    int low = 0x10000;
    for (int i = 0; i < res->nsrv; i++)
        low = res->srv[i].priority < low ? res->srv[i].priority : low;
    pv_resolver_t *r = pv_resolver_get(j->w->loop, j->rc);
    j->ntg = j->naddrs = j->tfailed = 0;
    j->expires = res->expires;
    /* one extra count while they are asked: an answer from the cache
     * comes inside pv_resolve() */
    j->pending = 1;
    for (int i = 0; i < res->nsrv && r; i++) {
        const pv_srv_t *rec = &res->srv[i];
        if ((rec->priority == low) != (j->s->srv_tier == 0))
            continue;
        target_t *t = &j->tg[j->ntg++];
        *t = (target_t){.j = j, .port = rec->port, .weight = rec->weight};
        j->pending++;
        if (j->fresh)
            pv_resolve_expire(r, rec->target);
        if (pv_resolve(r, rec->target, j->timeout, target_answered, t, &t->wait) == PV_ERR) {
            j->tfailed = PV_RESOLVE_ERROR;
            j->pending--;
        }
    }
    if (--j->pending == 0)
        srv_done(j);
}

static void job_timer_cb(pv_timer_t *t)
{
    job_t *j = t->data;
    pv_resolver_t *r = pv_resolver_get(j->w->loop, j->rc);
    j->asked = pv_loop_now(j->w->loop);
    if (j->hurried && r) {
        /* a try failed: the answer may have changed before its TTL ran out */
        for (int i = 0; i < j->n; i++)
            atomic_store(&j->pool->peers[j->first + i]->ask_again, 0);
        pv_resolve_expire(r, job_name(j));
        j->fresh = 1;
    }
    j->hurried = 0;
    int rc = !r ? PV_ERR
             : j->s->resolve_service
                 ? pv_resolve_srv(r, j->s->resolve_service, j->timeout, srv_answered, j, &j->wait)
                 : pv_resolve(r, j->s->resolve_host, j->timeout, answered, j, &j->wait);
    if (rc == PV_ERR) {
        pv_log(PV_LOG_ALERT, "upstream \"%s\": could not ask the resolver for %s", j->pool->cf->name, job_name(j));
        pv_timer_set(j->w->loop, &j->timer, RETRY_MS);
    }
}

void pv_discovery_hint(pv_upool_t *p, int s)
{
    if (!p->cf->servers[s].resolve_host || atomic_exchange(&p->peers[s]->ask_again, 1))
        return;
    pv_worker_t *w = atomic_load(&looker);
    if (w)
        pv_worker_signal(w, PV_WCMD_POKE);
}

/* A job whose slots saw a failed try looks its name up again now, or
 * HURRY_MS after its last look-up; one already out is let finish. */
static void hurry(job_t *j)
{
    if (j->hurried || j->wait || j->pending)
        return;
    int asked = 0;
    for (int i = 0; i < j->n && !asked; i++)
        asked = atomic_load(&j->pool->peers[j->first + i]->ask_again);
    if (!asked)
        return;
    uint64_t now = pv_loop_now(j->w->loop), due = j->asked + HURRY_MS > now ? j->asked + HURRY_MS : now;
    if (j->timer.idx >= 0 && j->timer.when <= due)
        return;
    j->hurried = 1;
    pv_timer_set(j->w->loop, &j->timer, due - now);
}

static void poke(pv_worker_t *w)
{
    disc_t *d = w->gen ? w->gen->mod[pv_upstream_discovery_module.index] : NULL;
    for (int i = 0; d && i < d->n; i++)
        hurry(&d->jobs[i]);
}

static void stop(disc_t *d)
{
    for (int i = 0; i < d->n; i++) {
        job_t *j = &d->jobs[i];
        pv_timer_del(j->w->loop, &j->timer);
        pv_resolve_cancel(j->wait);
        j->wait = NULL;
        for (int k = 0; k < j->ntg; k++) {
            pv_resolve_cancel(j->tg[k].wait);
            j->tg[k].wait = NULL;
        }
    }
}

static int build(pv_worker_t *w, pv_wgen_t *g, disc_t *d)
{
    const pv_http_conf_t *h = g->conf->http;
    for (int k = 0; h && k < h->nupstreams; k++) {
        pv_upool_t *p = pv_upstream_pool(g, k);
        const pv_upstream_conf_t *cf = p->cf;
        for (int i = 0; cf->nresolve && i < cf->nservers; i++) {
            const pv_upstream_server_t *s = &cf->servers[i];
            if (!s->resolve_host || s->resolve_first != i)
                continue;
            job_t *nj = realloc(d->jobs, (size_t)(d->n + 1) * sizeof(*nj));
            if (!nj)
                return -1;
            d->jobs = nj;
            job_t *j = &d->jobs[d->n++];
            memset(j, 0, sizeof(*j));
            j->d = d;
            j->w = w;
            j->pool = p;
            j->first = i;
            while (i + j->n < cf->nservers && cf->servers[i + j->n].resolve_host &&
                   cf->servers[i + j->n].resolve_first == i)
                j->n++;
            j->s = s;
            j->rc = cf->resolver ? cf->resolver : h->conf.resolver;
            j->timeout = cf->resolver_timeout != PV_UNSET ? cf->resolver_timeout : h->conf.resolver_timeout;
        }
    }
    /* timers only once the array stops moving */
    for (int i = 0; i < d->n; i++) {
        pv_timer_init(&d->jobs[i].timer, job_timer_cb, &d->jobs[i]);
        pv_timer_set(w->loop, &d->jobs[i].timer, 0);
    }
    return 0;
}

static int gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
    if (w->id != 1)
        return PV_OK;
    disc_t *prev = old ? old->mod[pv_upstream_discovery_module.index] : NULL;
    if (prev)
        stop(prev); /* the new generation's look-ups take over */
    disc_t *d = calloc(1, sizeof(*d));
    if (!d || build(w, g, d) < 0) {
        if (d)
            free(d->jobs);
        free(d);
        return PV_ERR;
    }
    g->mod[pv_upstream_discovery_module.index] = d;
    atomic_store(&looker, w);
    return PV_OK;
}

static void gen_free(pv_wgen_t *g)
{
    disc_t *d = g->mod[pv_upstream_discovery_module.index];
    if (!d)
        return;
    stop(d);
    free(d->jobs);
    free(d);
    g->mod[pv_upstream_discovery_module.index] = NULL;
}

static void drain(pv_worker_t *w)
{
    disc_t *d = w->gen ? w->gen->mod[pv_upstream_discovery_module.index] : NULL;
    pv_worker_t *me = w;
    atomic_compare_exchange_strong(&looker, &me, NULL);
    if (d)
        stop(d);
}

pv_module_t pv_upstream_discovery_module = {
    .name = "upstream-discovery",
    .gen_init = gen_init,
    .gen_free = gen_free,
    .drain = drain,
    .close_all = drain,
    .poke = poke,
};
