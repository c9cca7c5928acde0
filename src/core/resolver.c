#include "resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "log.h"

#define RES_SOCKS 16          /* sockets c-ares may hold open per channel */
#define RES_ENTRIES_MAX 1024  /* names cached per resolver; the unused are dropped past it */
#define RES_NEGATIVE_MS 10000 /* a name not found is remembered this long without valid= (NGINX) */

typedef struct entry_s entry_t;

struct pv_resolve_wait_s {
    pv_resolve_cb cb;
    void *data;
    pv_timer_t timer;          /* resolver_timeout */
    entry_t *e;
    struct pv_resolve_wait_s *prev, *next;
};

struct entry_s {
    char *name;
    pv_resolver_t *r;
    pv_resolved_t res;         /* the last answer (have) */
    uint8_t have;              /* res holds an answer */
    uint8_t pending;           /* a query is out */
    uint8_t is_srv;            /* an SRV lookup (res.srv points into srvs) */
    pv_srv_t *srvs;            /* its records' storage, PV_RESOLVED_MAX */
    uint64_t used;             /* loop ms of the last look-up */
    pv_resolve_wait_t *waiters;
    entry_t *next;
};

typedef struct {
    pv_io_t io;                /* fd -1 when unused */
    unsigned events;           /* what it is watched for; 0 when not added */
} res_sock_t;

struct pv_resolver_s {
    pv_resolver_conf_t cf;     /* a copy: snapshots come and go, the thread's resolver stays */
    pv_loop_t *loop;
    ares_channel ch;
    pv_timer_t timer;          /* c-ares' next timeout */
    res_sock_t socks[RES_SOCKS];
    entry_t *entries;
    int nentries;
    pv_resolver_t *next;
};

static __thread pv_resolver_t *resolvers;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;

static void lib_init(void)
{
    lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static void rearm(pv_resolver_t *r)
{
    struct timeval tv, *t = ares_timeout(r->ch, NULL, &tv);
    if (!t) {
        pv_timer_del(r->loop, &r->timer);
        return;
    }
    pv_timer_set(r->loop, &r->timer, (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1);
}

static void timer_cb(pv_timer_t *t)
{
    pv_resolver_t *r = t->data;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

static void sock_io_cb(pv_io_t *io, unsigned events)
{
    pv_resolver_t *r = io->data;
    int fd = io->fd;
    if (fd < 0)
        return;
    ares_process_fd(r->ch, (events & PV_EV_READ) ? fd : ARES_SOCKET_BAD,
                     (events & PV_EV_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares says what it waits for on a socket; 0, 0 before it closes it. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    pv_resolver_t *r = data;
    res_sock_t *s = NULL, *unused = NULL;
    for (int i = 0; i < RES_SOCKS && !s; i++) {
        if (r->socks[i].io.fd == fd)
            s = &r->socks[i];
        else if (r->socks[i].io.fd < 0 && !unused)
            unused = &r->socks[i];
    }
    unsigned ev = (readable ? PV_EV_READ : 0u) | (writable ? PV_EV_WRITE : 0u);
    if (!ev) {
        if (s) {
            pv_loop_del(r->loop, &s->io);
            s->io.fd = -1;
            s->events = 0;
        }
        return;
    }
    if (!s) {
        if (!unused) {
            pv_log(PV_LOG_ALERT, "resolver: more than %d sockets open", RES_SOCKS);
            return;
        }
        s = unused;
        s->io = (pv_io_t){.fd = fd, .cb = sock_io_cb, .data = r};
        s->events = 0;
    }
    if (s->events != ev && pv_loop_watch(r->loop, &s->io, ev, s->events != 0) == 0)
        s->events = ev;
}

static void wait_unlink(pv_resolve_wait_t *w)
{
    entry_t *e = w->e;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void wait_free(pv_resolver_t *r, pv_resolve_wait_t *w)
{
    pv_timer_del(r->loop, &w->timer);
    free(w);
}

static void wait_timeout_cb(pv_timer_t *t)
{
    pv_resolve_wait_t *w = t->data;
    pv_resolver_t *r = w->e->r;
    pv_resolved_t res = {.status = PV_RESOLVE_TIMEDOUT, .expires = pv_loop_now(r->loop)};
    wait_unlink(w);
    pv_resolve_cb cb = w->cb;
    void *data = w->data;
    wait_free(r, w);
    cb(data, &res);
}

static int status_of(int ares_status)
{
    switch (ares_status) {
    case ARES_SUCCESS:
        return PV_RESOLVE_OK;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        return PV_RESOLVE_NOTFOUND;
    case ARES_ETIMEOUT:
        return PV_RESOLVE_TIMEDOUT;
    default:
        return PV_RESOLVE_ERROR;
    }
}

/* e's answer is in e->res (status, addresses or records) with the
 * shortest TTL ttl: kept, and given to every waiter. */
static void answered(entry_t *e, int64_t ttl)
{
    pv_resolver_t *r = e->r;
    uint64_t now = pv_loop_now(r->loop);
    pv_resolved_t *res = &e->res;
    if (ttl < 0)
        ttl = 0;
    if (res->status == PV_RESOLVE_OK && res->naddrs == 0 && res->nsrv == 0)
        res->status = PV_RESOLVE_NOTFOUND;
    if (res->status == PV_RESOLVE_OK)
        res->expires = now + (uint64_t)(r->cf.valid >= 0 ? r->cf.valid : ttl * 1000);
    else if (res->status == PV_RESOLVE_NOTFOUND)
        res->expires = now + (uint64_t)(r->cf.valid >= 0 ? r->cf.valid : RES_NEGATIVE_MS);
    else
        res->expires = now; /* a failure to ask is not remembered */
    e->have = 1;
    e->pending = 0;
    /* one at a time: a callback may cancel another waiter or look up again */
    while (e->waiters) {
        pv_resolve_wait_t *w = e->waiters;
        wait_unlink(w);
        pv_resolve_cb cb = w->cb;
        void *data = w->data;
        wait_free(r, w);
        cb(data, res);
    }
}

/* The shortest TTL of the CNAME chain in ai that starts at name (-1: no
 * CNAME): an answer through CNAMEs lasts no longer than they do, as in
 * NGINX. */
static int64_t cname_ttl(const struct ares_addrinfo *ai, const char *name)
{
    int64_t ttl = -1;
    const char *cur = name;
    for (int n = 0; n < 16; n++) {
        const struct ares_addrinfo_cname *c = ai->cnames;
        while (c && !(c->alias && c->name && strcasecmp(c->alias, cur) == 0))
            c = c->next;
        if (!c)
            break;
        if (ttl < 0 || c->ttl < ttl)
            ttl = c->ttl < 0 ? 0 : c->ttl;
        cur = c->name;
    }
    return ttl;
}

/* The answer to e's address query. */
static void gai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    entry_t *e = arg;
    if (status == ARES_EDESTRUCTION) {
        ares_freeaddrinfo(ai);
        return;
    }
    pv_resolved_t *res = &e->res;
    memset(res, 0, sizeof(*res));
    res->status = status_of(status);
    int64_t ttl = -1;
    for (struct ares_addrinfo_node *n = ai ? ai->nodes : NULL; n && res->naddrs < PV_RESOLVED_MAX; n = n->ai_next) {
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) || n->ai_addrlen > sizeof(res->addrs[0]))
            continue;
        memcpy(&res->addrs[res->naddrs], n->ai_addr, n->ai_addrlen);
        res->lens[res->naddrs++] = n->ai_addrlen;
        if (ttl < 0 || n->ai_ttl < ttl)
            ttl = n->ai_ttl < 0 ? 0 : n->ai_ttl;
    }
    int64_t cttl = ai && ai->nodes ? cname_ttl(ai, ai->name ? ai->name : e->name) : -1;
    if (cttl >= 0 && (ttl < 0 || cttl < ttl))
        ttl = cttl;
    ares_freeaddrinfo(ai);
    answered(e, ttl);
}

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The shortest TTL of the SRV records in the answer section of a
 * message that c-ares parsed already, or -1. */
static int64_t srv_ttl(const unsigned char *m, int len)
{
    if (len < HFIXEDSZ)
        return -1;
    int qd = (int)be16(m + 4), an = (int)be16(m + 6);
    const unsigned char *p = m + HFIXEDSZ, *end = m + len;
    int64_t ttl = -1;
    for (int i = 0; i < qd + an; i++) {
        char *name;
        long enc;
        if (ares_expand_name(p, m, len, &name, &enc) != ARES_SUCCESS)
            return ttl;
        ares_free_string(name);
        p += enc;
        if (i < qd) {
            p += QFIXEDSZ;
            continue;
        }
        if (end - p < RRFIXEDSZ)
            return ttl;
        /* type, class, TTL, data length */
        int64_t t = (int64_t)(be16(p + 4) << 16 | be16(p + 6)) & 0x7fffffff;
        if (be16(p) == T_SRV && (ttl < 0 || t < ttl))
            ttl = t;
        p += RRFIXEDSZ + be16(p + 8);
        if (p > end)
            return ttl;
    }
    return ttl;
}

/* The answer to e's SRV query. */
static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    entry_t *e = arg;
    if (status == ARES_EDESTRUCTION)
        return;
    pv_resolved_t *res = &e->res;
    memset(res, 0, sizeof(*res));
    res->srv = e->srvs;
    struct ares_srv_reply *reply = NULL;
    if (status == ARES_SUCCESS)
        status = ares_parse_srv_reply(abuf, alen, &reply);
    res->status = status_of(status);
    for (struct ares_srv_reply *s = reply; s && res->nsrv < PV_RESOLVED_MAX; s = s->next) {
        size_t hl = strlen(s->host);
        if (hl == 0 || hl >= sizeof(e->srvs[0].target) || (hl == 1 && s->host[0] == '.'))
            continue; /* "." says the service is not there (RFC 2782) */
        pv_srv_t *d = &e->srvs[res->nsrv++];
        d->priority = s->priority;
        d->weight = s->weight;
        d->port = s->port;
        memcpy(d->target, s->host, hl + 1);
        if (d->target[hl - 1] == '.')
            d->target[hl - 1] = '\0';
    }
    if (reply)
        ares_free_data(reply);
    answered(e, res->status == PV_RESOLVE_OK ? srv_ttl(abuf, alen) : -1);
}

/* Make room: drop answers nobody waits for, oldest use first. */
static void evict(pv_resolver_t *r)
{
    while (r->nentries >= RES_ENTRIES_MAX) {
        entry_t **victim = NULL;
        for (entry_t **pe = &r->entries; *pe; pe = &(*pe)->next)
            if (!(*pe)->pending && !(*pe)->waiters && (!victim || (*pe)->used < (*victim)->used))
                victim = pe;
        if (!victim)
            return;
        entry_t *e = *victim;
        *victim = e->next;
        free(e->name);
        free(e->srvs);
        free(e);
        r->nentries--;
    }
}

static entry_t *entry_find(pv_resolver_t *r, const char *name, int srv)
{
    for (entry_t *e = r->entries; e; e = e->next)
        if (e->is_srv == srv && strcasecmp(e->name, name) == 0)
            return e;
    return NULL;
}

static int lookup(pv_resolver_t *r, const char *name, int srv, int64_t timeout_ms, pv_resolve_cb cb, void *data,
                  pv_resolve_wait_t **wout)
{
    uint64_t now = pv_loop_now(r->loop);
    entry_t *e = entry_find(r, name, srv);
    if (e && e->have && !e->pending && e->res.expires > now) {
        e->used = now;
        cb(data, &e->res);
        return PV_OK;
    }
    if (!e) {
        evict(r);
        e = calloc(1, sizeof(*e));
        if (!e || !(e->name = strdup(name)) || (srv && !(e->srvs = calloc(PV_RESOLVED_MAX, sizeof(pv_srv_t))))) {
            if (e)
                free(e->name);
            free(e);
            return PV_ERR;
        }
        e->is_srv = (uint8_t)srv;
        e->r = r;
        e->next = r->entries;
        r->entries = e;
        r->nentries++;
    }
    e->used = now;
    if (!e->pending) {
        struct ares_addrinfo_hints hints = {
            .ai_family = r->cf.ipv4 && r->cf.ipv6 ? AF_UNSPEC : r->cf.ipv6 ? AF_INET6 : AF_INET,
            .ai_socktype = SOCK_STREAM,
        };
        e->pending = 1;
        if (srv)
            ares_query(r->ch, name, C_IN, T_SRV, srv_cb, e);
        else
            ares_getaddrinfo(r->ch, name, NULL, &hints, gai_cb, e);
        rearm(r);
        if (!e->pending) {
            /* answered at once (a failure to send, an address literal) */
            cb(data, &e->res);
            return PV_OK;
        }
    }
    pv_resolve_wait_t *w = calloc(1, sizeof(*w));
    if (!w)
        return PV_ERR;
    w->cb = cb;
    w->data = data;
    w->e = e;
    w->next = e->waiters;
    if (e->waiters)
        e->waiters->prev = w;
    e->waiters = w;
    pv_timer_init(&w->timer, wait_timeout_cb, w);
    pv_timer_set(r->loop, &w->timer, (uint64_t)(timeout_ms > 0 ? timeout_ms : 1));
    *wout = w;
    return PV_AGAIN;
}

int pv_resolve(pv_resolver_t *r, const char *name, int64_t timeout_ms, pv_resolve_cb cb, void *data,
               pv_resolve_wait_t **w)
{
    return lookup(r, name, 0, timeout_ms, cb, data, w);
}

int pv_resolve_srv(pv_resolver_t *r, const char *name, int64_t timeout_ms, pv_resolve_cb cb, void *data,
                   pv_resolve_wait_t **w)
{
    return lookup(r, name, 1, timeout_ms, cb, data, w);
}

void pv_resolve_expire(pv_resolver_t *r, const char *name)
{
    for (entry_t *e = r->entries; e; e = e->next)
        if (strcasecmp(e->name, name) == 0)
            e->res.expires = 0;
}

void pv_resolve_cancel(pv_resolve_wait_t *w)
{
    if (!w)
        return;
    pv_resolver_t *r = w->e->r;
    wait_unlink(w);
    wait_free(r, w);
}

static int same_conf(const pv_resolver_conf_t *a, const pv_resolver_conf_t *b)
{
    if (a->nservers != b->nservers || a->valid != b->valid || a->ipv4 != b->ipv4 || a->ipv6 != b->ipv6)
        return 0;
    for (int i = 0; i < a->nservers; i++)
        if (a->lens[i] != b->lens[i] || memcmp(&a->servers[i], &b->servers[i], a->lens[i]) != 0)
            return 0;
    return 1;
}

/* The configured name servers, in order, instead of resolv.conf's. */
static int set_servers(pv_resolver_t *r)
{
    struct ares_addr_port_node nodes[PV_RESOLVER_SERVERS];
    memset(nodes, 0, sizeof(nodes));
    for (int i = 0; i < r->cf.nservers; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&r->cf.servers[i];
        struct ares_addr_port_node *n = &nodes[i];
        n->next = i + 1 < r->cf.nservers ? &nodes[i + 1] : NULL;
        n->family = sa->sa_family;
        if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const void *)sa;
            memcpy(&n->addr.addr6, &s6->sin6_addr, sizeof(s6->sin6_addr));
            n->udp_port = n->tcp_port = ntohs(s6->sin6_port);
        } else {
            const struct sockaddr_in *s4 = (const void *)sa;
            memcpy(&n->addr.addr4, &s4->sin_addr, sizeof(s4->sin_addr));
            n->udp_port = n->tcp_port = ntohs(s4->sin_port);
        }
    }
    return ares_set_servers_ports(r->ch, r->cf.nservers ? nodes : NULL) == ARES_SUCCESS ? 0 : -1;
}

pv_resolver_t *pv_resolver_get(pv_loop_t *l, const pv_resolver_conf_t *cf)
{
    for (pv_resolver_t *r = resolvers; r; r = r->next)
        if (r->loop == l && same_conf(&r->cf, cf))
            return r;
    pthread_once(&lib_once, lib_init);
    if (lib_status != ARES_SUCCESS)
        return NULL;
    pv_resolver_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cf = *cf;
    r->cf.zone = NULL;
    r->loop = l;
    for (int i = 0; i < RES_SOCKS; i++)
        r->socks[i].io.fd = -1;
    pv_timer_init(&r->timer, timer_cb, r);
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    /* DNS only (no hosts file), no search domains: names as NGINX's resolver asks them */
    o.flags = ARES_FLAG_NOSEARCH;
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = r;
    o.lookups = (char *)"b";
    o.timeout = 2000;
    o.tries = 3;
    o.ndomains = 0;
    int mask = ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_DOMAINS;
    if (ares_init_options(&r->ch, &o, mask) != ARES_SUCCESS) {
        free(r);
        return NULL;
    }
    if (set_servers(r) < 0) {
        ares_destroy(r->ch);
        free(r);
        return NULL;
    }
    r->next = resolvers;
    resolvers = r;
    return r;
}

const char *pv_resolve_strerror(int status)
{
    switch (status) {
    case PV_RESOLVE_NOTFOUND:
        return "Host not found";
    case PV_RESOLVE_TIMEDOUT:
        return "Operation timed out";
    default:
        return "Server failure";
    }
}

int pv_resolve_code(int status)
{
    return status == PV_RESOLVE_NOTFOUND ? 3 : status == PV_RESOLVE_TIMEDOUT ? ETIMEDOUT : 2;
}

void pv_resolver_thread_exit(void)
{
    while (resolvers) {
        pv_resolver_t *r = resolvers;
        resolvers = r->next;
        ares_destroy(r->ch); /* pending queries end with ARES_EDESTRUCTION */
        pv_timer_del(r->loop, &r->timer);
        while (r->entries) {
            entry_t *e = r->entries;
            r->entries = e->next;
            for (pv_resolve_wait_t *w = e->waiters, *next; w; w = next) {
                next = w->next;
                wait_free(r, w);
            }
            free(e->name);
            free(e->srvs);
            free(e);
        }
        free(r);
    }
}
