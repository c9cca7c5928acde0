/* Responses portvakt makes itself: NGINX's special response pages
 * (ngx_http_special_response.c) with "portvakt" in the footer, and the
 * reason phrases of ngx_http_header_filter_module.c. */
#ifndef PV_ERRPAGE_H
#define PV_ERRPAGE_H

#include <sys/types.h>
#include "response.h"

/* Reason phrase for a status line: NGINX's wording where NGINX has one
 * ("302 Moved Temporarily", "405 Not Allowed", "504 Gateway Time-out"),
 * else the RFC 9110 phrase; "" for an unknown code. */
const char *pv_http_reason(int status);

/* NGINX's internal codes for TLS errors: each is sent as 400 with its own
 * page, and the connection is closed after it. */
#define PV_HTTPS_CERT_ERROR 495 /* the client certificate did not verify */
#define PV_HTTPS_NO_CERT 496    /* ssl_verify_client on and no certificate */
#define PV_HTTP_TO_HTTPS 497    /* plain HTTP on a TLS address */
#define PV_HTTP_HEADER_TOO_LARGE 494 /* more request fields than max_headers */
/* The status sent for status (400 for the codes above). */
int pv_errpage_status(int status);

/* 0 for the statuses after which NGINX always closes the connection
 * (400, 413, 414, 431, 500, 501), else 1. */
int pv_errpage_keepalive_ok(int status);

/* The HTML page for status into buf, token in its footer (NULL:
 * "portvakt"): its length, 0 for a status without a page, -1 if cap is
 * too small. */
ssize_t pv_errpage_page(int status, const char *token, char *buf, size_t cap);
/* Describe the head of the page response: Content-Type text/html when
 * there is a page, Content-Length page_len, Location when non-NULL. */
void pv_errpage_head(int status, const char *location, ssize_t page_len, pv_resp_head_t *h);
/* Write a complete response (head and, unless head_only, the HTML body)
 * for status: status line, Server, Date (IMF-fixdate, NUL-terminated),
 * Content-Type: text/html, Content-Length, Location when location is
 * non-NULL (redirects), Connection keep-alive/close. A status without a
 * page gets an empty body. Returns the length or -1 if cap is too small. */
ssize_t pv_errpage_build(int status, int keepalive, const char *date, const char *location, int head_only,
                         char *buf, size_t cap);

#endif
