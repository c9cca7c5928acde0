/* JSON Web Token checks as NGINX Plus's auth_jwt does them: a JSON Web
 * Key Set loaded once from auth_jwt_key_file, and per request the
 * verification of a compact JWS (RFC 7515) carrying a JWT claims set
 * (RFC 7519), then its claims and header parameters as variable values.
 *
 * Algorithms: HS256/384/512 (kty "oct"), RS256/384/512 and PS256/384/512
 * (kty "RSA", at least 2048 bits), ES256/384/512 (kty "EC" on P-256,
 * P-384, P-521 respectively). Refused: "none" in any spelling, any other
 * alg, JWE (five parts), a "crit" header (no extension is understood),
 * keys carried in the token (jwk, jku, x5u, x5c are never used), an HMAC
 * key shorter than the hash (RFC 7518 section 3.2), and an exp or nbf
 * that is not a number.
 *
 * Key choice: a key is a candidate only if its kty and curve fit the
 * token's alg and its own "alg", when it has one, is the token's alg, so
 * an HS token is never checked with an RSA or EC key's material. When the
 * token has a kid only keys with that kid are tried; without one every
 * candidate is tried. Keys whose "use" is not "sig", whose "key_ops" lack
 * "verify", whose alg is not a JWS one (e.g. RSA-OAEP) or whose kty/crv
 * is not listed above (e.g. OKP) are skipped at load.
 *
 * Errors are short constant strings meant for the error_description of
 * an RFC 6750 `WWW-Authenticate: Bearer error="invalid_token"` challenge
 * (PV_JWT_ERROR); a request without a token is the caller's case
 * (RFC 6750 says: no error code then). */
#ifndef PV_JWT_H
#define PV_JWT_H

#include <stdint.h>
#include "../core/common.h"
#include "json.h"

#define PV_JWT_ERROR "invalid_token"   /* RFC 6750 error code for every verification failure */
#define PV_JWT_TOKEN_MAX (64u << 10)  /* longest token accepted, in bytes */
#define PV_JWT_SIG_MAX 1024            /* longest decoded signature (RSA 8192 bits) */
#define PV_JWT_DEPTH 16                /* JSON nesting allowed in header and claims */
#define PV_JWKS_FILE_MAX (4u << 20)   /* largest key file accepted */

/* Supported JWS algorithms (0 means none). */
typedef enum pv_jwt_alg_e {
    PV_JWT_ALG_NONE = 0,
    PV_JWT_HS256,
    PV_JWT_HS384,
    PV_JWT_HS512,
    PV_JWT_RS256,
    PV_JWT_RS384,
    PV_JWT_RS512,
    PV_JWT_PS256,
    PV_JWT_PS384,
    PV_JWT_PS512,
    PV_JWT_ES256,
    PV_JWT_ES384,
    PV_JWT_ES512,
} pv_jwt_alg_t;

/* A loaded key set: immutable after load, so every worker may verify with
 * it at once. Opaque. */
typedef struct pv_jwks_s pv_jwks_t;

/* A verified token. Everything it points to lives in the memory given to
 * pv_jwt_init (nothing else is allocated), so it is valid until that
 * memory is reused; after a failed verification its contents are
 * unspecified. */
typedef struct pv_jwt_s {
    char *mem;         /* caller's memory for decoded segments and JSON nodes */
    size_t cap;        /* its size */
    size_t used;       /* bytes of it in use */
    pv_json_t header;  /* the JOSE header, a JSON object */
    pv_json_t claims;  /* the claims set, a JSON object (only after success) */
    pv_jwt_alg_t alg;  /* the verified algorithm */
    int verified;      /* 1 after a successful pv_jwt_verify */
} pv_jwt_t;

/* Load a JWKS file (auth_jwt_key_file). NULL on error, with a message in
 * err: `open() "F" failed (...)`, or "... in F:LINE" for what is wrong
 * inside it. A set with no usable key is an error. */
pv_jwks_t *pv_jwks_load(const char *path, char *err, size_t errlen);

/* Load a JWKS from memory; name stands for the file in messages. */
pv_jwks_t *pv_jwks_load_text(const char *text, size_t len, const char *name, char *err, size_t errlen);

/* Release a key set (NULL is fine); secrets are wiped. */
void pv_jwks_free(pv_jwks_t *ks);

/* Number of usable keys in the set. */
size_t pv_jwks_count(const pv_jwks_t *ks);

/* Bytes of memory that pv_jwt_verify may need for a token of len bytes
 * (an upper bound; typically an arena allocation per request). */
size_t pv_jwt_mem_size(size_t len);

/* Prepare t to verify into mem[0..cap). */
void pv_jwt_init(pv_jwt_t *t, void *mem, size_t cap);

/* Verify a compact JWS token[0..len) against ks at time now_s (Unix
 * seconds), allowing leeway_s seconds of clock skew for exp and nbf.
 * PV_OK with *out filled, or PV_ERR with *error a constant description
 * (the error code is PV_JWT_ERROR). out must have been pv_jwt_init'ed;
 * memory too small for the token fails as "token too large". */
int pv_jwt_verify(const pv_jwks_t *ks, const char *token, size_t len, int64_t now_s, int64_t leeway_s,
                  pv_jwt_t *out, const char **error);

/* Value of claim name[0..nlen) for $jwt_claim_NAME:
 * - string: its unescaped value;
 * - number, true, false: its JSON text ("1300819380", "1.5", "true");
 * - null: the empty string;
 * - array: its elements joined with "," (as auth_jwt_claim_set does),
 *   each formatted as above, nested arrays and objects as their JSON text;
 * - object: its JSON text as it appears in the token.
 * *out points into the token's memory when the value is there as is,
 * otherwise into buf[0..cap). Returns PV_OK, -ENOENT when there is no
 * such claim (or t is not verified), -ENOSPC when buf is too small.
 * Unescaped strings may hold any byte (CR, LF, NUL): a caller putting a
 * value into a header must check it. */
int pv_jwt_claim(const pv_jwt_t *t, const char *name, size_t nlen, char *buf, size_t cap, pv_str_t *out);

/* Same for a nested claim (auth_jwt_claim_set $v a b c): names[0] at the
 * top level, each next one inside the previous object. */
int pv_jwt_claim_path(const pv_jwt_t *t, const pv_str_t *names, size_t n, char *buf, size_t cap,
                      pv_str_t *out);

/* Same for a JOSE header parameter ($jwt_header_NAME). */
int pv_jwt_header(const pv_jwt_t *t, const char *name, size_t nlen, char *buf, size_t cap, pv_str_t *out);

/* Name of an algorithm ("HS256"), "" for none. */
const char *pv_jwt_alg_name(pv_jwt_alg_t alg);

/* Strict base64url decoding (RFC 7515 section 2): no padding, no
 * characters outside the alphabet, no length of 4k+1, no non-zero unused
 * bits in the last character. PV_OK with *outlen, or PV_ERR (also when
 * the result would not fit cap). */
int pv_jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);

#endif
