/* Header-field helpers shared by the server side and the proxy: syntax
 * checks (RFC 9110 §5), Content-Length parsing, Connection-header tokens,
 * hop-by-hop names and the IMF-fixdate formatter. pv_request_header() is
 * declared in request.h and defined in headers.c. */
#ifndef PV_HEADERS_H
#define PV_HEADERS_H

#include <stdint.h>
#include <time.h>
#include "../core/common.h"
#include "request.h"

/* Length of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
#define PV_HTTP_DATE_LEN 29

/* 1 if name is a non-empty RFC 9110 token. */
int pv_header_name_valid(pv_str_t name);
/* 1 if value holds only field-vchar, SP, HTAB or obs-text (no CR, LF, NUL). */
int pv_header_value_valid(pv_str_t value);
/* Strict Content-Length: one or more digits, nothing else, no overflow.
 * Returns 0 and sets *out, or -1. */
int pv_http_parse_content_length(pv_str_t v, int64_t *out);
/* Next comma-separated token of a Connection-style list: skips empty
 * elements and OWS. Returns 1 and sets *tok, or 0 at the end; *rest moves on. */
int pv_conn_next_token(pv_str_t *rest, pv_str_t *tok);
/* 1 if the list value holds tok (case-insensitive), e.g. "close". */
int pv_conn_has_token(pv_str_t value, const char *tok);
/* 1 if name is listed in any Connection field among hs[0..n). */
int pv_conn_lists_name(const pv_header_t *hs, int n, pv_str_t name);
/* 1 if name is a hop-by-hop field of RFC 9110 §7.6.1 (Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade). */
int pv_header_is_hop_by_hop(pv_str_t name);
/* Write t as IMF-fixdate into out (NUL-terminated); returns 29. */
size_t pv_http_date(time_t t, char out[30]);
/* Every line of a head of len bytes ends in CRLF: no bare LF, no bare CR,
 * no obs-fold (RFC 9112 2.2, 5.2). llhttp outside strict mode tolerates
 * some forms of each, and a CR that ends the head early hides a second
 * message. */
int pv_http_head_line_endings_ok(const char *p, size_t len);
/* v without the spaces and tabs around it (OWS). */
pv_str_t pv_http_trim_ows(pv_str_t v);

#endif
