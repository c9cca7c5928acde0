/* API key file: SHA-256 digests in an open-addressing table; see apikey.h. */
#include "apikey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../core/file.h"

#define DIGEST_LEN 32

/* One table slot. */
typedef struct ak_slot_s {
    unsigned char digest[DIGEST_LEN]; /* SHA-256 of the key */
    uint32_t consumer;                /* index into names + 1; 0 marks an empty slot */
    uint32_t line;                    /* line of the key in its file, for duplicate messages */
} ak_slot_t;

struct pv_apikeys_s {
    ak_slot_t *slots;  /* the table */
    size_t mask;       /* slot count - 1 (a power of two) */
    size_t n;          /* keys */
    pv_str_t *names;   /* consumer of each key, pointing into blob */
    char *blob;        /* consumer names, back to back */
};

static int sha256(const char *s, size_t n, unsigned char out[DIGEST_LEN])
{
    return EVP_Digest(s, n, out, NULL, EVP_sha256(), NULL) == 1 ? PV_OK : PV_ERR;
}

/* First slot to probe for a digest: the digest is uniform, so any 8 of its
 * bytes serve as the hash. */
static size_t slot_of(const pv_apikeys_t *ks, const unsigned char *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h));
    return (size_t)h & ks->mask;
}

/* The slot holding digest d, or the empty slot where it would go. */
static ak_slot_t *probe(const pv_apikeys_t *ks, const unsigned char *d)
{
    for (size_t i = slot_of(ks, d);; i = (i + 1) & ks->mask) {
        ak_slot_t *s = &ks->slots[i];
        if (!s->consumer || CRYPTO_memcmp(s->digest, d, DIGEST_LEN) == 0)
            return s;
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_field_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

/* Split line s[0..n) into fields; returns their count (up to max). */
static size_t split(const char *s, size_t n, pv_str_t *f, size_t max, int *badchar)
{
    size_t nf = 0, i = 0;
    *badchar = 0;
    while (i < n) {
        while (i < n && is_blank(s[i]))
            i++;
        if (i == n)
            break;
        size_t st = i;
        while (i < n && !is_blank(s[i])) {
            if (!is_field_char((unsigned char)s[i]))
                *badchar = 1;
            i++;
        }
        if (nf < max)
            f[nf] = (pv_str_t){s + st, i - st};
        nf++;
    }
    return nf;
}

pv_apikeys_t *pv_apikey_load_text(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    size_t slots = 16;
    while (slots < lines * 2)
        slots <<= 1;
    pv_apikeys_t *ks = calloc(1, sizeof(*ks));
    if (ks) {
        ks->slots = calloc(slots, sizeof(ak_slot_t));
        ks->names = calloc(lines, sizeof(pv_str_t));
        ks->blob = malloc(len + 1);
        ks->mask = slots - 1;
    }
    if (!ks || !ks->slots || !ks->names || !ks->blob || lines >= UINT32_MAX) {
        snprintf(err, errlen, "out of memory loading %s", name);
        pv_apikey_free(ks);
        return NULL;
    }
    size_t blob_used = 0;
    unsigned line = 0;
    char msg[160];
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (n && s[n - 1] == '\r')
            n--;
        pv_str_t f[2];
        int badchar;
        size_t nf = split(s, n, f, 2, &badchar);
        if (nf == 0 || f[0].p[0] == '#')
            continue;
        if (nf != 2) {
            snprintf(msg, sizeof(msg), "expected \"KEY CONSUMER\", found %zu field%s", nf, nf == 1 ? "" : "s");
            goto fail;
        }
        if (badchar) {
            snprintf(msg, sizeof(msg), "invalid character in API key or consumer name");
            goto fail;
        }
        unsigned char d[DIGEST_LEN];
        if (sha256(f[0].p, f[0].len, d) != PV_OK) {
            snprintf(msg, sizeof(msg), "SHA-256 failed");
            goto fail;
        }
        ak_slot_t *slot = probe(ks, d);
        if (slot->consumer) { /* the message names lines, never the key */
            snprintf(msg, sizeof(msg), "duplicate API key (first at line %u)", slot->line);
            OPENSSL_cleanse(d, sizeof(d));
            goto fail;
        }
        memcpy(slot->digest, d, DIGEST_LEN);
        OPENSSL_cleanse(d, sizeof(d));
        memcpy(ks->blob + blob_used, f[1].p, f[1].len);
        ks->names[ks->n] = (pv_str_t){ks->blob + blob_used, f[1].len};
        blob_used += f[1].len;
        slot->line = line;
        slot->consumer = (uint32_t)++ks->n;
    }
    return ks;
fail:
    snprintf(err, errlen, "%s in %s:%u", msg, name, line);
    pv_apikey_free(ks);
    return NULL;
}

pv_apikeys_t *pv_apikey_load(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = pv_file_read(path, PV_APIKEY_FILE_MAX, &len, err, errlen);
    if (!text)
        return NULL;
    pv_apikeys_t *ks = pv_apikey_load_text(text, len, path, err, errlen);
    OPENSSL_cleanse(text, len); /* the file holds the keys in clear */
    free(text);
    return ks;
}

void pv_apikey_free(pv_apikeys_t *ks)
{
    if (!ks)
        return;
    if (ks->slots)
        OPENSSL_cleanse(ks->slots, (ks->mask + 1) * sizeof(ak_slot_t));
    free(ks->slots);
    free(ks->names);
    free(ks->blob);
    free(ks);
}

size_t pv_apikey_count(const pv_apikeys_t *ks)
{
    return ks ? ks->n : 0;
}

int pv_apikey_lookup(const pv_apikeys_t *ks, pv_str_t key, pv_str_t *consumer)
{
    unsigned char d[DIGEST_LEN];
    if (!ks || key.len == 0 || sha256(key.p, key.len, d) != PV_OK)
        return PV_ERR;
    const ak_slot_t *s = probe(ks, d);
    OPENSSL_cleanse(d, sizeof(d));
    if (!s->consumer)
        return PV_ERR;
    *consumer = ks->names[s->consumer - 1];
    return PV_OK;
}
