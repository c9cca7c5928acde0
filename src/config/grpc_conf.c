/* The grpc_* directives (ngx_http_grpc_module): grpc_pass, which makes a
 * location's pass as proxy_pass does (so its upstream, implicit upstream,
 * health checks and residency follow the same code) but marks it for the
 * grpc module, and the module's own settings, merged from http to server
 * to location. The grpc_ssl_* rows are in proxy_ssl.c. */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

void pv_conf_grpc_init(pv_grpc_conf_t *g)
{
    memset(g, 0, sizeof(*g));
    g->connect_timeout = g->read_timeout = g->send_timeout = PV_UNSET;
    g->next_upstream = PV_UNSET;
    g->next_upstream_tries = g->next_upstream_timeout = PV_UNSET;
    g->intercept_errors = PV_UNSET;
    g->buffer_size = PV_UNSET;
    g->socket_keepalive = PV_UNSET;
    pv_conf_proxy_ssl_init(&g->ssl);
}

#define MERGE(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == PV_UNSET)                                                                      \
            c->f = p ? p->f : (def);                                                               \
    } while (0)

void pv_conf_grpc_merge(pv_grpc_conf_t *c, const pv_grpc_conf_t *p)
{
    MERGE(connect_timeout, 60000);
    MERGE(read_timeout, 60000);
    MERGE(send_timeout, 60000);
    MERGE(next_upstream, PV_NEXT_F_ERROR | PV_NEXT_F_TIMEOUT);
    MERGE(next_upstream_tries, 0);
    MERGE(next_upstream_timeout, 0);
    MERGE(intercept_errors, 0);
    MERGE(buffer_size, 4096);
    MERGE(socket_keepalive, 0);
    if (c->next_upstream & PV_NEXT_F_OFF)
        c->next_upstream = PV_NEXT_F_OFF;
    if (!c->set_headers && p) {
        c->set_headers = p->set_headers;
        c->nset_headers = p->nset_headers;
    }
    if (!c->nhide && p) { /* each list inherited on its own, as NGINX */
        c->hide = p->hide;
        c->nhide = p->nhide;
    }
    if (!c->npass && p) {
        c->pass = p->pass;
        c->npass = p->npass;
    }
    pv_conf_proxy_ssl_merge(&c->ssl, p ? &p->ssl : NULL);
}

/* grpc_pass grpc://ADDRESS | grpcs://ADDRESS | ADDRESS (an upstream name
 * or host:port): no URI part, as NGINX refuses one. */
static int set_pass_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_location_t *loc = cx->loc;
    const char *url = ARG(nd, 1);
    if (loc->proxy_pass)
        return DUP(cx, nd);
    if (strchr(url, '$'))
        return pv_conf_error(cx, &nd->src, "variables in \"grpc_pass\" are not supported");
    int tls = strncasecmp(url, "grpcs://", 8) == 0;
    const char *hp = tls ? url + 8 : strncasecmp(url, "grpc://", 7) == 0 ? url + 7 : url;
    if (strstr(hp, "://"))
        return pv_conf_error(cx, &nd->src, "invalid URL prefix in \"%s\"", url);
    if (strncasecmp(hp, "unix:", 5) == 0)
        return pv_conf_error(cx, &nd->src, "unix sockets in \"grpc_pass\" are not supported");
    size_t hlen = strcspn(hp, "/?");
    if (hp[hlen])
        return pv_conf_error(cx, &nd->src, "invalid host in upstream \"%s\"", hp);
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, hp, hlen, &host, &port) != 0)
        return pv_conf_error(cx, &nd->src, "invalid port in upstream \"%s\"", hp);
    if (!*host)
        return pv_conf_error(cx, &nd->src, "no host in upstream \"%s\"", hp);
    pv_proxy_pass_t *pp = pv_arena_calloc(cx->a, sizeof(*pp));
    pp->ssl = tls;
    pp->grpc = 1;
    /* :authority is the address as written, as NGINX sends it */
    pp->proxy_host = (pv_str_t){pv_arena_strndup(cx->a, hp, hlen), hlen};
    pv_conf_pass_target(cx, loc, pp, nd, url, host, port);
    return PV_OK;
}

static pv_grpc_conf_t *gconf(void *base)
{
    return &((pv_loc_conf_t *)base)->grpc;
}

static int set_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_grpc_conf_t *g = gconf(base);
    pv_set_header_t *h = pv_conf_push(cx->a, &g->set_headers, &g->nset_headers, sizeof(*h));
    h->name = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return pv_conf_compile(cx, nd, &h->value, ARG(nd, 2), nd->args[2].len);
}

static int set_list_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_grpc_conf_t *g = gconf(base);
    pv_str_t *n = cmd->data ? pv_conf_push(cx->a, &g->pass, &g->npass, sizeof(*n))
                            : pv_conf_push(cx->a, &g->hide, &g->nhide, sizeof(*n));
    *n = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return PV_OK;
}

static int set_msec_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_msec(cx, nd, (int64_t *)((char *)gconf(base) + cmd->offset));
}

static int set_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = (int64_t *)((char *)gconf(base) + cmd->offset);
    if (pv_conf_size(cx, nd, f) != PV_OK)
        return PV_ERR;
    if (*f < 1024 || *f > 1024 * 1024)
        return pv_conf_error(cx, &nd->src, "\"%s\" must be between 1k and 1m", ARG(nd, 0));
    return PV_OK;
}

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)gconf(base) + cmd->offset));
}

static int set_tries_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_grpc_conf_t *g = gconf(base);
    if (g->next_upstream_tries != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0)
        return pv_conf_error(cx, &nd->src, "invalid number \"%s\"", ARG(nd, 1));
    g->next_upstream_tries = v;
    return PV_OK;
}

static const pv_conf_enum_t next_upstream[] = {
    {"error", PV_NEXT_F_ERROR},         {"timeout", PV_NEXT_F_TIMEOUT},   {"invalid_header", PV_NEXT_F_INVALID_HEADER},
    {"non_idempotent", PV_NEXT_F_NON_IDEMPOTENT}, {"http_500", PV_NEXT_F_HTTP_500}, {"http_502", PV_NEXT_F_HTTP_502},
    {"http_503", PV_NEXT_F_HTTP_503},   {"http_504", PV_NEXT_F_HTTP_504}, {"http_403", PV_NEXT_F_HTTP_403},
    {"http_404", PV_NEXT_F_HTTP_404},   {"http_429", PV_NEXT_F_HTTP_429}, {"off", PV_NEXT_F_OFF},
    {NULL, 0}};

static int set_next_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_grpc_conf_t *g = gconf(base);
    if (g->next_upstream != PV_UNSET)
        return DUP(cx, nd);
    return pv_conf_bitmask(cx, nd, next_upstream, &g->next_upstream);
}

#define G(f) PV_BASE_LOC, offsetof(pv_grpc_conf_t, f)
#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t grpc_cmds[] = {
    {"grpc_pass", PV_CTX_LOCATION | PV_CTX_LIF, PV_ARGS_TAKE1, set_pass_cb, NONE, NULL},
    {"grpc_set_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_header_cb, NONE, NULL},
    {"grpc_hide_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_list_cb, NONE, NULL},
    {"grpc_pass_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_list_cb, NONE, "pass"},
    {"grpc_connect_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, G(connect_timeout), NULL},
    {"grpc_read_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, G(read_timeout), NULL},
    {"grpc_send_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, G(send_timeout), NULL},
    {"grpc_next_upstream", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_next_cb, NONE, NULL},
    {"grpc_next_upstream_tries", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_tries_cb, NONE, NULL},
    {"grpc_next_upstream_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, G(next_upstream_timeout), NULL},
    {"grpc_intercept_errors", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, G(intercept_errors), NULL},
    {"grpc_buffer_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_size_cb, G(buffer_size), NULL},
    {"grpc_socket_keepalive", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, G(socket_keepalive), NULL},
};

const pv_conf_module_t pv_conf_grpc_module = {"grpc", grpc_cmds, PV_NELEM(grpc_cmds)};
