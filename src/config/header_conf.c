/* Directives that shape the response head and the proxied request beyond
 * proxy_set_header: add_header, expires (ngx_http_headers_module),
 * server_tokens,
 * proxy_hide_header, proxy_pass_header, proxy_ignore_headers,
 * proxy_redirect, proxy_method, proxy_pass_request_headers,
 * proxy_set_body, absolute_redirect, port_in_redirect,
 * server_name_in_redirect. Syntax, messages and inheritance are NGINX's. */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

static pv_hdr_conf_t *hdr(pv_conf_ctx_t *cx)
{
    return &cx->lc->hdr;
}

void pv_conf_hdr_init(pv_hdr_conf_t *h)
{
    memset(h, 0, sizeof(*h));
    h->expires = PV_UNSET;
    h->server_tokens = PV_UNSET;
    h->ignore = PV_UNSET;
    h->redirect = PV_UNSET;
    h->absolute_redirect = PV_UNSET;
    h->port_in_redirect = PV_UNSET;
    h->server_name_in_redirect = PV_UNSET;
    pv_conf_charset_init(&h->cs);
}

/* ---- add_header, expires -------------------------------------------------- */

/* `add_header NAME VALUE [always]`, and `add_trailer` (cmd->data set): a
 * trailer field at the end of the response (ngx_http_headers_module's
 * trailers). */
static int set_add_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                             void *base)
{
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    if (nd->nargs == 4 && strcmp(ARG(nd, 3), "always") != 0)
        return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 3));
    pv_add_header_t *a = cmd->data ? pv_conf_push(cx->a, &h->trailers, &h->ntrailers, sizeof(*a))
                                   : pv_conf_push(cx->a, &h->add, &h->nadd, sizeof(*a));
    a->name = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    a->always = nd->nargs == 4;
    a->replace = !cmd->data && (PV_STR_IEQ(nd->args[1], "last-modified") || PV_STR_IEQ(nd->args[1], "etag"));
    return pv_conf_compile(cx, nd, &a->value, ARG(nd, 2), nd->args[2].len);
}


/* An NGINX time in seconds ("1h30m", "3600"); -1 when invalid. */
static int64_t parse_sec(pv_str_t s)
{
    if (memmem(s.p, s.len, "ms", 2))
        return -1;
    int64_t ms = pv_conf_parse_msec(s);
    return ms < 0 ? -1 : ms / 1000;
}

int pv_conf_parse_expires(pv_str_t v, int modified, int *kind, int64_t *t, const char **err)
{
    if (!modified) {
        static const struct {
            const char *name;
            int kind;
        } words[] = {{"epoch", PV_EXPIRES_EPOCH}, {"max", PV_EXPIRES_MAX}, {"off", PV_EXPIRES_OFF}};
        for (size_t i = 0; i < PV_NELEM(words); i++) {
            if (v.len == strlen(words[i].name) && memcmp(v.p, words[i].name, v.len) == 0) {
                *kind = words[i].kind;
                *t = 0;
                return PV_OK;
            }
        }
    }
    int k = modified ? PV_EXPIRES_MODIFIED : PV_EXPIRES_ACCESS, minus = 0;
    if (v.len && v.p[0] == '@') {
        if (modified) {
            *err = "daily time cannot be used with \"modified\" parameter";
            return PV_ERR;
        }
        k = PV_EXPIRES_DAILY;
        v.p++, v.len--;
    } else if (v.len && (v.p[0] == '+' || v.p[0] == '-')) {
        minus = v.p[0] == '-';
        v.p++, v.len--;
    }
    int64_t n = parse_sec(v);
    if (n < 0) {
        *err = "invalid value";
        return PV_ERR;
    }
    if (k == PV_EXPIRES_DAILY && n > 24 * 60 * 60) {
        *err = "daily time value must be less than 24 hours";
        return PV_ERR;
    }
    *kind = k;
    *t = minus ? -n : n;
    return PV_OK;
}

static int set_expires_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    if (h->expires != PV_UNSET)
        return DUP(cx, nd);
    int modified = 0;
    pv_str_t v = nd->args[1];
    if (nd->nargs == 3) {
        if (strcmp(ARG(nd, 1), "modified") != 0)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, 1));
        modified = 1;
        v = nd->args[2];
    }
    if (memchr(v.p, '$', v.len)) {
        /* parsed per request; a value that does not parse sets nothing */
        h->expires = modified ? PV_EXPIRES_MODIFIED : PV_EXPIRES_ACCESS;
        h->expires_value = pv_arena_calloc(cx->a, sizeof(*h->expires_value));
        return pv_conf_compile(cx, nd, h->expires_value, v.p, v.len);
    }
    const char *err = NULL;
    if (pv_conf_parse_expires(v, modified, &h->expires, &h->expires_time, &err) != PV_OK) {
        if (strcmp(err, "invalid value") == 0)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", v.p);
        return pv_conf_error(cx, &nd->src, "%s in \"%s\"", err, v.p);
    }
    return PV_OK;
}

/* ---- server_tokens ----------------------------------------------------- */

static int set_server_tokens_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    if (h->server_tokens != PV_UNSET)
        return DUP(cx, nd);
    static const pv_conf_enum_t values[] = {
        {"off", PV_TOKENS_OFF}, {"on", PV_TOKENS_ON}, {"build", PV_TOKENS_BUILD}, {NULL, 0}};
    for (const pv_conf_enum_t *e = values; e->name; e++) {
        if (strcmp(e->name, ARG(nd, 1)) == 0) {
            h->server_tokens = e->value;
            return PV_OK;
        }
    }
    if (strchr(ARG(nd, 1), '$'))
        return pv_conf_error(cx, &nd->src, "a \"server_tokens\" string is not supported (NGINX Plus only)");
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"server_tokens\" directive, it must be "
                         "\"on\", \"off\" or \"build\"", ARG(nd, 1));
}

/* ---- proxy_hide_header, proxy_pass_header, proxy_ignore_headers ---------- */

static int set_hide_pass_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    int pass = cmd->data != NULL;
    pv_str_t *n = pass ? pv_conf_push(cx->a, &h->pass, &h->npass, sizeof(*n))
                       : pv_conf_push(cx->a, &h->hide, &h->nhide, sizeof(*n));
    *n = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return PV_OK;
}

const pv_conf_enum_t pv_conf_ignore_names[] = {
    {"X-Accel-Redirect", PV_IGN_X_ACCEL_REDIRECT}, {"X-Accel-Expires", PV_IGN_X_ACCEL_EXPIRES},
    {"X-Accel-Limit-Rate", PV_IGN_X_ACCEL_LIMIT_RATE}, {"X-Accel-Buffering", PV_IGN_X_ACCEL_BUFFERING},
    {"X-Accel-Charset", PV_IGN_X_ACCEL_CHARSET}, {"Expires", PV_IGN_EXPIRES},
    {"Cache-Control", PV_IGN_CACHE_CONTROL}, {"Set-Cookie", PV_IGN_SET_COOKIE}, {"Vary", PV_IGN_VARY},
    {NULL, 0}};

static int set_ignore_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    return pv_conf_bitmask(cx, nd, pv_conf_ignore_names, &h->ignore);
}

/* ---- proxy_redirect --------------------------------------------------------- */

static int set_redirect_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_hdr_conf_t *h = hdr(cx);
    if (h->redirect == 0)
        return PV_OK; /* after `off`, as NGINX: the level's later lines are ignored */
    h->redirect = 1;
    const char *a = ARG(nd, 1);
    if (nd->nargs == 2) {
        if (strcmp(a, "off") == 0 || strcmp(a, "false") == 0) {
            h->redirect = 0;
            h->redirects = NULL;
            h->nredirects = 0;
            return PV_OK;
        }
        if (strcmp(a, "default") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
    }
    pv_redirect_t *rd = pv_conf_push(cx->a, &h->redirects, &h->nredirects, sizeof(*rd));
    if (strcmp(a, "default") == 0) {
        if (!cx->loc || !cx->loc->proxy_pass)
            return pv_conf_error(cx, &nd->src, "\"proxy_redirect default\" should be placed after "
                                 "the \"proxy_pass\" directive");
        const pv_proxy_pass_t *pp = cx->loc->proxy_pass;
        if (pp->cv)
            return pv_conf_error(cx, &nd->src, "\"proxy_redirect default\" cannot be used with "
                                 "\"proxy_pass\" directive with variables");
        pv_location_t *loc = cx->loc;
        while (loc->parent) /* an `if` block: its location's name */
            loc = loc->parent;
        /* the proxy_pass URL to the location's name, or URL/ to "/" */
        pv_str_t pat = pp->url, rep = pp->has_uri ? loc->name : PV_STR("/");
        if (!pp->has_uri) {
            char *s = pv_arena_alloc(cx->a, pat.len + 2);
            memcpy(s, pat.p, pat.len);
            s[pat.len] = '/';
            s[pat.len + 1] = '\0';
            pat = (pv_str_t){s, pat.len + 1};
        }
        rd->pattern = (pv_cv_t){NULL, 0, 1};
        if (pv_conf_compile(cx, nd, &rd->pattern, pat.p, pat.len) != PV_OK ||
            pv_conf_compile(cx, nd, &rd->replacement, rep.p, rep.len) != PV_OK)
            return PV_ERR;
        return PV_OK;
    }
    if (a[0] == '~') {
        int caseless = a[1] == '*';
        const char *re = a + 1 + caseless;
        rd->re = pv_conf_regex(cx, &nd->src, re, strlen(re), caseless);
        if (!rd->re)
            return PV_ERR;
    } else if (pv_conf_compile(cx, nd, &rd->pattern, a, nd->args[1].len) != PV_OK) {
        return PV_ERR;
    }
    return pv_conf_compile(cx, nd, &rd->replacement, ARG(nd, 2), nd->args[2].len);
}

/* ---- proxy_method, proxy_set_body ------------------------------------------ */

static int set_cv_ptr_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    pv_cv_t **f = (pv_cv_t **)((char *)base + cmd->offset);
    if (*f)
        return DUP(cx, nd);
    *f = pv_arena_calloc(cx->a, sizeof(**f));
    return pv_conf_compile(cx, nd, *f, ARG(nd, 1), nd->args[1].len);
}

/* ---- merge ----------------------------------------------------------------- */

void pv_conf_hdr_merge(pv_hdr_conf_t *c, const pv_hdr_conf_t *p)
{
    if (!c->add && p) {
        c->add = p->add;
        c->nadd = p->nadd;
    }
    if (!c->trailers && p) {
        c->trailers = p->trailers;
        c->ntrailers = p->ntrailers;
    }
    if (c->expires == PV_UNSET) {
        c->expires = p ? p->expires : PV_EXPIRES_OFF;
        c->expires_time = p ? p->expires_time : 0;
        c->expires_value = p ? p->expires_value : NULL;
    }
    if (c->server_tokens == PV_UNSET)
        c->server_tokens = p ? p->server_tokens : PV_TOKENS_ON;
    pv_conf_charset_merge(&c->cs, p ? &p->cs : NULL);
    /* each list is inherited when this level has none of its own (NGINX) */
    if (!c->nhide && p) {
        c->hide = p->hide;
        c->nhide = p->nhide;
    }
    if (!c->npass && p) {
        c->pass = p->pass;
        c->npass = p->npass;
    }
    if (c->ignore == PV_UNSET)
        c->ignore = p ? p->ignore : 0;
    if (c->redirect == PV_UNSET && p) {
        c->redirect = p->redirect;
        c->redirects = p->redirects;
        c->nredirects = p->nredirects;
    } else if (c->redirect == PV_UNSET) {
        c->redirect = 1;
    }
    if (c->absolute_redirect == PV_UNSET)
        c->absolute_redirect = p ? p->absolute_redirect : 1;
    if (c->port_in_redirect == PV_UNSET)
        c->port_in_redirect = p ? p->port_in_redirect : 1;
    if (c->server_name_in_redirect == PV_UNSET)
        c->server_name_in_redirect = p ? p->server_name_in_redirect : 0;
    pv_conf_cookie_merge(&c->cookie, p ? &p->cookie : NULL);
}

/* charset and source_charset: a map between the two. */
int pv_conf_hdr_check(pv_conf_ctx_t *cx, const pv_location_t *loc)
{
    return pv_conf_charset_check(cx, &loc->conf.hdr.cs, &loc->src);
}

#define LOC(f) PV_BASE_LOC, offsetof(pv_loc_conf_t, f)
#define NONE PV_BASE_NONE, 0
#define ANY_LIF (PV_CTX_ANY_LOC | PV_CTX_LIF)

static const pv_conf_cmd_t header_cmds[] = {
    {"add_header", ANY_LIF, PV_ARGS_TAKE2 | PV_ARGS_TAKE3, set_add_header_cb, NONE, NULL},
    {"add_trailer", ANY_LIF, PV_ARGS_TAKE2 | PV_ARGS_TAKE3, set_add_header_cb, NONE, "trailer"},
    {"expires", ANY_LIF, PV_ARGS_TAKE12, set_expires_cb, NONE, NULL},
    {"server_tokens", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_server_tokens_cb, NONE, NULL},
    {"proxy_hide_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_hide_pass_cb, NONE, NULL},
    {"proxy_pass_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_hide_pass_cb, NONE, "pass"},
    {"proxy_ignore_headers", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_ignore_cb, NONE, NULL},
    {"proxy_redirect", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_redirect_cb, NONE, NULL},
    {"proxy_method", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_cv_ptr_cb, LOC(proxy_method), NULL},
    {"proxy_set_body", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_cv_ptr_cb, LOC(proxy_set_body), NULL},
    {"proxy_pass_request_headers", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOC(proxy_pass_request_headers), NULL},
    {"absolute_redirect", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOC(hdr.absolute_redirect), NULL},
    {"port_in_redirect", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOC(hdr.port_in_redirect), NULL},
    {"server_name_in_redirect", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOC(hdr.server_name_in_redirect),
     NULL},
};

const pv_conf_module_t pv_conf_header_module = {"headers", header_cmds, PV_NELEM(header_cmds)};
