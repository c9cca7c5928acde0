/* libFuzzer target: JWT verification, JWKS loading, the JSON parser and
 * base64url. The first byte picks what the rest is:
 *   '0' (and any byte = 0 mod 4): a token, verified against a fixed key set
 *       (an HMAC key, the RFC 7515 A.2 RSA key, the A.3 P-256 key);
 *   '1': a JWKS text to load;
 *   '2': a JSON text to parse;
 *   '3': a header JSON, a newline, a claims JSON: the target signs them
 *        with the HMAC key so the claims paths behind the signature run.
 * Promises checked: memory from pv_jwt_mem_size always suffices (the
 * allocation is exact, so ASan sees any overrun), pv_json_count is exact
 * for valid JSON and at most (len + 1) / 2, unescaped lengths agree,
 * claim values lie inside the caller's buffer or the token memory, and
 * base64url decoding is canonical (re-encoding gives the input back). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../src/policy/json.h"
#include "../src/policy/jwt.h"

static const char KEYS[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
    "{\"kty\":\"RSA\",\"kid\":\"r\",\"e\":\"AQAB\",\"n\":\""
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef";

static pv_jwks_t *keys;

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        out[o++] = tab[in[i] >> 2];
        out[o++] = tab[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = tab[v >> 10];
        out[o++] = tab[(v >> 4) & 63];
        out[o++] = tab[(v & 15) << 2];
    }
    out[o] = '\0';
}

/* A value must lie in buf[0..cap) or in the token's memory. */
static void check_span(const pv_jwt_t *t, const char *buf, size_t cap, pv_str_t s)
{
    int in_buf = s.p >= buf && s.p + s.len <= buf + cap;
    int in_mem = s.p >= t->mem && s.p + s.len <= t->mem + t->cap;
    if (!in_buf && !in_mem && s.len != 0)
        abort();
}

/* Read every claim and header parameter back, with a roomy and a tiny
 * buffer. */
static void read_values(const pv_jwt_t *t)
{
    static char big[1 << 17];
    char tiny[4];
    const pv_json_t *docs[2] = {&t->claims, &t->header};
    for (int h = 0; h < 2; h++) {
        const pv_json_t *d = docs[h];
        for (const pv_json_node_t *k = pv_json_first(d, pv_json_root(d)); k; k = pv_json_next(d, k + 1)) {
            char name[256];
            pv_str_t nm;
            if (pv_json_strlen(d, k) > sizeof(name) || pv_json_str(d, k, name, sizeof(name), &nm) != PV_OK)
                continue;
            pv_str_t v;
            int rc = h ? pv_jwt_header(t, nm.p, nm.len, big, sizeof(big), &v)
                       : pv_jwt_claim(t, nm.p, nm.len, big, sizeof(big), &v);
            if (rc != PV_OK)
                abort(); /* the member exists and the buffer is larger than the token */
            check_span(t, big, sizeof(big), v);
            rc = h ? pv_jwt_header(t, nm.p, nm.len, tiny, sizeof(tiny), &v)
                   : pv_jwt_claim(t, nm.p, nm.len, tiny, sizeof(tiny), &v);
            if (rc == PV_OK)
                check_span(t, tiny, sizeof(tiny), v);
            else if (rc != -ENOSPC)
                abort();
            pv_str_t path[2] = {nm, nm};
            if (!h && pv_jwt_claim_path(t, path, 2, big, sizeof(big), &v) == PV_OK)
                check_span(t, big, sizeof(big), v);
        }
    }
}

static void verify_token(const char *tok, size_t len)
{
    size_t cap = pv_jwt_mem_size(len);
    char *mem = malloc(cap ? cap : 1);
    pv_jwt_t t;
    pv_jwt_init(&t, mem, cap);
    const char *err = NULL;
    int rc = pv_jwt_verify(keys, tok, len, 1000000000, 30, &t, &err);
    if (rc == PV_OK) {
        if (err || !t.verified)
            abort();
        read_values(&t);
    } else if (!err || (len <= PV_JWT_TOKEN_MAX && strcmp(err, "token too large") == 0)) {
        abort();
    }
    free(mem);
}

static void json_checks(const char *s, size_t len)
{
    size_t cnt = pv_json_count(s, len);
    pv_json_node_t *nodes = malloc((cnt ? cnt : 1) * sizeof(*nodes));
    pv_json_t d;
    if (pv_json_parse(&d, s, len, nodes, cnt, 12) == PV_OK) {
        if (d.n != cnt || cnt > (len + 1) / 2)
            abort();
        for (uint32_t i = 0; i < d.n; i++) {
            const pv_json_node_t *n = &d.nodes[i];
            pv_str_t raw = pv_json_raw(&d, n);
            if (raw.p < s || raw.p + raw.len > s + len)
                abort();
            if (n->type == PV_JSON_STRING) {
                size_t ul = pv_json_strlen(&d, n);
                char *buf = malloc(ul + 1);
                pv_str_t out;
                if (pv_json_str(&d, n, buf, ul, &out) != PV_OK || out.len != ul ||
                    !pv_json_streq(&d, n, out.p, out.len))
                    abort();
                free(buf);
            } else if (n->type == PV_JSON_NUMBER) {
                double dv;
                int64_t iv;
                if (n->len <= PV_JSON_NUMBER_MAX && pv_json_double(&d, n, &dv) != PV_OK)
                    abort();
                (void)pv_json_int64(&d, n, &iv);
            }
        }
    } else if (!d.err) {
        abort();
    }
    free(nodes);
}

static void b64_roundtrip(const char *s, size_t len)
{
    unsigned char *bin = malloc(len + 1);
    size_t blen = 0;
    if (pv_jwt_b64url_decode(s, len, bin, len + 1, &blen) == PV_OK) {
        char *back = malloc(len + 4);
        b64url(bin, blen, back);
        if (strlen(back) != len || memcmp(back, s, len) != 0)
            abort();
        free(back);
    }
    free(bin);
}

/* Sign header and claims texts with the HMAC key and verify the result. */
static void self_signed(const char *s, size_t len)
{
    const char *nl = memchr(s, '\n', len);
    if (!nl)
        return;
    size_t hl = (size_t)(nl - s), pl = len - hl - 1;
    char *tok = malloc((hl + pl) * 2 + 128);
    b64url((const unsigned char *)s, hl, tok);
    size_t o = strlen(tok);
    tok[o++] = '.';
    b64url((const unsigned char *)nl + 1, pl, tok + o);
    o += strlen(tok + o);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), SECRET, 32, (const unsigned char *)tok, o, mac, &ml);
    tok[o++] = '.';
    b64url(mac, ml, tok + o);
    verify_token(tok, strlen(tok));
    free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys) {
        char err[256];
        keys = pv_jwks_load_text(KEYS, sizeof(KEYS) - 1, "fuzz", err, sizeof(err));
        if (!keys)
            abort();
    }
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0:
        verify_token(s, len);
        b64_roundtrip(s, len);
        break;
    case 1: {
        char err[512];
        pv_jwks_t *ks = pv_jwks_load_text(s, len, "fuzz.jwks", err, sizeof(err));
        if (!ks && !err[0])
            abort();
        pv_jwks_free(ks);
        break;
    }
    case 2:
        json_checks(s, len);
        break;
    default:
        self_signed(s, len);
        break;
    }
    return 0;
}
