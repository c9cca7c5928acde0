#include "tls_session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common.h"
#include "tls.h"

/* ---- shared session cache ------------------------------------------------ */

/* A session larger than this is not stored (NGX_SSL_MAX_SESSION_SIZE). */
#define SESSION_MAX 4096
#define NBUCKETS 1024

typedef struct entry_s {
    struct entry_s *hnext;            /* hash chain */
    struct entry_s *prev, *next;      /* LRU list, most recent first */
    time_t expire;
    unsigned int idlen;
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    size_t len;
    unsigned char der[];              /* i2d_SSL_SESSION */
} entry_t;

struct pv_tls_cache_s {
    char *name;
    size_t capacity;                  /* sessions held at most */
    size_t count;
    int refs;                         /* config snapshots and SSL_CTXs holding it */
    pthread_mutex_t lock;
    entry_t *head, *tail;
    entry_t *bucket[NBUCKETS];
    struct pv_tls_cache_s *next;      /* registry */
    /* ticket keys of the SSL_CTXs without ssl_session_ticket_key: the
     * current one, then the one before it, rotated each session timeout */
    pv_tls_ticket_key_t tk[2];
    time_t tk_expire;                 /* when tk[0] stops encrypting; 0: none made yet */
};

typedef struct {
    int n;
    pv_tls_ticket_key_t k[];
} keyset_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_tls_cache_t *registry;
static int cache_index = -1, keys_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

size_t pv_tls_cache_capacity(size_t size)
{
    return size / 256;
}

static unsigned hash(const unsigned char *id, unsigned int n)
{
    unsigned h = 2166136261u;
    for (unsigned int i = 0; i < n; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % NBUCKETS;
}

static void unlink_entry(pv_tls_cache_t *c, entry_t *e)
{
    entry_t **pp = &c->bucket[hash(e->id, e->idlen)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->count--;
    free(e);
}

static entry_t *find(pv_tls_cache_t *c, const unsigned char *id, unsigned int n)
{
    for (entry_t *e = c->bucket[hash(id, n)]; e; e = e->hnext)
        if (e->idlen == n && memcmp(e->id, id, n) == 0)
            return e;
    return NULL;
}

pv_tls_cache_t *pv_tls_cache_get(const char *name, size_t size)
{
    pthread_mutex_lock(&registry_lock);
    pv_tls_cache_t *c = registry;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c && (c = calloc(1, sizeof(*c)))) {
        c->name = strdup(name);
        if (!c->name) {
            free(c);
            c = NULL;
        } else {
            pthread_mutex_init(&c->lock, NULL);
            c->next = registry;
            registry = c;
        }
    }
    if (c) {
        c->refs++;
        pthread_mutex_lock(&c->lock);
        c->capacity = pv_tls_cache_capacity(size);
        while (c->count > c->capacity)
            unlink_entry(c, c->tail);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&registry_lock);
    return c;
}

void pv_tls_cache_unref(pv_tls_cache_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&registry_lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (pv_tls_cache_t **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    for (entry_t *e = c->head, *n; e; e = n) {
        n = e->next;
        free(e);
    }
    OPENSSL_cleanse(c->tk, sizeof(c->tk));
    pthread_mutex_destroy(&c->lock);
    free(c->name);
    free(c);
}

size_t pv_tls_cache_count(pv_tls_cache_t *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->count;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static pv_tls_cache_t *ctx_cache(SSL *ssl)
{
    return SSL_CTX_get_ex_data(pv_tls_session_ctx(ssl), cache_index);
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    pv_tls_cache_t *c = ctx_cache(ssl);
    int len = i2d_SSL_SESSION(sess, NULL);
    if (!c || len <= 0 || len > SESSION_MAX || c->capacity == 0)
        return 0;
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    entry_t *e = malloc(sizeof(*e) + (size_t)len);
    if (!e)
        return 0;
    unsigned char *p = e->der;
    e->len = (size_t)i2d_SSL_SESSION(sess, &p);
    e->idlen = idlen;
    memcpy(e->id, id, idlen);
    e->expire = (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess);
    pthread_mutex_lock(&c->lock);
    entry_t *old = find(c, id, idlen);
    if (old)
        unlink_entry(c, old);
    while (c->count >= c->capacity && c->tail)
        unlink_entry(c, c->tail);
    unsigned h = hash(id, idlen);
    e->hnext = c->bucket[h];
    c->bucket[h] = e;
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
    c->count++;
    pthread_mutex_unlock(&c->lock);
    return 0; /* the session is not kept by reference */
}

static SSL_SESSION *get_session_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    pv_tls_cache_t *c = ctx_cache(ssl);
    *copy = 0;
    if (!c || len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&c->lock);
    entry_t *e = find(c, id, (unsigned int)len);
    if (e && e->expire <= time(NULL)) {
        unlink_entry(c, e);
        e = NULL;
    }
    if (e) {
        const unsigned char *p = e->der;
        s = d2i_SSL_SESSION(NULL, &p, (long)e->len);
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

static void remove_session_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    pv_tls_cache_t *c = SSL_CTX_get_ex_data(ctx, cache_index);
    if (!c)
        return;
    unsigned int idlen;
    const unsigned char *id = SSL_SESSION_get_id(sess, &idlen);
    pthread_mutex_lock(&c->lock);
    entry_t *e = find(c, id, idlen);
    if (e)
        unlink_entry(c, e);
    pthread_mutex_unlock(&c->lock);
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
    pthread_mutex_lock(&registry_lock);
    c->refs++;
    pthread_mutex_unlock(&registry_lock);
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
    pthread_mutex_lock(&c->lock);
    if (c->tk_expire == 0 || c->tk_expire <= now) {
        pv_tls_ticket_key_t k;
        if (new_key(&k) == PV_OK) {
            c->tk[1] = c->tk_expire ? c->tk[0] : k;
            c->tk[0] = k;
            c->tk_expire = now + (timeout > 0 ? timeout : 1);
        }
        OPENSSL_cleanse(&k, sizeof(k));
    }
    if (c->tk_expire) {
        keys[0] = c->tk[0];
        keys[1] = c->tk[1];
        n = 2;
    }
    pthread_mutex_unlock(&c->lock);
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
