/* proxy_cookie_domain, proxy_cookie_path, proxy_cookie_flags: the lines
 * that rewrite the Set-Cookie fields of proxied responses (applied in the
 * proxy's cookie.c). Syntax, messages and inheritance are NGINX's: `off`
 * clears what the level would inherit, a level with lines of its own
 * inherits none, and nothing may follow `off` at the same level. */
#include "conf_int.h"

#include <string.h>

/* `off` (2 arguments with the name), or the duplicate checks shared by the
 * three directives. PV_OK with *done set when the line was `off`. */
static int off_or_dup(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *state, int *done)
{
    *done = 0;
    if (*state == PV_COOKIE_OFF)
        return DUP(cx, nd);
    if (nd->nargs != 2)
        return PV_OK;
    if (strcmp(ARG(nd, 1), "off") != 0)
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 1));
    if (*state == PV_COOKIE_LIST)
        return DUP(cx, nd);
    *state = PV_COOKIE_OFF;
    *done = 1;
    return PV_OK;
}

/* proxy_cookie_domain: "~RE" is always caseless; a text domain and its
 * replacement lose a leading '.', which the cookie's value keeps. */
static int set_domain_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_cookie_conf_t *c = &cx->lc->hdr.cookie;
    int done;
    if (off_or_dup(cx, nd, &c->domain_state, &done) != PV_OK || done)
        return done ? PV_OK : PV_ERR;
    c->domain_state = PV_COOKIE_LIST;
    pv_redirect_t *rd = pv_conf_push(cx->a, &c->domains, &c->ndomains, sizeof(*rd));
    pv_str_t pat = nd->args[1], rep = nd->args[2];
    if (pat.p[0] == '~') {
        rd->re = pv_conf_regex(cx, &nd->src, pat.p + 1, pat.len - 1, 1);
        if (!rd->re)
            return PV_ERR;
    } else {
        if (pat.p[0] == '.')
            pat = (pv_str_t){pat.p + 1, pat.len - 1};
        if (rep.len && rep.p[0] == '.')
            rep = (pv_str_t){rep.p + 1, rep.len - 1};
        if (pv_conf_compile(cx, nd, &rd->pattern, pat.p, pat.len) != PV_OK)
            return PV_ERR;
    }
    return pv_conf_compile(cx, nd, &rd->replacement, rep.p, rep.len);
}

/* proxy_cookie_path: a prefix, "~RE" or "~*RE" (caseless). */
static int set_path_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_cookie_conf_t *c = &cx->lc->hdr.cookie;
    int done;
    if (off_or_dup(cx, nd, &c->path_state, &done) != PV_OK || done)
        return done ? PV_OK : PV_ERR;
    c->path_state = PV_COOKIE_LIST;
    pv_redirect_t *rd = pv_conf_push(cx->a, &c->paths, &c->npaths, sizeof(*rd));
    pv_str_t pat = nd->args[1];
    if (pat.p[0] == '~') {
        int caseless = pat.len > 1 && pat.p[1] == '*';
        rd->re = pv_conf_regex(cx, &nd->src, pat.p + 1 + caseless, pat.len - 1 - (size_t)caseless, caseless);
        if (!rd->re)
            return PV_ERR;
    } else if (pv_conf_compile(cx, nd, &rd->pattern, pat.p, pat.len) != PV_OK) {
        return PV_ERR;
    }
    return pv_conf_compile(cx, nd, &rd->replacement, ARG(nd, 2), nd->args[2].len);
}

/* proxy_cookie_flags off | COOKIE FLAG [FLAG [FLAG]]: up to three flags,
 * each a word or variables; words are checked per request (an unknown
 * one is skipped, as NGINX does). */
static int set_flags_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_cookie_conf_t *c = &cx->lc->hdr.cookie;
    if (nd->nargs > 5)
        return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"%s\" directive", ARG(nd, 0));
    int done;
    if (off_or_dup(cx, nd, &c->flags_state, &done) != PV_OK || done)
        return done ? PV_OK : PV_ERR;
    c->flags_state = PV_COOKIE_LIST;
    pv_cookie_flags_t *cf = pv_conf_push(cx->a, &c->flags, &c->nflags, sizeof(*cf));
    pv_str_t name = nd->args[1];
    if (name.p[0] == '~') {
        cf->re = pv_conf_regex(cx, &nd->src, name.p + 1, name.len - 1, 1);
        if (!cf->re)
            return PV_ERR;
    } else if (pv_conf_compile(cx, nd, &cf->name, name.p, name.len) != PV_OK) {
        return PV_ERR;
    }
    cf->nflags = nd->nargs - 2;
    cf->flags = pv_arena_calloc(cx->a, sizeof(*cf->flags) * (size_t)cf->nflags);
    for (int i = 0; i < cf->nflags; i++)
        if (pv_conf_compile(cx, nd, &cf->flags[i], ARG(nd, i + 2), nd->args[i + 2].len) != PV_OK)
            return PV_ERR;
    return PV_OK;
}

void pv_conf_cookie_merge(pv_cookie_conf_t *c, const pv_cookie_conf_t *p)
{
    if (!p)
        return;
    if (!c->domain_state) {
        c->domain_state = p->domain_state;
        c->domains = p->domains;
        c->ndomains = p->ndomains;
    }
    if (!c->path_state) {
        c->path_state = p->path_state;
        c->paths = p->paths;
        c->npaths = p->npaths;
    }
    if (!c->flags_state) {
        c->flags_state = p->flags_state;
        c->flags = p->flags;
        c->nflags = p->nflags;
    }
}

static const pv_conf_cmd_t cookie_cmds[] = {
    {"proxy_cookie_domain", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_domain_cb, PV_BASE_NONE, 0, NULL},
    {"proxy_cookie_path", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_path_cb, PV_BASE_NONE, 0, NULL},
    {"proxy_cookie_flags", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_flags_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_cookie_module = {"cookie", cookie_cmds, PV_NELEM(cookie_cmds)};
