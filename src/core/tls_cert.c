#include "tls_cert.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "common.h"
#include "log.h"
#include "tls.h"

enum { KIND_CERT = 0, KIND_KEY };

/* Names longer than this (a "data:" value of a large chain) are loaded
 * every time rather than kept. */
#define NAME_MAX_CACHED 16384

typedef struct {
    char *name;               /* the file name or "data:..." value; NULL: free slot */
    size_t namelen;
    int kind;                 /* KIND_* */
    uint64_t pwhash;          /* keys: the passwords they were read with */
    dev_t dev;                /* files: what the file was when read */
    ino_t ino;
    off_t size;
    struct timespec mtime;
    X509 *x;                  /* the certificate */
    STACK_OF(X509) *chain;    /* the certificates after it */
    EVP_PKEY *pkey;           /* the key */
    uint64_t used;            /* tick of its last use */
} entry_t;

static __thread entry_t cache[PV_TLS_CERT_CACHE];
static __thread uint64_t tick;

static pv_tls_cert_fn cert_fn;

void pv_tls_cert_hook(pv_tls_cert_fn fn)
{
    cert_fn = fn;
}

static int cert_cb(SSL *ssl, void *arg)
{
    PV_UNUSED(arg);
    void *owner = pv_tls_owner(ssl);
    if (!cert_fn || !owner)
        return 0;
    return cert_fn(ssl, owner) == PV_OK ? 1 : 0;
}

void pv_tls_ctx_cert_cb(SSL_CTX *ctx)
{
    SSL_CTX_set_cert_cb(ctx, cert_cb, NULL);
}

static void entry_free(entry_t *e)
{
    free(e->name);
    X509_free(e->x);
    sk_X509_pop_free(e->chain, X509_free);
    EVP_PKEY_free(e->pkey);
    memset(e, 0, sizeof(*e));
}

void pv_tls_cert_cache_clear(void)
{
    for (size_t i = 0; i < PV_NELEM(cache); i++)
        entry_free(&cache[i]);
}

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static int is_data(const char *name)
{
    return strncmp(name, "data:", 5) == 0;
}

/* The cached entry for name, if still current; else NULL, with *slot the
 * entry to fill (a stale one of the same name, a free one or the least
 * recently used) and *st the file's state. */
static entry_t *lookup(const char *name, size_t len, int kind, uint64_t pwhash, struct stat *st, entry_t **slot)
{
    entry_t *lru = &cache[0];
    *slot = NULL;
    int file = !is_data(name);
    if (file && stat(name, st) != 0)
        memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < PV_NELEM(cache); i++) {
        entry_t *e = &cache[i];
        if (!e->name) {
            if (!*slot)
                *slot = e;
            continue;
        }
        if (e->used < lru->used)
            lru = e;
        if (e->kind != kind || e->namelen != len || memcmp(e->name, name, len) != 0 || e->pwhash != pwhash)
            continue;
        if (!file || (st->st_ino == e->ino && st->st_dev == e->dev && st->st_size == e->size &&
                      st->st_mtim.tv_sec == e->mtime.tv_sec && st->st_mtim.tv_nsec == e->mtime.tv_nsec))
            return e;
        *slot = e; /* changed since: read again into its place */
        break;
    }
    if (!*slot)
        *slot = lru;
    return NULL;
}

static void keep(entry_t *slot, const char *name, size_t len, int kind, uint64_t pwhash, const struct stat *st,
                 X509 *x, STACK_OF(X509) *chain, EVP_PKEY *pkey)
{
    entry_free(slot);
    if (len > NAME_MAX_CACHED || !(slot->name = malloc(len + 1)))
        return;
    memcpy(slot->name, name, len + 1);
    slot->namelen = len;
    slot->kind = kind;
    slot->pwhash = pwhash;
    slot->dev = st->st_dev;
    slot->ino = st->st_ino;
    slot->size = st->st_size;
    slot->mtime = st->st_mtim;
    if (x)
        X509_up_ref(x);
    slot->x = x;
    slot->chain = chain ? X509_chain_up_ref(chain) : NULL;
    if (pkey)
        EVP_PKEY_up_ref(pkey);
    slot->pkey = pkey;
    slot->used = ++tick;
}

static BIO *open_bio(const char *name, const char **err)
{
    BIO *bio = is_data(name) ? BIO_new_mem_buf(name + 5, (int)strlen(name + 5)) : BIO_new_file(name, "r");
    if (!bio)
        *err = is_data(name) ? "BIO_new_mem_buf() failed" : "BIO_new_file() failed";
    return bio;
}

/* The certificate of a PEM, then the rest of its chain. */
static X509 *read_cert(const char *name, STACK_OF(X509) **chain, const char **err)
{
    BIO *bio = open_bio(name, err);
    if (!bio)
        return NULL;
    X509 *x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    *chain = x ? sk_X509_new_null() : NULL;
    if (!x || !*chain) {
        *err = x ? "sk_X509_new_null() failed" : "PEM_read_bio_X509_AUX() failed";
        X509_free(x);
        BIO_free(bio);
        return NULL;
    }
    X509 *ca;
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if (!sk_X509_push(*chain, ca)) {
            X509_free(ca);
            break;
        }
    }
    /* the end of the input ends the chain; anything else is an error */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        *err = "PEM_read_bio_X509() failed";
        sk_X509_pop_free(*chain, X509_free);
        *chain = NULL;
        X509_free(x);
        x = NULL;
    } else {
        ERR_clear_error();
    }
    BIO_free(bio);
    return x;
}

static EVP_PKEY *read_key(const char *name, const char *passwords, size_t plen, const char **err)
{
    BIO *bio = open_bio(name, err);
    if (!bio)
        return NULL;
    EVP_PKEY *k = pv_tls_read_key(bio, passwords, plen);
    BIO_free(bio);
    if (!k)
        *err = "PEM_read_bio_PrivateKey() failed";
    return k;
}

static void load_error(const char *what, const char *name, const char *err, const char *who)
{
    char why[320];
    pv_tls_error_text(why, sizeof(why));
    pv_log(PV_LOG_ERR, "%s \"%s\": %s (%s) while SSL handshaking%s%s", what, name, err, why, who ? ", " : "",
           who ? who : "");
}

int pv_tls_cert_use(SSL *ssl, const char *cert, const char *key, const char *passwords, size_t passwords_len,
                    const char *who)
{
    struct stat st;
    entry_t *slot;
    const char *err = NULL;
    size_t len = strlen(cert);
    entry_t *e = lookup(cert, len, KIND_CERT, 0, &st, &slot);
    X509 *x = e ? e->x : NULL;
    STACK_OF(X509) *chain = e ? e->chain : NULL;
    if (e) {
        e->used = ++tick;
    } else if ((x = read_cert(cert, &chain, &err))) {
        keep(slot, cert, len, KIND_CERT, 0, &st, x, chain, NULL);
    } else {
        load_error("cannot load certificate", cert, err, who);
        return PV_ERR;
    }
    int ok = SSL_use_certificate(ssl, x) && SSL_set1_chain(ssl, chain);
    if (!e) { /* the cache holds its own references */
        X509_free(x);
        sk_X509_pop_free(chain, X509_free);
    }
    if (!ok) {
        load_error("cannot load certificate", cert, "SSL_use_certificate() failed", who);
        return PV_ERR;
    }
    uint64_t pwhash = passwords ? fnv(passwords, passwords_len) ^ passwords_len : 0;
    len = strlen(key);
    e = lookup(key, len, KIND_KEY, pwhash, &st, &slot);
    EVP_PKEY *k = e ? e->pkey : NULL;
    if (e) {
        e->used = ++tick;
    } else if ((k = read_key(key, passwords, passwords_len, &err))) {
        keep(slot, key, len, KIND_KEY, pwhash, &st, NULL, NULL, k);
    } else {
        load_error("cannot load certificate key", key, err, who);
        return PV_ERR;
    }
    ok = SSL_use_PrivateKey(ssl, k);
    if (!e)
        EVP_PKEY_free(k);
    if (!ok) {
        load_error("cannot load certificate key", key, "SSL_use_PrivateKey() failed", who);
        return PV_ERR;
    }
    return PV_OK;
}
