/* Virtual-server and location selection with NGINX's rules
 * (ngx_http_find_virtual_server, ngx_http_core_find_location).
 * Lookups read the config snapshot as it is: no preparation step and no
 * allocation per request. Regexes run with one pcre2 match-data block per
 * thread, made on first use. */
#ifndef PV_ROUTER_H
#define PV_ROUTER_H

#include <sys/types.h>
#include "../config/conf.h"
#include "request.h"

/* Server for a validated, lowercased host ("" when the request had none):
 * exact name, then the longest leading wildcard, then the longest trailing
 * wildcard, then the first matching regex in declaration order, else the
 * group's default server. */
pv_server_t *pv_router_find_server(const pv_listen_group_t *g, pv_str_t host);
/* The same for a request: a regex name that chose the server sets its
 * captures ($1.., named ones as variables), as NGINX does. */
pv_server_t *pv_router_request_server(pv_request_t *r, const pv_listen_group_t *g, pv_str_t host);
/* The same without the default: NULL when no server_name matches. */
pv_server_t *pv_router_match_server(const pv_listen_group_t *g, pv_str_t host);

/* Location for a normalised URI, or NULL (404). An exact `=` match wins at
 * once; else the longest prefix; when no prefix equals the URI and a
 * location named URI + "/" has auto_redirect, that location is returned
 * with *redirect = 1 (301, regexes are not tried); a longest prefix with
 * `^~` stops the search; else regexes in declaration order, first match;
 * else the longest prefix. */
pv_location_t *pv_router_find_location(const pv_server_t *srv, pv_str_t uri, int *redirect);

/* A Location value for path (escaped when escape is set) and args (after
 * '?' when non-empty), in the request's arena, NUL-terminated. A path
 * starting with '/' is made absolute as NGINX's header filter does it,
 * under the location's absolute_redirect: "http[s]://", the first
 * server_name (server_name_in_redirect), else the Host, else the local
 * address, then ":port" unless port_in_redirect is off or the port is the
 * scheme's own. */
pv_str_t pv_router_location_url(const pv_request_t *r, pv_str_t path, int escape, pv_str_t args);

/* Free the calling thread's match-data block (worker exit). */
void pv_router_thread_cleanup(void);

#endif
