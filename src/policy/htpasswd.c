/* Password file for Basic authentication; see htpasswd.h. Users are kept
 * in an open-addressing table keyed by name; hashes are checked when a
 * request comes, never at load (bcrypt at load would make reloads slow). */
#include "htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../core/base64.h"
#include "../core/file.h"

/* Hash formats. */
enum {
    HASH_CRYPT = 1, /* libcrypt: $1$ $2a$ $2b$ $2y$ $5$ $6$ $y$ */
    HASH_APR1,      /* $apr1$, computed here */
    HASH_SHA,       /* {SHA}: SHA-1 digest */
    HASH_SSHA,      /* {SSHA}: SHA-1 digest then salt */
    HASH_PLAIN,     /* {PLAIN}: kept as its SHA-256 so comparing takes the same time whatever the length */
};

#define SHA1_LEN 20
#define SHA256_LEN 32

/* One user. */
typedef struct hp_user_s {
    char *name;          /* user name (malloc'd, NUL-terminated) */
    size_t name_len;     /* its length */
    uint8_t kind;        /* HASH_* */
    char *hash;          /* crypt and apr1: the stored hash, NUL-terminated (malloc'd) */
    size_t hash_len;     /* its length */
    unsigned char *bin;  /* SHA, SSHA, PLAIN: the decoded digest (and salt) (malloc'd) */
    size_t bin_len;      /* its length */
} hp_user_t;

struct pv_htpasswd_s {
    hp_user_t *users; /* in file order */
    size_t n;         /* users */
    uint32_t *slots;  /* open addressing: user index + 1, 0 = empty */
    size_t mask;      /* slot count - 1 (a power of two) */
};

static const char CRYPT64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int is_crypt64(unsigned char c)
{
    return c && strchr(CRYPT64, c) != NULL;
}

/* n characters of the crypt alphabet at s. */
static int crypt64_run(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_crypt64((unsigned char)s[i]))
            return 0;
    return 1;
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: the file is trusted, no flooding concern */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* ---- hash formats ----------------------------------------------------- */

/* Syntax of a libcrypt hash the way its algorithm writes it. */
static int crypt_syntax_ok(const char *h, size_t n)
{
    if (n == 60 && h[0] == '$' && h[1] == '2' && strchr("aby", h[2]) && h[2] && h[3] == '$') {
        int cost = (h[4] - '0') * 10 + (h[5] - '0');
        return h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' && cost >= 4 && cost <= 31 &&
               h[6] == '$' && crypt64_run(h + 7, 53);
    }
    if (n > 3 && h[0] == '$' && (h[1] == '5' || h[1] == '6' || h[1] == '1') && h[2] == '$') {
        size_t i = 3;
        if (h[1] != '1' && n - i > 7 && memcmp(h + i, "rounds=", 7) == 0) {
            i += 7;
            size_t d = i;
            while (i < n && h[i] >= '0' && h[i] <= '9')
                i++;
            if (i == d || i - d > 9 || i >= n || h[i] != '$')
                return 0;
            i++;
        }
        size_t s = i;
        while (i < n && h[i] != '$')
            i++;
        size_t saltmax = h[1] == '1' ? 8 : 16, want = h[1] == '1' ? 22 : h[1] == '5' ? 43 : 86;
        return i < n && i - s <= saltmax && memchr(h + s, ':', i - s) == NULL && n - i - 1 == want &&
               crypt64_run(h + i + 1, want);
    }
    if (n > 3 && memcmp(h, "$y$", 3) == 0) { /* $y$params$salt$hash */
        int dollars = 0;
        for (size_t i = 3; i < n; i++) {
            if (h[i] == '$')
                dollars++;
            else if (!is_crypt64((unsigned char)h[i]))
                return 0;
        }
        const char *last = memrchr(h, '$', n);
        return dollars == 2 && (size_t)(h + n - last - 1) == 43;
    }
    return 0;
}

/* Syntax of "$apr1$salt$hash". */
static int apr1_syntax_ok(const char *h, size_t n)
{
    if (n < 6 || memcmp(h, "$apr1$", 6) != 0)
        return 0;
    const char *d = memchr(h + 6, '$', n - 6);
    return d && d - (h + 6) <= 8 && n - (size_t)(d - h) - 1 == 22 && crypt64_run(d + 1, 22);
}

static void to64(char *out, uint32_t v, int n)
{
    while (n-- > 0) {
        *out++ = CRYPT64[v & 0x3f];
        v >>= 6;
    }
}

/* MD5-based crypt with the given magic ("$apr1$" for Apache's variant,
 * which differs from "$1$" only in that string). out gets
 * magic salt '$' 22 characters and a NUL; PV_ERR on failure. */
static int md5_crypt(const char *pw, size_t pwlen, const char *salt, size_t saltlen, const char *magic, char *out,
                     size_t cap)
{
    size_t mlen = strlen(magic);
    if (saltlen > 8)
        saltlen = 8;
    if (cap < mlen + saltlen + 1 + 22 + 1)
        return PV_ERR;
    const EVP_MD *md5 = EVP_md5();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char fin[16];
    int ok = ctx != NULL;
    ok = ok && EVP_DigestInit_ex(ctx, md5, NULL) && EVP_DigestUpdate(ctx, pw, pwlen) &&
         EVP_DigestUpdate(ctx, salt, saltlen) && EVP_DigestUpdate(ctx, pw, pwlen) &&
         EVP_DigestFinal_ex(ctx, fin, NULL);
    ok = ok && EVP_DigestInit_ex(ctx, md5, NULL) && EVP_DigestUpdate(ctx, pw, pwlen) &&
         EVP_DigestUpdate(ctx, magic, mlen) && EVP_DigestUpdate(ctx, salt, saltlen);
    for (size_t pl = pwlen; ok && pl > 0; pl -= pl > 16 ? 16 : pl)
        ok = EVP_DigestUpdate(ctx, fin, pl > 16 ? 16 : pl);
    for (size_t i = pwlen; ok && i; i >>= 1)
        ok = EVP_DigestUpdate(ctx, (i & 1) ? (const void *)"" : (const void *)pw, 1);
    ok = ok && EVP_DigestFinal_ex(ctx, fin, NULL);
    for (int i = 0; ok && i < 1000; i++) {
        ok = EVP_DigestInit_ex(ctx, md5, NULL);
        ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, pw, pwlen) : EVP_DigestUpdate(ctx, fin, 16));
        if (ok && i % 3)
            ok = EVP_DigestUpdate(ctx, salt, saltlen);
        if (ok && i % 7)
            ok = EVP_DigestUpdate(ctx, pw, pwlen);
        ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, fin, 16) : EVP_DigestUpdate(ctx, pw, pwlen));
        ok = ok && EVP_DigestFinal_ex(ctx, fin, NULL);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(fin, sizeof(fin));
        return PV_ERR;
    }
    char *p = out;
    memcpy(p, magic, mlen);
    p += mlen;
    memcpy(p, salt, saltlen);
    p += saltlen;
    *p++ = '$';
    to64(p, (uint32_t)fin[0] << 16 | (uint32_t)fin[6] << 8 | fin[12], 4);
    to64(p + 4, (uint32_t)fin[1] << 16 | (uint32_t)fin[7] << 8 | fin[13], 4);
    to64(p + 8, (uint32_t)fin[2] << 16 | (uint32_t)fin[8] << 8 | fin[14], 4);
    to64(p + 12, (uint32_t)fin[3] << 16 | (uint32_t)fin[9] << 8 | fin[15], 4);
    to64(p + 16, (uint32_t)fin[4] << 16 | (uint32_t)fin[10] << 8 | fin[5], 4);
    to64(p + 20, fin[11], 2);
    p[22] = '\0';
    OPENSSL_cleanse(fin, sizeof(fin));
    return PV_OK;
}

/* Equal-length strings compared in constant time. */
static int same_text(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

static int digest(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen, unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, a, alen) &&
             EVP_DigestUpdate(ctx, b, blen) && EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    return ok ? PV_OK : PV_ERR;
}

/* Classify and decode a stored hash into u; msg on error. */
static int hash_parse(const char *h, size_t n, hp_user_t *u, char *msg, size_t msglen)
{
    unsigned char tmp[1024];
    size_t tl = 0;
    if (n >= 5 && memcmp(h, "{SHA}", 5) == 0) {
        if (pv_b64_decode(h + 5, n - 5, 0, 1, tmp, sizeof(tmp), &tl) != PV_OK || tl != SHA1_LEN)
            goto bad;
        u->kind = HASH_SHA;
    } else if (n >= 6 && memcmp(h, "{SSHA}", 6) == 0) {
        if (pv_b64_decode(h + 6, n - 6, 0, 1, tmp, sizeof(tmp), &tl) != PV_OK || tl <= SHA1_LEN)
            goto bad;
        u->kind = HASH_SSHA;
    } else if (n >= 7 && memcmp(h, "{PLAIN}", 7) == 0) {
        if (digest(EVP_sha256(), h + 7, n - 7, "", 0, tmp) != PV_OK)
            goto bad;
        tl = SHA256_LEN;
        u->kind = HASH_PLAIN;
    } else if (apr1_syntax_ok(h, n)) {
        u->kind = HASH_APR1;
    } else if (crypt_syntax_ok(h, n)) {
        u->kind = HASH_CRYPT;
    } else {
        snprintf(msg, msglen, "unsupported or malformed password hash for user \"%s\"", u->name);
        return PV_ERR;
    }
    if (u->kind == HASH_APR1 || u->kind == HASH_CRYPT) {
        u->hash = malloc(n + 1);
        if (!u->hash)
            goto oom;
        memcpy(u->hash, h, n);
        u->hash[n] = '\0';
        u->hash_len = n;
    } else {
        u->bin = malloc(tl);
        if (!u->bin)
            goto oom;
        memcpy(u->bin, tmp, tl);
        u->bin_len = tl;
    }
    return PV_OK;
bad:
    snprintf(msg, msglen, "malformed password hash for user \"%s\"", u->name);
    return PV_ERR;
oom:
    snprintf(msg, msglen, "out of memory");
    return PV_ERR;
}

/* The password against one user's stored hash. */
static int user_verify(const hp_user_t *u, const char *pw, size_t pwlen)
{
    if (pwlen > PV_HTPASSWD_PASS_MAX)
        return PV_ERR;
    unsigned char dg[SHA256_LEN];
    int ok = 0;
    switch (u->kind) {
    case HASH_SHA:
        ok = digest(EVP_sha1(), pw, pwlen, "", 0, dg) == PV_OK && CRYPTO_memcmp(dg, u->bin, SHA1_LEN) == 0;
        break;
    case HASH_SSHA:
        ok = digest(EVP_sha1(), pw, pwlen, u->bin + SHA1_LEN, u->bin_len - SHA1_LEN, dg) == PV_OK &&
             CRYPTO_memcmp(dg, u->bin, SHA1_LEN) == 0;
        break;
    case HASH_PLAIN:
        ok = digest(EVP_sha256(), pw, pwlen, "", 0, dg) == PV_OK && CRYPTO_memcmp(dg, u->bin, SHA256_LEN) == 0;
        break;
    case HASH_APR1: {
        char out[64];
        const char *salt = u->hash + 6, *end = strchr(salt, '$');
        ok = md5_crypt(pw, pwlen, salt, (size_t)(end - salt), "$apr1$", out, sizeof(out)) == PV_OK &&
             same_text(out, strlen(out), u->hash, u->hash_len);
        OPENSSL_cleanse(out, sizeof(out));
        break;
    }
    case HASH_CRYPT: {
        /* crypt reads NUL-terminated strings: a NUL inside would cut the
         * password short, so such a password never matches */
        if (memchr(pw, '\0', pwlen))
            return PV_ERR;
        char phrase[PV_HTPASSWD_PASS_MAX + 1];
        memcpy(phrase, pw, pwlen);
        phrase[pwlen] = '\0';
        struct crypt_data cd; /* 32 KiB: on the stack rather than allocated per check */
        memset(&cd, 0, sizeof(cd));
        const char *r = crypt_rn(phrase, u->hash, &cd, sizeof(cd));
        ok = r && r[0] != '*' && same_text(r, strlen(r), u->hash, u->hash_len);
        OPENSSL_cleanse(&cd, sizeof(cd));
        OPENSSL_cleanse(phrase, pwlen);
        break;
    }
    }
    OPENSSL_cleanse(dg, sizeof(dg));
    return ok ? PV_OK : PV_ERR;
}

int pv_htpasswd_verify(pv_str_t hash, pv_str_t password)
{
    hp_user_t u = {.name = (char *)"", .name_len = 0};
    char msg[128];
    int rc = PV_ERR;
    if (hash_parse(hash.p, hash.len, &u, msg, sizeof(msg)) == PV_OK)
        rc = user_verify(&u, password.p, password.len);
    free(u.hash);
    free(u.bin);
    return rc;
}

/* ---- loading ---------------------------------------------------------- */

static void user_clear(hp_user_t *u)
{
    free(u->name);
    if (u->hash) {
        OPENSSL_cleanse(u->hash, u->hash_len);
        free(u->hash);
    }
    if (u->bin) {
        OPENSSL_cleanse(u->bin, u->bin_len);
        free(u->bin);
    }
    memset(u, 0, sizeof(*u));
}

static const hp_user_t *user_find(const pv_htpasswd_t *h, const char *name, size_t len)
{
    if (!h || !h->slots)
        return NULL;
    for (size_t i = name_hash(name, len) & h->mask;; i = (i + 1) & h->mask) {
        uint32_t s = h->slots[i];
        if (!s)
            return NULL;
        const hp_user_t *u = &h->users[s - 1];
        if (u->name_len == len && memcmp(u->name, name, len) == 0)
            return u;
    }
}

/* Count the lines that may hold users, to size the arrays once. */
static size_t count_lines(const char *text, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

/* Parse text; lenient: as NGINX reads the file per request, a line that
 * cannot be taken is skipped (no ':', an empty user; a repeated user:
 * the first line counts) and a hash that cannot be taken never matches. */
static pv_htpasswd_t *load_text(const char *text, size_t len, const char *name, char *err, size_t errlen,
                                int lenient)
{
    pv_htpasswd_t *h = calloc(1, sizeof(*h));
    size_t maxusers = count_lines(text, len), slots = 16;
    while (slots < maxusers * 2)
        slots <<= 1;
    if (h) {
        h->users = calloc(maxusers, sizeof(hp_user_t));
        h->slots = calloc(slots, sizeof(uint32_t));
        h->mask = slots - 1;
    }
    if (!h || !h->users || !h->slots || maxusers >= UINT32_MAX) {
        snprintf(err, errlen, "out of memory loading %s", name);
        pv_htpasswd_free(h);
        return NULL;
    }
    unsigned line = 0;
    char msg[256];
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (n && s[n - 1] == '\r')
            n--;
        size_t lead = 0;
        while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
            lead++;
        if (lead == n || s[0] == '#')
            continue;
        const char *colon = memchr(s, ':', n);
        if (lenient && (!colon || colon == s || user_find(h, s, (size_t)(colon - s))))
            continue;
        if (!colon) {
            snprintf(msg, sizeof(msg), "no ':' between user and password");
            goto fail;
        }
        size_t ulen = (size_t)(colon - s);
        if (ulen == 0) {
            snprintf(msg, sizeof(msg), "empty user name");
            goto fail;
        }
        const char *hs = colon + 1, *hend = memchr(hs, ':', n - ulen - 1); /* a comment may follow */
        size_t hlen = hend ? (size_t)(hend - hs) : n - ulen - 1;
        if (user_find(h, s, ulen)) {
            snprintf(msg, sizeof(msg), "duplicate user \"%.*s\"", (int)PV_MIN(ulen, 128), s);
            goto fail;
        }
        hp_user_t *u = &h->users[h->n];
        u->name = malloc(ulen + 1);
        if (!u->name) {
            snprintf(msg, sizeof(msg), "out of memory");
            goto fail;
        }
        memcpy(u->name, s, ulen);
        u->name[ulen] = '\0';
        u->name_len = ulen;
        if (hash_parse(hs, hlen, u, msg, sizeof(msg)) != PV_OK) {
            if (!lenient) {
                user_clear(u);
                goto fail;
            }
            u->kind = 0; /* never matches */
        }
        size_t i = name_hash(s, ulen) & h->mask;
        while (h->slots[i])
            i = (i + 1) & h->mask;
        h->slots[i] = (uint32_t)++h->n;
    }
    return h;
fail:
    snprintf(err, errlen, "%s in %s:%u", msg, name, line);
    pv_htpasswd_free(h);
    return NULL;
}

pv_htpasswd_t *pv_htpasswd_load_text(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    return load_text(text, len, name, err, errlen, 0);
}

static pv_htpasswd_t *load(const char *path, char *err, size_t errlen, int lenient)
{
    size_t len = 0;
    char *text = pv_file_read(path, PV_HTPASSWD_FILE_MAX, &len, err, errlen);
    if (!text)
        return NULL;
    pv_htpasswd_t *h = load_text(text, len, path, err, errlen, lenient);
    OPENSSL_cleanse(text, len);
    free(text);
    return h;
}

pv_htpasswd_t *pv_htpasswd_load(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, 0);
}

pv_htpasswd_t *pv_htpasswd_load_lenient(const char *path, char *err, size_t errlen)
{
    return load(path, err, errlen, 1);
}

void pv_htpasswd_free(pv_htpasswd_t *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        user_clear(&h->users[i]);
    free(h->users);
    free(h->slots);
    free(h);
}

size_t pv_htpasswd_count(const pv_htpasswd_t *h)
{
    return h ? h->n : 0;
}

int pv_htpasswd_check(const pv_htpasswd_t *h, pv_str_t user, pv_str_t password)
{
    const hp_user_t *u = user_find(h, user.p, user.len);
    return u ? user_verify(u, password.p, password.len) : PV_ERR;
}

/* ---- Authorization: Basic --------------------------------------------- */

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int pv_htpasswd_basic_parse(pv_str_t value, char *buf, size_t cap, pv_str_t *user, pv_str_t *password)
{
    const char *p = value.p, *end = value.p + value.len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - p < 6 || !pv_str_ieq((pv_str_t){p, 5}, "basic", 5) || p[5] != ' ')
        return PV_ERR;
    p += 6;
    while (p < end && *p == ' ')
        p++;
    size_t n = 0;
    if (p == end || pv_b64_decode(p, (size_t)(end - p), 0, 0, (unsigned char *)buf, cap, &n) != PV_OK)
        return PV_ERR;
    const char *colon = memchr(buf, ':', n);
    if (!colon || colon == buf)
        return PV_ERR;
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)buf[i]))
            return PV_ERR;
    *user = (pv_str_t){buf, (size_t)(colon - buf)};
    *password = (pv_str_t){colon + 1, n - (size_t)(colon - buf) - 1};
    return PV_OK;
}
