/* HTTP/2 on the client side (nghttp2). A connection (h2.c) owns the
 * session, the transport and the output; each stream (h2_stream.c) is one
 * request (pv_hreq_t) with pv_h2_proto as its protocol, so it runs the same
 * phases and content handlers as an HTTP/1.1 request. nghttp2's callbacks
 * only record what happened; the connection acts on it afterwards, outside
 * the library (h2_process), so a handler never runs inside nghttp2. */
#ifndef PV_H2_H
#define PV_H2_H

#include <netinet/in.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "server.h"

#define PV_H2_SPANS 32 /* response body spans a stream holds */

typedef struct pv_h2conn_s pv_h2conn_t;
typedef struct pv_h2_stream_s pv_h2_stream_t;

/* stream events, acted on by the connection after nghttp2 returns */
#define PV_H2_EV_START 0x01    /* the request head is complete: run the phases */
#define PV_H2_EV_READABLE 0x02 /* body bytes or the body's end arrived */
#define PV_H2_EV_CLOSE 0x04    /* nghttp2 closed the stream */

struct pv_h2_stream_s {
    pv_h2conn_t *hc;              /* connection */
    pv_hreq_t *hr;                /* the request */
    int32_t id;                   /* stream identifier */
    pv_h2_stream_t *prev, *next;  /* connection's open streams */
    pv_h2_stream_t *ev_next;      /* connection's event list */
    uint8_t ev;                   /* PV_H2_EV_* pending */
    uint8_t started;              /* the phases ran */
    uint8_t closed;               /* nghttp2 closed it */
    uint8_t end_stream;           /* the client's END_STREAM arrived: the body is complete */
    uint8_t head_sent;            /* response HEADERS submitted */
    uint8_t has_data;             /* the response has a body (a data provider) */
    uint8_t deferred;             /* the data provider waits for spans */
    uint8_t resp_done;            /* every body span is queued (pv_resp_finish) */
    uint8_t want_proceed;         /* the handler waits for its spans to be written */
    uint8_t body_released;        /* body bytes were given back to the window: no rewind */
    uint16_t hdr_status;          /* 400/431 found while the head arrived */
    uint32_t rst_code;            /* error code it closed with */
    uint32_t hdr_bytes;           /* decoded field bytes so far (HPACK bombs) */
    /* the request head as received (in the request arena) */
    pv_header_t *fields;
    int nfields, fcap;
    int nkept;                    /* fields max_headers counts */
    pv_str_t method, scheme, authority, path;
    pv_str_t protocol;            /* :protocol of an extended CONNECT (RFC 8441) */
    uint8_t websocket;            /* an extended CONNECT for a WebSocket (h2_ws.c) */
    /* request body: DATA bytes, read window-limited into bin */
    pv_buf_t *bin;
    uint64_t body_received;       /* DATA payload bytes so far */
    size_t unconsumed;            /* bytes received and not yet given back to the windows */
    /* response body spans queued by the handler, not yet framed */
    pv_str_t spans[PV_H2_SPANS];
    int sfirst, sn;               /* pending spans[sfirst..sfirst+sn) */
    size_t soff;                  /* bytes of spans[sfirst] already framed */
    uint64_t body_sent;           /* response DATA payload bytes */
    pv_timer_t timer;             /* send_timeout / client_body_timeout */
};

/* A client connection speaking HTTP/2. The first fields are the part
 * every client connection has. */
struct pv_h2conn_s {
    pv_xprt_t x;                  /* transport */
    pv_timer_t timer;             /* idle (keepalive_timeout), send and preface timeouts */
    pv_worker_t *w;               /* owning worker */
    uint64_t id;                  /* serial */
    uint64_t start_ns;            /* the loop's clock (ns) when it began ($connection_time) */
    uint16_t group;               /* listen group index */
    struct sockaddr_in6 peer;     /* client address */
    /* HTTP/2 */
    nghttp2_session *s;
    int64_t header_timeout;       /* from the address's default server: client_header_timeout */
    int64_t idle_timeout;         /* keepalive_timeout */
    int64_t send_timeout;         /* send_timeout */
    int64_t max_requests;         /* keepalive_requests: streams before GOAWAY */
    int64_t max_time;             /* keepalive_time (ms): no stream after GOAWAY once older */
    int64_t linger_time;          /* lingering_time (ms) after a GOAWAY */
    int64_t linger_timeout;       /* lingering_timeout (ms) */
    uint64_t linger_end;          /* lingering: the loop's clock (ms) at which it is closed */
    int linger_close;             /* lingering_close: PV_LINGER_* */
    uint32_t window;              /* a stream's receive window: http2_body_preread_size */
    pv_h2conn_t *prev, *next;     /* worker's HTTP/2 connections */
    pv_h2conn_t *dirty_next;      /* worker's list of connections with work left */
    pv_h2conn_t *idle_prev, *idle_next; /* worker's idle connections (no stream, nothing to send) */
    pv_h2_stream_t *streams;      /* open streams */
    pv_h2_stream_t *ev_head, *ev_tail; /* streams with events */
    pv_h2_stream_t *dead;         /* ended streams, freed once the output drained */
    pv_h2_stream_t *held;         /* ended streams whose mirrors still run (mirror.h) */
    int nstreams;
    uint32_t nreq;                /* streams started */
    uint32_t idle_nreq;           /* streams started when it went idle */
    int32_t flood_tokens;         /* control frames the client may still send */
    uint64_t flood_ms;            /* when the tokens were last refilled */
    uint8_t dirty;                /* on the dirty list */
    uint8_t idle;                 /* on the idle list */
    uint8_t closing;              /* close once back at the top */
    uint8_t closed;               /* closed, waiting to be freed */
    uint8_t goaway;               /* GOAWAY submitted: no new streams */
    uint8_t stalled;              /* the socket is full: reading waits for it */
    uint8_t lingering;            /* GOAWAY out, write side shut: reading and dropping until the client closes */
    uint8_t swallow_ack;          /* drop the ACK of the SETTINGS put in for the client */
    uint8_t seen;                 /* preface and first frame head bytes received, up to 33 */
    uint8_t head1[9];             /* the first frame's head, held until it is complete */
    pv_outq_t q;                  /* bytes to the client: frame bytes in wbuf, body spans in place */
    pv_buf_t *wbuf;               /* frame bytes (NULL when nothing is queued) */
};

/* HTTP/2 as a protocol of requests. */
extern const pv_proto_t pv_h2_proto;
/* The worker module for HTTP/2 connections (drain, reload, close-all). */
extern pv_module_t pv_h2_module;
/* Set while HTTP/2 connections have work left for before the loop waits;
 * the HTTP module's reap hook then calls pv_h2_reap() (one flag test per
 * loop turn instead of a hook of its own). */
extern __thread int pv_h2_work;
/* Do that work: connections with events, reads and writes left, and free
 * the closed ones. */
void pv_h2_reap(pv_worker_t *w);

/* A connection accepted on an HTTP/2-only (`listen ... http2`) address,
 * over transport x (taken over; closed on failure). */
void pv_h2_accept(pv_worker_t *w, const pv_xprt_t *x, uint16_t group, const struct sockaddr_in6 *peer);
/* Take over a connection that opened with the HTTP/2 preface: x (already
 * out of the loop), the bytes read so far (n at p, the preface first). */
void pv_h2_adopt(pv_worker_t *w, const pv_xprt_t *x, uint16_t group, const struct sockaddr_in6 *peer,
                 uint64_t id, const char *p, size_t n);
/* At worker_connections: close the HTTP/2 connection idle the longest
 * (no stream, nothing to send) with GOAWAY, as NGINX reuses idle
 * connections. 1 if one was closed, 0 if none is idle. */
int pv_h2_reclaim(pv_worker_t *w);
/* Whether n bytes at p are the start of the client preface (1), all of
 * it (2), or not (0). */
int pv_h2_preface(const char *p, size_t n);

/* ---- between the connection and its streams (h2.c <-> h2_stream.c) ---- */

/* nghttp2's receive callbacks for streams (h2_stream.c). */
void pv_h2_stream_callbacks(nghttp2_session_callbacks *cb);
/* Act on a stream's pending events (outside nghttp2). */
void pv_h2_stream_events(pv_h2_stream_t *st);
/* The stream's spans were written out: let its handler go on. */
void pv_h2_stream_proceed(pv_h2_stream_t *st);
/* Free an ended stream and its request. */
void pv_h2_stream_free(pv_h2_stream_t *st);
/* The connection is going away: end the stream's request now. */
void pv_h2_stream_kill(pv_h2_stream_t *st);
/* Queue the DATA frame of length payload bytes from st's spans. */
int pv_h2_stream_send_data(pv_h2_stream_t *st, const uint8_t *framehd, size_t length);

/* Note that st has ev pending and the connection work to do. */
void pv_h2_event(pv_h2_stream_t *st, uint8_t ev);
/* The connection has work left: run it before the loop next waits. */
void pv_h2_dirty(pv_h2conn_t *hc);
/* Write what nghttp2 has to send. PV_OK when everything is written,
 * PV_AGAIN when the socket is full, PV_ERR when the connection failed
 * (it closes once back at the top). */
int pv_h2_send(pv_h2conn_t *hc);
/* Copy n bytes into the output (frame headers). -1 when it has no room. */
int pv_h2_out_copy(pv_h2conn_t *hc, const void *p, size_t n);
/* Whether the output can take k more entries. */
int pv_h2_out_room(const pv_h2conn_t *hc, int k);
/* No new streams: GOAWAY naming the last one taken; the open ones finish. */
void pv_h2_goaway(pv_h2conn_t *hc);
/* Spend one of the client's control-frame tokens; 0 once they are gone. */
int pv_h2_flood_spend(pv_h2conn_t *hc);

/* RFC 8441 (h2_ws.c). At post-read, a CONNECT on st: for `:protocol
 * websocket`, the request model of an HTTP/1.1 WebSocket handshake (0);
 * else the status to answer with. */
int pv_h2_ws_head(struct pv_hreq_s *hr, pv_h2_stream_t *st);
/* The upstream's 101 for such a stream made the client's 200: status,
 * fields, and the body stream switched to carry the tunnel. PV_ERR when
 * the stream asked for no WebSocket. */
int pv_h2_ws_response(struct pv_hreq_s *hr, pv_resp_head_t *h);

#endif
