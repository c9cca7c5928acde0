/* Pools made at run time: a proxy_pass with variables whose host names
 * no upstream block goes to the addresses the resolver found (or to the
 * literal address), as NGINX makes a round-robin peer set for them. Each
 * such address set is an implicit upstream of its own ("host:port", no
 * keepalive, NGINX's server defaults), per worker and generation; its
 * peers are the shared ones of the registry, but as NGINX's peers made
 * per request, a failure keeps a server out of that request only. A pool is kept while exchanges hold it and
 * for reuse by the next request to the same name and addresses; the
 * least recently used idle ones go past PV_DYN_MAX. */
#include "dynamic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "../core/log.h"
#include "../core/net.h"
#include "../proc/worker.h"

#define PV_DYN_MAX 64

typedef struct dynpool_s {
    pv_upool_t pool;             /* first: the pool handed out is the object */
    pv_upstream_conf_t cf;
    pv_upstream_server_t servers[PV_RESOLVED_MAX];
    int refs;                    /* exchanges using it */
    uint64_t used;               /* loop ms it was last handed out */
    struct dynpool_s *next;
} dynpool_t;

typedef struct {
    dynpool_t *head;
    int n;
} dyngen_t;

/* "127.0.0.1:8080" / "[::1]:8080" / "unix:/path", as $upstream_addr shows a server. */
static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
    if (sa->sa_family == AF_UNIX) {
        snprintf(out, len, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
        return;
    }
    char ip[64];
    uint16_t port = pv_net_addr_text(sa, ip, sizeof(ip));
    snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

static void dyn_free(dynpool_t *d)
{
    pv_upstream_pool_fini(&d->pool);
    free((char *)d->cf.name);
    free(d);
}

static int same_set(const dynpool_t *d, const char *name, const pv_dyn_addrs_t *a)
{
    if (d->cf.nservers != a->n || strcmp(d->cf.name, name) != 0)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (d->servers[i].addrlen != a->lens[i] || memcmp(&d->servers[i].addr, &a->addrs[i], a->lens[i]) != 0)
            return 0;
    return 1;
}

/* Past the bound, drop the pools no exchange holds, oldest use first. */
static void dyn_trim(dyngen_t *dg)
{
    while (dg->n >= PV_DYN_MAX) {
        dynpool_t **victim = NULL;
        for (dynpool_t **pd = &dg->head; *pd; pd = &(*pd)->next)
            if ((*pd)->refs == 0 && (!victim || (*pd)->used < (*victim)->used))
                victim = pd;
        if (!victim)
            return;
        dynpool_t *d = *victim;
        *victim = d->next;
        dyn_free(d);
        dg->n--;
    }
}

static dynpool_t *dyn_new(const char *name, const pv_dyn_addrs_t *a)
{
    dynpool_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->cf.name = strdup(name))) {
        free(d);
        return NULL;
    }
    pv_upstream_conf_t *cf = &d->cf;
    cf->implicit = 1;
    cf->servers = d->servers;
    cf->nservers = cf->nprimary = a->n;
    cf->keepalive_requests = 1000;
    cf->keepalive_timeout = 60000;
    cf->keepalive_time = 3600000;
    cf->index = -1;
    for (int i = 0; i < a->n; i++) {
        pv_upstream_server_t *s = &d->servers[i];
        memcpy(&s->addr, &a->addrs[i], a->lens[i]);
        s->addrlen = a->lens[i];
        addr_text((const struct sockaddr *)&s->addr, s->text, sizeof(s->text));
        s->name = cf->name;
        s->weight = 1;
        s->max_fails = 1;
        s->request_fails = 1;
        s->fail_timeout = 10000;
    }
    if (pv_upstream_pool_init(&d->pool, cf) != PV_OK) {
        dyn_free(d);
        return NULL;
    }
    return d;
}

pv_upool_t *pv_upstream_dyn_get(pv_wgen_t *g, const char *name, const pv_dyn_addrs_t *a, uint64_t now)
{
    dyngen_t *dg = g->mod[pv_upstream_dyn_module.index];
    if (!dg || a->n <= 0 || a->n > PV_RESOLVED_MAX)
        return NULL;
    dynpool_t *d = NULL;
    for (dynpool_t **pd = &dg->head; *pd;) {
        dynpool_t *c = *pd;
        if (same_set(c, name, a)) {
            d = c;
            break;
        }
        if (c->refs == 0 && strcmp(c->cf.name, name) == 0) {
            /* the name's addresses changed: the old set goes */
            *pd = c->next;
            dyn_free(c);
            dg->n--;
            continue;
        }
        pd = &c->next;
    }
    if (!d) {
        dyn_trim(dg);
        if (!(d = dyn_new(name, a)))
            return NULL;
        d->next = dg->head;
        dg->head = d;
        dg->n++;
    }
    d->refs++;
    d->used = now;
    return &d->pool;
}

void pv_upstream_dyn_put(pv_upool_t *p)
{
    dynpool_t *d = (dynpool_t *)p;
    d->refs--;
}

static int gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
    dyngen_t *dg = calloc(1, sizeof(*dg));
    if (!dg)
        return PV_ERR;
    g->mod[pv_upstream_dyn_module.index] = dg;
    return PV_OK;
}

static void gen_free(pv_wgen_t *g)
{
    dyngen_t *dg = g->mod[pv_upstream_dyn_module.index];
    while (dg && dg->head) {
        dynpool_t *d = dg->head;
        dg->head = d->next;
        dyn_free(d);
    }
    free(dg);
    g->mod[pv_upstream_dyn_module.index] = NULL;
}

static void worker_exit(pv_worker_t *w)
{
    pv_resolver_thread_exit();
}

pv_module_t pv_upstream_dyn_module = {
    .name = "upstream-dynamic",
    .gen_init = gen_init,
    .gen_free = gen_free,
    .worker_exit = worker_exit,
};
