/* The variables and the evaluation of compiled values. The types and the
 * compiler are the config language's (config/cv.h); this side holds the
 * variables themselves, as NGINX's ngx_http_variables.c does, and reads
 * the request to evaluate them straight into an output buffer without
 * allocation.
 *
 * Variables are tables of getters, as NGINX's ngx_http_variable_t arrays
 * are: each entry is a name (or a prefix such as "http_"), flags and a
 * getter. Names are looked up once, when a value is compiled; a compiled
 * part points at its entry, so evaluating it is one indirect call. */
#ifndef PV_VARS_H
#define PV_VARS_H

#include <stddef.h>
#include <stdint.h>

#include "../config/cv.h"
#include "../core/common.h"

struct pv_request_s;
struct pv_header_s;

/* The tables, each ended by an entry with no name: what the client sent
 * (var_request.c), and what the gateway did with it (var_response.c). */
extern const pv_var_t pv_vars_request[];
/* $request_filename, $document_root, $realpath_root (static.c) */
extern const pv_var_t pv_vars_static[];
extern const pv_var_t pv_vars_fastcgi[];
extern const pv_var_t pv_vars_response[];
/* Upstream timings and the numeric durations (timing.c). */
extern const pv_var_t pv_vars_timing[];
/* $trace_id, $span_id, $parent_span_id, $traceparent, $request_id (trace.c). */
extern const pv_var_t pv_vars_trace[];
/* $date_local and $date_gmt (ssi_cmd.c). */
extern const pv_var_t pv_vars_ssi[];
/* $https and $ssl_* (var_ssl.c). */
extern const pv_var_t pv_vars_ssl[];
/* The variables auth_request_set declares; part->text holds the name. */
extern const pv_var_t pv_var_declared;

/* Register every table above with the config compiler (pv_cv_vars()).
 * Whatever loads or compiles config calls it first; calling it again is
 * harmless. */
void pv_http_vars_init(void);

/* Evaluate into out[0..cap). Returns the full length the value needs
 * (like snprintf): if it is > cap the output was truncated and the
 * caller should retry with a larger buffer. */
size_t pv_cv_eval(const pv_cv_t *cv, struct pv_request_s *r, int escape, char *out, size_t cap);

/* Whether a condition value is true: neither empty nor "0" (NGINX's
 * rule for access_log if=, proxy_cache_bypass, proxy_no_cache). */
int pv_cv_true(const pv_cv_t *cv, struct pv_request_s *r);

/* Value of a single variable (no escaping). Returns a slice that is valid
 * until the request ends; scratch (at least 64 bytes) may be used for
 * values that have to be formatted. Not found is {NULL, 0}; found but
 * empty has a non-NULL pointer. */
pv_str_t pv_var_get(struct pv_request_s *r, const pv_cv_part_t *part, char *scratch, size_t scratchlen);

/* ---- for getters ---------------------------------------------------- */

/* Append a piece of a value, escaped per o. */
void pv_var_put(pv_var_out_t *o, const char *p, size_t n);

/* Header-name match for $http_ and its kin: case-insensitive, and '-' and
 * '_' are the same character (NGINX maps both to '_' before comparing). */
int pv_var_hdr_eq(pv_str_t h, pv_str_t want);

/* The first of hs[0..n) named name, or NULL; *count (if given) gets how
 * many there are. */
const struct pv_header_s *pv_var_hdr_first(const struct pv_header_s *hs, int n, pv_str_t name,
                                           int *count);

/* A header's value as a slice, never with a NULL pointer (found). */
pv_str_t pv_var_hdr_value(const struct pv_header_s *h);

/* $cookie_NAME: NAME's value in the Cookie fields of hs[0..n), as NGINX
 * 1.22 reads them (pairs split at ';' or ',', the name matched without
 * case, spaces around '=' skipped, the value up to ';'). */
int pv_var_cookie(const struct pv_header_s *hs, int n, pv_str_t name, pv_str_t *v);

/* $upstream_cookie_NAME: the value of the first Set-Cookie field of
 * hs[0..n) whose cookie is NAME (its first pair only, as NGINX). */
int pv_var_set_cookie(const struct pv_header_s *hs, int n, pv_str_t name, pv_str_t *v);

/* Writes every value of hs[0..n) named name, joined by sep and a space
 * (NGINX 1.22's joined header lists); returns PV_VAL_WRITTEN. */
int pv_var_hdr_join(const struct pv_header_s *hs, int n, pv_str_t name, char sep, pv_var_out_t *o);

#endif
