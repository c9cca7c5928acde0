/* `geo [$ADDRESS] $VAR { ... }` (ngx_http_geo_module): a user variable
 * whose value depends on the client address (or on $ADDRESS). The block
 * holds `default`, networks in CIDR form (IPv4 and IPv6, the longest
 * prefix wins) or, after `ranges`, IPv4 ranges FROM-TO; `delete` takes an
 * entry out again; `proxy` and `proxy_recursive` take the address from
 * X-Forwarded-For when the request comes from a named proxy; `volatile`;
 * `include` is expanded by the parser. The structures are core/geo.c,
 * the lookup http/map.c. Values are literal strings, as in NGINX. */
#include "conf_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"

static const pv_str_t *geo_value(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int i)
{
    pv_str_t *v = pv_arena_alloc(cx->a, sizeof(*v));
    v->p = pv_arena_strndup(cx->a, nd->args[i].p, nd->args[i].len);
    v->len = nd->args[i].len;
    return v;
}

static void warn_dup(const pv_conf_node_t *nd, const char *what, const char *net, const pv_str_t *val,
                     const pv_str_t *old)
{
    pv_log(PV_LOG_WARN, "duplicate %s \"%s\", value: \"%.*s\", old value: \"%.*s\" in %s:%d", what, net,
           (int)val->len, val->p, (int)old->len, old->p, nd->src.file, nd->src.line);
}

/* A network of a line, with NGINX's warning for bits past the mask. */
static int network(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int i, int *fam, uint8_t addr[16],
                   int *bits)
{
    int rc = pv_geo_cidr(nd->args[i].p, nd->args[i].len, fam, addr, bits);
    if (rc < 0)
        return pv_conf_error(cx, &nd->src, "invalid network \"%s\"", ARG(nd, i));
    if (rc == 1)
        pv_log(PV_LOG_WARN, "low address bits of %s are meaningless in %s:%d", ARG(nd, i), nd->src.file,
               nd->src.line);
    return PV_OK;
}

static int cidr_line(pv_conf_ctx_t *cx, pv_geo_conf_t *g, const pv_conf_node_t *nd)
{
    const char *k = ARG(nd, 0);
    const void *old = NULL;
    if (strcmp(k, "default") == 0) {
        static const uint8_t zero[16];
        const pv_str_t *v = geo_value(cx, nd, 1);
        if (pv_geo_tree_insert(&g->t4, zero, 0, v, 1, &old) == PV_GEO_BUSY)
            warn_dup(nd, "network", k, v, old);
        if (pv_geo_tree_insert(&g->t6, zero, 0, v, 1, &old) == PV_GEO_BUSY)
            warn_dup(nd, "network", k, v, old);
        return PV_OK;
    }
    int del = strcmp(k, "delete") == 0, fam, bits;
    uint8_t addr[16];
    if (network(cx, nd, del, &fam, addr, &bits) != PV_OK)
        return PV_ERR;
    pv_geo_tree_t *t = fam == 4 ? &g->t4 : &g->t6;
    if (del) {
        if (pv_geo_tree_delete(t, addr, bits) < 0)
            pv_log(PV_LOG_WARN, "no network \"%s\" to delete in %s:%d", ARG(nd, 1), nd->src.file,
                   nd->src.line);
        return PV_OK;
    }
    const pv_str_t *v = geo_value(cx, nd, 1);
    if (pv_geo_tree_insert(t, addr, bits, v, 1, &old) == PV_GEO_BUSY)
        warn_dup(nd, "network", k, v, old);
    return PV_OK;
}

static int range_line(pv_conf_ctx_t *cx, pv_geo_conf_t *g, const pv_conf_node_t *nd)
{
    const char *k = ARG(nd, 0);
    if (strcmp(k, "default") == 0) {
        const pv_str_t *v = geo_value(cx, nd, 1);
        if (g->range_default)
            pv_log(PV_LOG_WARN, "duplicate default geo range value: \"%s\", old value: \"%.*s\" in %s:%d",
                   ARG(nd, 1), (int)g->range_default->len, g->range_default->p, nd->src.file,
                   nd->src.line);
        g->range_default = v;
        return PV_OK;
    }
    if (!g->rs.blocks && pv_geo_ranges_init(&g->rs, cx->a) < 0)
        return pv_conf_error(cx, &nd->src, "out of memory");
    int del = strcmp(k, "delete") == 0;
    pv_str_t net = nd->args[del];
    const char *dash = memchr(net.p, '-', net.len);
    uint32_t start, end;
    if (!dash || pv_geo_inet4(net.p, (size_t)(dash - net.p), &start) < 0 ||
        pv_geo_inet4(dash + 1, net.len - (size_t)(dash + 1 - net.p), &end) < 0 || start > end ||
        start == 0xffffffffu || end == 0xffffffffu) /* ngx_inet_addr()'s error value */
        return pv_conf_error(cx, &nd->src, "invalid range \"%s\"", net.p);
    if (del) {
        if (pv_geo_ranges_delete(&g->rs, start, end))
            pv_log(PV_LOG_WARN, "no address range \"%s\" to delete in %s:%d", net.p, nd->src.file,
                   nd->src.line);
        return PV_OK;
    }
    const pv_str_t *v = geo_value(cx, nd, 1);
    const void *old = NULL;
    int dups = 0;
    uint32_t os = 0, oe = 0;
    if (pv_geo_ranges_add(&g->rs, start, end, v, &dups, &old, &os, &oe) < 0)
        return pv_conf_error(cx, &nd->src, "range \"%s\" overlaps \"%u.%u.%u.%u-%u.%u.%u.%u\"", net.p,
                             os >> 24, os >> 16 & 0xff, os >> 8 & 0xff, os & 0xff, oe >> 24,
                             oe >> 16 & 0xff, oe >> 8 & 0xff, oe & 0xff);
    if (dups)
        warn_dup(nd, "range", net.p, v, old);
    return PV_OK;
}

/* One line of the block. */
static int geo_line(pv_conf_ctx_t *cx, pv_map_t *m, pv_geo_conf_t *g, const pv_conf_node_t *nd,
                    int *cidr_seen)
{
    const char *k = ARG(nd, 0);
    if (nd->block)
        return pv_conf_error(cx, &nd->src, "unexpected \"{\"");
    if (nd->nargs == 1 && strcmp(k, "ranges") == 0) {
        if (*cidr_seen)
            return pv_conf_error(cx, &nd->src,
                                 "the \"ranges\" directive must be the first directive inside \"geo\" block");
        g->ranges = 1;
        return PV_OK;
    }
    if (nd->nargs == 1 && strcmp(k, "proxy_recursive") == 0) {
        g->proxy_recursive = 1;
        return PV_OK;
    }
    if (nd->nargs == 1 && strcmp(k, "volatile") == 0) {
        m->is_volatile = 1;
        return PV_OK;
    }
    if (nd->nargs != 2)
        return pv_conf_error(cx, &nd->src, "invalid number of the geo parameters");
    if (strcmp(k, "proxy") == 0) {
        int fam, bits;
        uint8_t addr[16];
        if (network(cx, nd, 1, &fam, addr, &bits) != PV_OK)
            return PV_ERR;
        pv_cidr_t *c = pv_conf_push(cx->a, &g->proxies, &g->nproxies, sizeof(*c));
        memcpy(c->addr, addr, 16);
        c->family = fam == 4 ? AF_INET : AF_INET6;
        c->bits = (uint8_t)bits;
        return PV_OK;
    }
    if (g->ranges)
        return range_line(cx, g, nd);
    *cidr_seen = 1;
    return cidr_line(cx, g, nd);
}

static int geo_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    int has_source = nd->nargs == 3;
    const char *name = ARG(nd, nd->nargs - 1);
    size_t len = nd->args[nd->nargs - 1].len;
    if (has_source && ARG(nd, 1)[0] != '$')
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", ARG(nd, 1));
    if (name[0] != '$' || len < 2 || len > 128)
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", name);
    char low[128];
    for (size_t i = 1; i < len; i++)
        low[i - 1] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] | 0x20) : name[i];
    low[len - 1] = '\0';
    pv_str_t rest;
    const pv_var_t *v = pv_var_find(low, len - 1, &rest);
    if (v && !(v->flags & PV_VAR_F_PREFIX))
        return pv_conf_error(cx, &nd->src, "the duplicate \"%s\" variable", low);
    pv_map_t *m = pv_arena_calloc(cx->a, sizeof(*m));
    pv_geo_conf_t *g = pv_arena_calloc(cx->a, sizeof(*g));
    m->src = nd->src;
    m->geo = g;
    g->has_source = has_source;
    m->slot = pv_cv_declare_user(low, len - 1);
    if (m->slot < 0)
        return pv_conf_error(cx, &nd->src, "too many variables");
    if (has_source && pv_conf_compile(cx, nd, &m->source, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    pv_geo_tree_init(&g->t4, cx->a);
    pv_geo_tree_init(&g->t6, cx->a);
    int cidr_seen = 0;
    for (const pv_conf_node_t *c = nd->child; c; c = c->next)
        if (geo_line(cx, m, g, c, &cidr_seen) != PV_OK)
            return PV_ERR;
    static const uint8_t zero[16];
    static const pv_str_t empty = {"", 0};
    pv_geo_tree_insert(&g->t4, zero, 0, &empty, 0, NULL);
    pv_geo_tree_insert(&g->t6, zero, 0, &empty, 0, NULL);
    if (!g->range_default)
        g->range_default = &empty;
    *(pv_map_t **)pv_conf_push(cx->tmp, &cx->maps, &cx->nmaps, sizeof(m)) = m;
    return PV_OK;
}

static const pv_conf_cmd_t geo_cmds[] = {
    {"geo", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_TAKE12, geo_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_geo_module = {"geo", geo_cmds, PV_NELEM(geo_cmds)};
