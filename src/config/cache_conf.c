/* The response cache directives, as ngx_http_proxy_module and
 * ngx_http_file_cache have them (and ngx_http_fastcgi_module its
 * fastcgi_cache_* namesakes, on the same setters): proxy_cache_path at the http level, and
 * proxy_cache, proxy_cache_key, proxy_cache_valid, proxy_cache_methods,
 * proxy_cache_min_uses, proxy_cache_max_range_offset, proxy_cache_bypass, proxy_no_cache,
 * proxy_cache_use_stale, proxy_cache_lock (with _timeout and _age) and
 * proxy_cache_revalidate and proxy_cache_convert_head per location, with their merge. The zone behind
 * each path is made (or kept from the last snapshot) by http/fcache.c
 * through the hook the HTTP side registers; the runtime is
 * proxy/pcache.c. */
#include "conf_int.h"

#include "../core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"

static void *(*zone_acquire)(const pv_cache_path_t *cp);
static void (*zone_release)(void *impl);

void pv_conf_cache_hooks(void *(*acquire)(const pv_cache_path_t *cp), void (*release)(void *impl))
{
    zone_acquire = acquire;
    zone_release = release;
}

void pv_conf_pcache_init(pv_pcache_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->methods_set = 0;
    c->min_uses = PV_UNSET;
    c->max_range_offset = PV_UNSET;
    c->use_stale = PV_UNSET;
    c->lock = PV_UNSET;
    c->lock_timeout = PV_UNSET;
    c->lock_age = PV_UNSET;
    c->revalidate = PV_UNSET;
    c->convert_head = PV_UNSET;
    c->background_update = PV_UNSET;
}

/* A fastcgi_cache_* directive sets the location's FastCGI cache, a
 * proxy_cache_* one the proxy's: one set of setters for both. */
#define FASTCGI(cmd) ((cmd)->name[0] == 'f')

static pv_pcache_conf_t *pc(const pv_conf_cmd_t *cmd, void *base)
{
    return FASTCGI(cmd) ? &((pv_loc_conf_t *)base)->fpc : &((pv_loc_conf_t *)base)->pc;
}

/* levels=1:2 — one to three levels of one or two characters */
static int parse_levels(pv_cache_path_t *cp, const char *v)
{
    cp->nlevels = 0;
    while (*v) {
        if (cp->nlevels == 3 || (*v != '1' && *v != '2'))
            return -1;
        cp->levels[cp->nlevels++] = *v++ - '0';
        if (*v == ':' && v[1])
            v++;
        else if (*v)
            return -1;
    }
    return cp->nlevels ? 0 : -1;
}

static int path_param(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_cache_path_t *cp, const char *a)
{
    const char *eq = strchr(a, '=');
    size_t klen = eq ? (size_t)(eq - a) : strlen(a);
    const char *v = eq ? eq + 1 : "";
#define IS(k) (klen == sizeof(k) - 1 && strncmp(a, k, klen) == 0)
    if (IS("levels")) {
        if (parse_levels(cp, v) < 0)
            return pv_conf_error(cx, &nd->src, "invalid \"levels\" \"%s\"", a);
    } else if (IS("keys_zone")) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v)
            return pv_conf_error(cx, &nd->src, "invalid keys zone size \"%s\"", a);
        cp->name = pv_arena_strndup(cx->a, v, (size_t)(colon - v));
        cp->size = pv_conf_parse_size((pv_str_t){(char *)colon + 1, strlen(colon + 1)});
        if (cp->size <= 0)
            return pv_conf_error(cx, &nd->src, "invalid keys zone size \"%s\"", a);
        if (cp->size < 8192)
            return pv_conf_error(cx, &nd->src, "zone \"%s\" is too small", cp->name);
    } else if (IS("inactive")) {
        cp->inactive = pv_conf_parse_msec((pv_str_t){(char *)v, strlen(v)});
        if (cp->inactive < 0)
            return pv_conf_error(cx, &nd->src, "invalid inactive value \"%s\"", a);
    } else if (IS("max_size")) {
        cp->max_size = pv_conf_parse_size((pv_str_t){(char *)v, strlen(v)});
        if (cp->max_size < 0)
            return pv_conf_error(cx, &nd->src, "invalid max_size value \"%s\"", a);
    } else if (IS("min_free")) {
        cp->min_free = pv_conf_parse_size((pv_str_t){(char *)v, strlen(v)});
        if (cp->min_free < 0)
            return pv_conf_error(cx, &nd->src, "invalid min_free value \"%s\"", a);
    } else if (IS("use_temp_path")) {
        if (strcmp(v, "on") == 0)
            cp->use_temp_path = 1;
        else if (strcmp(v, "off") == 0)
            cp->use_temp_path = 0;
        else
            return pv_conf_error(cx, &nd->src, "invalid use_temp_path value \"%s\", it must be \"on\" or \"off\"",
                                 a);
    } else {
        /* loader_*, manager_* and purger* included: portvakt's loader
         * and manager have no such knobs, so -t refuses them */
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    }
#undef IS
    return PV_OK;
}

/* proxy_cache_path PATH [levels=] keys_zone=NAME:SIZE [inactive=]
 * [max_size=] [min_free=] [use_temp_path=] */
static int path_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_cache_path_t *cp = pv_arena_calloc(cx->a, sizeof(*cp));
    const char *p = ARG(nd, 1);
    if (p[0] == '/') {
        cp->path = pv_arena_strndup(cx->a, p, strlen(p));
    } else {
        size_t n = strlen(cx->conf->prefix) + strlen(p) + 2;
        char *full = pv_arena_alloc(cx->a, n);
        snprintf(full, n, "%s/%s", cx->conf->prefix, p);
        cp->path = full;
    }
    size_t pl = strlen(cp->path);
    while (pl > 1 && cp->path[pl - 1] == '/')
        ((char *)cp->path)[--pl] = '\0';
    cp->inactive = 600000;
    cp->use_temp_path = 1;
    cp->src = nd->src;
    cp->fastcgi = FASTCGI(cmd);
    for (int i = 2; i < nd->nargs; i++)
        if (path_param(cx, nd, cp, ARG(nd, i)) != PV_OK)
            return PV_ERR;
    if (!cp->name)
        return pv_conf_error(cx, &nd->src, "\"%s\" must have \"keys_zone\" parameter", ARG(nd, 0));
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->ncaches; i++) {
        if (strcmp(h->caches[i]->name, cp->name) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate zone \"%s\"", cp->name);
        if (strcmp(h->caches[i]->path, cp->path) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate \"%s\" path \"%s\"", ARG(nd, 0), ARG(nd, 1));
    }
    cp->index = h->ncaches;
    *(pv_cache_path_t **)pv_conf_push(cx->a, &h->caches, &h->ncaches, sizeof(cp)) = cp;
    return PV_OK;
}

/* proxy_cache ZONE | off */
static int cache_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    if (c->cache_set)
        return DUP(cx, nd);
    c->cache_set = 1;
    const char *a = ARG(nd, 1);
    if (strcmp(a, "off") == 0)
        return PV_OK;
    const pv_loc_conf_t *lc = base;
    if ((FASTCGI(cmd) ? lc->fastcgi.store.on : lc->proxy_store.on) > 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive is incompatible with \"%s\"", cmd->name,
                             FASTCGI(cmd) ? "fastcgi_store" : "proxy_store");
    c->cache_src = nd->src;
    if (strchr(a, '$')) {
        /* the zone is named per request (NGINX 1.7.9) */
        c->cache_cv = pv_arena_calloc(cx->a, sizeof(*c->cache_cv));
        return pv_conf_compile(cx, nd, c->cache_cv, a, nd->args[1].len);
    }
    c->cache_name = pv_arena_strndup(cx->a, a, strlen(a));
    return PV_OK;
}

static int key_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    if (c->key)
        return DUP(cx, nd);
    c->key = pv_arena_calloc(cx->a, sizeof(*c->key));
    c->key_auth = strcasestr(ARG(nd, 1), "$http_authorization") != NULL ||
                  strcasestr(ARG(nd, 1), "${http_authorization}") != NULL;
    return pv_conf_compile(cx, nd, c->key, ARG(nd, 1), nd->args[1].len);
}

/* proxy_cache_valid [CODE ... | any] TIME; without codes: 200 301 302 */
static int valid_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    const char *t = ARG(nd, nd->nargs - 1);
    int64_t ms = pv_conf_parse_msec(nd->args[nd->nargs - 1]);
    if (ms < 0)
        return pv_conf_error(cx, &nd->src, "invalid time value \"%s\"", t);
    if (nd->nargs == 2) {
        static const int dflt[3] = {200, 301, 302};
        for (int i = 0; i < 3; i++)
            *(pv_cache_valid_t *)pv_conf_push(cx->a, &c->valid, &c->nvalid, sizeof(pv_cache_valid_t)) =
                (pv_cache_valid_t){dflt[i], ms};
        return PV_OK;
    }
    for (int i = 1; i < nd->nargs - 1; i++) {
        int status = 0;
        if (strcmp(ARG(nd, i), "any") != 0) {
            int64_t n = pv_conf_parse_num(nd->args[i]);
            if (n < 100 || n > 599)
                return pv_conf_error(cx, &nd->src, "invalid status \"%s\"", ARG(nd, i));
            status = (int)n;
        }
        *(pv_cache_valid_t *)pv_conf_push(cx->a, &c->valid, &c->nvalid, sizeof(pv_cache_valid_t)) =
            (pv_cache_valid_t){status, ms};
    }
    return PV_OK;
}

/* proxy_cache_methods GET | HEAD | POST ... (GET and HEAD always) */
static int methods_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strcasecmp(a, "GET") != 0 && strcasecmp(a, "HEAD") != 0 && strcasecmp(a, "POST") != 0)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", a);
        c->methods |= pv_conf_method_bit(nd->args[i]);
    }
    c->methods_set = 1;
    return PV_OK;
}

static int min_uses_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    if (c->min_uses != PV_UNSET)
        return DUP(cx, nd);
    c->min_uses = pv_conf_parse_num(nd->args[1]);
    if (c->min_uses <= 0)
        return pv_conf_error(cx, &nd->src, "invalid number \"%s\"", ARG(nd, 1));
    return PV_OK;
}

/* proxy_cache_max_range_offset NUMBER (NGINX's offset: k, m, g) */
static int max_range_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    if (c->max_range_offset != PV_UNSET)
        return DUP(cx, nd);
    c->max_range_offset = pv_conf_parse_size(nd->args[1]);
    if (c->max_range_offset < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", nd->args[0].p);
    return PV_OK;
}

/* proxy_cache_bypass / proxy_no_cache / proxy_cache_purge STRING ...: lines add up */
static int values_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    const char *which = cmd->data ? cmd->data : "";
    for (int i = 1; i < nd->nargs; i++) {
        pv_cv_t *cv = which[0] == 'b'   ? pv_conf_push(cx->a, &c->bypass, &c->nbypass, sizeof(pv_cv_t))
                      : which[0] == 'p' ? pv_conf_push(cx->a, &c->purge, &c->npurge, sizeof(pv_cv_t))
                                        : pv_conf_push(cx->a, &c->no_cache, &c->nno_cache, sizeof(pv_cv_t));
        if (pv_conf_compile(cx, nd, cv, ARG(nd, i), nd->args[i].len) != PV_OK)
            return PV_ERR;
    }
    return PV_OK;
}

static const pv_conf_enum_t use_stale[] = {
    {"error", PV_NEXT_F_ERROR},           {"timeout", PV_NEXT_F_TIMEOUT},
    {"invalid_header", PV_NEXT_F_INVALID_HEADER}, {"updating", PV_STALE_UPDATING},
    {"http_500", PV_NEXT_F_HTTP_500},     {"http_502", PV_NEXT_F_HTTP_502},
    {"http_503", PV_NEXT_F_HTTP_503},     {"http_504", PV_NEXT_F_HTTP_504},
    {"http_403", PV_NEXT_F_HTTP_403},     {"http_404", PV_NEXT_F_HTTP_404},
    {"http_429", PV_NEXT_F_HTTP_429},     {"off", PV_NEXT_F_OFF},
    {NULL, 0}};

static int use_stale_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_pcache_conf_t *c = pc(cmd, base);
    if (c->use_stale != PV_UNSET)
        return DUP(cx, nd);
    for (int i = 1; FASTCGI(cmd) && i < nd->nargs; i++) /* not FastCGI's conditions, as NGINX */
        if (strcmp(ARG(nd, i), "http_502") == 0 || strcmp(ARG(nd, i), "http_504") == 0)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, i));
    return pv_conf_bitmask(cx, nd, use_stale, &c->use_stale);
}

static int flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)pc(cmd, base) + cmd->offset));
}

static int msec_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_msec(cx, nd, (int64_t *)((char *)pc(cmd, base) + cmd->offset));
}

#define PC(f) PV_BASE_LOC, offsetof(pv_pcache_conf_t, f)
#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t cache_cmds[] = {
    {"proxy_cache_path", PV_CTX_HTTP, PV_ARGS_2MORE, path_cb, PV_BASE_NONE, 0, NULL},
    {"proxy_cache", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, cache_cb, NONE, NULL},
    {"proxy_cache_key", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, key_cb, NONE, NULL},
    {"proxy_cache_valid", PV_CTX_ANY_LOC, PV_ARGS_1MORE, valid_cb, NONE, NULL},
    {"proxy_cache_methods", PV_CTX_ANY_LOC, PV_ARGS_1MORE, methods_cb, NONE, NULL},
    {"proxy_cache_min_uses", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, min_uses_cb, NONE, NULL},
    {"proxy_cache_max_range_offset", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, max_range_cb, NONE, NULL},
    {"proxy_cache_bypass", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, "bypass"},
    {"proxy_no_cache", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, NULL},
    {"proxy_cache_purge", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, "purge"},
    {"proxy_cache_background_update", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(background_update), NULL},
    {"proxy_cache_use_stale", PV_CTX_ANY_LOC, PV_ARGS_1MORE, use_stale_cb, NONE, NULL},
    {"proxy_cache_lock", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(lock), NULL},
    {"proxy_cache_lock_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, msec_cb, PC(lock_timeout), NULL},
    {"proxy_cache_lock_age", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, msec_cb, PC(lock_age), NULL},
    {"proxy_cache_revalidate", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(revalidate), NULL},
    {"proxy_cache_convert_head", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(convert_head), NULL},
    /* ngx_http_fastcgi_module's, on the same code */
    {"fastcgi_cache_path", PV_CTX_HTTP, PV_ARGS_2MORE, path_cb, PV_BASE_NONE, 0, NULL},
    {"fastcgi_cache", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, cache_cb, NONE, NULL},
    {"fastcgi_cache_key", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, key_cb, NONE, NULL},
    {"fastcgi_cache_valid", PV_CTX_ANY_LOC, PV_ARGS_1MORE, valid_cb, NONE, NULL},
    {"fastcgi_cache_methods", PV_CTX_ANY_LOC, PV_ARGS_1MORE, methods_cb, NONE, NULL},
    {"fastcgi_cache_min_uses", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, min_uses_cb, NONE, NULL},
    {"fastcgi_cache_max_range_offset", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, max_range_cb, NONE, NULL},
    {"fastcgi_cache_bypass", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, "bypass"},
    {"fastcgi_no_cache", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, NULL},
    {"fastcgi_cache_purge", PV_CTX_ANY_LOC, PV_ARGS_1MORE, values_cb, NONE, "purge"},
    {"fastcgi_cache_background_update", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(background_update), NULL},
    {"fastcgi_cache_use_stale", PV_CTX_ANY_LOC, PV_ARGS_1MORE, use_stale_cb, NONE, NULL},
    {"fastcgi_cache_lock", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(lock), NULL},
    {"fastcgi_cache_lock_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, msec_cb, PC(lock_timeout), NULL},
    {"fastcgi_cache_lock_age", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, msec_cb, PC(lock_age), NULL},
    {"fastcgi_cache_revalidate", PV_CTX_ANY_LOC, PV_ARGS_FLAG, flag_cb, PC(revalidate), NULL},
};

const pv_conf_module_t pv_conf_cache_module = {"cache", cache_cmds, PV_NELEM(cache_cmds)};

#define M(f, def) \
    if (c->f == PV_UNSET) \
    c->f = p ? p->f : (def)

void pv_conf_pcache_merge(pv_conf_ctx_t *cx, pv_pcache_conf_t *c, const pv_pcache_conf_t *p, const char *dflt)
{
    if (!c->cache_set && p) {
        c->cache_name = p->cache_name;
        c->cache_cv = p->cache_cv;
        c->cache_src = p->cache_src;
        c->cache_set = p->cache_set;
    }
    if (!c->key) {
        if (p) {
            c->key = p->key;
            c->key_auth = p->key_auth;
            c->key_default = p->key_default;
        } else if (dflt) { /* fastcgi_cache_key has none */
            c->key = pv_arena_calloc(cx->a, sizeof(*c->key));
            pv_cv_compile(c->key, cx->a, dflt, strlen(dflt), NULL, 0);
            c->key_default = 1;
        }
    }
    if (!c->valid && p) {
        c->valid = p->valid;
        c->nvalid = p->nvalid;
    }
    if (!c->methods_set) {
        c->methods = p ? p->methods : 0;
        c->methods_set = 1;
    }
    c->methods |= 3u; /* GET and HEAD */
    M(min_uses, 1);
    M(max_range_offset, INT64_MAX);
    if (!c->bypass && p) {
        c->bypass = p->bypass;
        c->nbypass = p->nbypass;
    }
    if (!c->no_cache && p) {
        c->no_cache = p->no_cache;
        c->nno_cache = p->nno_cache;
    }
    if (!c->purge && p) {
        c->purge = p->purge;
        c->npurge = p->npurge;
    }
    M(use_stale, 0);
    if (c->use_stale & PV_NEXT_F_OFF)
        c->use_stale = 0;
    M(lock, 0);
    M(lock_timeout, 5000);
    M(lock_age, 5000);
    M(revalidate, 0);
    M(convert_head, 1);
    M(background_update, 0);
}

static void zone_release_cb(void *impl)
{
    if (zone_release)
        zone_release(impl);
}

/* The zones made (or kept), then every location's proxy_cache resolved. */
int pv_conf_cache_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; h && i < h->ncaches; i++) {
        pv_cache_path_t *cp = h->caches[i];
        if (!zone_acquire)
            continue; /* a loader without the HTTP side (tests of the parser) */
        cp->impl = zone_acquire(cp);
        if (!cp->impl)
            return pv_conf_error(cx, &cp->src, "could not allocate zone \"%s\"", cp->name);
        pv_conf_add_cleanup(cx, zone_release_cb, cp->impl);
    }
    return PV_OK;
}

/* The zone a location's proxy_cache or fastcgi_cache names: one its
 * own module's *_cache_path made (NGINX's zones are tagged so). */
static int resolve(pv_conf_ctx_t *cx, pv_pcache_conf_t *c, int fastcgi)
{
    const char *what = fastcgi ? "fastcgi_cache" : "proxy_cache";
    if (!c->cache_name)
        return PV_OK;
    pv_http_conf_t *h = cx->http;
    for (int i = 0; h && i < h->ncaches; i++)
        if (strcmp(h->caches[i]->name, c->cache_name) == 0) {
            if (h->caches[i]->fastcgi != fastcgi)
                return pv_conf_error(cx, &c->cache_src,
                                     "the shared memory zone \"%s\" is already declared for a different use",
                                     c->cache_name);
            c->cache = h->caches[i];
        }
    if (!c->cache)
        return pv_conf_error(cx, &c->cache_src, "\"%s\" zone \"%s\" is unknown", what, c->cache_name);
    return PV_OK;
}

int pv_conf_cache_resolve(pv_conf_ctx_t *cx, pv_location_t *loc)
{
    pv_pcache_conf_t *f = &loc->conf.fpc;
    if (resolve(cx, &loc->conf.pc, 0) != PV_OK || resolve(cx, f, 1) != PV_OK)
        return PV_ERR;
    static pv_conf_src_t warned; /* once per fastcgi_cache line, not per location inheriting it */
    if ((f->cache_name || f->cache_cv) && !f->key &&
        (warned.file != f->cache_src.file || warned.line != f->cache_src.line)) {
        /* as NGINX: a warning, and every request has the empty key */
        pv_log(PV_LOG_WARN, "no \"fastcgi_cache_key\" for \"fastcgi_cache\" in %s:%d", f->cache_src.file,
               f->cache_src.line);
        warned = f->cache_src;
    }
    return PV_OK;
}
