/* fastcgi_pass: requests to FastCGI responders, as ngx_http_fastcgi_module. */
#ifndef PV_FASTCGI_H
#define PV_FASTCGI_H

#include "../config/conf.h"
#include "proxy.h"

/* $fastcgi_script_name and $fastcgi_path_info (fastcgi_split_path_info,
 * fastcgi_index) of r in its location. */
void pv_fastcgi_split(pv_request_t *r, pv_str_t *script, pv_str_t *path_info);

/* fastcgi_pass's content handler past the cache: the exchange starts
 * (the cache's resume, when it gives the request back). */
void pv_fastcgi_resume(struct pv_hreq_s *hr);

/* fcgi_cache.c. Before a responder is asked: 0 to go on, 1 when the
 * cache took the request (fastcgi_cache). */
int pv_fcgi_cache_start(struct pv_hreq_s *hr);
/* Whether the client's field, as the HTTP_* param name, stays out of
 * the params because the cache answers it (NGINX's cache params). */
int pv_fcgi_cache_drops(const pv_request_t *r, pv_str_t name);
/* The revalidated entry's validators as name-value pairs into nv (room
 * for two pairs): how many. */
int pv_fcgi_cache_validators(const pv_request_t *r, pv_str_t *nv);

/* Whether a response field stays out of the client's head (fcgi_head.c). */
int pv_fcgi_hidden(const pv_fastcgi_conf_t *fc, pv_str_t name);
/* The CGI head's fields as the client's head h, the fields that go on
 * into out (room for all): Content-Type, Content-Length (into *clen;
 * -1 when invalid), Location (a local one made absolute), the rest
 * unless hidden or hop-by-hop; X-Accel-Charset (unless
 * fastcgi_ignore_headers names it) is the charset to recode into. */
struct pv_fcgi_rx_s;
void pv_fcgi_head_fields(pv_request_t *r, const pv_fastcgi_conf_t *fc, const struct pv_fcgi_rx_s *rx,
                         struct pv_resp_head_s *h, pv_header_t *out, int64_t *clen);

/* The module: the content handler of fastcgi_pass locations. */
extern pv_module_t pv_fastcgi_module;

#endif
