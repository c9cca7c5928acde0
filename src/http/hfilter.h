/* The header filters every response head goes through before a protocol
 * writes it (NGINX's header filter chain, in its order): expires and
 * add_header (ngx_http_headers_module) and the Server token
 * (server_tokens); charset is charset.h's. They read the
 * configuration of the location that answers (else the server's). */
#ifndef PV_HFILTER_H
#define PV_HFILTER_H

#include "response.h"

struct pv_hreq_s;

/* The product token of the Server field and of error pages under the
 * request's server_tokens: "portvakt" or "portvakt/VERSION". */
const char *pv_hfilter_token(const struct pv_hreq_s *hr);

/* Apply the filters to h (a head about to be sent for hr): fields are
 * rebuilt in the request arena when something is added or replaced. */
void pv_hfilter_apply(struct pv_hreq_s *hr, pv_resp_head_t *h);
/* Whether add_header replaces the response field name (ETag,
 * Last-Modified) on a head of this status: 1 with *v its value then
 * (empty: the field is dropped). NGINX's headers filter runs before its
 * range filter, whose If-Range sees these values. */
int pv_hfilter_replaced(struct pv_hreq_s *hr, int status, const char *name, size_t len, pv_str_t *v);

/* Expires and Cache-Control for `expires` of kind (PV_EXPIRES_*) and t
 * seconds at time now, for a response last modified at lm (-1:
 * unknown). Writes the Expires date into date (40 bytes) and the
 * Cache-Control value into cc (32 bytes). Pure, for unit tests. */
void pv_hfilter_expires(int kind, int64_t t, int64_t now, int64_t lm, char *date, char *cc);

/* add_trailer: 1 when one applies to a response of status for hr (it
 * has `always`, or the status is one add_header applies to), so an
 * HTTP/1.1 response goes out chunked to carry it, as NGINX's. */
int pv_hfilter_trailers_expected(const struct pv_hreq_s *hr, int status);
/* At the end of the response: the add_trailer fields that apply to its
 * status, evaluated now (an empty value adds nothing), appended to
 * hr->resp_trailers as "name: value\n" lines. */
void pv_hfilter_trailers(struct pv_hreq_s *hr);

#endif
