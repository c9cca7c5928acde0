/* proxy_store and fastcgi_store: an upstream's 200 response's body kept as a file, as NGINX's
 * ngx_http_upstream_store() keeps it. The body is written as it passes
 * the pipe's seam (pipe.c's deliver(), before *_force_ranges cuts
 * it) into a temp file under the module's *_temp_path; once the upstream's body
 * is complete (its length, its last chunk, or its close when it has no
 * length) and as long as Content-Length was, the file gets
 * *_store_access and the mtime of Last-Modified and is renamed to
 * the root-based path of the URI, or the path proxy_store's string
 * names, its missing directories made. Anything else (another status,
 * buffering off, a cut or failed body, the request gone) removes it. */
#ifndef PV_PROXY_PSTORE_H
#define PV_PROXY_PSTORE_H

#include "../core/common.h"

struct pv_proxy_s;
struct pv_pstore_s;
struct pv_store_conf_s;
struct pv_temp_path_s;
struct pv_header_s;

/* The final head is sent: store this response when sc says so, the
 * upstream answered 200 and the response is buffered; the file is made
 * under temp_path, the head's fields give Last-Modified, clen is its
 * Content-Length (-1: none). */
void pv_pstore_begin(struct pv_proxy_s *px, const struct pv_store_conf_s *sc, const struct pv_temp_path_s *temp_path,
                     const struct pv_header_s *fields, int nfields, int64_t clen);
/* The same for proxy_pass: proxy_store, proxy_temp_path, the head in px->rp. */
void pv_pstore_start(struct pv_proxy_s *px);
/* n decoded body spans, in order. 0, or -1 when the file could not be
 * written (logged: the response is then cut, as NGINX's is). */
int pv_pstore_body(struct pv_proxy_s *px, const pv_str_t *spans, int n);
/* The upstream's body is complete: store the file (when its length is
 * the one announced). The state is gone afterwards. */
void pv_pstore_done(struct pv_proxy_s *px);
/* The request ends first: the temp file is removed. */
void pv_pstore_drop(struct pv_pstore_s *s);

#endif
