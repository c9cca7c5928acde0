/* `resolver ADDRESS... [valid=TIME] [ipv4=on|off] [ipv6=on|off]
 * [status_zone=NAME]` and `resolver_timeout TIME` (NGINX's core
 * directives), merged from http to server to location. The runtime side
 * is core/resolver.c. */
#include "conf_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>

/* `on`/`off` after a `name=` prefix: 1, 0, or -1. */
static int onoff(const char *v)
{
    return strcmp(v, "on") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 : -1;
}

/* One name server, "ADDR[:PORT]" or "[V6][:PORT]" (port 53 by default),
 * resolved now when it is a name: its addresses are added to rc. */
static int add_server(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_resolver_conf_t *rc, int i)
{
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, ARG(nd, i), nd->args[i].len, &host, &port) != 0)
        return pv_conf_error(cx, &nd->src, "invalid port in resolver \"%s\"", ARG(nd, i));
    if (!*host)
        return pv_conf_error(cx, &nd->src, "no host in resolver \"%s\"", ARG(nd, i));
    pv_conf_addr_t addrs[PV_RESOLVER_SERVERS];
    int n = pv_conf_resolve(cx, host, port ? port : 53, addrs, (int)PV_NELEM(addrs));
    if (n == 0)
        return pv_conf_error(cx, &nd->src, "host not found in resolver \"%s\"", ARG(nd, i));
    for (int k = 0; k < n; k++) {
        if (rc->nservers == PV_RESOLVER_SERVERS)
            return pv_conf_error(cx, &nd->src, "too many addresses in \"resolver\" (at most %d)",
                                 PV_RESOLVER_SERVERS);
        rc->servers[rc->nservers] = addrs[k].ss;
        rc->lens[rc->nservers++] = addrs[k].len;
    }
    return PV_OK;
}

static int set_resolver_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    pv_loc_conf_t *lc = base;
    if (lc->resolver)
        return DUP(cx, nd);
    pv_resolver_conf_t *rc = pv_arena_calloc(cx->a, sizeof(*rc));
    rc->valid = -1;
    rc->ipv4 = rc->ipv6 = 1;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        int v;
        if (strncmp(a, "valid=", 6) == 0) {
            rc->valid = pv_conf_parse_msec((pv_str_t){a + 6, nd->args[i].len - 6});
            if (rc->valid < 0)
                return pv_conf_error(cx, &nd->src, "invalid parameter: %s", a);
        } else if (strncmp(a, "ipv4=", 5) == 0 || strncmp(a, "ipv6=", 5) == 0) {
            if ((v = onoff(a + 5)) < 0)
                return pv_conf_error(cx, &nd->src, "invalid parameter: %s", a);
            *(a[3] == '4' ? &rc->ipv4 : &rc->ipv6) = (uint8_t)v;
        } else if (strncmp(a, "status_zone=", 12) == 0) {
            if (!a[12])
                return pv_conf_error(cx, &nd->src, "invalid parameter: %s", a);
            rc->zone = pv_arena_strdup(cx->a, a + 12);
        } else if (add_server(cx, nd, rc, i) != PV_OK) {
            return PV_ERR;
        }
    }
    if (!rc->ipv4 && !rc->ipv6)
        return pv_conf_error(cx, &nd->src, "\"ipv4\" and \"ipv6\" cannot both be \"off\"");
    if (rc->nservers == 0)
        return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"resolver\" directive");
    lc->resolver = rc;
    return PV_OK;
}

static int set_timeout_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    return pv_conf_msec(cx, nd, &((pv_loc_conf_t *)base)->resolver_timeout);
}

/* `resolver` and `resolver_timeout` in an upstream block (NGINX 1.27.3
 * and Plus): the block's `resolve` lines use them instead of http's. */
static int set_ups_resolver_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_loc_conf_t lc = {.resolver = cx->ups->resolver, .resolver_timeout = cx->ups->resolver_timeout};
    int rc = strcmp(cmd->name, "resolver") == 0 ? set_resolver_cb(cx, cmd, nd, &lc) : set_timeout_cb(cx, cmd, nd, &lc);
    cx->ups->resolver = lc.resolver;
    cx->ups->resolver_timeout = lc.resolver_timeout;
    return rc;
}

#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t resolver_cmds[] = {
    {"resolver", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_resolver_cb, NONE, NULL},
    {"resolver_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_timeout_cb, NONE, NULL},
    {"resolver", PV_CTX_UPSTREAM, PV_ARGS_1MORE, set_ups_resolver_cb, PV_BASE_NONE, 0, NULL},
    {"resolver_timeout", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, set_ups_resolver_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_resolver_module = {"resolver", resolver_cmds, PV_NELEM(resolver_cmds)};

void pv_conf_resolver_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    if (!c->resolver && p)
        c->resolver = p->resolver;
    if (c->resolver_timeout == PV_UNSET)
        c->resolver_timeout = p ? p->resolver_timeout : 30000;
}
