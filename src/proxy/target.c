/* The target of a proxy_pass with variables, as NGINX's proxy_eval and
 * upstream init find it: the URL is evaluated for the request; its host
 * names an upstream block (or the implicit upstream of a static
 * proxy_pass to the same host:port), else it is an address, else it is
 * resolved through the location's `resolver` on the worker's loop. An
 * address or a resolved name gets a run-time pool (upstream/dynamic.c).
 * "no resolver defined to resolve X" and "X could not be resolved" are
 * 502s, as in NGINX; a URL without http:// or https:// is a 500. */
#include "proxy.h"
#include "../config/conf_bind.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "../config/residency.h"
#include "../core/counters.h"
#include "../core/log.h"
#include "../core/resolver.h"
#include "../http/response.h"
#include "../http/server.h"
#include "../http/accesslog.h"
#include "../http/uvars.h"
#include "../proc/worker.h"
#include "../upstream/dynamic.h"
#include "../upstream/failure.h"
#include "../upstream/upstream.h"

/* The parts of an evaluated URL. */
typedef struct {
    int ssl;
    pv_str_t hostport;   /* "host[:port]" as written ($proxy_host unless the port is the scheme's) */
    char host[256];      /* host without brackets or port */
    int port;            /* 0: none written */
    pv_str_t uri;        /* URI part, or empty */
    int unix_len;        /* http://unix:PATH[:URI]: PATH's length in host (0: not one) */
} url_t;

/* "unix:PATH[:URI]" at hp (NGINX's ngx_parse_unix_domain_url): the path
 * ends at the first ':'. */
static int parse_unix(const char *hp, const char *end, url_t *u, const char **why)
{
    const char *path = hp + 5, *colon = memchr(path, ':', (size_t)(end - path));
    const char *pe = colon ? colon : end;
    if (pe == path) {
        *why = "no path in the unix domain socket";
        return -1;
    }
    if ((size_t)(pe - path) >= sizeof(((struct sockaddr_un *)0)->sun_path) || memchr(path, '\0', (size_t)(pe - path))) {
        *why = "too long path in the unix domain socket";
        return -1;
    }
    memcpy(u->host, path, (size_t)(pe - path));
    u->host[pe - path] = '\0';
    u->unix_len = (int)(pe - path);
    u->hostport = (pv_str_t){hp, (size_t)(pe - hp)};
    u->uri = colon ? (pv_str_t){colon + 1, (size_t)(end - colon - 1)} : (pv_str_t){end, 0};
    return 0;
}

/* Split "http[s]://HOST[:PORT][/URI]". 0, or -1 with *why set. */
static int parse_url(pv_str_t v, url_t *u, const char **why)
{
    size_t skip;
    memset(u, 0, sizeof(*u));
    if (v.len >= 8 && strncasecmp(v.p, "https://", 8) == 0) {
        u->ssl = 1;
        skip = 8;
    } else if (v.len >= 7 && strncasecmp(v.p, "http://", 7) == 0) {
        skip = 7;
    } else {
        *why = "invalid URL prefix";
        return -1;
    }
    const char *hp = v.p + skip, *end = v.p + v.len, *e = hp;
    if ((size_t)(end - hp) >= 5 && strncasecmp(hp, "unix:", 5) == 0)
        return parse_unix(hp, end, u, why);
    while (e < end && *e != '/' && *e != '?')
        e++;
    u->hostport = (pv_str_t){hp, (size_t)(e - hp)};
    u->uri = (pv_str_t){e, (size_t)(end - e)};
    const char *h = hp, *he, *colon;
    if (h < e && *h == '[') {
        he = memchr(h, ']', (size_t)(e - h));
        if (!he) {
            *why = "invalid host";
            return -1;
        }
        h++;
        colon = he + 1 < e && he[1] == ':' ? he + 1 : NULL;
        if (he + 1 < e && !colon) {
            *why = "invalid host";
            return -1;
        }
    } else {
        colon = memchr(h, ':', (size_t)(e - h));
        he = colon ? colon : e;
    }
    if (he == h || (size_t)(he - h) >= sizeof(u->host)) {
        *why = he == h ? "no host" : "too long host";
        return -1;
    }
    for (const char *c = h; c < he; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            *why = "invalid host"; /* a NUL or a space in a variable's value */
            return -1;
        }
    }
    memcpy(u->host, h, (size_t)(he - h));
    u->host[he - h] = '\0';
    if (colon) {
        int port = 0;
        const char *c = colon + 1;
        for (; c < e && *c >= '0' && *c <= '9' && port <= 65535; c++)
            port = port * 10 + (*c - '0');
        if (c != e || c == colon + 1 || port < 1 || port > 65535) {
            *why = "invalid port";
            return -1;
        }
        u->port = port;
    }
    return 0;
}

/* The upstream block the host names (no port written), or the implicit
 * upstream of a static proxy_pass to the same host and port. */
static int find_upstream(const pv_conf_t *conf, const url_t *u)
{
    const pv_http_conf_t *h = conf->http;
    char name[300];
    int dport = u->port ? u->port : u->ssl ? 443 : 80;
    snprintf(name, sizeof(name), strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, dport);
    for (int k = 0; k < h->nupstreams; k++) {
        const pv_upstream_conf_t *c = h->upstreams[k];
        if (c->implicit ? strcasecmp(c->name, name) == 0 : !u->port && strcasecmp(c->name, u->host) == 0)
            return k;
    }
    return -1;
}

static void fail(pv_proxy_t *px, int f)
{
    pv_proxy_answer_failure(px, f);
}

/* The run-time pool called name for addresses a, and on. */
static int use_pool(pv_proxy_t *px, const char *name, const pv_dyn_addrs_t *a)
{
    pv_hreq_t *hr = px->hr;
    px->pool = pv_upstream_dyn_get(hr->gen, name, a, pv_loop_now(hr->w->loop));
    if (!px->pool) {
        pv_log(PV_LOG_ALERT, "out of memory for upstream \"%s\", client: %s", name, hr->r.peer_text);
        fail(px, PV_UPF_BAD_URL);
        return PV_ERR;
    }
    px->dyn |= PV_PROXY_DYN_POOL;
    return PV_OK;
}

/* The run-time pool for addresses a (ports set), and on. */
static int use_addrs(pv_proxy_t *px, const url_t *u, pv_dyn_addrs_t *a)
{
    char name[300];
    int port = u->port ? u->port : u->ssl ? 443 : 80;
    snprintf(name, sizeof(name), strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, port);
    for (int i = 0; i < a->n; i++) {
        if (a->addrs[i].ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a->addrs[i])->sin6_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in *)&a->addrs[i])->sin_port = htons((uint16_t)port);
    }
    return use_pool(px, name, a);
}

/* What the resolver answered for the host px waits for: the pool, or
 * the 502 answered. In a look-up answered from the cache (in_resolve)
 * the caller goes on; later, px->targeted() does. */
static void resolved(void *data, const pv_resolved_t *res)
{
    pv_proxy_t *px = data;
    int sync = px->in_resolve == 1;
    px->dns_wait = NULL;
    px->dyn &= (uint8_t)~PV_PROXY_DYN_WAIT;
    url_t u;
    const char *why;
    int rc = PV_ERR;
    if (parse_url(px->dyn_url, &u, &why) < 0) {
        fail(px, PV_UPF_BAD_URL); /* cannot happen: it was parsed before the look-up */
    } else if (res->status != PV_RESOLVE_OK) {
        pv_log(PV_LOG_ERR, "%s could not be resolved (%d: %s), client: %s", u.host, pv_resolve_code(res->status),
               pv_resolve_strerror(res->status), px->hr->r.peer_text);
        fail(px, PV_UPF_RESOLVE);
    } else {
        pv_dyn_addrs_t a;
        a.n = res->naddrs;
        memcpy(a.addrs, res->addrs, sizeof(a.addrs[0]) * (size_t)res->naddrs);
        memcpy(a.lens, res->lens, sizeof(a.lens[0]) * (size_t)res->naddrs);
        rc = use_addrs(px, &u, &a);
    }
    if (sync)
        px->in_resolve = rc == PV_OK ? 2 : 3;
    else if (rc == PV_OK)
        px->targeted(px);
}

/* An address literal: the run-time pool for it, no lookup. 1 when host is one. */
static int literal(const char *host, pv_dyn_addrs_t *a)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addrs[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addrs[0];
    memset(&a->addrs[0], 0, sizeof(a->addrs[0]));
    a->n = 1;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        a->lens[0] = sizeof(*s4);
        return 1;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        a->lens[0] = sizeof(*s6);
        return 1;
    }
    return 0;
}

/* Refuse the request: a route out of its residency scope (why). 403,
 * logged with the scope and the target, counted; it never reaches an
 * upstream. */
static int residency_refuse(pv_proxy_t *px, const char *why)
{
    pv_hreq_t *hr = px->hr;
    const pv_residency_t *scope = px->r->res_scope ? px->r->res_scope : px->loc->conf.residency;
    why = why ? why : "a target out of memory";
    pv_log(PV_LOG_ERR, "residency: %s, scope \"residency %s\" (%s:%d), request refused, client: %s, request: \"%.*s\"",
           why, scope ? scope->text : "", scope ? scope->src.file : "?", scope ? scope->src.line : 0,
           pv_log_client(&hr->r), (int)PV_MIN(px->r->uri.len, 512), px->r->uri.p);
    pv_count(PV_CTR_RESIDENCY_REFUSED);
    hr->handling = 0;
    if (px->sub_done)
        px->sub_done(hr, px->r, 403);
    else
        pv_resp_local(hr, 403, NULL, (pv_str_t){NULL, 0});
    return PV_ERR;
}

int pv_proxy_residency(pv_proxy_t *px)
{
    const pv_request_t *r = px->r;
    const pv_residency_t *own = px->loc->conf.residency;
    if (!r->res_allow || (own && !own->off && r->res_allow == &own->allow))
        return PV_OK; /* the location's own scope: the load-time check saw its routes */
    const pv_upstream_conf_t *cf = px->pool->cf;
    for (int i = 0; i < cf->nservers; i++) {
        const pv_upstream_server_t *us = &cf->servers[i];
        if (pv_jurset_has(r->res_allow, us->jur))
            continue;
        char cc[3];
        return residency_refuse(px, pv_arena_printf(px->r->arena,
                                                    "proxy_pass in %s:%d to upstream \"%s\", server %s (%s), "
                                                    "leaves the request's scope",
                                                    px->loc->proxy_pass->src.file, px->loc->proxy_pass->src.line,
                                                    cf->name, us->text,
                                                    us->jur == PV_JUR_NONE ? "no jurisdiction" : pv_jur_text(us->jur, cc)));
    }
    return PV_OK;
}

/* In a residency scope (the location's or one the request entered) the
 * host must name one of the location's residency_targets upstreams, no
 * port written: never an address or a DNS name, which no load-time
 * check could place; and that upstream's servers must be where the
 * request may go. Else the request is refused. host: the evaluated
 * host, or the whole URL when it did not parse (u NULL). */
static int residency_target(pv_proxy_t *px, const url_t *u, pv_str_t host)
{
    const pv_res_targets_t *t = px->loc->conf.res_targets;
    for (int i = 0; u && !u->port && t && i < t->n; i++)
        if (strcasecmp(t->ups[i]->name, u->host) == 0) {
            px->pool = pv_upstream_pool(px->hr->gen, t->ups[i]->index);
            return pv_proxy_residency(px);
        }
    int n = (int)PV_MIN(host.len, 256);
    return residency_refuse(px, t ? pv_arena_printf(px->r->arena,
                                                    "proxy_pass target \"%.*s\" is not in residency_targets (%s:%d)",
                                                    n, host.p ? host.p : "", t->src.file, t->src.line)
                                  : pv_arena_printf(px->r->arena,
                                                    "proxy_pass target \"%.*s\": the location (%s:%d) has no "
                                                    "residency_targets", n, host.p ? host.p : "",
                                                    px->loc->src.file, px->loc->src.line));
}

/* http://unix:PATH[:URI]: a run-time pool "unix:PATH" for the socket;
 * the Host sent is "localhost", as for a static one. */
static int unix_target(pv_proxy_t *px, const url_t *u)
{
    pv_request_t *r = px->r;
    r->proxy_host = PV_STR("localhost");
    r->proxy_uri = u->uri;
    if (u->uri.len && u->uri.p[0] == '?')
        r->proxy_uri = (pv_str_t){pv_arena_printf(r->arena, "/%.*s", (int)u->uri.len, u->uri.p), u->uri.len + 1};
    pv_dyn_addrs_t a = {.n = 1};
    struct sockaddr_un *un = (struct sockaddr_un *)&a.addrs[0];
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, u->host, (size_t)u->unix_len);
    a.lens[0] = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)u->unix_len + 1);
    char name[300];
    snprintf(name, sizeof(name), "unix:%s", u->host);
    return use_pool(px, name, &a);
}

int pv_proxy_target(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    const pv_location_t *loc = px->loc;
    pv_str_t v = pv_cv_eval_arena(loc->proxy_pass->cv, r);
    px->dyn_url = v;
    url_t u;
    const char *why;
    int scoped = r->res_allow || pv_residency_active(&loc->conf);
    if (parse_url(v, &u, &why) < 0) {
        if (scoped)
            return residency_target(px, NULL, v);
        pv_log(PV_LOG_ERR, "%s in \"%.*s\", client: %s", why, (int)PV_MIN(v.len, 512), v.p ? v.p : "",
               hr->r.peer_text);
        fail(px, PV_UPF_BAD_URL);
        return PV_ERR;
    }
    px->in_resolve = 0;
    if (u.unix_len && !scoped)
        return unix_target(px, &u);
    /* $proxy_host and Host: the scheme's own port left out */
    pv_str_t hp = u.hostport;
    if (u.port == (u.ssl ? 443 : 80))
        hp.len -= (u.ssl ? 4 : 3);
    r->proxy_host = hp;
    r->proxy_uri = u.uri;
    if (u.uri.len && u.uri.p[0] == '?')
        r->proxy_uri = (pv_str_t){pv_arena_printf(r->arena, "/%.*s", (int)u.uri.len, u.uri.p), u.uri.len + 1};
    px->dyn_host = pv_arena_strdup(r->arena, u.host);
    px->dyn |= PV_PROXY_DYN_HOST;
    if (scoped)
        return residency_target(px, &u, u.hostport);
    int k = find_upstream(hr->gen->conf, &u);
    if (k >= 0) {
        px->pool = pv_upstream_pool(hr->gen, k);
        return PV_OK;
    }
    pv_dyn_addrs_t a;
    if (literal(u.host, &a))
        return use_addrs(px, &u, &a);
    const pv_resolver_conf_t *rcf = loc->conf.resolver;
    if (!rcf) {
        pv_log(PV_LOG_ERR, "no resolver defined to resolve %s, client: %s", u.host, hr->r.peer_text);
        fail(px, PV_UPF_RESOLVE);
        return PV_ERR;
    }
    pv_resolver_t *res = pv_resolver_get(hr->w->loop, rcf);
    if (!res) {
        pv_log(PV_LOG_ALERT, "resolver could not be set up to resolve %s, client: %s", u.host, hr->r.peer_text);
        fail(px, PV_UPF_RESOLVE);
        return PV_ERR;
    }
    px->in_resolve = 1;
    int rc = pv_resolve(res, u.host, loc->conf.resolver_timeout, resolved, px, &px->dns_wait);
    int st = px->in_resolve;
    px->in_resolve = 0;
    if (rc == PV_AGAIN) {
        px->dyn |= PV_PROXY_DYN_WAIT;
        hr->handling = 1;
        return PV_AGAIN;
    }
    if (rc == PV_ERR) {
        fail(px, PV_UPF_RESOLVE);
        return PV_ERR;
    }
    return st == 2 ? PV_OK : PV_ERR;
}

void pv_proxy_target_done(pv_proxy_t *px)
{
    if (px->dyn & PV_PROXY_DYN_WAIT) {
        pv_resolve_cancel(px->dns_wait);
        px->dns_wait = NULL;
    }
    if (px->dyn & PV_PROXY_DYN_POOL) {
        pv_upstream_dyn_put(px->pool);
        px->pool = NULL;
    }
    px->dyn = 0;
}

const pv_net_bind_t *pv_proxy_bind(pv_proxy_t *px)
{
    return pv_proxy_bind_of(px, px->loc->conf.proxy_bind);
}

const pv_net_bind_t *pv_proxy_bind_of(pv_proxy_t *px, const pv_bind_conf_t *b)
{
    if (!b || !b->cv)
        return b ? &b->addr : NULL;
    pv_str_t v = pv_cv_eval_arena(b->cv, px->r);
    if (!v.len)
        return NULL;
    pv_net_bind_t *a = pv_arena_alloc(px->r->arena, sizeof(*a));
    if (pv_net_parse_addr(v.p, v.len, a) != 0) {
        pv_log_r(px->r, PV_LOG_ERR, "invalid local address \"%.*s\", client: %s", (int)v.len, v.p,
                 pv_log_client(px->r));
        return NULL;
    }
    a->transparent = b->addr.transparent;
    return a;
}
