/* Why an upstream exchange failed: one enum, and one table that maps each
 * cause to the status the client gets, the proxy_next_upstream condition
 * it falls under and the error log text. Metrics count the same causes. */
#ifndef PV_UPSTREAM_FAILURE_H
#define PV_UPSTREAM_FAILURE_H

#include <stdint.h>

typedef enum pv_upfail_e {
    PV_UPF_NONE = 0,
    PV_UPF_CONNECT,           /* connect() failed: refused, unreachable, no descriptors */
    PV_UPF_CONNECT_TIMEOUT,   /* proxy_connect_timeout expired */
    PV_UPF_SEND,              /* writing the request failed (reset, broken pipe) */
    PV_UPF_SEND_TIMEOUT,      /* proxy_send_timeout expired */
    PV_UPF_RESET,             /* recv() failed (reset) while reading the response */
    PV_UPF_PREMATURE_CLOSE,   /* the upstream closed before the response ended */
    PV_UPF_READ_TIMEOUT,      /* proxy_read_timeout expired */
    PV_UPF_INVALID_HEADER,    /* the response head is malformed */
    PV_UPF_HEADER_TOO_BIG,    /* the response head does not fit the buffer */
    PV_UPF_INVALID_BODY,      /* the response body's framing is broken */
    PV_UPF_NO_LIVE,           /* no server of the upstream can be tried */
    PV_UPF_CLIENT_BAD_BODY,   /* the client's chunked body is malformed (not the upstream's fault) */
    PV_UPF_CLIENT_BODY_LARGE, /* the client's body passed client_max_body_size */
    PV_UPF_RESOLVE,           /* a proxy_pass host with variables could not be resolved (or no resolver) */
    PV_UPF_BAD_URL,           /* a proxy_pass URL with variables evaluated to something unusable */
    PV_UPF_COUNT
} pv_upfail_t;

/* PV_UPF_F_* flags of a cause */
#define PV_UPF_F_TRANSPORT 1 /* a socket error: on a reused connection it may just be stale */
#define PV_UPF_F_SERVER 2    /* counts against the server (max_fails / fail_timeout) */
#define PV_UPF_F_CLIENT 4    /* the client's fault: no retry, no upstream status */

/* One row of the table. */
typedef struct pv_upfail_info_s {
    const char *name;  /* short name (metrics label) */
    int status;        /* status answered to the client */
    int next;          /* PV_NEXT_F_* condition that lets proxy_next_upstream retry it; 0 never */
    int flags;         /* PV_UPF_F_* */
    const char *text;  /* error log text; "" when the caller logs its own line */
} pv_upfail_info_t;

/* The table row for cause f (PV_UPF_NONE for an unknown value). */
const pv_upfail_info_t *pv_upfail_info(pv_upfail_t f);

#endif
