/* The FastCGI 1.0 records an upstream sends back (fcgi_rx.c): STDOUT
 * whose bytes are a CGI response (a header block, a blank line, the
 * body), STDERR text to log, END_REQUEST. It knows bytes only: no
 * socket, no client; the fuzz target feeds it anything. */
#ifndef PV_FCGI_RX_H
#define PV_FCGI_RX_H

#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "../http/request.h"

#define PV_FCGI_VERSION 1
#define PV_FCGI_BEGIN_REQUEST 1
#define PV_FCGI_END_REQUEST 3
#define PV_FCGI_PARAMS 4
#define PV_FCGI_STDIN 5
#define PV_FCGI_STDOUT 6
#define PV_FCGI_STDERR 7
#define PV_FCGI_RESPONDER 1
#define PV_FCGI_KEEP_CONN 1
#define PV_FCGI_REQUEST_ID 1 /* one request per connection at a time, as NGINX */

#define PV_FCGI_MAX_FIELDS 128 /* more header fields than this: invalid */
#define PV_FCGI_STDERR_MAX 4096 /* STDERR text kept of one record for the log */

/* pv_fcgi_rx_feed() results */
#define PV_FCGI_OK 0
#define PV_FCGI_ERR -1

typedef struct pv_fcgi_rx_s {
    pv_arena_t *arena;     /* the head block and fields */
    size_t limit;          /* the CGI head at most (fastcgi_buffer_size) */
    pv_buf_t *out;         /* body bytes land here; never more than its room */
    /* record framing */
    uint8_t hdr[8];        /* the record header being read */
    uint8_t hlen;          /* its bytes so far */
    uint8_t type;          /* the current record's type */
    uint8_t pad;           /* padding bytes still to skip */
    uint16_t left;         /* content bytes of the current record still to come */
    /* the CGI head */
    char *head;            /* its bytes (arena, limit + 1) */
    size_t headlen;
    int status;            /* from Status:, or 302 with Location:, or 200 */
    pv_str_t status_line;  /* Status: as sent ("404 Not Found"), empty without one */
    pv_header_t *fields;   /* the head's fields, Status: included (arena) */
    int nfields;
    /* STDERR of the current record */
    char err[PV_FCGI_STDERR_MAX];
    size_t errlen;
    uint8_t err_ready;     /* a STDERR record ended: err/errlen to log, cleared by the caller */
    uint8_t head_ready;    /* the head is complete (the caller clears it once sent) */
    uint8_t head_done;     /* the head was seen: STDOUT bytes are body */
    uint8_t ended;         /* END_REQUEST arrived */
    uint8_t too_big;       /* the head went past limit */
    const char *error;     /* why a feed failed (NGINX's words) */
} pv_fcgi_rx_t;

/* Start reading a response; out and arena set by the caller. */
void pv_fcgi_rx_init(pv_fcgi_rx_t *rx, pv_arena_t *a, size_t limit, pv_buf_t *out);
/* Feed bytes: *used gets how many were taken. It stops early when out is
 * full, when a head or a STDERR record is complete (head_ready,
 * err_ready), and at END_REQUEST; the caller acts and feeds the rest.
 * PV_FCGI_OK, or PV_FCGI_ERR with error set. */
int pv_fcgi_rx_feed(pv_fcgi_rx_t *rx, const uint8_t *p, size_t len, size_t *used);

/* Append a name-value pair in FastCGI's encoding to dst (NULL: only
 * count); returns the bytes it takes. */
size_t pv_fcgi_nv(uint8_t *dst, pv_str_t name, pv_str_t value);
/* Write a record header for type and content length n (padded to 8). */
void pv_fcgi_header(uint8_t *dst, int type, size_t n, size_t pad);

#endif
