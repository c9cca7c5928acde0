/* Client connection objects and the worker_connections slots they fill:
 * allocation from a bounded per-thread cache, and the list of idle
 * keepalive connections, oldest first, from which one is closed when a
 * newcomer needs a slot (as NGINX reuses connections). */
#ifndef PV_SLOTS_H
#define PV_SLOTS_H

#include "server.h"

/* A zeroed connection object, or NULL when memory ran out. */
pv_hconn_t *pv_slots_conn_alloc(void);
/* Give a closed connection object back. */
void pv_slots_conn_free(pv_hconn_t *c);
/* c is idle between requests: it goes to the end of the idle list. */
void pv_slots_idle_add(pv_hconn_t *c);
/* c is no longer idle (a request began, or it closes); harmless if it
 * was not. */
void pv_slots_idle_del(pv_hconn_t *c);
/* Close the oldest idle keepalive connection to free a slot (HTTP/1
 * ones first, then the HTTP/2 connection idle the longest, with GOAWAY).
 * Returns 1, or 0 if none is idle. Logged at most once a second. */
int pv_slots_reclaim(pv_worker_t *w);

#endif
