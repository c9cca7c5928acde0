/* proxy_store: a proxied 200 response's body kept as a file, as NGINX's
 * ngx_http_upstream_store() keeps it. The body is written as it passes
 * the pipe's seam (pipe.c's deliver(), before proxy_force_ranges cuts
 * it) into a temp file under proxy_temp_path; once the upstream's body
 * is complete (its length, its last chunk, or its close when it has no
 * length) and as long as Content-Length was, the file gets
 * proxy_store_access and the mtime of Last-Modified and is renamed to
 * the root-based path of the URI, or the path proxy_store's string
 * names, its missing directories made. Anything else (another status,
 * buffering off, a cut or failed body, the request gone) removes it. */
#ifndef PV_PROXY_PSTORE_H
#define PV_PROXY_PSTORE_H

#include "../core/common.h"

struct pv_proxy_s;
struct pv_pstore_s;

/* The final head is sent: store this response when the location says so,
 * the upstream answered 200 and the response is buffered. */
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
