/* The response to a client request, as a content handler describes it,
 * and the one writer of HTTP/1.1 response heads. Local responses (error
 * pages, `return`) and proxied ones are described the same way and
 * written by pv_http_write_head(); HTTP/2 will turn the same description
 * into a HEADERS frame. */
#ifndef PV_HTTP_RESPONSE_H
#define PV_HTTP_RESPONSE_H

#include <stdint.h>
#include <sys/types.h>
#include "../core/common.h"
#include "request.h"

/* A response head, independent of the protocol it goes out in. */
typedef struct pv_resp_head_s {
    int status;                /* status code, 0 to 999 */
    pv_str_t reason;           /* reason phrase; p NULL: the standard one for status */
    pv_str_t content_type;     /* p NULL: no Content-Type field */
    int64_t content_length;    /* -1: no Content-Length field */
    pv_str_t location;         /* p NULL: no Location field */
    int frame;                 /* PV_FRAME_CHUNKED: the body goes out chunked */
    uint8_t upgrade;           /* the connection switches protocols (a 101) */
    const pv_header_t *fields; /* the other fields, sent as they are, in order */
    int nfields;               /* count of fields */
    pv_str_t extra;            /* field lines (each ending in CRLF) after them: the access phase's */
    pv_str_t server;           /* Server value; p NULL: "portvakt"; p set, len 0: no Server field
                                  (the upstream's is among the fields: proxy_pass_header) */
    uint8_t no_date;           /* no Date field of our own (the upstream's is among the fields) */
    int64_t keepalive_header;  /* seconds for "Keep-Alive: timeout=" after "Connection: keep-alive"
                                  (keepalive_timeout's second value); 0: none */
} pv_resp_head_t;

/* Write h as an HTTP/1.1 head into buf, in NGINX's order: status line,
 * Server, Date (an IMF-fixdate), Content-Type, Content-Length, Location,
 * Transfer-Encoding, Connection (upgrade, keep-alive or close), the
 * fields, the extra lines, the blank line. Returns the length, or -1 when
 * cap is too small. */
ssize_t pv_http_write_head(const pv_resp_head_t *h, pv_str_t date, int keepalive, char *buf, size_t cap);

/* The calls a content handler answers with. A response is: a head, body
 * spans, then finish (or abort); or one local response. Each call goes to
 * the request's protocol (hr->proto: HTTP/1.1 in response.c, HTTP/2 in
 * its own file), so a handler never knows which one it answers over.
 * Bytes queued are not copied and must stay until written. */
struct pv_hreq_s;

/* What a protocol implements; the calls below document each entry. */
typedef struct pv_resp_ops_s {
    int (*send_head)(struct pv_hreq_s *hr, pv_resp_head_t *h);
    int (*room)(const struct pv_hreq_s *hr);
    void (*send_body)(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
    int (*flush)(struct pv_hreq_s *hr);
    void (*finish)(struct pv_hreq_s *hr);
    void (*abort)(struct pv_hreq_s *hr);
    int (*send_continue)(struct pv_hreq_s *hr);
    void (*local)(struct pv_hreq_s *hr, int status, const char *location, pv_str_t body);
    void (*error)(struct pv_hreq_s *hr, int status);
} pv_resp_ops_t;

/* A tee: what sees a copy of the response a handler sends (the response
 * cache stores it through one). Set as hr->tee before
 * pv_resp_send_head(): head() gets the head before the compression
 * filter rewrites it, body() each span before it is encoded or queued,
 * done() the end: 1 from pv_resp_finish(), 0 when the response was
 * abandoned (abort, or an error or local answer in its place). The tee
 * is unset after done(). */
typedef struct pv_tee_s {
    void (*head)(struct pv_hreq_s *hr, const pv_resp_head_t *h);
    void (*body)(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
    void (*done)(struct pv_hreq_s *hr, int complete);
} pv_tee_t;

/* The HTTP/1.1 implementation. */
extern const pv_resp_ops_t pv_h1_resp;

/* pv_resp_send_head(): no memory for the head, or a filter that cannot go
 * on (logged; answer nothing). */
#define PV_RESP_NOMEM (-3)
/* pv_resp_send_head(): the request's preconditions fail (notmod.h): the
 * caller ends the response and answers 412 in its place. */
#define PV_RESP_PRECONDITION (-5)

/* Queue the response head h. The protocol side decides keepalive and the
 * framing: PV_FRAME_CHUNKED stands for a body of unknown length, which an
 * HTTP/1.0 client gets until the connection closes. Records the status
 * for the log. PV_OK, PV_ERR when the head does not fit, PV_RESP_NOMEM.
 *
 * A head with upgrade set (a 101, for a request with PV_REQ_F_UPGRADE
 * whose body is done) turns the request into a tunnel: from then on the
 * request body stream (body.h) carries the client's bytes as they come,
 * pv_body_done() once the client has closed, the response body goes out
 * unframed, and pv_resp_finish() ends both; the connection is not
 * reused. PV_ERR when the request cannot switch. */
int pv_resp_send_head(struct pv_hreq_s *hr, pv_resp_head_t *h);
/* How many body spans pv_resp_send_body() takes now (0: flush first). */
int pv_resp_room(const struct pv_hreq_s *hr);
/* Queue n body spans, framed as the head said (at most pv_resp_room()). */
void pv_resp_send_body(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
/* Write what is queued. PV_OK when all is written, PV_AGAIN when the
 * client is slow (send_timeout runs; the handler's proceed() follows once
 * it has taken everything), PV_ERR when the connection failed: it is
 * closed and the request is gone. */
int pv_resp_flush(struct pv_hreq_s *hr);
/* 1 when what is queued is under postpone_output (1 460 bytes by default)
 * on an HTTP/1.x connection: a handler that may have more at once (the
 * next read of an upstream) may wait for it before pv_resp_flush(), so
 * a head and the first body bytes leave in one write. */
int pv_resp_postpone(const struct pv_hreq_s *hr);
/* The stages below the body filters (bfilter.h): compression when it
 * encodes, else the protocol; the same calls as those above. */
int pv_resp_below_room(const struct pv_hreq_s *hr);
void pv_resp_below_send(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
int pv_resp_below_flush(struct pv_hreq_s *hr);
void pv_resp_below_finish(struct pv_hreq_s *hr);
/* The response is complete: its end is queued and, once everything is
 * written, the request ends (log, keepalive). The handler is done. */
void pv_resp_finish(struct pv_hreq_s *hr);
/* The protocol's end of a complete answer (pv_resp_finish() and the
 * compression filter's last step); with hr->bg_next set (a background
 * cache update), that runs first with hr->bg set, and the update's own
 * pv_resp_finish() / _abort() / _local() / _error() ends the answer. While
 * bg is set the response calls only feed the tee. A subrequest's part
 * ends for its parent before the update starts (pv_subreq_background()). */
void pv_resp_done(struct pv_hreq_s *hr);
/* The response cannot be completed: the client must not take a cut
 * response for a whole one (HTTP/1.1 closes the connection). */
void pv_resp_abort(struct pv_hreq_s *hr);
/* The request is freed: stop limit_rate's delay. */
void pv_resp_rate_end(struct pv_hreq_s *hr);
/* limit_rate, as NGINX's write filter reckons it: the bytes that may be
 * written now, rate x (seconds since the request began + 1) less what
 * has left since limit_rate_after. 0 while a wait runs or when nothing
 * may go: the request then waits for the rate's timer, whose end writes
 * on (the handler's proceed(), or the rest of a finished HTTP/1 answer). */
size_t pv_resp_rate_allow(struct pv_hreq_s *hr);
/* An HTTP/1 write of at most max bytes under the rate answered rc
 * (bytes_sent was before): as NGINX's, it is followed by a wait as long
 * as the rate takes for its bytes past limit_rate_after, or of 1 ms when
 * it used the allowance up. Returns rc, or PV_AGAIN when bytes the cap
 * left queued wait for the timer. */
int pv_resp_rate_wrote(struct pv_hreq_s *hr, uint64_t before, size_t max, int rc);
/* Send the interim 100 Continue. PV_OK, or PV_ERR (connection closed). */
int pv_resp_continue(struct pv_hreq_s *hr);
/* Answer with a response made here: the error page of status (with
 * location for a redirect), or body as text/plain when body.p is set.
 * The request ends once it is written. After 400, 408, 413, 414, 431,
 * 500 and 501 the connection is not kept, as in NGINX. */
void pv_resp_local(struct pv_hreq_s *hr, int status, const char *location, pv_str_t body);
/* Answer with the error page for status instead of a response that has
 * not started (anything queued before it, a 100 Continue, is dropped). */
void pv_resp_error(struct pv_hreq_s *hr, int status);
/* The Content-Type of a local answer's text (a `return`), as NGINX's
 * ngx_http_send_response() types it: X-Accel's type, else the URI's
 * extension under `types`, else default_type. An empty 2xx (not 204)
 * is typed so too (PV_LOCAL_TYPED). */
pv_str_t pv_resp_local_type(const struct pv_hreq_s *hr);
#define PV_LOCAL_TYPED(status) ((status) >= 200 && (status) < 300 && (status) != 204)

#endif
