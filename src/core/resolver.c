#include "resolver.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "dns_answer.h"
#include "log.h"

#define RES_SOCKS 32          /* sockets c-ares may hold open per resolver */
#define RES_RESEND_MS 2000    /* a question unanswered this long goes to the next server */
#define RES_ENTRIES_MAX 1024  /* names cached per resolver; the unused are dropped past it */
#define RES_NEGATIVE_MS 10000 /* a name not found is asked again after this, without valid= (NGINX) */
#define RES_CNAME_MAX 50      /* CNAMEs followed for one look-up (NGINX) */

typedef struct entry_s entry_t;

struct pv_resolve_wait_s {
    pv_resolve_cb cb;
    void *data;
    pv_resolver_t *r;
    pv_timer_t timer;          /* resolver_timeout, for the whole chain of CNAMEs */
    entry_t *e;                /* the entry it waits on, or NULL */
    int depth;                 /* CNAMEs followed */
    uint8_t srv;               /* an SRV look-up */
    uint8_t in_call;           /* its pv_resolve() has not returned yet */
    uint8_t done;              /* its callback came */
    struct pv_resolve_wait_s *prev, *next;
};

struct entry_s {
    char *name;
    pv_resolver_t *r;
    pv_resolved_t res;         /* the last answer (have) */
    char *cname;               /* with have: the name is an alias of this one */
    uint8_t have;              /* res (or cname) holds an answer */
    uint8_t pending;           /* questions out */
    int held;                  /* its answer is being given out: not evicted (a callback may look up again) */
    uint8_t asked;             /* which: 1 A (or SRV), 2 AAAA */
    uint8_t is_srv;            /* an SRV lookup (res.srv points into srvs) */
    int failed[2];             /* each question's status */
    uint8_t server[2];         /* each question's server (index), and ... */
    uint8_t tcp[2];            /* ... whether over TCP (its UDP answer was truncated) */
    uint8_t tries[2];          /* servers it went on to after an error */
    pv_dns_answer_t *ans[2];   /* each question's answer, read */
    pv_srv_t *srvs;            /* its records' storage, PV_RESOLVED_MAX */
    uint64_t used;             /* loop ms of the last look-up */
    pv_resolve_wait_t *waiters;
    entry_t *next;
};

/* A c-ares channel asking one server, over UDP or TCP: as NGINX, the
 * resolver picks the server of each name's questions itself. */
typedef struct {
    pv_resolver_t *r;
    ares_channel ch;
    uint8_t up;
} chan_t;

typedef struct {
    pv_io_t io;                /* fd -1 when unused */
    unsigned events;           /* what it is watched for; 0 when not added */
    chan_t *c;
} res_sock_t;

struct pv_resolver_s {
    pv_resolver_conf_t cf;     /* a copy: snapshots come and go, the thread's resolver stays */
    pv_loop_t *loop;
    int nchan;                 /* servers (1 with none configured: resolv.conf's) */
    int next_server;           /* the server of the next name asked */
    chan_t udp[PV_RESOLVER_SERVERS], tcp[PV_RESOLVER_SERVERS];
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

/* The loop timer at the earliest of the channels' timeouts. */
static void rearm(pv_resolver_t *r)
{
    uint64_t ms = UINT64_MAX;
    for (int i = 0; i < 2 * PV_RESOLVER_SERVERS; i++) {
        chan_t *c = i < PV_RESOLVER_SERVERS ? &r->udp[i] : &r->tcp[i - PV_RESOLVER_SERVERS];
        struct timeval tv, *t = c->up ? ares_timeout(c->ch, NULL, &tv) : NULL;
        if (t && (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 < ms)
            ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
    }
    if (ms == UINT64_MAX)
        pv_timer_del(r->loop, &r->timer);
    else
        pv_timer_set(r->loop, &r->timer, ms + 1);
}

static void timer_cb(pv_timer_t *t)
{
    pv_resolver_t *r = t->data;
    for (int i = 0; i < PV_RESOLVER_SERVERS; i++) {
        if (r->udp[i].up)
            ares_process_fd(r->udp[i].ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        if (r->tcp[i].up)
            ares_process_fd(r->tcp[i].ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    rearm(r);
}

static void sock_io_cb(pv_io_t *io, unsigned events)
{
    res_sock_t *s = io->data;
    pv_resolver_t *r = s->c->r;
    int fd = io->fd;
    if (fd < 0)
        return;
    ares_process_fd(s->c->ch, (events & PV_EV_READ) ? fd : ARES_SOCKET_BAD,
                    (events & PV_EV_WRITE) ? fd : ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares says what it waits for on a socket; 0, 0 before it closes it. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    chan_t *c = data;
    pv_resolver_t *r = c->r;
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
        s->io = (pv_io_t){.fd = fd, .cb = sock_io_cb, .data = s};
        s->c = c;
        s->events = 0;
    }
    if (s->events != ev && pv_loop_watch(r->loop, &s->io, ev, s->events != 0) == 0)
        s->events = ev;
}

static void wait_unlink(pv_resolve_wait_t *w)
{
    entry_t *e = w->e;
    if (!e)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->e = NULL;
}

/* w's look-up ended: its callback, and w freed unless the pv_resolve()
 * that made it is still on the stack (it frees w then). */
static void deliver(pv_resolver_t *r, pv_resolve_wait_t *w, const pv_resolved_t *res)
{
    wait_unlink(w);
    pv_timer_del(r->loop, &w->timer);
    w->done = 1;
    w->cb(w->data, res);
    if (!w->in_call)
        free(w);
}

static void deliver_status(pv_resolver_t *r, pv_resolve_wait_t *w, int status)
{
    uint64_t now = pv_loop_now(r->loop);
    pv_resolved_t res = {.status = status, .expires = now};
    if (status == PV_RESOLVE_NOTFOUND)
        res.expires = now + (uint64_t)(r->cf.valid >= 0 ? r->cf.valid : RES_NEGATIVE_MS);
    deliver(r, w, &res);
}

static void wait_timeout_cb(pv_timer_t *t)
{
    pv_resolve_wait_t *w = t->data;
    deliver_status(w->r, w, PV_RESOLVE_TIMEDOUT);
}

static entry_t *entry_find(pv_resolver_t *r, const char *name, int srv)
{
    for (entry_t *e = r->entries; e; e = e->next)
        if (e->is_srv == srv && strcasecmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* The answers read are in e->res (or e->cname) now: their room goes. */
static void ans_free(entry_t *e)
{
    free(e->ans[0]);
    free(e->ans[1]);
    e->ans[0] = e->ans[1] = NULL;
}

static void entry_free(entry_t *e)
{
    free(e->name);
    free(e->cname);
    free(e->srvs);
    ans_free(e);
    free(e);
}

/* Make room: drop answers nobody waits for, oldest use first. */
static void evict(pv_resolver_t *r)
{
    while (r->nentries >= RES_ENTRIES_MAX) {
        entry_t **victim = NULL;
        for (entry_t **pe = &r->entries; *pe; pe = &(*pe)->next)
            if (!(*pe)->pending && !(*pe)->waiters && !(*pe)->held &&
                (!victim || (*pe)->used < (*victim)->used))
                victim = pe;
        if (!victim)
            return;
        entry_t *e = *victim;
        *victim = e->next;
        entry_free(e);
        r->nentries--;
    }
}

static entry_t *entry_get(pv_resolver_t *r, const char *name, int srv)
{
    entry_t *e = entry_find(r, name, srv);
    if (e)
        return e;
    char *copy = strdup(name); /* first: name may be an entry's own text, which evict() can free */
    if (!copy)
        return NULL;
    evict(r);
    e = calloc(1, sizeof(*e));
    if (!e || (srv && !(e->srvs = calloc(PV_RESOLVED_MAX, sizeof(pv_srv_t))))) {
        free(copy);
        free(e);
        return NULL;
    }
    e->name = copy;
    e->is_srv = (uint8_t)srv;
    e->r = r;
    e->next = r->entries;
    r->entries = e;
    r->nentries++;
    return e;
}

static void a_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void aaaa_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* The question for name of type qtype (recursion desired) into q;
 * its length, or 0 when a label is empty or past 63 bytes. Built here,
 * not by c-ares, which refuses the longest names NGINX asks. */
static int make_query(const char *name, int qtype, unsigned char *q, size_t qmax)
{
    size_t n = strlen(name);
    if (n == 0 || HFIXEDSZ + n + 2 + QFIXEDSZ > qmax)
        return 0;
    memset(q, 0, HFIXEDSZ);
    q[2] = 0x01; /* RD */
    q[5] = 1;    /* one question */
    unsigned char *p = q + HFIXEDSZ;
    for (const char *s = name; *s;) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        if (l == 0 || l > 63)
            return 0;
        *p++ = (unsigned char)l;
        memcpy(p, s, l);
        p += l;
        s += dot ? l + 1 : l;
    }
    *p++ = 0;
    *p++ = (unsigned char)(qtype >> 8);
    *p++ = (unsigned char)qtype;
    *p++ = 0;
    *p++ = C_IN;
    return (int)(p - q);
}

static int chan_open(pv_resolver_t *r, chan_t *c, int server, int tcp);

static const int slot_type[2] = {PV_DNS_T_A, PV_DNS_T_AAAA};

/* Question slot of e (its A, AAAA or SRV one) to its server. */
static void send_query(pv_resolver_t *r, entry_t *e, int slot)
{
    int qtype = e->is_srv ? PV_DNS_T_SRV : slot_type[slot];
    ares_callback cb = e->is_srv ? srv_cb : slot ? aaaa_cb : a_cb;
    int i = e->server[slot];
    chan_t *c = e->tcp[slot] ? &r->tcp[i] : &r->udp[i];
    unsigned char q[HFIXEDSZ + 260 + QFIXEDSZ];
    int len = make_query(e->name, qtype, q, sizeof(q));
    if (len == 0)
        cb(e, ARES_EBADNAME, 0, NULL, 0);
    else if (!c->up && chan_open(r, c, i, e->tcp[slot]) < 0)
        cb(e, ARES_ENOMEM, 0, NULL, 0);
    else
        ares_send(c->ch, q, len, cb, e);
}

/* e's questions to the next server in turn: SRV, or A and AAAA as
 * the resolver's ipv4=/ipv6= say (answers in e->ans[0] and [1]). */
static void ask(pv_resolver_t *r, entry_t *e)
{
    int a = !e->is_srv && r->cf.ipv4, aaaa = !e->is_srv && r->cf.ipv6;
    e->pending = (uint8_t)(e->is_srv ? 1 : a + aaaa);
    e->asked = (uint8_t)((a || e->is_srv ? 1 : 0) | (aaaa ? 2 : 0));
    int srv = r->next_server;
    r->next_server = (srv + 1) % r->nchan;
    for (int i = 0; i < 2; i++) {
        e->failed[i] = PV_RESOLVE_OK;
        e->server[i] = (uint8_t)srv;
        e->tcp[i] = e->tries[i] = 0;
    }
    if (e->is_srv || a)
        send_query(r, e, 0);
    if (aaaa)
        send_query(r, e, 1);
    rearm(r);
}

/* Whether question slot of e goes out again instead of being answered,
 * as NGINX's: a truncated answer to the same server over TCP; a FORMERR
 * (ignored by NGINX) or no answer at all to the next server, that one
 * only while a look-up waits and the others once each. */
static int again(entry_t *e, int slot, int status, const unsigned char *abuf, int alen)
{
    pv_resolver_t *r = e->r;
    int formerr = abuf && alen >= HFIXEDSZ && (abuf[3] & 0x0f) == 1;
    if (abuf && alen >= HFIXEDSZ && (abuf[2] & 0x02) && !formerr && !e->tcp[slot]) {
        e->tcp[slot] = 1;
    } else if (status == ARES_ETIMEOUT && !abuf) {
        if (!e->waiters)
            return 0;
        e->server[slot] = (uint8_t)((e->server[slot] + 1) % r->nchan);
        e->tcp[slot] = 0;
    } else if ((formerr || (!abuf && status != ARES_EBADNAME && status != ARES_ENOMEM)) &&
               e->tries[slot] + 1 < r->nchan) {
        if (formerr)
            pv_log(PV_LOG_ERR, "resolver: DNS error (1: Format error), name \"%s\", asked of the next server", e->name);
        e->tries[slot]++;
        e->server[slot] = (uint8_t)((e->server[slot] + 1) % r->nchan);
        e->tcp[slot] = 0;
    } else {
        return 0;
    }
    send_query(r, e, slot);
    rearm(r);
    return 1;
}

/* Take w to name's answer: from the cache (through its cached CNAMEs),
 * or onto the entry whose questions are out (asked now if they are
 * not). depth: the CNAMEs followed so far. */
static void route(pv_resolver_t *r, pv_resolve_wait_t *w, const char *name, int depth)
{
    uint64_t now = pv_loop_now(r->loop);
    for (;;) {
        entry_t *e = entry_get(r, name, w->srv);
        if (!e) {
            deliver_status(r, w, PV_RESOLVE_ERROR);
            return;
        }
        e->used = now;
        if (e->have && !e->pending && e->res.expires > now) {
            if (!e->cname) {
                e->held++;
                deliver(r, w, &e->res);
                e->held--;
                return;
            }
            if (depth++ >= RES_CNAME_MAX) {
                deliver_status(r, w, PV_RESOLVE_NOTFOUND);
                return;
            }
            name = e->cname;
            continue;
        }
        w->depth = depth;
        w->e = e;
        w->prev = NULL;
        w->next = e->waiters;
        if (e->waiters)
            e->waiters->prev = w;
        e->waiters = w;
        if (!e->pending)
            ask(r, e);
        return;
    }
}

/* e's answer is in e->res: kept for its TTL (or valid=) when it is
 * one (an error is not, as in NGINX), and given to every waiter; an
 * alias takes each waiter on to its target. */
static void answered(entry_t *e, int64_t ttl)
{
    pv_resolver_t *r = e->r;
    uint64_t now = pv_loop_now(r->loop);
    pv_resolved_t *res = &e->res;
    if (ttl < 0)
        ttl = 0;
    e->pending = 0;
    e->have = res->status == PV_RESOLVE_OK;
    if (res->status == PV_RESOLVE_OK)
        res->expires = now + (uint64_t)(r->cf.valid >= 0 ? r->cf.valid : ttl * 1000);
    else if (res->status == PV_RESOLVE_NOTFOUND)
        res->expires = now + (uint64_t)(r->cf.valid >= 0 ? r->cf.valid : RES_NEGATIVE_MS);
    else
        res->expires = now;
    /* one at a time: a callback may cancel another waiter or look up again */
    e->held++;
    while (e->waiters) {
        /* every waiter on e's list has w->e == e, so a delivered one has
         * left the list before it is freed */
        pv_resolve_wait_t *w = e->waiters;
        if (res->status == PV_RESOLVE_OK && e->cname) {
            wait_unlink(w); // NOLINT(clang-analyzer-unix.Malloc)
            if (w->depth >= RES_CNAME_MAX)
                deliver_status(r, w, PV_RESOLVE_NOTFOUND);
            else
                route(r, w, e->cname, w->depth + 1);
            continue;
        }
        deliver(r, w, res);
    }
    e->held--;
}

/* The status an answer's code says (NGINX's words for them). */
static int rcode_status(int rcode)
{
    switch (rcode) {
    case 0:
        return PV_RESOLVE_OK;
    case 1:
        return PV_RESOLVE_FORMERR;
    case 3:
        return PV_RESOLVE_NOTFOUND;
    case 4:
        return PV_RESOLVE_NOTIMP;
    case 5:
        return PV_RESOLVE_REFUSED;
    default:
        return PV_RESOLVE_ERROR;
    }
}

/* One question's answer read into e->ans[slot]; its status (the
 * message's code, or why there is none) in e->failed[slot]. */
static void take(entry_t *e, int slot, int qtype, int status, const unsigned char *abuf, int alen)
{
    if (!e->ans[slot] && !(e->ans[slot] = malloc(sizeof(pv_dns_answer_t)))) {
        e->failed[slot] = PV_RESOLVE_ERROR;
        return;
    }
    pv_dns_answer_t *a = e->ans[slot];
    const char *err;
    memset(a, 0, sizeof(*a));
    a->ttl = -1;
    if (!abuf || alen <= 0) {
        e->failed[slot] = status == ARES_ETIMEOUT ? PV_RESOLVE_TIMEDOUT
                          : status == ARES_EBADNAME ? PV_RESOLVE_NOTFOUND
                                                    : PV_RESOLVE_ERROR;
        return;
    }
    if (pv_dns_answer_parse(abuf, (size_t)alen, e->name, qtype, a, &err) < 0) {
        pv_log(PV_LOG_ERR, "resolver: %s, name \"%s\"", err, e->name);
        e->failed[slot] = PV_RESOLVE_ERROR;
        return;
    }
    e->failed[slot] = rcode_status(a->rcode);
}

static void set_cname(entry_t *e, const char *target)
{
    free(e->cname);
    e->cname = strdup(target);
    if (!e->cname)
        e->res.status = PV_RESOLVE_ERROR;
}

/* Both address questions are answered: one result, as NGINX makes it.
 * A failure of either fails the name; else the addresses of both (A's
 * first); else the CNAME of the later answer (AAAA's when both were
 * asked), unless that answer was empty. */
static void addrs_done(entry_t *e)
{
    pv_resolved_t *res = &e->res;
    memset(res, 0, sizeof(*res));
    free(e->cname);
    e->cname = NULL;
    int64_t ttl = -1;
    int last = -1;
    for (int s = 0; s < 2; s++) {
        if (!(e->asked & (1 << s)))
            continue;
        last = s;
        if (e->failed[s] != PV_RESOLVE_OK) {
            if (res->status == PV_RESOLVE_OK)
                res->status = e->failed[s];
            continue;
        }
        const pv_dns_answer_t *a = e->ans[s];
        for (int i = 0; i < a->naddrs && res->naddrs < PV_RESOLVED_MAX; i++) {
            res->addrs[res->naddrs] = a->addrs[i];
            res->lens[res->naddrs++] = a->lens[i];
        }
        if (a->ttl >= 0 && (ttl < 0 || a->ttl < ttl))
            ttl = a->ttl;
    }
    if (res->status == PV_RESOLVE_OK && res->naddrs == 0) {
        const pv_dns_answer_t *a = last >= 0 ? e->ans[last] : NULL;
        if (a && a->nan > 0 && a->cname[0])
            set_cname(e, a->cname);
        else
            res->status = PV_RESOLVE_NOTFOUND;
    }
    ans_free(e);
    answered(e, ttl);
}

static void addr_answer(entry_t *e, int slot, int status, unsigned char *abuf, int alen)
{
    if (status == ARES_EDESTRUCTION)
        return;
    if (again(e, slot, status, abuf, alen))
        return;
    take(e, slot, slot_type[slot], status, abuf, alen);
    if (e->pending && --e->pending == 0)
        addrs_done(e);
}

static void a_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    addr_answer(arg, 0, status, abuf, alen);
}

static void aaaa_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    addr_answer(arg, 1, status, abuf, alen);
}

/* The answer to e's SRV question: its records, or a CNAME to follow. */
static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    entry_t *e = arg;
    if (status == ARES_EDESTRUCTION)
        return;
    if (again(e, 0, status, abuf, alen))
        return;
    take(e, 0, PV_DNS_T_SRV, status, abuf, alen);
    pv_resolved_t *res = &e->res;
    memset(res, 0, sizeof(*res));
    free(e->cname);
    e->cname = NULL;
    res->srv = e->srvs;
    res->status = e->failed[0];
    const pv_dns_answer_t *a = e->ans[0];
    if (res->status == PV_RESOLVE_OK) {
        res->nsrv = a->nsrv;
        memcpy(e->srvs, a->srv, sizeof(a->srv[0]) * (size_t)a->nsrv);
        if (a->nsrv == 0 && a->nan > 0 && a->cname[0])
            set_cname(e, a->cname);
        else if (a->nsrv == 0)
            res->status = PV_RESOLVE_NOTFOUND;
    }
    int64_t ttl = a ? a->ttl : -1;
    ans_free(e);
    answered(e, ttl);
}

/* name as asked: one final dot left out, as NGINX does. */
static int lookup(pv_resolver_t *r, const char *name, int srv, int64_t timeout_ms, pv_resolve_cb cb, void *data,
                  pv_resolve_wait_t **wout)
{
    char buf[256];
    size_t l = strlen(name);
    if (l > 1 && name[l - 1] == '.' && l < sizeof(buf)) {
        memcpy(buf, name, l - 1);
        buf[l - 1] = '\0';
        name = buf;
    }
    pv_resolve_wait_t *w = calloc(1, sizeof(*w));
    if (!w)
        return PV_ERR;
    w->cb = cb;
    w->data = data;
    w->r = r;
    w->srv = (uint8_t)srv;
    w->in_call = 1;
    pv_timer_init(&w->timer, wait_timeout_cb, w);
    pv_timer_set(r->loop, &w->timer, (uint64_t)(timeout_ms > 0 ? timeout_ms : 1));
    route(r, w, name, 0);
    /* in_call kept w from being freed by a callback that came already */
    w->in_call = 0; // NOLINT(clang-analyzer-unix.Malloc)
    if (w->done) {
        free(w);
        return PV_OK;
    }
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
    wait_unlink(w);
    pv_timer_del(w->r->loop, &w->timer);
    free(w);
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

/* Channel c to configured server i (resolv.conf's when none is). */
static int chan_open(pv_resolver_t *r, chan_t *c, int i, int tcp)
{
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    /* DNS only (no hosts file), no search domains: names as NGINX's
     * resolver asks them. An answer's code is the answer (NOCHECKRESP:
     * NGINX asks no other server after a SERVFAIL; dns_answer.c checks
     * the question); a truncated one comes to again() (IGNTC); one try,
     * again() picks the next server. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP | (tcp ? ARES_FLAG_USEVC : ARES_FLAG_IGNTC);
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = c;
    o.lookups = (char *)"b";
    o.timeout = RES_RESEND_MS;
    o.tries = 1;
    o.ndomains = 0;
    int mask = ARES_OPT_FLAGS | ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_DOMAINS;
    c->r = r;
    if (ares_init_options(&c->ch, &o, mask) != ARES_SUCCESS)
        return -1;
    if (i < r->cf.nservers) {
        const struct sockaddr *sa = (const struct sockaddr *)&r->cf.servers[i];
        struct ares_addr_port_node n;
        memset(&n, 0, sizeof(n));
        n.family = sa->sa_family;
        if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const void *)sa;
            memcpy(&n.addr.addr6, &s6->sin6_addr, sizeof(s6->sin6_addr));
            n.udp_port = n.tcp_port = ntohs(s6->sin6_port);
        } else {
            const struct sockaddr_in *s4 = (const void *)sa;
            memcpy(&n.addr.addr4, &s4->sin_addr, sizeof(s4->sin_addr));
            n.udp_port = n.tcp_port = ntohs(s4->sin_port);
        }
        if (ares_set_servers_ports(c->ch, &n) != ARES_SUCCESS) {
            ares_destroy(c->ch);
            return -1;
        }
    }
    c->up = 1;
    return 0;
}

static void chans_close(pv_resolver_t *r)
{
    for (int i = 0; i < PV_RESOLVER_SERVERS; i++) {
        if (r->udp[i].up)
            ares_destroy(r->udp[i].ch); /* pending queries end with ARES_EDESTRUCTION */
        if (r->tcp[i].up)
            ares_destroy(r->tcp[i].ch);
        r->udp[i].up = r->tcp[i].up = 0;
    }
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
    r->nchan = cf->nservers > 0 ? cf->nservers : 1;
    for (int i = 0; i < RES_SOCKS; i++)
        r->socks[i].io.fd = -1;
    pv_timer_init(&r->timer, timer_cb, r);
    for (int i = 0; i < r->nchan; i++)
        if (chan_open(r, &r->udp[i], i, 0) < 0) {
            chans_close(r);
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
    case PV_RESOLVE_FORMERR:
        return "Format error";
    case PV_RESOLVE_NOTIMP:
        return "Unimplemented";
    case PV_RESOLVE_REFUSED:
        return "Operation refused";
    default:
        return "Server failure";
    }
}

int pv_resolve_code(int status)
{
    switch (status) {
    case PV_RESOLVE_NOTFOUND:
        return 3;
    case PV_RESOLVE_TIMEDOUT:
        return ETIMEDOUT;
    case PV_RESOLVE_FORMERR:
        return 1;
    case PV_RESOLVE_NOTIMP:
        return 4;
    case PV_RESOLVE_REFUSED:
        return 5;
    default:
        return 2;
    }
}

void pv_resolver_thread_exit(void)
{
    while (resolvers) {
        pv_resolver_t *r = resolvers;
        resolvers = r->next;
        chans_close(r);
        pv_timer_del(r->loop, &r->timer);
        while (r->entries) {
            entry_t *e = r->entries;
            r->entries = e->next;
            for (pv_resolve_wait_t *w = e->waiters, *next; w; w = next) {
                next = w->next;
                pv_timer_del(r->loop, &w->timer);
                free(w);
            }
            entry_free(e);
        }
        free(r);
    }
}
