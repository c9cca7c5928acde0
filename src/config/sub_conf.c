/* The sub_filter directives (ngx_http_sub_filter_module): sub_filter,
 * sub_filter_types, sub_filter_once, sub_filter_last_modified, and their
 * merge from http to server to location. A level without strings of its
 * own takes its parent's (and their tables) whole, as NGINX does. The
 * filter that uses them is http/subfilter.c. */
#include "conf_int.h"

#include <string.h>

#include "../core/submatch.h"

static pv_sub_conf_t *sc(void *base)
{
    return &((pv_loc_conf_t *)base)->sub;
}

void pv_conf_sub_init(pv_sub_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->once = PV_UNSET;
    c->last_modified = PV_UNSET;
}

/* sub_filter STRING REPLACEMENT: the string is lowercased before it is
 * compiled, as NGINX lowercases the argument itself */
static int set_filter_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_sub_conf_t *c = sc(base);
    pv_str_t a = nd->args[1];
    if (a.len == 0)
        return pv_conf_error(cx, &nd->src, "empty search pattern");
    if (c->npairs == PV_SUB_MAX_PATTERNS)
        return pv_conf_error(cx, &nd->src, "number of search patterns exceeds %d", PV_SUB_MAX_PATTERNS);
    char *low = pv_arena_strndup(cx->a, a.p, a.len);
    for (size_t k = 0; k < a.len; k++)
        low[k] = (char)(low[k] >= 'A' && low[k] <= 'Z' ? low[k] | 0x20 : low[k]);
    pv_sub_pair_t *pr = pv_conf_push(cx->a, &c->pairs, &c->npairs, sizeof(*pr));
    if (pv_conf_compile(cx, nd, &pr->match, low, a.len) != PV_OK)
        return PV_ERR;
    if (!pr->match.is_const)
        c->dynamic = 1;
    return pv_conf_compile(cx, nd, &pr->value, ARG(nd, 2), nd->args[2].len);
}

static int set_types_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_mime_types(cx, nd, &sc(base)->types);
}

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)sc(base) + cmd->offset));
}

#define SC(f) PV_BASE_LOC, offsetof(pv_sub_conf_t, f)

static const pv_conf_cmd_t sub_cmds[] = {
    {"sub_filter", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_filter_cb, SC(pairs), NULL},
    {"sub_filter_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_types_cb, SC(types), NULL},
    {"sub_filter_once", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, SC(once), NULL},
    {"sub_filter_last_modified", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, SC(last_modified), NULL},
};

const pv_conf_module_t pv_conf_sub_module = {"sub", sub_cmds, PV_NELEM(sub_cmds)};

/* the tables of strings without variables, once per level that has them */
static void build_tables(pv_conf_ctx_t *cx, pv_sub_conf_t *c)
{
    int n = c->npairs;
    pv_sub_tables_t *t = pv_arena_calloc(cx->a, sizeof(*t));
    pv_str_t *in = pv_arena_alloc(cx->tmp, sizeof(*in) * (size_t)n);
    pv_str_t *pat = pv_arena_alloc(cx->a, sizeof(*pat) * (size_t)n);
    uint8_t *orig = pv_arena_alloc(cx->a, (size_t)n);
    for (int i = 0; i < n; i++)
        in[i] = c->pairs[i].match.parts[0].text;
    pv_sub_tables_build(t, in, n, pat, orig);
    c->tables = t;
}

void pv_conf_sub_merge(pv_conf_ctx_t *cx, pv_sub_conf_t *c, const pv_sub_conf_t *p)
{
    if (c->once == PV_UNSET)
        c->once = p ? p->once : 1;
    if (c->last_modified == PV_UNSET)
        c->last_modified = p ? p->last_modified : 0;
    if (!c->types)
        c->types = p ? p->types : &pv_conf_html_only;
    if (!c->pairs && p) {
        c->pairs = p->pairs;
        c->npairs = p->npairs;
        c->dynamic = p->dynamic;
        c->tables = p->tables;
    }
    if (c->pairs && !c->dynamic && !c->tables)
        build_tables(cx, c);
}
