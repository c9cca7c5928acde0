/* User variables and regex captures, per request: what NGINX keeps in
 * r->variables for `set`, `map` and named captures, and in r->captures
 * for $1..$9. The config declares the variables (a slot each, counted in
 * pv_http_conf_t.nuvars); a request's values live in an array of that
 * size taken from its arena on first use. */
#ifndef PV_UVARS_H
#define PV_UVARS_H

#include "../config/conf.h"
#include "request.h"

/* The variable entries the compiler hands out for user variables (slot in
 * part->index) and for $1..$9 (the number in part->index). */
extern const pv_var_t pv_var_user;
extern const pv_var_t pv_var_capture;

/* Set slot's value for this request (the bytes must live as long as the
 * request). No-op for a slot out of range. */
void pv_uvar_set(pv_request_t *r, int slot, const char *p, size_t len);

/* Match rx against subject as ngx_http_regex_exec() does: on a match a
 * regex with groups replaces the request's captures, and its named groups
 * set their variables. Returns 1 on a match, 0 on none, -1 on an error
 * (match limits; logged). */
int pv_regex_exec(pv_request_t *r, const pv_regex_t *rx, pv_str_t subject);
/* Match rx against subject without touching captures or variables, as
 * ngx_regex_exec_array() does (gzip_disable). 1, 0, or -1 (logged). */
int pv_regex_test(const pv_regex_t *rx, pv_str_t subject);

/* Evaluate a compiled value into the request arena (NUL-terminated). */
pv_str_t pv_cv_eval_arena(const pv_cv_t *cv, pv_request_t *r);

/* Free the thread's match data (worker exit). */
void pv_uvars_thread_cleanup(void);

#endif
