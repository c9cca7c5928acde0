/* Request head checks beyond llhttp: the request line looked at whole
 * before llhttp parses it (versions, HTTP/0.9), then the parsed fields
 * turned into the request model (field syntax, fields NGINX takes once
 * only, body framing, Host and the target). */
#ifndef PV_REQHEAD_H
#define PV_REQHEAD_H

#include <stdint.h>
#include <llhttp.h>

#include "server.h"

#define PV_REQHEAD_HTTP09 1 /* pv_reqhead_check_line(): an HTTP/0.9 GET to serve */

/* Check the whole request line [line, lf] before llhttp sees it: an
 * HTTP/1.x minor version above 1 is rewritten to 1 in place; a line
 * without a version is HTTP/0.9 (hr's flags say so, and for a GET the
 * target is noted). Returns 0 to let llhttp parse, PV_REQHEAD_HTTP09, or
 * the status to answer with. */
int pv_reqhead_check_line(pv_hreq_t *hr, char *line, char *lf);
/* The status for llhttp's error e on the head at p (len bytes); logs it. */
int pv_reqhead_parse_error(pv_hreq_t *hr, llhttp_errno_t e, const char *p, size_t len);
/* The fields NGINX takes once only, as pv_reqhead_field() met them, and
 * what Connection said. */
typedef struct pv_reqfields_s {
    const pv_header_t *single[11]; /* Host, Transfer-Encoding, Content-Length, Expect, ... */
    int conn_close;                /* Connection: close */
    int conn_ka;                   /* Connection: keep-alive */
    int upgrade;                   /* an Upgrade field */
    int count;                     /* fields kept, for max_headers */
    int limit;                     /* the max_headers they are held to */
} pv_reqfields_t;

/* Check one request field h (name and value syntax; a second copy of a
 * field NGINX takes once: 400) and note and count it in f; h must stay where it is.
 * Returns 0 to keep it, -1 to drop it (a '_' in the name, logged), or the
 * status to answer with. Shared by HTTP/1 and HTTP/2. */
int pv_reqhead_field(pv_request_t *r, pv_reqfields_t *f, const pv_header_t *h);
/* Whether a field of this name is dropped (ignore_invalid_headers):
 * such fields count for no limit. */
int pv_reqhead_field_ignored(const pv_request_t *r, pv_str_t name);
/* A request with more fields than max_headers: logged; returns the
 * status (NGINX's 494, answered as 400). */
int pv_reqhead_too_many(pv_request_t *r);
/* Whether hr's whole fields that count are more than max_headers of
 * every server its address leads to (refused before the server is
 * known). Called once there are more fields than that at all. */
int pv_reqhead_over_all(pv_hreq_t *hr);
/* The request target (origin-form, absolute-form or "*") into r->uri,
 * args and request_uri, and the host from the target or else from
 * host_field (Host, or HTTP/2's :authority; NULL when absent) into
 * r->host. r->method_id is set. Returns 0, or 400. */
int pv_reqhead_target(pv_request_t *r, pv_str_t target, const pv_str_t *host_field);
/* For a head refused while it was parsed: the server of the first Host
 * field, whole and valid, into hr->r.srv (NGINX takes it at that line). */
void pv_reqhead_refused_server(pv_hreq_t *hr);
/* Turn the parsed spans of the head (its hr->head_len bytes) into the
 * request model and decide the framing: HTTP/1's post-read step
 * (pv_h1_proto.head). Returns 0, or the status to answer with. */
int pv_reqhead_build(pv_hreq_t *hr);

#endif
