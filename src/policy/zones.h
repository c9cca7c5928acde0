/* The rate-limit zones of every loaded config, by name: a reload that
 * keeps a zone's kind, name, size and rate keeps its state (as NGINX keeps
 * a shared memory zone across reloads), and a zone is freed when the last
 * snapshot naming it goes. Used by the config loader on the main thread
 * and by snapshot release on any thread. */
#ifndef PV_ZONES_H
#define PV_ZONES_H

#include <stddef.h>
#include <stdint.h>

/* zone kinds */
enum { PV_ZONE_REQ = 1, PV_ZONE_CONN = 2 };

/* The zone for (kind, name, size, rate) — PV_ZONE_REQ gives a
 * pv_limit_req_zone_t, PV_ZONE_CONN a pv_limit_conn_zone_t — shared with
 * earlier snapshots when they match, else new; NULL if out of memory. */
void *pv_zones_acquire(int kind, const char *name, size_t size, uint64_t rate);
/* Drop one reference taken by pv_zones_acquire(). */
void pv_zones_release(void *impl);

#endif
