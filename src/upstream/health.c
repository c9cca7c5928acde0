#define PCRE2_CODE_UNIT_WIDTH 8
#include "health.h"

#include <errno.h>
#include <pcre2.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "../core/log.h"
#include "../core/net.h"
#include "../core/tls.h"
#include "../core/xprt.h"
#include "../proc/worker.h"
#include "discovery.h"
#include "upstream.h"

/* One server's check: a timer, and while a check runs its connection. */
typedef struct hcheck_s {
    pv_worker_t *w;
    pv_upool_t *pool;
    const pv_health_conf_t *hc;
    int server;
    pv_timer_t timer;  /* next check, or the running one's deadline */
    pv_xprt_t x;       /* the check's connection (TLS for https); fd -1 between checks */
    uint32_t gen;      /* a `resolve` slot: the address generation being checked */
    uint8_t connected;
    size_t sent, reqlen, len;
    char req[512];
    char buf[16384];   /* the answer's start: what a match block judges */
} hcheck_t;

/* A generation's checks (the first worker only). */
typedef struct hchecks_s {
    hcheck_t *c;
    int n;
} hchecks_t;

static void check_timer_cb(pv_timer_t *t);
static void check_io_cb(pv_io_t *io, unsigned events);

/* The next check in interval plus up to jitter. */
static void schedule(hcheck_t *c)
{
    uint64_t ms = (uint64_t)c->hc->interval;
    if (c->hc->jitter > 0)
        ms += (uint64_t)random() % (uint64_t)(c->hc->jitter + 1);
    pv_timer_set(c->w->loop, &c->timer, ms);
}

static void disconnect(hcheck_t *c)
{
    if (c->x.io.fd < 0)
        return;
    pv_loop_del(c->w->loop, &c->x.io);
    pv_xprt_close(&c->x);
}

/* A check's verdict into the shared state; a change of state is logged once. */
static void verdict(hcheck_t *c, int passed, const char *reason)
{
    char why[128];
    snprintf(why, sizeof(why), "%s", reason); /* a transport's words go with it */
    disconnect(c);
    pv_peer_t *p = c->pool->peers[c->server];
    int change = 0;
    pthread_mutex_lock(&p->group->lock);
    if (c->gen && atomic_load(&p->cur_gen) != c->gen) {
        /* the slot's address changed while it was checked: the verdict
         * was about another server */
        pthread_mutex_unlock(&p->group->lock);
        schedule(c);
        return;
    }
    pv_bal_state_t *st = &p->bal;
    int first = !st->hc_checked;
    st->checks_total++;
    st->checks_failed += !passed;
    if (passed) {
        st->hc_fails = 0;
        st->hc_passes++;
        /* a mandatory server's first pass brings it in at once; one
         * that comes back from failing its checks starts its slow_start */
        if (st->hc_down && (st->hc_passes >= c->hc->passes || first)) {
            st->hc_down = 0;
            change = 1;
            if (!first && c->pool->cf->servers[c->server].slow_start) {
                uint64_t now = pv_loop_now(c->w->loop);
                st->slow_since = now ? (int64_t)now : 1;
            }
        }
    } else {
        st->hc_passes = 0;
        st->hc_fails++;
        if (!st->hc_down && st->hc_fails >= c->hc->fails) {
            st->hc_down = 1;
            st->hc_down_total++;
            change = -1;
        } else if (first) {
            change = -1; /* a mandatory server's first check failed: said once */
        }
    }
    st->hc_checked = 1;
    pthread_mutex_unlock(&p->group->lock);
    char text[80];
    const char *t = change ? pv_upstream_server_text(c->pool, c->server, text, sizeof(text)) : "";
    if (change > 0)
        pv_log(PV_LOG_WARN, "upstream server %s in upstream \"%s\" passed its health check: up", t,
               c->pool->cf->name);
    else if (change < 0)
        pv_log(PV_LOG_WARN, "upstream server %s in upstream \"%s\" failed its health check (%s): down", t,
               c->pool->cf->name, why);
    schedule(c);
}

/* The status of an answer that starts "HTTP/1.x NNN ", or -1. */
static int answer_status(const char *b, size_t n)
{
    if (n < 13 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ' || b[12] != ' ')
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return -1;
        st = st * 10 + b[i] - '0';
    }
    return st;
}

/* The value of header field name in the head head[0, n), or NULL. */
static const char *field(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', n), *end = head + n;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *e = eol ? eol : end;
        if (e > p && e[-1] == '\r')
            e--;
        if ((size_t)(e - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static int re_matches(const pv_regex_t *rx, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(rx->code, NULL);
    int rc = md ? pcre2_match(rx->code, (PCRE2_SPTR)s, n, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Whether one line of a match block holds for the answer. */
static int cond_holds(const pv_match_cond_t *m, int status, const char *head, size_t hlen, const char *body,
                      size_t blen)
{
    int ok = 0;
    if (m->kind == PV_MATCH_STATUS) {
        for (int i = 0; i < m->nranges && !ok; i++)
            ok = status >= m->ranges[i][0] && status <= m->ranges[i][1];
    } else if (m->kind == PV_MATCH_BODY) {
        ok = re_matches(m->rx, body, blen);
    } else {
        size_t vl = 0;
        const char *v = field(head, hlen, m->name, &vl);
        ok = v && (m->op == PV_MATCH_PRESENT || (m->op == PV_MATCH_EQ && strlen(m->value) == vl &&
                                                 memcmp(m->value, v, vl) == 0) ||
                   (m->op == PV_MATCH_RE && re_matches(m->rx, v, vl)));
    }
    return m->neg ? !ok : ok;
}

/* Judge what arrived: with a match block every line must hold, else a
 * 2xx or 3xx status passes (NGINX Plus's default). */
static void judge(hcheck_t *c)
{
    int st = answer_status(c->buf, c->len);
    char why[64];
    snprintf(why, sizeof(why), st < 0 ? "no valid status line" : "status %d", st);
    const pv_match_t *m = c->hc->match;
    if (st < 0 || !m) {
        verdict(c, st >= 200 && st < 400, why);
        return;
    }
    const char *sep = memmem(c->buf, c->len, "\r\n\r\n", 4);
    size_t hlen = sep ? (size_t)(sep - c->buf) : c->len;
    const char *body = sep ? sep + 4 : c->buf + c->len;
    size_t blen = (size_t)(c->buf + c->len - body);
    for (int i = 0; i < m->nconds; i++) {
        if (!cond_holds(&m->conds[i], st, c->buf, hlen, body, blen)) {
            snprintf(why, sizeof(why), "status %d, line %d of match \"%.16s\"", st, i + 1, m->name);
            verdict(c, 0, why);
            return;
        }
    }
    verdict(c, 1, why);
}

/* Make the check's connection a TLS client (an https proxy_pass), under
 * the location's proxy_ssl_* settings; no session is kept. */
static int tls_start(hcheck_t *c)
{
    const pv_upstream_tls_t *tls = c->hc->tls;
    const char *name = tls->name[0] ? tls->name : c->pool->cf->name;
    struct in_addr a;
    int literal = strchr(name, ':') || inet_pton(AF_INET, name, &a) == 1;
    pv_tls_client_t tc = {
        .ctx = tls->ctx,
        .sni = tls->server_name && !literal ? name : NULL,
        .verify_name = tls->verify ? name : NULL,
    };
    return pv_tls_client(&c->x, &tc);
}

static void start_check(hcheck_t *c)
{
    const pv_upstream_server_t *s = &c->pool->cf->servers[c->server];
    struct sockaddr_storage sa = s->addr;
    socklen_t salen = s->addrlen;
    c->gen = 0;
    if (s->resolve_host) {
        /* a `resolve` slot: its address now; an empty slot is not checked */
        char text[64];
        c->gen = pv_discovery_slot_addr(c->pool->peers[c->server], &sa, &salen, text, sizeof(text));
        if (!c->gen) {
            schedule(c);
            return;
        }
    }
    if (c->hc->port) {
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)c->hc->port);
        else
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)c->hc->port);
    }
    int fd = pv_net_connect((struct sockaddr *)&sa, salen);
    if (fd < 0) {
        verdict(c, 0, strerror(errno));
        return;
    }
    pv_xprt_init(&c->x, fd, check_io_cb, c);
    if ((c->hc->tls && tls_start(c) != PV_OK) || pv_loop_add(c->w->loop, &c->x.io) < 0) {
        pv_xprt_close(&c->x);
        verdict(c, 0, "cannot set the connection up");
        return;
    }
    c->connected = 0;
    c->sent = c->len = 0;
    /* the deadline of this check: its interval */
    pv_timer_set(c->w->loop, &c->timer, (uint64_t)c->hc->interval);
}

static void check_timer_cb(pv_timer_t *t)
{
    hcheck_t *c = t->data;
    if (c->x.io.fd >= 0) {
        verdict(c, 0, "timed out");
        return;
    }
    start_check(c);
}

/* Write the request, then read the answer until the server closes (the
 * request asks for that) or the buffer is full. */
static void check_io_cb(pv_io_t *io, unsigned events)
{
    hcheck_t *c = io->data;
    pv_xprt_t *x = &c->x;
    if (!c->connected) {
        int e = pv_net_sock_error(io->fd);
        if (e) {
            verdict(c, 0, strerror(e));
            return;
        }
        if (!(events & PV_EV_WRITE))
            return;
        c->connected = 1;
    }
    pv_xprt_events(x, events);
    while (c->sent < c->reqlen) {
        struct iovec iov = {c->req + c->sent, c->reqlen - c->sent};
        ssize_t n = pv_xprt_writev(x, &iov, 1);
        if (n == PV_AGAIN)
            return;
        if (n <= 0) {
            verdict(c, 0, x->why ? x->why : strerror(errno));
            return;
        }
        c->sent += (size_t)n;
    }
    for (;;) {
        ssize_t n = pv_xprt_read(x, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n == PV_AGAIN)
            return;
        if (n < 0) {
            verdict(c, 0, x->why ? x->why : strerror(errno));
            return;
        }
        c->len += (size_t)n;
        if (n == 0 || c->len == sizeof(c->buf)) {
            judge(c);
            return;
        }
    }
}

int pv_health_retry_after(pv_upool_t *p)
{
    const pv_upstream_conf_t *cf = p->cf;
    if (!cf->health)
        return 0;
    int held_out = 1;
    pthread_mutex_lock(&p->peers[0]->group->lock);
    for (int i = 0; i < cf->nservers && held_out; i++)
        held_out = cf->servers[i].down || p->peers[i]->bal.hc_down;
    pthread_mutex_unlock(&p->peers[0]->group->lock);
    return held_out ? (int)PV_MAX(1, (cf->health->interval + 999) / 1000) : 0;
}

/* Checks for every server (but `down` ones) of every upstream of g that
 * has them. A mandatory check runs at once, the others after a first
 * interval. */
static int build(pv_worker_t *w, pv_wgen_t *g, hchecks_t *hs)
{
    const pv_http_conf_t *h = g->conf->http;
    int n = 0;
    for (int i = 0; h && i < h->nupstreams; i++)
        n += h->upstreams[i]->health ? h->upstreams[i]->nservers : 0;
    if (n == 0)
        return 0;
    hs->c = calloc((size_t)n, sizeof(hcheck_t));
    if (!hs->c)
        return -1;
    for (int i = 0; i < h->nupstreams; i++) {
        const pv_upstream_conf_t *u = h->upstreams[i];
        for (int j = 0; u->health && j < u->nservers; j++) {
            if (u->servers[j].down)
                continue;
            hcheck_t *c = &hs->c[hs->n++];
            c->w = w;
            c->pool = pv_upstream_pool(g, i);
            c->hc = u->health;
            c->server = j;
            pv_xprt_init(&c->x, -1, check_io_cb, c);
            int len = snprintf(c->req, sizeof(c->req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: portvakt health check\r\n\r\n",
                               u->health->uri, u->implicit ? u->name : u->servers[j].text);
            c->reqlen = len > 0 && (size_t)len < sizeof(c->req) ? (size_t)len : 0;
            pv_timer_init(&c->timer, check_timer_cb, c);
            pv_timer_set(w->loop, &c->timer, u->health->mandatory ? 0 : (uint64_t)u->health->interval);
        }
    }
    return 0;
}

static void stop(pv_worker_t *w, hchecks_t *hs)
{
    for (int i = 0; i < hs->n; i++) {
        pv_timer_del(w->loop, &hs->c[i].timer);
        disconnect(&hs->c[i]);
    }
    hs->n = 0;
}

static int mod_gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
    if (w->id != 1)
        return PV_OK;
    hchecks_t *prev = old ? old->mod[pv_health_module.index] : NULL;
    if (prev)
        stop(w, prev); /* the new generation's checks take over */
    hchecks_t *hs = calloc(1, sizeof(*hs));
    if (!hs || build(w, g, hs) < 0) {
        free(hs);
        return PV_ERR;
    }
    g->mod[pv_health_module.index] = hs;
    return PV_OK;
}

static void mod_gen_free(pv_wgen_t *g)
{
    hchecks_t *hs = g->mod[pv_health_module.index];
    if (hs->n)
        stop(hs->c[0].w, hs);
    free(hs->c);
    free(hs);
    g->mod[pv_health_module.index] = NULL;
}

static void mod_drain(pv_worker_t *w)
{
    hchecks_t *hs = w->gen ? w->gen->mod[pv_health_module.index] : NULL;
    if (hs)
        stop(w, hs);
}

pv_module_t pv_health_module = {
    .name = "health",
    .gen_init = mod_gen_init,
    .gen_free = mod_gen_free,
    .drain = mod_drain,
    .close_all = mod_drain,
};
