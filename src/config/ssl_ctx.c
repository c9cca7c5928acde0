/* A server's SSL_CTX built from its TLS settings at load time, with
 * NGINX's messages for what cannot be loaded. Runs on the main thread;
 * the snapshot frees each SSL_CTX with it (sessions still open hold
 * their own reference). */
#include "conf_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../core/file.h"
#include "../core/log.h"
#include "../core/tls.h"
#include "../core/ocsp.h"
#include "../core/ocsp_check.h"
#include "../core/stapling.h"
#include "../core/tls_cert.h"
#include "../core/tls_session.h"

/* "MESSAGE (SSL: ...)" in FILE:LINE, and the OpenSSL queue cleared. */
static int ssl_error(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *what)
{
    char t[400];
    pv_tls_error_text(t, sizeof(t));
    return pv_conf_error(cx, src, "%s (%s)", what, t);
}

static void ctx_free(void *arg)
{
    SSL_CTX_free(arg);
}

/* The lines of ssl_password_file, tried in turn on an encrypted key. */
typedef struct {
    char *buf;
    size_t len;
} passwords_t;

/* A file, or the PEM of a "data:" value. */
static BIO *open_pem(const char *path)
{
    if (strncmp(path, "data:", 5) == 0)
        return BIO_new_mem_buf(path + 5, (int)strlen(path + 5));
    return BIO_new_file(path, "r");
}

static EVP_PKEY *load_key(pv_conf_ctx_t *cx, const pv_ssl_file_t *f, const passwords_t *pw)
{
    BIO *bio = open_pem(f->path);
    if (!bio) {
        char m[600];
        snprintf(m, sizeof(m), "cannot load certificate key \"%s\": BIO_new_file() failed", f->path);
        ssl_error(cx, &f->src, m);
        return NULL;
    }
    EVP_PKEY *k = pv_tls_read_key(bio, pw->buf, pw->len);
    BIO_free(bio);
    if (!k) {
        char m[600];
        snprintf(m, sizeof(m), "cannot load certificate key \"%s\": PEM_read_bio_PrivateKey() failed",
                 f->path);
        ssl_error(cx, &f->src, m);
    }
    return k;
}

/* The lines of a password file (NULL: none) into pw. */
static int read_passwords(pv_conf_ctx_t *cx, const pv_ssl_file_t *f, passwords_t *pw)
{
    if (!f)
        return PV_OK;
    char err[512];
    pw->buf = pv_file_read(f->path, 64 * 1024, &pw->len, err, sizeof(err));
    if (!pw->buf)
        return pv_conf_error(cx, &f->src, "%s", err);
    return PV_OK;
}

void *pv_conf_ssl_load_key(pv_conf_ctx_t *cx, const pv_ssl_file_t *f, const pv_ssl_file_t *password_file)
{
    passwords_t pw = {0};
    if (read_passwords(cx, password_file, &pw) != PV_OK)
        return NULL;
    EVP_PKEY *k = load_key(cx, f, &pw);
    free(pw.buf);
    return k;
}

/* The certificate, then its chain, as ngx_ssl_certificate() reads them;
 * *leaf keeps a reference to the certificate. */
static int load_cert(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_file_t *f, EVP_MD_CTX *sid, X509 **leaf)
{
    char m[600];
    BIO *bio = open_pem(f->path);
    if (!bio) {
        snprintf(m, sizeof(m), "cannot load certificate \"%s\": BIO_new_file() failed", f->path);
        return ssl_error(cx, &f->src, m);
    }
    X509 *x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (!x) {
        BIO_free(bio);
        snprintf(m, sizeof(m), "cannot load certificate \"%s\": PEM_read_bio_X509_AUX() failed", f->path);
        return ssl_error(cx, &f->src, m);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    if (X509_digest(x, EVP_sha256(), md, &mdlen))
        EVP_DigestUpdate(sid, md, mdlen);
    if (!SSL_CTX_use_certificate(ctx, x)) {
        X509_free(x);
        BIO_free(bio);
        snprintf(m, sizeof(m), "SSL_CTX_use_certificate(\"%s\") failed", f->path);
        return ssl_error(cx, &f->src, m);
    }
    *leaf = x;
    SSL_CTX_clear_chain_certs(ctx);
    X509 *ca;
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (!SSL_CTX_add0_chain_cert(ctx, ca)) {
            X509_free(ca);
            X509_free(x);
            *leaf = NULL;
            BIO_free(bio);
            snprintf(m, sizeof(m), "SSL_CTX_add0_chain_cert(\"%s\") failed", f->path);
            return ssl_error(cx, &f->src, m);
        }
    }
    /* the end of the file ends the chain */
    ERR_clear_error();
    BIO_free(bio);
    return PV_OK;
}

/* leafs[i]: certs[i] as ctx holds it (no reference of its own). */
static int load_certs(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c, EVP_MD_CTX *sid, X509 **leafs)
{
    passwords_t pw = {0};
    if (read_passwords(cx, c->password_file, &pw) != PV_OK)
        return PV_ERR;
    int rc = PV_OK;
    for (int i = 0; i < c->ncerts && rc == PV_OK; i++) {
        if (i >= c->nkeys) {
            rc = pv_conf_error(cx, &c->certs[i].src, "no \"ssl_certificate_key\" is defined for "
                               "certificate \"%s\"", c->certs[i].path);
            break;
        }
        X509 *x = NULL;
        if (load_cert(cx, ctx, &c->certs[i], sid, &x) != PV_OK) {
            rc = PV_ERR;
            break;
        }
        EVP_PKEY *k = load_key(cx, &c->keys[i], &pw);
        if (!k) {
            X509_free(x);
            rc = PV_ERR;
            break;
        }
        /* a key of another type than its certificate would go to another
         * slot unnoticed: each pair is checked as a pair */
        int ok = X509_check_private_key(x, k) && SSL_CTX_use_PrivateKey(ctx, k);
        leafs[i] = x;
        X509_free(x);
        if (!ok) {
            char m[600];
            snprintf(m, sizeof(m), "SSL_CTX_use_PrivateKey(\"%s\") failed", c->keys[i].path);
            rc = ssl_error(cx, &c->keys[i].src, m);
        }
        EVP_PKEY_free(k);
    }
    free(pw.buf);
    return rc;
}

void pv_conf_ssl_apply_protocols(void *sctx, int protocols)
{
    static const struct {
        int bit;
        uint64_t op;
    } map[] = {
        {PV_SSL_SSLv3, SSL_OP_NO_SSLv3},     {PV_SSL_TLSv1, SSL_OP_NO_TLSv1},
        {PV_SSL_TLSv1_1, SSL_OP_NO_TLSv1_1}, {PV_SSL_TLSv1_2, SSL_OP_NO_TLSv1_2},
        {PV_SSL_TLSv1_3, SSL_OP_NO_TLSv1_3},
    };
    SSL_CTX *ctx = sctx;
    /* the library's own floor is lifted so that the list alone decides */
    SSL_CTX_set_min_proto_version(ctx, 0);
    SSL_CTX_set_max_proto_version(ctx, 0);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                                   SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3);
    for (size_t i = 0; i < PV_NELEM(map); i++)
        if (!(protocols & map[i].bit))
            SSL_CTX_set_options(ctx, map[i].op);
}

static int set_protocols(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c)
{
    pv_conf_ssl_apply_protocols(ctx, c->protocols);
    if (!(c->protocols & ~PV_SSL_SSLv2))
        return pv_conf_error(cx, &c->protocols_src, "no protocol left in \"ssl_protocols\"");
    return PV_OK;
}

static int set_ciphers(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c)
{
    char m[600];
    if (!SSL_CTX_set_cipher_list(ctx, c->ciphers)) {
        snprintf(m, sizeof(m), "SSL_CTX_set_cipher_list(\"%s\") failed", c->ciphers);
        return ssl_error(cx, &c->ciphers_src, m);
    }
    if (c->prefer_server_ciphers)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (strcmp(c->ecdh_curve, "auto") != 0 && !SSL_CTX_set1_curves_list(ctx, c->ecdh_curve)) {
        snprintf(m, sizeof(m), "SSL_CTX_set1_curves_list(\"%s\") failed", c->ecdh_curve);
        return ssl_error(cx, &c->ecdh_src, m);
    }
    if (c->dhparam) {
        BIO *bio = BIO_new_file(c->dhparam->path, "r");
        if (!bio) {
            snprintf(m, sizeof(m), "BIO_new_file(\"%s\") failed", c->dhparam->path);
            return ssl_error(cx, &c->dhparam->src, m);
        }
        EVP_PKEY *dh = PEM_read_bio_Parameters(bio, NULL);
        BIO_free(bio);
        if (!dh || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
            EVP_PKEY_free(dh);
            snprintf(m, sizeof(m), "PEM_read_bio_DHparams(\"%s\") failed", c->dhparam->path);
            return ssl_error(cx, &c->dhparam->src, m);
        }
    }
    return PV_OK;
}

/* NGINX's verify callback: the handshake goes on whatever the result;
 * the request is refused later (495, 496) as the server block says. */
static int verify_cb(int ok, X509_STORE_CTX *sctx)
{
    PV_UNUSED(ok);
    PV_UNUSED(sctx);
    return 1;
}

static int set_verify(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c, EVP_MD_CTX *sid)
{
    char m[600];
    if (c->trusted) {
        /* ssl_trusted_certificate: CAs to verify with, never sent to clients */
        const char *path = c->trusted->path;
        EVP_DigestUpdate(sid, path, strlen(path));
        if (!SSL_CTX_load_verify_locations(ctx, path, NULL)) {
            snprintf(m, sizeof(m), "SSL_CTX_load_verify_locations(\"%s\") failed", path);
            return ssl_error(cx, &c->trusted->src, m);
        }
    }
    if (c->verify_client == PV_VERIFY_OFF)
        return PV_OK;
    if (!c->client_certificate && c->verify_client != PV_VERIFY_OPTIONAL_NO_CA)
        return pv_conf_error(cx, &c->verify_src, "no ssl_client_certificate for ssl_verify_client");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    SSL_CTX_set_verify_depth(ctx, c->verify_depth);
    if (c->client_certificate) {
        const char *path = c->client_certificate->path;
        EVP_DigestUpdate(sid, path, strlen(path));
        if (!SSL_CTX_load_verify_locations(ctx, path, NULL)) {
            snprintf(m, sizeof(m), "SSL_CTX_load_verify_locations(\"%s\") failed", path);
            return ssl_error(cx, &c->client_certificate->src, m);
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
        if (!names) {
            snprintf(m, sizeof(m), "SSL_load_client_CA_file(\"%s\") failed", path);
            return ssl_error(cx, &c->client_certificate->src, m);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    return pv_conf_ssl_load_crl(cx, ctx, c->crl);
}

int pv_conf_ssl_load_crl(pv_conf_ctx_t *cx, void *sctx, const pv_ssl_file_t *crl)
{
    if (!crl)
        return PV_OK;
    char m[600];
    X509_STORE *store = SSL_CTX_get_cert_store(sctx);
    X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
    if (!lookup || !X509_load_crl_file(lookup, crl->path, X509_FILETYPE_PEM)) {
        snprintf(m, sizeof(m), "X509_LOOKUP_load_file(\"%s\") failed", crl->path);
        return ssl_error(cx, &crl->src, m);
    }
    /* every certificate of the chain is checked, as NGINX does */
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return PV_OK;
}

int pv_conf_ssl_commands(pv_conf_ctx_t *cx, void *sctx, const pv_ssl_cmd_t *cmds, int ncmds)
{
    if (ncmds == 0)
        return PV_OK;
    SSL_CONF_CTX *cc = SSL_CONF_CTX_new();
    if (!cc)
        return pv_conf_error(cx, &cmds[0].src, "SSL_CONF_CTX_new() failed");
    /* both roles, as NGINX sets them: a command is refused only when
     * OpenSSL knows it for neither */
    SSL_CONF_CTX_set_flags(cc, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_CLIENT | SSL_CONF_FLAG_SERVER |
                                   SSL_CONF_FLAG_CERTIFICATE | SSL_CONF_FLAG_SHOW_ERRORS);
    SSL_CONF_CTX_set_ssl_ctx(cc, sctx);
    int rc = PV_OK;
    for (int i = 0; i < ncmds && rc == PV_OK; i++) {
        /* a file or directory named relative to the prefix, as any other */
        int type = SSL_CONF_cmd_value_type(cc, cmds[i].name);
        const char *v = cmds[i].value;
        if (type == SSL_CONF_TYPE_FILE || type == SSL_CONF_TYPE_DIR)
            v = pv_conf_full_path(cx, v);
        if (SSL_CONF_cmd(cc, cmds[i].name, v) <= 0) {
            char m[600];
            snprintf(m, sizeof(m), "SSL_CONF_cmd(\"%s\", \"%s\") failed", cmds[i].name, cmds[i].value);
            rc = ssl_error(cx, &cmds[i].src, m);
        }
    }
    if (rc == PV_OK && !SSL_CONF_CTX_finish(cc))
        rc = ssl_error(cx, &cmds[0].src, "SSL_CONF_finish() failed");
    SSL_CONF_CTX_free(cc);
    return rc;
}

static int set_ticket_keys(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c)
{
    if (c->nticket_keys == 0)
        return PV_OK;
    pv_tls_ticket_key_t keys[16];
    if (c->nticket_keys > (int)PV_NELEM(keys))
        return pv_conf_error(cx, &c->ticket_keys[PV_NELEM(keys)].src, "too many \"ssl_session_ticket_key\"");
    int rc = PV_OK;
    for (int i = 0; i < c->nticket_keys && rc == PV_OK; i++) {
        const pv_ssl_file_t *f = &c->ticket_keys[i];
        char err[512];
        size_t len;
        char *buf = pv_file_read(f->path, 4096, &len, err, sizeof(err));
        if (!buf)
            return pv_conf_error(cx, &f->src, "%s", err);
        if (pv_tls_ticket_key_parse((const unsigned char *)buf, len, &keys[i]) != PV_OK)
            rc = pv_conf_error(cx, &f->src, "\"%s\" must be 48 or 80 bytes", f->path);
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    if (rc == PV_OK && pv_tls_ticket_keys_attach(ctx, keys, c->nticket_keys) != PV_OK)
        rc = pv_conf_error(cx, &c->ticket_keys[0].src, "out of memory for ticket keys");
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

/* The issuer of cert: in the certificate's chain, else in the store. */
static X509 *find_issuer(SSL_CTX *ctx, X509 *cert)
{
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_check_issued(x, cert) == X509_V_OK) {
            X509_up_ref(x);
            return x;
        }
    }
    X509 *issuer = NULL;
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    if (sc && X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), NULL, NULL) == 1 &&
        X509_STORE_CTX_get1_issuer(&issuer, sc, cert) != 1)
        issuer = NULL;
    X509_STORE_CTX_free(sc);
    return issuer;
}

/* ssl_stapling_verify: does the response verify for one of the
 * certificates (signature by the issuer or a delegate the chain and the
 * trusted CAs vouch for, status good, within its validity)? NULL when it
 * does, else why not. */
static const char *stapling_check(SSL_CTX *ctx, OCSP_RESPONSE *resp)
{
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        return OCSP_response_status_str(OCSP_response_status(resp));
    OCSP_BASICRESP *basic = OCSP_response_get1_basic(resp);
    if (!basic)
        return "no basic response";
    const char *why = "no certificate it is for";
    for (int r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); r == 1;
         r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        X509 *cert = SSL_CTX_get0_certificate(ctx), *issuer = cert ? find_issuer(ctx, cert) : NULL;
        if (!issuer)
            continue;
        STACK_OF(X509) *chain = NULL;
        SSL_CTX_get0_chain_certs(ctx, &chain);
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
        int status = -1;
        ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
        if (!id || !OCSP_resp_find_status(basic, id, &status, NULL, NULL, &thisupd, &nextupd)) {
            why = "no certificate it is for";
        } else if (OCSP_basic_verify(basic, chain, SSL_CTX_get_cert_store(ctx), 0) != 1) {
            why = "its signature does not verify";
        } else if (status != V_OCSP_CERTSTATUS_GOOD) {
            why = OCSP_cert_status_str(status);
        } else if (!OCSP_check_validity(thisupd, nextupd, 300, -1)) {
            why = "it is out of its validity";
        } else {
            why = NULL;
        }
        OCSP_CERTID_free(id);
        X509_free(issuer);
        if (!why)
            break;
    }
    ERR_clear_error();
    OCSP_BASICRESP_free(basic);
    return why;
}

/* ssl_stapling with ssl_stapling_file: the response is read at load
 * (and on reload) and must parse; nothing is fetched. */
static int stapling_file(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c)
{
    const pv_ssl_file_t *f = c->stapling_file;
    char err[512], m[600];
    size_t len;
    char *buf = pv_file_read(f->path, 1 << 20, &len, err, sizeof(err));
    if (!buf)
        return pv_conf_error(cx, &f->src, "%s", err);
    const unsigned char *p = (const unsigned char *)buf;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    int rc = PV_OK;
    if (!resp) {
        snprintf(m, sizeof(m), "d2i_OCSP_RESPONSE_bio(\"%s\") failed", f->path);
        rc = ssl_error(cx, &f->src, m);
    } else if (pv_stapling_attach_file(ctx, (const unsigned char *)buf, len) != PV_OK) {
        rc = pv_conf_error(cx, &f->src, "out of memory for \"%s\"", f->path);
    } else if (c->stapling_verify) {
        /* NGINX staples a file's response unchecked; say when it would
         * not pass the checks of a fetched one */
        const char *why = stapling_check(ctx, resp);
        if (why)
            pv_log(PV_LOG_WARN, "the OCSP response in \"%s\" does not verify (%s), stapled as read in %s:%d",
                   f->path, why, f->src.file, f->src.line);
    }
    OCSP_RESPONSE_free(resp);
    free(buf);
    return rc;
}

/* "ssl_stapling" ignored for one certificate: warned, as NGINX does,
 * and the config stands. */
static int stapling_ignored(const pv_ssl_conf_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int stapling_ignored(const pv_ssl_conf_t *c, const char *fmt, ...)
{
    char m[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    pv_log(PV_LOG_WARN, "\"ssl_stapling\" ignored, %s in %s:%d", m, c->stapling_src.file, c->stapling_src.line);
    return PV_OK;
}

/* The responder of one certificate (ssl_stapling_responder, else the
 * first OCSP URL of its AIA), parsed and, for a name, resolved now as
 * ngx_parse_url() does; the fetch waits for the first handshake. */
static int stapling_cert(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_server_t *s, X509 *cert, const char *name)
{
    const pv_ssl_conf_t *c = &s->ssl;
    SSL_CTX_select_current_cert(ctx, cert);
    X509 *issuer = find_issuer(ctx, cert);
    ERR_clear_error();
    if (!issuer)
        return stapling_ignored(c, "issuer certificate not found for certificate \"%s\"", name);
    char url[PV_OCSP_URI_MAX + PV_OCSP_HOST_MAX + 16];
    STACK_OF(OPENSSL_STRING) *aia = c->stapling_responder ? NULL : X509_get1_ocsp(cert);
    const char *first = c->stapling_responder ? c->stapling_responder : sk_OPENSSL_STRING_value(aia, 0);
    snprintf(url, sizeof(url), "%s", first ? first : "");
    X509_email_free(aia);
    int rc = PV_OK;
    pv_ocsp_url_t *u = pv_arena_calloc(cx->a, sizeof(*u));
    const char *why = NULL;
    pv_conf_addr_t addr;
    if (!first) {
        rc = stapling_ignored(c, "no OCSP responder URL in the certificate \"%s\"", name);
    } else if (pv_ocsp_url_parse(url, strlen(url), u, &why) != PV_OK) {
        rc = stapling_ignored(c, "%s in OCSP responder \"%s\" in the certificate \"%s\"", why,
                              strncasecmp(url, "http://", 7) == 0 ? url + 7 : url, name);
    } else if (pv_conf_resolve(cx, u->name, u->port, &addr, 1) != 1) {
        rc = stapling_ignored(c, "host not found in OCSP responder \"%s\" in the certificate \"%s\"", url + 7,
                              name);
    } else {
        struct in6_addr a6;
        pv_stapling_conf_t sc = {
            .url = u, .name = name, .verify = c->stapling_verify, .addrlen = addr.len,
            .literal = inet_pton(AF_INET, u->name, &a6) == 1 || inet_pton(AF_INET6, u->name, &a6) == 1,
            .resolver = s->conf.resolver, .resolver_timeout = s->conf.resolver_timeout,
        };
        sc.addr = &addr.ss;
        if (pv_stapling_attach(ctx, cert, issuer, &sc) != PV_OK)
            rc = ssl_error(cx, &c->stapling_src, "cannot set up \"ssl_stapling\"");
    }
    X509_free(issuer);
    return rc;
}

/* ssl_stapling: a file's response, or each certificate's fetched one. */
static int set_stapling(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_server_t *s, X509 *const *leafs)
{
    const pv_ssl_conf_t *c = &s->ssl;
    if (!c->stapling)
        return PV_OK;
    if (c->stapling_file)
        return stapling_file(cx, ctx, c);
    for (int i = 0; i < c->ncerts; i++)
        if (leafs[i] && stapling_cert(cx, ctx, s, leafs[i], c->certs[i].path) != PV_OK)
            return PV_ERR;
    return PV_OK;
}

/* ssl_ocsp: the checks of client certificates after each handshake; a
 * responder named by ssl_ocsp_responder is parsed and resolved now, as
 * NGINX does, and the cache is joined by name. */
static int set_ocsp(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_server_t *s)
{
    const pv_ssl_conf_t *c = &s->ssl;
    if (c->ocsp == PV_SSL_OCSP_OFF)
        return PV_OK;
    if (c->verify_client == PV_VERIFY_OPTIONAL_NO_CA)
        return pv_conf_error(cx, &c->ocsp_src, "\"ssl_ocsp\" is incompatible with \"ssl_verify_client "
                             "optional_no_ca\"");
    pv_ocsp_check_conf_t oc = {
        .mode = c->ocsp == PV_SSL_OCSP_LEAF ? PV_OCSP_LEAF : PV_OCSP_ON,
        .resolver = s->conf.resolver, .resolver_timeout = s->conf.resolver_timeout,
    };
    pv_conf_addr_t addr;
    const char *url = c->ocsp_responder, *why = NULL;
    if (url) {
        const pv_conf_src_t *src = &c->ocsp_responder_src;
        pv_ocsp_url_t *u = pv_arena_calloc(cx->a, sizeof(*u));
        if (strncasecmp(url, "http://", 7) != 0)
            return pv_conf_error(cx, src, "invalid URL prefix in OCSP responder \"%s\" in \"ssl_ocsp_responder\"",
                                 url);
        if (pv_ocsp_url_parse(url, strlen(url), u, &why) != PV_OK)
            return pv_conf_error(cx, src, "%s in OCSP responder \"%s\" in \"ssl_ocsp_responder\"", why, url + 7);
        if (pv_conf_resolve(cx, u->name, u->port, &addr, 1) != 1)
            return pv_conf_error(cx, src, "host not found in OCSP responder \"%s\" in \"ssl_ocsp_responder\"",
                                 url + 7);
        struct in6_addr a6;
        oc.url = u;
        oc.addr = &addr.ss;
        oc.addrlen = addr.len;
        oc.literal = inet_pton(AF_INET, u->name, &a6) == 1 || inet_pton(AF_INET6, u->name, &a6) == 1;
    }
    if (c->ocsp_cache && !(oc.cache = pv_ocsp_cache_get(c->ocsp_cache_name, (size_t)c->ocsp_cache_size)))
        return pv_conf_error(cx, &c->ocsp_cache_src, "out of memory for OCSP cache \"%s\"", c->ocsp_cache_name);
    if (pv_ocsp_check_attach(ctx, &oc) != PV_OK) {
        pv_ocsp_cache_unref(oc.cache);
        return pv_conf_error(cx, &c->ocsp_src, "out of memory for \"ssl_ocsp\"");
    }
    return PV_OK;
}

/* ssl_session_cache, ssl_session_timeout, ssl_session_tickets and the
 * ticket keys, as ngx_ssl_session_cache() sets them. */
static int set_sessions(pv_conf_ctx_t *cx, SSL_CTX *ctx, const pv_ssl_conf_t *c)
{
    if (!c->session_tickets)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (c->early_data) {
        /* replays are the application's to refuse ($ssl_early_data, 425),
         * as with NGINX: OpenSSL's own check would need a stored session */
        SSL_CTX_set_max_early_data(ctx, 16384);
        SSL_CTX_set_options(ctx, SSL_OP_NO_ANTI_REPLAY);
    }
    SSL_CTX_set_timeout(ctx, (long)(c->session_timeout / 1000));
    switch (c->session_cache) {
    case PV_SSL_CACHE_OFF:
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        break;
    case PV_SSL_CACHE_NONE:
        /* sessions are offered but not stored: tickets resume them */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_cache_size(ctx, 1);
        break;
    default: {
        long mode = SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_AUTO_CLEAR;
        if (c->builtin_size == 0)
            mode |= SSL_SESS_CACHE_NO_INTERNAL;
        else if (c->builtin_size > 0)
            SSL_CTX_sess_set_cache_size(ctx, (long)c->builtin_size);
        SSL_CTX_set_session_cache_mode(ctx, mode);
        if (c->cache_name) {
            pv_tls_cache_t *sc = pv_tls_cache_get(c->cache_name, (size_t)c->cache_size);
            int ok = sc && pv_tls_cache_attach(ctx, sc) == PV_OK;
            pv_tls_cache_unref(sc);
            if (!ok)
                return pv_conf_error(cx, &c->cache_src, "out of memory for session cache \"%s\"",
                                     c->cache_name);
            /* tickets sealed with the cache's keys, rotated, as NGINX 1.23.2 */
            if (c->session_tickets && c->nticket_keys == 0)
                pv_tls_cache_ticket_keys(ctx);
        }
        break;
    }
    }
    return set_ticket_keys(cx, ctx, c);
}

/* ALPN: h2 where the server has `http2 on` or a `listen ... http2`,
 * else http/1.1; a client that offers neither is refused with the
 * no_application_protocol alert, as NGINX (1.21.4+) refuses it. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    static const unsigned char with_h2[] = "\x02h2\x08http/1.1";
    static const unsigned char h1_only[] = "\x08http/1.1";
    const pv_server_t *s = arg;
    int h2 = s->http2 == 1;
    for (int i = 0; i < s->nlistens && !h2; i++)
        h2 = s->listens[i].http2;
    PV_UNUSED(ssl);
    const unsigned char *ours = h2 ? with_h2 : h1_only;
    unsigned int n = h2 ? sizeof(with_h2) - 1 : sizeof(h1_only) - 1;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, n, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* Certificates with variables: each handshake names and loads them
 * (http/ssl.c); the session id context takes their names as written, so
 * that servers naming other files do not resume each other's sessions. */
static int set_dynamic(pv_conf_ctx_t *cx, SSL_CTX *ctx, pv_server_t *s, EVP_MD_CTX *sid)
{
    pv_ssl_conf_t *c = &s->ssl;
    for (int i = 0; i < c->ncerts; i++) {
        if (i >= c->nkeys)
            return pv_conf_error(cx, &c->certs[i].src, "no \"ssl_certificate_key\" is defined for "
                                 "certificate \"%s\"", c->certs[i].path);
        EVP_DigestUpdate(sid, c->certs[i].path, strlen(c->certs[i].path) + 1);
    }
    passwords_t pw = {0};
    if (read_passwords(cx, c->password_file, &pw) != PV_OK)
        return PV_ERR;
    if (pw.buf) {
        char *p = pv_arena_alloc(cx->a, pw.len + 1);
        memcpy(p, pw.buf, pw.len);
        p[pw.len] = 0;
        c->passwords = p;
        c->passwords_len = pw.len;
        OPENSSL_cleanse(pw.buf, pw.len);
        free(pw.buf);
    }
    pv_tls_ctx_cert_cb(ctx);
    return PV_OK;
}

int pv_conf_ssl_build(pv_conf_ctx_t *cx, pv_server_t *s)
{
    pv_ssl_conf_t *c = &s->ssl;
    if (c->ncerts == 0 && !c->reject_handshake)
        return PV_OK;
    SSL_CTX *ctx = pv_tls_ctx_new();
    EVP_MD_CTX *sid = EVP_MD_CTX_new();
    if (!ctx || !sid || !EVP_DigestInit_ex(sid, EVP_sha256(), NULL)) {
        SSL_CTX_free(ctx);
        EVP_MD_CTX_free(sid);
        return ssl_error(cx, &s->src, "SSL_CTX_new() failed");
    }
    c->ctx = ctx;
    pv_conf_add_cleanup(cx, ctx_free, ctx);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    if (c->ncerts == 0) {
        /* ssl_reject_handshake without certificates: the ClientHello is
         * answered with an alert before any certificate is needed */
        EVP_MD_CTX_free(sid);
        return set_protocols(cx, ctx, c);
    }
    X509 **leafs = pv_arena_calloc(cx->a, sizeof(*leafs) * (size_t)c->ncerts);
    c->dynamic = 0;
    for (int i = 0; i < c->ncerts || i < c->nkeys; i++)
        c->dynamic |= (i < c->ncerts && c->certs[i].cv) || (i < c->nkeys && c->keys[i].cv);
    int rc = c->dynamic ? set_dynamic(cx, ctx, s, sid) : load_certs(cx, ctx, c, sid, leafs);
    if (rc == PV_OK)
        rc = set_protocols(cx, ctx, c);
    if (rc == PV_OK)
        rc = set_ciphers(cx, ctx, c);
    if (rc == PV_OK)
        rc = set_verify(cx, ctx, c, sid);
    if (rc == PV_OK)
        rc = set_ocsp(cx, ctx, s);
    if (rc == PV_OK) {
        rc = set_sessions(cx, ctx, c);
    }
    if (rc == PV_OK)
        rc = set_stapling(cx, ctx, s, leafs);
    if (rc == PV_OK) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_DigestFinal_ex(sid, md, &mdlen);
        SSL_CTX_set_session_id_context(ctx, md, mdlen > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH : mdlen);
        rc = pv_conf_ssl_commands(cx, ctx, c->cmds, c->ncmds);
    }
    EVP_MD_CTX_free(sid);
    return rc;
}
