/* The HTTP/1 client side's response head parser: llhttp in response mode
 * plus portvakt's own checks (bare LF line ends made CRLF first, then no
 * bare CR and no obs-fold, field syntax, one Content-Length or one
 * `Transfer-Encoding: chunked`, never both), with
 * interim 1xx heads skipped and the body framing and keepalive decided.
 * A 101 is taken only for a request that asked to switch protocols, and
 * is then the final head: what follows it is the new protocol's.
 * It knows bytes only: no socket, no proxy, no client. */
#ifndef PV_UPSTREAM_RESPONSE_H
#define PV_UPSTREAM_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <llhttp.h>

#include "../http/chunked.h"
#include "../http/headers.h"
#include "../http/request.h"

#define PV_URESP_MAX_FIELDS 128 /* more header fields than this: invalid */

/* pv_uresp_parse() results */
#define PV_URESP_AGAIN 0 /* every byte was taken; the head goes on in the next ones */
#define PV_URESP_DONE 1  /* a final head is parsed; *used ends at its blank line */
#define PV_URESP_ERR -1  /* the head is invalid; `error` may say why */
#define PV_URESP_FULL -2 /* no room to turn the head's bare LFs into CRLF */

typedef struct pv_uresp_s {
    llhttp_t p;              /* llhttp in response mode */
    char *head_start;        /* first byte of the head being parsed */
    pv_crlf_t crlf;          /* its bare LFs turned into CRLF (http/headers.h) */
    uint8_t no_body;         /* the request was HEAD: no body whatever the fields say */
    uint8_t upgrade_asked;   /* the request may switch protocols: a 101 (with Upgrade) is final */
    uint8_t last_cb;         /* last span callback: 1 name, 2 value */
    uint8_t keepalive;       /* the upstream allows another request on the connection */
    uint8_t has_cl;          /* a Content-Length field was present */
    uint8_t body_done;       /* the body has ended (at once for PV_FRAME_NONE) */
    uint8_t accel;           /* an X-Accel-Buffering or X-Accel-Limit-Rate field is among the fields */
    int status;              /* final status code */
    int http_minor;          /* HTTP/1.x minor version of the final head */
    int frame;               /* PV_FRAME_* of the body */
    int64_t content_length;  /* the Content-Length value; -1 when none */
    uint64_t body_left;      /* PV_FRAME_LENGTH: body bytes still due */
    pv_chunked_t chunk;      /* PV_FRAME_CHUNKED decoder */
    int ninterim;            /* interim (1xx) heads skipped */
    const char *error;       /* why the head was refused: llhttp's reason, or ours for a 101; NULL for our other checks */
    pv_str_t reason;         /* reason phrase, as received (may be empty) */
    int nfields;             /* fields in `fields` */
    /* last: not cleared by pv_uresp_init (only the first nfields are valid) */
    pv_header_t fields[PV_URESP_MAX_FIELDS]; /* header fields in arrival order, OWS trimmed */
} pv_uresp_t;

/* Start parsing a response to a request; no_body for a HEAD request.
 * Set upgrade_asked after it when the request asked for an upgrade;
 * without it a 101 is an invalid head. */
void pv_uresp_init(pv_uresp_t *rp, int no_body);
/* Feed the next *len bytes of the response at p, room bytes from p being
 * writable. The bytes of one head must stay in place, each call's
 * following the previous call's, until the head is complete (reason and
 * fields point into them). Bare LFs of a head are turned into CRLF in
 * place, as NGINX takes LF alone as a line end: *len grows by the CRs
 * inserted (bytes after the head move behind them, unchanged). Returns
 * PV_URESP_AGAIN, PV_URESP_DONE with *used the bytes up to the end of the
 * final head (interim heads before it included), PV_URESP_ERR, or
 * PV_URESP_FULL when room is too small for the CRs. */
int pv_uresp_parse(pv_uresp_t *rp, char *p, size_t *len, size_t room, size_t *used);

struct pv_buf_s;
/* Parse the head arriving in b[pos, last) (b->last grows by the CRs put
 * before bare LFs); the head must fit in limit bytes (proxy_buffer_size).
 * PV_URESP_AGAIN (b->pos moved to b->last, read on), PV_URESP_DONE (b->pos
 * at the first byte behind the head), PV_URESP_ERR for an invalid head,
 * or PV_URESP_FULL for one over the limit or the buffer. */
int pv_uresp_read_head(pv_uresp_t *rp, struct pv_buf_s *b, size_t limit);
/* Decode body bytes that follow the head: up to max spans of body data
 * (pointing into p) in spans, their count in *nspans. Returns the bytes
 * consumed (fewer than len once the body ends or spans run out), or -1
 * on a framing error; body_done is set at the end of the body. A
 * PV_FRAME_CLOSE body ends with the connection: the caller knows when. */
ssize_t pv_uresp_body(pv_uresp_t *rp, const char *p, size_t len, pv_str_t *spans, int *nspans, int max);

#endif
