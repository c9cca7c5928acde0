/* The lookup of a `map` (ngx_http_map_find()): the source evaluated,
 * exact keys, then hostname wildcards, then regexes in order, else the
 * default; the value evaluated for this request. */
#ifndef PV_MAP_H
#define PV_MAP_H

#include "../config/conf.h"
#include "request.h"

/* NGINX's MurmurHash2 (ngx_murmur_hash2), which split_clients uses. */
uint32_t pv_murmur_hash2(const unsigned char *p, size_t len);

/* The value of map m (or split_clients block) for request r, in the
 * request arena. */
pv_str_t pv_map_eval(pv_request_t *r, const pv_map_t *m);

/* The entry of m that src matches (src already lowercased; the regexes
 * see the original orig), or NULL: the default applies. */
const pv_map_entry_t *pv_map_find(pv_request_t *r, const pv_map_t *m, pv_str_t low, pv_str_t orig);

#endif
