/* Set-Cookie rewriting of proxied responses: proxy_cookie_domain,
 * proxy_cookie_path and proxy_cookie_flags (ngx_http_proxy_module's
 * rewrite_cookie). */
#ifndef PV_PROXY_COOKIE_H
#define PV_PROXY_COOKIE_H

#include "../config/conf.h"
#include "../http/request.h"

/* One "key[=value]" of a Set-Cookie value; key.p NULL: left out when
 * joined; value.p NULL: written without '='. */
typedef struct {
    pv_str_t key, value;
} pv_cookie_attr_t;

/* The number of attributes v splits into (its ';'s plus one). */
int pv_cookie_count(pv_str_t v);
/* Split v at every ';' into a[0..pv_cookie_count(v)), spaces trimmed
 * around keys and values; a[0] is the cookie's name and value. */
void pv_cookie_split(pv_str_t v, pv_cookie_attr_t *a);
/* The attributes joined with "; " (as NGINX writes them back): the
 * length, and the text into out when out is not NULL. */
size_t pv_cookie_join(const pv_cookie_attr_t *a, int n, char *out);

/* Whether c has any line to apply. */
int pv_proxy_cookie_any(const pv_cookie_conf_t *c);
/* Rewrite one Set-Cookie value by c's lines: 1 with *out (in the request
 * arena) when it was rewritten, else 0. */
int pv_proxy_cookie_rewrite(pv_request_t *r, const pv_cookie_conf_t *c, pv_str_t v, pv_str_t *out);

#endif
