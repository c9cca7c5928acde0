/* The heads portvakt writes when proxying, with the semantics of NGINX's
 * ngx_http_proxy_create_request (upstream request) and
 * ngx_http_header_filter (client response), and RFC 9110 §7.6.1 for
 * hop-by-hop fields. Both write in one pass into a caller's buffer. */
#ifndef PV_REWRITE_H
#define PV_REWRITE_H

#include <stdint.h>
#include <sys/types.h>
#include "../config/conf.h"
#include "../http/request.h"
#include "../http/response.h"

/* body_mode of pv_proxy_build_request (same values as PV_FRAME_*). */
enum {
    PV_BODY_NONE = 0, /* no body: no framing header */
    PV_BODY_LENGTH,   /* Content-Length: body_len */
    PV_BODY_CHUNKED   /* Transfer-Encoding: chunked (HTTP/1.1 upstreams only) */
};

/* frame of pv_proxy_build_response. */
enum {
    PV_RESP_NONE = 0, /* no framing header (body ends at close, or none) */
    PV_RESP_LENGTH,   /* Content-Length: content_length */
    PV_RESP_CHUNKED   /* Transfer-Encoding: chunked */
};

/* An upstream response head as parsed. */
typedef struct pv_upstream_response_s {
    int status;                /* status code */
    pv_str_t reason;           /* reason phrase as received; may be empty */
    const pv_header_t *headers; /* fields in arrival order */
    int nheaders;
    const pv_request_t *r;      /* optional, with loc: enables `proxy_redirect default` */
    const pv_location_t *loc;   /* location that proxied the request */
} pv_upstream_response_t;

/* Write the upstream request head for r forwarded by loc into buf:
 * request line, proxy_set_header fields (the location's list, then NGINX's
 * defaults it does not name: Host $proxy_host, Connection close, framing),
 * then the client's fields minus those named by the set list, hop-by-hop
 * fields, fields the client's Connection names, and framing. Values that
 * evaluate empty are left out. r->proxy_host must be set. Returns the
 * length, or -1 when cap is too small (retry with a bigger buffer). */
ssize_t pv_proxy_build_request(pv_request_t *r, const pv_location_t *loc, int body_mode, int64_t body_len,
                               char *buf, size_t cap);

/* Write the client response head for an upstream response (through
 * pv_http_write_head()), in NGINX's order: status line (upstream reason kept, standard one if empty),
 * Server, Date, Content-Type, Content-Length, Location when `proxy_redirect
 * default` rewrote it (made absolute, as NGINX's header filter does),
 * Transfer-Encoding,
 * Connection, then the other upstream fields in order minus hop-by-hop,
 * fields the upstream's Connection names, framing, and NGINX's hidden set
 * (Date, Server, X-Pad, X-Accel-*). date is an IMF-fixdate. content_length
 * is used with PV_RESP_LENGTH. Returns the length or -1 if cap is too small. */
ssize_t pv_proxy_build_response(const pv_upstream_response_t *u, pv_str_t date, int frame,
                                int64_t content_length, int keepalive, char *buf, size_t cap);

/* The same head as a description for the response writer: frame and
 * content_length as above, the upstream fields that pass into fields
 * (room for u->nheaders), a rewritten Location composed in u->r's arena.
 * Returns 0. */
int pv_proxy_response_head(const pv_upstream_response_t *u, int frame, int64_t content_length,
                           pv_header_t *fields, pv_resp_head_t *h);

/* The request-target r's request head sends to loc's proxy_pass (a
 * static one) into buf: its length, or more than cap when it does not fit. */
size_t pv_proxy_upstream_uri(const pv_request_t *r, const struct pv_location_s *loc, char *buf, size_t cap);

/* Whether the request head sent asks the upstream to keep the connection:
 * HTTP/1.1 and a Connection field other than "close". */
int pv_proxy_request_keeps(const struct pv_location_s *loc);

#endif
