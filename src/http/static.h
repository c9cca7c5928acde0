/* Static files: the content handler of every location without
 * proxy_pass (NGINX's static, index and autoindex modules) and the
 * try_files step before content. */
#ifndef PV_STATIC_H
#define PV_STATIC_H

#include <sys/stat.h>
#include <sys/types.h>

#include "../config/conf.h"
#include "../core/module.h"
#include "request.h"

struct pv_hreq_s;

/* The module: registers the try_files step and the content handler. */
extern pv_module_t pv_static_module;

/* Map r's URI to a file path under its location's root or alias (NGINX's
 * ngx_http_map_uri_to_path): into out (cap bytes, NUL-terminated), the
 * root's length in *root_len. -1 when it does not fit, or when the URI
 * could leave the root (see pv_path_join()). */
ssize_t pv_static_map(pv_request_t *r, const pv_location_t *loc, char *out, size_t cap, size_t *root_len);
/* stat() of path as the location's disable_symlinks lets it be opened
 * (the rewrite module's file tests): 0, or -1 with errno (ELOOP for a
 * link refused). Blocking. */
int pv_static_stat(pv_request_t *r, const char *path, struct stat *st);

/* The content type of r's URI by its extension under s's types. */
pv_str_t pv_static_type(const pv_static_conf_t *s, pv_str_t uri);

/* Answer with the open file f (its body: f->size bytes from f->base) and
 * the head h, whose fields are fld (nf of them, room for two more): with
 * validate, a 200 first meets the request's preconditions (304, 412)
 * against etag and mtime; with ranges, a 200 answers Range (206, 416);
 * then the head and the body through the file handler. A response cache
 * hit is served here as a file is. */
struct pv_hreq_s;
struct pv_file_s;
struct pv_resp_head_s;
void pv_static_answer(struct pv_hreq_s *hr, struct pv_file_s *f, struct pv_resp_head_s *h, pv_header_t *fld, int nf,
                      pv_str_t etag, time_t mtime, int ranges, int validate);

/* Answer 416: the error page with Content-Range: bytes * /SIZE (a file's
 * ranges, and a proxied response's under proxy_force_ranges). */
void pv_static_416(struct pv_hreq_s *hr, int64_t size);

struct pv_file_s;
/* Answer with the autoindex listing of the directory f->path, read into
 * f->ents (autoindex.c). */
void pv_autoindex(struct pv_hreq_s *hr, struct pv_file_s *f);

#endif
