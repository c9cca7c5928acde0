/* proxy_store and proxy_store_access, with NGINX's syntax, defaults and
 * its rule against proxy_cache: the two are refused in one block, and
 * one set in a block stops the other's inheritance there. */
#include "conf_int.h"

#include <string.h>

/* proxy_store on | off | STRING (a path with variables; "on": the
 * root-based path of the URI) */
static int store_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    (void)cmd;
    pv_loc_conf_t *lc = base;
    const char *a = ARG(nd, 1);
    if (lc->proxy_store != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(a, "off") == 0) {
        lc->proxy_store = 0;
        return PV_OK;
    }
    if (lc->pc.cache_set && (lc->pc.cache_name || lc->pc.cache_cv))
        return pv_conf_error(cx, &nd->src, "\"proxy_store\" directive is incompatible with \"proxy_cache\"");
    lc->proxy_store = 1;
    if (strcmp(a, "on") == 0)
        return PV_OK;
    pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
    lc->proxy_store_cv = cv;
    return pv_conf_compile(cx, nd, cv, a, nd->args[1].len);
}

/* proxy_store_access user:rw|r group:rw|r all:rw|r (one to three): the
 * user's rw unless named (NGINX's ngx_conf_set_access_slot) */
static int access_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    (void)cmd;
    pv_loc_conf_t *lc = base;
    if (lc->proxy_store_access != PV_UNSET)
        return DUP(cx, nd);
    int access = 0, user = 0600;
    for (int i = 1; i < nd->nargs; i++) {
        const char *p = ARG(nd, i);
        int shift;
        if (strncmp(p, "user:", 5) == 0) {
            shift = 6;
            p += 5;
            user = 0;
        } else if (strncmp(p, "group:", 6) == 0) {
            shift = 3;
            p += 6;
        } else if (strncmp(p, "all:", 4) == 0) {
            shift = 0;
            p += 4;
        } else {
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, i));
        }
        if (strcmp(p, "rw") == 0)
            access |= 6 << shift;
        else if (strcmp(p, "r") == 0)
            access |= 4 << shift;
        else
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, i));
    }
    lc->proxy_store_access = access | user;
    return PV_OK;
}

static const pv_conf_cmd_t store_cmds[] = {
    {"proxy_store", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, store_cb, PV_BASE_LOC, 0, NULL},
    {"proxy_store_access", PV_CTX_ANY_LOC, PV_ARGS_TAKE1 | PV_ARGS_TAKE2 | PV_ARGS_TAKE3, access_cb, PV_BASE_LOC, 0, NULL},
};

const pv_conf_module_t pv_conf_store_module = {"store", store_cmds, PV_NELEM(store_cmds)};

void pv_conf_store_init(pv_loc_conf_t *lc)
{
    lc->proxy_store = PV_UNSET;
    lc->proxy_store_cv = NULL;
    lc->proxy_store_access = PV_UNSET;
}

/* Before proxy_cache's merge: a block's own proxy_store turns the
 * inherited cache off, its own proxy_cache the inherited store, as
 * NGINX's merge does. */
void pv_conf_store_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    if (c->proxy_store > 0) {
        c->pc.cache_set = 1;
        c->pc.cache_name = NULL;
        c->pc.cache_cv = NULL;
    } else if (c->pc.cache_set && (c->pc.cache_name || c->pc.cache_cv)) {
        c->proxy_store = 0;
    }
    if (c->proxy_store == PV_UNSET) {
        c->proxy_store = p ? p->proxy_store : 0;
        c->proxy_store_cv = p ? p->proxy_store_cv : NULL;
    }
    if (c->proxy_store_access == PV_UNSET)
        c->proxy_store_access = p ? p->proxy_store_access : 0600;
}
