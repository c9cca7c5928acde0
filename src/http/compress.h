/* Response compression (gzip with zlib, Brotli with libbrotli): a body
 * filter between a content handler and the request's protocol. The
 * response calls (response.h) pass a head through pv_compress_head(),
 * which decides with NGINX's rules whether the body is encoded and
 * rewrites the head; from then on the body calls go through the filter,
 * which streams the body through the encoder into at most gzip_buffers
 * output buffers and hands them to the protocol. */
#ifndef PV_HTTP_COMPRESS_H
#define PV_HTTP_COMPRESS_H

#include <stdint.h>
#include "../core/common.h"
#include "response.h"

struct pv_hreq_s;

/* content codings a response may be given; GUNZIP: a gzip body decoded */
enum { PV_CODING_NONE = 0, PV_CODING_GZIP, PV_CODING_BR, PV_CODING_GUNZIP };

/* The q-value (0 to 1000) that an Accept-Encoding value gives the coding
 * named (lowercase), read as NGINX reads "gzip": the coding must be named
 * (a "*" does not count), and a malformed parameter or q-value counts as
 * 0. -1 when the coding is not named. */
int pv_accept_coding_q(pv_str_t value, const char *coding, size_t len);

/* Whether a User-Agent is MSIE 4 to 6 as NGINX tells (gzip_disable msie6). */
int pv_ua_msie6(pv_str_t ua);

/* NGINX's ngx_http_gzip_ok() for a request: it takes gzip (a q-value
 * above 0), at gzip_http_version, gzip_proxied allowing a request with
 * Via, gzip_disable not matching its User-Agent. */
int pv_gzip_ok(const struct pv_hreq_s *hr);

/* Decide the coding of the response described by h, as NGINX's gzip
 * header filter does (and ngx_brotli's for Brotli, the client's q-values
 * choosing between them): status 200, 403 or 404, no Content-Encoding,
 * no Cache-Control: no-transform, at least *_min_length when the length
 * is known, a type in *_types, then the client's
 * Accept-Encoding, gzip_http_version, gzip_proxied and gzip_disable.
 * When the body is encoded, h is rewritten (no Content-Length, chunked or
 * close framing, no Accept-Ranges, a weak ETag, Content-Encoding) and the
 * filter is set up (not for HEAD: its head alone); with gzip_vary, "Vary: Accept-Encoding" is added
 * whenever the response could have been encoded. PV_OK, or
 * PV_RESP_NOMEM. With gunzip, a response in Content-Encoding gzip is
 * decoded for a client that does not take gzip (NGINX's gunzip filter). */
int pv_compress_head(struct pv_hreq_s *hr, pv_resp_head_t *h);
/* The same for a subrequest's head: its body becomes part of the
 * parent's, compressed there, so only gunzip applies, whatever the
 * client takes (NGINX's gzip_ok declines for a subrequest). */
int pv_compress_sub_head(struct pv_hreq_s *hr, pv_resp_head_t *h);

/* The same decision for a local response (an error page, `return`
 * text) whose whole body is at hand: when it is encoded, body is
 * replaced by its encoded form (in the request arena) and h rewritten,
 * with chunked framing as NGINX sends it. PV_OK, or PV_RESP_NOMEM. */
int pv_compress_local(struct pv_hreq_s *hr, pv_resp_head_t *h, pv_str_t *body);

/* Set up the encoder of coding for hr (zc: the location's settings;
 * length: the body's, -1 when unknown, to size the encoder's window).
 * PV_OK, or PV_ERR when memory ran out. */
struct pv_zip_conf_s;
int pv_compress_start(struct pv_hreq_s *hr, int coding, const struct pv_zip_conf_s *zc, int64_t length);

/* The body calls while hr->zf is set (response.h documents each). */
int pv_compress_room(const struct pv_hreq_s *hr);
void pv_compress_send_body(struct pv_hreq_s *hr, const pv_str_t *spans, int n);
int pv_compress_flush(struct pv_hreq_s *hr);
/* Encoded bytes not yet handed to the protocol. */
size_t pv_compress_pending(const struct pv_hreq_s *hr);
void pv_compress_finish(struct pv_hreq_s *hr);
/* Release the filter's encoder and buffers (the request is freed). */
void pv_compress_free(struct pv_hreq_s *hr);
/* Free the encoder state a worker thread keeps for the next response. */
void pv_compress_thread_cleanup(void);

#endif
