/* Request-target handling as NGINX does it: target forms (RFC 9112 §3.2),
 * path normalisation (ngx_http_parse_complex_uri with merge_slashes on),
 * URI escaping for proxy_pass (ngx_escape_uri, NGX_ESCAPE_URI) and Host
 * validation (ngx_http_validate_host). */
#ifndef PV_URI_H
#define PV_URI_H

#include <stddef.h>
#include "../core/common.h"
#include "../core/arena.h"

/* A parsed request-target. */
typedef struct pv_uri_target_s {
    pv_str_t request_uri; /* origin-form part as received ("/p?q"); for absolute-form
                             the part after the authority, "/" prefixed if the path was empty */
    pv_str_t uri;         /* normalised, percent-decoded path (arena, NUL-terminated) */
    pv_str_t args;        /* query without '?', up to '#' (points into request_uri) */
    int has_args;         /* a literal '?' ended the path */
    pv_str_t scheme;      /* absolute-form scheme as received; empty otherwise */
    pv_str_t host;        /* absolute-form authority ("Host:port") as received; empty otherwise */
    int absolute;         /* target was absolute-form */
    int asterisk;         /* target was "*" (OPTIONS only); uri is "*" */
} pv_uri_target_t;

/* Split and normalise a request-target. allow_asterisk: the method is
 * OPTIONS, so "*" is accepted. Returns 0, or -1 for a target that gets 400. */
int pv_uri_parse_target(pv_arena_t *a, pv_str_t target, int allow_asterisk, pv_uri_target_t *t);

/* Normalise an origin-form target in[0..len) (path[?query][#frag]; an empty
 * path is taken as "/"): decode %XX, merge "//", resolve "." and "..".
 * out must hold len + 1 bytes. *args receives the query (into in) and
 * *has_args whether '?' was present. Returns 0, or -1 for 400 (bad %-escape,
 * %00, ".." above the root, control characters). */
int pv_uri_normalize(const char *in, size_t len, char *out, size_t *outlen, pv_str_t *args,
                     int *has_args);

/* 1 if the path part of an origin-form target (before '?' or '#') holds a
 * '%': NGINX escapes the rewritten URI only then (r->quoted_uri). */
int pv_uri_path_quoted(pv_str_t request_uri);

/* Escape src as ngx_escape_uri(NGX_ESCAPE_URI) does: controls, SP, '"',
 * '#', '%', '<', '>', '?', '\\', '^', '`', '{', '|', '}', DEL and bytes
 * >= 0x80 become %XX. With dst NULL only the escaped length is returned. */
size_t pv_uri_escape(char *dst, const char *src, size_t len);

/* Validate and normalise a Host value (header or absolute-form authority):
 * strip the port and one trailing dot, lowercase; reject "..", '/', NUL,
 * controls, SP and an empty name. out must hold len bytes. Returns 0 or -1. */
int pv_uri_host_normalize(const char *in, size_t len, char *out, size_t *outlen);

/* pv_uri_host_normalize into *out; copies into the arena only when the
 * value needs lowercasing, else *out points into host. Returns 0 or -1. */
int pv_uri_validate_host(pv_arena_t *a, pv_str_t host, pv_str_t *out);

#endif
