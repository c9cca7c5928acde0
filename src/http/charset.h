/* The charset module (ngx_http_charset_module): a response's charset
 * named in its Content-Type and, through a charset_map, its body
 * recoded as it goes out (a body filter, bfilter.h). The decision is
 * NGINX's header filter: the destination charset (an upstream's
 * X-Accel-Charset, else `charset` for the charset_types, or with
 * override_charset for a response that names its own), the source (the
 * response's own, else source_charset), and a recoding only when a map
 * joins them and the response has no Content-Encoding. Recoding to or
 * from utf-8 drops Content-Length (and so byte ranges). A `$variable`
 * charset that is not found is NGINX's header filter error: nothing is
 * answered (the head call fails with PV_RESP_NOMEM, after a log line). */
#ifndef PV_HTTP_CHARSET_H
#define PV_HTTP_CHARSET_H

#include "bfilter.h"
#include "response.h"

struct pv_hreq_s;

/* The body filter module (bfilter.c's table). */
extern const pv_bfilter_module_t pv_charset_bfilter;

/* Make the decision for the response head h now (once per request; the
 * module's head() then keeps it): h's Content-Type and Content-Length
 * are rewritten. A handler that must know before its head goes (the
 * byte ranges of a file) calls it; 1 when the body's length changes
 * (no ranges then), else 0. */
int pv_charset_prepare(struct pv_hreq_s *hr, pv_resp_head_t *h);
/* 1 when h's Content-Type names utf-8 as its charset. */
int pv_charset_utf8(const pv_resp_head_t *h);

#endif
