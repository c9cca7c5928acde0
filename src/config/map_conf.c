/* `map SOURCE $VAR { ... }` (ngx_http_map_module): a user variable whose
 * value is looked up from SOURCE when a request first uses it. The block's
 * lines are parameters (default, hostnames, volatile; include is expanded
 * by the parser) and KEY VALUE pairs: exact keys (case-insensitive),
 * hostname wildcards with `hostnames`, and regexes (~, ~*) in order. The
 * lookup itself is http/map.c. */
#include "conf_int.h"

#include <stdio.h>
#include <string.h>

static char *lower_dup(pv_arena_t *a, const char *s, size_t n)
{
    char *d = pv_arena_strndup(a, s, n);
    for (size_t i = 0; i < n; i++)
        d[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] | 0x20) : d[i];
    return d;
}

/* Two keys of one kind and text conflict, as NGINX's hash refuses them. */
static int conflicts(const pv_map_t *m, int kind, pv_str_t key)
{
    for (int i = 0; i < m->nentries; i++) {
        const pv_map_entry_t *e = &m->entries[i];
        if (e->kind == kind && kind != PV_SN_REGEX && e->key.len == key.len &&
            memcmp(e->key.p, key.p, key.len) == 0)
            return 1;
    }
    return 0;
}

int pv_conf_wildcard(pv_str_t low, pv_str_t *name, pv_str_t *exact)
{
    const char *p = low.p;
    size_t len = low.len;
    *name = low;
    *exact = (pv_str_t){NULL, 0};
    if (len > 2 && p[0] == '*' && p[1] == '.') {
        *name = (pv_str_t){p + 1, len - 1};
        return PV_SN_WILD_HEAD;
    }
    if (len > 1 && p[0] == '.') {
        *exact = (pv_str_t){p + 1, len - 1};
        return PV_SN_WILD_HEAD;
    }
    if (len > 2 && p[len - 1] == '*' && p[len - 2] == '.') {
        name->len = len - 1;
        return PV_SN_WILD_TAIL;
    }
    return PV_SN_EXACT;
}

/* Add a hostname key: "*.a.b" and ".a.b" match subdomains (the second
 * "a.b" too), "www.a.*" any ending. */
static int add_hostname(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_map_t *m, pv_str_t key,
                        pv_map_entry_t *tmpl)
{
    char *low = lower_dup(cx->a, key.p, key.len);
    pv_str_t name, exact;
    int kind = pv_conf_wildcard((pv_str_t){low, key.len}, &name, &exact);
    if (exact.len) {
        if (conflicts(m, PV_SN_EXACT, exact))
            return pv_conf_error(cx, &nd->src, "conflicting parameter \"%s\"", ARG(nd, 0));
        pv_map_entry_t *e = pv_conf_push(cx->a, &m->entries, &m->nentries, sizeof(*e));
        *e = *tmpl;
        e->kind = PV_SN_EXACT;
        e->key = exact;
    }
    if (memchr(name.p, '*', name.len))
        return pv_conf_error(cx, &nd->src, "invalid hostname or wildcard \"%s\"", ARG(nd, 0));
    if (conflicts(m, kind, name))
        return pv_conf_error(cx, &nd->src, "conflicting parameter \"%s\"", ARG(nd, 0));
    pv_map_entry_t *e = pv_conf_push(cx->a, &m->entries, &m->nentries, sizeof(*e));
    *e = *tmpl;
    e->kind = kind;
    e->key = name;
    return PV_OK;
}

/* One line of the block. */
static int map_line(pv_conf_ctx_t *cx, pv_map_t *m, const pv_conf_node_t *nd)
{
    const char *k = ARG(nd, 0);
    if (nd->block)
        return pv_conf_error(cx, &nd->src, "unexpected \"{\"");
    if (nd->nargs == 1 && strcmp(k, "hostnames") == 0) {
        m->hostnames = 1;
        return PV_OK;
    }
    if (nd->nargs == 1 && strcmp(k, "volatile") == 0) {
        m->is_volatile = 1;
        return PV_OK;
    }
    if (nd->nargs != 2)
        return pv_conf_error(cx, &nd->src, "invalid number of the map parameters");
    pv_map_entry_t e = {0};
    if (pv_conf_compile(cx, nd, &e.value, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    if (strcmp(k, "default") == 0) {
        if (m->default_value)
            return pv_conf_error(cx, &nd->src, "duplicate default map parameter");
        m->default_value = pv_arena_alloc(cx->a, sizeof(pv_cv_t));
        *m->default_value = e.value;
        return PV_OK;
    }
    pv_str_t key = nd->args[0];
    if (key.len && key.p[0] == '~') {
        int ci = key.len > 1 && key.p[1] == '*';
        e.kind = PV_SN_REGEX;
        e.re = pv_conf_regex(cx, &nd->src, key.p + 1 + ci, key.len - 1 - (size_t)ci, ci);
        if (!e.re)
            return PV_ERR;
        e.key = (pv_str_t){e.re->src, key.len - 1 - (size_t)ci};
        pv_map_entry_t *d = pv_conf_push(cx->a, &m->entries, &m->nentries, sizeof(*d));
        *d = e;
        return PV_OK;
    }
    if (key.len && key.p[0] == '\\') {
        key.p++;
        key.len--;
    }
    if (m->hostnames)
        return add_hostname(cx, nd, m, key, &e);
    e.kind = PV_SN_EXACT;
    e.key = (pv_str_t){lower_dup(cx->a, key.p, key.len), key.len};
    if (conflicts(m, PV_SN_EXACT, e.key))
        return pv_conf_error(cx, &nd->src, "conflicting parameter \"%s\"", k);
    pv_map_entry_t *d = pv_conf_push(cx->a, &m->entries, &m->nentries, sizeof(*d));
    *d = e;
    return PV_OK;
}

static int map_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    const char *name = ARG(nd, 2);
    size_t len = nd->args[2].len;
    if (name[0] != '$' || len < 2)
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", name);
    pv_str_t rest;
    char low[128];
    if (len - 1 >= sizeof(low))
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", name);
    for (size_t i = 1; i < len; i++)
        low[i - 1] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] | 0x20) : name[i];
    low[len - 1] = '\0';
    const pv_var_t *v = pv_var_find(low, len - 1, &rest);
    if (v && !(v->flags & PV_VAR_F_PREFIX))
        return pv_conf_error(cx, &nd->src, "the duplicate \"%s\" variable", low);
    pv_map_t *m = pv_arena_calloc(cx->a, sizeof(*m));
    m->src = nd->src;
    m->slot = pv_cv_declare_user(low, len - 1);
    if (m->slot < 0)
        return pv_conf_error(cx, &nd->src, "too many variables");
    if (pv_conf_compile(cx, nd, &m->source, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    /* hostnames and volatile apply to the whole block wherever they stand */
    for (const pv_conf_node_t *c = nd->child; c; c = c->next) {
        if (c->nargs == 1 && strcmp(ARG(c, 0), "hostnames") == 0)
            m->hostnames = 1;
    }
    /* exact and wildcard keys are looked up before regexes (NGINX's hash
     * first), each group in order */
    for (int pass = 0; pass < 2; pass++) {
        for (const pv_conf_node_t *c = nd->child; c; c = c->next) {
            int is_re = c->nargs == 2 && ARG(c, 0)[0] == '~';
            if ((pass == 0) == is_re)
                continue;
            if (map_line(cx, m, c) != PV_OK)
                return PV_ERR;
        }
    }
    *(pv_map_t **)pv_conf_push(cx->tmp, &cx->maps, &cx->nmaps, sizeof(m)) = m;
    return PV_OK;
}

/* A percentage with at most two decimals, in hundredths ("0.5" is 50,
 * as ngx_atofp(.., 2)); -1 when invalid. */
static int64_t percent(const char *s, size_t n)
{
    int64_t v = 0;
    int frac = -1;
    if (!n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (s[i] < '0' || s[i] > '9' || frac == 2 || v > 1000000)
            return -1;
        v = v * 10 + (s[i] - '0');
        if (frac >= 0)
            frac++;
    }
    for (int k = frac < 0 ? 0 : frac; k < 2; k++)
        v *= 10;
    return v;
}

/* `split_clients SOURCE $VAR { PERCENT% VALUE; ... * VALUE; }`: a map
 * whose parts split the 32-bit MurmurHash2 of SOURCE in proportion. */
static int split_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    const char *name = ARG(nd, 2);
    size_t len = nd->args[2].len;
    if (name[0] != '$' || len < 2 || len > 128)
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", name);
    pv_map_t *m = pv_arena_calloc(cx->a, sizeof(*m));
    m->src = nd->src;
    m->split = 1;
    char *low = lower_dup(cx->a, name + 1, len - 1);
    m->slot = pv_cv_declare_user(low, len - 1);
    if (m->slot < 0)
        return pv_conf_error(cx, &nd->src, "too many variables");
    if (pv_conf_compile(cx, nd, &m->source, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    uint64_t last = 0;
    int64_t sum = 0;
    for (const pv_conf_node_t *c = nd->child; c; c = c->next) {
        if (c->block || c->nargs != 2)
            return pv_conf_error(cx, &c->src, "invalid number of arguments in split_clients block");
        pv_map_entry_t *e = pv_conf_push(cx->a, &m->entries, &m->nentries, sizeof(*e));
        e->kind = PV_SN_EXACT;
        if (pv_conf_compile(cx, c, &e->value, ARG(c, 1), c->args[1].len) != PV_OK)
            return PV_ERR;
        pv_str_t k = c->args[0];
        int64_t pc = 0;
        if (!(k.len == 1 && k.p[0] == '*')) {
            pc = k.len > 1 && k.p[k.len - 1] == '%' ? percent(k.p, k.len - 1) : -1;
            if (pc <= 0)
                return pv_conf_error(cx, &c->src, "invalid percent value \"%s\"", k.p);
        }
        sum = pc ? sum + pc : 10000;
        if (sum > 10000)
            return pv_conf_error(cx, &c->src, "percent total is greater than 100%%");
        if (pc) {
            last += (uint64_t)pc * 0xffffffffull / 10000;
            e->bound = (uint32_t)last;
        }
    }
    *(pv_map_t **)pv_conf_push(cx->tmp, &cx->maps, &cx->nmaps, sizeof(m)) = m;
    return PV_OK;
}

static const pv_conf_cmd_t map_cmds[] = {
    {"map", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_TAKE2, map_cb, PV_BASE_NONE, 0, NULL},
    {"split_clients", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_TAKE2, split_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_map_module = {"map", map_cmds, PV_NELEM(map_cmds)};
