/* `server NAME resolve`: the addresses of an upstream's slots follow the
 * name's DNS answers while portvakt runs (discovery.c). */
#ifndef PV_DISCOVERY_H
#define PV_DISCOVERY_H

#include <stdint.h>
#include "../core/module.h"
#include "upstream.h"

/* The worker module: on worker 1, each `resolve` line is looked up again
 * when its answer's TTL (or `valid=`) runs out, and its slots updated. */
extern pv_module_t pv_upstream_discovery_module;

/* A new peer of a slot takes the address load time found for it (or
 * none); checks is the upstream's PV_PEER_HC_* (peer.h). */
void pv_discovery_slot_init(pv_peer_t *p, const pv_upstream_server_t *s, int checks);
/* The slot's address now, for a connection: its generation (0 when the
 * slot has none), the address and its text. */
uint32_t pv_discovery_slot_addr(pv_peer_t *p, struct sockaddr_storage *ss, socklen_t *len, char *text, size_t tlen);
/* Server s of pool p as $upstream_addr and the logs show it: the
 * configured text, or a slot's address now (copied into buf). */
const char *pv_discovery_slot_text(pv_upool_t *p, int s, char *buf, size_t len);
static inline const char *pv_upstream_server_text(pv_upool_t *p, int s, char *buf, size_t len)
{
    const pv_upstream_server_t *sv = &p->cf->servers[s];
    return sv->resolve_host ? pv_discovery_slot_text(p, s, buf, len) : sv->text;
}
/* A try at server s of pool p failed: when it is a slot of a `resolve`
 * line, its name is looked up again soon (at most every 500 ms), not
 * only when the answer's TTL runs out: a recreated container's new
 * address is followed at once. Any thread; costs an atomic when the
 * look-up is already asked for. */
void pv_discovery_hint(pv_upool_t *p, int s);
/* Set the slots [first, first + n) of pool p to the addresses addrs
 * (ports set): an address they keep stays in its slot with its state; a
 * gone one leaves its slot empty (connections to it finish, pooled ones
 * are not reused); a new one takes an empty slot with fresh state.
 * weights (SRV records'), when not NULL, are each address's weight, else
 * the line's stands. Counts what changed in *added and *removed. */
void pv_discovery_update(pv_upool_t *p, int first, int n, const struct sockaddr_storage *addrs,
                         const socklen_t *lens, const int *weights, int naddrs, int *added, int *removed);

#endif
