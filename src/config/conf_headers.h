/* The response-head and proxied-field settings of a location
 * (add_header, expires, server_tokens, proxy_hide_header and its kin,
 * proxy_redirect, the cookie rewrites). Included by conf.h, which
 * defines what they refer to. */
#ifndef PV_CONF_HEADERS_H
#define PV_CONF_HEADERS_H

/* `add_header NAME VALUE [always]` (ngx_http_headers_module) */
typedef struct pv_add_header_s {
    pv_str_t name;              /* as written */
    pv_cv_t value;              /* an empty value adds nothing */
    int always;                 /* added whatever the status */
    int replace;                /* Last-Modified, ETag: replaces the response's own (empty: removes it) */
} pv_add_header_t;

/* `proxy_redirect`: one replacement of a Location / Refresh prefix. */
typedef struct pv_redirect_s {
    pv_cv_t pattern;            /* text form: the prefix (may use variables) */
    pv_regex_t *re;             /* regex form (~, ~*): matched against the whole value */
    pv_cv_t replacement;
} pv_redirect_t;

/* `proxy_cookie_flags COOKIE FLAG...`: the flags (each may use
 * variables) of the Set-Cookie fields whose name is COOKIE (any case) or
 * matches the regex (~, always caseless). */
typedef struct pv_cookie_flags_s {
    pv_cv_t name;
    pv_regex_t *re;
    pv_cv_t *flags;
    int nflags;
} pv_cookie_flags_t;

/* The lists of proxy_cookie_domain, _path and _flags: state 0 inherits,
 * PV_COOKIE_OFF after `off`, PV_COOKIE_LIST with lines. */
enum { PV_COOKIE_OFF = 1, PV_COOKIE_LIST };
typedef struct pv_cookie_conf_s {
    pv_redirect_t *domains;     /* pattern: the domain without a leading '.' (any case) */
    int ndomains, domain_state;
    pv_redirect_t *paths;       /* pattern: a prefix of the path (case-sensitive) */
    int npaths, path_state;
    pv_cookie_flags_t *flags;
    int nflags, flags_state;
} pv_cookie_conf_t;

/* expires */
enum { PV_EXPIRES_OFF = 0, PV_EXPIRES_EPOCH, PV_EXPIRES_MAX, PV_EXPIRES_ACCESS, PV_EXPIRES_MODIFIED,
       PV_EXPIRES_DAILY };
/* server_tokens */
enum { PV_TOKENS_OFF = 0, PV_TOKENS_ON, PV_TOKENS_BUILD };

/* The header filters' settings and the proxy's response-field lists.
 * Lists are NULL / 0 to inherit, as NGINX's. */
typedef struct pv_hdr_conf_s {
    pv_add_header_t *add;       /* add_header lines; inherited only when this level has none */
    int nadd;
    pv_add_header_t *trailers;  /* add_trailer lines; inherited only when this level has none */
    int ntrailers;
    int expires;                /* PV_EXPIRES_*; PV_UNSET inherits; default off */
    int64_t expires_time;       /* seconds (negative: in the past); daily: seconds since midnight */
    pv_cv_t *expires_value;     /* expires with variables: parsed per request (expires is then
                                   ACCESS, or MODIFIED with `modified`) */
    int server_tokens;          /* PV_TOKENS_*; default on */
    pv_charset_conf_t cs;       /* charset, source_charset, override_charset, charset_types */
    pv_str_t *hide;             /* proxy_hide_header names */
    int nhide;
    pv_str_t *pass;             /* proxy_pass_header names */
    int npass;
    int ignore;                 /* proxy_ignore_headers PV_IGN_* bits; PV_UNSET inherits */
    pv_redirect_t *redirects;   /* proxy_redirect lines */
    int nredirects;
    int redirect;               /* PV_UNSET; 0 after `proxy_redirect off`; 1: the list, or
                                   the default of the location's proxy_pass when the list is empty */
    int absolute_redirect;      /* a Location starting with '/' made absolute; default on */
    int port_in_redirect;       /* ... with the port unless the scheme's own; default on */
    int server_name_in_redirect; /* ... with the first server_name, not Host; default off */
    pv_cookie_conf_t cookie;    /* proxy_cookie_domain, proxy_cookie_path, proxy_cookie_flags */
} pv_hdr_conf_t;

#endif
