/* Subrequests whose response body goes into the parent's output (NGINX's
 * ngx_http_subrequest and postpone filter, as SSI's include uses them).
 *
 * A subrequest is a request state of its own (pv_hreq_t) that runs the
 * phases from server rewrite on (the access phase is skipped, as NGINX
 * skips it for subrequests) and any content handler: proxy, static
 * files, return. Its protocol (pv_sub_proto) sends nothing to a socket:
 * the body spans its handler sends are held for the parent, which takes
 * them (pv_subreq_spans()) when the subrequest's turn in its output has
 * come, and says when they were written (pv_subreq_consumed()). Until
 * then the subrequest's pv_resp_flush() answers PV_AGAIN, so a
 * subrequest whose turn has not come waits with what it has (its
 * handler's buffers), and memory stays bounded whatever the order in
 * which subrequests answer. An in-memory subrequest (include set=) keeps
 * its body instead, up to PV_SUB_MEM_MAX bytes; a discarded one (a
 * mirror, NGINX's background subrequest) drops it as it comes.
 *
 * A subrequest whose location has `log_subrequest on` is written to its
 * access logs when it ends.
 *
 * The parent is told of every change through notify(), which may be
 * called from inside the subrequest's handler: it must only note it and
 * look from the loop (the SSI filter calls pv_bf_wake()). */
#ifndef PV_HTTP_SUBREQ_H
#define PV_HTTP_SUBREQ_H

#include "../core/common.h"
#include "../core/loop.h"

struct pv_hreq_s;

#define PV_SUB_SPANS 16      /* body spans a subrequest hands over at once */
#define PV_SUB_MEM_MAX 4096  /* an in-memory subrequest's body (NGINX's subrequest_output_buffer_size) */
#define PV_SUB_DEPTH_MAX 50

/* What becomes of a subrequest's response body. */
enum { PV_SUB_TO_PARENT = 0, PV_SUB_IN_MEMORY, PV_SUB_DISCARD };  /* subrequests nested deeper: a cycle (NGINX's NGX_HTTP_MAX_SUBREQUESTS) */

typedef struct pv_subreq_s pv_subreq_t;
typedef void (*pv_subreq_notify_cb)(pv_subreq_t *s);

struct pv_subreq_s {
    struct pv_hreq_s *hr;      /* its request state; NULL once freed */
    struct pv_hreq_s *parent;
    pv_subreq_notify_cb notify;
    void *data;                /* the parent's */
    pv_str_t spans[PV_SUB_SPANS];
    int nspans;                /* body spans held for the parent */
    int status;                /* the response's status (0 before the head) */
    uint64_t body_bytes;       /* body bytes the handler sent */
    char *mem;                 /* in memory: the body (the parent's arena) */
    size_t mem_len;
    uint8_t in_memory;
    uint8_t discard;           /* PV_SUB_DISCARD */
    uint8_t logged;
    uint8_t head_sent;
    uint8_t done;              /* finished, aborted or failed: nothing more comes */
    uint8_t failed;            /* aborted or failed */
    uint8_t want_proceed;      /* the handler waits for its spans to be written */
    uint8_t started;
    const pv_str_t *stub;      /* include stub=: the body an error answer is replaced with */
    int nstub;
    pv_str_t stub_type;        /* its Content-Type (the parent's) */
    pv_timer_t timer;          /* the start, and proceed() from the loop */
};

/* Start a GET subrequest of parent for uri (and args) with the parent's
 * header fields, its body going as mode (PV_SUB_*) says: it runs from the
 * loop, so the caller may still change its model (s->hr->r). NULL when
 * memory ran out or it would nest too deep (logged). */
pv_subreq_t *pv_subreq_start(struct pv_hreq_s *parent, pv_str_t uri, pv_str_t args, int mode,
                             pv_subreq_notify_cb notify, void *data);
/* The body spans held; the parent hands them on and, once they are
 * written, calls pv_subreq_consumed(). */
int pv_subreq_spans(pv_subreq_t *s, const pv_str_t **spans);
void pv_subreq_consumed(pv_subreq_t *s);
/* The parent is done with s (it ended, or the parent is going away): an
 * unfinished subrequest is aborted, its state freed. */
void pv_subreq_free(pv_subreq_t *s);
/* hr, a subrequest whose answer is complete, goes on in the background
 * (a cache update, proxy_cache_background_update): its parent sees the
 * part end now, and the state passes to the main request, whose end
 * waits for it and which frees it (NGINX's background subrequest of
 * r->main). PV_ERR (out of memory, or its last spans not taken yet):
 * it stays the parent's part, which ends with it. */
int pv_subreq_background(struct pv_hreq_s *hr);
/* The request a chain of subrequests belongs to (NGINX's r->main). */
struct pv_hreq_s *pv_subreq_main(struct pv_hreq_s *hr);

#endif
