/* Internal redirects (NGINX's ngx_http_internal_redirect and
 * ngx_http_named_location) and error_page on top of them. One counter
 * bounds every URI change of a request, `rewrite ... last` included: at
 * most 10 (NGX_HTTP_MAX_URI_CHANGES). */
#ifndef PV_REDIRECT_H
#define PV_REDIRECT_H

#include "../config/conf.h"
#include "request.h"

struct pv_hreq_s;

#define PV_MAX_URI_CHANGES 10

/* Count one URI change of r: PV_ERR when it is one too many. */
int pv_uri_change(pv_request_t *r);

/* Restart hr's phases with uri and args from the server rewrite phase on,
 * as a new request for that URI which `internal` locations accept. The
 * restart runs from the worker's loop once the caller has returned (the
 * request is parked until then); the content handler that had the
 * request is cleaned up first. A cycle answers 500. For error_page,
 * try_files and index. */
void pv_internal_redirect(struct pv_hreq_s *hr, pv_str_t uri, pv_str_t args);
/* The same into the named location name ("@name") of the request's
 * server, from its rewrite phase on; an unknown name answers 500. */
void pv_named_location(struct pv_hreq_s *hr, pv_str_t name);

/* error_page: when the answering location has one for status and the
 * request may still use one (recursive_error_pages), send it (an internal
 * redirect, a named location, or a redirect to a URL) and return 1;
 * else 0 and the caller answers as it would have. */
int pv_error_page(struct pv_hreq_s *hr, int status);

/* Whether the answering location has an error_page for status (for
 * proxy_intercept_errors). */
int pv_error_page_for(const struct pv_hreq_s *hr, int status);

/* Keep field f of a response error_page replaces for the page's
 * response (an intercepted 401's WWW-Authenticate, as NGINX keeps it). */
void pv_error_page_keep(struct pv_hreq_s *hr, const pv_header_t *f);

/* Run the redirects waiting (from the HTTP module's reap hook). */
void pv_redirect_run(void);

#endif
