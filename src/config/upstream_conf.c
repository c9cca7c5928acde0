/* The upstream block: `upstream`, `server` and its parameters, the
 * balancing methods (least_conn, ip_hash, hash, random), `zone` and
 * `keepalive`, with NGINX's syntax and messages; and, once the block is
 * read, the order of its servers (primaries first) and the
 * consistent-hash ring, built as NGINX builds it (ketama). */
#include "conf_int.h"
#include "residency.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/crc32.h"
#include "../core/log.h"

static int set_upstream_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->nupstreams; i++)
        if (strcasecmp(h->upstreams[i]->name, ARG(nd, 1)) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate upstream \"%s\"", ARG(nd, 1));
    pv_upstream_conf_t *u = pv_arena_calloc(cx->a, sizeof(*u));
    u->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    u->keepalive = PV_UNSET;
    u->keepalive_requests = PV_UNSET;
    u->keepalive_timeout = PV_UNSET;
    u->keepalive_time = PV_UNSET;
    u->keepalive_grace = PV_UNSET;
    u->resolver_timeout = PV_UNSET;
    u->jur = PV_JUR_NONE;
    u->src = nd->src;
    *(pv_upstream_conf_t **)pv_conf_push(cx->a, &h->upstreams, &h->nupstreams, sizeof(u)) = u;
    cx->ups = u;
    int rc = pv_conf_walk(cx, nd->child, PV_CTX_UPSTREAM);
    cx->ups = NULL;
    return rc;
}

/* A server line's parameters. */
typedef struct server_params_s {
    int weight, max_fails, max_conns, backup, down, resolve;
    int jur; /* jurisdiction=, PV_JUR_NONE when not written */
    int64_t fail_timeout, slow_start;
    const char *service;
} server_params_t;

/* Parse one "name=value" or flag parameter into sp; 0, or -1 if invalid. */
static int server_param(const char *a, server_params_t *sp)
{
    const char *v;
    int64_t n;
    if ((v = pv_conf_param(a, "weight"))) {
        n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n <= 0 || n > 0xffff)
            return -1;
        sp->weight = (int)n;
    } else if ((v = pv_conf_param(a, "max_fails")) || (v = pv_conf_param(a, "max_conns"))) {
        n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return -1;
        *(a[4] == 'f' ? &sp->max_fails : &sp->max_conns) = (int)n;
    } else if ((v = pv_conf_param(a, "fail_timeout")) || (v = pv_conf_param(a, "slow_start"))) {
        n = pv_conf_parse_msec((pv_str_t){v, strlen(v)});
        if (n < 0)
            return -1;
        *(a[0] == 'f' ? &sp->fail_timeout : &sp->slow_start) = n;
    } else if (strcmp(a, "backup") == 0) {
        sp->backup = 1;
    } else if (strcmp(a, "down") == 0) {
        sp->down = 1;
    } else if (strcmp(a, "resolve") == 0) {
        sp->resolve = 1;
    } else if ((v = pv_conf_param(a, "service"))) {
        sp->service = v;
    } else {
        return -1;
    }
    return 0;
}

static void fill_server(pv_upstream_server_t *s, const char *name, const server_params_t *sp,
                        const pv_conf_node_t *nd)
{
    s->name = name;
    s->weight = sp->weight;
    s->max_fails = sp->max_fails;
    s->fail_timeout = sp->fail_timeout;
    s->max_conns = sp->max_conns;
    s->slow_start = sp->slow_start;
    s->backup = sp->backup;
    s->down = sp->down;
    s->jur = sp->jur;
    s->src = nd->src;
}

/* A slot's peer key: a name (the host, or an SRV name), not an address. */
static void slot_key(pv_upstream_server_t *s, const char *key)
{
    size_t nl = PV_MIN(strlen(key), sizeof(s->addr) - 3);
    s->addr.ss_family = AF_UNSPEC;
    memcpy((char *)&s->addr + 2, key, nl);
    s->addrlen = (socklen_t)(2 + nl + 1);
}

/* `server NAME service=SVC resolve` (NGINX Plus): the SRV records of
 * _SVC._tcp.NAME (SVC.NAME when SVC has a dot) give the servers, each
 * target's addresses with the record's port and weight, looked up again
 * as they expire (upstream/discovery.c). The records of the lowest
 * priority value fill PV_RESOLVED_MAX slots of the line's kind, the
 * others as many backup slots; a `backup` line takes the first as
 * backups and ignores the others. Nothing is looked up at load. */
static int service_line(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const server_params_t *sp)
{
    pv_upstream_conf_t *u = cx->ups;
    const char *host = pv_arena_strdup(cx->a, ARG(nd, 1)), *svc = sp->service;
    if (!sp->resolve)
        return pv_conf_error(cx, &nd->src, "service upstream \"%s\" requires \"resolve\"", host);
    if (strchr(host, ':') || strncmp(host, "unix:", 5) == 0)
        return pv_conf_error(cx, &nd->src, "service upstream \"%s\" may not have port", host);
    if (!*host || !*svc || strlen(host) + strlen(svc) > 240)
        return pv_conf_error(cx, &nd->src, "invalid service \"%s\" in upstream \"%s\"", svc, host);
    const char *q = strchr(svc, '.') ? pv_arena_printf(cx->a, "%s.%s", svc, host)
                                     : pv_arena_printf(cx->a, "_%s._tcp.%s", svc, host);
    for (int tier = 0; tier < (sp->backup ? 1 : 2); tier++) {
        int first = u->nservers;
        for (int i = 0; i < PV_RESOLVED_MAX; i++) {
            pv_upstream_server_t *s = pv_conf_push(cx->a, &u->servers, &u->nservers, sizeof(*s));
            slot_key(s, q);
            snprintf(s->text, sizeof(s->text), "%s", host);
            fill_server(s, host, sp, nd);
            s->backup = sp->backup || tier;
            s->resolve_host = host;
            s->resolve_service = q;
            s->srv_tier = tier;
            s->resolve_first = first;
        }
    }
    u->nresolve++;
    return PV_OK;
}

/* `server NAME[:PORT] resolve`: PV_RESOLVED_MAX slots whose addresses
 * follow the name's DNS answers at run time (upstream/discovery.c). The
 * addresses found now are the slots' first ones; none found is a
 * warning, not an error, since the service may come up later. An
 * address literal is an ordinary server line. */
static int resolve_line(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const server_params_t *sp)
{
    pv_upstream_conf_t *u = cx->ups;
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, ARG(nd, 1), nd->args[1].len, &host, &port) != 0)
        return pv_conf_error(cx, &nd->src, "invalid port in upstream \"%s\"", ARG(nd, 1));
    if (!*host)
        return pv_conf_error(cx, &nd->src, "no host in upstream \"%s\"", ARG(nd, 1));
    port = port ? port : 80;
    pv_conf_addr_t addrs[PV_RESOLVED_MAX];
    struct in6_addr a6;
    int literal = strchr(host, ':') ? inet_pton(AF_INET6, host, &a6) == 1 : inet_pton(AF_INET, host, &a6) == 1;
    int n = pv_conf_resolve(cx, host, port, addrs, (int)PV_NELEM(addrs));
    if (literal && n > 0) {
        pv_upstream_server_t *s = pv_conf_push(cx->a, &u->servers, &u->nservers, sizeof(*s));
        s->addr = addrs[0].ss;
        s->addrlen = addrs[0].len;
        pv_conf_addr_text((struct sockaddr *)&s->addr, s->text, sizeof(s->text));
        fill_server(s, pv_arena_strdup(cx->a, ARG(nd, 1)), sp, nd);
        return PV_OK;
    }
    if (n == 0 && !(cx->flags & PV_CONF_F_NO_DNS))
        pv_log(PV_LOG_WARN, "host not found in upstream \"%s\" in %s:%d; it is resolved at run time", ARG(nd, 1),
               nd->src.file, nd->src.line);
    const char *name = pv_arena_strdup(cx->a, ARG(nd, 1));
    int first = u->nservers;
    for (int i = 0; i < PV_RESOLVED_MAX; i++) {
        pv_upstream_server_t *s = pv_conf_push(cx->a, &u->servers, &u->nservers, sizeof(*s));
        slot_key(s, name);
        snprintf(s->text, sizeof(s->text), "%s", name);
        fill_server(s, name, sp, nd);
        s->resolve_host = host;
        s->resolve_port = port;
        s->resolve_first = first;
        if (i < n) {
            s->init = addrs[i].ss;
            s->initlen = addrs[i].len;
        }
    }
    u->nresolve++;
    return PV_OK;
}

static int set_upstream_server_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                                  const pv_conf_node_t *nd, void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    server_params_t sp = {.weight = 1, .max_fails = 1, .fail_timeout = 10000, .jur = PV_JUR_NONE};
    for (int i = 2; i < nd->nargs; i++) {
        const char *j = pv_conf_param(ARG(nd, i), "jurisdiction");
        if (j && pv_conf_jurisdiction_arg(cx, nd, j, &sp.jur) != PV_OK)
            return PV_ERR;
        if (!j && server_param(ARG(nd, i), &sp) < 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, i));
    }
    if (sp.service)
        return service_line(cx, nd, &sp);
    pv_conf_addr_t addrs[16];
    int n;
    if (sp.resolve && strncmp(ARG(nd, 1), "unix:", 5) != 0)
        return resolve_line(cx, nd, &sp);
    if (strncmp(ARG(nd, 1), "unix:", 5) == 0) {
        const char *err = pv_conf_unix_addr(ARG(nd, 1) + 5, nd->args[1].len - 5, &addrs[0]);
        if (err)
            return pv_conf_error(cx, &nd->src, "%s in upstream \"%s\"", err, ARG(nd, 1));
        n = 1;
    } else {
        char *host;
        int port;
        if (pv_conf_split_hostport(cx->a, ARG(nd, 1), nd->args[1].len, &host, &port) != 0)
            return pv_conf_error(cx, &nd->src, "invalid port in upstream \"%s\"", ARG(nd, 1));
        if (!*host)
            return pv_conf_error(cx, &nd->src, "no host in upstream \"%s\"", ARG(nd, 1));
        n = pv_conf_resolve(cx, host, port ? port : 80, addrs, (int)PV_NELEM(addrs));
        if (n == 0)
            return pv_conf_error(cx, &nd->src, "host not found in upstream \"%s\"", ARG(nd, 1));
    }
    const char *name = pv_arena_strdup(cx->a, ARG(nd, 1));
    for (int i = 0; i < n; i++) {
        pv_upstream_server_t *s = pv_conf_push(cx->a, &u->servers, &u->nservers, sizeof(*s));
        s->addr = addrs[i].ss;
        s->addrlen = addrs[i].len;
        pv_conf_addr_text((struct sockaddr *)&s->addr, s->text, sizeof(s->text));
        fill_server(s, name, &sp, nd);
    }
    return PV_OK;
}

static int set_keepalive_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    if (cx->ups->keepalive != PV_UNSET)
        return DUP(cx, nd);
    int64_t n = pv_conf_parse_num(nd->args[1]);
    if (n <= 0 || n > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", ARG(nd, 1),
                             ARG(nd, 0));
    cx->ups->keepalive = (int)n;
    return PV_OK;
}

/* keepalive_grace TIME | off: how long idle connections beyond
 * `keepalive` may stay while the load still needs them; off is NGINX's
 * strict cap (upstream/upstream.c). */
static int set_keepalive_grace_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                  void *base)
{
    if (cx->ups->keepalive_grace != PV_UNSET)
        return DUP(cx, nd);
    int64_t t = strcmp(ARG(nd, 1), "off") == 0 ? 0 : pv_conf_parse_msec(nd->args[1]);
    if (t < 0 || (t == 0 && strcmp(ARG(nd, 1), "off") != 0))
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", ARG(nd, 1),
                             ARG(nd, 0));
    cx->ups->keepalive_grace = t;
    return PV_OK;
}

/* queue N [timeout=T] (NGINX Plus): requests for which no server can be
 * picked wait, up to N per worker, for at most T (60s); then 502. */
static int set_queue_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    if (u->queue)
        return DUP(cx, nd);
    int64_t n = pv_conf_parse_num(nd->args[1]);
    if (n <= 0 || n > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", ARG(nd, 1), ARG(nd, 0));
    u->queue = (int)n;
    u->queue_timeout = 60000;
    if (nd->nargs == 3) {
        const char *v = pv_conf_param(ARG(nd, 2), "timeout");
        int64_t t = v ? pv_conf_parse_msec((pv_str_t){v, strlen(v)}) : -1;
        if (t <= 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        u->queue_timeout = t;
    }
    return PV_OK;
}

/* least_conn, ip_hash, hash, random: the last one given wins, as in
 * NGINX (which warns "load balancing method redefined"). */
static int set_method_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    const char *d = ARG(nd, 0);
    u->hash_key = NULL;
    if (strcmp(d, "least_conn") == 0) {
        u->method = PV_BAL_LEAST_CONN;
    } else if (strcmp(d, "ip_hash") == 0) {
        u->method = PV_BAL_IP_HASH;
    } else if (strcmp(d, "hash") == 0) {
        if (nd->nargs == 3 && strcmp(ARG(nd, 2), "consistent") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        u->method = nd->nargs == 3 ? PV_BAL_CHASH : PV_BAL_HASH;
        u->hash_key = pv_arena_calloc(cx->a, sizeof(*u->hash_key));
        return pv_conf_compile(cx, nd, u->hash_key, ARG(nd, 1), nd->args[1].len);
    } else {
        u->method = PV_BAL_RANDOM;
        if (nd->nargs >= 2 && strcmp(ARG(nd, 1), "two") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 1));
        if (nd->nargs == 3 && strcmp(ARG(nd, 2), "least_conn") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        if (nd->nargs >= 2)
            u->method = PV_BAL_RANDOM2;
    }
    return PV_OK;
}

/* zone NAME [SIZE]: the servers' state is shared by every worker whether
 * or not a zone is named; the name is kept and the size checked. */
static int set_zone_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                       void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    if (u->zone)
        return DUP(cx, nd);
    if (nd->args[1].len == 0)
        return pv_conf_error(cx, &nd->src, "invalid zone name \"%s\"", ARG(nd, 1));
    if (nd->nargs == 3) {
        int64_t size = pv_conf_parse_size(nd->args[2]);
        if (size < 0)
            return pv_conf_error(cx, &nd->src, "invalid zone size \"%s\"", ARG(nd, 2));
        if (size < 8 * 4096)
            return pv_conf_error(cx, &nd->src, "zone \"%s\" is too small", ARG(nd, 1));
    }
    u->zone = pv_arena_strdup(cx->a, ARG(nd, 1));
    return PV_OK;
}

/* retry_budget PERCENT% [min=N]: retries (proxy_next_upstream) in
 * progress may be at most PERCENT of the attempts in progress on the
 * upstream, or N, whichever is more (Envoy's retry budget). */
static int set_retry_budget_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    if (u->retry_budget)
        return DUP(cx, nd);
    const pv_str_t a = nd->args[1];
    int64_t pct = a.len > 1 && a.p[a.len - 1] == '%' ? pv_conf_parse_num((pv_str_t){a.p, a.len - 1}) : -1;
    if (pct <= 0 || pct > 100)
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", ARG(nd, 1), ARG(nd, 0));
    u->retry_budget = (int)pct;
    u->retry_min = 3;
    if (nd->nargs == 3) {
        const char *v = pv_conf_param(ARG(nd, 2), "min");
        int64_t n = v ? pv_conf_parse_num((pv_str_t){v, strlen(v)}) : -1;
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        u->retry_min = (int)n;
    }
    return PV_OK;
}

/* One parameter of health_check into hc. */
static int health_param(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *a, pv_health_conf_t *hc)
{
    const char *v;
    int64_t n = -1;
    if ((v = pv_conf_param(a, "interval"))) {
        if ((n = pv_conf_parse_msec((pv_str_t){v, strlen(v)})) > 0)
            hc->interval = n;
    } else if ((v = pv_conf_param(a, "jitter"))) {
        if ((n = pv_conf_parse_msec((pv_str_t){v, strlen(v)})) >= 0)
            hc->jitter = n;
    } else if ((v = pv_conf_param(a, "fails")) || (v = pv_conf_param(a, "passes"))) {
        n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        n = n > 0 && n <= 0x7fffffff ? n : -1;
        if (n > 0)
            *(a[0] == 'f' ? &hc->fails : &hc->passes) = (int)n;
    } else if ((v = pv_conf_param(a, "port"))) {
        n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        n = n > 0 && n <= 65535 ? n : -1;
        if (n > 0)
            hc->port = (int)n;
    } else if ((v = pv_conf_param(a, "uri"))) {
        n = v[0] == '/' && !strpbrk(v, " \r\n") ? 1 : -1;
        if (n > 0)
            hc->uri = pv_arena_strdup(cx->a, v);
    } else if (strcmp(a, "mandatory") == 0) {
        n = hc->mandatory = 1;
    } else if (strcmp(a, "persistent") == 0 && hc->mandatory) {
        n = hc->persistent = 1;
    } else if ((v = pv_conf_param(a, "match"))) {
        n = *v ? 1 : -1;
        if (n > 0)
            hc->match_name = pv_arena_strdup(cx->a, v);
    }
    if (n < 0 || (n == 0 && a[0] == 'i'))
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    return PV_OK;
}

/* health_check [interval=T] [jitter=T] [fails=N] [passes=N] [uri=URI]
 * [port=N] [mandatory [persistent]], NGINX Plus's syntax, in a location. */
static int set_health_check_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    if (!cx->loc || cx->loc->health_check)
        return cx->loc ? DUP(cx, nd) : pv_conf_error(cx, &nd->src, "\"health_check\" directive is not allowed here");
    pv_health_conf_t *hc = pv_arena_calloc(cx->a, sizeof(*hc));
    *hc = (pv_health_conf_t){.interval = 5000, .fails = 1, .passes = 1, .uri = "/", .src = nd->src};
    for (int i = 1; i < nd->nargs; i++)
        if (health_param(cx, nd, ARG(nd, i), hc) != PV_OK)
            return PV_ERR;
    cx->loc->health_check = hc;
    return PV_OK;
}

int pv_conf_health_attach(pv_conf_ctx_t *cx, pv_location_t *loc)
{
    pv_health_conf_t *hc = loc->health_check;
    if (!loc->proxy_pass)
        return pv_conf_error(cx, &hc->src, "\"health_check\" needs \"proxy_pass\" in the same location");
    if (!loc->proxy_pass->upstream)
        return pv_conf_error(cx, &hc->src, "\"health_check\" needs a \"proxy_pass\" without variables");
    pv_upstream_conf_t *u = loc->proxy_pass->upstream;
    hc->tls = loc->proxy_pass->ssl ? loc->proxy_pass->tls : NULL;
    if (u->health && u->health != hc)
        return pv_conf_error(cx, &hc->src, "upstream \"%s\" already has a health check", u->name);
    u->health = hc;
    for (int i = 0; hc->match_name && !hc->match && i < cx->http->nmatches; i++)
        if (strcmp(cx->http->matches[i]->name, hc->match_name) == 0)
            hc->match = cx->http->matches[i];
    if (hc->match_name && !hc->match)
        return pv_conf_error(cx, &hc->src, "match \"%s\" not found", hc->match_name);
    return PV_OK;
}

/* outlier_detection [consecutive=N] [base_time=T] [max_time=T] (Envoy's
 * outlier ejection): N 5xx answers or failures in a row eject a server
 * for base_time, longer each time, at most max_time; never the last. */
static int set_outlier_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    if (u->od_consecutive)
        return DUP(cx, nd);
    u->od_consecutive = 5;
    u->od_base = 30000;
    u->od_max = 300000;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i), *v;
        int64_t n = -1;
        if ((v = pv_conf_param(a, "consecutive"))) {
            n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
            if (n > 0 && n <= 0xffff)
                u->od_consecutive = (int)n;
            else
                n = -1;
        } else if ((v = pv_conf_param(a, "base_time")) || (v = pv_conf_param(a, "max_time"))) {
            n = pv_conf_parse_msec((pv_str_t){v, strlen(v)});
            if (n > 0)
                *(a[0] == 'b' ? &u->od_base : &u->od_max) = n;
            else
                n = -1;
        }
        if (n < 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    }
    if (u->od_max < u->od_base)
        return pv_conf_error(cx, &nd->src, "\"max_time\" is less than \"base_time\"");
    return PV_OK;
}

/* portvakt_live; / portvakt_ready; in a location. */
static int set_probe_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    if (cx->loc->probe)
        return DUP(cx, nd);
    cx->loc->probe = strcmp(ARG(nd, 0), "portvakt_live") == 0 ? PV_PROBE_LIVE : PV_PROBE_READY;
    return PV_OK;
}

/* ---- after the block ---- */

/* Ring points an upstream may have (weights * 160): 32 MiB of ring. */
#define PV_CHASH_MAX_POINTS (1u << 22)

static int cmp_points(const void *a, const void *b)
{
    uint32_t x = ((const pv_chash_point_t *)a)->hash, y = ((const pv_chash_point_t *)b)->hash;
    return x < y ? -1 : x > y;
}

/* NGINX's ring (compatible with Cache::Memcached::Fast): for each server,
 * weight * 160 points, the first crc32(HOST "\0" PORT prev) with prev the
 * last point's hash (4 bytes, little-endian), 0 at first; HOST and PORT
 * split from the line's address as written. Sorted, duplicates dropped.
 * out has room for the total weight * 160; returns the count. */
int pv_conf_chash_ring(const pv_upstream_server_t *servers, int n, pv_chash_point_t *out)
{
    int np = 0;
    for (int i = 0; i < n; i++) {
        const char *name = servers[i].name ? servers[i].name : "";
        size_t len = strlen(name), hlen = len, j;
        const char *port = NULL;
        size_t plen = 0;
        for (j = 0; j < len; j++) {
            char c = name[len - j - 1];
            if (c == ':') {
                hlen = len - j - 1;
                port = name + len - j;
                plen = j;
                break;
            }
            if (c < '0' || c > '9')
                break;
        }
        uint32_t base = pv_crc32_update(PV_CRC32_INIT, name, hlen);
        base = pv_crc32_update(base, "", 1);
        base = pv_crc32_update(base, port ? port : "", plen);
        uint32_t prev = 0;
        for (int k = 0; k < servers[i].weight * 160; k++) {
            unsigned char b[4] = {(unsigned char)prev, (unsigned char)(prev >> 8), (unsigned char)(prev >> 16),
                                  (unsigned char)(prev >> 24)};
            uint32_t h = pv_crc32_final(pv_crc32_update(base, b, 4));
            out[np].hash = h;
            out[np].line = servers[i].line;
            np++;
            prev = h;
        }
    }
    if (np == 0)
        return 0;
    qsort(out, (size_t)np, sizeof(*out), cmp_points);
    int k = 0;
    for (int j = 1; j < np; j++)
        if (out[k].hash != out[j].hash)
            out[++k] = out[j];
    return k + 1;
}

/* The servers in NGINX's order for its peer lists: primaries, then the
 * backups, each in declaration order. */
static void order_servers(pv_upstream_conf_t *u)
{
    int k = 0;
    for (int i = 0; i < u->nservers; i++) {
        if (u->servers[i].backup)
            continue;
        pv_upstream_server_t s = u->servers[i];
        memmove(&u->servers[k + 1], &u->servers[k], (size_t)(i - k) * sizeof(s));
        u->servers[k++] = s;
    }
    u->nprimary = k;
}

int pv_conf_upstream_finish(pv_conf_ctx_t *cx, pv_upstream_conf_t *u)
{
    int hashing = u->method == PV_BAL_IP_HASH || u->method == PV_BAL_HASH || u->method == PV_BAL_CHASH;
    int random = u->method == PV_BAL_RANDOM || u->method == PV_BAL_RANDOM2;
    if (hashing || random) {
        /* no backups there: a service= line takes its first records only */
        int k = 0;
        for (int i = 0; i < u->nservers; i++)
            if (!u->servers[i].srv_tier)
                u->servers[k++] = u->servers[i];
        u->nservers = k;
    }
    for (int i = 0; i < u->nservers; i++) {
        const pv_upstream_server_t *s = &u->servers[i];
        const char *bad = s->backup && (hashing || random) ? "backup"
                          : s->slow_start && (hashing || random) ? "slow_start"
                                                                 : NULL;
        if (bad)
            return pv_conf_error(cx, &u->src, "balancing method does not support parameter \"%s\"", bad);
    }
    for (int i = 0; i < u->nservers; i++)
        if (u->servers[i].jur == PV_JUR_NONE)
            u->servers[i].jur = u->jur;
    order_servers(u);
    for (int i = 0; i < u->nservers; i++) {
        pv_upstream_server_t *s = &u->servers[i], *prev = i ? &u->servers[i - 1] : NULL;
        if (s->resolve_host)
            s->resolve_first = prev && prev->resolve_host && prev->name == s->name &&
                                       prev->srv_tier == s->srv_tier ? prev->resolve_first : i;
    }
    if (u->nprimary == 0)
        return pv_conf_error(cx, &u->src, "no servers in upstream \"%s\"", u->name);
    for (int i = 0; i < u->nservers; i++) {
        pv_upstream_server_t *s = &u->servers[i];
        s->line = i;
        for (int j = 0; j < i && s->name; j++)
            if (u->servers[j].name && strcmp(u->servers[j].name, s->name) == 0) {
                s->line = u->servers[j].line;
                break;
            }
    }
    if (u->method == PV_BAL_CHASH) {
        size_t total = 0;
        for (int i = 0; i < u->nprimary; i++)
            total += (size_t)u->servers[i].weight * 160;
        if (total > PV_CHASH_MAX_POINTS)
            return pv_conf_error(cx, &u->src, "too many consistent hash points in upstream \"%s\"", u->name);
        u->points = pv_arena_alloc(cx->a, total * sizeof(*u->points));
        u->npoints = pv_conf_chash_ring(u->servers, u->nprimary, u->points);
    }
    return PV_OK;
}

/* upstream blocks: servers, balancing, keepalive pools */
static const pv_conf_cmd_t upstream_cmds[] = {
    {"upstream", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_TAKE1, set_upstream_cb, PV_BASE_NONE, 0, NULL},
    {"server", PV_CTX_UPSTREAM, PV_ARGS_1MORE, set_upstream_server_cb, PV_BASE_NONE, 0, NULL},
    {"keepalive", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, set_keepalive_cb, PV_BASE_NONE, 0, NULL},
    {"keepalive_grace", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, set_keepalive_grace_cb, PV_BASE_NONE, 0, NULL},
    {"queue", PV_CTX_UPSTREAM, PV_ARGS_TAKE12, set_queue_cb, PV_BASE_NONE, 0, NULL},
    {"least_conn", PV_CTX_UPSTREAM, PV_ARGS_NOARGS, set_method_cb, PV_BASE_NONE, 0, NULL},
    {"ip_hash", PV_CTX_UPSTREAM, PV_ARGS_NOARGS, set_method_cb, PV_BASE_NONE, 0, NULL},
    {"hash", PV_CTX_UPSTREAM, PV_ARGS_TAKE12, set_method_cb, PV_BASE_NONE, 0, NULL},
    {"random", PV_CTX_UPSTREAM, PV_ARGS_NOARGS | PV_ARGS_TAKE12, set_method_cb, PV_BASE_NONE, 0, NULL},
    {"zone", PV_CTX_UPSTREAM, PV_ARGS_TAKE12, set_zone_cb, PV_BASE_NONE, 0, NULL},
    {"health_check", PV_CTX_LOCATION, PV_ARGS_NOARGS | PV_ARGS_1MORE, set_health_check_cb, PV_BASE_NONE, 0, NULL},
    {"portvakt_live", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_probe_cb, PV_BASE_NONE, 0, NULL},
    {"portvakt_ready", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_probe_cb, PV_BASE_NONE, 0, NULL},
    {"outlier_detection", PV_CTX_UPSTREAM, PV_ARGS_NOARGS | PV_ARGS_1MORE, set_outlier_cb, PV_BASE_NONE, 0, NULL},
    {"retry_budget", PV_CTX_UPSTREAM, PV_ARGS_TAKE12, set_retry_budget_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_upstream_module = {"upstream", upstream_cmds, PV_NELEM(upstream_cmds)};
