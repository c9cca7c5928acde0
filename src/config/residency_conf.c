/* The residency directives: `jurisdiction` (an upstream block's, and
 * `jurisdiction=CC` on its server lines, read in upstream_conf.c),
 * `residency`, `residency_group`, `gateway_jurisdiction`,
 * `residency_targets`, `trusted_network`, `residency_require_tls` and
 * `residency_log_addr`; after the merge, the names resolved and the
 * residency check run (residency.c), so -t, a reload and the start all
 * refuse a config that lets a request leave its scope. */
#include "conf_int.h"
#include "residency.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"

static pv_res_http_t *res_http(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    if (!h->res) {
        h->res = pv_arena_calloc(cx->a, sizeof(*h->res));
        h->res->gateway_jur = PV_JUR_NONE;
        h->res->require_tls = PV_UNSET;
    }
    return h->res;
}

/* A code as a message names it. */
static int bad_code(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *a)
{
    return pv_conf_error(cx, &nd->src,
                         "invalid jurisdiction \"%s\" in \"%s\": not an ISO 3166-1 alpha-2 code", a,
                         ARG(nd, 0));
}

int pv_conf_jurisdiction_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *a, int *out)
{
    *out = pv_jur_code(a);
    if (*out == PV_JUR_NONE || a[0] < 'A' || a[0] > 'Z' || a[1] < 'A' || a[1] > 'Z')
        return bad_code(cx, nd, a);
    return PV_OK;
}

static int jurisdiction_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_upstream_conf_t *u = cx->ups;
    if (u->jur_src.line)
        return DUP(cx, nd);
    u->jur_src = nd->src;
    return pv_conf_jurisdiction_arg(cx, nd, ARG(nd, 1), &u->jur);
}

static int gateway_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_res_http_t *rh = res_http(cx);
    if (rh->gateway_src.line)
        return DUP(cx, nd);
    rh->gateway_src = nd->src;
    return pv_conf_jurisdiction_arg(cx, nd, ARG(nd, 1), &rh->gateway_jur);
}

static int residency_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    if (cx->lc->residency)
        return DUP(cx, nd);
    pv_residency_t *r = pv_arena_calloc(cx->a, sizeof(*r));
    r->src = nd->src;
    if (strcmp(ARG(nd, 1), "off") == 0) {
        if (nd->nargs != 2)
            return pv_conf_error(cx, &nd->src, "\"residency off\" takes no other argument");
        r->off = 1;
        r->text = "off";
    } else {
        r->names = pv_arena_alloc(cx->a, (size_t)(nd->nargs - 1) * sizeof(*r->names));
        size_t len = 0;
        for (int i = 1; i < nd->nargs; i++) {
            if (strcmp(ARG(nd, i), "off") == 0)
                return pv_conf_error(cx, &nd->src, "\"residency off\" takes no other argument");
            r->names[r->nnames++] = pv_arena_strdup(cx->a, ARG(nd, i));
            len += nd->args[i].len + 1;
        }
        char *t = pv_arena_alloc(cx->a, len), *p = t;
        for (int i = 1; i < nd->nargs; i++)
            p += sprintf(p, "%s%s", i > 1 ? " " : "", ARG(nd, i));
        r->text = t;
    }
    cx->lc->residency = r;
    res_http(cx)->used = 1;
    return PV_OK;
}

static int group_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_res_http_t *rh = res_http(cx);
    const char *name = ARG(nd, 1);
    if (pv_jur_code(name) != PV_JUR_NONE || strcmp(name, "off") == 0)
        return pv_conf_error(cx, &nd->src, "invalid residency_group name \"%s\": it is a code", name);
    for (int i = 0; i < rh->ngroups; i++)
        if (strcmp(rh->groups[i].name, name) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate residency_group \"%s\"", name);
    pv_res_group_t *g = pv_conf_push(cx->a, &rh->groups, &rh->ngroups, sizeof(*g));
    g->name = pv_arena_strdup(cx->a, name);
    g->src = nd->src;
    for (int i = 2; i < nd->nargs; i++) {
        int j;
        if (pv_conf_jurisdiction_arg(cx, nd, ARG(nd, i), &j) != PV_OK)
            return PV_ERR;
        pv_jurset_add(&g->set, j);
    }
    return PV_OK;
}

static int targets_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    if (cx->lc->res_targets)
        return DUP(cx, nd);
    pv_res_targets_t *t = pv_arena_calloc(cx->a, sizeof(*t));
    t->src = nd->src;
    t->n = nd->nargs - 1;
    t->names = pv_arena_alloc(cx->a, (size_t)t->n * sizeof(*t->names));
    t->ups = pv_arena_calloc(cx->a, (size_t)t->n * sizeof(*t->ups));
    for (int i = 0; i < t->n; i++)
        t->names[i] = pv_arena_strdup(cx->a, ARG(nd, i + 1));
    cx->lc->res_targets = t;
    return PV_OK;
}

static int trusted_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_res_http_t *rh = res_http(cx);
    for (int i = 1; i < nd->nargs; i++) {
        pv_cidr_t *c = pv_conf_push(cx->a, &rh->trusted, &rh->ntrusted, sizeof(*c));
        if (pv_conf_parse_cidr(ARG(nd, i), c) != PV_OK)
            return pv_conf_error(cx, &nd->src, "invalid network \"%s\" in \"trusted_network\"", ARG(nd, i));
    }
    return PV_OK;
}

static int require_tls_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, &res_http(cx)->require_tls);
}

static int log_addr_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = &cx->lc->residency_log_addr;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "anon") == 0)
        *f = PV_RES_LOG_ANON;
    else if (strcmp(ARG(nd, 1), "full") == 0)
        *f = PV_RES_LOG_FULL;
    else
        return pv_conf_error(cx, &nd->src,
                             "invalid value \"%s\" in \"residency_log_addr\", it must be \"anon\" or \"full\"",
                             ARG(nd, 1));
    return PV_OK;
}

static const pv_conf_cmd_t residency_cmds[] = {
    {"jurisdiction", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, jurisdiction_cb, PV_BASE_NONE, 0, NULL},
    {"gateway_jurisdiction", PV_CTX_HTTP, PV_ARGS_TAKE1, gateway_cb, PV_BASE_NONE, 0, NULL},
    {"residency", PV_CTX_ANY_LOC, PV_ARGS_1MORE, residency_cb, PV_BASE_NONE, 0, NULL},
    {"residency_group", PV_CTX_HTTP, PV_ARGS_2MORE, group_cb, PV_BASE_NONE, 0, NULL},
    {"residency_targets", PV_CTX_ANY_LOC, PV_ARGS_1MORE, targets_cb, PV_BASE_NONE, 0, NULL},
    {"trusted_network", PV_CTX_HTTP, PV_ARGS_1MORE, trusted_cb, PV_BASE_NONE, 0, NULL},
    {"residency_require_tls", PV_CTX_HTTP, PV_ARGS_FLAG, require_tls_cb, PV_BASE_NONE, 0, NULL},
    {"residency_log_addr", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, log_addr_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_residency_module = {"residency", residency_cmds, PV_NELEM(residency_cmds)};

void pv_conf_residency_init(pv_loc_conf_t *lc)
{
    lc->residency_log_addr = PV_UNSET;
}

void pv_conf_residency_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    if (!c->residency && p)
        c->residency = p->residency;
    if (!c->res_targets && p)
        c->res_targets = p->res_targets;
    if (c->residency_log_addr == PV_UNSET)
        c->residency_log_addr = p ? p->residency_log_addr : PV_RES_LOG_ANON;
}

/* ---- after the merge ---- */

/* Add name (a code, a residency_group, or a built-in group) to set. */
static int add_name(pv_conf_ctx_t *cx, const pv_residency_t *r, const char *name, pv_jurset_t *set)
{
    pv_res_http_t *rh = cx->http->res;
    for (int i = 0; i < rh->ngroups; i++) {
        if (strcmp(rh->groups[i].name, name) == 0) {
            for (size_t k = 0; k < sizeof(set->bits); k++)
                set->bits[k] |= rh->groups[i].set.bits[k];
            return PV_OK;
        }
    }
    const char *codes = pv_res_builtin_group(name);
    if (codes) {
        for (const char *p = codes; *p; p += p[2] ? 3 : 2) {
            char cc[3] = {p[0], p[1], 0};
            pv_jurset_add(set, pv_jur_code(cc));
        }
        return PV_OK;
    }
    int j = pv_jur_code(name);
    if (j == PV_JUR_NONE || name[0] < 'A' || name[0] > 'Z' || name[1] < 'A' || name[1] > 'Z')
        return pv_conf_error(cx, &r->src,
                             "unknown jurisdiction or group \"%s\" in \"residency\": not an ISO 3166-1 "
                             "alpha-2 code, a residency_group or a built-in group (EEA, EU)", name);
    pv_jurset_add(set, j);
    return PV_OK;
}

/* Resolve a residency once: its set, and the gateway's place in it. */
static int resolve_scope(pv_conf_ctx_t *cx, pv_residency_t *r)
{
    if (r->off || r->nnames <= 0)
        return PV_OK;
    pv_res_http_t *rh = cx->http->res;
    for (int i = 0; i < r->nnames; i++)
        if (add_name(cx, r, r->names[i], &r->allow) != PV_OK)
            return PV_ERR;
    r->nnames = -r->nnames; /* resolved */
    if (rh->gateway_jur == PV_JUR_NONE)
        return pv_conf_error(cx, &r->src,
                             "\"residency\" needs \"gateway_jurisdiction\": where the gateway itself is");
    if (!pv_jurset_has(&r->allow, rh->gateway_jur)) {
        char cc[3];
        return pv_conf_error(cx, &r->src,
                             "\"residency %s\" does not include the gateway's own jurisdiction %s "
                             "(gateway_jurisdiction in %s:%d): the request is already there",
                             r->text, pv_jur_text(rh->gateway_jur, cc), rh->gateway_src.file,
                             rh->gateway_src.line);
    }
    return PV_OK;
}

/* A location's settings: its residency resolved, its targets found, and
 * in a residency scope a proxy_pass with variables allowed only with
 * residency_targets. */
static int check_loc(pv_conf_ctx_t *cx, pv_location_t *l)
{
    pv_loc_conf_t *lc = &l->conf;
    if (lc->residency && lc->residency->nnames > 0 && resolve_scope(cx, lc->residency) != PV_OK)
        return PV_ERR;
    pv_res_targets_t *t = lc->res_targets;
    for (int i = 0; t && i < t->n; i++) {
        if (t->ups[i])
            continue;
        for (int k = 0; k < cx->http->nupstreams && !t->ups[i]; k++) {
            pv_upstream_conf_t *u = cx->http->upstreams[k];
            if (!u->implicit && strcasecmp(u->name, t->names[i]) == 0)
                t->ups[i] = u;
        }
        if (!t->ups[i])
            return pv_conf_error(cx, &t->src, "unknown upstream \"%s\" in \"residency_targets\"", t->names[i]);
    }
    const pv_proxy_pass_t *pp = l->proxy_pass;
    if (pp && pp->cv && !t && pv_residency_active(lc))
        return pv_conf_error(cx, &pp->src,
                             "\"proxy_pass\" with variables in a residency scope needs "
                             "\"residency_targets\": its target is known only at run time; the scope is "
                             "\"residency %s\" (%s:%d)",
                             lc->residency->text, lc->residency->src.file, lc->residency->src.line);
    return PV_OK;
}

/* The walk's verdict on one reach: the first forbidden one is the error;
 * an unencrypted hop outside trusted_network warns once per server and
 * location, or is an error with residency_require_tls on. */
typedef struct verdict_s {
    pv_conf_ctx_t *cx;
    const pv_upstream_server_t **warned;
    const pv_location_t **warned_at;
    int nwarned;
} verdict_t;

static int verdict(void *arg, const pv_res_reach_t *r)
{
    verdict_t *v = arg;
    pv_conf_ctx_t *cx = v->cx;
    if (!r->ups)
        return pv_conf_error(cx, &r->scope->src, "%s: %s", r->why, r->route);
    char cc[3];
    if (!r->allowed)
        return pv_conf_error(cx, &r->scope->src,
                             "\"residency %s\" does not allow server %s of upstream \"%s\" (%s in %s:%d): "
                             "%s; route: %s; the scope is",
                             r->scope->text, r->us->text, r->ups->name,
                             r->us->jur == PV_JUR_NONE ? "no jurisdiction declared"
                                                       : pv_jur_text(r->us->jur, cc),
                             r->us->src.file, r->us->src.line, r->why, r->route);
    if (!r->plain_untrusted)
        return 0;
    if (cx->http->res->require_tls == 1)
        return pv_conf_error(cx, &r->scope->src,
                             "residency_require_tls: server %s of upstream \"%s\" (%s:%d) is reached "
                             "without TLS outside trusted_network; route: %s; the scope is",
                             r->us->text, r->ups->name, r->us->src.file, r->us->src.line, r->route);
    for (int i = 0; i < v->nwarned; i++)
        if (v->warned[i] == r->us && v->warned_at[i] == r->to)
            return 0;
    pv_log(PV_LOG_WARN,
           "residency: server %s of upstream \"%s\" (%s:%d) is reached without TLS outside "
           "trusted_network by proxy_pass in %s:%d",
           r->us->text, r->ups->name, r->us->src.file, r->us->src.line, r->pp->src.file, r->pp->src.line);
    int n = v->nwarned;
    *(const pv_upstream_server_t **)pv_conf_push(cx->tmp, &v->warned, &n, sizeof(*v->warned)) = r->us;
    *(const pv_location_t **)pv_conf_push(cx->tmp, &v->warned_at, &v->nwarned, sizeof(*v->warned_at)) = r->to;
    return 0;
}

int pv_conf_residency_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    pv_res_http_t *rh = res_http(cx);
    if (rh->require_tls == PV_UNSET)
        rh->require_tls = 0;
    if (pv_residency_active(&h->conf) && resolve_scope(cx, h->conf.residency) != PV_OK)
        return PV_ERR;
    for (int i = 0; i < h->nservers; i++) {
        pv_server_t *s = h->servers[i];
        if (pv_residency_active(&s->conf) && resolve_scope(cx, s->conf.residency) != PV_OK)
            return PV_ERR;
        for (int j = 0; j < s->nlocations; j++)
            if (check_loc(cx, s->locations[j]) != PV_OK)
                return PV_ERR;
        if (check_loc(cx, s->self_loc) != PV_OK)
            return PV_ERR;
    }
    for (int i = 0; i < h->niflocs; i++)
        if (check_loc(cx, h->iflocs[i]) != PV_OK)
            return PV_ERR;
    if (!rh->used)
        return PV_OK;
    verdict_t v = {.cx = cx};
    return pv_residency_walk(cx->conf, cx->tmp, verdict, &v) ? PV_ERR : PV_OK;
}
