/* API keys (auth_api_key_file): a file of "KEY CONSUMER" lines mapping
 * each key to the name of the consumer that owns it.
 *
 * File format: one key and one consumer name per line, separated by
 * spaces or tabs; blank lines and lines whose first non-blank character
 * is '#' are skipped; CRLF is accepted. Keys and names are printable
 * ASCII without spaces. A key listed twice, a line with other than two
 * fields, or any other byte is a load error "... in FILE:LINE".
 *
 * Only the SHA-256 digest of each key is kept in memory, in an
 * open-addressing table indexed by the digest; a lookup hashes the
 * presented key and compares digests with CRYPTO_memcmp, so neither a
 * memory dump nor the timing of a comparison gives a key away (which
 * slot a probe starts at depends only on the digest of the presented
 * key). */
#ifndef PV_APIKEY_H
#define PV_APIKEY_H

#include "../core/common.h"

#define PV_APIKEY_FILE_MAX (64u << 20) /* largest key file accepted */

/* A loaded key file: immutable, shareable between workers. Opaque. */
typedef struct pv_apikeys_s pv_apikeys_t;

/* Load a key file. NULL on error with a message in err:
 * `open() "F" failed (...)`, or "... in F:LINE". */
pv_apikeys_t *pv_apikey_load(const char *path, char *err, size_t errlen);

/* Load from memory; name stands for the file in messages. */
pv_apikeys_t *pv_apikey_load_text(const char *text, size_t len, const char *name, char *err, size_t errlen);

/* Release a key set (NULL is fine); digests are wiped. */
void pv_apikey_free(pv_apikeys_t *ks);

/* Number of keys. */
size_t pv_apikey_count(const pv_apikeys_t *ks);

/* Look a presented key up: PV_OK with *consumer set (pointing into ks,
 * valid while ks lives), or PV_ERR when the key is unknown or empty. */
int pv_apikey_lookup(const pv_apikeys_t *ks, pv_str_t key, pv_str_t *consumer);

#endif
