/* The proxy_ssl_* directives (ngx_http_proxy_module's TLS half): setters,
 * merging from http to server to location, and the client SSL_CTX of each
 * https proxy_pass. Locations whose merged settings are the same share one
 * pv_upstream_tls_t and one SSL_CTX, owned by the snapshot. */
#include "conf_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/ssl.h>

#include "../core/file.h"
#include "../core/tls.h"

/* A pv_upstream_tls_t built for one set of settings. */
typedef struct pv_conf_tls_ref_s {
    const pv_proxy_ssl_conf_t *c; /* the settings (a location's merged copy) */
    const char *name;             /* the name it was built with */
    pv_upstream_tls_t *tls;
    int grpc;                     /* made for grpcs://: ALPN offers h2 */
} pv_conf_tls_ref_t;

void pv_conf_proxy_ssl_init(pv_proxy_ssl_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->server_name = PV_UNSET;
    c->verify = PV_UNSET;
    c->verify_depth = PV_UNSET;
    c->protocols = PV_UNSET;
    c->session_reuse = PV_UNSET;
}

/* The rows are shared by proxy_ssl_* and grpc_ssl_*: a grpc row's data is
 * "grpc". */
static pv_proxy_ssl_conf_t *pssl_of(const pv_conf_cmd_t *cmd, void *base)
{
    pv_loc_conf_t *lc = base;
    return cmd->data ? &lc->grpc.ssl : &lc->proxy_ssl;
}
#define pssl(base) pssl_of(cmd, base)

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)pssl(base) + cmd->offset);
    if (pv_conf_flag(cx, nd, f) != PV_OK)
        return PV_ERR;
    if (f == &pssl(base)->verify)
        pssl(base)->verify_src = nd->src;
    return PV_OK;
}

static int set_file_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_ssl_file_t **f = (pv_ssl_file_t **)((char *)pssl(base) + cmd->offset);
    if (*f)
        return DUP(cx, nd);
    pv_proxy_ssl_conf_t *c = pssl(base);
    pv_cv_t **cv = f == &c->certificate ? &c->certificate_cv : f == &c->certificate_key ? &c->certificate_key_cv
                                                                                       : NULL;
    if (strchr(ARG(nd, 1), '$') && !cv)
        return pv_conf_error(cx, &nd->src, "variables in \"%s\" are not supported", ARG(nd, 0));
    *f = pv_arena_calloc(cx->a, sizeof(**f));
    (*f)->path = pv_conf_full_path(cx, ARG(nd, 1));
    (*f)->src = nd->src;
    if (!cv || !strchr(ARG(nd, 1), '$'))
        return PV_OK;
    /* a name evaluated per connection, under the prefix when relative */
    *cv = pv_arena_calloc(cx->a, sizeof(**cv));
    return pv_conf_compile(cx, nd, *cv, ARG(nd, 1), strlen(ARG(nd, 1)));
}

static int set_name_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_proxy_ssl_conf_t *c = pssl(base);
    if (c->name)
        return DUP(cx, nd);
    c->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    if (!strchr(c->name, '$'))
        return PV_OK;
    c->name_cv = pv_arena_calloc(cx->a, sizeof(*c->name_cv));
    return pv_conf_compile(cx, nd, c->name_cv, c->name, strlen(c->name));
}

static int set_conf_command_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_proxy_ssl_conf_t *c = pssl(base);
    return pv_conf_ssl_command_arg(cx, nd, &c->cmds, &c->ncmds);
}

static int set_ciphers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_proxy_ssl_conf_t *c = pssl(base);
    if (c->ciphers)
        return DUP(cx, nd);
    c->ciphers = pv_arena_strdup(cx->a, ARG(nd, 1));
    c->ciphers_src = nd->src;
    return PV_OK;
}

static int set_protocols_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    pv_proxy_ssl_conf_t *c = pssl(base);
    return pv_conf_ssl_protocols_arg(cx, nd, &c->protocols, &c->protocols_src);
}

static int set_depth_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_ssl_depth_arg(cx, nd, &pssl(base)->verify_depth);
}

#define PS(f) PV_BASE_LOC, offsetof(pv_proxy_ssl_conf_t, f)
#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t proxy_ssl_cmds[] = {
    {"proxy_ssl_server_name", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(server_name), NULL},
    {"proxy_ssl_name", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_name_cb, NONE, NULL},
    {"proxy_ssl_verify", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(verify), NULL},
    {"proxy_ssl_verify_depth", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_depth_cb, NONE, NULL},
    {"proxy_ssl_trusted_certificate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(trusted), NULL},
    {"proxy_ssl_crl", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(crl), NULL},
    {"proxy_ssl_protocols", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_protocols_cb, NONE, NULL},
    {"proxy_ssl_ciphers", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_ciphers_cb, NONE, NULL},
    {"proxy_ssl_session_reuse", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(session_reuse), NULL},
    {"proxy_ssl_certificate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(certificate), NULL},
    {"proxy_ssl_certificate_key", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(certificate_key), NULL},
    {"proxy_ssl_password_file", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(password_file), NULL},
    {"proxy_ssl_conf_command", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_conf_command_cb, NONE, NULL},
    {"grpc_ssl_server_name", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(server_name), "grpc"},
    {"grpc_ssl_name", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_name_cb, NONE, "grpc"},
    {"grpc_ssl_verify", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(verify), "grpc"},
    {"grpc_ssl_verify_depth", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_depth_cb, NONE, "grpc"},
    {"grpc_ssl_trusted_certificate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(trusted), "grpc"},
    {"grpc_ssl_protocols", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_protocols_cb, NONE, "grpc"},
    {"grpc_ssl_ciphers", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_ciphers_cb, NONE, "grpc"},
    {"grpc_ssl_session_reuse", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, PS(session_reuse), "grpc"},
    {"grpc_ssl_certificate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(certificate), "grpc"},
    {"grpc_ssl_certificate_key", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(certificate_key), "grpc"},
    {"grpc_ssl_password_file", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_file_cb, PS(password_file), "grpc"},
    {"grpc_ssl_conf_command", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_conf_command_cb, NONE, "grpc"},
};

const pv_conf_module_t pv_conf_proxy_ssl_module = {"proxy_ssl", proxy_ssl_cmds, PV_NELEM(proxy_ssl_cmds)};

#define INHERIT(f, unset, dflt) c->f = c->f != (unset) ? c->f : p ? p->f : (dflt)

void pv_conf_proxy_ssl_merge(pv_proxy_ssl_conf_t *c, const pv_proxy_ssl_conf_t *p)
{
    INHERIT(server_name, PV_UNSET, 0);
    if (!c->name && p)
        c->name_cv = p->name_cv;
    INHERIT(name, NULL, NULL);
    if (c->verify == PV_UNSET && p)
        c->verify_src = p->verify_src;
    INHERIT(verify, PV_UNSET, 0);
    INHERIT(verify_depth, PV_UNSET, 1);
    INHERIT(trusted, NULL, NULL);
    INHERIT(crl, NULL, NULL);
    if (c->protocols == PV_UNSET && p)
        c->protocols_src = p->protocols_src;
    INHERIT(protocols, PV_UNSET, PV_SSL_TLSv1_2 | PV_SSL_TLSv1_3);
    if (!c->ciphers && p)
        c->ciphers_src = p->ciphers_src;
    INHERIT(ciphers, NULL, "DEFAULT");
    INHERIT(session_reuse, PV_UNSET, 1);
    INHERIT(password_file, NULL, NULL);
    if (c->ncmds == 0 && p) {
        c->cmds = p->cmds;
        c->ncmds = p->ncmds;
    }
    if (!c->certificate && !c->certificate_key && p) {
        c->certificate = p->certificate;
        c->certificate_key = p->certificate_key;
        c->certificate_cv = p->certificate_cv;
        c->certificate_key_cv = p->certificate_key_cv;
    }
}

static int same_file(const pv_ssl_file_t *a, const pv_ssl_file_t *b)
{
    return a == b || (a && b && strcmp(a->path, b->path) == 0);
}

/* Whether two merged setting sets give the same client. */
static int same_settings(const pv_proxy_ssl_conf_t *a, const pv_proxy_ssl_conf_t *b)
{
    return a->server_name == b->server_name && a->verify == b->verify && a->verify_depth == b->verify_depth &&
           a->protocols == b->protocols && a->session_reuse == b->session_reuse &&
           strcmp(a->ciphers, b->ciphers) == 0 && same_file(a->trusted, b->trusted) &&
           same_file(a->crl, b->crl) &&
           same_file(a->certificate, b->certificate) && same_file(a->certificate_key, b->certificate_key) &&
           a->certificate_cv == b->certificate_cv && a->certificate_key_cv == b->certificate_key_cv &&
           same_file(a->password_file, b->password_file) && a->cmds == b->cmds;
}

static int ssl_error(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *fmt, const char *arg)
{
    char what[600], t[400];
    snprintf(what, sizeof(what), fmt, arg);
    pv_tls_error_text(t, sizeof(t));
    return pv_conf_error(cx, src, "%s (%s)", what, t);
}

static void ctx_free(void *arg)
{
    SSL_CTX_free(arg);
}

/* The client certificate and key (proxy_ssl_certificate / _key). */
static int load_client_cert(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_proxy_ssl_conf_t *c)
{
    if (!c->certificate)
        return PV_OK;
    if (!c->certificate_key)
        return pv_conf_error(cx, &c->certificate->src, "no \"proxy_ssl_certificate_key\" is defined "
                             "for certificate \"%s\"", c->certificate->path);
    if (c->certificate_cv || c->certificate_key_cv)
        return PV_OK; /* read per connection */
    if (!SSL_CTX_use_certificate_chain_file(ctx, c->certificate->path))
        return ssl_error(cx, &c->certificate->src, "cannot load certificate \"%s\"", c->certificate->path);
    EVP_PKEY *k = pv_conf_ssl_load_key(cx, c->certificate_key, c->password_file);
    if (!k)
        return PV_ERR;
    int ok = SSL_CTX_use_PrivateKey(ctx, k);
    EVP_PKEY_free(k);
    if (!ok)
        return ssl_error(cx, &c->certificate_key->src, "cannot load certificate key \"%s\"",
                         c->certificate_key->path);
    if (!SSL_CTX_check_private_key(ctx))
        return ssl_error(cx, &c->certificate_key->src, "certificate key \"%s\" does not match its certificate",
                         c->certificate_key->path);
    return PV_OK;
}

static SSL_CTX *client_ctx(pv_conf_ctx_t *cx, const pv_proxy_ssl_conf_t *c, const pv_location_t *loc)
{
    SSL_CTX *ctx = pv_tls_client_ctx_new();
    if (!ctx) {
        ssl_error(cx, &loc->src, "%s", "SSL_CTX_new() failed");
        return NULL;
    }
    pv_conf_add_cleanup(cx, ctx_free, ctx);
    pv_conf_ssl_apply_protocols(ctx, c->protocols);
    if (!(c->protocols & ~PV_SSL_SSLv2)) {
        pv_conf_error(cx, &c->protocols_src, "no protocol left in \"proxy_ssl_protocols\"");
        return NULL;
    }
    if (!SSL_CTX_set_cipher_list(ctx, c->ciphers)) {
        ssl_error(cx, &c->ciphers_src, "SSL_CTX_set_cipher_list(\"%s\") failed", c->ciphers);
        return NULL;
    }
    if (load_client_cert(cx, ctx, c) != PV_OK)
        return NULL;
    if (c->trusted) {
        if (!SSL_CTX_load_verify_locations(ctx, c->trusted->path, NULL)) {
            ssl_error(cx, &c->trusted->src, "SSL_CTX_load_verify_locations(\"%s\") failed", c->trusted->path);
            return NULL;
        }
        /* as NGINX: the handshake goes on and the result is checked after it */
        pv_tls_client_verify(ctx, c->verify_depth);
    }
    if (pv_conf_ssl_load_crl(cx, ctx, c->crl) != PV_OK)
        return NULL;
    if (pv_conf_ssl_commands(cx, ctx, c->cmds, c->ncmds) != PV_OK)
        return NULL;
    /* grpcs://: HTTP/2 is asked for by ALPN, as NGINX's grpc module does */
    static const unsigned char h2[] = "\x02h2";
    if (loc->proxy_pass->grpc && SSL_CTX_set_alpn_protos(ctx, h2, sizeof(h2) - 1) != 0) {
        ssl_error(cx, &loc->src, "%s", "SSL_CTX_set_alpn_protos() failed");
        return NULL;
    }
    return ctx;
}

/* proxy_ssl_certificate / _key with variables: the files are named and
 * read per connection, with proxy_ssl_password_file's lines read now. */
static int set_cert_vars(pv_conf_ctx_t *cx, pv_upstream_tls_t *t, const pv_proxy_ssl_conf_t *c)
{
    t->cert_cv = c->certificate_cv;
    t->key_cv = c->certificate_key_cv;
    t->cert_path = c->certificate->path;
    t->key_path = c->certificate_key->path;
    t->prefix = cx->conf->prefix;
    if (!c->password_file)
        return PV_OK;
    char err[512];
    size_t n = 0;
    char *buf = pv_file_read(c->password_file->path, 64 * 1024, &n, err, sizeof(err));
    if (!buf)
        return pv_conf_error(cx, &c->password_file->src, "%s", err);
    t->passwords = pv_arena_strndup(cx->a, buf, n);
    t->passwords_len = n;
    free(buf);
    return PV_OK;
}

int pv_conf_proxy_ssl_build(pv_conf_ctx_t *cx, pv_location_t *loc)
{
    pv_proxy_pass_t *pp = loc->proxy_pass;
    const pv_proxy_ssl_conf_t *c = pp->grpc ? &loc->conf.grpc.ssl : &loc->conf.proxy_ssl;
    if (c->verify && !c->trusted)
        return pv_conf_error(cx, &c->verify_src, pp->grpc ? "no grpc_ssl_trusted_certificate for grpc_ssl_verify"
                                                          : "no proxy_ssl_trusted_certificate for proxy_ssl_verify");
    /* the name may carry a port (as $proxy_host does): it is left out */
    const char *name = c->name ? c->name : pp->host;
    size_t nlen = strlen(name);
    if (name[0] == '[') {
        const char *e = strchr(name, ']');
        nlen = e ? (size_t)(e - name + 1) : nlen;
    } else if (strchr(name, ':') == strrchr(name, ':') && strchr(name, ':')) {
        nlen = (size_t)(strchr(name, ':') - name);
    }
    name = pv_arena_strndup(cx->a, name, nlen);
    for (int i = 0; i < cx->ntlsrefs; i++) {
        pv_conf_tls_ref_t *r = &cx->tlsrefs[i];
        if (r->grpc == pp->grpc && same_settings(r->c, c) && strcmp(r->name, name) == 0) {
            pp->tls = r->tls;
            return PV_OK;
        }
    }
    SSL_CTX *ctx = NULL;
    for (int i = 0; i < cx->ntlsrefs && !ctx; i++)
        if (cx->tlsrefs[i].grpc == pp->grpc && same_settings(cx->tlsrefs[i].c, c))
            ctx = cx->tlsrefs[i].tls->ctx;
    if (!ctx && !(ctx = client_ctx(cx, c, loc)))
        return PV_ERR;
    pv_upstream_tls_t *t = pv_arena_calloc(cx->a, sizeof(*t));
    t->ctx = ctx;
    t->name = name;
    t->server_name = c->server_name;
    t->verify = c->verify;
    t->session_reuse = c->session_reuse;
    if (c->name_cv && !c->name_cv->is_const) {
        t->name = "";
        t->name_cv = c->name_cv;
    }
    if (c->certificate && (c->certificate_cv || c->certificate_key_cv) && set_cert_vars(cx, t, c) != PV_OK)
        return PV_ERR;
    pp->tls = t;
    pv_conf_tls_ref_t *r = pv_conf_push(cx->tmp, &cx->tlsrefs, &cx->ntlsrefs, sizeof(*r));
    r->c = c;
    r->name = name;
    r->tls = t;
    r->grpc = pp->grpc;
    return PV_OK;
}
