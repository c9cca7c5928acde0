/* The response to a client request, as a content handler describes it,
 * and the one writer of HTTP/1.1 response heads. Local responses (error
 * pages, `return`) and proxied ones are described the same way and
 * written by pv_http_write_head(); HTTP/2 will turn the same description
 * into a HEADERS frame. */
#ifndef PV_HTTP_RESPONSE_H
#define PV_HTTP_RESPONSE_H

#include <stdint.h>
#include <sys/types.h>
#include "../core/common.h"
#include "request.h"

/* A response head, independent of the protocol it goes out in. */
typedef struct pv_resp_head_s {
    int status;                /* status code, 0 to 999 */
    pv_str_t reason;           /* reason phrase; p NULL: the standard one for status */
    pv_str_t content_type;     /* p NULL: no Content-Type field */
    int64_t content_length;    /* -1: no Content-Length field */
    pv_str_t location;         /* p NULL: no Location field */
    int frame;                 /* PV_FRAME_CHUNKED: the body goes out chunked */
    uint8_t upgrade;           /* the connection switches protocols (a 101) */
    const pv_header_t *fields; /* the other fields, sent as they are, in order */
    int nfields;               /* count of fields */
    pv_str_t extra;            /* field lines (each ending in CRLF) after them: the access phase's */
} pv_resp_head_t;

/* Write h as an HTTP/1.1 head into buf, in NGINX's order: status line,
 * Server, Date (an IMF-fixdate), Content-Type, Content-Length, Location,
 * Transfer-Encoding, Connection (upgrade, keep-alive or close), the
 * fields, the extra lines, the blank line. Returns the length, or -1 when
 * cap is too small. */
ssize_t pv_http_write_head(const pv_resp_head_t *h, pv_str_t date, int keepalive, char *buf, size_t cap);

#endif
