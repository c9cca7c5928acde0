/* TLS session resumption shared by every worker thread: named session
 * caches (ssl_session_cache shared:NAME:SIZE) kept across reloads, and
 * session ticket keys (ssl_session_ticket_key) in NGINX's file format.
 * Both attach to an SSL_CTX and live as long as it does. */
#ifndef PV_TLS_SESSION_H
#define PV_TLS_SESSION_H

#include <stddef.h>
#include <openssl/ssl.h>

typedef struct pv_ncache_s pv_tls_cache_t;

/* Sessions a cache of size bytes holds, as NGINX counts a shared zone
 * (about 4000 per megabyte). */
size_t pv_tls_cache_capacity(size_t size);
/* The cache called name, made on first use or adopted from a previous
 * config (its bound set to size); a reference for the caller, or NULL
 * when out of memory. */
pv_tls_cache_t *pv_tls_cache_get(const char *name, size_t size);
void pv_tls_cache_unref(pv_tls_cache_t *c);
/* Store ctx's sessions in c (the new/get/remove callbacks); ctx takes a
 * reference of its own, dropped when it is freed. PV_ERR when out of
 * memory. */
int pv_tls_cache_attach(SSL_CTX *ctx, pv_tls_cache_t *c);
/* Sessions held now (tests and logs). */
size_t pv_tls_cache_count(pv_tls_cache_t *c);

/* One ssl_session_ticket_key file's contents: 48 or 80 bytes. */
typedef struct pv_tls_ticket_key_s {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
    int size;               /* 16 (AES-128) or 32 (AES-256) */
} pv_tls_ticket_key_t;

/* Parse a key file's bytes; PV_ERR when the length is neither 48 nor 80. */
int pv_tls_ticket_key_parse(const unsigned char *p, size_t len, pv_tls_ticket_key_t *k);
/* Encrypt tickets with keys[0] and decrypt with any of them (the
 * others ask for a new ticket); the keys are copied and freed with ctx. */
int pv_tls_ticket_keys_attach(SSL_CTX *ctx, const pv_tls_ticket_key_t *keys, int n);
/* ctx has a shared session cache and no keys of its own: its tickets are
 * sealed with keys kept in the cache, shared by every SSL_CTX using it
 * and made anew each session timeout. */
int pv_tls_cache_ticket_keys(SSL_CTX *ctx);

#endif
