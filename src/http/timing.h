/* What a request's upstream tries took, as NGINX keeps them in
 * r->upstream_states: one record per try (a server asked, or "no live
 * upstreams"), each with the times since the try began at which the
 * connection was made, the response head arrived and the response ended.
 * The proxy records; $upstream_connect_time, $upstream_header_time and
 * $upstream_response_time list them in NGINX's format ("S.mmm" per try,
 * "-" for a point not reached, ", " between tries and " : " before the
 * tries of an internal redirect). The numeric variables (milliseconds
 * with microseconds, for JSON logs) and Server-Timing read them too. */
#ifndef PV_TIMING_H
#define PV_TIMING_H

#include <stdint.h>

#include "../config/cv.h"
#include "request.h"

typedef struct pv_utry_s {
    uint64_t start_ns;   /* when the try began */
    int64_t connect_us;  /* -1: not reached */
    int64_t header_us;
    int64_t response_us;
    uint8_t redirect;    /* an internal redirect came before this try (" : ") */
} pv_utry_t;

enum { PV_UTRY_CONNECT, PV_UTRY_HEADER, PV_UTRY_RESPONSE };

/* A try begins (the one before, if still open, ends now); first is set
 * for the first try of an exchange, which after earlier tries follows an
 * internal redirect. Without memory nothing is recorded. */
void pv_utry_start(pv_request_t *r, int first);
/* The last try reached a point (the first time only). */
void pv_utry_mark(pv_request_t *r, int what);
/* The last try's time to a point in microseconds (the metrics' upstream
 * times); -1 without a try or when it never got there. */
int64_t pv_utry_last_us(const pv_request_t *r, int what);

/* The Server-Timing field value: the gateway's time to the response head
 * and the answering upstream's time to its head, in milliseconds. */
pv_str_t pv_timing_server_timing(pv_request_t *r);

/* $upstream_*_time, $request_duration_ms, $upstream_*duration_ms,
 * $request_start_unix_nano, $request_end_unix_nano, $otel_status_code. */
extern const pv_var_t pv_vars_timing[];

#endif
