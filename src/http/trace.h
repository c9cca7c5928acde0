/* Request ids and W3C Trace Context (https://www.w3.org/TR/trace-context/).
 *
 * A request's trace is made on first use (a variable, the upstream head,
 * a response field): with a valid `traceparent` from the client the trace
 * continues (its trace id and flags, the client's span as the parent, its
 * `tracestate` kept); without one, or with an invalid one, a new trace
 * starts. Either way the gateway has a span of its own, whose id is the
 * parent-id of the `traceparent` sent upstream (`trace_context on`).
 *
 * The request id is the client's when `request_id_trust` is on and it
 * sent a valid one in `request_id_header`, else 128 random bits as 32 hex
 * digits, made on first use and kept for the request. */
#ifndef PV_TRACE_H
#define PV_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/conf.h"
#include "request.h"

/* A parsed traceparent. */
typedef struct pv_traceparent_s {
    uint8_t version;
    uint8_t trace_id[16];
    uint8_t parent_id[8];
    uint8_t flags;
} pv_traceparent_t;

/* Parse a traceparent value by the W3C rules (lowercase hex, version ff
 * invalid, all-zero ids invalid, version 00 exactly 55 characters, a
 * later version at least 55 with a '-' after the flags when longer).
 * Returns 0 and fills tp, or -1 when the value is invalid. Pure. */
int pv_traceparent_parse(const char *s, size_t n, pv_traceparent_t *tp);

/* The request's trace (made on first use; NULL only without memory). */
typedef struct pv_trace_s {
    uint8_t trace_id[16];
    uint8_t span_id[8];   /* the gateway's span; the parent-id sent upstream */
    uint8_t parent_id[8]; /* the client's span; zero when the trace started here */
    uint8_t flags;        /* sampled (01) and random (02) bits */
    uint8_t has_parent;
    pv_str_t tracestate;  /* the client's fields joined; empty when none or not continued */
    char traceparent[56]; /* "00-TRACE-SPAN-FLAGS", what is sent upstream */
} pv_trace_t;

pv_trace_t *pv_trace_get(pv_request_t *r);

/* The request id (made on first use). */
pv_str_t pv_request_id(pv_request_t *r);

/* The error log's hook (core/log.h): req's request id into buf. */
size_t pv_request_id_log(const void *req, char *buf, size_t cap);

/* 64 random bits from the calling thread's xoshiro256** generator. */
uint64_t pv_rand64(void);

/* Whether a client field of this name is replaced on its way upstream. */
int pv_trace_replaces(const pv_trace_conf_t *tc, pv_str_t name);

/* $trace_id, $span_id, $parent_span_id, $traceparent, $request_id. */
extern const pv_var_t pv_vars_trace[];

#endif
