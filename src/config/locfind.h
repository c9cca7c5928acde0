/* Location lookup with NGINX's rules, shared by the router (each
 * request) and the residency check (the URIs of internal redirects). */
#ifndef PV_LOCFIND_H
#define PV_LOCFIND_H

#include "conf.h"

/* 1 if the compiled regex re (pcre2_code*) matches subject; errors
 * (match limits) count as no match. */
int pv_conf_re_match(void *re, pv_str_t subject);
/* Location for a normalised URI, or NULL (404). An exact `=` match wins at
 * once; else the longest prefix; when no prefix equals the URI and a
 * location named URI + "/" has auto_redirect, that location is returned
 * with *redirect = 1 (301, regexes are not tried); a longest prefix with
 * `^~` stops the search; else regexes in declaration order, first match;
 * else the longest prefix. */
pv_location_t *pv_conf_find_location(const pv_server_t *srv, pv_str_t uri, int *redirect);
/* Free the calling thread's match data. */
void pv_conf_locfind_thread_cleanup(void);

#endif
