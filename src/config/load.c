/* pv_conf_load: parse, apply the directive table, then resolve what could
 * only be known once the whole file was read (proxy_pass targets, log
 * formats), merge http -> server -> location with NGINX's defaults, and
 * build the listen groups. The runtime never sees PV_UNSET. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "conf_int.h"
#include "residency.h"

#include <arpa/inet.h>
#include <sys/un.h>
#include <netdb.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/log.h"

/* ---- small shared helpers ---- */

int pv_conf_error(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(cx->err, cx->errlen, "%s in %s:%d", msg, src->file, src->line);
    return PV_ERR;
}

const char *pv_conf_full_path(pv_conf_ctx_t *cx, const char *path)
{
    if (path[0] == '/')
        return pv_arena_strdup(cx->a, path);
    return pv_arena_printf(cx->a, "%s/%s", cx->conf->prefix, path);
}

void *pv_conf_push(pv_arena_t *a, void *arrp, int *n, size_t elsize)
{
    char **arr = arrp;
    size_t cnt = (size_t)*n;
    if (cnt == 0 || (cnt >= 4 && (cnt & (cnt - 1)) == 0)) {
        size_t cap = cnt == 0 ? 4 : cnt * 2;
        char *na = pv_arena_calloc(a, cap * elsize);
        if (cnt)
            memcpy(na, *arr, cnt * elsize);
        *arr = na;
    }
    (*n)++;
    return *arr + cnt * elsize;
}

void pv_conf_loc_init(pv_loc_conf_t *lc)
{
    memset(lc, 0, sizeof(*lc));
    lc->keepalive_timeout = PV_UNSET;
    lc->keepalive_header = PV_UNSET;
    lc->keepalive_requests = PV_UNSET;
    lc->client_max_body_size = PV_UNSET;
    lc->client_body_timeout = PV_UNSET;
    lc->send_timeout = PV_UNSET;
    lc->lowat[0] = lc->lowat[1] = lc->lowat[2] = PV_UNSET;
    lc->http2_chunk_size = PV_UNSET;
    lc->proxy_http_version = PV_UNSET;
    lc->proxy_connect_timeout = PV_UNSET;
    lc->proxy_read_timeout = PV_UNSET;
    lc->proxy_send_timeout = PV_UNSET;
    lc->proxy_next_upstream = PV_UNSET;
    lc->proxy_next_upstream_tries = PV_UNSET;
    lc->proxy_next_upstream_timeout = PV_UNSET;
    lc->proxy_pass_request_body = PV_UNSET;
    lc->proxy_pass_request_headers = PV_UNSET;
    lc->proxy_intercept_errors = PV_UNSET;
    lc->recursive_error_pages = PV_UNSET;
    pv_conf_hdr_init(&lc->hdr);
    pv_conf_proxy_ssl_init(&lc->proxy_ssl);
    pv_conf_grpc_init(&lc->grpc);
    pv_conf_fastcgi_init(&lc->fastcgi);
    pv_conf_realip_init(&lc->realip);
    lc->resolver_timeout = PV_UNSET;
    pv_conf_trace_init(&lc->trace);
    lc->rewrite_log = PV_UNSET;
    lc->uninitialized_variable_warn = PV_UNSET;
    pv_conf_policy_init(&lc->policy);
    pv_conf_zip_init(&lc->zip);
    pv_conf_sub_init(&lc->sub);
    pv_conf_ssi_init(&lc->ssi);
    pv_conf_mirror_init(lc);
    pv_conf_pcache_init(&lc->pc);
    pv_conf_pcache_init(&lc->fpc);
    lc->fpc.convert_head = 0; /* NGINX's FastCGI cache asks with the client's method */
    pv_conf_static_init(&lc->st);
    pv_conf_buffer_init(lc);
    pv_conf_store_init(lc);
    pv_conf_residency_init(lc);
}

void pv_conf_add_cleanup(pv_conf_ctx_t *cx, void (*fn)(void *), void *arg)
{
    pv_conf_cleanup_t *k = pv_arena_calloc(cx->a, sizeof(*k));
    k->fn = fn;
    k->arg = arg;
    k->next = cx->conf->cleanups;
    cx->conf->cleanups = k;
}

void pv_conf_add_regex(pv_conf_ctx_t *cx, void *re)
{
    pv_conf_t *c = cx->conf;
    *(void **)pv_conf_push(cx->a, &c->regexes, &c->nregexes, sizeof(void *)) = re;
}

/* ---- values ---- */

const char *pv_conf_param(const char *arg, const char *key)
{
    size_t n = strlen(key);
    return strncmp(arg, key, n) == 0 && arg[n] == '=' ? arg + n + 1 : NULL;
}

int64_t pv_conf_parse_num(pv_str_t s)
{
    int64_t v = 0;
    if (s.len == 0)
        return -1;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

int64_t pv_conf_parse_size(pv_str_t s)
{
    int64_t scale = 1;
    if (s.len == 0)
        return -1;
    switch (s.p[s.len - 1]) {
    case 'k':
    case 'K':
        scale = 1024;
        break;
    case 'm':
    case 'M':
        scale = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        scale = 1024 * 1024 * 1024;
        break;
    }
    if (scale != 1)
        s.len--;
    int64_t v = pv_conf_parse_num(s);
    if (v < 0 || v > INT64_MAX / scale)
        return -1;
    return v * scale;
}

/* NGINX time syntax: units y M w d h m s ms in that order, each at most
 * once, optionally space-separated ("1h 30m"); a bare number is seconds. */
int64_t pv_conf_parse_msec(pv_str_t s)
{
    static const int64_t day = 86400000;
    const char *p = s.p, *end = s.p + s.len;
    int64_t total = 0;
    int step = 0, valid = 0;
    while (p < end) {
        int64_t v = 0;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > INT64_MAX / 100)
                return -1;
            v = v * 10 + (*p++ - '0');
        }
        if (p == d)
            return -1;
        valid = 1;
        int64_t scale;
        int order;
        if (p == end) {
            scale = 1000;
            order = 9;
        } else {
            switch (*p++) {
            case 'y': scale = 365 * day; order = 1; break;
            case 'M': scale = 30 * day; order = 2; break;
            case 'w': scale = 7 * day; order = 3; break;
            case 'd': scale = day; order = 4; break;
            case 'h': scale = 3600000; order = 5; break;
            case 'm':
                if (p < end && *p == 's') {
                    p++;
                    scale = 1;
                    order = 8;
                } else {
                    scale = 60000;
                    order = 6;
                }
                break;
            case 's': scale = 1000; order = 7; break;
            default: return -1;
            }
        }
        if (order <= step || v > (INT64_MAX / 4) / scale)
            return -1;
        step = order;
        total += v * scale;
        if (total > INT64_MAX / 4)
            return -1;
        while (p < end && *p == ' ')
            p++;
    }
    return valid ? total : -1;
}

/* ---- addresses ---- */

int pv_conf_split_hostport(pv_arena_t *a, const char *s, size_t len, char **host, int *port)
{
    const char *hs = s, *he, *ps = NULL;
    *port = 0;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return -1;
        hs = s + 1;
        he = rb;
        if (rb + 1 < s + len) {
            if (rb[1] != ':')
                return -1;
            ps = rb + 2;
        }
    } else {
        const char *c = memchr(s, ':', len);
        he = c ? c : s + len;
        if (c) {
            if (memchr(c + 1, ':', (size_t)(s + len - c - 1)))
                return -1;
            ps = c + 1;
        }
    }
    if (ps) {
        int64_t p = pv_conf_parse_num((pv_str_t){ps, (size_t)(s + len - ps)});
        if (p <= 0 || p > 65535)
            return -1;
        *port = (int)p;
    }
    *host = pv_arena_strndup(a, hs, (size_t)(he - hs));
    return 0;
}

void pv_conf_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_UNIX) {
        snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

const char *pv_conf_unix_addr(const char *path, size_t len, pv_conf_addr_t *out)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
    if (len == 0)
        return "no path in the unix domain socket";
    if (len >= sizeof(un->sun_path) || memchr(path, '\0', len))
        return "too long path in the unix domain socket";
    memset(&out->ss, 0, sizeof(out->ss));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    return NULL;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_UNIX)
        return strcmp(((const struct sockaddr_un *)a)->sun_path, ((const struct sockaddr_un *)b)->sun_path) == 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* Add an address unless already present; returns the new count. */
static int add_addr(pv_conf_addr_t *out, int n, int max, const struct sockaddr *sa, socklen_t len)
{
    if (n >= max)
        return n;
    for (int i = 0; i < n; i++)
        if (out[i].len == len && memcmp(&out[i].ss, sa, len) == 0)
            return n;
    memset(&out[n].ss, 0, sizeof(out[n].ss));
    memcpy(&out[n].ss, sa, len);
    out[n].len = len;
    return n + 1;
}

int pv_conf_resolve(pv_conf_ctx_t *cx, const char *host, int port, pv_conf_addr_t *out, int max)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    if (max <= 0 || !*host)
        return 0;
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &s4.sin_addr) == 1)
        return add_addr(out, 0, max, (struct sockaddr *)&s4, sizeof(s4));
    if (inet_pton(AF_INET6, host, &s6.sin6_addr) == 1)
        return add_addr(out, 0, max, (struct sockaddr *)&s6, sizeof(s6));
    if (cx->flags & PV_CONF_F_NO_DNS)
        return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    int n = 0;
    /* IPv4 first, as NGINX orders them. */
    for (int fam = 0; fam < 2; fam++) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            if (fam == 0 && ai->ai_family == AF_INET) {
                struct sockaddr_in a = *(struct sockaddr_in *)ai->ai_addr;
                a.sin_port = htons((uint16_t)port);
                n = add_addr(out, n, max, (struct sockaddr *)&a, sizeof(a));
            } else if (fam == 1 && ai->ai_family == AF_INET6) {
                struct sockaddr_in6 a = *(struct sockaddr_in6 *)ai->ai_addr;
                a.sin6_port = htons((uint16_t)port);
                n = add_addr(out, n, max, (struct sockaddr *)&a, sizeof(a));
            }
        }
    }
    freeaddrinfo(res);
    return n;
}

/* ---- resolution after the walk ---- */

static void upstream_defaults(pv_upstream_conf_t *u)
{
    if (u->keepalive == PV_UNSET)
        u->keepalive = 0;
    if (u->keepalive_requests == PV_UNSET)
        u->keepalive_requests = 1000;
    if (u->keepalive_timeout == PV_UNSET)
        u->keepalive_timeout = 60000;
    if (u->keepalive_time == PV_UNSET)
        u->keepalive_time = 3600000;
    if (u->keepalive_grace == PV_UNSET)
        u->keepalive_grace = 5000;
}

/* Point each proxy_pass at its upstream: a named block (even one declared
 * later) when the host names one, else an implicit "host:port" upstream
 * shared by every proxy_pass to the same place. */
static int resolve_passes(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < cx->npasses; i++) {
        pv_conf_pass_ref_t *r = &cx->passes[i];
        if (r->pp->cv)
            continue; /* variables: the target is found per request (target.c) */
        pv_upstream_conf_t *u = NULL;
        for (int k = 0; k < h->nupstreams && !u && !r->un.len; k++)
            if (!h->upstreams[k]->implicit && strcasecmp(h->upstreams[k]->name, r->host) == 0)
                u = h->upstreams[k];
        if (u && r->port)
            return pv_conf_error(cx, &r->src, "upstream \"%s\" may not have port %d", r->host,
                                 r->port);
        if (!u) {
            int port = r->port ? r->port : r->pp->ssl ? 443 : 80;
            const char *name = r->un.len ? r->host : strchr(r->host, ':')
                                   ? pv_arena_printf(cx->a, "[%s]:%d", r->host, port)
                                   : pv_arena_printf(cx->a, "%s:%d", r->host, port);
            for (int k = 0; k < h->nupstreams && !u; k++)
                if (h->upstreams[k]->implicit && strcasecmp(h->upstreams[k]->name, name) == 0)
                    u = h->upstreams[k];
            if (!u) {
                pv_conf_addr_t addrs[16];
                addrs[0] = r->un;
                int n = r->un.len ? 1 : pv_conf_resolve(cx, r->host, port, addrs, (int)PV_NELEM(addrs));
                if (n == 0)
                    return pv_conf_error(cx, &r->src, "host not found in upstream \"%s\"",
                                         r->host);
                u = pv_arena_calloc(cx->a, sizeof(*u));
                u->name = name;
                u->implicit = 1;
                u->src = r->src;
                u->keepalive = u->keepalive_requests = u->keepalive_timeout = PV_UNSET;
                u->keepalive_time = u->keepalive_grace = PV_UNSET;
                u->jur = PV_JUR_NONE;
                for (int k = 0; k < n; k++) {
                    pv_upstream_server_t *s = pv_conf_push(cx->a, &u->servers, &u->nservers,
                                                           sizeof(*s));
                    s->addr = addrs[k].ss;
                    s->addrlen = addrs[k].len;
                    pv_conf_addr_text((struct sockaddr *)&s->addr, s->text, sizeof(s->text));
                    s->name = name;
                    s->weight = 1;
                    s->max_fails = 1;
                    s->fail_timeout = 10000;
                    s->jur = PV_JUR_NONE;
                    s->src = r->src;
                }
                *(pv_upstream_conf_t **)pv_conf_push(cx->a, &h->upstreams, &h->nupstreams,
                                                     sizeof(u)) = u;
            }
        }
        r->pp->upstream = u;
    }
    for (int k = 0; k < h->nupstreams; k++) {
        pv_upstream_conf_t *u = h->upstreams[k];
        if (u->nresolve && !h->conf.resolver && !u->resolver)
            return pv_conf_error(cx, &u->src, "no resolver defined to resolve names in upstream \"%s\"",
                                 u->name);
        if (u->nservers == 0)
            return pv_conf_error(cx, &u->src, "no servers are inside upstream");
        upstream_defaults(u);
        if (pv_conf_upstream_finish(cx, u) != PV_OK)
            return PV_ERR;
        u->index = k;
    }
    return PV_OK;
}

static int resolve_log_formats(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < cx->nlogrefs; i++) {
        pv_conf_log_ref_t *r = &cx->logrefs[i];
        pv_log_format_t *f = NULL;
        for (int k = 0; k < h->nformats && !f; k++)
            if (strcmp(h->formats[k]->name, r->fmt) == 0)
                f = h->formats[k];
        if (!f)
            return pv_conf_error(cx, &r->src, "unknown log format \"%s\"", r->fmt);
        r->lc->access_logs[r->idx].format = f;
    }
    return PV_OK;
}

/* ---- merge ---- */

#define MERGE(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == PV_UNSET)                                                                      \
            c->f = p ? p->f : (def);                                                               \
    } while (0)

/* Fill a level's unset settings from its parent (already complete), or
 * from NGINX's defaults at http level (p == NULL). */
static void loc_merge(pv_conf_ctx_t *cx, pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    MERGE(keepalive_timeout, 75000);
    MERGE(keepalive_header, 0);
    MERGE(keepalive_requests, 1000);
    MERGE(client_max_body_size, 1024 * 1024);
    MERGE(client_body_timeout, 60000);
    MERGE(send_timeout, 60000);
    MERGE(http2_chunk_size, 8192);
    MERGE(proxy_http_version, 10);
    MERGE(proxy_connect_timeout, 60000);
    MERGE(proxy_read_timeout, 60000);
    MERGE(proxy_send_timeout, 60000);
    MERGE(proxy_next_upstream, PV_NEXT_F_ERROR | PV_NEXT_F_TIMEOUT);
    MERGE(proxy_next_upstream_tries, 0);
    MERGE(proxy_next_upstream_timeout, 0);
    if (!c->proxy_bind_set && p)
        c->proxy_bind = p->proxy_bind;
    MERGE(proxy_pass_request_body, 1);
    MERGE(proxy_pass_request_headers, 1);
    MERGE(proxy_intercept_errors, 0);
    MERGE(recursive_error_pages, 0);
    if (!c->error_pages && p) {
        c->error_pages = p->error_pages;
        c->nerror_pages = p->nerror_pages;
    }
    if (!c->proxy_method && p)
        c->proxy_method = p->proxy_method;
    if (!c->error_log && p)
        c->error_log = p->error_log;
    if (!c->proxy_set_body && p)
        c->proxy_set_body = p->proxy_set_body;
    pv_conf_hdr_merge(&c->hdr, p ? &p->hdr : NULL);
    pv_conf_proxy_ssl_merge(&c->proxy_ssl, p ? &p->proxy_ssl : NULL);
    pv_conf_grpc_merge(&c->grpc, p ? &p->grpc : NULL);
    pv_conf_fastcgi_merge(&c->fastcgi, p ? &p->fastcgi : NULL);
    pv_conf_zip_merge(&c->zip, p ? &p->zip : NULL);
    pv_conf_sub_merge(cx, &c->sub, p ? &p->sub : NULL);
    pv_conf_ssi_merge(&c->ssi, p ? &p->ssi : NULL);
    pv_conf_add_merge(&c->add, p ? &p->add : NULL);
    pv_conf_mirror_merge(c, p);
    pv_conf_store_merge(c, p);
    pv_conf_pcache_merge(cx, &c->pc, p ? &p->pc : NULL, "$scheme$proxy_host$request_uri");
    pv_conf_pcache_merge(cx, &c->fpc, p ? &p->fpc : NULL, NULL);
    pv_conf_realip_merge(&c->realip, p ? &p->realip : NULL);
    pv_conf_resolver_merge(c, p);
    pv_conf_trace_merge(&c->trace, p ? &p->trace : NULL);
    MERGE(rewrite_log, 0);
    MERGE(uninitialized_variable_warn, 1);
    if (c->proxy_next_upstream & PV_NEXT_F_OFF)
        c->proxy_next_upstream = PV_NEXT_F_OFF;
    /* Lists: a level with its own entries replaces the inherited list. */
    if (!c->set_headers && p) {
        c->set_headers = p->set_headers;
        c->nset_headers = p->nset_headers;
    }
    if (!c->log_cache && p)
        c->log_cache = p->log_cache;
    if (c->access_logs) {
        for (int i = 0; i < c->naccess_logs; i++) {
            if (c->access_logs[i].off) {
                c->access_logs = &c->access_logs[i];
                c->naccess_logs = 1;
                break;
            }
        }
    } else if (p) {
        c->access_logs = p->access_logs;
        c->naccess_logs = p->naccess_logs;
    } else {
        pv_access_log_t *l = pv_arena_calloc(cx->a, sizeof(*l));
        l->path = "/dev/stdout";
        l->format = cx->http->formats[0];
        c->access_logs = l;
        c->naccess_logs = 1;
    }
    pv_conf_policy_merge(&c->policy, p ? &p->policy : NULL);
    pv_conf_static_merge(cx, &c->st, p ? &p->st : NULL);
    pv_conf_buffer_merge(cx, c, p);
    pv_conf_residency_merge(c, p);
}

static void srv_merge(pv_server_t *s, const pv_http_conf_t *h)
{
    if (s->client_header_timeout == PV_UNSET)
        s->client_header_timeout = h->client_header_timeout;
    if (s->client_header_buffer_size == PV_UNSET)
        s->client_header_buffer_size = h->client_header_buffer_size;
    if (s->large_header_buffers_num == PV_UNSET) {
        s->large_header_buffers_num = h->large_header_buffers_num;
        s->large_header_buffers_size = h->large_header_buffers_size;
    }
    if (s->http2 == PV_UNSET)
        s->http2 = h->http2;
    if (s->http2_max_concurrent_streams == PV_UNSET)
        s->http2_max_concurrent_streams = h->http2_max_concurrent_streams;
    if (s->http2_body_preread_size == PV_UNSET)
        s->http2_body_preread_size = h->http2_body_preread_size;
}

/* ---- listen groups ---- */

/* Group servers by listen address. Options (backlog, reuseport) may be
 * given by one listen per address and default_server by one server, as
 * NGINX requires; a server listing one address twice is an error. */
static int build_listens(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    int *opts = NULL, nopts = 0;
    for (int i = 0; i < h->nservers; i++) {
        pv_server_t *s = h->servers[i];
        for (int j = 0; j < s->nlistens; j++) {
            pv_listen_t *l = &s->listens[j];
            int set = l->sock_set || l->reuseport;
            pv_listen_group_t *g = NULL;
            int gi = 0;
            for (; gi < h->nlistens; gi++) {
                if (same_addr(&h->listens[gi].listen.addr, &l->addr)) {
                    g = &h->listens[gi];
                    break;
                }
            }
            if (!g) {
                g = pv_conf_push(cx->a, &h->listens, &h->nlistens, sizeof(*g));
                *(int *)pv_conf_push(cx->tmp, &opts, &nopts, sizeof(int)) = set;
                g->listen = *l;
            } else {
                for (int k = 0; k < g->nservers; k++)
                    if (g->servers[k] == s)
                        return pv_conf_error(cx, &l->src, "a duplicate listen %s", l->text);
                if (set && opts) {
                    if (opts[gi])
                        return pv_conf_error(cx, &l->src, "duplicate listen options for %s",
                                             l->text);
                    opts[gi] = 1;
                    g->listen.sock = l->sock;
                    g->listen.reuseport = l->reuseport;
                    g->listen.src = l->src;
                }
            }
            /* an address speaks TLS when any of its listens says ssl */
            g->listen.ssl |= l->ssl;
            if (l->default_server) {
                if (g->default_srv)
                    return pv_conf_error(cx, &l->src, "a duplicate default server for %s",
                                         l->text);
                g->default_srv = s;
                g->listen.default_server = 1;
            }
            g->listen.http2 |= l->http2; /* any listen of the address may say it, as in NGINX */
            g->listen.proxy_protocol |= l->proxy_protocol;
            *(pv_server_t **)pv_conf_push(cx->a, &g->servers, &g->nservers, sizeof(s)) = s;
        }
    }
    for (int i = 0; i < h->nlistens; i++) {
        pv_listen_group_t *g = &h->listens[i];
        if (g->listen.sock.backlog == PV_UNSET)
            g->listen.sock.backlog = 511;
        const struct sockaddr *sa = (const struct sockaddr *)&g->listen.addr;
        const void *ip = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                   : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        if (sa->sa_family == AF_UNIX) {
            /* $server_addr "unix:/path", $server_port empty, as NGINX gives them */
            pv_conf_addr_text(sa, g->listen.host, sizeof(g->listen.host));
            g->listen.port = 0;
        } else {
            inet_ntop(sa->sa_family, ip, g->listen.host, sizeof(g->listen.host));
            g->listen.port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        }
        if (!g->default_srv)
            g->default_srv = g->servers[0];
        g->max_headers_lo = g->max_headers_hi = g->servers[0]->max_headers;
        for (int k = 1; k < g->nservers; k++) {
            g->max_headers_lo = PV_MIN(g->max_headers_lo, g->servers[k]->max_headers);
            g->max_headers_hi = PV_MAX(g->max_headers_hi, g->servers[k]->max_headers);
        }
    }
    for (int i = 0; i < h->nservers; i++)
        for (int j = 0; j < h->servers[i]->nlistens; j++)
            if (h->servers[i]->listens[j].sock.backlog == PV_UNSET)
                h->servers[i]->listens[j].sock.backlog = 511;
    return PV_OK;
}

static int finish_http(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    pv_server_t *hs = cx->http_srv;
    if (resolve_passes(cx) != PV_OK || resolve_log_formats(cx) != PV_OK ||
        pv_conf_policy_finish(cx) != PV_OK || pv_conf_rewrite_finish(cx) != PV_OK ||
        pv_conf_cache_finish(cx) != PV_OK)
        return PV_ERR;
    loc_merge(cx, &h->conf, NULL);
    h->client_header_timeout = hs->client_header_timeout != PV_UNSET ? hs->client_header_timeout
                                                                     : 60000;
    h->client_header_buffer_size =
        hs->client_header_buffer_size != PV_UNSET ? hs->client_header_buffer_size : 1024;
    h->large_header_buffers_num =
        hs->large_header_buffers_num != PV_UNSET ? hs->large_header_buffers_num : 4;
    h->large_header_buffers_size =
        hs->large_header_buffers_size != PV_UNSET ? hs->large_header_buffers_size : 8192;
    h->http2 = hs->http2 != PV_UNSET ? hs->http2 : 0;
    h->http2_max_concurrent_streams =
        hs->http2_max_concurrent_streams != PV_UNSET ? hs->http2_max_concurrent_streams : 128;
    h->http2_body_preread_size = hs->http2_body_preread_size != PV_UNSET ? hs->http2_body_preread_size : 65536;
    if (h->http2_recv_buffer_size == PV_UNSET || h->http2_recv_buffer_size == 0)
        h->http2_recv_buffer_size = 256 * 1024;
    for (int i = 0; i < h->nservers; i++) {
        pv_server_t *s = h->servers[i];
        loc_merge(cx, &s->conf, &h->conf);
        srv_merge(s, h);
        pv_conf_buffer_merge_srv(s, hs);
        if (pv_conf_buffer_check(cx, &s->conf, &s->src) != PV_OK ||
            pv_conf_charset_check(cx, &s->conf.hdr.cs, &s->src) != PV_OK)
            return PV_ERR;
        pv_conf_ssl_merge(&s->ssl, &hs->ssl);
        if (s->nnames == 0) {
            pv_server_name_t *sn = pv_conf_push(cx->a, &s->names, &s->nnames, sizeof(*sn));
            sn->kind = PV_SN_EXACT;
            sn->name = (pv_str_t){"", 0};
        }
        if (s->nlistens == 0) {
            pv_conf_addr_t any;
            pv_conf_resolve(cx, "*", 80, &any, 1);
            pv_listen_t *l = pv_conf_push(cx->a, &s->listens, &s->nlistens, sizeof(*l));
            l->addr = any.ss;
            l->addrlen = any.len;
            l->sock = (pv_net_lopts_t){.backlog = PV_UNSET, .ipv6only = 1};
            pv_conf_addr_text((struct sockaddr *)&l->addr, l->text, sizeof(l->text));
            l->src = s->src;
        }
        for (int j = 0; j < s->nlocations; j++) {
            pv_location_t *loc = s->locations[j];
            loc_merge(cx, &loc->conf, loc->outer ? &loc->outer->conf : &s->conf);
            if (pv_conf_policy_check(cx, loc) != PV_OK || pv_conf_hdr_check(cx, loc) != PV_OK ||
                pv_conf_cache_resolve(cx, loc) != PV_OK ||
                pv_conf_buffer_check(cx, &loc->conf, &loc->src) != PV_OK)
                return PV_ERR;
            if (loc->proxy_pass && loc->proxy_pass->ssl && pv_conf_proxy_ssl_build(cx, loc) != PV_OK)
                return PV_ERR;
            if (loc->health_check && pv_conf_health_attach(cx, loc) != PV_OK)
                return PV_ERR;
            if (loc->probe && loc->proxy_pass)
                return pv_conf_error(cx, &loc->src, "\"portvakt_%s\" and \"proxy_pass\" in one location",
                                     loc->probe == PV_PROBE_LIVE ? "live" : "ready");
            if (pv_conf_report_check(cx, loc) != PV_OK)
                return PV_ERR;
            loc->auto_redirect = loc->proxy_pass &&
                                 (loc->match == PV_LOC_PREFIX || loc->match == PV_LOC_PREFIX_STOP || loc->match == PV_LOC_EXACT) &&
                                 loc->name.len > 0 && loc->name.p[loc->name.len - 1] == '/';
        }
        /* a URI no location matches is served with the server's settings */
        pv_location_t *self = pv_arena_calloc(cx->a, sizeof(*self));
        self->match = PV_LOC_PREFIX;
        self->name = (pv_str_t){"", 0};
        self->src = s->src;
        self->conf = s->conf;
        if (pv_conf_policy_check(cx, self) != PV_OK || pv_conf_cache_resolve(cx, self) != PV_OK)
            return PV_ERR;
        s->self_loc = self;
    }
    /* an `if` block's configuration inherits its location's, and its
     * proxy_pass when it has none (NGINX's nameless location) */
    for (int i = 0; i < h->niflocs; i++) {
        pv_location_t *l = h->iflocs[i];
        loc_merge(cx, &l->conf, &l->parent->conf);
        if (!l->proxy_pass)
            l->proxy_pass = l->parent->proxy_pass;
        l->internal = l->parent->internal;
        if (pv_conf_policy_check(cx, l) != PV_OK || pv_conf_cache_resolve(cx, l) != PV_OK ||
            pv_conf_buffer_check(cx, &l->conf, &l->src) != PV_OK ||
            pv_conf_charset_check(cx, &l->conf.hdr.cs, &l->src) != PV_OK)
            return PV_ERR;
    }
    if (pv_conf_residency_finish(cx) != PV_OK)
        return PV_ERR;
    if (build_listens(cx) != PV_OK)
        return PV_ERR;
    pv_conf_metrics_finish(cx);
    return pv_conf_ssl_finish(cx);
}

int pv_conf_finish(pv_conf_ctx_t *cx)
{
    pv_conf_t *c = cx->conf;
    if (c->worker_processes_auto) {
        char why[256];
        c->worker_processes = pv_conf_auto_workers("", why, sizeof(why));
        c->worker_processes_why = pv_arena_strdup(cx->a, why);
    } else if (c->worker_processes == PV_UNSET) {
        c->worker_processes = 1;
    }
    if (c->worker_connections == PV_UNSET)
        c->worker_connections = 512;
    if (c->error_log_level == PV_UNSET)
        c->error_log_level = PV_LOG_ERR;
    if (c->daemon == PV_UNSET)
        c->daemon = 0; /* NGINX's default is on; portvakt's is the foreground */
    if (c->master_process == PV_UNSET)
        c->master_process = 1;
    if (!c->master_process) { /* NGINX then runs one process, whatever worker_processes says */
        c->worker_processes = 1;
        c->worker_processes_auto = 0;
    }
    if (c->worker_rlimit_nofile == PV_UNSET)
        c->worker_rlimit_nofile = 0;
    if (c->worker_shutdown_timeout == PV_UNSET)
        c->worker_shutdown_timeout = 0;
    return cx->http ? finish_http(cx) : PV_OK;
}

/* ---- entry points ---- */

static void conf_free(pv_conf_t *c)
{
    for (pv_conf_cleanup_t *k = c->cleanups; k; k = k->next)
        k->fn(k->arg);
    for (int i = 0; i < c->nregexes; i++)
        pcre2_code_free(c->regexes[i]);
    pv_conf_block_t *next;
    for (pv_conf_block_t *b = atomic_load_explicit(&c->blocks, memory_order_acquire); b; b = next) {
        next = b->next;
        free(b);
    }
    pv_arena_free(&c->arena);
    free(c);
}

/* An absolute copy of path: relative ones are taken from base, or from the
 * working directory when base is NULL; "./" and trailing slashes go. */
static char *abs_path(pv_arena_t *a, const char *base, const char *path)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    char cwd[4096];
    if (path[0] != '/' && !base)
        base = getcwd(cwd, sizeof(cwd)) ? cwd : ".";
    char *p = path[0] == '/' ? pv_arena_strdup(a, path)
                             : pv_arena_printf(a, "%s/%s", strcmp(base, "/") ? base : "", path);
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
        p[n - 1] = '\0';
    return p;
}

/* Messages about -g directives end "in command line", as NGINX's do:
 * the line number the parser added goes. */
static void cmdline_where(char *err)
{
    static const char at[] = " in " PV_CONF_CMDLINE ":";
    char *p = strstr(err, at);
    if (!p)
        return;
    char *q = p + sizeof(at) - 1;
    while (*q >= '0' && *q <= '9')
        q++;
    memmove(p + sizeof(at) - 2, q, strlen(q) + 1);
}

/* The -g directives, then the file (or text), as one list of nodes. */
static int parse_all(pv_parser_t *ps, const char *path, const char *text, size_t len,
                     const pv_conf_opts_t *o, pv_conf_node_t **first)
{
    pv_conf_node_t **tail = first;
    *first = NULL;
    if (o && o->params) {
        if (pv_conf_parse_text(ps, PV_CONF_CMDLINE, o->params, strlen(o->params), first) != PV_OK)
            return PV_ERR;
        while (*tail)
            tail = &(*tail)->next;
    }
    return text ? pv_conf_parse_text(ps, path, text, len, tail) : pv_conf_parse_file(ps, path, tail);
}

static pv_conf_t *load(const char *path, const char *text, size_t len, unsigned flags,
                       const pv_conf_opts_t *o, char *err, size_t errlen)
{
    char local[8];
    if (!err || !errlen) {
        err = local;
        errlen = sizeof(local);
    }
    err[0] = '\0';
    pv_conf_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pv_arena_init(&c->arena, 16384);
    atomic_init(&c->refs, 1);
    const char *prefix = o && o->prefix ? abs_path(&c->arena, NULL, o->prefix) : NULL;
    c->path = abs_path(&c->arena, prefix, path);
    const char *slash = strrchr(c->path, '/');
    const char *dir = slash == c->path ? "/" : pv_arena_strndup(&c->arena, c->path, (size_t)(slash - c->path));
    c->prefix = prefix ? prefix : dir;
    c->worker_processes = PV_UNSET;
    c->worker_connections = PV_UNSET;
    c->error_log_level = PV_UNSET;
    c->daemon = PV_UNSET;
    c->master_process = PV_UNSET;
    c->worker_rlimit_nofile = PV_UNSET;
    c->worker_shutdown_timeout = PV_UNSET;

    pv_arena_t tmp;
    pv_arena_init(&tmp, 65536);
    pv_parser_t ps = {.tmp = &tmp, .keep = &c->arena, .prefix = dir, .flags = flags,
                      .err = err, .errlen = errlen};
    if (o) {
        ps.on_file = o->on_file;
        ps.on_file_arg = o->arg;
    }
    pv_conf_node_t *first = NULL;
    int rc = parse_all(&ps, c->path, text, len, o, &first);
    if (rc == PV_OK) {
        pv_conf_ctx_t cx = {.conf = c, .a = &c->arena, .tmp = &tmp, .flags = flags,
                            .err = err, .errlen = errlen, .ctx = PV_CTX_MAIN};
        pv_cv_declared_reset();
        pv_conf_policy_declare(first);
        pv_conf_rewrite_declare(first);
        rc = pv_conf_walk(&cx, first, PV_CTX_MAIN);
        /* -e names the error log a config without error_log uses */
        if (rc == PV_OK && c->error_log_level == PV_UNSET && o && o->error_log &&
            strcmp(o->error_log, "stderr") != 0)
            c->error_log_path = pv_conf_full_path(&cx, o->error_log);
        if (rc == PV_OK)
            rc = pv_conf_finish(&cx);
        pv_cv_declared_reset();
    }
    pv_arena_free(&tmp);
    if (rc != PV_OK) {
        cmdline_where(err);
        conf_free(c);
        return NULL;
    }
    return c;
}

pv_conf_t *pv_conf_load(const char *path, char *err, size_t errlen)
{
    return load(path, NULL, 0, 0, NULL, err, errlen);
}

pv_conf_t *pv_conf_load_opts(const char *path, const pv_conf_opts_t *opts, char *err, size_t errlen)
{
    return load(path, NULL, 0, 0, opts, err, errlen);
}

pv_conf_t *pv_conf_load_text(const char *path, const char *text, size_t len, unsigned flags,
                             char *err, size_t errlen)
{
    return load(path, text ? text : "", len, flags, NULL, err, errlen);
}

void pv_conf_ref(pv_conf_t *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void pv_conf_block_push(pv_conf_t *c, pv_conf_block_t *b)
{
    b->next = atomic_load_explicit(&c->blocks, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&c->blocks, &b->next, b, memory_order_release,
                                                  memory_order_relaxed))
        ;
}

void pv_conf_unref(pv_conf_t *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        conf_free(c);
}
