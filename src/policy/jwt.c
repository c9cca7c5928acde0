/* JWT verification with OpenSSL: JWKS loading, compact JWS checks,
 * claim values. See jwt.h for the rules. */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "../core/base64.h"
#include "../core/file.h"

#define JWK_KID_MAX 1024        /* longest kid kept from a key file */
#define JWK_RSA_MIN_BITS 2048   /* RFC 7518 section 3.3 */
#define JWK_RSA_MAX_BITS 16384  /* bounds the cost of one verification */
#define JWK_RSA_E_MAX 8         /* bytes of public exponent accepted (bounds cost) */

/* Algorithm families: which key type and which OpenSSL operation. */
enum { FAM_HMAC = 1, FAM_RSA, FAM_PSS, FAM_EC };
/* Key types of RFC 7518 section 6.1 that can verify a JWS. */
enum { KTY_OCT = 1, KTY_RSA, KTY_EC };
/* The NIST curves of RFC 7518 section 6.2.1.1. */
enum { CRV_P256 = 1, CRV_P384, CRV_P521 };

/* One supported JWS algorithm. */
typedef struct alg_info_s {
    const char *name;               /* "alg" value, case-sensitive */
    pv_jwt_alg_t id;                /* our id */
    uint8_t family;                 /* FAM_* */
    uint8_t crv;                    /* CRV_* for ES algorithms, else 0 */
    size_t hash_len;                /* digest bytes (HMAC minimum key size) */
    const EVP_MD *(*md)(void);      /* the digest */
} alg_info_t;

static const alg_info_t algs[] = {
    {"HS256", PV_JWT_HS256, FAM_HMAC, 0, 32, EVP_sha256},
    {"HS384", PV_JWT_HS384, FAM_HMAC, 0, 48, EVP_sha384},
    {"HS512", PV_JWT_HS512, FAM_HMAC, 0, 64, EVP_sha512},
    {"RS256", PV_JWT_RS256, FAM_RSA, 0, 32, EVP_sha256},
    {"RS384", PV_JWT_RS384, FAM_RSA, 0, 48, EVP_sha384},
    {"RS512", PV_JWT_RS512, FAM_RSA, 0, 64, EVP_sha512},
    {"PS256", PV_JWT_PS256, FAM_PSS, 0, 32, EVP_sha256},
    {"PS384", PV_JWT_PS384, FAM_PSS, 0, 48, EVP_sha384},
    {"PS512", PV_JWT_PS512, FAM_PSS, 0, 64, EVP_sha512},
    {"ES256", PV_JWT_ES256, FAM_EC, CRV_P256, 32, EVP_sha256},
    {"ES384", PV_JWT_ES384, FAM_EC, CRV_P384, 48, EVP_sha384},
    {"ES512", PV_JWT_ES512, FAM_EC, CRV_P521, 64, EVP_sha512},
};

/* One supported curve. */
typedef struct crv_info_s {
    const char *jwk_name;  /* "crv" value */
    const char *group;     /* OpenSSL group name */
    size_t size;           /* coordinate (and R, S) bytes */
} crv_info_t;

static const crv_info_t crvs[] = {
    {"", "", 0},
    {"P-256", "prime256v1", 32},
    {"P-384", "secp384r1", 48},
    {"P-521", "secp521r1", 66},
};

/* One usable key of a set. */
typedef struct jwk_s {
    uint8_t kty;           /* KTY_* */
    uint8_t crv;           /* CRV_* for EC keys */
    pv_jwt_alg_t alg;      /* the key's own "alg", or NONE when any fitting alg may use it */
    int has_kid;           /* the key has a "kid" */
    char *kid;             /* unescaped kid (malloc'd) */
    size_t kid_len;        /* its length */
    unsigned char *secret; /* oct: the HMAC key (malloc'd, wiped on free) */
    size_t secret_len;     /* its length */
    EVP_PKEY *pkey;        /* RSA and EC: the public key */
} jwk_t;

struct pv_jwks_s {
    jwk_t *keys; /* usable keys, in file order */
    size_t n;    /* their number */
};

static const alg_info_t *alg_find(const char *s, size_t len)
{
    for (size_t i = 0; i < PV_NELEM(algs); i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, s, len) == 0)
            return &algs[i];
    return NULL;
}

/* The algorithm named by string node n, NULL if none fits; *none is set
 * when the name is "none" in any letter case. */
static const alg_info_t *alg_of(const pv_json_t *d, const pv_json_node_t *n, int *none)
{
    char buf[16];
    pv_str_t s;
    *none = 0;
    if (!n || n->type != PV_JSON_STRING || pv_json_strlen(d, n) > sizeof(buf) ||
        pv_json_str(d, n, buf, sizeof(buf), &s) != PV_OK)
        return NULL;
    *none = PV_STR_IEQ(s, "none");
    return *none ? NULL : alg_find(s.p, s.len);
}

static const alg_info_t *alg_by_id(pv_jwt_alg_t id)
{
    for (size_t i = 0; i < PV_NELEM(algs); i++)
        if (algs[i].id == id)
            return &algs[i];
    return NULL;
}

const char *pv_jwt_alg_name(pv_jwt_alg_t alg)
{
    const alg_info_t *a = alg_by_id(alg);
    return a ? a->name : "";
}

/* ---- base64url -------------------------------------------------------- */

int pv_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    return pv_b64_decode(in, len, 1, 0, out, cap, outlen);
}

/* ---- key set loading ------------------------------------------------- */

/* Decode the base64url string member `name` of obj into a malloc'd
 * buffer. 0 with *out set, or -1 with msg (absent, not a string, bad). */
static int member_b64(const pv_json_t *d, const pv_json_node_t *obj, const char *name, unsigned char **out,
                      size_t *outlen, char *msg, size_t msglen)
{
    const pv_json_node_t *v = pv_json_get(d, obj, name, strlen(name));
    if (!v || v->type != PV_JSON_STRING) {
        snprintf(msg, msglen, "key has no \"%s\" string", name);
        return -1;
    }
    size_t slen = pv_json_strlen(d, v);
    char *tmp = malloc(slen + 1);
    unsigned char *bin = malloc(slen / 4 * 3 + 3);
    pv_str_t s;
    size_t blen = 0;
    if (!tmp || !bin || pv_json_str(d, v, tmp, slen, &s) != PV_OK ||
        pv_jwt_b64url_decode(s.p, s.len, bin, slen / 4 * 3 + 3, &blen) != PV_OK) {
        snprintf(msg, msglen, "invalid base64url in \"%s\"", name);
        free(tmp);
        free(bin);
        return -1;
    }
    free(tmp);
    *out = bin;
    *outlen = blen;
    return 0;
}

/* EVP_PKEY of an RSA public key from its big-endian n and e. */
static EVP_PKEY *rsa_build(const unsigned char *n, size_t nlen, const unsigned char *e, size_t elen,
                           char *msg, size_t msglen)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (!bld || !bn || !be) {
        snprintf(msg, msglen, "out of memory");
        goto done;
    }
    int bits = BN_num_bits(bn);
    if (bits < JWK_RSA_MIN_BITS || bits > JWK_RSA_MAX_BITS) {
        snprintf(msg, msglen, "RSA key of %d bits (%d to %d allowed)", bits, JWK_RSA_MIN_BITS,
                 JWK_RSA_MAX_BITS);
        goto done;
    }
    if (elen > JWK_RSA_E_MAX || !BN_is_odd(be) || BN_is_one(be)) {
        snprintf(msg, msglen, "invalid RSA exponent \"e\"");
        goto done;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        snprintf(msg, msglen, "invalid RSA key");
    }
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    ERR_clear_error();
    return pkey;
}

/* EVP_PKEY of an EC public key; the point must lie on the curve. */
static EVP_PKEY *ec_build(int crv, const unsigned char *x, const unsigned char *y, char *msg, size_t msglen)
{
    size_t sz = crvs[crv].size;
    unsigned char pub[1 + 2 * 66];
    pub[0] = 0x04; /* uncompressed point */
    memcpy(pub + 1, x, sz);
    memcpy(pub + 1 + sz, y, sz);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crvs[crv].group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * sz) ||
        !(params = OSSL_PARAM_BLD_to_param(bld)) || !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
        EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0 ||
        !(chk = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) || EVP_PKEY_public_check(chk) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        snprintf(msg, msglen, "invalid EC key (point not on curve %s)", crvs[crv].jwk_name);
    }
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ERR_clear_error();
    return pkey;
}

static void jwk_clear(jwk_t *k)
{
    free(k->kid);
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
}

/* The oct key material. */
static int jwk_oct(const pv_json_t *d, const pv_json_node_t *obj, jwk_t *k, char *msg, size_t msglen)
{
    if (member_b64(d, obj, "k", &k->secret, &k->secret_len, msg, msglen) != 0)
        return -1;
    if (k->secret_len == 0) {
        snprintf(msg, msglen, "empty \"k\" in oct key");
        return -1;
    }
    return 1;
}

/* The RSA key material. */
static int jwk_rsa(const pv_json_t *d, const pv_json_node_t *obj, jwk_t *k, char *msg, size_t msglen)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    if (member_b64(d, obj, "n", &n, &nlen, msg, msglen) == 0 && member_b64(d, obj, "e", &e, &elen, msg, msglen) == 0)
        k->pkey = rsa_build(n, nlen, e, elen, msg, msglen);
    free(n);
    free(e);
    return k->pkey ? 1 : -1;
}

/* The EC key material; an unknown curve skips the key. */
static int jwk_ec(const pv_json_t *d, const pv_json_node_t *obj, jwk_t *k, char *msg, size_t msglen)
{
    const pv_json_node_t *crv = pv_json_get(d, obj, "crv", 3);
    if (!crv || crv->type != PV_JSON_STRING) {
        snprintf(msg, msglen, "EC key has no \"crv\" string");
        return -1;
    }
    for (int c = CRV_P256; c <= CRV_P521; c++)
        if (pv_json_streq(d, crv, crvs[c].jwk_name, strlen(crvs[c].jwk_name)))
            k->crv = (uint8_t)c;
    if (!k->crv)
        return 0;
    const alg_info_t *pinned = alg_by_id(k->alg);
    if (pinned && pinned->crv != k->crv) {
        snprintf(msg, msglen, "key \"alg\" does not fit curve %s", crvs[k->crv].jwk_name);
        return -1;
    }
    unsigned char *x = NULL, *y = NULL;
    size_t xlen = 0, ylen = 0, sz = crvs[k->crv].size;
    if (member_b64(d, obj, "x", &x, &xlen, msg, msglen) == 0 && member_b64(d, obj, "y", &y, &ylen, msg, msglen) == 0) {
        if (xlen != sz || ylen != sz) /* RFC 7518 section 6.2.1.2: the full coordinate length */
            snprintf(msg, msglen, "EC coordinates must be %zu bytes for %s", sz, crvs[k->crv].jwk_name);
        else
            k->pkey = ec_build(k->crv, x, y, msg, msglen);
    }
    free(x);
    free(y);
    return k->pkey ? 1 : -1;
}

/* One JWK: 1 loaded, 0 skipped (not a signature key we can use), -1
 * error with msg. */
static int jwk_load(const pv_json_t *d, const pv_json_node_t *obj, jwk_t *k, char *msg, size_t msglen)
{
    if (obj->type != PV_JSON_OBJECT) {
        snprintf(msg, msglen, "key is not a JSON object");
        return -1;
    }
    const pv_json_node_t *kty = pv_json_get(d, obj, "kty", 3);
    if (!kty || kty->type != PV_JSON_STRING) {
        snprintf(msg, msglen, "key has no \"kty\" string");
        return -1;
    }
    const pv_json_node_t *use = pv_json_get(d, obj, "use", 3);
    if (use && !pv_json_streq(d, use, "sig", 3))
        return 0;
    const pv_json_node_t *ops = pv_json_get(d, obj, "key_ops", 7);
    if (ops) {
        int verify = 0;
        for (const pv_json_node_t *o = pv_json_first(d, ops); o; o = pv_json_next(d, o))
            verify |= pv_json_streq(d, o, "verify", 6);
        if (!verify)
            return 0;
    }
    const pv_json_node_t *alg = pv_json_get(d, obj, "alg", 3);
    const alg_info_t *pinned = NULL;
    if (alg) {
        if (alg->type != PV_JSON_STRING) {
            snprintf(msg, msglen, "key \"alg\" is not a string");
            return -1;
        }
        int none;
        pinned = alg_of(d, alg, &none);
        if (!pinned)
            return 0; /* an encryption or unsupported algorithm */
        k->alg = pinned->id;
    }
    const pv_json_node_t *kid = pv_json_get(d, obj, "kid", 3);
    if (kid) {
        size_t kl = pv_json_strlen(d, kid);
        pv_str_t s;
        if (kid->type != PV_JSON_STRING || kl > JWK_KID_MAX) {
            snprintf(msg, msglen, "key \"kid\" is not a string of at most %d bytes", JWK_KID_MAX);
            return -1;
        }
        k->kid = malloc(kl + 1);
        if (!k->kid || pv_json_str(d, kid, k->kid, kl, &s) != PV_OK) {
            snprintf(msg, msglen, "out of memory");
            return -1;
        }
        memmove(k->kid, s.p, s.len);
        k->kid_len = s.len;
        k->has_kid = 1;
    }
    int fam = pinned ? pinned->family : 0;
    if (pv_json_streq(d, kty, "oct", 3)) {
        k->kty = KTY_OCT;
        if (fam && fam != FAM_HMAC)
            goto mismatch;
        return jwk_oct(d, obj, k, msg, msglen);
    }
    if (pv_json_streq(d, kty, "RSA", 3)) {
        k->kty = KTY_RSA;
        if (fam && fam != FAM_RSA && fam != FAM_PSS)
            goto mismatch;
        return jwk_rsa(d, obj, k, msg, msglen);
    }
    if (pv_json_streq(d, kty, "EC", 2)) {
        k->kty = KTY_EC;
        if (fam && fam != FAM_EC)
            goto mismatch;
        return jwk_ec(d, obj, k, msg, msglen);
    }
    return 0; /* OKP and others */
mismatch:
    snprintf(msg, msglen, "key \"alg\" %s does not fit its \"kty\"", pinned->name);
    return -1;
}

pv_jwks_t *pv_jwks_load_text(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    /* valid JSON of len bytes has at most (len + 1) / 2 values; an invalid
     * text may count more, and the parser then stops at its first error
     * (open containers add at most the depth limit) */
    size_t cap = PV_MIN(pv_json_count(text, len), (len + 1) / 2 + PV_JWT_DEPTH + 1);
    pv_json_node_t *nodes = malloc((cap ? cap : 1) * sizeof(*nodes));
    pv_jwks_t *ks = calloc(1, sizeof(*ks));
    pv_json_t d;
    char msg[256];
    if (!nodes || !ks) {
        snprintf(err, errlen, "out of memory loading %s", name);
        goto fail;
    }
    if (pv_json_parse(&d, text, len, nodes, cap, PV_JWT_DEPTH) != PV_OK) {
        snprintf(err, errlen, "invalid JSON in key file (%s) in %s:%u", d.err, name,
                 pv_json_line(text, len, d.erroff));
        goto fail;
    }
    const pv_json_node_t *keys = pv_json_get(&d, pv_json_root(&d), "keys", 4);
    if (!keys || keys->type != PV_JSON_ARRAY) {
        snprintf(err, errlen, "key file is not a JSON Web Key Set (no \"keys\" array) in %s:1", name);
        goto fail;
    }
    ks->keys = calloc(keys->count ? keys->count : 1, sizeof(jwk_t));
    if (!ks->keys) {
        snprintf(err, errlen, "out of memory loading %s", name);
        goto fail;
    }
    for (const pv_json_node_t *e = pv_json_first(&d, keys); e; e = pv_json_next(&d, e)) {
        jwk_t *k = &ks->keys[ks->n];
        int rc = jwk_load(&d, e, k, msg, sizeof(msg));
        if (rc < 0) {
            snprintf(err, errlen, "%s in %s:%u", msg, name, pv_json_line(text, len, e->off));
            jwk_clear(k);
            goto fail;
        }
        if (rc == 0)
            jwk_clear(k);
        else
            ks->n++;
    }
    if (ks->n == 0) {
        snprintf(err, errlen, "no usable signature key in %s:%u", name, pv_json_line(text, len, keys->off));
        goto fail;
    }
    free(nodes);
    return ks;
fail:
    free(nodes);
    pv_jwks_free(ks);
    return NULL;
}

pv_jwks_t *pv_jwks_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = pv_file_read(path, PV_JWKS_FILE_MAX, &len, err, errlen);
    if (!text)
        return NULL;
    pv_jwks_t *ks = pv_jwks_load_text(text, len, path, err, errlen);
    free(text);
    return ks;
}

void pv_jwks_free(pv_jwks_t *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++)
        jwk_clear(&ks->keys[i]);
    free(ks->keys);
    free(ks);
}

size_t pv_jwks_count(const pv_jwks_t *ks)
{
    return ks ? ks->n : 0;
}

/* ---- verification ---------------------------------------------------- */

/* Whether key k may check a token signed with a: the kty (and curve) must
 * be the alg's, and a key that names its alg only serves that one. This
 * is what stops algorithm confusion. */
static int key_fits(const jwk_t *k, const alg_info_t *a)
{
    if (k->alg != PV_JWT_ALG_NONE && k->alg != a->id)
        return 0;
    switch (a->family) {
    case FAM_HMAC:
        return k->kty == KTY_OCT && k->secret_len >= a->hash_len;
    case FAM_RSA:
    case FAM_PSS:
        return k->kty == KTY_RSA;
    case FAM_EC:
        return k->kty == KTY_EC && k->crv == a->crv;
    }
    return 0;
}

/* Convert a JWS ECDSA signature (R || S, fixed size) to the DER form
 * OpenSSL verifies; returns the DER length, 0 on failure. */
static size_t ecdsa_der(const unsigned char *sig, size_t half, unsigned char *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    size_t out = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        int n = i2d_ECDSA_SIG(es, NULL);
        if (n > 0 && (size_t)n <= cap) {
            unsigned char *p = der;
            out = (size_t)i2d_ECDSA_SIG(es, &p);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return out;
}

/* Check sig over msg with key k for algorithm a: 1 valid, 0 not. */
static int verify_with(const jwk_t *k, const alg_info_t *a, const unsigned char *msg, size_t mlen,
                       const unsigned char *sig, size_t slen)
{
    if (a->family == FAM_HMAC) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (slen != a->hash_len ||
            !HMAC(a->md(), k->secret, (int)k->secret_len, msg, mlen, mac, &maclen) || maclen != slen)
            return 0;
        return CRYPTO_memcmp(mac, sig, slen) == 0;
    }
    unsigned char der[256];
    if (a->family == FAM_EC) {
        size_t half = crvs[a->crv].size;
        if (slen != 2 * half || !(slen = ecdsa_der(sig, half, der, sizeof(der))))
            return 0;
        sig = der;
    } else if (slen != (size_t)EVP_PKEY_get_size(k->pkey)) {
        return 0;
    }
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int ok = m && EVP_DigestVerifyInit(m, &pc, a->md(), NULL, k->pkey) == 1;
    if (ok && a->family == FAM_PSS) /* RFC 7518 section 3.5: MGF1 with the same hash, salt = hash size */
        ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pc, a->md()) > 0;
    ok = ok && EVP_DigestVerify(m, sig, slen, msg, mlen) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return ok;
}

/* Reserve n bytes aligned to align from the token's memory. */
static void *jwt_take(pv_jwt_t *t, size_t n, size_t align)
{
    uintptr_t base = (uintptr_t)t->mem;
    uintptr_t p = (base + t->used + align - 1) & ~(uintptr_t)(align - 1);
    size_t off = (size_t)(p - base);
    if (off > t->cap || t->cap - off < n)
        return NULL;
    t->used = off + n;
    return t->mem + off;
}

/* Decode a base64url segment and parse it as a JSON object into doc. */
static int segment_json(pv_jwt_t *t, const char *seg, size_t len, pv_json_t *doc, const char *what_b64,
                        const char *what_json, const char *what_obj, const char **error)
{
    size_t max = len / 4 * 3 + 2;
    unsigned char *bin = jwt_take(t, max, 1);
    size_t blen = 0;
    if (!bin) {
        *error = "token too large";
        return PV_ERR;
    }
    if (pv_jwt_b64url_decode(seg, len, bin, max, &blen) != PV_OK) {
        *error = what_b64;
        return PV_ERR;
    }
    t->used = (size_t)((char *)bin - t->mem) + blen;
    /* valid JSON of L bytes has at most (L + 1) / 2 values */
    size_t cnt = pv_json_count((const char *)bin, blen);
    if (cnt == 0 || cnt > (blen + 1) / 2) {
        *error = what_json;
        return PV_ERR;
    }
    pv_json_node_t *nodes = jwt_take(t, cnt * sizeof(*nodes), _Alignof(pv_json_node_t));
    if (!nodes) {
        *error = "token too large";
        return PV_ERR;
    }
    if (pv_json_parse(doc, (const char *)bin, blen, nodes, cnt, PV_JWT_DEPTH) != PV_OK) {
        *error = what_json;
        return PV_ERR;
    }
    if (pv_json_root(doc)->type != PV_JSON_OBJECT) {
        *error = what_obj;
        return PV_ERR;
    }
    return PV_OK;
}

/* The JWS layer: split the token, read the header, pick the keys and check
 * the signature. On success *payload is the (still encoded) payload. */
static int jws_check(const pv_jwks_t *ks, const char *token, size_t len, pv_jwt_t *t, pv_str_t *payload,
                     const char **error)
{
    t->used = 0;
    t->verified = 0;
    t->alg = PV_JWT_ALG_NONE;
    if (len == 0) {
        *error = "empty token";
        return PV_ERR;
    }
    if (len > PV_JWT_TOKEN_MAX) {
        *error = "token too large";
        return PV_ERR;
    }
    size_t dots[5], nd = 0;
    for (size_t i = 0; i < len && nd < 5; i++)
        if (token[i] == '.')
            dots[nd++] = i;
    if (nd == 4) {
        *error = "encrypted tokens (JWE) are not supported";
        return PV_ERR;
    }
    if (nd != 2 || dots[0] == 0 || dots[1] == dots[0] + 1) {
        *error = "malformed token";
        return PV_ERR;
    }
    if (segment_json(t, token, dots[0], &t->header, "malformed header encoding", "malformed header JSON",
                     "header is not a JSON object", error) != PV_OK)
        return PV_ERR;
    const pv_json_node_t *hdr = pv_json_root(&t->header);
    const pv_json_node_t *alg = pv_json_get(&t->header, hdr, "alg", 3);
    if (!alg || alg->type != PV_JSON_STRING) {
        *error = alg ? "alg is not a string" : "missing alg";
        return PV_ERR;
    }
    int none;
    const alg_info_t *a = alg_of(&t->header, alg, &none);
    if (none) {
        *error = "unsecured tokens (alg none) are refused";
        return PV_ERR;
    }
    if (!a) {
        *error = "unsupported alg";
        return PV_ERR;
    }
    if (pv_json_get(&t->header, hdr, "crit", 4)) {
        *error = "unsupported critical header parameter";
        return PV_ERR;
    }
    const pv_json_node_t *kid = pv_json_get(&t->header, hdr, "kid", 3);
    if (kid && kid->type != PV_JSON_STRING) {
        *error = "kid is not a string";
        return PV_ERR;
    }
    if (dots[1] + 1 == len) {
        *error = "missing signature";
        return PV_ERR;
    }
    unsigned char sig[PV_JWT_SIG_MAX];
    size_t slen = 0;
    if (pv_jwt_b64url_decode(token + dots[1] + 1, len - dots[1] - 1, sig, sizeof(sig), &slen) != PV_OK) {
        *error = "malformed signature encoding";
        return PV_ERR;
    }
    int candidates = 0;
    for (size_t i = 0; ks && i < ks->n; i++) {
        const jwk_t *k = &ks->keys[i];
        if (!key_fits(k, a))
            continue;
        if (kid && (!k->has_kid || !pv_json_streq(&t->header, kid, k->kid, k->kid_len)))
            continue;
        candidates++;
        if (verify_with(k, a, (const unsigned char *)token, dots[1], sig, slen)) {
            t->alg = a->id;
            *payload = (pv_str_t){token + dots[0] + 1, dots[1] - dots[0] - 1};
            return PV_OK;
        }
    }
    *error = candidates ? "signature verification failed" : "no suitable key";
    return PV_ERR;
}

/* A NumericDate claim (RFC 7519 section 2): absent is fine (1 = present). */
static int numeric_date(const pv_json_t *d, const char *name, double *v, const char **error,
                        const char *bad)
{
    const pv_json_node_t *n = pv_json_get(d, pv_json_root(d), name, strlen(name));
    if (!n)
        return 0;
    if (n->type != PV_JSON_NUMBER || pv_json_double(d, n, v) != PV_OK) {
        *error = bad;
        return -1;
    }
    return 1;
}

size_t pv_jwt_mem_size(size_t len)
{
    size_t dec = len / 4 * 3 + 8; /* both decoded segments */
    return dec + (dec / 2 + 3) * sizeof(pv_json_node_t) + 4 * _Alignof(pv_json_node_t);
}

void pv_jwt_init(pv_jwt_t *t, void *mem, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->mem = mem;
    t->cap = cap;
}

int pv_jwt_verify(const pv_jwks_t *ks, const char *token, size_t len, int64_t now_s, int64_t leeway_s,
                  pv_jwt_t *out, const char **error)
{
    const char *e = NULL;
    pv_str_t payload;
    int rc = jws_check(ks, token, len, out, &payload, &e);
    if (rc == PV_OK)
        rc = segment_json(out, payload.p, payload.len, &out->claims, "malformed payload encoding",
                          "malformed claims JSON", "claims are not a JSON object", &e);
    if (rc == PV_OK) {
        double exp = 0, nbf = 0, now = (double)now_s, leeway = (double)(leeway_s > 0 ? leeway_s : 0);
        int has_exp = numeric_date(&out->claims, "exp", &exp, &e, "exp is not a number");
        int has_nbf = has_exp < 0 ? 0 : numeric_date(&out->claims, "nbf", &nbf, &e, "nbf is not a number");
        if (has_exp < 0 || has_nbf < 0)
            rc = PV_ERR;
        else if (has_exp && now > exp + leeway) {
            e = "token expired";
            rc = PV_ERR;
        } else if (has_nbf && now + leeway < nbf) {
            e = "token not yet valid";
            rc = PV_ERR;
        }
    }
    out->verified = rc == PV_OK;
    if (error)
        *error = rc == PV_OK ? NULL : e;
    return rc;
}

/* ---- claim and header values ----------------------------------------- */

/* Format one value as described at pv_jwt_claim. */
static int format_value(const pv_json_t *d, const pv_json_node_t *v, char *buf, size_t cap, pv_str_t *out)
{
    if (v->type == PV_JSON_STRING)
        return pv_json_str(d, v, buf, cap, out) == PV_OK ? PV_OK : -ENOSPC;
    if (v->type == PV_JSON_NULL) {
        *out = (pv_str_t){"", 0};
        return PV_OK;
    }
    if (v->type != PV_JSON_ARRAY) {
        *out = pv_json_raw(d, v);
        return PV_OK;
    }
    size_t o = 0;
    for (const pv_json_node_t *e = pv_json_first(d, v); e; e = pv_json_next(d, e)) {
        if (e != v + 1) {
            if (o >= cap)
                return -ENOSPC;
            buf[o++] = ',';
        }
        pv_str_t s = {"", 0};
        if (e->type == PV_JSON_STRING) {
            if (pv_json_str(d, e, buf + o, cap - o, &s) != PV_OK)
                return -ENOSPC;
        } else if (e->type != PV_JSON_NULL) {
            s = pv_json_raw(d, e);
        }
        if (s.len > cap - o)
            return -ENOSPC;
        if (s.p != buf + o)
            memcpy(buf + o, s.p, s.len);
        o += s.len;
    }
    *out = o ? (pv_str_t){buf, o} : (pv_str_t){"", 0};
    return PV_OK;
}

int pv_jwt_claim_path(const pv_jwt_t *t, const pv_str_t *names, size_t n, char *buf, size_t cap,
                      pv_str_t *out)
{
    if (!t->verified || n == 0)
        return -ENOENT;
    const pv_json_node_t *v = pv_json_root(&t->claims);
    for (size_t i = 0; i < n && v; i++)
        v = pv_json_get(&t->claims, v, names[i].p, names[i].len);
    if (!v)
        return -ENOENT;
    return format_value(&t->claims, v, buf, cap, out);
}

int pv_jwt_claim(const pv_jwt_t *t, const char *name, size_t nlen, char *buf, size_t cap, pv_str_t *out)
{
    pv_str_t one = {name, nlen};
    return pv_jwt_claim_path(t, &one, 1, buf, cap, out);
}

int pv_jwt_header(const pv_jwt_t *t, const char *name, size_t nlen, char *buf, size_t cap, pv_str_t *out)
{
    if (!t->verified)
        return -ENOENT;
    const pv_json_node_t *v = pv_json_get(&t->header, pv_json_root(&t->header), name, nlen);
    if (!v)
        return -ENOENT;
    return format_value(&t->header, v, buf, cap, out);
}
