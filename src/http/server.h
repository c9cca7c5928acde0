/* The HTTP/1.1 server side: client connections, request heads (llhttp in
 * strict mode plus our own framing checks), routing, local responses and
 * keepalive. */
#ifndef PV_SERVER_H
#define PV_SERVER_H

#include <netinet/in.h>
#include <stdint.h>
#include <llhttp.h>

#include "../core/buf.h"
#include "../core/loop.h"
#include "../core/outq.h"
#include "../core/xprt.h"
#include "../proc/worker.h"
#include "access.h"
#include "body.h"
#include "phases.h"
#include "response.h"
#include "chunked.h"
#include "headers.h"
#include "request.h"


typedef struct pv_hconn_s pv_hconn_t;

/* A client protocol: how a request's response goes out and its body comes
 * in. HTTP/1.1 is one (pv_h1_proto); HTTP/2 will be another, each of its
 * streams a request of its own. */
typedef struct pv_proto_s {
    const char *name;           /* for logs */
    const pv_resp_ops_t *resp;  /* response calls (response.h) */
    const pv_body_ops_t *body;  /* request body stream (body.h) */
    /* Post-read: turn what was received into the request model (reqhead.c
     * for HTTP/1). 0, or the status to answer with. */
    int (*head)(struct pv_hreq_s *hr);
    /* The largest block of trailer lines it sends after a response body
     * (pv_hreq_t.resp_trailers); 0: none are sent. */
    uint32_t trailers_max;
} pv_proto_t;

/* HTTP/1.1 over a client connection. */
extern const pv_proto_t pv_h1_proto;

/* Offsets into the connection's head buffer while the head is parsed. */
typedef struct pv_hspan_s {
    uint32_t off, len;
} pv_hspan_t;

/* Request state; exists only while a request is in progress and is
 * recycled through a per-worker freelist (core/cache.h). */
typedef struct pv_hreq_s {
    pv_request_t r;               /* the request model */
    pv_arena_t arena;             /* per-request allocations */
    llhttp_t parser;              /* request head parser */
    const pv_proto_t *proto;      /* the protocol it arrived in: its response and body calls */
    pv_hconn_t *c;                /* HTTP/1 connection (NULL over HTTP/2; handlers use w) */
    struct pv_h2_stream_s *h2s;   /* HTTP/2 stream (NULL over HTTP/1) */
    pv_str_t resp_trailers;       /* trailer lines ("name: value\n") to send after the body (HTTP/2) */
    pv_worker_t *w;               /* worker it runs on */
    pv_wgen_t *gen;               /* config generation the request runs under */
    pv_listen_group_t *lgroup;    /* listen group it arrived on, in gen's snapshot */
    pv_hspan_t url;               /* request target */
    pv_hspan_t *hname, *hvalue;   /* header fields, in the arena (grown as fields come) */
    int fcap;                     /* room in hname and hvalue */
    int nfields;                  /* fields seen */
    int nkept;                    /* whole fields max_headers counts (not ignored ones)... */
    int nscanned;                 /* ...among the first nscanned (counted once there are many) */
    int last_cb;                  /* last span callback: 1 name, 2 value, 3 url */
    int err_status;               /* error found while parsing (414, 431) */
    uint8_t line_checked;         /* the request line was checked whole */
    uint8_t crlf_begun;           /* crlf was started at the head's first byte */
    uint8_t metered;              /* counted as past post-read (stats.c) */
    uint8_t head_in;              /* the head was read whole (an error_page URI may answer it) */
    pv_crlf_t crlf;               /* bare LFs of the head turned into CRLF (http/headers.h) */
    uint8_t phase;                /* PV_PHASE_* the request is in */
    uint8_t phase_step;           /* next handler in the phase engine */
    uint32_t head_len;            /* bytes of head at the front of c->in */
    /* request body */
    int body_frame;               /* PV_FRAME_* */
    uint64_t body_left;           /* PV_FRAME_LENGTH: bytes still due */
    pv_chunked_t chunk;           /* PV_FRAME_CHUNKED decoder */
    uint8_t body_done;            /* whole body received */
    uint64_t body_decoded;        /* PV_FRAME_CHUNKED: body bytes so far, for client_max_body_size */
    pv_buf_t *bin;                /* body buffer once the body outgrows c->in */
    uint16_t body_error;          /* 400 or 413 once the body is found broken */
    uint8_t body_released;        /* body bytes were dropped from the buffers: no rewind */
    uint8_t body_held;            /* a handler took charge of the body (pv_body_hold) */
    struct pv_reqbody_s *rb;      /* the body read whole (reqbody.h); NULL while it streams */
    /* response to the client */
    pv_buf_t *out;                /* response head (or whole local response) */
    pv_outq_t cq;                 /* bytes queued to the client */
    uint32_t resp_head_bytes;     /* bytes of the response head (for $body_bytes_sent) */
    uint8_t keepalive;            /* keep the connection after this response */
    uint8_t resp_done;            /* everything for this response is queued */
    uint8_t handling;             /* handler is producing the response: client events go to it */
    uint8_t resp_chunked;         /* the response body goes out in the chunked coding */
    const pv_handler_t *handler;  /* the content handler that took the request over */
    void *handler_ctx;            /* the handler's per-request state (its own, from its own cache) */
    struct pv_bfchain_s *bf;      /* the body filters the body goes through first (bfilter.h); NULL: none */
    struct pv_charset_ctx_s *cs;  /* the charset decision (charset.h); NULL: not made */
    struct pv_zfilter_s *zf;      /* the compression filter the body goes through (compress.h); NULL: none */
    const struct pv_tee_s *tee;   /* what sees a copy of the response (response.h); NULL: none */
    void *tee_ctx;                /* its state */
    struct pv_rate_s *rate;       /* limit_rate's delay timer (request arena); NULL until first delayed */
    uint8_t rate_queued;          /* limit_rate (HTTP/2): body queued since the last complete flush */
    uint8_t rate_wait;            /* limit_rate: output waits for the rate's timer */
    uint8_t write_wait;           /* the handler writes to the socket itself (sendfile) and waits for room */
    uint8_t bg;                   /* a background cache update runs: the response goes to the tee alone */
    uint8_t header_only;          /* the head went out as a 304 (notmod.h): the body goes to the tee alone */
    uint8_t read_on;              /* the response is being stored (proxy_store): a client that cannot be
                                     written to any more leaves it read on to its end (as with a tee) */
    void (*bg_next)(struct pv_hreq_s *hr); /* once the answer is out, runs before the request ends (sets bg) */
    pv_access_t acc;              /* rate limit and authentication state */
    struct pv_subreq_s *sub;      /* a subrequest: its link to the parent (subreq.h); NULL: a client's request */
    struct pv_ssi_shared_s *ssi;  /* SSI variables and blocks of this request and its subrequests (ssi.c) */
    struct pv_mirror_s *mirror;   /* its mirror subrequests (mirror.c); NULL: none */
} pv_hreq_t;

/* connection flags */
#define PV_HC_F_CLOSING 0x04  /* closed, waiting to be freed */
#define PV_HC_F_EOF 0x08      /* client half-closed or reset */
#define PV_HC_F_READY 0x10    /* queued to parse a buffered pipelined request */
#define PV_HC_F_PIPELINE 0x40 /* the next request's bytes were buffered when the last one ended */
#define PV_HC_F_ORPHAN 0x20   /* its listen address went away in a reload: close after this request */
#define PV_HC_F_IDLE 0x80     /* idle between requests, on the worker's idle list */
#define PV_HC_F_NODELAY_OFF 0x100 /* `tcp_nodelay off` cleared TCP_NODELAY (set on the listener) */
#define PV_HC_F_GONE 0x200    /* a write failed while the response is stored: what is left of it goes
                                 to its store alone, then the connection closes (pv_server_flush) */

/* A client connection. Kept small: while idle between requests it holds
 * no buffer and no request state. */
struct pv_hconn_s {
    pv_xprt_t x;                 /* transport (socket, readiness) */
    pv_timer_t timer;            /* header/body/send/keepalive timeout */
    pv_worker_t *w;              /* owning worker */
    pv_buf_t *in;                /* bytes read, head first (NULL when idle) */
    pv_hreq_t *hr;               /* request in progress (NULL when idle) */
    pv_hconn_t *prev, *next;     /* worker's connection list / reap list */
    pv_hconn_t *ready_next;      /* pipelined-request queue link */
    pv_hconn_t *idle_prev, *idle_next; /* worker's idle list, oldest first */
    uint64_t id;                 /* serial */
    uint32_t nreq;               /* requests started on this connection */
    uint64_t start_ns;           /* the loop's clock (ns) when it was accepted (keepalive_time, $connection_time) */
    uint64_t linger_end;         /* lingering: the loop's clock (ms) at which it is closed (lingering_time) */
    uint32_t linger_wait;        /* lingering: the longest wait for more bytes, ms (lingering_timeout) */
    uint16_t flags;              /* PV_HC_F_* */
    uint16_t group;              /* listen group index */
    struct sockaddr_in6 peer;    /* client address (v4 or v6) */
};

/* The worker module: accepts on the listening sockets, maps connections
 * to new listen groups on reload, drains, closes and reaps them. */
extern pv_module_t pv_http_module;
/* Serve a client connection over transport x, which it takes over (x
 * is copied in, its io callback and data become the connection's; on
 * failure it is closed): as accept() makes one, from a socket under the
 * plain transport, or as a test harness does, from an in-memory one.
 * The connection is watched by the loop and waits for its first request
 * under client_header_timeout. NULL when out of memory or the loop
 * refused it. */
pv_hconn_t *pv_server_conn_open(pv_worker_t *w, int group, pv_xprt_t *x, const struct sockaddr *peer,
                                socklen_t peerlen);
/* After accept (or the PROXY protocol header): HTTP/2 with prior
 * knowledge on a plain `listen ... http2` address, else the TLS transport
 * on a TLS address and HTTP/1 (or the sniff of `http2 on`), with the
 * bytes already waiting read. */
void pv_server_conn_begin(pv_hconn_t *c);
/* The protocol-independent part of a new request: state from the
 * worker's cache, the generation held, the connection facts (nreq is the
 * request's number on its connection), the listen group's default server.
 * NULL when memory ran out. */
pv_hreq_t *pv_server_req_new(pv_worker_t *w, uint16_t group, const struct sockaddr_in6 *peer, uint64_t conn_id,
                             uint32_t nreq);
/* The request state of a subrequest of parent: its generation, server
 * and connection facts (subreq.c fills in the rest). NULL when memory
 * ran out. */
pv_hreq_t *pv_server_subreq_new(pv_hreq_t *parent);
/* Free a request state (the handler's cleanup, access state, buffers). */
void pv_server_req_free(pv_hreq_t *hr);
/* Finish the current request: queue-complete handling, log, keepalive. */
void pv_server_request_done(pv_hreq_t *hr);
/* Answer with an error page and close the connection afterwards. */
void pv_server_error(pv_hreq_t *hr, int status);
/* Queue the response head of n bytes at p (in hr->out) to the client;
 * an HTTP/0.9 response has none, so nothing is queued then. */
void pv_server_queue_head(pv_hreq_t *hr, const char *p, size_t n);
/* Write queued client output (under limit_rate, at most what the rate
 * allows now); returns PV_OK / PV_AGAIN / PV_ERR. */
int pv_server_flush(pv_hreq_t *hr);
/* Write on the rest of an answer whose handler has finished; the request
 * ends once it is out (closed on an error). */
void pv_server_write_rest(pv_hreq_t *hr);
/* Close a connection now (freed before the loop next waits). */
void pv_server_close(pv_hconn_t *c);
/* Free closed connections. */
void pv_server_reap(pv_worker_t *w);
/* After a reload: connection c->group becomes map[c->group] in the new
 * snapshot; connections whose address is no longer listened on close
 * after their current request. */
void pv_server_regroup(pv_worker_t *w, const int *map, int nmap);
/* Graceful stop: close idle connections, mark the rest to close after
 * their current response. */
void pv_server_drain(pv_worker_t *w);

#endif
