#include "tls_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common.h"
#include "named_cache.h"
#include "tls.h"

/* ---- shared session cache ------------------------------------------------ */

/* A session larger than this is not stored (NGX_SSL_MAX_SESSION_SIZE). */
#define SESSION_MAX 4096

/* What a cache keeps beside its sessions: the ticket keys of the SSL_CTXs
 * without ssl_session_ticket_key, the current one, then the one before
 * it, rotated each session timeout. */
typedef struct {
    pv_tls_ticket_key_t tk[2];
    time_t tk_expire;                 /* when tk[0] stops encrypting; 0: none made yet */
} cache_keys_t;

typedef struct {
    int n;
    pv_tls_ticket_key_t k[];
} keyset_t;

static void cleanse_keys(void *ext)
{
    OPENSSL_cleanse(ext, sizeof(cache_keys_t));
}

static pv_ncache_registry_t registry = PV_NCACHE_REGISTRY(sizeof(cache_keys_t), cleanse_keys);
static int cache_index = -1, keys_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

size_t pv_tls_cache_capacity(size_t size)
{
    return size / 256;
}

pv_tls_cache_t *pv_tls_cache_get(const char *name, size_t size)
{
    return pv_ncache_get(&registry, name, pv_tls_cache_capacity(size));
}

void pv_tls_cache_unref(pv_tls_cache_t *c)
{
    pv_ncache_unref(c);
}

size_t pv_tls_cache_count(pv_tls_cache_t *c)
{
    return pv_ncache_count(c);
}

static pv_tls_cache_t *ctx_cache(SSL *ssl)
{
    return SSL_CTX_get_ex_data(pv_tls_session_ctx(ssl), cache_index);
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    pv_tls_cache_t *c = ctx_cache(ssl);
    int len = i2d_SSL_SESSION(sess, NULL);
    if (!c || len <= 0 || len > SESSION_MAX || pv_ncache_capacity(c) == 0)
        return 0;
    unsigned char der[SESSION_MAX], *p = der;
    len = i2d_SSL_SESSION(sess, &p);
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    int64_t expire = (int64_t)SSL_SESSION_get_time(sess) + (int64_t)SSL_SESSION_get_timeout(sess);
    if (len > 0)
        pv_ncache_store(c, id, idlen, der, (size_t)len, expire);
    OPENSSL_cleanse(der, sizeof(der));
    return 0; /* the session is not kept by reference */
}

static void copy_session(const unsigned char *der, size_t len, void *arg)
{
    *(SSL_SESSION **)arg = d2i_SSL_SESSION(NULL, &der, (long)len);
}

static SSL_SESSION *get_session_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    pv_tls_cache_t *c = ctx_cache(ssl);
    *copy = 0;
    if (!c || len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    SSL_SESSION *s = NULL;
    pv_ncache_lookup(c, id, (size_t)len, 0, copy_session, &s);
    return s;
}

static void remove_session_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    pv_tls_cache_t *c = SSL_CTX_get_ex_data(ctx, cache_index);
    if (!c)
        return;
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    pv_ncache_remove(c, id, idlen);
}

static void free_cache_ref(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    PV_UNUSED(parent);
    PV_UNUSED(ad);
    PV_UNUSED(idx);
    PV_UNUSED(argl);
    PV_UNUSED(argp);
    pv_tls_cache_unref(ptr);
}

static void free_keys(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    PV_UNUSED(parent);
    PV_UNUSED(ad);
    PV_UNUSED(idx);
    PV_UNUSED(argl);
    PV_UNUSED(argp);
    keyset_t *ks = ptr;
    if (ks)
        OPENSSL_cleanse(ks->k, sizeof(ks->k[0]) * (size_t)ks->n);
    free(ks);
}

static void make_indexes(void)
{
    cache_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_cache_ref);
    keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_keys);
}

int pv_tls_cache_attach(SSL_CTX *ctx, pv_tls_cache_t *c)
{
    pthread_once(&index_once, make_indexes);
    pv_ncache_ref(c);
    if (!SSL_CTX_set_ex_data(ctx, cache_index, c)) {
        pv_tls_cache_unref(c);
        return PV_ERR;
    }
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_sess_set_get_cb(ctx, get_session_cb);
    SSL_CTX_sess_set_remove_cb(ctx, remove_session_cb);
    return PV_OK;
}

/* ---- ticket keys ------------------------------------------------------------ */

int pv_tls_ticket_key_parse(const unsigned char *p, size_t len, pv_tls_ticket_key_t *k)
{
    memset(k, 0, sizeof(*k));
    if (len != 48 && len != 80)
        return PV_ERR;
    size_t n = len == 48 ? 16 : 32;
    k->size = (int)n;
    memcpy(k->name, p, 16);
    memcpy(k->hmac, p + 16, n);
    memcpy(k->aes, p + 16 + n, n);
    return PV_OK;
}

static int mac_init(EVP_MAC_CTX *mac, const pv_tls_ticket_key_t *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(mac, k->hmac, (size_t)k->size, params);
}

static int new_key(pv_tls_ticket_key_t *k)
{
    k->size = 32;
    return RAND_bytes(k->name, 16) == 1 && RAND_bytes(k->hmac, 32) == 1 && RAND_bytes(k->aes, 32) == 1
               ? PV_OK : PV_ERR;
}

/* The keys of a shared session cache, made on first use and rotated once
 * the current one is older than the session timeout (the one before it
 * still decrypts, asking for a new ticket), as NGINX 1.23.2 rotates the
 * keys it keeps in a shared zone. keys[] gets a copy; their count. */
static int shared_keys(SSL *ssl, pv_tls_ticket_key_t *keys)
{
    SSL_CTX *ctx = pv_tls_session_ctx(ssl);
    pv_tls_cache_t *c = SSL_CTX_get_ex_data(ctx, cache_index);
    if (!c)
        return 0;
    time_t now = time(NULL), timeout = (time_t)SSL_CTX_get_timeout(ctx);
    int n = 0;
    pv_ncache_lock(c);
    cache_keys_t *ck = pv_ncache_ext(c);
    if (ck->tk_expire == 0 || ck->tk_expire <= now) {
        pv_tls_ticket_key_t k;
        if (new_key(&k) == PV_OK) {
            ck->tk[1] = ck->tk_expire ? ck->tk[0] : k;
            ck->tk[0] = k;
            ck->tk_expire = now + (timeout > 0 ? timeout : 1);
        }
        OPENSSL_cleanse(&k, sizeof(k));
    }
    if (ck->tk_expire) {
        keys[0] = ck->tk[0];
        keys[1] = ck->tk[1];
        n = 2;
    }
    pv_ncache_unlock(c);
    return n;
}

static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *mac, int enc)
{
    keyset_t *ks = SSL_CTX_get_ex_data(pv_tls_session_ctx(ssl), keys_index);
    pv_tls_ticket_key_t shared[2];
    const pv_tls_ticket_key_t *keys = ks ? ks->k : shared;
    int n = ks ? ks->n : shared_keys(ssl, shared), rc = 0;
    if (n == 0)
        return 0;
    if (enc) {
        const pv_tls_ticket_key_t *k = &keys[0];
        const EVP_CIPHER *cipher = k->size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
        memcpy(name, k->name, 16);
        rc = RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) == 1 &&
                     EVP_EncryptInit_ex(ectx, cipher, NULL, k->aes, iv) == 1 && mac_init(mac, k) == 1
                 ? 1 : -1;
    } else {
        for (int i = 0; i < n; i++) {
            const pv_tls_ticket_key_t *k = &keys[i];
            if (memcmp(name, k->name, 16) != 0)
                continue;
            const EVP_CIPHER *cipher = k->size == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
            if (mac_init(mac, k) != 1 || EVP_DecryptInit_ex(ectx, cipher, NULL, k->aes, iv) != 1)
                rc = -1;
            else /* a ticket under an older key is renewed under the first */
                rc = i == 0 ? 1 : 2;
            break;
        }
    }
    if (!ks)
        OPENSSL_cleanse(shared, sizeof(shared));
    return rc;
}

int pv_tls_cache_ticket_keys(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    return PV_OK;
}

int pv_tls_ticket_keys_attach(SSL_CTX *ctx, const pv_tls_ticket_key_t *keys, int n)
{
    pthread_once(&index_once, make_indexes);
    keyset_t *ks = malloc(sizeof(*ks) + sizeof(keys[0]) * (size_t)n);
    if (!ks)
        return PV_ERR;
    ks->n = n;
    memcpy(ks->k, keys, sizeof(keys[0]) * (size_t)n);
    if (!SSL_CTX_set_ex_data(ctx, keys_index, ks)) {
        free(ks);
        return PV_ERR;
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    return PV_OK;
}
