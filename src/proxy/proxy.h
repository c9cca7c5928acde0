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
#include "../upstream/queue.h"
#include "../upstream/response.h"
#include "pipe.h"

struct pv_hreq_s;
struct pv_upconn_s;
struct pv_upool_s;
struct pv_resp_head_s;

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
    uint8_t body_end_queued;     /* a chunked body's last chunk is queued (this attempt) */
    uint8_t resp_started;        /* any response byte arrived */
    uint8_t resp_early;          /* the final response head came before the whole request was written */
    uint8_t resp_head_done;      /* response head parsed and queued to the client */
    uint8_t resp_done;           /* upstream response fully received */
    uint8_t upstream_keep;       /* upstream allows reuse of the connection */
    uint8_t expect_sent;         /* 100 Continue sent to the client */
    uint8_t fresh;               /* next connection must be a new one (retry after a stale one) */
    uint8_t buffering;           /* reading the body whole before asking an upstream */
    uint8_t picking;             /* pick was initialised for this exchange */
    uint8_t dyn;                 /* PV_PROXY_DYN_*: what a run-time target (target.c) holds */
    pv_upwait_t qwait;           /* its place in the upstream's `queue` while it waits for a server */
    void (*qagain)(struct pv_proxy_s *px); /* picks again when a queued server may be free */
    /* not cleared per request: clear when the state is made, and left so by pv_pipe_end() */
    pv_pipe_t pipe;              /* the response body's way to the client (proxy_buffering) */
    /* set up by pv_uresp_init() for each attempt */
    pv_uresp_t rp;               /* response head parser and the parsed head */
    /* a run-time target's (target.c), not cleared per exchange: each is
     * set before it is read, as the bits of `dyn` say */
    uint8_t in_resolve;          /* inside pv_resolve() (1), then how a cached answer went (2 ok, 3 failed) */
    const char *dyn_host;        /* the host evaluated (TLS name), when PV_PROXY_DYN_HOST */
    pv_str_t dyn_url;            /* the URL evaluated (request arena) */
    struct pv_resolve_wait_s *dns_wait; /* the lookup waited for, when PV_PROXY_DYN_WAIT */
    void (*targeted)(struct pv_proxy_s *px); /* what runs once the target is known */
} pv_proxy_t;

#define PV_PROXY_DYN_POOL 1      /* pool is a run-time one, held until the exchange ends */
#define PV_PROXY_DYN_WAIT 2      /* a resolver lookup is pending (dns_wait) */
#define PV_PROXY_DYN_HOST 4      /* dyn_host is the evaluated host */

/* proxy_pass with variables (target.c): evaluate the URL, find the
 * upstream block it names or resolve its host, and set px->pool. PV_OK:
 * set now; PV_AGAIN: px->targeted(px) runs once it is; PV_ERR: the
 * failure was answered. */
int pv_proxy_target(pv_proxy_t *px);
/* In a request that entered a residency scope (r->res_allow), whether
 * every server of px->pool is where the request may go; a route no
 * load-time check could see (X-Accel-Redirect, an SSI include) may have
 * brought it to a location outside its scope. PV_OK, or PV_ERR after the
 * 403 was answered, logged and counted. Callers test r->res_allow first. */
int pv_proxy_residency(pv_proxy_t *px);
/* Drop what a target holds (a run-time pool, a lookup in progress). */
void pv_proxy_target_done(pv_proxy_t *px);
/* Whether the method m is idempotent (RFC 9110 9.2.2, as NGINX lists them). */
static inline int pv_proxy_idempotent(int m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PUT || m == HTTP_DELETE || m == HTTP_OPTIONS ||
           m == HTTP_TRACE;
}
/* Add item to the ", "-separated list in dst of cap bytes (select.c). */
void pv_proxy_append_list(char *dst, size_t cap, const char *item);
/* Add status to r's $upstream_status list (select.c). */
void pv_proxy_append_status(pv_request_t *r, int status);
/* No server can be picked for the first try of px (select.c): whether it
 * waits in the upstream's `queue` (or waits already), again(px) being called
 * when a server may have come free. Not when the queue is full (502),
 * nor when health checks hold every server out (503 with Retry-After). */
int pv_proxy_queue_wait(pv_proxy_t *px, void (*again)(pv_proxy_t *px));
/* Start choosing servers for the exchange (select.c); -1 out of memory. */
int pv_proxy_pick_init(pv_proxy_t *px);
/* The TLS server name of a connection about to open: proxy_ssl_name with
 * variables evaluated for this request, its port left out. */
const char *pv_proxy_tls_name(pv_proxy_t *px);
/* The local address to connect from (proxy_bind), its variables
 * evaluated; NULL: none (an invalid one is logged). */
const pv_net_bind_t *pv_proxy_bind(pv_proxy_t *px);
/* The same for a module's own setting b (fastcgi_bind); NULL for none. */
const pv_net_bind_t *pv_proxy_bind_of(pv_proxy_t *px, const struct pv_bind_conf_s *b);
/* proxy_ssl_certificate / _key with variables, for this request (NULL
 * when they have none: the SSL_CTX's certificate, if any, is used). */
const struct pv_tls_cert_files_s *pv_proxy_tls_certs(pv_proxy_t *px);
/* Release the server in use with a PV_BAL_* verdict (select.c). */
void pv_proxy_release_server(pv_proxy_t *px, int verdict);
/* Metrics of the server in use (select.c): a try begins, its connection
 * is up (also marked in the request's try record), its response head arrived, it failed with cause f. */
void pv_proxy_stat_try(pv_proxy_t *px);
void pv_proxy_stat_connect(pv_proxy_t *px);
/* The events of px's upstream connection while it connects: 1 once it is
 * up (the connect timer stopped, the try's connect time counted), 0
 * while it is not, -1 with *err set when the connect failed. */
int pv_proxy_connect_done(pv_proxy_t *px, unsigned events, int *err);
void pv_proxy_stat_header(pv_proxy_t *px);
void pv_proxy_stat_fail(pv_proxy_t *px, int f);
/* Whether proxy_next_upstream_timeout has passed (select.c). */
int pv_proxy_next_timed_out(pv_proxy_t *px);
/* The upstream switched protocols (the 101 head is queued): the
 * connection and the bytes after the head go to a tunnel (tunnel.c). */
void pv_proxy_start_tunnel(pv_proxy_t *px);
/* X-Accel-Redirect in the upstream's head (accel.c): 1 when the request
 * was sent on to the URI or named location it names (or answered 404 for
 * an unsafe URI), the upstream connection given up; 0 when there is none
 * or proxy_ignore_headers names it. */
int pv_proxy_accel_redirect(pv_proxy_t *px);
/* The same for any module: the head's fields, its *_ignore_headers
 * PV_IGN_* bits, its pipe settings (X-Accel-Limit-Rate is taken first, as
 * NGINX takes it) and how its upstream connection is given up. */
typedef struct pv_accel_s {
    const pv_header_t *fields;
    int nfields;
    int ignore;
    const struct pv_pipe_conf_s *pipe;
    void (*release)(pv_proxy_t *px); /* the server released, the connection closed or pooled */
} pv_accel_t;
int pv_accel_redirect(pv_proxy_t *px, const pv_accel_t *a);
/* Keep a response head's fields in r's arena as $upstream_http_NAME and
 * $upstream_cookie_NAME (the head's buffer is reused for the body):
 * for auth subrequests, X-Accel-Redirect, and every response once a
 * config names such a variable (accel.c). */
void pv_proxy_keep_fields(pv_request_t *r, const pv_uresp_t *rp);
/* The same for the n fields at f. */
void pv_proxy_keep_head(pv_request_t *r, const pv_header_t *f, int n);
/* The head h is about to be sent (prange.c): set r->allow_ranges when
 * the range filter may answer the client's Range from its body (force:
 * the module's *_force_ranges, or a response the cache may store that
 * came with Accept-Ranges). */
void pv_proxy_ranges(pv_proxy_t *px, const struct pv_resp_head_s *h, int force);
/* The head call answered rc: PV_RESP_RANGE_416 (the range filter found
 * nothing of the body of size bytes satisfiable) or PV_RESP_PRECONDITION
 * (notmod.h). The server is released, the upstream connection (if the
 * module has not let it go yet) given up, and 416 or 412 answers. -3
 * (answered). */
int pv_proxy_answer_instead(pv_proxy_t *px, int rc, int64_t size);
/* The upstream's final head is parsed in px->rp (uhead.c): act on it and
 * queue the client's head. 0 (a proxy_next_upstream status leaves
 * resp_head_done clear), -1 when it cannot be relayed, -2 no memory for
 * the head, -3 answered otherwise (the cached entry, an error page). */
int pv_proxy_upstream_head(pv_proxy_t *px);
/* proxy_next_upstream on a status (proxy.c): 1 when the request went on
 * to another server. */
int pv_proxy_next_on_status(pv_proxy_t *px, int status);
/* Give up the upstream connection (proxy.c): it is never reused. */
void pv_proxy_drop_upstream(pv_proxy_t *px);
/* The one place a failed exchange becomes the client's answer (answer.c). */
void pv_proxy_answer_failure(pv_proxy_t *px, int f);
/* One error log line per failure (answer.c). */
void pv_proxy_log_failure(pv_proxy_t *px, int f, int err, const char *detail);

/* The module: the content handler of proxy_pass locations. */
extern pv_module_t pv_proxy_module;

#endif
