/* The request body as a content handler reads it: a stream of decoded
 * body bytes, whatever the protocol framed them with. The HTTP/1 server
 * side implements it over the connection's buffers (body.c); HTTP/2 will
 * implement the same calls over DATA frames. A handler never sees the
 * framing, the buffers or the socket:
 *
 *   take spans  ->  write them  ->  read more  ->  take spans ... done
 *
 * Spans point into the stream's buffers (nothing is copied) and stay
 * valid until the next pv_body_read(): the caller queues them and reads
 * more only once they have been written out. The calls go to the
 * request's protocol (hr->proto); done, error and hold are the request's
 * own state. */
#ifndef PV_BODY_H
#define PV_BODY_H

#include <stddef.h>
#include "../core/common.h"

struct pv_hreq_s;

/* What a protocol implements; the calls below document each entry. */
typedef struct pv_body_ops_s {
    int (*take)(struct pv_hreq_s *hr, pv_str_t *spans, int max);
    size_t (*buffered)(const struct pv_hreq_s *hr);
    int (*read)(struct pv_hreq_s *hr);
    int (*arrived)(struct pv_hreq_s *hr, size_t limit, size_t *len);
    int (*rewind)(struct pv_hreq_s *hr);
    int (*rewindable)(const struct pv_hreq_s *hr);
    void (*discard_buffered)(struct pv_hreq_s *hr);
    int (*client_closed)(struct pv_hreq_s *hr);
} pv_body_ops_t;

/* The HTTP/1 implementation. */
extern const pv_body_ops_t pv_h1_body;

/* The next decoded body bytes already received, as up to max spans (not
 * copied; valid until pv_body_read()). They count as consumed. Returns
 * the number of spans (0 when nothing usable is buffered; framing alone
 * may have been consumed), or PV_ERR once the body is broken:
 * pv_body_error() gives the status. */
int pv_body_take(struct pv_hreq_s *hr, pv_str_t *spans, int max);
/* Bytes received and not yet taken (framing included). */
size_t pv_body_buffered(const struct pv_hreq_s *hr);
/* 1 once every body byte has been taken (at once for a request without
 * body). It need not turn with a take: over HTTP/2 an END_STREAM that
 * comes alone after the last bytes were taken sets it in pv_body_read()
 * or before the handler's readable(), so a handler that frames the body
 * (a last chunk) looks at it after each of those calls. */
int pv_body_done(const struct pv_hreq_s *hr);
/* Receive more of the body. Spans taken before must have been written
 * out: their space is reused. PV_OK when bytes arrived, PV_AGAIN when
 * none are waiting (client_body_timeout runs; the handler's client event
 * says when to try again), PV_ERR when the client closed or failed in the
 * middle of its body (logged). After a 101 (response.h) the stream ends
 * with the client's close or error: PV_OK and pv_body_done(), no timer. */
int pv_body_read(struct pv_hreq_s *hr);
/* Receive what the client has sent of its body so far, without waiting
 * and without taking any of it. 1 when the whole body is now held in at
 * most limit bytes, framing included (*len gets its decoded length), 0
 * when it is not (bytes still to come, or more than limit), PV_ERR when
 * the client went away (logged). NGINX's first read of a body it does not
 * buffer: a body that is then whole is kept as a buffered one. limit is
 * what NGINX's body buffer holds; HTTP/1 adds the room its head buffer
 * leaves. */
int pv_body_arrived(struct pv_hreq_s *hr, size_t limit, size_t *len);
/* Go back to the start of the body to send it again (another upstream).
 * 0, or -1 when bytes of it are no longer held. */
int pv_body_rewind(struct pv_hreq_s *hr);
/* Whether pv_body_rewind() would succeed. */
int pv_body_rewindable(const struct pv_hreq_s *hr);
/* The status a broken body calls for: 400 (invalid chunked framing) or
 * 413 (beyond client_max_body_size); 0 while it is fine. */
int pv_body_error(const struct pv_hreq_s *hr);
/* A handler takes charge of the body: a local response after this does
 * not skip over a body that is buffered whole. */
void pv_body_hold(struct pv_hreq_s *hr);
/* Skip a body that is already buffered whole (a local response keeps the
 * connection then, as NGINX's discarding of bodies does). */
void pv_body_discard_buffered(struct pv_hreq_s *hr);
/* With the body complete: whether the client has closed its side (EOF or
 * error; a pipelined request does not count). */
int pv_body_client_closed(struct pv_hreq_s *hr);

#endif
