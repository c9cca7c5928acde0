/* The proxy exchange: one client request relayed to an upstream and its
 * response relayed back, streaming in both directions with back-pressure
 * (a side is read only when what was read before has been written). */
#ifndef PV_PROXY_H
#define PV_PROXY_H

#include <stdint.h>
#include <llhttp.h>

#include "../core/buf.h"
#include "../core/module.h"
#include "../core/outq.h"
#include "../http/chunked.h"
#include "../http/phases.h"
#include "../http/request.h"
#include "../upstream/balance.h"
#include "../upstream/response.h"
#include "pipe.h"

struct pv_hreq_s;
struct pv_upconn_s;
struct pv_upool_s;

/* A request body up to this size is read whole before an upstream
 * connection is taken, so a client trickling a small body (slow POST)
 * holds no upstream connection; larger bodies stream. */
#define PV_PROXY_BUFFER_BODY 8192

typedef struct pv_proxy_s {
    struct pv_hreq_s *hr;        /* the client request */
    pv_request_t *r;             /* the request sent upstream: hr's, or a subrequest's */
    struct pv_location_s *loc;   /* its location */
    pv_sub_done_cb sub_done;     /* set for an auth_request subrequest: the response is read, not relayed */
    struct pv_upool_s *pool;     /* upstream pool */
    struct pv_upconn_s *u;       /* upstream connection in use */
    int server;                  /* server index in use */
    pv_upick_t pick;             /* server selection: tried set, tries left, the method's state */
    int last_fail;               /* pv_upfail_t of the failure a retry follows (its answer if refused) */
    pv_buf_t *hbuf;              /* upstream request head */
    pv_outq_t uq;                /* bytes queued to the upstream */
    int up_frame;                /* framing of the body sent upstream */
    /* response */
    pv_buf_t *uin;               /* bytes read from the upstream */
    int status;                  /* upstream status */
    int resp_frame;              /* PV_FRAME_* of the upstream response body */
    uint64_t start_ns;           /* exchange start (for $upstream_response_time) */
    uint64_t try_ns;             /* this try's start (metrics) */
    uint16_t tries;              /* servers tried so far (metrics: retries) */
    uint64_t sent_before;        /* bytes written on the connection before this request */
    uint8_t reused;              /* the connection came from the pool */
    uint8_t head_sent;           /* request head fully written */
    uint8_t req_done;            /* whole request (head and body) written */
    uint8_t resp_started;        /* any response byte arrived */
    uint8_t resp_early;          /* the final response head came before the whole request was written */
    uint8_t resp_head_done;      /* response head parsed and queued to the client */
    uint8_t resp_done;           /* upstream response fully received */
    uint8_t upstream_keep;       /* upstream allows reuse of the connection */
    uint8_t expect_sent;         /* 100 Continue sent to the client */
    uint8_t fresh;               /* next connection must be a new one (retry after a stale one) */
    uint8_t buffering;           /* reading a small body whole before asking an upstream */
    uint8_t picking;             /* pick was initialised for this exchange */
    /* not cleared per request: clear when the state is made, and left so by pv_pipe_end() */
    pv_pipe_t pipe;              /* the response body's way to the client (proxy_buffering) */
    /* set up by pv_uresp_init() for each attempt */
    pv_uresp_t rp;               /* response head parser and the parsed head */
} pv_proxy_t;

/* Start choosing servers for the exchange (select.c); -1 out of memory. */
int pv_proxy_pick_init(pv_proxy_t *px);
/* The TLS server name of a connection about to open: proxy_ssl_name with
 * variables evaluated for this request, its port left out. */
const char *pv_proxy_tls_name(pv_proxy_t *px);
/* Choose the exchange's upstream pool; -1: refused by residency (select.c). */
int pv_proxy_target(pv_proxy_t *px);
/* Release the server in use with a PV_BAL_* verdict (select.c). */
void pv_proxy_release_server(pv_proxy_t *px, int verdict);
/* Metrics of the server in use (select.c): a try begins, its connection
 * is up (also marked in the request's try record), its response head arrived, it failed with cause f. */
void pv_proxy_stat_try(pv_proxy_t *px);
void pv_proxy_stat_connect(pv_proxy_t *px);
void pv_proxy_stat_header(pv_proxy_t *px);
void pv_proxy_stat_fail(pv_proxy_t *px, int f);
/* Whether proxy_next_upstream_timeout has passed (select.c). */
int pv_proxy_next_timed_out(pv_proxy_t *px);
/* The upstream switched protocols (the 101 head is queued): the
 * connection and the bytes after the head go to a tunnel (tunnel.c). */
void pv_proxy_start_tunnel(pv_proxy_t *px);
/* The one place a failed exchange becomes the client's answer (answer.c). */
void pv_proxy_answer_failure(pv_proxy_t *px, int f);
/* One error log line per failure (answer.c). */
void pv_proxy_log_failure(pv_proxy_t *px, int f, int err, const char *detail);

/* The module: the content handler of proxy_pass locations. */
extern pv_module_t pv_proxy_module;

#endif
