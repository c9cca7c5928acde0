/* Variables of the connection's TLS session ($https, $ssl_*), in NGINX's
 * formats (ngx_event_openssl.c). On a connection that is not TLS, $https
 * is empty and the $ssl_ ones are not found ("-" in the access log). */
#include "vars.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../core/ocsp_check.h"
#include "../core/tls.h"
#include "request.h"

static void put_hex(pv_var_out_t *o, const unsigned char *p, size_t n);

static SSL *conn_ssl(const pv_request_t *r)
{
    return r->xprt ? pv_tls_ssl(r->xprt) : NULL;
}

static int cstr_value(const char *s, pv_str_t *v)
{
    *v = (pv_str_t){s ? s : "", s ? strlen(s) : 0};
    return PV_VAL_FOUND;
}

static int https_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return cstr_value(conn_ssl(r) ? "on" : "", v);
}

static int ssl_protocol_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    return ssl ? cstr_value(SSL_get_version(ssl), v) : PV_VAL_MISSING;
}

static int ssl_cipher_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    return ssl ? cstr_value(SSL_get_cipher_name(ssl), v) : PV_VAL_MISSING;
}

/* The client's offered suites, as NGINX lists them: names joined by ':',
 * a suite OpenSSL does not know as 0x and its two bytes in hex. */
static int ssl_ciphers_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    if (!ssl)
        return PV_VAL_MISSING;
    const unsigned char *raw = NULL;
    size_t n = SSL_get0_raw_cipherlist(ssl, &raw);
    for (size_t i = 0; raw && i + 1 < n; i += 2) {
        if (i)
            pv_var_put(o, ":", 1);
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, raw + i);
        const char *name = c ? SSL_CIPHER_get_name(c) : NULL;
        if (name) {
            pv_var_put(o, name, strlen(name));
        } else {
            pv_var_put(o, "0x", 2);
            put_hex(o, raw + i, 2);
        }
    }
    return PV_VAL_WRITTEN;
}

/* A group's name as NGINX writes it: OpenSSL's short name, or 0x and its
 * code for one OpenSSL does not know. */
static void put_group(pv_var_out_t *o, int nid)
{
    const char *name = (nid & TLSEXT_nid_unknown) ? NULL : OBJ_nid2sn(nid);
    if (name) {
        pv_var_put(o, name, strlen(name));
        return;
    }
    char b[8];
    int n = snprintf(b, sizeof(b), "0x%04x", (unsigned)nid & 0xffff);
    pv_var_put(o, b, n > 0 ? (size_t)n : 0);
}

/* The group of the key exchange; empty when there was none. */
static int ssl_curve_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    if (!ssl)
        return PV_VAL_MISSING;
    int nid = SSL_get_negotiated_group(ssl);
    if (nid != NID_undef)
        put_group(o, nid);
    return PV_VAL_WRITTEN;
}

/* The groups the client supports, joined by ':'. */
static int ssl_curves_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    if (!ssl)
        return PV_VAL_MISSING;
    int n = SSL_get1_curves(ssl, NULL);
    int few[64];
    int *groups = n > (int)PV_NELEM(few) ? malloc((size_t)n * sizeof(int)) : few;
    if (n <= 0 || !groups)
        return cstr_value("", v);
    SSL_get1_curves(ssl, groups);
    for (int i = 0; i < n; i++) {
        if (i)
            pv_var_put(o, ":", 1);
        put_group(o, groups[i]);
    }
    if (groups != few)
        free(groups);
    return PV_VAL_WRITTEN;
}

static int ssl_server_name_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    return ssl ? cstr_value(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), v) : PV_VAL_MISSING;
}

static int ssl_session_reused_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    return ssl ? cstr_value(SSL_session_reused(ssl) ? "r" : ".", v) : PV_VAL_MISSING;
}

/* "1" while the handshake is not over: the request came as early data
 * (NGINX's test with OpenSSL). */
static int ssl_early_data_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    return ssl ? cstr_value(SSL_is_init_finished(ssl) ? "" : "1", v) : PV_VAL_MISSING;
}

static void put_hex(pv_var_out_t *o, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char b[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        pv_var_put(o, b, 2);
    }
}

static int ssl_session_id_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    SSL *ssl = conn_ssl(r);
    SSL_SESSION *s = ssl ? SSL_get_session(ssl) : NULL;
    if (!ssl)
        return PV_VAL_MISSING;
    unsigned int n = 0;
    const unsigned char *id = s ? SSL_SESSION_get_id(s, &n) : NULL;
    put_hex(o, id, id ? n : 0);
    return PV_VAL_WRITTEN;
}

/* ---- client certificates ----------------------------------------------- */

/* The peer's certificate; *v is set empty when there is none (found). */
static X509 *client_cert(pv_request_t *r, pv_str_t *v, int *rc)
{
    SSL *ssl = conn_ssl(r);
    if (!ssl) {
        *rc = PV_VAL_MISSING;
        return NULL;
    }
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x)
        *rc = cstr_value("", v);
    return x;
}

/* Whatever a BIO collected, written out. */
static int put_bio(pv_var_out_t *o, BIO *b)
{
    char *p;
    long n = b ? BIO_get_mem_data(b, &p) : 0;
    if (n > 0)
        pv_var_put(o, p, (size_t)n);
    BIO_free(b);
    return PV_VAL_WRITTEN;
}

static int ssl_client_verify_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    int rc;
    if (!client_cert(r, v, &rc))
        return rc == PV_VAL_MISSING ? rc : cstr_value("NONE", v);
    long res = SSL_get_verify_result(conn_ssl(r));
    /* a certificate that verified may yet fail its OCSP checks */
    const char *why = res == X509_V_OK ? pv_ocsp_check_failure(conn_ssl(r)) : X509_verify_cert_error_string(res);
    if (!why)
        return cstr_value("SUCCESS", v);
    pv_var_put(o, "FAILED:", 7);
    pv_var_put(o, why, strlen(why));
    return PV_VAL_WRITTEN;
}

static int dn(pv_request_t *r, pv_var_out_t *o, pv_str_t *v, int issuer)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    BIO *b = BIO_new(BIO_s_mem());
    if (b)
        X509_NAME_print_ex(b, issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253);
    return put_bio(o, b);
}

/* NGINX's legacy form of a name: OpenSSL's one-line "/O=Example/CN=a". */
static int dn_legacy(pv_request_t *r, pv_var_out_t *o, pv_str_t *v, int issuer)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    char *line = X509_NAME_oneline(issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), NULL, 0);
    if (line)
        pv_var_put(o, line, strlen(line));
    OPENSSL_free(line);
    return PV_VAL_WRITTEN;
}

static int ssl_client_s_dn_legacy_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                     pv_str_t *v)
{
    return dn_legacy(r, o, v, 0);
}

static int ssl_client_i_dn_legacy_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                     pv_str_t *v)
{
    return dn_legacy(r, o, v, 1);
}

static int ssl_client_s_dn_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return dn(r, o, v, 0);
}

static int ssl_client_i_dn_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return dn(r, o, v, 1);
}

static int ssl_client_serial_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    BIO *b = BIO_new(BIO_s_mem());
    if (b)
        i2a_ASN1_INTEGER(b, X509_get_serialNumber(x));
    return put_bio(o, b);
}

static int ssl_client_fingerprint_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                     pv_str_t *v)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(x, EVP_sha1(), md, &n))
        n = 0;
    put_hex(o, md, n);
    return PV_VAL_WRITTEN;
}

enum { CERT_RAW, CERT_TABBED, CERT_ESCAPED };

/* The PEM of the client's certificate: as is, with a tab after each
 * inner line break ($ssl_client_cert), or percent-encoded. */
static int cert(pv_request_t *r, pv_var_out_t *o, pv_str_t *v, int form)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_X509(b, x))
        return put_bio(o, NULL);
    if (form == CERT_RAW)
        return put_bio(o, b);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    if (form == CERT_TABBED && n > 0 && p[n - 1] == '\n')
        n--;
    static const char hex[] = "0123456789ABCDEF";
    for (long i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (form == CERT_TABBED) {
            pv_var_put(o, p + i, 1);
            if (ch == '\n')
                pv_var_put(o, "\t", 1);
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                   ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            pv_var_put(o, p + i, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            pv_var_put(o, e, 3);
        }
    }
    BIO_free(b);
    return PV_VAL_WRITTEN;
}

static int ssl_client_cert_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return cert(r, o, v, CERT_TABBED);
}

static int ssl_client_raw_cert_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return cert(r, o, v, CERT_RAW);
}

static int ssl_client_escaped_cert_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o,
                                      pv_str_t *v)
{
    return cert(r, o, v, CERT_ESCAPED);
}

static int validity(pv_request_t *r, pv_var_out_t *o, pv_str_t *v, int end)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    BIO *b = BIO_new(BIO_s_mem());
    if (b)
        ASN1_TIME_print(b, end ? X509_get0_notAfter(x) : X509_get0_notBefore(x));
    return put_bio(o, b);
}

static int ssl_client_v_start_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return validity(r, o, v, 0);
}

static int ssl_client_v_end_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    return validity(r, o, v, 1);
}

/* Whole days left; "0" for under a day or expired. */
static int ssl_client_v_remain_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    int rc;
    X509 *x = client_cert(r, v, &rc);
    if (!x)
        return rc;
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        return cstr_value("0", v);
    int64_t left = (int64_t)days * 86400 + secs;
    if (left < 86400)
        return cstr_value("0", v);
    days = (int)(left / 86400);
    int n = snprintf(o->scratch, o->scratchlen, "%d", days);
    *v = (pv_str_t){o->scratch, n > 0 ? (size_t)n : 0};
    return PV_VAL_FOUND;
}

const pv_var_t pv_vars_ssl[] = {
    PV_VAR("https", https_cb, 0),
    PV_VAR("ssl_protocol", ssl_protocol_cb, 0),
    PV_VAR("ssl_cipher", ssl_cipher_cb, 0),
    PV_VAR("ssl_ciphers", ssl_ciphers_cb, 0),
    PV_VAR("ssl_curve", ssl_curve_cb, 0),
    PV_VAR("ssl_curves", ssl_curves_cb, 0),
    PV_VAR("ssl_server_name", ssl_server_name_cb, 0),
    PV_VAR("ssl_session_reused", ssl_session_reused_cb, 0),
    PV_VAR("ssl_session_id", ssl_session_id_cb, 0),
    PV_VAR("ssl_early_data", ssl_early_data_cb, 0),
    PV_VAR("ssl_client_verify", ssl_client_verify_cb, 0),
    PV_VAR("ssl_client_s_dn", ssl_client_s_dn_cb, 0),
    PV_VAR("ssl_client_i_dn", ssl_client_i_dn_cb, 0),
    PV_VAR("ssl_client_s_dn_legacy", ssl_client_s_dn_legacy_cb, 0),
    PV_VAR("ssl_client_i_dn_legacy", ssl_client_i_dn_legacy_cb, 0),
    PV_VAR("ssl_client_serial", ssl_client_serial_cb, 0),
    PV_VAR("ssl_client_fingerprint", ssl_client_fingerprint_cb, 0),
    PV_VAR("ssl_client_cert", ssl_client_cert_cb, 0),
    PV_VAR("ssl_client_raw_cert", ssl_client_raw_cert_cb, 0),
    PV_VAR("ssl_client_escaped_cert", ssl_client_escaped_cert_cb, 0),
    PV_VAR("ssl_client_v_start", ssl_client_v_start_cb, 0),
    PV_VAR("ssl_client_v_end", ssl_client_v_end_cb, 0),
    PV_VAR("ssl_client_v_remain", ssl_client_v_remain_cb, 0),
    PV_VAR_END,
};
