/* What an upstream's HTTP/2 response brings to a grpc exchange, recorded
 * by nghttp2's callbacks (grpc_rx.c): the final head's status and
 * fields, the DATA bytes, the trailers as "name: value\n" lines, the
 * stream's end. The callbacks act on nothing else, so an exchange reads
 * the record once nghttp2 has returned; the fuzz target drives them with
 * any bytes an upstream may send. */
#ifndef PV_GRPC_RX_H
#define PV_GRPC_RX_H

#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "../http/request.h"

/* Header fields of a head at most (more: the response is refused). */
#define PV_GRPC_MAX_FIELDS 128

typedef struct pv_grpc_rx_s {
    pv_arena_t *arena;     /* where fields and trailers are copied */
    size_t limit;          /* names and values of the head, and of the trailers, at most (grpc_buffer_size) */
    int32_t sid;           /* the request's stream */
    pv_buf_t *out;         /* DATA bytes land here; the caller feeds no more than its room */
    int status;            /* :status of the head */
    pv_header_t *fields;   /* the final head's fields (arena) */
    int nfields;
    size_t hbytes;         /* bytes of the head or trailers so far */
    char *trailers;        /* trailer lines (arena) */
    size_t tlen, tcap;
    uint8_t head_ready;    /* the final head is complete (set once; the caller clears it when sent) */
    uint8_t in_trailers;   /* a final head came: HEADERS now are trailers */
    uint8_t ended;         /* the stream closed: rst tells how (0 after END_STREAM) */
    uint8_t too_big;       /* the head or trailers went past limit or the field count */
    uint32_t rst;
} pv_grpc_rx_t;

/* Set the recording callbacks on cb; the session's user data is a
 * pv_grpc_rx_t. */
void pv_grpc_rx_callbacks(nghttp2_session_callbacks *cb);

#endif
