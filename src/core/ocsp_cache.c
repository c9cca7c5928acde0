/* ssl_ocsp_cache: the statuses OCSP responders gave for client
 * certificates, by CERTID, until their nextUpdate; one cache per name,
 * shared by the workers and the configs naming it, as NGINX's shared
 * zone is. */
#include "ocsp_check.h"

#include <string.h>

#include "named_cache.h"

#define KEY_MAX 128     /* a CERTID's DER (two hashes and a serial) */
#define ENTRY_SIZE 256  /* what one entry counts for against the size */

static pv_ncache_registry_t registry = PV_NCACHE_REGISTRY(0, NULL);

pv_ocsp_cache_t *pv_ocsp_cache_get(const char *name, size_t size)
{
    return pv_ncache_get(&registry, name, size / ENTRY_SIZE);
}

void pv_ocsp_cache_unref(pv_ocsp_cache_t *c)
{
    pv_ncache_unref(c);
}

static void copy_status(const unsigned char *val, size_t len, void *arg)
{
    memcpy(arg, val, len); /* an int: all this cache stores */
}

int pv_ocsp_cache_lookup(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int *status)
{
    return len <= KEY_MAX && pv_ncache_lookup(c, key, len, 1, copy_status, status);
}

void pv_ocsp_cache_store(pv_ocsp_cache_t *c, const unsigned char *key, size_t len, int status, int64_t valid)
{
    if (len <= KEY_MAX)
        pv_ncache_store(c, key, len, &status, sizeof(status), valid);
}
