/* The request's preconditions against a response's validators (NGINX's
 * not-modified filter): If-Unmodified-Since and If-Match answer 412,
 * If-Modified-Since (under if_modified_since) and If-None-Match 304.
 * Static files and cache hits test them before they answer; a proxied
 * response the cache may store meets them as its head goes out. */
#ifndef PV_NOTMOD_H
#define PV_NOTMOD_H

#include <time.h>

#include "request.h"
#include "response.h"

/* 304, 412 or 0 (go on) for r's preconditions against etag (len 0:
 * none) and mtime (-1: no Last-Modified), if_modified_since being ims
 * (PV_IMS_*). */
int pv_notmod_test(const pv_request_t *r, int ims, pv_str_t etag, time_t mtime);

struct pv_hreq_s;
/* The filter on a head about to go out: a main request's 200 when
 * r->not_modified is set. 304: h becomes the 304 head (no Content-Type,
 * Content-Length, Accept-Ranges nor Content-Encoding) and hr->header_only
 * is set, the body going to the tee alone; PV_RESP_PRECONDITION for 412;
 * else PV_OK with h as it was. */
int pv_notmod_filter(struct pv_hreq_s *hr, pv_resp_head_t *h);

#endif
