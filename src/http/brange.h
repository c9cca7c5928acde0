/* The range filter of a streamed response (NGINX's range header and body
 * filters as they treat a proxied body): a content handler that allows
 * it (r->allow_ranges, NGINX's allow_ranges with single_range) gets a
 * 200 of known length answered as the Range asks, from the body as it
 * streams. The static file path answers ranges itself (static.c). */
#ifndef PV_HTTP_BRANGE_H
#define PV_HTTP_BRANGE_H

#include "response.h"

struct pv_hreq_s;

/* pv_brange_head(): no part of the body is satisfiable. The head is left
 * as it came (its content_length the body's size); the caller answers
 * 416 (pv_static_416()). */
#define PV_RESP_RANGE_416 (-4)

/* The head h of a response whose handler set r->allow_ranges, once the
 * body filters and compression have seen it (they leave no length when
 * they change the body). The handler's Accept-Ranges goes; then, when h
 * is a 200 of known length to an HTTP/1.0 or later main request and
 * max_ranges is not 0: a Range ("bytes=", If-Range matching h's ETag or
 * Last-Modified) of one satisfiable part makes h a 206 with
 * Content-Range and puts the filter that passes that part alone at the
 * end of the body filter chain; several parts, or none asked for,
 * declined or not matching, give Accept-Ranges: bytes; one nothing
 * satisfies answers PV_RESP_RANGE_416. Clears r->allow_ranges. PV_OK,
 * PV_RESP_NOMEM or PV_RESP_RANGE_416. */
int pv_brange_head(struct pv_hreq_s *hr, pv_resp_head_t *h);

#endif
