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
/* Turn the parsed spans of a head of head_end bytes into the request
 * model and decide the framing. Returns 0, or the status to answer with. */
int pv_reqhead_build(pv_hreq_t *hr, uint32_t head_end);

#endif
