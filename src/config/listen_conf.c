/* The `listen` directive (NGINX's ngx_http_core_listen): the address
 * (host:port, a port, or unix:PATH) and its parameters, the socket ones
 * (backlog=, rcvbuf=, sndbuf=, deferred, bind, ipv6only=, so_keepalive=,
 * fastopen=) included, and portvakt's notsent_lowat=. Messages are
 * NGINX's. */
#include "conf_int.h"

#include <string.h>

/* so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt], times in seconds */
static int keepalive(const char *v, pv_net_lopts_t *o)
{
    if (strcmp(v, "on") == 0) {
        o->keepalive = 1;
        return PV_OK;
    }
    if (strcmp(v, "off") == 0) {
        o->keepalive = -1;
        return PV_OK;
    }
    /* each part may be empty, and the colons after the last one absent */
    int *dst[3] = {&o->keepidle, &o->keepintvl, &o->keepcnt};
    const char *p = v, *end = v + strlen(v);
    for (int i = 0; i < 3 && p < end; i++) {
        const char *colon = i < 2 ? memchr(p, ':', (size_t)(end - p)) : NULL;
        size_t len = (size_t)((colon ? colon : end) - p);
        if (len) {
            pv_str_t s = {p, len};
            int64_t n = i < 2 ? pv_conf_parse_msec(s) : pv_conf_parse_num(s);
            if (n < 0 || (i < 2 && memmem(p, len, "ms", 2)))
                return PV_ERR;
            n = i < 2 ? n / 1000 : n;
            if (n > 0x7fffffff)
                return PV_ERR;
            *dst[i] = (int)n;
        }
        p += len + (colon != NULL);
    }
    if (!o->keepidle && !o->keepintvl && !o->keepcnt)
        return PV_ERR;
    o->keepalive = 1;
    return PV_OK;
}

int pv_conf_listen_option(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *p, pv_listen_t *l)
{
    pv_net_lopts_t *o = &l->sock;
    const char *v;
    if ((v = pv_conf_param(p, "backlog"))) {
        int64_t n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n <= 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid backlog \"%s\"", p);
        o->backlog = (int)n;
    } else if ((v = pv_conf_param(p, "rcvbuf")) || (v = pv_conf_param(p, "sndbuf"))) {
        int64_t n = pv_conf_parse_size((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid %.6s \"%s\"", p, p);
        *(p[0] == 'r' ? &o->rcvbuf : &o->sndbuf) = (int)n;
    } else if (strcmp(p, "deferred") == 0) {
        o->deferred = 1;
    } else if (strcmp(p, "bind") == 0) {
        /* every address is bound on its own anyway */
    } else if (strcmp(p, "ipv6only=on") == 0 || strcmp(p, "ipv6only=off") == 0) {
        o->ipv6only = p[10] == 'n';
    } else if ((v = pv_conf_param(p, "so_keepalive"))) {
        if (keepalive(v, o) != PV_OK)
            return pv_conf_error(cx, &nd->src, "invalid so_keepalive value: \"%s\"", v);
    } else if ((v = pv_conf_param(p, "notsent_lowat"))) {
        int64_t n = strcmp(v, "off") == 0 ? 0 : pv_conf_parse_size((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid notsent_lowat \"%s\"", p);
        o->notsent_lowat = n ? (int)n : -1;
    } else if ((v = pv_conf_param(p, "fastopen"))) {
        int64_t n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid fastopen \"%s\"", p);
        o->fastopen = (int)n;
    } else {
        return PV_AGAIN;
    }
    l->sock_set = 1;
    return PV_OK;
}

/* The address of a listen directive: a port alone ("*"), or host:port,
 * where the port may be a range "P1-P2" (each port of it, P1 <= P2);
 * 0 when valid, -2 for a range that ends before it starts, else -1. */
static int listen_addr(pv_conf_ctx_t *cx, const char *a, size_t len, char **host, int *port, int *last)
{
    size_t i = 0;
    while (a[i] >= '0' && a[i] <= '9')
        i++;
    if (i > 0 && a[i] == '\0') {
        *host = "*";
        int64_t n = pv_conf_parse_num((pv_str_t){a, len});
        *port = *last = n > 0 && n <= 65535 ? (int)n : -1;
        return *port > 0 ? 0 : -1;
    }
    /* a range: "host:P1-P2", the dash after the last ':' (past an IPv6 ']') */
    const char *colon = strrchr(a, ':');
    const char *dash = colon && !strchr(colon, ']') ? strchr(colon, '-') : NULL;
    *last = -1;
    if (dash) {
        int64_t hi = pv_conf_parse_num((pv_str_t){dash + 1, len - (size_t)(dash + 1 - a)});
        if (hi <= 0 || hi > 65535)
            return -1;
        *last = (int)hi;
        len = (size_t)(dash - a);
    }
    if (pv_conf_split_hostport(cx->a, a, len, host, port) != 0)
        return -1;
    if (*port == 0) {
        if (dash)
            return -1;
        *port = 80;
    }
    if (*last < 0)
        *last = *port;
    if (*port <= 0)
        return -1;
    return *port <= *last ? 0 : -2;
}

/* One listen entry for the addresses, with opts's settings. */
static void add_listen(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_conf_addr_t *a,
                       const pv_listen_t *opts)
{
    pv_server_t *s = cx->srv;
    pv_listen_t *l = pv_conf_push(cx->a, &s->listens, &s->nlistens, sizeof(*l));
    l->addr = a->ss;
    l->addrlen = a->len;
    l->sock = opts->sock;
    l->sock_set = opts->sock_set;
    l->reuseport = opts->reuseport;
    l->default_server = opts->default_server;
    l->ssl = opts->ssl;
    l->http2 = opts->http2;
    l->proxy_protocol = opts->proxy_protocol;
    pv_conf_addr_text((struct sockaddr *)&l->addr, l->text, sizeof(l->text));
    l->src = nd->src;
}

/* One listen entry per address host:port names. */
static int add_listens(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *host, int port,
                       const pv_listen_t *opts)
{
    pv_conf_addr_t addrs[8];
    int n = pv_conf_resolve(cx, host, port, addrs, (int)PV_NELEM(addrs));
    if (n == 0)
        return pv_conf_error(cx, &nd->src, "host not found in \"%s\" of the \"listen\" directive", ARG(nd, 1));
    for (int k = 0; k < n; k++)
        add_listen(cx, nd, &addrs[k], opts);
    return PV_OK;
}

int pv_conf_listen_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    const char *a = ARG(nd, 1);
    pv_listen_t opts = {.sock = {.backlog = PV_UNSET, .ipv6only = 1}};
    for (int i = 2; i < nd->nargs; i++) {
        const char *p = ARG(nd, i);
        int rc = pv_conf_listen_option(cx, nd, p, &opts);
        if (rc != PV_AGAIN) {
            if (rc != PV_OK)
                return rc;
        } else if (strcmp(p, "default_server") == 0 || strcmp(p, "default") == 0) {
            opts.default_server = 1;
        } else if (strcmp(p, "reuseport") == 0) {
            opts.reuseport = 1;
        } else if (strcmp(p, "ssl") == 0) {
            opts.ssl = 1;
        } else if (strcmp(p, "http2") == 0) {
            opts.http2 = 1;
        } else if (strcmp(p, "proxy_protocol") == 0) {
            opts.proxy_protocol = 1;
        } else if (strcmp(p, "quic") == 0) {
            return pv_conf_error(cx, &nd->src, "the \"%s\" parameter of the \"listen\" directive "
                                 "is not supported yet", p);
        } else {
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", p);
        }
    }
    if (strncmp(a, "unix:", 5) == 0) {
        /* the path as written, relative ones to the working directory, as NGINX binds it */
        pv_conf_addr_t un;
        const char *err = pv_conf_unix_addr(a + 5, nd->args[1].len - 5, &un);
        if (err)
            return pv_conf_error(cx, &nd->src, "%s in \"%s\" of the \"listen\" directive", err, a);
        add_listen(cx, nd, &un, &opts);
        return PV_OK;
    }
    char *host;
    int port, last;
    int bad = listen_addr(cx, a, nd->args[1].len, &host, &port, &last);
    if (bad)
        return pv_conf_error(cx, &nd->src, "invalid port%s in \"%s\" of the \"listen\" directive",
                             bad == -2 ? " range" : "", a);
    for (; port <= last; port++) {
        int rc = add_listens(cx, nd, host, port, &opts);
        if (rc != PV_OK)
            return rc;
    }
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return PV_OK;
}
