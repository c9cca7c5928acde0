/* JWT: the RFC 7515 appendix A and RFC 7520 section 4 vectors, tokens
 * signed by an independent implementation (Python's cryptography
 * package), tokens signed here with OpenSSL for every algorithm, every
 * refusal rule, key set loading errors and claim formatting. Includes
 * jwt.c to reach jws_check, the signature layer alone, which the RFC 7520
 * vectors need (their payload is text, not a claims set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../../src/policy/jwt.c"

/* ---- RFC vectors (each checked against the RFC text; the signatures
 * verify with the keys, so a transcription slip would show) ---------- */

/* RFC 7515 A.1: HS256, JWK of A.1.1. */
static const char A1_JWKS[] =
    "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0"
    "iPS4hcgUuTwjAzZr1Z9CAow\"}]}";
static const char A1_TOKEN[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogI"
    "mh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/* RFC 7515 A.2: RS256, public part of the A.2.1 key. */
static const char A2_JWKS[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W2"
    "6mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ4"
    "7soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PA"
    "cDTW9gb54h4FRWyuXpoQ\"}]}";
static const char A2_TOKEN[] =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlL"
    "mNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWz"
    "O75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZES"
    "c6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlU"
    "PQGe77Rw";

/* RFC 7515 A.3: ES256, public part of the A.3.1 key. */
static const char A3_JWKS[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":\""
    "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char A3_TOKEN[] =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlL"
    "mNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
    "pmWQxfKTUJqPP3-Kg6NU1Q";

/* RFC 7520 section 3: the RSA (Figure 3), P-521 (Figure 1) and HMAC
 * (Figure 5) keys, public parts, one per line. */
static const char R7520_JWKS[] =
    "{\"keys\":[\n"
    "{\"kty\":\"RSA\",\"kid\":\"bilbo.baggins@hobbiton.example\",\"use\":\"sig\",\"e\":\"AQAB\",\"n\":\"n4EPtAOCc9"
    "AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRB"
    "SFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E"
    "6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLq"
    "KnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw\"},\n"
    "{\"kty\":\"EC\",\"kid\":\"bilbo.baggins@hobbiton.example\",\"use\":\"sig\",\"crv\":\"P-521\",\"x\":\"AHKZLLOs"
    "COzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt\",\"y\":\"Ady"
    "mlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1\"},\n"
    "{\"kty\":\"oct\",\"kid\":\"018c0ae5-4d9b-471b-bfd6-eef314bc7037\",\"use\":\"sig\",\"alg\":\"HS256\",\"k\":\"h"
    "JtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}\n"
    "]}";
/* RFC 7520 section 4: the payload (Figure 7), "It's a dangerous business, Frodo, ..." */
#define R7520_PAYLOAD \
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb2" \
    "50byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcg" \
    "d2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
/* 4.1.3, Figure 13: RS256 */
static const char R7520_41[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." R7520_PAYLOAD
    ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83x"
    "uglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5"
    "aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU"
    "0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg";
/* 4.2.3, Figure 20: PS384 */
static const char R7520_42[] =
    "eyJhbGciOiJQUzM4NCIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." R7520_PAYLOAD
    ".cu22eBqkYDKgIlTpzDXGvaFfz6WGoz7fUDcfT0kkOy42miAh2qyBzk1xEsnk2IpN6-tPid6VrklHkqsGqDqHCdP6O"
    "8TTB5dDDItllVo6_1OLPpcbUrhiUSMxbbXUvdvWXzg-UD8biiReQFlfz28zGWVsdiNAUf8ZnyPEgVFn442ZdNqiVJR"
    "mBqrYRXe8P_ijQ7p8Vdz0TTrxUeT3lm8d9shnr2lfJT8ImUjvAA2Xez2Mlp8cBE5awDzT0qI0n6uiP1aCN_2_jLAeQ"
    "TlqRHtfa64QQSUmFAAjVKPbByi7xho0uTOcbH510a6GYmJUAfmWjwZ6oD4ifKo8DYM-X72Eaw";
/* 4.3.3, Figure 27: ES512 */
static const char R7520_43[] =
    "eyJhbGciOiJFUzUxMiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." R7520_PAYLOAD
    ".AE_R_YZCChjn4791jSQCrdPZCNYqHXCTZH0-JZGYNlaAjP2kqaluUIIUnC9qvbu9Plon7KRTzoNEuT4Va2cmL1eJA"
    "Qy3mtPBu_u_sDDyYjnAMDxXPn7XrT0lw-kvAD890jl8e2puQens_IEKBpHABlsbEPX6sFY8OcGDqoRuBomu9xQ2";
/* 4.4.3, Figure 34: HS256 */
static const char R7520_44[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9." R7520_PAYLOAD
    ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";

/* ---- tokens signed with Python's cryptography package: a fresh RSA 2048,
 * a P-384 key and a 64-byte HMAC key; claims
 * {"sub":"alice","iss":"https://idp.example","exp":2000000000,"roles":["admin","ops"]} */
static const char PY_JWKS[] =
    "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"py-rsa\", \"use\": \"sig\", \"n\": \"t6RMq52auSuVFjQfW7mVNGWpTm"
    "6Sg5FwcbqJIqDqALz4ywoUlMZ1o81d8jAafnrzyvIVLg6fnJfwZBng9pxz73htvBZjfyKDNEpwmbAJy70bdfE27k"
    "KWtAs1KhZ_S-Gv76ntxtJtkSmihDiASm_buxZ9BQIK-ZuWf3aFqPN-r5qBWV9k0M5wbMuZSCjAuKApFS5ljM6u8B"
    "8wYtPEv8VYWvkWg5ociTWGiOw2fhQHba3JnJeVMrboLFyrGxw1gimSL70_hkhlVCazSi3pxoyv87ohslQg_fn295"
    "MG-qL5FomqLt8TXZVg9DN-CdpBVF9TZ2jLeu58oQpjYbo8wREBPw\", \"e\": \"AQAB\"}, {\"kty\": \"EC\", \"kid\""
    ": \"py-ec384\", \"crv\": \"P-384\", \"x\": \"GhSxDRlYSfB3fS2Z_HTxvzac0qJj7FSnjKySpBGS-76KXbpSQSg4"
    "QGoZ4-5ZC9ag\", \"y\": \"YM8ZFaTAS_dyy64dszO2CEJD4TIkySPn8m2_BRQ65CrzL95k2Qjje5CPcdim2sAO\"},"
    " {\"kty\": \"oct\", \"kid\": \"py-hmac\", \"k\": \"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMk"
    "JSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4_QA\"}]}";

static const char PY_RS384[] =
    "eyJhbGciOiJSUzM4NCIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImlzcyI6Imh"
    "0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.EveV9N"
    "5fcgZur6lYYpBav-0x4xX_zvQsDCV0PRvBjSVSHfzMAOrhXAdUJD3sxjhp802PBmdxvJuc-qiPo0YpwHkh4aPiOU"
    "OQOzds0g6L3PyTHfFs_2zzvSucFmR3v-svboBYHsDBBPYaFR0l8IlyZ5jp-qutZZwFFN-FQtZ0EzYGIxBdoGIgQa"
    "szbc7dcqE8GtR-nuTMaIvMbZvqGLkZQAGttKAZdG6bSuZ7XXdX06e1-zdcrpcgTwsNmEMOTGCzdToDYZ3xYrIPIP"
    "7pngdahiork5lyXTZwqjKwZ-_Zo9UChHfBNb2sINQwPsm1-MKh4ngorRER0I257CV0l3SMAQ";

static const char PY_RS512[] =
    "eyJhbGciOiJSUzUxMiIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImlzcyI6Imh"
    "0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.MyYmAu"
    "M6VVYO3kM3j9YN9lxJ37_STNnLz-Kb6RdJ54M-hBVaOgRwYvQDBEgHvQzVFCk8rHpAjdfQDrn4zg8etmCo-Loe7X"
    "yLwYfuFlp1VFx_7b3IJir-RzCdXK8SpIp9_9ZCkC3UsyFTQFRMZNEZ9l2bzSiQ-025Luq_V_qx5kJF4ecLLxSfLT"
    "OlNbrkXPKcVhc0Tzc5opgR3Ew7v5SyFQ016_F2cCQKbY9dpxaspSVr7c3wHuss1swFCIdVNUvS0PGG9PGw8qErM7"
    "8aaiL-gjVlI4_KOKViUScT6aLTMgkdQ9j8G875DhESH083ngPR-WGlIctgAeJ7FTEcgjh55w";

static const char PY_PS256[] =
    "eyJhbGciOiJQUzI1NiIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImlzcyI6Imh"
    "0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.mYThvZ"
    "T9YY4IOsycYBAQTFm_I7T77EUhtVwyEYZK7OC77jTexpcvmiqc-myEgZk866j8yn6lBGLrnBWDENLNnbcZdM-MGW"
    "7r61X5WCnZF0EvRDHqZrKw9Cwul6quUhWDYL38a5r7NVpG-wSszCwW4E9Fo9_kLUxhdhz5RfQ8Kmp380JbaeSIoq"
    "4Kb-gPA1Y-XwMtpk49rqbWYOeyI5za7N8bHNqOYZAEx-8F94Xo-HPmqWogB_obCkepdQ2Rj0x6dgQVrw4qztCTZC"
    "p6WaMK5C67fd730C6sC790UxcQ0zScEvjD9bV7f_ZlSa-XuKTHfUdvkscTJ0TFd8CyIZrjCA";

static const char PY_ES384[] =
    "eyJhbGciOiJFUzM4NCIsImtpZCI6InB5LWVjMzg0IiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImlzcyI6"
    "Imh0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.ITw"
    "B0pJyOByuuBT_6_4bjwe8mXq-K-2U7Pr1qqpWT1-mBhOU_Q4MJR7Vg9toTjr9MSBPVvVUGlX1-AMb35Ak7UoxAlx"
    "WxAIuR4Zyfon2QLSUhFMG7XNPEy-DzfY2IFTT";

static const char PY_HS384[] =
    "eyJhbGciOiJIUzM4NCIsImtpZCI6InB5LWhtYWMiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhbGljZSIsImlzcyI6I"
    "mh0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.VUp1"
    "3JXes6j3cTSCTYgy0x6Ri87irLUJz38Isi8fUIddGkHugSHrJ-zUuzyaGVMy";

static const char PY_HS512[] =
    "eyJhbGciOiJIUzUxMiIsImtpZCI6InB5LWhtYWMiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhbGljZSIsImlzcyI6I"
    "mh0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjIwMDAwMDAwMDAsInJvbGVzIjpbImFkbWluIiwib3BzIl19.AzRP"
    "xPX6B6zeGBVBXTVYYOP5NPzx6NfFZ6f-phk2Sv7-nkrfnhnahrRcHoH6zAgiEe8R3tgbima-2ZNZ2fWENg";

/* ---- helpers ---------------------------------------------------------- */

/* A verification with its own memory, sized by pv_jwt_mem_size. */
typedef struct vt_s {
    pv_jwt_t t; /* the result */
    char *mem;  /* its memory */
} vt_t;

static void vt_free(vt_t *v)
{
    free(v->mem);
    v->mem = NULL;
}

/* Verify tok; NULL on success, else the error description. */
static const char *verify(const pv_jwks_t *ks, const char *tok, int64_t now, int64_t leeway, vt_t *v)
{
    size_t len = strlen(tok), cap = pv_jwt_mem_size(len);
    free(v->mem);
    v->mem = malloc(cap);
    pv_jwt_init(&v->t, v->mem, cap);
    const char *err = "unset";
    int rc = pv_jwt_verify(ks, tok, len, now, leeway, &v->t, &err);
    assert_true(v->t.used <= cap);
    if (rc == PV_OK) {
        assert_null(err);
        assert_int_equal(v->t.verified, 1);
        return NULL;
    }
    assert_int_equal(rc, PV_ERR);
    assert_non_null(err);
    return err;
}

/* Verify with a throwaway result. */
static const char *verify1(const pv_jwks_t *ks, const char *tok, int64_t now)
{
    vt_t v = {0};
    const char *e = verify(ks, tok, now, 0, &v);
    vt_free(&v);
    return e;
}

static const char *or_ok(const char *e)
{
    return e ? e : "(accepted)";
}

#define assert_ok(e) assert_null(e)
#define assert_err(e, want) assert_string_equal(or_ok(e), (want))

/* A claim or header value as a C string (NULL when absent). */
static const char *val(const pv_jwt_t *t, int header, const char *name)
{
    static char out[1024];
    char buf[1024];
    pv_str_t s;
    int rc = header ? pv_jwt_header(t, name, strlen(name), buf, sizeof(buf), &s)
                    : pv_jwt_claim(t, name, strlen(name), buf, sizeof(buf), &s);
    if (rc == -ENOENT)
        return NULL;
    assert_int_equal(rc, PV_OK);
    memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    return out;
}

static pv_jwks_t *jwks(const char *text)
{
    char err[512] = "";
    pv_jwks_t *ks = pv_jwks_load_text(text, strlen(text), "test.jwks", err, sizeof(err));
    if (!ks)
        fail_msg("%s", err);
    return ks;
}

/* The load error for text (which must fail). */
static const char *jwks_err(const char *text)
{
    static char err[512];
    err[0] = '\0';
    pv_jwks_t *ks = pv_jwks_load_text(text, strlen(text), "test.jwks", err, sizeof(err));
    if (ks) {
        pv_jwks_free(ks);
        fail_msg("loaded: %s", text);
    }
    return err;
}

/* Base64url without padding into out (room for 4 * ceil(n / 3) + 1). */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (char *c = out; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
}

static char *b64s(const char *s)
{
    char *o = malloc(strlen(s) * 2 + 4);
    b64url((const unsigned char *)s, strlen(s), o);
    return o;
}

/* Keys generated once for the whole run. */
static EVP_PKEY *g_rsa, *g_p256, *g_p384, *g_p521;
static const unsigned char g_secret[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Sign "h.p" (both base64url already) with alg; NULL secret means pkey. */
static char *sign_parts(const char *h, const char *p, const char *alg, EVP_PKEY *pkey, const void *secret,
                        size_t slen)
{
    const alg_info_t *a = alg_find(alg, strlen(alg));
    assert_non_null(a);
    size_t mlen = strlen(h) + 1 + strlen(p);
    char *tok = malloc(mlen + 2048);
    sprintf(tok, "%s.%s", h, p);
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    if (a->family == FAM_HMAC) {
        unsigned int ml = 0;
        assert_non_null(HMAC(a->md(), secret, (int)slen, (unsigned char *)tok, mlen, sig, &ml));
        siglen = ml;
    } else {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pc = NULL;
        assert_int_equal(EVP_DigestSignInit(m, &pc, a->md(), NULL, pkey), 1);
        if (a->family == FAM_PSS) {
            assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
            assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) > 0);
        }
        assert_int_equal(EVP_DigestSign(m, sig, &siglen, (unsigned char *)tok, mlen), 1);
        EVP_MD_CTX_free(m);
        if (a->family == FAM_EC) { /* DER to R || S */
            const unsigned char *q = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
            assert_non_null(es);
            size_t half = crvs[a->crv].size;
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)half);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, (int)half);
            siglen = 2 * half;
            ECDSA_SIG_free(es);
        }
    }
    tok[mlen] = '.';
    b64url(sig, siglen, tok + mlen + 1);
    return tok;
}

/* A token for header and claims JSON texts. */
static char *mint(const char *hdr, const char *claims, const char *alg, EVP_PKEY *pkey, const void *secret,
                  size_t slen)
{
    char *h = b64s(hdr), *p = b64s(claims);
    char *t = sign_parts(h, p, alg, pkey, secret, slen);
    free(h);
    free(p);
    return t;
}

/* An HS256 token with the test secret. */
static char *mint_hs(const char *hdr, const char *claims)
{
    return mint(hdr, claims, "HS256", NULL, g_secret, 32);
}

/* A token of hdr and claims signed with alg (by pk, or with secret when
 * pk is NULL) must verify at now (want NULL) or fail with want. */
static void sig_case(const pv_jwks_t *ks, const char *hdr, const char *claims, const char *alg, EVP_PKEY *pk,
                     const void *secret, size_t slen, int64_t now, int64_t leeway, const char *want)
{
    char *t = mint(hdr, claims, alg, pk, secret, slen);
    vt_t v = {0};
    const char *e = verify(ks, t, now, leeway, &v);
    if (want ? !e || strcmp(e, want) != 0 : e != NULL)
        fail_msg("%s %s at %lld: got %s, want %s", hdr, claims, (long long)now, e ? e : "success",
                 want ? want : "success");
    vt_free(&v);
    free(t);
}

/* The same for HS256 with the test secret. */
static void hs_case(const pv_jwks_t *ks, const char *hdr, const char *claims, int64_t now, int64_t leeway,
                    const char *want)
{
    sig_case(ks, hdr, claims, "HS256", NULL, g_secret, 32, now, leeway, want);
}

/* The test secret's JWKS (32 bytes, so HS256 only). */
static char g_oct_jwks[256];

/* Base64url of a big number, padded to width bytes when width > 0. */
static void bn_b64(const BIGNUM *bn, int width, char *out)
{
    unsigned char buf[1100];
    int n = width ? BN_bn2binpad(bn, buf, width) : BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
}

/* JWK text (one object) for a generated key; alg and kid may be NULL. */
static char *jwk_json(EVP_PKEY *k, const char *kid, const char *alg)
{
    char *out = malloc(4096), ext[256] = "";
    if (kid)
        snprintf(ext + strlen(ext), sizeof(ext) - strlen(ext), ",\"kid\":\"%s\"", kid);
    if (alg)
        snprintf(ext + strlen(ext), sizeof(ext) - strlen(ext), ",\"alg\":\"%s\"", alg);
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        BIGNUM *n = NULL, *e = NULL;
        char nb[1500], eb[32];
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_E, &e);
        bn_b64(n, 0, nb);
        bn_b64(e, 0, eb);
        snprintf(out, 4096, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", nb, eb, ext);
        BN_free(n);
        BN_free(e);
    } else {
        char grp[32], xb[100], yb[100];
        size_t gl = 0;
        BIGNUM *x = NULL, *y = NULL;
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp), &gl);
        int c = strcmp(grp, "prime256v1") == 0 ? CRV_P256 : strcmp(grp, "secp384r1") == 0 ? CRV_P384 : CRV_P521;
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x);
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
        bn_b64(x, (int)crvs[c].size, xb);
        bn_b64(y, (int)crvs[c].size, yb);
        snprintf(out, 4096, "{\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", crvs[c].jwk_name, xb, yb,
                 ext);
        BN_free(x);
        BN_free(y);
    }
    return out;
}

/* The load error of a set holding only the JWK text j (freed). */
static const char *jwk_err(char *j)
{
    char *text = malloc(strlen(j) + 16);
    sprintf(text, "{\"keys\":[%s]}", j);
    const char *e = jwks_err(text);
    free(text);
    free(j);
    return e;
}

/* A loaded set of JWK texts a and b (b may be NULL); frees them. */
static pv_jwks_t *keys_of(char *a, char *b)
{
    char *text = malloc(strlen(a) + (b ? strlen(b) : 0) + 32);
    sprintf(text, "{\"keys\":[%s%s%s]}", a, b ? "," : "", b ? b : "");
    pv_jwks_t *ks = jwks(text);
    free(text);
    free(a);
    free(b);
    return ks;
}

/* Signed with the HMAC test secret, header and payload given encoded. */
static void raw_case(const pv_jwks_t *ks, const char *h, const char *p, const char *want)
{
    char *t = sign_parts(h, p, "HS256", NULL, g_secret, 32);
    if (want)
        assert_err(verify1(ks, t, 0), want);
    else
        assert_ok(verify1(ks, t, 0));
    free(t);
}

static int setup(void **state)
{
    (void)state;
    g_rsa = EVP_RSA_gen(2048);
    g_p256 = EVP_EC_gen("P-256");
    g_p384 = EVP_EC_gen("P-384");
    g_p521 = EVP_EC_gen("P-521");
    char k[64];
    b64url(g_secret, 32, k);
    snprintf(g_oct_jwks, sizeof(g_oct_jwks), "{\"keys\":[{\"kty\":\"oct\",\"k\":\"%s\"}]}", k);
    return g_rsa && g_p256 && g_p384 && g_p521 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_rsa);
    EVP_PKEY_free(g_p256);
    EVP_PKEY_free(g_p384);
    EVP_PKEY_free(g_p521);
    return 0;
}

/* ---- RFC vectors ------------------------------------------------------ */

/* The three RFC 7515 tokens share their claims; exp is 1300819380. */
static void check_rfc7515(const char *set, const char *tok, pv_jwt_alg_t alg)
{
    pv_jwks_t *ks = jwks(set);
    vt_t v = {0};
    assert_ok(verify(ks, tok, 1300819379, 0, &v));
    assert_int_equal(v.t.alg, alg);
    assert_string_equal(val(&v.t, 0, "iss"), "joe");
    assert_string_equal(val(&v.t, 0, "exp"), "1300819380");
    assert_string_equal(val(&v.t, 0, "http://example.com/is_root"), "true");
    assert_null(val(&v.t, 0, "sub"));
    assert_string_equal(val(&v.t, 1, "alg"), pv_jwt_alg_name(alg));
    assert_ok(verify(ks, tok, 1300819380, 0, &v)); /* now == exp is still valid */
    assert_err(verify(ks, tok, 1300819381, 0, &v), "token expired");
    assert_ok(verify(ks, tok, 1300819381, 1, &v));
    assert_err(verify(ks, tok, 1700000000, 60, &v), "token expired");
    vt_free(&v);
    pv_jwks_free(ks);
}

static void test_rfc7515(void **state)
{
    (void)state;
    check_rfc7515(A1_JWKS, A1_TOKEN, PV_JWT_HS256);
    check_rfc7515(A2_JWKS, A2_TOKEN, PV_JWT_RS256);
    check_rfc7515(A3_JWKS, A3_TOKEN, PV_JWT_ES256);
    vt_t v = {0};
    pv_jwks_t *ks = jwks(A1_JWKS);
    assert_ok(verify(ks, A1_TOKEN, 0, 0, &v));
    assert_string_equal(val(&v.t, 1, "typ"), "JWT");
    vt_free(&v);
    pv_jwks_free(ks);
}

/* RFC 7520 4.1-4.4: the signatures verify (jws_check), the payload is the
 * expected text, and pv_jwt_verify refuses them as JWTs since that text
 * is not a claims set. */
static void test_rfc7520(void **state)
{
    (void)state;
    static const char frodo[] = "It\xe2\x80\x99s a dangerous business, Frodo, going out your door. You step onto "
                                "the road, and if you don't keep your feet, there\xe2\x80\x99s no knowing where you "
                                "might be swept off to.";
    const char *toks[] = {R7520_41, R7520_42, R7520_43, R7520_44};
    const pv_jwt_alg_t ids[] = {PV_JWT_RS256, PV_JWT_PS384, PV_JWT_ES512, PV_JWT_HS256};
    pv_jwks_t *ks = jwks(R7520_JWKS);
    assert_int_equal(pv_jwks_count(ks), 3);
    for (size_t i = 0; i < 4; i++) {
        size_t len = strlen(toks[i]), cap = pv_jwt_mem_size(len);
        char *mem = malloc(cap);
        pv_jwt_t t;
        pv_jwt_init(&t, mem, cap);
        pv_str_t payload;
        const char *err = NULL;
        assert_int_equal(jws_check(ks, toks[i], len, &t, &payload, &err), PV_OK);
        assert_int_equal(t.alg, ids[i]);
        unsigned char text[512];
        size_t tl = 0;
        assert_int_equal(pv_jwt_b64url_decode(payload.p, payload.len, text, sizeof(text), &tl), PV_OK);
        assert_int_equal(tl, strlen(frodo));
        assert_memory_equal(text, frodo, tl);
        free(mem);
        assert_err(verify1(ks, toks[i], 0), "malformed claims JSON");
        /* one changed signature character */
        char *bad = strdup(toks[i]);
        char *last = bad + strlen(bad) - 10;
        *last = *last == 'A' ? 'B' : 'A';
        assert_err(verify1(ks, bad, 0), "signature verification failed");
        free(bad);
    }
    pv_jwks_free(ks);
}

/* ---- independent signer, every algorithm ------------------------------ */

static void test_python_signed(void **state)
{
    (void)state;
    const char *toks[] = {PY_RS384, PY_RS512, PY_PS256, PY_ES384, PY_HS384, PY_HS512};
    const pv_jwt_alg_t ids[] = {PV_JWT_RS384, PV_JWT_RS512, PV_JWT_PS256, PV_JWT_ES384, PV_JWT_HS384, PV_JWT_HS512};
    pv_jwks_t *ks = jwks(PY_JWKS);
    assert_int_equal(pv_jwks_count(ks), 3);
    vt_t v = {0};
    for (size_t i = 0; i < PV_NELEM(toks); i++) {
        assert_ok(verify(ks, toks[i], 1700000000, 0, &v));
        assert_int_equal(v.t.alg, ids[i]);
        assert_string_equal(val(&v.t, 0, "sub"), "alice");
        assert_string_equal(val(&v.t, 0, "iss"), "https://idp.example");
        assert_string_equal(val(&v.t, 0, "roles"), "admin,ops");
        assert_string_equal(val(&v.t, 1, "typ"), "JWT");
        assert_err(verify(ks, toks[i], 2000000001, 0, &v), "token expired");
    }
    vt_free(&v);
    pv_jwks_free(ks);
}

static void test_every_alg_signed_here(void **state)
{
    (void)state;
    static const char *names[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256",
                                  "PS384", "PS512", "ES256", "ES384", "ES512"};
    char k[100];
    b64url(g_secret, 64, k);
    char *oct = malloc(20000), *ecs = malloc(1000);
    char *r = jwk_json(g_rsa, "r", NULL), *e1 = jwk_json(g_p256, "e1", NULL), *e2 = jwk_json(g_p384, "e2", NULL),
         *e3 = jwk_json(g_p521, "e3", NULL);
    snprintf(oct, 20000, "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"%s\"},%s", k, r);
    snprintf(ecs, 1000, "%s,%s,%s", e1, e2, e3);
    free(r);
    free(e1);
    free(e2);
    free(e3);
    pv_jwks_t *ks = keys_of(oct, ecs);
    assert_int_equal(pv_jwks_count(ks), 5);
    for (size_t i = 0; i < PV_NELEM(names); i++) {
        const alg_info_t *a = alg_find(names[i], strlen(names[i]));
        EVP_PKEY *pk = a->family == FAM_EC ? (a->crv == CRV_P256 ? g_p256 : a->crv == CRV_P384 ? g_p384 : g_p521)
                                           : g_rsa;
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", names[i]);
        char *tok = mint(hdr, "{\"sub\":\"x\"}", names[i], pk, g_secret, 64);
        assert_ok(verify1(ks, tok, 0));
        /* flip one payload character: the signature no longer fits */
        char *dot = strchr(tok, '.');
        dot[2] = dot[2] == 'a' ? 'b' : 'a';
        assert_err(verify1(ks, tok, 0), "signature verification failed");
        free(tok);
    }
    pv_jwks_free(ks);
}

/* ---- refusals --------------------------------------------------------- */

static void test_alg_none(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    static const char *hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
                                 "{\"alg\":\"nOnE\"}", "{\"alg\":\"n\\u006fne\"}"};
    for (size_t i = 0; i < PV_NELEM(hdrs); i++) {
        char *h = b64s(hdrs[i]), *p = b64s("{\"sub\":\"x\"}"), tok[256];
        snprintf(tok, sizeof(tok), "%s.%s.", h, p);
        assert_err(verify1(ks, tok, 0), "unsecured tokens (alg none) are refused");
        snprintf(tok, sizeof(tok), "%s.%s.AAAA", h, p);
        assert_err(verify1(ks, tok, 0), "unsecured tokens (alg none) are refused");
        free(h);
        free(p);
    }
    pv_jwks_free(ks);
}

static void test_unknown_alg(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    static const char *bad[] = {"{\"alg\":\"HS1\"}", "{\"alg\":\"hs256\"}", "{\"alg\":\"EdDSA\"}",
                                "{\"alg\":\"RSA-OAEP\"}", "{\"alg\":\"HS256 \"}", "{\"alg\":\"\"}",
                                "{\"alg\":\"HS256\\u0000\"}"};
    for (size_t i = 0; i < PV_NELEM(bad); i++)
        hs_case(ks, bad[i], "{}", 0, 0, "unsupported alg");
    hs_case(ks, "{\"alg\":256}", "{}", 0, 0, "alg is not a string");
    hs_case(ks, "{\"typ\":\"JWT\"}", "{}", 0, 0, "missing alg");
    /* an escaped spelling is the same string after unescaping */
    hs_case(ks, "{\"alg\":\"HS\\u0032\\u00356\"}", "{}", 0, 0, NULL);
    pv_jwks_free(ks);
}

/* An HS token must never be checked with an RSA or EC key's material
 * used as an HMAC secret, whatever form the attacker guesses. */
static void test_alg_confusion(void **state)
{
    (void)state;
    char *jwk = jwk_json(g_rsa, NULL, NULL);
    char *set = malloc(strlen(jwk) + 16);
    sprintf(set, "{\"keys\":[%s]}", jwk);
    pv_jwks_t *ks = jwks(set);
    /* the public key as PEM, DER, the JWK and JWKS texts, raw n */
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, g_rsa);
    char *pem = NULL;
    long pemlen = BIO_get_mem_data(bio, &pem);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(g_rsa, &der);
    BIGNUM *n = NULL;
    EVP_PKEY_get_bn_param(g_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
    unsigned char nbin[512];
    int nlen = BN_bn2bin(n, nbin);
    struct {
        const void *p;
        size_t len;
    } secrets[] = {
        {pem, (size_t)pemlen}, {der, (size_t)derlen}, {jwk, strlen(jwk)}, {set, strlen(set)}, {nbin, (size_t)nlen}};
    static const char *hs[] = {"HS256", "HS384", "HS512"};
    for (size_t i = 0; i < PV_NELEM(secrets); i++) {
        for (size_t j = 0; j < PV_NELEM(hs); j++) {
            char hdr[64];
            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", hs[j]);
            sig_case(ks, hdr, "{\"sub\":\"admin\"}", hs[j], NULL, secrets[i].p, secrets[i].len, 0, 0,
                     "no suitable key");
        }
    }
    /* the RSA key does verify RS256 */
    sig_case(ks, "{\"alg\":\"RS256\"}", "{}", "RS256", g_rsa, NULL, 0, 0, 0, NULL);
    /* the same with an EC key */
    char *ec = jwk_json(g_p256, NULL, NULL);
    sig_case(ks, "{\"alg\":\"HS256\"}", "{}", "HS256", NULL, ec, strlen(ec), 0, 0, "no suitable key");
    pv_jwks_t *eks = keys_of(ec, NULL);
    sig_case(eks, "{\"alg\":\"HS256\"}", "{}", "HS256", NULL, jwk, strlen(jwk), 0, 0, "no suitable key");
    /* an RS token whose "signature" is an HMAC with an oct key of the set:
     * only the RSA key is a candidate, so it fails */
    char k[64];
    b64url(g_secret, 32, k);
    char octj[128];
    snprintf(octj, sizeof(octj), "{\"kty\":\"oct\",\"kid\":\"same\",\"k\":\"%s\"}", k);
    pv_jwks_t *mks = keys_of(jwk_json(g_rsa, "same", NULL), strdup(octj));
    raw_case(mks, "eyJhbGciOiJSUzI1NiIsImtpZCI6InNhbWUifQ", "e30", "signature verification failed");
    hs_case(mks, "{\"alg\":\"HS256\",\"kid\":\"same\"}", "{}", 0, 0, NULL);
    pv_jwks_free(mks);
    /* a key pinned to RS256 does not serve PS256 made with the same key */
    pv_jwks_t *pks = keys_of(jwk_json(g_rsa, NULL, "RS256"), NULL);
    sig_case(pks, "{\"alg\":\"PS256\"}", "{}", "PS256", g_rsa, NULL, 0, 0, 0, "no suitable key");
    pv_jwks_free(pks);
    pv_jwks_free(eks);
    BN_free(n);
    OPENSSL_free(der);
    BIO_free(bio);
    pv_jwks_free(ks);
    free(set);
    free(jwk);
}

static void test_b64url_strict(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n = 99;
    static const char *dec[][2] = {{"", ""}, {"QUJD", "ABC"}, {"QQ", "A"}, {"QUI", "AB"}, {"-_-_", "\xfb\xff\xbf"}};
    for (size_t i = 0; i < PV_NELEM(dec); i++) {
        assert_int_equal(pv_jwt_b64url_decode(dec[i][0], strlen(dec[i][0]), out, sizeof(out), &n), PV_OK);
        assert_int_equal(n, strlen(dec[i][1]));
        assert_memory_equal(out, dec[i][1], n);
    }
    static const char *bad[] = {"QR", "QUJ", "Q", "QUJDR", "QQ==", "QQ=", "QU+D", "QU/D", "QU D", "QU\nD", "QUJD="};
    for (size_t i = 0; i < PV_NELEM(bad); i++)
        assert_int_equal(pv_jwt_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n), PV_ERR);
    assert_int_equal(pv_jwt_b64url_decode("QUJDQUJD", 8, out, 5, &n), PV_ERR); /* does not fit */

    pv_jwks_t *ks = jwks(g_oct_jwks);
    char *good = mint_hs("{\"alg\":\"HS256\"}", "{\"a\":1}");
    assert_ok(verify1(ks, good, 0));
    char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
    char buf[512];
    /* padding on each segment */
    snprintf(buf, sizeof(buf), "%.*s=%s", (int)(d1 - good), good, d1);
    assert_err(verify1(ks, buf, 0), "malformed header encoding");
    snprintf(buf, sizeof(buf), "%.*s=%s", (int)(d2 - good), good, d2);
    assert_err(verify1(ks, buf, 0), "signature verification failed"); /* signing input changed */
    snprintf(buf, sizeof(buf), "%s=", good);
    assert_err(verify1(ks, buf, 0), "malformed signature encoding");
    /* standard-alphabet characters and whitespace */
    snprintf(buf, sizeof(buf), "%s", good);
    buf[strlen(buf) - 3] = '+';
    assert_err(verify1(ks, buf, 0), "malformed signature encoding");
    snprintf(buf, sizeof(buf), "%.*s\n%s", (int)(d1 - good), good, d1);
    assert_err(verify1(ks, buf, 0), "malformed header encoding");
    snprintf(buf, sizeof(buf), "%s ", good);
    assert_err(verify1(ks, buf, 0), "malformed signature encoding");
    /* 32 bytes need 43 characters whose last carries 2 unused bits: setting
     * one decodes to the same bytes, and must still be refused */
    snprintf(buf, sizeof(buf), "%s", good);
    char *last = buf + strlen(buf) - 1;
    int v = pv_b64_value((unsigned char)*last, 1);
    assert_int_equal(v & 3, 0);
    *last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[v | 1];
    assert_err(verify1(ks, buf, 0), "malformed signature encoding");
    free(good);
    /* a payload segment that is not canonical, signed as is */
    static const char *h = "eyJhbGciOiJIUzI1NiJ9"; /* {"alg":"HS256"} */
    raw_case(ks, h, "e30", NULL);                     /* "{}" */
    raw_case(ks, h, "e31", "malformed payload encoding");
    raw_case(ks, h, "e30=", "malformed payload encoding");
    pv_jwks_free(ks);
}

static void test_malformed_json(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    static const char *hdr_bad[] = {
        "{\"alg\":\"HS256\"",                         /* unterminated */
        "{\"alg\":\"HS256\"}x",                       /* trailing garbage */
        "{\"alg\":\"HS256\"}{}",                      /* two values */
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",      /* duplicate member */
        "{\"alg\":\"none\",\"al\\u0067\":\"HS256\"}", /* duplicate after unescaping */
        "{\"alg\":\"HS256\",\"x\":\"\\ud800\"}",      /* lone high surrogate */
        "{\"alg\":\"HS256\",\"x\":\"\\udc00\\ud800\"}", /* reversed pair */
        "{\"alg\":\"HS256\",\"x\":\"\\u12\"}",        /* short escape */
        "{\"alg\":\"HS256\",\"x\":\"\\q\"}",          /* unknown escape */
        "{\"alg\":\"HS256\",\"x\":\"\xff\"}",         /* invalid UTF-8 */
        "{\"alg\":\"HS256\",\"x\":\"\xc0\xaf\"}",     /* overlong UTF-8 */
        "{\"alg\":\"HS256\",\"x\":\"\xed\xa0\x80\"}", /* UTF-8 surrogate */
        "{\"alg\":\"HS256\",\"x\":\"a\tb\"}",         /* raw control character */
        "{\"alg\":\"HS256\",\"x\":01}",               /* leading zero */
        "{\"alg\":\"HS256\",\"x\":+1}",
        "{\"alg\":\"HS256\",\"x\":1.}",
        "{\"alg\":\"HS256\",\"x\":NaN}",
        "{\"alg\":\"HS256\",}",                       /* trailing comma */
        "{'alg':'HS256'}",
        "{\"alg\":\"HS256\",\"x\":tru}",
        "\xef\xbb\xbf{\"alg\":\"HS256\"}",            /* byte order mark */
        "{\"alg\":\"HS256\",\"x\":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}", /* deeper than PV_JWT_DEPTH */
    };
    for (size_t i = 0; i < PV_NELEM(hdr_bad); i++)
        hs_case(ks, hdr_bad[i], "{}", 0, 0, "malformed header JSON");
    hs_case(ks, " \r\n\t{ \"alg\" : \"HS256\" } \n", "{}", 0, 0, NULL); /* whitespace around is JSON */
    static const char *not_obj[] = {"[\"HS256\"]", "\"HS256\"", "1", "null"};
    for (size_t i = 0; i < PV_NELEM(not_obj); i++)
        hs_case(ks, not_obj[i], "{}", 0, 0, "header is not a JSON object");
    hs_case(ks, "{\"alg\":\"HS256\"}", "{\"a\":1,\"a\":2}", 0, 0, "malformed claims JSON");
    hs_case(ks, "{\"alg\":\"HS256\"}", "{\"a\":1} x", 0, 0, "malformed claims JSON");
    hs_case(ks, "{\"alg\":\"HS256\"}", "[1,2]", 0, 0, "claims are not a JSON object");
    pv_jwks_free(ks);
}

static void test_crit(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    static const char *hdrs[] = {"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{\"alg\":\"HS256\",\"crit\":[]}",
                                 "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
                                 "{\"alg\":\"HS256\",\"crit\":\"x\"}"};
    for (size_t i = 0; i < PV_NELEM(hdrs); i++)
        hs_case(ks, hdrs[i], "{}", 0, 0, "unsupported critical header parameter");
    /* keys carried in the token are never used */
    sig_case(ks, "{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"YWJj\"}}", "{}", "HS256", NULL, "abc", 3, 0, 0,
             "signature verification failed");
    pv_jwks_free(ks);
}

static void test_exp_nbf(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    static const char *h = "{\"alg\":\"HS256\"}";
    static const struct {
        const char *claims;
        int64_t now, leeway;
        const char *want;
    } cases[] = {
        {"{\"exp\":1000}", 999, 0, NULL},
        {"{\"exp\":1000}", 1000, 0, NULL},
        {"{\"exp\":1000}", 1001, 0, "token expired"},
        {"{\"exp\":1000}", 1005, 5, NULL},
        {"{\"exp\":1000}", 1006, 5, "token expired"},
        {"{\"exp\":1000}", 1001, -100, "token expired"}, /* a negative leeway counts as 0 */
        {"{\"nbf\":2000,\"exp\":3000}", 1999, 0, "token not yet valid"},
        {"{\"nbf\":2000,\"exp\":3000}", 1999, 1, NULL},
        {"{\"nbf\":2000,\"exp\":3000}", 2000, 0, NULL},
        {"{\"nbf\":2000,\"exp\":3000}", 3001, 0, "token expired"},
        {"{\"exp\":1000.5}", 1000, 0, NULL},
        {"{\"exp\":1000.5}", 1001, 0, "token expired"},
        {"{\"exp\":1e3}", 1001, 0, "token expired"},
        {"{\"exp\":1e400}", INT64_MAX, 0, NULL},
        {"{\"exp\":-1e400}", 0, 0, "token expired"},
        {"{\"exp\":\"1000\"}", 0, 0, "exp is not a number"},
        {"{\"exp\":null}", 0, 0, "exp is not a number"},
        {"{\"exp\":true}", 0, 0, "exp is not a number"},
        {"{\"exp\":[1]}", 0, 0, "exp is not a number"},
        {"{\"exp\":{}}", 0, 0, "exp is not a number"},
        {"{\"nbf\":\"x\"}", 0, 0, "nbf is not a number"},
        {"{\"iat\":\"whenever\"}", 0, 0, NULL}, /* iat is not checked, as in NGINX */
    };
    for (size_t i = 0; i < PV_NELEM(cases); i++)
        hs_case(ks, h, cases[i].claims, cases[i].now, cases[i].leeway, cases[i].want);
    pv_jwks_free(ks);
}

static void test_structure(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    assert_err(verify1(ks, "", 0), "empty token");
    static const char *bad[] = {"abc", "a.b", "a.b.c.d", ".e30.AAAA", "e30..AAAA", "a.b.c.d.e.f"};
    for (size_t i = 0; i < PV_NELEM(bad); i++)
        assert_err(verify1(ks, bad[i], 0), "malformed token");
    assert_err(verify1(ks, "a.b.c.d.e", 0), "encrypted tokens (JWE) are not supported");
    char *h = b64s("{\"alg\":\"HS256\"}"), buf[128];
    snprintf(buf, sizeof(buf), "%s.e30.", h);
    assert_err(verify1(ks, buf, 0), "missing signature");
    free(h);
    /* over the size limit */
    size_t big = PV_JWT_TOKEN_MAX + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[big] = '\0';
    assert_err(verify1(ks, huge, 0), "token too large");
    free(huge);
    /* memory smaller than the token needs */
    char *t = mint_hs("{\"alg\":\"HS256\"}", "{\"sub\":\"someone with a long name\"}");
    char small[64];
    pv_jwt_t jt;
    pv_jwt_init(&jt, small, sizeof(small));
    const char *err = NULL;
    assert_int_equal(pv_jwt_verify(ks, t, strlen(t), 0, 0, &jt, &err), PV_ERR);
    assert_string_equal(err, "token too large");
    free(t);
    /* no key set at all */
    t = mint_hs("{\"alg\":\"HS256\"}", "{}");
    assert_err(verify1(NULL, t, 0), "no suitable key");
    free(t);
    pv_jwks_free(ks);
}

static void test_kid_selection(void **state)
{
    (void)state;
    static const unsigned char ka[32] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", kb[32] = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
                               kn[32] = "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN";
    char a[64], b[64], n[64], set[512];
    b64url(ka, 32, a);
    b64url(kb, 32, b);
    b64url(kn, 32, n);
    snprintf(set, sizeof(set),
             "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"A\",\"k\":\"%s\"},{\"kty\":\"oct\",\"kid\":\"B\",\"k\":\"%s\"},"
             "{\"kty\":\"oct\",\"k\":\"%s\"}]}",
             a, b, n);
    pv_jwks_t *ks = jwks(set);
    static const struct {
        const char *hdr;
        const unsigned char *key;
        const char *want;
    } cases[] = {
        {"{\"alg\":\"HS256\",\"kid\":\"B\"}", kb, NULL},
        {"{\"alg\":\"HS256\",\"kid\":\"\\u0042\"}", kb, NULL},
        {"{\"alg\":\"HS256\",\"kid\":\"B\"}", ka, "signature verification failed"},
        {"{\"alg\":\"HS256\",\"kid\":\"A\"}", kn, "signature verification failed"}, /* kid-less key not tried */
        {"{\"alg\":\"HS256\"}", kb, NULL}, /* no kid: every key is tried */
        {"{\"alg\":\"HS256\"}", kn, NULL},
        {"{\"alg\":\"HS256\",\"kid\":\"C\"}", ka, "no suitable key"},
        {"{\"alg\":\"HS256\",\"kid\":7}", ka, "kid is not a string"},
        {"{\"alg\":\"HS512\"}", ka, "no suitable key"}, /* 32 bytes are too short for HS512 (RFC 7518 3.2) */
    };
    for (size_t i = 0; i < PV_NELEM(cases); i++) {
        const char *alg = strstr(cases[i].hdr, "HS512") ? "HS512" : "HS256";
        sig_case(ks, cases[i].hdr, "{}", alg, NULL, cases[i].key, 32, 0, 0, cases[i].want);
    }
    pv_jwks_free(ks);
}

static void test_ec_signature_forms(void **state)
{
    (void)state;
    pv_jwks_t *ks = keys_of(jwk_json(g_p256, NULL, NULL), NULL);
    sig_case(ks, "{\"alg\":\"ES256\"}", "{}", "ES256", g_p256, NULL, 0, 0, 0, NULL);
    /* a signature in DER form, as OpenSSL makes it */
    static const char input[] = "eyJhbGciOiJFUzI1NiJ9.e30"; /* {"alg":"ES256"}.{} */
    unsigned char der[128];
    size_t dl = sizeof(der);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, g_p256), 1);
    assert_int_equal(EVP_DigestSign(m, der, &dl, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(m);
    char tok[512], sig[256];
    b64url(der, dl, sig);
    snprintf(tok, sizeof(tok), "%s.%s", input, sig);
    assert_err(verify1(ks, tok, 0), "signature verification failed");
    /* R || S of zero, and a short signature */
    unsigned char zero[64] = {0};
    b64url(zero, 64, sig);
    snprintf(tok, sizeof(tok), "%s.%s", input, sig);
    assert_err(verify1(ks, tok, 0), "signature verification failed");
    b64url(zero, 63, sig);
    snprintf(tok, sizeof(tok), "%s.%s", input, sig);
    assert_err(verify1(ks, tok, 0), "signature verification failed");
    /* an ES384 token has no P-384 key here */
    sig_case(ks, "{\"alg\":\"ES384\"}", "{}", "ES384", g_p384, NULL, 0, 0, 0, "no suitable key");
    pv_jwks_free(ks);
}

/* ---- key set loading -------------------------------------------------- */

static void test_jwks_errors(void **state)
{
    (void)state;
    static const char *errs[][2] = {
        {"{\n\"keys\": [\n{,}]}", "invalid JSON in key file (expected member name) in test.jwks:3"},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\",\"k\":\"AAAA\"}]}",
         "invalid JSON in key file (duplicate member name) in test.jwks:1"},
        {"", "invalid JSON in key file (unexpected end of text) in test.jwks:1"},
        {"{\"keys\":{}}", "key file is not a JSON Web Key Set (no \"keys\" array) in test.jwks:1"},
        {"[]", "key file is not a JSON Web Key Set (no \"keys\" array) in test.jwks:1"},
        {"{\"keys\":[]}", "no usable signature key in test.jwks:1"},
        {"{\"keys\":[\n{\"kty\":\"oct\",\"k\":\"AAAA\"},\n{\"kty\":\"oct\"}\n]}",
         "key has no \"k\" string in test.jwks:3"},
        {"{\"keys\":[\n\n\"x\"]}", "key is not a JSON object in test.jwks:3"},
        {"{\"keys\":[{\"k\":\"AAAA\"}]}", "key has no \"kty\" string in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA=\"}]}", "invalid base64url in \"k\" in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"\"}]}", "empty \"k\" in oct key in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":\"AAAA\"}]}",
         "key \"alg\" RS256 does not fit its \"kty\" in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"oct\",\"alg\":7,\"k\":\"AAAA\"}]}",
         "key \"alg\" is not a string in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"oct\",\"kid\":1,\"k\":\"AAAA\"}]}",
         "key \"kid\" is not a string of at most 1024 bytes in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}", "key has no \"n\" string in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
         "EC coordinates must be 32 bytes for P-256 in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\","
         "\"y\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\"}]}", /* off the curve */
         "invalid EC key (point not on curve P-256) in test.jwks:1"},
        {"{\"keys\":[{\"kty\":\"EC\",\"x\":\"AAAA\"}]}", "EC key has no \"crv\" string in test.jwks:1"},
    };
    for (size_t i = 0; i < PV_NELEM(errs); i++)
        assert_string_equal(jwks_err(errs[i][0]), errs[i][1]);
    EVP_PKEY *small = EVP_RSA_gen(1024);
    assert_string_equal(jwk_err(jwk_json(small, NULL, NULL)), "RSA key of 1024 bits (2048 to 16384 allowed) in test.jwks:1");
    EVP_PKEY_free(small);
    char *j = jwk_json(g_rsa, NULL, NULL);
    memcpy(strstr(j, "\"e\":\"AQAB\""), "\"e\":\"AQ\"  ", 10); /* exponent 1 */
    assert_string_equal(jwk_err(j), "invalid RSA exponent \"e\" in test.jwks:1");
    assert_string_equal(jwk_err(jwk_json(g_p256, NULL, "ES384")), "key \"alg\" does not fit curve P-256 in test.jwks:1");
    /* what is skipped rather than refused */
    static const char skipped[] =
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
        "{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"AAAA\"},"
        "{\"kty\":\"oct\",\"alg\":\"A128KW\",\"k\":\"AAAA\"},"
        "{\"kty\":\"oct\",\"key_ops\":[\"encrypt\"],\"k\":\"AAAA\"},"
        "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AAAA\",\"y\":\"AAAA\"},"
        "{\"kty\":\"whatever\"}]}";
    assert_string_equal(jwks_err(skipped), "no usable signature key in test.jwks:1");
    char both[2048];
    snprintf(both, sizeof(both), "%.*s,{\"kty\":\"oct\",\"key_ops\":[\"sign\",\"verify\"],\"k\":\"AAAA\"}]}",
             (int)(sizeof(skipped) - 3), skipped);
    pv_jwks_t *ks = jwks(both);
    assert_int_equal(pv_jwks_count(ks), 1);
    pv_jwks_free(ks);
    /* files */
    char err[256];
    assert_null(pv_jwks_load("/nonexistent/keys.json", err, sizeof(err)));
    assert_string_equal(err, "open() \"/nonexistent/keys.json\" failed (2: No such file or directory)");
    char path[] = "/tmp/pv_jwks_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, A1_JWKS, strlen(A1_JWKS)), (ssize_t)strlen(A1_JWKS));
    close(fd);
    ks = pv_jwks_load(path, err, sizeof(err));
    assert_non_null(ks);
    assert_ok(verify1(ks, A1_TOKEN, 0));
    pv_jwks_free(ks);
    unlink(path);
    pv_jwks_free(NULL);
    assert_int_equal(pv_jwks_count(NULL), 0);
}

/* ---- claim and header values ------------------------------------------ */

static void test_claims(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    char *t = mint_hs("{\"alg\":\"HS256\",\"cty\":\"k\\u00e9\",\"x5t\":[\"a\",\"b\"]}",
                      "{\"s\":\"a\\\"b\\u00e9\\n\",\"plain\":\"alice\",\"n\":-1.5e3,\"i\":42,\"t\":true,\"f\":false,"
                      "\"z\":null,\"arr\":[\"x\",\"y\\u0021\",1,null,true,{\"k\": \"v\"},[1, 2]],\"e\":[],"
                      "\"o\":{\"a\":{\"b\":\"deep\"}},\"dot.name\":\"x\",\"\":\"empty name\"}");
    vt_t v = {0};
    assert_ok(verify(ks, t, 0, 0, &v));
    assert_string_equal(val(&v.t, 0, "s"), "a\"b\xc3\xa9\n");
    assert_string_equal(val(&v.t, 0, "plain"), "alice");
    assert_string_equal(val(&v.t, 0, "n"), "-1.5e3");
    assert_string_equal(val(&v.t, 0, "i"), "42");
    assert_string_equal(val(&v.t, 0, "t"), "true");
    assert_string_equal(val(&v.t, 0, "f"), "false");
    assert_string_equal(val(&v.t, 0, "z"), "");
    assert_string_equal(val(&v.t, 0, "arr"), "x,y!,1,,true,{\"k\": \"v\"},[1, 2]");
    assert_string_equal(val(&v.t, 0, "e"), "");
    assert_string_equal(val(&v.t, 0, "o"), "{\"a\":{\"b\":\"deep\"}}");
    assert_string_equal(val(&v.t, 0, "dot.name"), "x");
    assert_string_equal(val(&v.t, 0, ""), "empty name");
    assert_null(val(&v.t, 0, "missing"));
    assert_null(val(&v.t, 0, "alg")); /* header parameters are not claims */
    assert_string_equal(val(&v.t, 1, "alg"), "HS256");
    assert_string_equal(val(&v.t, 1, "cty"), "k\xc3\xa9");
    assert_string_equal(val(&v.t, 1, "x5t"), "a,b");
    assert_null(val(&v.t, 1, "typ"));

    /* a plain string is not copied: it points into the token's memory */
    char buf[64];
    pv_str_t s;
    assert_int_equal(pv_jwt_claim(&v.t, "plain", 5, buf, sizeof(buf), &s), PV_OK);
    assert_true(s.p >= v.mem && s.p + s.len <= v.mem + v.t.cap);
    assert_int_equal(pv_jwt_claim(&v.t, "plain", 5, NULL, 0, &s), PV_OK);
    /* buffers too small */
    assert_int_equal(pv_jwt_claim(&v.t, "s", 1, buf, 3, &s), -ENOSPC);
    assert_int_equal(pv_jwt_claim(&v.t, "arr", 3, buf, 5, &s), -ENOSPC);
    assert_int_equal(pv_jwt_claim(&v.t, "arr", 3, buf, 0, &s), -ENOSPC);

    /* nested paths */
    pv_str_t path[3] = {PV_STR("o"), PV_STR("a"), PV_STR("b")};
    assert_int_equal(pv_jwt_claim_path(&v.t, path, 3, buf, sizeof(buf), &s), PV_OK);
    assert_int_equal(s.len, 4);
    assert_memory_equal(s.p, "deep", 4);
    assert_int_equal(pv_jwt_claim_path(&v.t, path, 2, buf, sizeof(buf), &s), PV_OK);
    assert_int_equal(s.len, 12);
    assert_memory_equal(s.p, "{\"b\":\"deep\"}", 12);
    pv_str_t miss[2] = {PV_STR("o"), PV_STR("x")};
    assert_int_equal(pv_jwt_claim_path(&v.t, miss, 2, buf, sizeof(buf), &s), -ENOENT);
    pv_str_t through[2] = {PV_STR("s"), PV_STR("x")}; /* s is not an object */
    assert_int_equal(pv_jwt_claim_path(&v.t, through, 2, buf, sizeof(buf), &s), -ENOENT);
    assert_int_equal(pv_jwt_claim_path(&v.t, path, 0, buf, sizeof(buf), &s), -ENOENT);

    /* nothing is readable from a failed verification */
    assert_err(verify(ks, "a.b.c", 0, 0, &v), "malformed header encoding");
    assert_int_equal(pv_jwt_claim(&v.t, "plain", 5, buf, sizeof(buf), &s), -ENOENT);
    assert_int_equal(pv_jwt_header(&v.t, "alg", 3, buf, sizeof(buf), &s), -ENOENT);
    vt_free(&v);
    free(t);
    pv_jwks_free(ks);
    assert_string_equal(pv_jwt_alg_name(PV_JWT_ES512), "ES512");
    assert_string_equal(pv_jwt_alg_name(PV_JWT_ALG_NONE), "");
}

/* pv_jwt_mem_size is an upper bound for any token, even adversarial ones
 * made of the smallest JSON values. */
static void test_mem_size(void **state)
{
    (void)state;
    pv_jwks_t *ks = jwks(g_oct_jwks);
    char claims[4096];
    size_t o = 0;
    claims[o++] = '[';
    for (int i = 0; i < 1000; i++) {
        claims[o++] = '1';
        claims[o++] = ',';
    }
    claims[o - 1] = ']';
    claims[o] = '\0';
    char hdr[4200];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"a\":%s}", claims);
    char pay[4200];
    snprintf(pay, sizeof(pay), "{\"a\":[[[[[[[[[[[[[[%s]]]]]]]]]]]]]],\"b\":{\"\":[]}}", claims);
    char *t = mint_hs(hdr, pay);
    vt_t v = {0};
    assert_ok(verify(ks, t, 0, 0, &v));
    vt_free(&v);
    free(t);
    pv_jwks_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515),
        cmocka_unit_test(test_rfc7520),
        cmocka_unit_test(test_python_signed),
        cmocka_unit_test(test_every_alg_signed_here),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_unknown_alg),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_b64url_strict),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_crit),
        cmocka_unit_test(test_exp_nbf),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_kid_selection),
        cmocka_unit_test(test_ec_signature_forms),
        cmocka_unit_test(test_jwks_errors),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_mem_size),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
