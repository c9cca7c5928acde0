/* Body filters: the filters that change the text of a response (NGINX's
 * output body filters: addition, sub_filter, charset, SSI). A filter
 * module's head() sees every response head a handler sends, before
 * compression does; when the response is its to change, it rewrites the
 * head (most drop Content-Length) and appends a filter to the request's
 * chain (hr->bf). The handler's body spans then go to the first filter,
 * each filter hands what it makes to the next, and the last one's go to
 * compression (when on) and the protocol, so neither handlers nor
 * protocols know of the chain.
 *
 * A filter turns its input into output spans (pv_bf_out()): pieces of
 * the input itself, or bytes in buffers of its own. It takes input only
 * while its output is empty; its output is handed on as the next stage
 * has room, and once the next stage has written all of it, written()
 * says the filter's buffers may be reused. Input spans stay valid until
 * then too, as the response calls promise. */
#ifndef PV_HTTP_BFILTER_H
#define PV_HTTP_BFILTER_H

#include "../core/common.h"
#include "response.h"

struct pv_hreq_s;
typedef struct pv_bfilter_s pv_bfilter_t;

/* The most input spans a filter's body() is given at once. */
#define PV_BF_TAKE 16

typedef struct pv_bfilter_ops_s {
    const char *name;
    /* Take n input spans; what they give goes out with pv_bf_out(). */
    void (*body)(struct pv_hreq_s *hr, pv_bfilter_t *f, const pv_str_t *spans, int n);
    /* The body ended: put out the rest. */
    void (*end)(struct pv_hreq_s *hr, pv_bfilter_t *f);
    /* Optional. Everything put out was written: buffers may be reused. */
    void (*written)(struct pv_hreq_s *hr, pv_bfilter_t *f);
    /* Optional. Called before f's output is handed on: f may put out
     * more, or answer PV_AGAIN while it waits for something other than
     * the client (it calls pv_bf_wake() once that has come); PV_ERR
     * cuts the response. PV_OK otherwise. */
    int (*pull)(struct pv_hreq_s *hr, pv_bfilter_t *f);
    /* Optional. The request is freed (complete or not). */
    void (*free)(struct pv_hreq_s *hr, pv_bfilter_t *f);
} pv_bfilter_ops_t;

/* A filter's state starts with this (filters embed it first). */
struct pv_bfilter_s {
    const pv_bfilter_ops_t *ops;
    pv_bfilter_t *next;  /* NULL: compression or the protocol */
    pv_str_t *out;       /* output spans (request arena) */
    int nout, cap;       /* spans in out; room for */
    int sent;            /* out[0..sent) were handed to the next stage */
    uint8_t ended;       /* end() was called */
    uint8_t failed;      /* memory ran out: the response is cut */
};

/* A filter module: head() is called for every response head a handler
 * sends (not a HEAD's body-less one alone: for those too, as the head
 * must match GET's), in the order of the table in bfilter.c, which is
 * NGINX's: addition, sub_filter, charset, SSI. PV_OK, or PV_RESP_NOMEM. */
typedef struct pv_bfilter_module_s {
    const char *name;
    int (*head)(struct pv_hreq_s *hr, pv_resp_head_t *h);
    /* Optional: whether head() would change the body of a response with
     * head h (a file handler then answers no byte range of it, as NGINX's
     * range filter, which comes after these, finds no length). */
    int (*changes)(const struct pv_hreq_s *hr, const pv_resp_head_t *h);
} pv_bfilter_module_t;

/* Put f's state (size bytes, starting with a pv_bfilter_t, zeroed) at the
 * end of hr's chain. NULL when memory ran out. */
pv_bfilter_t *pv_bf_add(struct pv_hreq_s *hr, const pv_bfilter_ops_t *ops, size_t size);
/* Put one output span. PV_OK, or PV_ERR when memory ran out (the
 * response is then cut). */
int pv_bf_out(struct pv_hreq_s *hr, pv_bfilter_t *f, pv_str_t s);
/* Copy bytes into the request arena and put them out (small texts). */
int pv_bf_out_copy(struct pv_hreq_s *hr, pv_bfilter_t *f, const void *p, size_t len);
/* A filter that answered PV_AGAIN from pull() has what it waited for:
 * the response goes on (the handler's proceed(), from the loop). */
void pv_bf_wake(struct pv_hreq_s *hr);

/* Whether some module would change the body of a response with head h. */
int pv_bf_changes(const struct pv_hreq_s *hr, const pv_resp_head_t *h);
/* Whether content type ct (its parameters left out) is in l (NGINX's
 * ngx_http_test_content_type()). */
struct pv_mime_list_s;
int pv_bf_type_listed(const struct pv_mime_list_s *l, pv_str_t ct);
/* NGINX's ngx_http_weak_etag(): a strong ETag *v made weak ("W/...")
 * in a: 1 to keep it, 0 to drop it (not quoted), -1 out of memory. */
int pv_bf_weak_etag(pv_arena_t *a, pv_str_t *v);
/* A strong ETag made weak ("W/..."), one not quoted dropped, in a copy
 * of h's fields (NGINX's ngx_http_weak_etag()); with drop_validators,
 * Last-Modified and ETag go instead. Accept-Ranges goes too. PV_OK or
 * PV_RESP_NOMEM. */
int pv_bf_head_fields(struct pv_hreq_s *hr, pv_resp_head_t *h, int drop_validators);

/* The response calls while hr->bf is set (response.h documents each). */
int pv_bf_head(struct pv_hreq_s *hr, pv_resp_head_t *h);
int pv_bf_room(const struct pv_hreq_s *hr);
void pv_bf_send_body(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
int pv_bf_flush(struct pv_hreq_s *hr);
void pv_bf_finish(struct pv_hreq_s *hr);
/* A local response (pv_resp_local(): a `return` text, an error page):
 * the modules see its head h, and its whole body goes through the
 * filters they set up at once, into one piece in the request arena
 * (*body). A filter that would wait (pull() answering PV_AGAIN) cannot
 * take part. PV_OK, or PV_RESP_NOMEM (logged). */
int pv_bf_local(struct pv_hreq_s *hr, pv_resp_head_t *h, pv_str_t *body);
/* The request is freed: each filter's free(). */
void pv_bf_free(struct pv_hreq_s *hr);

#endif
