/* The preaccess and access phases between routing and proxying: rate
 * limits (limit_req, limit_conn; local or Redis zones) and authentication
 * (auth_basic, API keys, auth_jwt, auth_request) combined by `satisfy`.
 *
 * Order, as NGINX runs its phases: limit_req, then limit_conn, then the
 * access checks. A limit whose key uses a variable that authentication
 * sets ($consumer, $jwt_claim_*, $jwt_header_*, auth_request_set ones)
 * runs after authentication instead, so limits can be per consumer. Steps
 * that wait (a Redis round trip, a limit_req delay, the auth subrequest)
 * resume the request from the loop; nothing blocks. */
#ifndef PV_ACCESS_H
#define PV_ACCESS_H

#include <stdint.h>

#include "../core/loop.h"
#include "../policy/limit.h"

struct pv_hreq_s;
struct pv_redis_req_s;

/* Per-request state of the phases. */
typedef struct pv_access_s {
    int step;                        /* next step (ACC_* in access.c) */
    int code;                        /* satisfy any: the failure to answer with when nothing passes */
    int last_fail;                   /* the status of the last check that failed (metrics) */
    int passed;                      /* satisfy any: some check passed */
    pv_str_t www_auth;               /* WWW-Authenticate lines of a 401, one per refusing method */
    pv_str_t xhdr;                   /* header lines added to the response (RateLimit, Retry-After, ...) */
    pv_limit_conn_ref_t *conn_refs;  /* limit_conn slots held until the request ends */
    int nconn_refs;
    struct pv_redis_req_s *rreq;     /* a Redis check in flight */
    int rlimit;                      /* index of the limit it is for */
    pv_timer_t timer;                /* limit_req delay */
    uint8_t waiting;                 /* a step is pending: the request is parked */
    uint8_t active;                  /* the phases ran for this request (state to release) */
    uint8_t again;                   /* run again after an internal redirect: authentication only */
} pv_access_t;

/* The request ends: release limit_conn slots, cancel a pending step. */
void pv_access_end(struct pv_hreq_s *hr);
/* Forget the credentials this worker verified (reload). */
void pv_access_cache_clear(void);
/* Close the calling worker's Redis clients (exit). */
void pv_access_thread_cleanup(void);
/* The module: registers the access phase handler; forgets cached
 * credentials on reload, closes the Redis clients at exit. */
extern struct pv_module_s pv_access_module;

#endif
