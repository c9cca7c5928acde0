/* Active health checks (`health_check` in a location, NGINX Plus's
 * syntax): the first worker checks every server of each upstream that has
 * them, on its own connections (an HTTP/1.0 GET of the check's URI; a
 * 2xx or 3xx status passes), and writes the verdict into the peers'
 * shared state, which every worker's balancer reads at once. The peers
 * outlive a reload, and so does what the checks found; a change of a
 * server's state is logged once. */
#ifndef PV_HEALTH_H
#define PV_HEALTH_H

#include "../core/module.h"

/* The worker module: builds the checks of a generation on worker 1,
 * taking over from the generation it replaces; stops them on drain. */
extern pv_module_t pv_health_module;

struct pv_upool_s;
/* When the upstream of pool p has active checks and none of its servers
 * may take traffic because of them (down, or a mandatory first check not
 * passed), the seconds a client should wait before trying again (the
 * check interval, at least 1): the request is answered 503 with
 * Retry-After. Else 0. */
int pv_health_retry_after(struct pv_upool_s *p);

#endif
