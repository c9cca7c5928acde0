/* Pools made at run time for the addresses of a proxy_pass with
 * variables (dynamic.c). */
#ifndef PV_DYNAMIC_H
#define PV_DYNAMIC_H

#include <stdint.h>
#include "../core/module.h"
#include "../core/resolver.h"
#include "upstream.h"

/* Addresses with their ports. */
typedef struct pv_dyn_addrs_s {
    struct sockaddr_storage addrs[PV_RESOLVED_MAX];
    socklen_t lens[PV_RESOLVED_MAX];
    int n;
} pv_dyn_addrs_t;

/* The worker module holding each generation's run-time pools. Its
 * worker exit also frees the thread's resolvers. */
extern pv_module_t pv_upstream_dyn_module;
/* A pool for name ("host:port") over the addresses a, shared with the
 * exchanges of g that use the same set; held until pv_upstream_dyn_put().
 * NULL out of memory. */
pv_upool_t *pv_upstream_dyn_get(struct pv_wgen_s *g, const char *name, const pv_dyn_addrs_t *a, uint64_t now);
void pv_upstream_dyn_put(pv_upool_t *p);

#endif
