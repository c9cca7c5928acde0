/* The TLS directives (ngx_http_ssl_module's): setters, merging from http
 * to server, and the checks of a listen ... ssl address. The SSL_CTX of
 * each server is built from them in ssl_ctx.c. */
#include "conf_int.h"

#include "../core/log.h"

#include <string.h>
#include <strings.h>

static pv_ssl_conf_t *ssl(pv_conf_ctx_t *cx)
{
    return &cx->srv->ssl;
}

void pv_conf_ssl_init(pv_ssl_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->protocols = PV_UNSET;
    c->prefer_server_ciphers = PV_UNSET;
    c->verify_client = PV_UNSET;
    c->verify_depth = PV_UNSET;
    c->session_tickets = PV_UNSET;
    c->session_timeout = PV_UNSET;
    c->session_cache = PV_UNSET;
    c->stapling = PV_UNSET;
    c->stapling_verify = PV_UNSET;
    c->enable = PV_UNSET;
    c->early_data = PV_UNSET;
    c->reject_handshake = PV_UNSET;
    c->ocsp = PV_UNSET;
    c->ocsp_cache = PV_UNSET;
}

static pv_ssl_file_t *file_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd)
{
    pv_ssl_file_t *f = pv_arena_calloc(cx->a, sizeof(*f));
    f->path = pv_conf_full_path(cx, ARG(nd, 1));
    f->src = nd->src;
    return f;
}

/* ssl_certificate / ssl_certificate_key: a file, a "data:" value (the
 * PEM itself), or either with variables, evaluated per handshake. */
static int set_certificate_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                              void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    const char *v = ARG(nd, 1);
    int key = strcmp(ARG(nd, 0), "ssl_certificate_key") == 0;
    pv_ssl_file_t *f = pv_conf_push(cx->a, key ? (void *)&c->keys : (void *)&c->certs,
                                    key ? &c->nkeys : &c->ncerts, sizeof(*f));
    f->src = nd->src;
    c->prefix = cx->conf->prefix;
    if (strchr(v, '$')) {
        f->path = pv_arena_strdup(cx->a, v);
        f->cv = pv_arena_calloc(cx->a, sizeof(*f->cv));
        return pv_conf_compile(cx, nd, f->cv, v, strlen(v));
    }
    f->path = strncmp(v, "data:", 5) == 0 ? pv_arena_strdup(cx->a, v) : pv_conf_full_path(cx, v);
    return PV_OK;
}

static int set_file_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_ssl_file_t **f = (pv_ssl_file_t **)((char *)base + cmd->offset);
    if (*f)
        return DUP(cx, nd);
    *f = file_arg(cx, nd);
    return PV_OK;
}

const pv_conf_enum_t pv_conf_ssl_protocols[] = {
    {"SSLv2", PV_SSL_SSLv2},     {"SSLv3", PV_SSL_SSLv3},     {"TLSv1", PV_SSL_TLSv1},
    {"TLSv1.1", PV_SSL_TLSv1_1}, {"TLSv1.2", PV_SSL_TLSv1_2}, {"TLSv1.3", PV_SSL_TLSv1_3},
    {NULL, 0},
};

int pv_conf_ssl_protocols_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *protocols, pv_conf_src_t *src)
{
    if (*protocols != PV_UNSET)
        return DUP(cx, nd);
    if (pv_conf_bitmask(cx, nd, pv_conf_ssl_protocols, protocols) != PV_OK)
        return PV_ERR;
    *src = nd->src;
    return PV_OK;
}

static int set_protocols_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    return pv_conf_ssl_protocols_arg(cx, nd, &c->protocols, &c->protocols_src);
}

static int set_string_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    const char **f = (const char **)((char *)base + cmd->offset);
    if (*f)
        return DUP(cx, nd);
    *f = pv_arena_strdup(cx->a, ARG(nd, 1));
    pv_ssl_conf_t *c = ssl(cx);
    if (f == &c->ciphers)
        c->ciphers_src = nd->src;
    else
        c->ecdh_src = nd->src;
    return PV_OK;
}

int pv_conf_ssl_command_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_ssl_cmd_t **cmds, int *ncmds)
{
    pv_ssl_cmd_t *k = pv_conf_push(cx->a, cmds, ncmds, sizeof(*k));
    k->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    k->value = pv_arena_strdup(cx->a, ARG(nd, 2));
    k->src = nd->src;
    return PV_OK;
}

static int set_conf_command_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    return pv_conf_ssl_command_arg(cx, nd, &c->cmds, &c->ncmds);
}

static int set_verify_client_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                void *base)
{
    static const pv_conf_enum_t modes[] = {
        {"off", PV_VERIFY_OFF},
        {"on", PV_VERIFY_ON},
        {"optional", PV_VERIFY_OPTIONAL},
        {"optional_no_ca", PV_VERIFY_OPTIONAL_NO_CA},
        {NULL, 0},
    };
    pv_ssl_conf_t *c = ssl(cx);
    if (c->verify_client != PV_UNSET)
        return DUP(cx, nd);
    for (const pv_conf_enum_t *e = modes; e->name; e++) {
        if (strcasecmp(e->name, ARG(nd, 1)) == 0) {
            c->verify_client = e->value;
            c->verify_src = nd->src;
            return PV_OK;
        }
    }
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive, it must be \"on\", "
                         "\"off\", \"optional\" or \"optional_no_ca\"", ARG(nd, 1), ARG(nd, 0));
}

static int set_stapling_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    int rc = pv_conf_flag_slot(cx, cmd, nd, base);
    c->stapling_src = nd->src;
    return rc;
}

/* The obsolete `ssl on|off` (NGINX 1.22 takes it with a warning). */
static int set_enable_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    int rc = pv_conf_flag_slot(cx, cmd, nd, base);
    c->enable_src = nd->src;
    if (rc == PV_OK)
        pv_log(PV_LOG_WARN, "the \"ssl\" directive is deprecated, use the \"listen ... ssl\" directive "
               "instead in %s:%d", nd->src.file, nd->src.line);
    return rc;
}

int pv_conf_ssl_depth_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *depth)
{
    if (*depth != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0 || v > 100)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid number", ARG(nd, 0));
    *depth = (int)v;
    return PV_OK;
}

static int set_depth_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_ssl_depth_arg(cx, nd, &ssl(cx)->verify_depth);
}

static int set_timeout_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    if (c->session_timeout != PV_UNSET)
        return DUP(cx, nd);
    c->session_timeout = pv_conf_parse_msec(nd->args[1]);
    if (c->session_timeout < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    return PV_OK;
}

/* ssl_session_cache off | none | [builtin[:size]] [shared:name:size] */
static int set_session_cache_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    if (c->session_cache != PV_UNSET)
        return DUP(cx, nd);
    c->session_cache = PV_SSL_CACHE_ON;
    c->builtin_size = 0;
    c->cache_src = nd->src;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (nd->nargs == 2 && (strcmp(a, "off") == 0 || strcmp(a, "none") == 0)) {
            c->session_cache = a[0] == 'o' ? PV_SSL_CACHE_OFF : PV_SSL_CACHE_NONE;
        } else if (strcmp(a, "builtin") == 0) {
            c->builtin_size = -1;
        } else if (strncmp(a, "builtin:", 8) == 0) {
            c->builtin_size = pv_conf_parse_num((pv_str_t){a + 8, strlen(a + 8)});
            if (c->builtin_size <= 0)
                return pv_conf_error(cx, &nd->src, "invalid session cache \"%s\"", a);
        } else if (strncmp(a, "shared:", 7) == 0) {
            const char *colon = strchr(a + 7, ':');
            if (!colon || colon == a + 7)
                return pv_conf_error(cx, &nd->src, "invalid session cache \"%s\"", a);
            c->cache_name = pv_arena_strndup(cx->a, a + 7, (size_t)(colon - a - 7));
            c->cache_size = pv_conf_parse_size((pv_str_t){colon + 1, strlen(colon + 1)});
            if (c->cache_size <= 0)
                return pv_conf_error(cx, &nd->src, "invalid session cache \"%s\"", a);
            if (c->cache_size < 8 * 4096)
                return pv_conf_error(cx, &nd->src, "session cache \"%s\" is too small", a);
        } else {
            return pv_conf_error(cx, &nd->src, "invalid session cache \"%s\"", a);
        }
    }
    return PV_OK;
}

static int set_ocsp_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    static const pv_conf_enum_t modes[] = {
        {"off", PV_SSL_OCSP_OFF}, {"on", PV_SSL_OCSP_ON}, {"leaf", PV_SSL_OCSP_LEAF}, {NULL, 0},
    };
    pv_ssl_conf_t *c = ssl(cx);
    if (c->ocsp != PV_UNSET)
        return DUP(cx, nd);
    for (const pv_conf_enum_t *e = modes; e->name; e++) {
        if (strcasecmp(e->name, ARG(nd, 1)) == 0) {
            c->ocsp = e->value;
            c->ocsp_src = nd->src;
            return PV_OK;
        }
    }
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, 1));
}

static int set_ocsp_responder_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                 void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    if (c->ocsp_responder)
        return DUP(cx, nd);
    c->ocsp_responder = pv_arena_strdup(cx->a, ARG(nd, 1));
    c->ocsp_responder_src = nd->src;
    return PV_OK;
}

/* ssl_ocsp_cache off | shared:NAME:SIZE */
static int set_ocsp_cache_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                             void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    const char *a = ARG(nd, 1);
    if (c->ocsp_cache != PV_UNSET)
        return DUP(cx, nd);
    c->ocsp_cache_src = nd->src;
    if (strcmp(a, "off") == 0) {
        c->ocsp_cache = 0;
        return PV_OK;
    }
    const char *colon = strncmp(a, "shared:", 7) == 0 ? strchr(a + 7, ':') : NULL;
    if (!colon || colon == a + 7)
        return pv_conf_error(cx, &nd->src, "invalid OCSP cache \"%s\"", a);
    c->ocsp_cache_size = pv_conf_parse_size((pv_str_t){colon + 1, strlen(colon + 1)});
    if (c->ocsp_cache_size <= 0)
        return pv_conf_error(cx, &nd->src, "invalid OCSP cache \"%s\"", a);
    if (c->ocsp_cache_size < 8 * 4096)
        return pv_conf_error(cx, &nd->src, "OCSP cache \"%s\" is too small", a);
    c->ocsp_cache_name = pv_arena_strndup(cx->a, a + 7, (size_t)(colon - a - 7));
    c->ocsp_cache = 1;
    return PV_OK;
}

static int set_ticket_key_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                             void *base)
{
    pv_ssl_conf_t *c = ssl(cx);
    pv_ssl_file_t *f = pv_conf_push(cx->a, &c->ticket_keys, &c->nticket_keys, sizeof(*f));
    *f = *file_arg(cx, nd);
    return PV_OK;
}

#define SSL_OFF(f) PV_BASE_SRV, offsetof(pv_server_t, ssl) + offsetof(pv_ssl_conf_t, f)
#define NONE PV_BASE_NONE, 0
#define HS (PV_CTX_HTTP | PV_CTX_SERVER)

static const pv_conf_cmd_t ssl_cmds[] = {
    {"ssl_certificate", HS, PV_ARGS_TAKE1, set_certificate_cb, NONE, NULL},
    {"ssl_certificate_key", HS, PV_ARGS_TAKE1, set_certificate_cb, NONE, NULL},
    {"ssl_password_file", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(password_file), NULL},
    {"ssl_protocols", HS, PV_ARGS_1MORE, set_protocols_cb, NONE, NULL},
    {"ssl_ciphers", HS, PV_ARGS_TAKE1, set_string_cb, SSL_OFF(ciphers), NULL},
    {"ssl_conf_command", HS, PV_ARGS_TAKE2, set_conf_command_cb, NONE, NULL},
    {"ssl_prefer_server_ciphers", HS, PV_ARGS_FLAG, pv_conf_flag_slot, SSL_OFF(prefer_server_ciphers), NULL},
    {"ssl_ecdh_curve", HS, PV_ARGS_TAKE1, set_string_cb, SSL_OFF(ecdh_curve), NULL},
    {"ssl_dhparam", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(dhparam), NULL},
    {"ssl_client_certificate", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(client_certificate), NULL},
    {"ssl_crl", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(crl), NULL},
    {"ssl_verify_client", HS, PV_ARGS_TAKE1, set_verify_client_cb, NONE, NULL},
    {"ssl_verify_depth", HS, PV_ARGS_TAKE1, set_depth_cb, NONE, NULL},
    {"ssl_session_tickets", HS, PV_ARGS_FLAG, pv_conf_flag_slot, SSL_OFF(session_tickets), NULL},
    {"ssl_session_timeout", HS, PV_ARGS_TAKE1, set_timeout_cb, NONE, NULL},
    {"ssl_early_data", HS, PV_ARGS_FLAG, pv_conf_flag_slot, SSL_OFF(early_data), NULL},
    {"ssl_reject_handshake", HS, PV_ARGS_FLAG, pv_conf_flag_slot, SSL_OFF(reject_handshake), NULL},
    {"ssl_stapling", HS, PV_ARGS_FLAG, set_stapling_cb, SSL_OFF(stapling), NULL},
    {"ssl_stapling_file", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(stapling_file), NULL},
    {"ssl_stapling_verify", HS, PV_ARGS_FLAG, pv_conf_flag_slot, SSL_OFF(stapling_verify), NULL},
    {"ssl_stapling_responder", HS, PV_ARGS_TAKE1, set_string_cb, SSL_OFF(stapling_responder), NULL},
    {"ssl_ocsp", HS, PV_ARGS_TAKE1, set_ocsp_cb, NONE, NULL},
    {"ssl_ocsp_responder", HS, PV_ARGS_TAKE1, set_ocsp_responder_cb, NONE, NULL},
    {"ssl_ocsp_cache", HS, PV_ARGS_TAKE1, set_ocsp_cache_cb, NONE, NULL},
    {"ssl_trusted_certificate", HS, PV_ARGS_TAKE1, set_file_cb, SSL_OFF(trusted), NULL},
    {"ssl", HS, PV_ARGS_FLAG, set_enable_cb, SSL_OFF(enable), NULL},
    {"ssl_session_cache", HS, PV_ARGS_TAKE12, set_session_cache_cb, NONE, NULL},
    {"ssl_session_ticket_key", HS, PV_ARGS_TAKE1, set_ticket_key_cb, NONE, NULL},
};

const pv_conf_module_t pv_conf_ssl_module = {"ssl", ssl_cmds, PV_NELEM(ssl_cmds)};

#define INHERIT(f, unset, dflt) c->f = c->f != (unset) ? c->f : p->f != (unset) ? p->f : (dflt)

void pv_conf_ssl_merge(pv_ssl_conf_t *c, const pv_ssl_conf_t *p)
{
    if (c->ncerts == 0 && c->nkeys == 0) {
        c->certs = p->certs;
        c->ncerts = p->ncerts;
        c->keys = p->keys;
        c->nkeys = p->nkeys;
        c->prefix = p->prefix;
    }
    if (c->protocols == PV_UNSET) {
        c->protocols = p->protocols != PV_UNSET ? p->protocols : PV_SSL_TLSv1_2 | PV_SSL_TLSv1_3;
        c->protocols_src = p->protocols_src;
    }
    if (!c->ciphers) {
        c->ciphers = p->ciphers ? p->ciphers : PV_SSL_DEFAULT_CIPHERS;
        c->ciphers_src = p->ciphers_src;
    }
    if (!c->ecdh_curve) {
        c->ecdh_curve = p->ecdh_curve ? p->ecdh_curve : "auto";
        c->ecdh_src = p->ecdh_src;
    }
    if (c->ncmds == 0) {
        c->cmds = p->cmds;
        c->ncmds = p->ncmds;
    }
    if (c->verify_client == PV_UNSET) {
        c->verify_client = p->verify_client != PV_UNSET ? p->verify_client : PV_VERIFY_OFF;
        c->verify_src = p->verify_src;
    }
    if (c->session_cache == PV_UNSET) {
        c->session_cache = p->session_cache != PV_UNSET ? p->session_cache : PV_SSL_CACHE_NONE;
        c->builtin_size = p->builtin_size;
        c->cache_name = p->cache_name;
        c->cache_size = p->cache_size;
        c->cache_src = p->cache_src;
    }
    if (c->nticket_keys == 0) {
        c->ticket_keys = p->ticket_keys;
        c->nticket_keys = p->nticket_keys;
    }
    if (c->stapling == PV_UNSET) {
        c->stapling = p->stapling != PV_UNSET ? p->stapling : 0;
        c->stapling_src = p->stapling_src;
    }
    INHERIT(stapling_file, NULL, NULL);
    INHERIT(stapling_verify, PV_UNSET, 0);
    INHERIT(stapling_responder, NULL, NULL);
    INHERIT(trusted, NULL, NULL);
    if (c->ocsp == PV_UNSET) {
        c->ocsp = p->ocsp != PV_UNSET ? p->ocsp : PV_SSL_OCSP_OFF;
        c->ocsp_src = p->ocsp_src;
    }
    if (!c->ocsp_responder) {
        c->ocsp_responder = p->ocsp_responder;
        c->ocsp_responder_src = p->ocsp_responder_src;
    }
    if (c->ocsp_cache == PV_UNSET) {
        c->ocsp_cache = p->ocsp_cache != PV_UNSET ? p->ocsp_cache : 0;
        c->ocsp_cache_name = p->ocsp_cache_name;
        c->ocsp_cache_size = p->ocsp_cache_size;
        c->ocsp_cache_src = p->ocsp_cache_src;
    }
    if (c->enable == PV_UNSET) {
        c->enable = p->enable != PV_UNSET ? p->enable : 0;
        c->enable_src = p->enable_src;
    }
    INHERIT(early_data, PV_UNSET, 0);
    INHERIT(reject_handshake, PV_UNSET, 0);
    INHERIT(prefer_server_ciphers, PV_UNSET, 0);
    INHERIT(verify_depth, PV_UNSET, 1);
    INHERIT(session_tickets, PV_UNSET, 1);
    INHERIT(session_timeout, PV_UNSET, 300000);
    INHERIT(password_file, NULL, NULL);
    INHERIT(dhparam, NULL, NULL);
    INHERIT(client_certificate, NULL, NULL);
    INHERIT(crl, NULL, NULL);
}

/* After the listen groups are built: every server with certificates (or
 * ssl_reject_handshake on) gets its SSL_CTX, and every TLS address needs
 * a default server that has one (ngx_http_ssl_init()); another server of
 * the address without any keeps the default server's certificates when
 * SNI names it. */
int pv_conf_ssl_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->nservers; i++) {
        pv_server_t *s = h->servers[i];
        if (pv_conf_ssl_build(cx, s) != PV_OK)
            return PV_ERR;
        if (s->ssl.enable && !s->ssl.ctx)
            return pv_conf_error(cx, &s->ssl.enable_src, "no \"ssl_certificate\" is defined for the \"ssl\" "
                                 "directive");
    }
    for (int i = 0; i < h->nlistens; i++) {
        pv_listen_group_t *g = &h->listens[i];
        /* `ssl on` in the default server of an address: its connections
         * speak TLS, as NGINX 1.22 decides per connection */
        g->listen.ssl |= g->default_srv->ssl.enable;
        if (g->listen.ssl && !g->default_srv->ssl.ctx)
            return pv_conf_error(cx, &g->default_srv->src, "no \"ssl_certificate\" is defined for "
                                 "the \"listen ... ssl\" directive");
    }
    return PV_OK;
}
