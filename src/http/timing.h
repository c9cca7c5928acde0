/* What a request's upstream tries took, as NGINX keeps them in
 * r->upstream_states: one record per try (a server asked, or "no live
 * upstreams"), each with the times since the try began at which the
 * connection was made, the response head arrived and the response ended,
 * and the bytes written and read. The proxy records; $upstream_connect_time, $upstream_header_time and
 * $upstream_response_time list them in NGINX's format ("S.mmm" per try,
 * "-" for a point not reached, ", " between tries and " : " before the
 * tries of an internal redirect). The numeric variables (milliseconds
 * with microseconds, for JSON logs) and Server-Timing read them too. */
#ifndef PV_TIMING_H
#define PV_TIMING_H

#include <stdint.h>

#include "../config/cv.h"
#include "../core/loop.h"
#include "request.h"

/* One try (struct pv_utry_s is in request.h, the first one inline). */
typedef struct pv_utry_s pv_utry_t;

enum { PV_UTRY_CONNECT, PV_UTRY_HEADER, PV_UTRY_RESPONSE };

/* A try begins at now (the one before, if still open, ends then); first
 * is set for the first try of an exchange, which after earlier tries
 * follows an internal redirect: " : " then goes into $upstream_addr and
 * $upstream_status, whose next entry follows it without ", ". Without
 * memory nothing is recorded. */
void pv_utry_next(pv_request_t *r, int first);
static inline void pv_utry_start(pv_request_t *r, int first)
{
    if (pv_likely(!r->utry)) { /* the first: the request's own record, zeroed with it */
        r->utries = r->utry = &r->utry0;
        r->nutries = r->cutries = 1;
        r->utry0.start_ns = pv_loop_time_ns();
        return;
    }
    pv_utry_next(r, first);
}

/* The last try reached a point (the first time only), at the loop's
 * time (pv_loop_time_ns()), as NGINX measures with its cached time. */
static inline void pv_utry_mark(pv_request_t *r, int what)
{
    pv_utry_t *t = r->utry;
    if (!t)
        return;
    uint64_t *f = what == PV_UTRY_CONNECT ? &t->connect_ns : what == PV_UTRY_HEADER ? &t->header_ns
                                                                                    : &t->end_ns;
    if (!*f)
        *f = pv_loop_time_ns();
}

/* The last try has a pooled connection: connected when it began (0, as
 * NGINX counts it). */
static inline void pv_utry_pooled(pv_request_t *r)
{
    if (r->utry && !r->utry->connect_ns)
        r->utry->connect_ns = r->utry->start_ns;
}


/* The last try wrote and read more bytes. */
static inline void pv_utry_bytes(pv_request_t *r, uint64_t sent, uint64_t received)
{
    if (r->utry) {
        r->utry->sent += sent;
        r->utry->received += received;
    }
}

/* The last try's response head is whole, rest bytes read behind it. */
static inline void pv_utry_head(pv_request_t *r, uint64_t rest)
{
    if (r->utry)
        r->utry->head = r->utry->received - rest;
}

/* Forget the last try (a stale pooled connection's, retried at once). */
static inline void pv_utry_drop(pv_request_t *r)
{
    if (r->nutries)
        r->nutries--;
    r->utry = r->nutries ? &r->utries[r->nutries - 1] : NULL;
    if (!r->nutries)
        r->utry0 = (pv_utry_t){0}; /* the first record is used again */
}

/* The last try goes on after its server was released (a tunnel): its
 * end is marked again later. */
void pv_utry_reopen(pv_request_t *r);

/* The last try's time to a point in microseconds (the metrics' upstream
 * times); -1 without a try or when it never got there. */
int64_t pv_utry_last_us(const pv_request_t *r, int what);

/* The Server-Timing field value: the gateway's time to the response head
 * and the answering upstream's time to its head, in milliseconds. */
pv_str_t pv_timing_server_timing(pv_request_t *r);

/* $upstream_*_time, $upstream_bytes_*, $upstream_response_length, $request_duration_ms, $upstream_*duration_ms,
 * $request_start_unix_nano, $request_end_unix_nano, $otel_status_code. */
extern const pv_var_t pv_vars_timing[];

#endif
