/* proxy_store, fastcgi_store and their *_store_access, with NGINX's
 * syntax, defaults and its rule against the module's cache: the two are
 * refused in one block, and one set in a block stops the other's
 * inheritance there. */
#include "conf_int.h"

#include <string.h>

#define FASTCGI(cmd) ((cmd)->name[0] == 'f')

static pv_store_conf_t *sconf(const pv_conf_cmd_t *cmd, void *base)
{
    pv_loc_conf_t *lc = base;
    return FASTCGI(cmd) ? &lc->fastcgi.store : &lc->proxy_store;
}

/* proxy_store on | off | STRING (a path with variables; "on": the
 * root-based path of the URI); fastcgi_store the same */
static int store_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_loc_conf_t *lc = base;
    pv_store_conf_t *sc = sconf(cmd, base);
    const pv_pcache_conf_t *pc = FASTCGI(cmd) ? &lc->fpc : &lc->pc;
    const char *a = ARG(nd, 1);
    if (sc->on != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(a, "off") == 0) {
        sc->on = 0;
        return PV_OK;
    }
    if (pc->cache_set && (pc->cache_name || pc->cache_cv))
        return pv_conf_error(cx, &nd->src, "\"%s\" directive is incompatible with \"%s\"", cmd->name,
                             FASTCGI(cmd) ? "fastcgi_cache" : "proxy_cache");
    sc->on = 1;
    if (strcmp(a, "on") == 0)
        return PV_OK;
    pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
    sc->cv = cv;
    return pv_conf_compile(cx, nd, cv, a, nd->args[1].len);
}

/* proxy_store_access user:rw|r group:rw|r all:rw|r (one to three): the
 * user's rw unless named (NGINX's ngx_conf_set_access_slot) */
static int access_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_store_conf_t *sc = sconf(cmd, base);
    if (sc->access != PV_UNSET)
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
    sc->access = access | user;
    return PV_OK;
}

#define ACCESS_ARGS (PV_ARGS_TAKE1 | PV_ARGS_TAKE2 | PV_ARGS_TAKE3)

static const pv_conf_cmd_t store_cmds[] = {
    {"proxy_store", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, store_cb, PV_BASE_LOC, 0, NULL},
    {"proxy_store_access", PV_CTX_ANY_LOC, ACCESS_ARGS, access_cb, PV_BASE_LOC, 0, NULL},
    {"fastcgi_store", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, store_cb, PV_BASE_LOC, 0, NULL},
    {"fastcgi_store_access", PV_CTX_ANY_LOC, ACCESS_ARGS, access_cb, PV_BASE_LOC, 0, NULL},
};

const pv_conf_module_t pv_conf_store_module = {"store", store_cmds, PV_NELEM(store_cmds)};

void pv_conf_store_init(pv_loc_conf_t *lc)
{
    lc->proxy_store = lc->fastcgi.store = (pv_store_conf_t){PV_UNSET, NULL, PV_UNSET};
}

/* Before the cache's merge: a block's own store turns the inherited cache
 * off, its own cache the inherited store, as NGINX's merge does. */
static void merge(pv_store_conf_t *c, const pv_store_conf_t *p, pv_pcache_conf_t *pc)
{
    if (c->on > 0) {
        pc->cache_set = 1;
        pc->cache_name = NULL;
        pc->cache_cv = NULL;
    } else if (pc->cache_set && (pc->cache_name || pc->cache_cv)) {
        c->on = 0;
    }
    if (c->on == PV_UNSET) {
        c->on = p ? p->on : 0;
        c->cv = p ? p->cv : NULL;
    }
    if (c->access == PV_UNSET)
        c->access = p ? p->access : 0600;
}

void pv_conf_store_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    merge(&c->proxy_store, p ? &p->proxy_store : NULL, &c->pc);
    merge(&c->fastcgi.store, p ? &p->fastcgi.store : NULL, &c->fpc);
    c->fastcgi.pipe.store = c->fastcgi.store.on > 0; /* after the fastcgi merge: its temp file is the store's */
}
