/* The compression directives: ngx_http_gzip_module's (gzip, gzip_types,
 * gzip_proxied, gzip_vary, gzip_comp_level, gzip_min_length,
 * gzip_http_version, gzip_buffers), the core module's gzip_disable, the
 * gunzip module's (gunzip, gunzip_buffers), and
 * the brotli module's (brotli, brotli_types, brotli_comp_level,
 * brotli_min_length), with their merge from http to server to location.
 * The filter that uses them is http/compress.c. */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

static pv_zip_conf_t *zc(void *base)
{
    return &((pv_loc_conf_t *)base)->zip;
}

void pv_conf_zip_init(pv_zip_conf_t *z)
{
    memset(z, 0, sizeof(*z));
    z->gzip = PV_UNSET;
    z->gzip_proxied = PV_UNSET;
    z->gzip_vary = PV_UNSET;
    z->gzip_comp_level = PV_UNSET;
    z->gzip_min_length = PV_UNSET;
    z->gzip_http_version = PV_UNSET;
    z->gzip_disable_msie6 = PV_UNSET;
    z->gzip_bufs_num = PV_UNSET;
    z->gunzip = PV_UNSET;
    z->gzip_static = PV_UNSET;
    z->gunzip_bufs_num = PV_UNSET;
    z->brotli = PV_UNSET;
    z->brotli_comp_level = PV_UNSET;
    z->brotli_min_length = PV_UNSET;
}

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)zc(base) + cmd->offset);
    return pv_conf_flag(cx, nd, f);
}

static int set_level_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)zc(base) + cmd->offset);
    const int *bounds = cmd->data;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid number", ARG(nd, 0));
    if (v < bounds[0] || v > bounds[1])
        return pv_conf_error(cx, &nd->src, "value must be between %d and %d", bounds[0], bounds[1]);
    *f = (int)v;
    return PV_OK;
}

static int set_length_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = (int64_t *)((char *)zc(base) + cmd->offset);
    return pv_conf_size(cx, nd, f);
}

/* gzip_types, brotli_types, sub_filter_types: repeated directives at one
 * level add to the list; text/html is always in it, as NGINX's default
 * types are. */
int pv_conf_mime_types(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_mime_list_t **lp)
{
    if (!*lp) {
        *lp = pv_arena_calloc(cx->a, sizeof(**lp));
        *(pv_str_t *)pv_conf_push(cx->a, &(*lp)->types, &(*lp)->ntypes, sizeof(pv_str_t)) = PV_STR("text/html");
    }
    pv_mime_list_t *l = *lp;
    for (int i = 1; i < nd->nargs && !l->any; i++) {
        pv_str_t a = nd->args[i];
        if (a.len == 1 && a.p[0] == '*') {
            l->any = 1;
            break;
        }
        char *low = pv_arena_strndup(cx->a, a.p, a.len);
        for (size_t k = 0; k < a.len; k++)
            low[k] = (char)(low[k] >= 'A' && low[k] <= 'Z' ? low[k] + 32 : low[k]);
        int dup = 0;
        for (int k = 0; k < l->ntypes && !dup; k++)
            dup = l->types[k].len == a.len && memcmp(l->types[k].p, low, a.len) == 0;
        if (!dup)
            *(pv_str_t *)pv_conf_push(cx->a, &l->types, &l->ntypes, sizeof(pv_str_t)) = (pv_str_t){low, a.len};
    }
    return PV_OK;
}

static int set_types_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_mime_types(cx, nd, (pv_mime_list_t **)((char *)zc(base) + cmd->offset));
}

static const pv_conf_enum_t proxied_names[] = {
    {"off", PV_GZ_PROXIED_OFF},
    {"expired", PV_GZ_PROXIED_EXPIRED},
    {"no-cache", PV_GZ_PROXIED_NO_CACHE},
    {"no-store", PV_GZ_PROXIED_NO_STORE},
    {"private", PV_GZ_PROXIED_PRIVATE},
    {"no_last_modified", PV_GZ_PROXIED_NO_LM},
    {"no_etag", PV_GZ_PROXIED_NO_ETAG},
    {"auth", PV_GZ_PROXIED_AUTH},
    {"any", PV_GZ_PROXIED_ANY},
    {NULL, 0},
};

/* Bits accumulate over repeated directives at one level, as in NGINX. */
static int set_proxied_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_zip_conf_t *z = zc(base);
    return pv_conf_bitmask(cx, nd, proxied_names, &z->gzip_proxied);
}

static int set_http_version_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_zip_conf_t *z = zc(base);
    if (z->gzip_http_version != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "1.0") == 0)
        z->gzip_http_version = 10;
    else if (strcmp(ARG(nd, 1), "1.1") == 0)
        z->gzip_http_version = 11;
    else
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, 1));
    return PV_OK;
}

/* gzip_disable: case-insensitive regexes on User-Agent, and "msie6"
 * (NGINX's own test of MSIE 4 to 6). Repeated directives add. */
static int set_disable_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_zip_conf_t *z = zc(base);
    if (!z->gzip_disable)
        z->gzip_disable = pv_arena_calloc(cx->a, sizeof(pv_regex_t *));
    for (int i = 1; i < nd->nargs; i++) {
        if (strcmp(ARG(nd, i), "msie6") == 0) {
            z->gzip_disable_msie6 = 1;
            continue;
        }
        if (strcmp(ARG(nd, i), "degradation") == 0)
            return pv_conf_error(cx, &nd->src, "\"degradation\" in \"%s\" is not supported (no degradation module)",
                                 ARG(nd, 0));
        pv_regex_t *rx = pv_conf_regex(cx, &nd->src, ARG(nd, i), nd->args[i].len, 1);
        if (!rx)
            return PV_ERR;
        *(pv_regex_t **)pv_conf_push(cx->a, &z->gzip_disable, &z->ngzip_disable, sizeof(rx)) = rx;
    }
    return PV_OK;
}

/* gzip_static on | off | always (ngx_http_gzip_static_module) */
static int set_static_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = &zc(base)->gzip_static;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    const char *a = ARG(nd, 1);
    if (strcmp(a, "off") == 0)
        *f = PV_GZ_STATIC_OFF;
    else if (strcmp(a, "on") == 0)
        *f = PV_GZ_STATIC_ON;
    else if (strcmp(a, "always") == 0)
        *f = PV_GZ_STATIC_ALWAYS;
    else
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", a);
    return PV_OK;
}

/* gzip_buffers / gunzip_buffers NUMBER SIZE: the offset is the number's;
 * the size follows it. */
static int set_buffers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *num = (int *)((char *)zc(base) + cmd->offset);
    int64_t *bsize = (int64_t *)((char *)zc(base) + (size_t)cmd->data);
    if (*num != PV_UNSET)
        return DUP(cx, nd);
    int64_t n = pv_conf_parse_num(nd->args[1]);
    int64_t size = pv_conf_parse_size(nd->args[2]);
    if (n <= 0 || n > 1024 || size <= 0 || size > 16 * 1024 * 1024)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    *num = (int)n;
    *bsize = size;
    return PV_OK;
}

static const int gzip_levels[2] = {1, 9};
static const int brotli_levels[2] = {0, 11};

#define ZC(f) PV_BASE_LOC, offsetof(pv_zip_conf_t, f)
#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t zip_cmds[] = {
    {"gzip", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_flag_cb, ZC(gzip), NULL},
    {"gzip_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_types_cb, ZC(gzip_types), NULL},
    {"gzip_proxied", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_proxied_cb, NONE, NULL},
    {"gzip_vary", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, ZC(gzip_vary), NULL},
    {"gzip_comp_level", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_level_cb, ZC(gzip_comp_level), gzip_levels},
    {"gzip_min_length", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_length_cb, ZC(gzip_min_length), NULL},
    {"gzip_http_version", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_http_version_cb, NONE, NULL},
    {"gzip_disable", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_disable_cb, NONE, NULL},
    {"gzip_buffers", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_buffers_cb, ZC(gzip_bufs_num),
     (const void *)offsetof(pv_zip_conf_t, gzip_bufs_size)},
    {"gzip_static", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_static_cb, NONE, NULL},
    {"gunzip", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, ZC(gunzip), NULL},
    {"gunzip_buffers", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_buffers_cb, ZC(gunzip_bufs_num),
     (const void *)offsetof(pv_zip_conf_t, gunzip_bufs_size)},
    {"brotli", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_flag_cb, ZC(brotli), NULL},
    {"brotli_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_types_cb, ZC(brotli_types), NULL},
    {"brotli_comp_level", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_level_cb, ZC(brotli_comp_level), brotli_levels},
    {"brotli_min_length", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_length_cb, ZC(brotli_min_length), NULL},
};

const pv_conf_module_t pv_conf_zip_module = {"zip", zip_cmds, PV_NELEM(zip_cmds)};

static const pv_str_t html_type = PV_STR("text/html");
pv_mime_list_t pv_conf_html_only = {(pv_str_t *)&html_type, 1, 0};

#define ZMERGE(f, def) \
    if (z->f == PV_UNSET) \
    z->f = p ? p->f : (def)

void pv_conf_zip_merge(pv_zip_conf_t *z, const pv_zip_conf_t *p)
{
    ZMERGE(gzip, 0);
    ZMERGE(gzip_proxied, PV_GZ_PROXIED_OFF);
    ZMERGE(gzip_vary, 0);
    ZMERGE(gzip_comp_level, 1);
    ZMERGE(gzip_min_length, 20);
    ZMERGE(gzip_http_version, 11);
    ZMERGE(gzip_disable_msie6, 0);
    if (z->gzip_bufs_num == PV_UNSET) {
        z->gzip_bufs_num = p ? p->gzip_bufs_num : 32;
        z->gzip_bufs_size = p ? p->gzip_bufs_size : 4096;
    }
    if (z->gunzip_bufs_num == PV_UNSET) {
        z->gunzip_bufs_num = p ? p->gunzip_bufs_num : 32;
        z->gunzip_bufs_size = p ? p->gunzip_bufs_size : 4096;
    }
    ZMERGE(gunzip, 0);
    ZMERGE(gzip_static, PV_GZ_STATIC_OFF);
    ZMERGE(brotli, 0);
    ZMERGE(brotli_comp_level, 6);
    ZMERGE(brotli_min_length, 20);
    if (!z->gzip_types)
        z->gzip_types = p ? p->gzip_types : &pv_conf_html_only;
    if (!z->brotli_types)
        z->brotli_types = p ? p->brotli_types : &pv_conf_html_only;
    if (!z->gzip_disable && p) {
        z->gzip_disable = p->gzip_disable;
        z->ngzip_disable = p->ngzip_disable;
    }
}
