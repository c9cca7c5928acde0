/* The configuration snapshot: what the parser builds and the runtime reads.
 * A snapshot is immutable once loaded and lives in its own arena; workers
 * hold a reference while requests use it.
 *
 * Inheritance follows NGINX: settings at http level are defaults for every
 * server, settings at server level are defaults for its locations. The
 * parser leaves unset fields at PV_UNSET and pv_conf_load() merges them
 * downwards, so the runtime only ever reads a location's pv_loc_conf_t. */
#ifndef PV_CONF_H
#define PV_CONF_H

#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdatomic.h>

#include "../core/common.h"
#include "../core/arena.h"
#include "../core/net.h"
#include "../core/resolver.h"
#include "../core/geo.h"
#include "cv.h"
#include "conf_charset.h"
#include "../policy/redis.h"
#include "../policy/zones.h"

#define PV_UNSET (-1)

/* The config file used without -c. */
#ifndef PV_DEFAULT_CONF
#define PV_DEFAULT_CONF "/etc/portvakt/portvakt.conf"
#endif

typedef struct pv_conf_s pv_conf_t;
typedef struct pv_upstream_conf_s pv_upstream_conf_t;
typedef struct pv_log_format_s pv_log_format_t;

/* Where a directive was written, for messages ("in FILE:LINE"). */
typedef struct pv_conf_src_s {
    const char *file; /* path as given (arena string) */
    int line;         /* 1-based */
} pv_conf_src_t;

/* One `proxy_set_header NAME VALUE`. An empty value removes the header. */
typedef struct pv_set_header_s {
    pv_str_t name;  /* header name as written (arena) */
    pv_cv_t value;  /* compiled value; may reference variables */
} pv_set_header_t;

/* `access_log PATH [FORMAT [buffer=SIZE] [gzip[=LEVEL]] [flush=TIME]
 * [if=CONDITION]]` or `access_log off`. */
typedef struct pv_access_log_s {
    int off;                   /* `access_log off` */
    const char *path;          /* absolute path, or "/dev/stdout" */
    pv_log_format_t *format;   /* resolved format ("combined" by default) */
    struct pv_logsink_s *sink; /* opened by pv_accesslog_open(); NULL before */
    int gzip;                  /* gzip[=LEVEL]: the file is written in gzip members; 0: plain */
    size_t buffer;             /* buffer=SIZE (64k with gzip): lines held until this much; 0: none */
    int64_t flush;             /* flush=TIME, ms: held lines written at the latest after it; 0: none */
    pv_cv_t *cond;             /* if=CONDITION: not logged when empty or "0"; NULL: always */
    pv_cv_t *path_cv;          /* a path with variables: evaluated per request, path is its text */
    pv_conf_src_t src;         /* the directive */
} pv_access_log_t;

/* `log_format NAME [escape=default|json|none] STRING...` */
struct pv_log_format_s {
    const char *name; /* format name */
    int escape;       /* PV_ESCAPE_* (vars.h) */
    pv_cv_t value;    /* the concatenated format strings, compiled */
    int builtin;      /* a ready-made format ("json", "otel") a log_format may replace */
};

/* How an https proxy_pass talks TLS to its upstream, built from the
 * location's proxy_ssl_* settings once they are merged. Locations with
 * the same settings share one (and so one SSL_CTX): pooled connections
 * are reused only by a location with the same pv_upstream_tls_t. */
typedef struct pv_upstream_tls_s {
    void *ctx;             /* the client SSL_CTX (owned by the snapshot) */
    const char *name;      /* proxy_ssl_name, else the proxy_pass host; port stripped */
    const pv_cv_t *name_cv; /* proxy_ssl_name with variables: evaluated per request (name is then "") */
    int server_name;       /* proxy_ssl_server_name: send name as SNI (never an IP literal) */
    int verify;            /* proxy_ssl_verify: check the chain and name */
    int session_reuse;     /* proxy_ssl_session_reuse */
    const pv_cv_t *cert_cv; /* proxy_ssl_certificate with variables, else NULL */
    const pv_cv_t *key_cv;  /* proxy_ssl_certificate_key with variables */
    const char *cert_path, *key_path; /* the one of them without variables */
    const char *prefix;    /* what a relative file name they give is under */
    const char *passwords; /* proxy_ssl_password_file's lines for them, or NULL */
    size_t passwords_len;
} pv_upstream_tls_t;
/* A regex of the config (location, rewrite, if, map) with what a match
 * binds: the count of groups, and the user variable slot of each named
 * group (NGINX's named captures become variables). */
typedef struct pv_regex_s {
    void *code;         /* pcre2_code* */
    const char *src;    /* the pattern as written */
    int ncaptures;      /* capture groups */
    int nnames;         /* named groups */
    int *name_group;    /* group number of each */
    int *name_slot;     /* user variable slot of each */
} pv_regex_t;

/* The rewrite module's script (ngx_http_rewrite_module): the directives
 * of a server or location compiled in order, run in the server rewrite
 * and rewrite phases. */
enum { PV_RW_SET = 0, PV_RW_IF, PV_RW_REWRITE, PV_RW_RETURN, PV_RW_BREAK };
/* `if` conditions */
enum { PV_IF_VAR = 0, PV_IF_EQ, PV_IF_NE, PV_IF_RE, PV_IF_FILE };
/* `rewrite` flags */
enum { PV_RWF_NONE = 0, PV_RWF_LAST, PV_RWF_BREAK, PV_RWF_REDIRECT, PV_RWF_PERMANENT };

typedef struct pv_rw_op_s {
    int op;                     /* PV_RW_* */
    pv_conf_src_t src;
    int slot;                   /* set: user variable slot; -1 for $args, PV_RW_SLOT_LIMIT_RATE */
    pv_cv_t value;              /* set: value; if: the variable; rewrite:
                                   replacement; return: text or URL */
    pv_cv_t arg;                /* if =, !=: right side; file tests: the path */
    pv_regex_t *re;             /* if ~ and rewrite */
    int cond;                   /* if: PV_IF_* */
    int negate;                 /* if: !=, !~, !-f... */
    char file_op;               /* if: 'f', 'd', 'e' or 'x' */
    int next;                   /* if: index of the op after its block */
    struct pv_location_s *ifloc; /* if in a location: the block's configuration */
    int code;                   /* return: status; rewrite: 301/302 for a redirect */
    int has_text;               /* return: text or URL given */
    int flag;                   /* rewrite: PV_RWF_* */
    int add_args;               /* rewrite: no trailing '?': keep the request's args */
    int has_args;               /* rewrite: the replacement has its own '?' */
} pv_rw_op_t;

typedef struct pv_script_s {
    pv_rw_op_t *ops;
    int nops;
} pv_script_t;

/* `map SOURCE $VAR { ... }` (ngx_http_map_module), and
 * `split_clients SOURCE $VAR { ... }` (ngx_http_split_clients_module) */
typedef struct pv_map_entry_s {
    pv_str_t key;               /* lowercased; for wildcards as server_name keeps them */
    int kind;                   /* PV_SN_EXACT, PV_SN_WILD_HEAD, PV_SN_WILD_TAIL, PV_SN_REGEX */
    pv_regex_t *re;             /* PV_SN_REGEX */
    pv_cv_t value;
    uint32_t bound;             /* split_clients: the part holds hashes below this (0: `*`, the rest) */
} pv_map_entry_t;

typedef struct pv_map_s {
    pv_cv_t source;             /* evaluated per request */
    int slot;                   /* the variable's user slot */
    int hostnames;              /* `hostnames`: wildcard keys, a trailing dot dropped */
    int is_volatile;            /* `volatile`: not cached per request */
    pv_map_entry_t *entries;    /* exact and wildcard keys, then regexes, in order */
    int nentries;
    pv_cv_t *default_value;     /* NULL: the empty string */
    int split;                  /* a split_clients block: entries are its parts, in order */
    struct pv_geo_conf_s *geo;  /* a geo block: the lookup is by address */
    pv_conf_src_t src;
} pv_map_t;

/* `proxy_pass URL`: where and how a location forwards. */
typedef struct pv_proxy_pass_s {
    pv_upstream_conf_t *upstream; /* named upstream, or an implicit one for host:port */
    int ssl;                      /* https:// */
    const char *host;             /* the URL's host, without port or brackets */
    pv_upstream_tls_t *tls;       /* for https: the location's TLS client settings */
    pv_str_t proxy_host;          /* value of $proxy_host: "name" or "host:port" (":80" omitted) */
    pv_str_t uri;                 /* URI part after host; valid when has_uri */
    pv_str_t url;                 /* the URL as written (proxy_redirect default) */
    int has_uri;                  /* 1 when the URL had a URI part (even just "/") */
    pv_cv_t *cv;                  /* a URL with variables (upstream NULL): evaluated per request */
    pv_conf_src_t src;            /* the proxy_pass line */
    int grpc;                     /* made by grpc_pass: the grpc module answers, over HTTP/2 */
    int fastcgi;                  /* made by fastcgi_pass: the fastcgi module answers */
} pv_proxy_pass_t;

/* PV_NEXT_UPSTREAM_F_*: the `proxy_next_upstream` conditions. */
#define PV_NEXT_F_ERROR 0x01
#define PV_NEXT_F_TIMEOUT 0x02
#define PV_NEXT_F_INVALID_HEADER 0x04
#define PV_NEXT_F_HTTP_500 0x08
#define PV_NEXT_F_HTTP_502 0x10
#define PV_NEXT_F_HTTP_503 0x20
#define PV_NEXT_F_HTTP_504 0x40
#define PV_NEXT_F_HTTP_403 0x80
#define PV_NEXT_F_HTTP_404 0x100
#define PV_NEXT_F_HTTP_429 0x200
#define PV_NEXT_F_NON_IDEMPOTENT 0x400
#define PV_NEXT_F_OFF 0x800

/* `limit_req_zone KEY zone=NAME:SIZE rate=R [redis=... [redis_fail=open|closed]]`
 * (see policy/redis.h for the redis parameters) or
 * `limit_conn_zone KEY zone=NAME:SIZE`. */
typedef struct pv_zone_s {
    const char *name;          /* zone name */
    int kind;                  /* PV_ZONE_REQ or PV_ZONE_CONN */
    pv_cv_t key;               /* the key, evaluated per request */
    int key_late;              /* key uses a variable known only after authentication
                                  ($consumer, $jwt_*: PV_VAR_F_LATE): checked then */
    int64_t size;              /* bytes */
    uint64_t rate;             /* PV_ZONE_REQ: milli-requests per second */
    pv_redis_target_t *redis;  /* cluster-wide zone: the Redis server; NULL for a local zone */
    int redis_fail_closed;     /* redis_fail=closed: refuse while Redis is down (default open) */
    int index;                 /* position in pv_http_conf_t.zones (per-worker Redis client slot) */
    void *impl;                /* pv_limit_req_zone_t / pv_limit_conn_zone_t, shared across reloads */
    pv_conf_src_t src;
} pv_zone_t;

/* `auth_request_set $var VALUE` */
typedef struct pv_auth_set_s {
    pv_str_t var;              /* variable name without '$' */
    pv_cv_t value;             /* evaluated when the subrequest's response head arrives */
    int slot;                  /* 0: a variable of its own; -1: $args, PV_RW_SLOT_LIMIT_RATE: the
                                  built-ins NGINX lets it set (their set handlers) */
} pv_auth_set_t;

/* satisfy */
enum { PV_SATISFY_ALL = 0, PV_SATISFY_ANY = 1 };

/* `allow` / `deny` (ngx_http_access_module): one rule, in order. */
enum { PV_RULE_ALL = 0, PV_RULE_V4, PV_RULE_V6, PV_RULE_UNIX };
typedef struct pv_access_rule_s {
    uint8_t deny;              /* deny, else allow */
    uint8_t kind;              /* PV_RULE_* */
    uint8_t addr[16];          /* network, already masked (v4: the first 4 bytes) */
    uint8_t mask[16];
} pv_access_rule_t;

/* The access and preaccess phase settings (authentication, rate limits).
 * NULL / 0 count means "inherit", as for the other lists. */
typedef struct pv_policy_conf_s {
    struct pv_limit_req_s *lreq;   /* limit_req lines (runtime form) */
    pv_zone_t **lreq_zone;         /* their zones */
    int nlreq;
    int limit_req_status;          /* default 503 */
    int limit_req_log_level;       /* default error */
    int limit_req_dry_run;         /* default off */
    int limit_req_headers;         /* RateLimit-Policy / RateLimit on responses; default off */
    struct pv_limit_conn_s *lconn; /* limit_conn lines */
    pv_zone_t **lconn_zone;
    int nlconn;
    int limit_conn_status;         /* default 503 */
    int limit_conn_log_level;      /* default error */
    int limit_conn_dry_run;        /* default off */
    const char *auth_request;      /* subrequest URI; "" = off; NULL = inherit */
    pv_conf_src_t auth_request_src; /* its line */
    pv_auth_set_t *auth_sets;      /* auth_request_set lines */
    int nauth_sets;
    pv_cv_t *auth_basic;           /* realm; NULL = off (after merging) */
    int auth_basic_set;            /* auth_basic given at this level (on or off) */
    pv_cv_t *auth_basic_user_file; /* the password file's name (variables allowed), read per request */
    const char *user_file_prefix;  /* put before it: the prefix and "/" for a relative name, else "" */
    pv_cv_t *auth_jwt;             /* realm; NULL = off (after merging) */
    int auth_jwt_set;              /* auth_jwt given at this level */
    pv_cv_t *auth_jwt_token;       /* token=$variable; NULL = Authorization: Bearer */
    void *jwks;                    /* pv_jwks_t of auth_jwt_key_file */
    int64_t auth_jwt_leeway;       /* ms; default 0 */
    pv_cv_t *auth_jwt_require;     /* auth_jwt_require variables */
    int nauth_jwt_require;
    void *api_keys;                /* pv_apikeys_t of auth_api_key_file */
    pv_str_t api_key_header;       /* default X-API-Key */
    int satisfy;                   /* PV_SATISFY_*; default all */
    int64_t auth_delay;            /* ms a 401 of the access phase waits before it is sent; default 0 */
    pv_access_rule_t *rules;       /* allow / deny in order; NULL = inherit */
    int nrules;
} pv_policy_conf_t;

/* An address block (set_real_ip_from): family AF_INET or AF_INET6 with
 * the first bits of addr (the rest zero), or AF_UNIX for "unix:". */
typedef struct pv_cidr_s {
    uint8_t addr[16];
    uint8_t family;
    uint8_t bits;
} pv_cidr_t;

/* `geo [$ADDRESS] $VAR { ... }` (ngx_http_geo_module): a map whose
 * lookup is by client address. Values are literal strings. */
typedef struct pv_geo_conf_s {
    int ranges;                 /* `ranges`: the range table, else the radix trees */
    int has_source;             /* $ADDRESS given: the map's source is it */
    pv_geo_tree_t t4, t6;       /* prefixes; 0/0 of each holds the default */
    pv_geo_ranges_t rs;
    const pv_str_t *range_default; /* ranges' `default` (else the empty string) */
    pv_cidr_t *proxies;         /* `proxy`: whose X-Forwarded-For is believed */
    int nproxies;
    int proxy_recursive;
} pv_geo_conf_t;

/* real_ip_header */
enum { PV_REALIP_XREALIP = 0, PV_REALIP_XFF, PV_REALIP_PROXY, PV_REALIP_OTHER };

/* Logs and traces (trace_conf.c). Unset values are PV_UNSET / NULL. */
typedef struct pv_trace_conf_s {
    int anonymize;          /* log_anonymize: client addresses in access logs anonymised */
    int context;            /* trace_context: W3C traceparent/tracestate handled; default off */
    const char *rid_header; /* request_id_header NAME; "" (after merge): off */
    size_t rid_header_len;
    int rid_trust;          /* request_id_trust: a client's valid value becomes $request_id */
    int server_timing;      /* server_timing: the Server-Timing response field */
    uint8_t upstream;       /* after merge: fields of ours go upstream (context, rid_header) */
    uint8_t response;       /* after merge: fields of ours go to the client (rid_header, server_timing) */
} pv_trace_conf_t;

/* The realip directives. Unset values are PV_UNSET / NULL / 0. */
typedef struct pv_realip_conf_s {
    pv_cidr_t *from;            /* set_real_ip_from: trusted addresses; none = realip off */
    int nfrom;
    int header_kind;            /* PV_REALIP_*; default X-Real-IP */
    const char *header;         /* the header's name as written */
    int recursive;              /* real_ip_recursive; default off */
} pv_realip_conf_t;

/* The proxy_ssl_* directives. Unset values are PV_UNSET / NULL. */
typedef struct pv_proxy_ssl_conf_s {
    int server_name;            /* proxy_ssl_server_name; default off */
    const char *name;           /* proxy_ssl_name; NULL: the proxy_pass host */
    pv_cv_t *name_cv;           /* proxy_ssl_name compiled when it has variables, else NULL */
    int verify;                 /* proxy_ssl_verify; default off */
    pv_conf_src_t verify_src;
    int verify_depth;           /* proxy_ssl_verify_depth; default 1 */
    struct pv_ssl_file_s *trusted; /* proxy_ssl_trusted_certificate */
    struct pv_ssl_file_s *crl;  /* proxy_ssl_crl */
    int protocols;              /* PV_SSL_* bits; default TLSv1.2 TLSv1.3 */
    pv_conf_src_t protocols_src;
    const char *ciphers;        /* proxy_ssl_ciphers; default DEFAULT */
    pv_conf_src_t ciphers_src;
    int session_reuse;          /* proxy_ssl_session_reuse; default on */
    struct pv_ssl_file_s *certificate; /* proxy_ssl_certificate */
    struct pv_ssl_file_s *certificate_key; /* proxy_ssl_certificate_key */
    pv_cv_t *certificate_cv;    /* proxy_ssl_certificate compiled when it has variables, else NULL */
    pv_cv_t *certificate_key_cv; /* proxy_ssl_certificate_key compiled when it has variables */
    struct pv_ssl_file_s *password_file; /* proxy_ssl_password_file */
    struct pv_ssl_cmd_s *cmds;  /* proxy_ssl_conf_command, in order */
    int ncmds;
} pv_proxy_ssl_conf_t;

#include "conf_content.h"
#include "conf_sub.h"
#include "conf_headers.h"

/* Parse an `expires` value (NGINX's ngx_http_parse_expires) into kind
 * (PV_EXPIRES_*) and t seconds; PV_ERR with *err set when invalid. */
int pv_conf_parse_expires(pv_str_t v, int modified, int *kind, int64_t *t, const char **err);

/* proxy_ignore_headers */
#define PV_IGN_X_ACCEL_REDIRECT 0x01
#define PV_IGN_X_ACCEL_EXPIRES 0x02
#define PV_IGN_X_ACCEL_LIMIT_RATE 0x04
#define PV_IGN_X_ACCEL_BUFFERING 0x08
#define PV_IGN_X_ACCEL_CHARSET 0x10
#define PV_IGN_EXPIRES 0x20
#define PV_IGN_CACHE_CONTROL 0x40
#define PV_IGN_SET_COOKIE 0x80
#define PV_IGN_VARY 0x100

/* `error_page CODE... [=[RESPONSE]] URI` */
typedef struct pv_error_page_s {
    int status;                 /* the code it applies to */
    int overwrite;              /* -1: keep the code; 0 (`=`): the new response's; else that code */
    pv_cv_t uri;                /* "/uri", "@named" or a redirect URL */
    pv_conf_src_t src;          /* the error_page line */
} pv_error_page_t;
/* NGINX's size syntax (a number with k, m or g), also for values parsed
 * per request ($limit_rate); -1 when invalid. */
int64_t pv_conf_parse_size(pv_str_t s);

/* `set $limit_rate`: the op's slot (the request's rate, not a user variable) */
#define PV_RW_SLOT_LIMIT_RATE (-2)

/* A size that may come from variables (limit_rate): the number, or a
 * value parsed per request when cv is set (NGINX's complex value size). */
typedef struct pv_size_cv_s {
    int64_t n;                  /* PV_UNSET until given */
    pv_cv_t *cv;                /* with variables: evaluated per request, else NULL */
} pv_size_cv_t;

/* `client_body_temp_path`, `proxy_temp_path` (and the fastcgi, scgi and
 * uwsgi ones NGINX has): a directory of temporary files, with NGINX's
 * hashed subdirectory levels (digits of the file's number per level). */
typedef struct pv_temp_path_s {
    const char *path;           /* absolute, no trailing '/' */
    int levels[3];              /* 1..10 digits each, 0 ends; at most 10 in all */
    int configured;             /* written in the config: made at start as NGINX does */
    pv_conf_src_t src;
} pv_temp_path_t;

/* client_body_in_file_only */
enum { PV_BODY_FILE_OFF = 0, PV_BODY_FILE_ON, PV_BODY_FILE_CLEAN };
/* lingering_close */
enum { PV_LINGER_OFF = 0, PV_LINGER_ON, PV_LINGER_ALWAYS };

/* keepalive_disable's browsers */
#define PV_KA_DISABLE_MSIE6 0x1  /* MSIE 6 and older, POST requests */
#define PV_KA_DISABLE_SAFARI 0x2 /* Safari on Mac OS X */

/* What the response pipe (src/proxy/pipe.c) holds for a slow client, for
 * one module's *_buffering, *_buffers, *_busy_buffers_size,
 * *_temp_file_write_size, *_max_temp_file_size, *_limit_rate and
 * *_temp_path: the sizes in effect, set when a level is merged. */
typedef struct pv_pipe_conf_s {
    int buffering;                 /* on: the response is read ahead of a slow client */
    int buffers_num;               /* memory: N buffers of SIZE */
    int64_t buffers_size;
    int64_t busy_size;             /* handed to the client at a time */
    int64_t write_size;            /* written to the temp file at a time */
    int64_t max_temp_file_size;    /* 0: no temp file */
    int64_t limit_rate;            /* bytes per second read from the upstream while buffering; 0: none */
    const pv_temp_path_t *temp_path;
    int store;                     /* proxy_store: the temp file is the store's (no limit, no warning) */
} pv_pipe_conf_t;

/* proxy_store / fastcgi_store and their *_store_access (store_conf.c). */
typedef struct pv_store_conf_s {
    int on;                        /* PV_UNSET; default off; 1: a 200 response is stored */
    const pv_cv_t *cv;             /* its path with variables; NULL: the root-based path of the URI */
    int access;                    /* PV_UNSET; default 0600: the stored file's mode (and its new dirs') */
} pv_store_conf_t;

#include "conf_grpc.h"
#include "conf_fastcgi.h"

/* Settings that may appear at http, server and location level (each field
 * notes where NGINX allows it). Times are milliseconds, sizes bytes.
 * PV_UNSET (or NULL / 0 count for lists) means "inherit". */

typedef struct pv_loc_conf_s {
    /* client side */
    int64_t keepalive_timeout;     /* http/server/location; default 75s */
    int64_t keepalive_header;      /* keepalive_timeout's 2nd arg: "Keep-Alive: timeout=" value in ms; 0 = no header */
    int64_t keepalive_requests;    /* http/server/location; default 1000 */
    int64_t keepalive_time;        /* http/server/location; default 1h: no request starts on a connection older */
    int keepalive_disable;         /* PV_KA_DISABLE_*: browsers kept from keepalive; default msie6 */
    int64_t client_max_body_size;  /* http/server/location; default 1m; 0 = unlimited */
    int64_t client_body_timeout;   /* http/server/location; default 60s */
    int64_t send_timeout;          /* http/server/location; default 60s */
    /* send_lowat, proxy_send_lowat, fastcgi_send_lowat: checked, kept only
     * to refuse a duplicate (Linux cannot set SO_SNDLOWAT) */
    int64_t lowat[3];
    int64_t http2_chunk_size;      /* http/server/location; default 8k: DATA frame payload at most */
    /* proxy */
    int proxy_http_version;        /* 10 or 11; default 10 (NGINX's default) */
    pv_set_header_t *set_headers;  /* proxy_set_header list; NULL = inherit */
    int nset_headers;              /* count; inherited only when this level has none */
    int64_t proxy_connect_timeout; /* default 60s */
    int64_t proxy_read_timeout;    /* default 60s */
    int64_t proxy_send_timeout;    /* default 60s */
    int proxy_next_upstream;       /* PV_NEXT_F_* mask; default error|timeout */
    int64_t proxy_next_upstream_tries;   /* servers tried at most; 0 no limit */
    int64_t proxy_next_upstream_timeout; /* ms after which no other server is tried; 0 none */
    const struct pv_bind_conf_s *proxy_bind; /* proxy_bind ADDR (conf_bind.h); NULL: none (off, or unset) */
    uint8_t proxy_bind_set;        /* proxy_bind given at this level (off too) */
    int proxy_pass_request_body;   /* 0/1; default 1 */
    int proxy_pass_request_headers; /* 0/1; default 1 */
    pv_cv_t *proxy_method;         /* proxy_method; NULL: the client's */
    pv_cv_t *proxy_set_body;       /* proxy_set_body; NULL: the client's body */
    int proxy_intercept_errors;    /* default off */
    pv_error_page_t *error_pages;  /* error_page lines; inherited only when this level has none */
    int nerror_pages;
    int recursive_error_pages;     /* default off */
    pv_hdr_conf_t hdr;             /* add_header, expires, server_tokens, charset, proxy_*_header, proxy_redirect */
    pv_proxy_ssl_conf_t proxy_ssl; /* proxy_ssl_* (used by https proxy_pass) */
    pv_grpc_conf_t grpc;           /* grpc_* (used by grpc_pass) */
    pv_fastcgi_conf_t fastcgi;     /* fastcgi_* (used by fastcgi_pass) */
    pv_realip_conf_t realip;       /* set_real_ip_from, real_ip_header, real_ip_recursive */
    const pv_resolver_conf_t *resolver; /* `resolver`, or NULL: names in proxy_pass cannot be resolved */
    int64_t resolver_timeout;      /* ms; default 30s */
    pv_temp_path_t *client_body_temp_path; /* NULL = inherit; default <prefix>/client_body_temp */
    pv_temp_path_t *proxy_temp_path;       /* NULL = inherit; default <prefix>/proxy_temp */
    pv_temp_path_t *other_temp_paths[3];   /* fastcgi_, scgi_, uwsgi_temp_path: only made at start */
    int tcp_nodelay;               /* default on: TCP_NODELAY on the client connection */
    int reset_timedout_connection; /* default off: a timed-out client is reset (RST), not closed */
    int lingering_close;           /* PV_LINGER_*; default on */
    int64_t lingering_time;        /* ms; default 30s: the longest a closing connection reads and drops */
    int64_t lingering_timeout;     /* ms; default 5s: the longest wait for more bytes while lingering */
    int chunked_transfer_encoding; /* default on: off ends an HTTP/1.1 body of unknown length by closing */
    int proxy_request_buffering;   /* default on: the whole body is read before the upstream is asked */
    int64_t client_body_buffer_size; /* default 8k (NGINX's two pages on x86-64): memory for a body read whole */
    int client_body_in_file_only;  /* PV_BODY_FILE_*; default off */
    int client_body_in_single_buffer; /* default off; a body in memory is always one buffer here */
    int proxy_buffering;           /* default on: the response is read ahead of a slow client */
    int proxy_buffers_num;         /* proxy_buffers N SIZE: memory for it; default 8 4k */
    int64_t proxy_buffers_size;
    int64_t proxy_buffer_size;     /* default 4k: the upstream response head must fit */
    int64_t proxy_busy_buffers_size; /* as written; PV_UNSET: twice the larger of the two sizes */
    int64_t proxy_temp_file_write_size; /* as written; same default */
    int64_t proxy_max_temp_file_size; /* default 1024m; 0: no temp file */
    int64_t busy_size;             /* proxy_busy_buffers_size in effect: handed to the client at a time */
    int64_t write_size;            /* proxy_temp_file_write_size in effect: written to the file at a time */
    int64_t proxy_limit_rate;      /* bytes per second read from the upstream while buffering; 0 (the default): no limit */
    pv_pipe_conf_t proxy_pipe;     /* the proxy_* buffering settings above as the pipe reads them (merge) */
    int proxy_force_ranges;        /* default off: byte ranges for proxied responses without Accept-Ranges */
    int proxy_ignore_client_abort; /* default off: a client gone before the answer ends the exchange */
    pv_store_conf_t proxy_store;   /* proxy_store, proxy_store_access */
    pv_size_cv_t limit_rate;       /* bytes per second to the client; 0 (the default): no limit */
    pv_size_cv_t limit_rate_after; /* bytes sent before limit_rate applies; default 0 */
    /* rewrite module */
    int rewrite_log;               /* rewrite_log; default off */
    int uninitialized_variable_warn; /* default on */
    /* compression */
    pv_zip_conf_t zip;             /* gzip_*, brotli_* */
    pv_sub_conf_t sub;             /* sub_filter* */
    pv_ssi_conf_t ssi;             /* ssi, ssi_* */
    pv_add_conf_t add;             /* add_before_body, add_after_body, addition_types */
    pv_mirror_conf_t mirror;       /* mirror, mirror_request_body */
    int log_subrequest;            /* log_subrequest; default off */
    pv_pcache_conf_t pc;           /* proxy_cache_* */
    pv_pcache_conf_t fpc;          /* fastcgi_cache_* */
    /* logging */
    pv_access_log_t *access_logs;  /* access_log list; NULL = inherit */
    int naccess_logs;
    const struct pv_logcache_s *log_cache; /* open_log_file_cache; NULL = inherit (off at the top);
                                              max 0: off */
    struct pv_errlog_s *error_log; /* error_log of this block (a chain, core/log.h); NULL = inherit,
                                      the main error log at the top */
    pv_trace_conf_t trace;         /* log_anonymize, trace_context, request_id_*, server_timing */
    pv_policy_conf_t policy;       /* authentication and rate limits */
    pv_static_conf_t st;           /* files: root, alias, index, try_files, types */
    /* data residency (residency_conf.c) */
    struct pv_residency_s *residency; /* `residency`; NULL = inherit (none after merging) */
    struct pv_res_targets_s *res_targets; /* `residency_targets`; NULL = inherit */
    int residency_log_addr;        /* PV_RES_LOG_*; default anon */
} pv_loc_conf_t;

/* location modifiers */
enum {
    PV_LOC_PREFIX = 0,   /* location /path */
    PV_LOC_EXACT,        /* location = /path */
    PV_LOC_PREFIX_STOP,  /* location ^~ /path: no regex check if longest */
    PV_LOC_REGEX,        /* location ~ re */
    PV_LOC_REGEX_ICASE   /* location ~* re */
};

typedef struct pv_location_s {
    int match;                 /* PV_LOC_* */
    pv_str_t name;             /* path or regex source (arena, NUL-terminated) */
    void *re;                  /* pcre2_code* for regex locations */
    pv_conf_src_t src;         /* where it was declared */
    pv_loc_conf_t conf;        /* merged settings */
    pv_proxy_pass_t *proxy_pass; /* NULL if none */
    int internal;              /* `internal`: 404 for outside requests */
    int auto_redirect;         /* prefix ending in '/' with proxy_pass: 301 on the slashless URI */
    pv_regex_t *rx;            /* regex locations: the captures a match binds */
    pv_script_t rw;            /* rewrite module directives, run in the rewrite phase */
    struct pv_location_s *parent; /* an `if` block's configuration: its location */
    int named;                 /* `location @name`: reached only by internal redirects */
    struct pv_location_s *outer; /* a nested location: the one it is in */
    struct pv_location_s **children; /* nested locations, in declaration order */
    int nchildren;
    struct pv_health_conf_s *health_check; /* `health_check` here (for its proxy_pass upstream), or NULL */
    int probe;                 /* PV_PROBE_*: portvakt_live / portvakt_ready */
    struct pv_location_s *lmt;  /* `limit_except`: the configuration for the other methods */
    unsigned lmt_methods;       /* PV_METHOD_* bits of the methods it names (GET adds HEAD) */
    int report;                 /* PV_REPORT_*: portvakt_metrics, stub_status, portvakt_status,
                                   portvakt_dashboard */
    const char *metrics_name;   /* `metrics_name`, else the location's text: its metrics label */
    int mid;                    /* 1 + its index among the metered locations (an `if` or
                                   `limit_except` configuration: its location's); 0 none */
} pv_location_t;

/* The gateway's reports, content handlers of a location. */
enum { PV_REPORT_NONE = 0, PV_REPORT_METRICS, PV_REPORT_STUB, PV_REPORT_STATUS, PV_REPORT_DASHBOARD };

/* The methods `limit_except` knows (NGINX's list), as bits. */
extern const char *const pv_conf_methods[];
#define PV_METHOD_NUM 14
/* The PV_METHOD bit of a method name, 0 for one not in the list. */
unsigned pv_conf_method_bit(pv_str_t method);

/* server_name kinds */
enum {
    PV_SN_EXACT = 0,    /* example.com (also "" for no Host) */
    PV_SN_WILD_HEAD,    /* *.example.com or .example.com */
    PV_SN_WILD_TAIL,    /* www.example.* */
    PV_SN_REGEX         /* ~^www\d+\.example\.com$ */
};

typedef struct pv_server_name_s {
    int kind;      /* PV_SN_* */
    pv_str_t name; /* lowercased; for wildcards without '*' (".example.com" keeps the dot) */
    void *re;      /* pcre2_code* for PV_SN_REGEX */
    pv_regex_t *rx; /* the same with its captures, named ones as variables */
} pv_server_name_t;

/* One `listen` socket address. Many servers may share one address; the
 * http conf holds the unique list with the servers bound to each. */
typedef struct pv_listen_s {
    struct sockaddr_storage addr; /* bound address */
    socklen_t addrlen;
    pv_net_lopts_t sock; /* socket parameters; backlog default 511 (NGINX), ipv6only on */
    int sock_set;       /* a socket parameter given (at most one listen per address may) */
    int reuseport;      /* `reuseport` given */
    int default_server; /* `default_server` given */
    int ssl;            /* `ssl` given: connections on this address speak TLS */
    int http2;          /* `http2` given: HTTP/2 only (h2c with prior knowledge) */
    int proxy_protocol; /* `proxy_protocol` given: connections open with a PROXY protocol header */
    char text[120];     /* "127.0.0.1:8080" / "unix:/path" for logs */
    char host[120];     /* "127.0.0.1" / "::1" / "unix:/path": $server_addr */
    int port;           /* $server_port; 0 for a unix domain socket */
    pv_conf_src_t src;
} pv_listen_t;

/* ssl_ciphers' default: forward-secret AEAD suites only (Mozilla's
 * "intermediate" list), where NGINX's HIGH:!aNULL:!MD5 also offers CBC
 * suites that testssl.sh and SSL Labs count as weak. */
#define PV_SSL_DEFAULT_CIPHERS                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"             \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"               \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* ssl_verify_client */
enum { PV_VERIFY_OFF = 0, PV_VERIFY_ON, PV_VERIFY_OPTIONAL, PV_VERIFY_OPTIONAL_NO_CA };

/* ssl_protocols bits */
#define PV_SSL_SSLv2 0x01
#define PV_SSL_SSLv3 0x02
#define PV_SSL_TLSv1 0x04
#define PV_SSL_TLSv1_1 0x08
#define PV_SSL_TLSv1_2 0x10
#define PV_SSL_TLSv1_3 0x20

/* ssl_ocsp */
enum { PV_SSL_OCSP_OFF = 0, PV_SSL_OCSP_ON, PV_SSL_OCSP_LEAF };

/* ssl_session_cache */
enum { PV_SSL_CACHE_NONE = 0, PV_SSL_CACHE_OFF, PV_SSL_CACHE_ON };

/* A path given to a TLS directive, with where it was given. */
typedef struct pv_ssl_file_s {
    const char *path;   /* absolute path, a "data:" value, or (with cv) the value as written */
    pv_conf_src_t src;
    pv_cv_t *cv;        /* ssl_certificate / _key with variables: compiled, else NULL */
} pv_ssl_file_t;

/* `ssl_conf_command NAME VALUE` */
typedef struct pv_ssl_cmd_s {
    const char *name, *value;
    pv_conf_src_t src;
} pv_ssl_cmd_t;

/* TLS settings of a server (at http level: the defaults). Unset values
 * are PV_UNSET / NULL / 0 counts, merged from http like the others. */
typedef struct pv_ssl_conf_s {
    pv_ssl_file_t *certs;       /* ssl_certificate, in order */
    int ncerts;
    pv_ssl_file_t *keys;        /* ssl_certificate_key, paired with certs by order */
    int nkeys;
    pv_ssl_file_t *password_file; /* ssl_password_file; NULL if none */
    int dynamic;                /* a certificate or key has variables: all are loaded per handshake */
    const char *prefix;         /* the prefix relative names evaluated then are under */
    const char *passwords;      /* with dynamic: ssl_password_file's lines, kept for the handshakes */
    size_t passwords_len;
    int protocols;              /* PV_SSL_* bits; default TLSv1.2 TLSv1.3 */
    pv_conf_src_t protocols_src;
    const char *ciphers;        /* default PV_SSL_DEFAULT_CIPHERS */
    pv_conf_src_t ciphers_src;
    pv_ssl_cmd_t *cmds;         /* ssl_conf_command */
    int ncmds;
    int prefer_server_ciphers;  /* default off */
    const char *ecdh_curve;     /* default auto */
    pv_conf_src_t ecdh_src;
    pv_ssl_file_t *dhparam;     /* ssl_dhparam; NULL if none */
    pv_ssl_file_t *client_certificate; /* ssl_client_certificate */
    pv_ssl_file_t *crl;         /* ssl_crl */
    int verify_client;          /* PV_VERIFY_*; default off */
    pv_conf_src_t verify_src;
    int verify_depth;           /* default 1 */
    int session_tickets;        /* default on */
    int session_cache;          /* PV_SSL_CACHE_*; default none */
    int64_t builtin_size;       /* builtin[:size]: sessions; 0 = no builtin cache, -1 = OpenSSL's size */
    const char *cache_name;     /* shared:NAME:SIZE; NULL if none */
    int64_t cache_size;         /* its SIZE in bytes */
    pv_conf_src_t cache_src;
    pv_ssl_file_t *ticket_keys; /* ssl_session_ticket_key files, the first encrypts */
    int nticket_keys;
    int early_data;             /* ssl_early_data; default off */
    int reject_handshake;       /* ssl_reject_handshake; default off */
    int stapling;               /* ssl_stapling; default off */
    pv_conf_src_t stapling_src;
    pv_ssl_file_t *stapling_file; /* ssl_stapling_file: the DER OCSP response stapled */
    int stapling_verify;        /* ssl_stapling_verify; default off, as in NGINX */
    const char *stapling_responder; /* ssl_stapling_responder URL, or NULL: the certificate's AIA */
    pv_ssl_file_t *trusted;     /* ssl_trusted_certificate: CAs for verification, not sent */
    int ocsp;                   /* ssl_ocsp: PV_SSL_OCSP_*; default off */
    pv_conf_src_t ocsp_src;
    const char *ocsp_responder; /* ssl_ocsp_responder URL, or NULL: each certificate's AIA */
    pv_conf_src_t ocsp_responder_src;
    int ocsp_cache;             /* ssl_ocsp_cache given: 1 shared, 0 off; PV_UNSET */
    const char *ocsp_cache_name; /* its NAME */
    int64_t ocsp_cache_size;    /* its SIZE in bytes */
    pv_conf_src_t ocsp_cache_src;
    int enable;                 /* obsolete `ssl on`: the addresses it is the default server of speak TLS */
    pv_conf_src_t enable_src;
    int64_t session_timeout;    /* ms; default 5m */
    void *ctx;                  /* the SSL_CTX built from these (servers with certificates) */
} pv_ssl_conf_t;

typedef struct pv_server_s {
    pv_listen_t *listens;     /* this server's listen directives */
    int nlistens;
    pv_server_name_t *names;  /* server_name entries in order */
    int nnames;
    pv_str_t first_name;      /* the first server_name as NGINX keeps it (server_name_in_redirect) */
    pv_location_t **locations; /* every location, nested and named ones too, in declaration
                                  order (a location before those nested in it); the search
                                  starts from those with no outer location that are not named */
    int nlocations;
    pv_loc_conf_t conf;         /* server-level settings (merged from http) */
    int64_t client_header_timeout;      /* default 60s */
    int64_t client_header_buffer_size;  /* default 1k */
    int large_header_buffers_num;       /* default 4 */
    int64_t large_header_buffers_size;  /* default 8k */
    int http2;                          /* `http2 on`: HTTP/2 besides HTTP/1.1; default off */
    int64_t http2_max_concurrent_streams; /* default 128 */
    int64_t http2_body_preread_size;    /* default 64k: a stream's receive window and body buffer */
    pv_ssl_conf_t ssl;          /* TLS settings; ssl.ctx is NULL without certificates */
    int underscores_in_headers; /* default off: a field name with '_' is invalid */
    int64_t connection_pool_size;   /* accepted, checked as NGINX checks it; no effect (see README) */
    int ignore_invalid_headers; /* default on: an invalid field name is dropped, logged */
    int max_headers;            /* default 1000: more request fields get 400 */
    pv_script_t rw;             /* rewrite module directives, run in the server rewrite phase */
    pv_location_t *self_loc;    /* the server's own settings as a location, for a URI no
                                   location matches (NGINX's server-level loc_conf) */
    int sid;                    /* index in pv_http_conf_t.servers (its metrics slot) */
    const char *mlabel;         /* its metrics label: the first server_name, else the first
                                   listen address; made unique with "#2", "#3"... */
    pv_conf_src_t src;
} pv_server_t;

/* A socket the process listens on and the servers reachable through it. */
typedef struct pv_listen_group_s {
    pv_listen_t listen;        /* merged options for this address */
    pv_server_t **servers;     /* servers with a listen on this address */
    int nservers;
    pv_server_t *default_srv;  /* default_server, else the first */
    int max_headers_lo;        /* the least and greatest max_headers of its servers */
    int max_headers_hi;
} pv_listen_group_t;

/* One address of a `server` line in an upstream block. */
typedef struct pv_upstream_server_s {
    struct sockaddr_storage addr; /* resolved at load time */
    socklen_t addrlen;
    char text[120];               /* "127.0.0.1:8080" or "unix:/path" for $upstream_addr */
    const char *name;             /* the line's address as written ("app:8080"): consistent hash identity */
    int line;                     /* first server line with the same name (consistent hash identity) */
    int weight;                   /* default 1 */
    int max_fails;                /* default 1 */
    int request_fails;            /* a run-time pool's server: its failures keep it out of the
                                     request that saw them only, as NGINX's per-request peers */
    int64_t fail_timeout;         /* default 10s */
    int max_conns;                /* 0: no limit */
    int64_t slow_start;           /* ms over which a recovered server's weight grows back; 0 off */
    int backup;                   /* `backup` flag */
    int down;                     /* `down` flag */
    int jur;                      /* jurisdiction (PV_JUR_* index), the line's or the block's;
                                     PV_JUR_NONE when undeclared. Every address the line
                                     resolves to, now or at a reload, has it */
    pv_conf_src_t src;            /* the server line */
    /* `server NAME[:PORT] resolve`: one of the line's PV_RESOLVED_MAX
     * slots, whose address (the peer's) follows the name's DNS answers;
     * addr is then a key holding the name, not an address */
    const char *resolve_host;     /* the name to resolve, or NULL */
    const char *resolve_service;  /* service=: the SRV name looked up (_http._tcp.NAME), else NULL */
    int srv_tier;                 /* service=: 0 takes the records of the lowest priority value, 1 the rest */
    int resolve_port;
    int resolve_first;            /* index of the line's first slot */
    struct sockaddr_storage init; /* the address load time found for this slot (initlen 0: none) */
    socklen_t initlen;
} pv_upstream_server_t;

/* Balancing methods of an upstream block (PV_BAL_*). */
enum {
    PV_BAL_RR = 0,     /* smooth weighted round robin (default) */
    PV_BAL_LEAST_CONN, /* least_conn */
    PV_BAL_IP_HASH,    /* ip_hash */
    PV_BAL_HASH,       /* hash KEY */
    PV_BAL_CHASH,      /* hash KEY consistent (ketama) */
    PV_BAL_RANDOM,     /* random */
    PV_BAL_RANDOM2     /* random two [least_conn] */
};

/* The gateway's own probes, content handlers of a location. */
enum { PV_PROBE_NONE = 0, PV_PROBE_LIVE, PV_PROBE_READY };

/* One line of a `match` block: a test of a health check's answer. */
enum { PV_MATCH_STATUS = 0, PV_MATCH_HEADER, PV_MATCH_BODY };
enum { PV_MATCH_PRESENT = 0, PV_MATCH_EQ, PV_MATCH_RE };
typedef struct pv_match_cond_s {
    int kind;               /* PV_MATCH_STATUS / HEADER / BODY */
    int neg;                /* "!", "!=" or "!~": the test must fail */
    int op;                 /* header: PV_MATCH_PRESENT / EQ / RE; body: RE */
    int (*ranges)[2];       /* status: codes and ranges (lo, hi) */
    int nranges;
    const char *name;       /* header: the field name */
    const char *value;      /* header =: the value */
    struct pv_regex_s *rx;  /* header ~, body ~ */
} pv_match_cond_t;

/* `match NAME { ... }`: what a health check's answer must be. */
typedef struct pv_match_s {
    const char *name;
    pv_match_cond_t *conds; /* all must hold */
    int nconds;
    pv_conf_src_t src;
} pv_match_t;

/* `health_check` in a location: active checks of its upstream's servers. */
typedef struct pv_health_conf_s {
    int64_t interval;            /* ms between checks of a server (5s) */
    int64_t jitter;              /* up to this many ms more, at random (0) */
    int fails;                   /* consecutive failed checks that take a server out (1) */
    int passes;                  /* consecutive passed checks that bring it back (1) */
    const char *uri;             /* request target ("/") */
    int port;                    /* port checked instead of the server's; 0 the server's */
    int mandatory;               /* a server takes no traffic before its first check passed */
    int persistent;              /* mandatory: the state is kept across reloads (always, here) */
    const char *match_name;      /* match=NAME as written, or NULL */
    const pv_match_t *match;     /* that block; NULL: a 2xx or 3xx status passes */
    const pv_upstream_tls_t *tls; /* an https proxy_pass: checks speak TLS with its settings; else NULL */
    pv_conf_src_t src;
} pv_health_conf_t;

/* A point of the consistent-hash ring: its hash and the server line
 * (pv_upstream_server_t.line) it belongs to. */
typedef struct pv_chash_point_s {
    uint32_t hash;
    int line;
} pv_chash_point_t;

struct pv_upstream_conf_s {
    const char *name;            /* block name, or "host:port" for implicit ones */
    int implicit;                /* created by proxy_pass host:port */
    pv_upstream_server_t *servers; /* one entry per resolved address; primaries first, then backups */
    int nservers;
    int nprimary;                /* servers[0, nprimary) are primaries, the rest `backup` */
    int method;                  /* PV_BAL_* */
    pv_cv_t *hash_key;           /* hash KEY */
    pv_chash_point_t *points;    /* hash ... consistent: the ring, sorted, unique hashes */
    int npoints;
    const char *zone;            /* zone NAME (state is shared by all workers anyway) */
    int retry_budget;            /* retries in progress allowed, percent of attempts in progress; 0 off */
    int retry_min;               /* retries always allowed whatever the share (min=) */
    pv_health_conf_t *health;    /* active checks (a location's health_check), or NULL */
    int od_consecutive;          /* outlier_detection: 5xx answers or failures in a row that eject; 0 off */
    int64_t od_base, od_max;     /* ms: first ejection, and the most one lasts (it grows by od_base) */
    int nresolve;                /* `server ... resolve` lines */
    const pv_resolver_conf_t *resolver; /* the block's own `resolver` (else http's), or NULL */
    int64_t resolver_timeout;    /* the block's `resolver_timeout`, PV_UNSET: http's */
    int queue;                   /* `queue N`: requests that may wait for a server, per worker; 0 none */
    int64_t queue_timeout;       /* its timeout= (ms, 60s) */
    int keepalive;               /* idle connections kept per worker; 0 = no pool */
    int64_t keepalive_requests;  /* default 1000 */
    int64_t keepalive_timeout;   /* default 60s */
    int64_t keepalive_time;      /* default 1h */
    int64_t keepalive_grace;     /* ms idle connections beyond `keepalive` may stay (5s); 0: NGINX's strict cap */
    int index;                   /* position in pv_http_conf_t.upstreams: per-worker pool slot */
    int jur;                     /* `jurisdiction` of the block: its servers' default; PV_JUR_NONE */
    pv_conf_src_t jur_src;
    int peer_base;               /* metrics slot of servers[0]; servers[i] has peer_base + i */
    pv_conf_src_t src;
};

typedef struct pv_http_conf_s {
    pv_server_t **servers;       /* in declaration order */
    int nservers;
    pv_listen_group_t *listens;  /* unique listen addresses */
    int nlistens;
    pv_upstream_conf_t **upstreams; /* named and implicit */
    int nupstreams;
    pv_log_format_t **formats;   /* log_format list; "combined" always present */
    int nformats;
    pv_match_t **matches;        /* `match` blocks (health checks) */
    int nmatches;
    pv_zone_t **zones;           /* limit_req_zone / limit_conn_zone */
    int nzones;
    pv_cache_path_t **caches;    /* proxy_cache_path */
    int ncaches;
    pv_loc_conf_t conf;           /* http-level settings */
    int64_t client_header_timeout;     /* http-level values of the server-only settings */
    int64_t client_header_buffer_size;
    int large_header_buffers_num;
    int64_t large_header_buffers_size;
    int http2;
    int64_t http2_max_concurrent_streams;
    int64_t http2_body_preread_size;
    int64_t http2_recv_buffer_size;    /* http only; default 256k: each worker's HTTP/2 read buffer */
    int nuvars;                   /* user variables (set, map, named captures) */
    const char **uvar_names;      /* their names, by slot */
    pv_map_t **uvar_maps;         /* the map that defines each, or NULL */
    uint8_t *uvar_is_set;         /* 1 for those a `set` assigns (empty, with a warning, before) */
    pv_location_t **iflocs;       /* `if` blocks' configurations, merged after their location */
    int niflocs;
    pv_temp_path_t **temp_paths;  /* every *_temp_path written: made at start */
    int ntemp_paths;
    int underscores_in_headers;   /* http-level values of the server-only settings */
    int ignore_invalid_headers;
    int64_t server_names_hash_max_size;    /* accepted, checked; no effect (see README) */
    int64_t server_names_hash_bucket_size;
    struct pv_res_http_s *res;    /* residency_group, gateway_jurisdiction, trusted_network,
                                     residency_require_tls (residency_conf.c); never NULL */
    int nmlocs;                   /* metered locations (pv_location_t.mid) */
    pv_location_t **mlocs;        /* them, by mid - 1 */
    int npeers;                   /* upstream servers of every upstream (metrics slots) */
    pv_charsets_t charsets;       /* the charsets and charset_map tables (charset_conf.c) */
} pv_http_conf_t;

/* Something per worker hung on a snapshot by the layers above (their
 * metrics blocks): pushed by the worker while it runs, read by any, and
 * freed with the snapshot. Each starts with this link. */
typedef struct pv_conf_block_s {
    struct pv_conf_block_s *next;
    int kind;                     /* which layer's block */
} pv_conf_block_t;

struct pv_conf_s {
    pv_arena_t arena;          /* owns every byte of the snapshot */
    const char *path;          /* absolute path of the main config file */
    const char *prefix;        /* -p, else its directory: relative paths resolve here */
    int worker_processes;      /* resolved count (auto already applied) */
    int worker_processes_auto; /* `auto` was given */
    const char *worker_processes_why; /* how auto chose the count, for the log */
    int worker_connections;    /* default 512 */
    const char *error_log_path; /* NULL = stderr */
    int error_log_level;       /* PV_LOG_*; default error */
    const char *pid_path;      /* NULL = no pid file */
    const char *user;          /* `user`: the account to run as when started as root; NULL = none */
    unsigned uid, gid;         /* its ids, resolved at load */
    int daemon;                /* `daemon on`: detach at start; default off */
    int master_process;        /* `master_process off`: one worker, as NGINX's single process */
    int64_t worker_rlimit_nofile; /* RLIMIT_NOFILE to set; 0 = leave it alone */
    int64_t worker_shutdown_timeout; /* ms a graceful stop may take; 0 = no limit (NGINX's default) */
    void **regexes;            /* every pcre2_code* of the snapshot, freed with it */
    int nregexes;
    pv_http_conf_t *http;      /* NULL when there is no http block */
    struct pv_conf_cleanup_s *cleanups; /* run when the snapshot is freed (key files, zones) */
    _Atomic(pv_conf_block_t *) blocks; /* per-worker blocks (metrics), freed with the snapshot */
    atomic_int refs;           /* holders of this snapshot */
};

/* Something a snapshot holds outside its arena. */
typedef struct pv_conf_cleanup_s {
    void (*fn)(void *arg);     /* frees arg */
    void *arg;
    struct pv_conf_cleanup_s *next;
} pv_conf_cleanup_t;

/* Parse, check and resolve a config file into a new snapshot.
 * On error returns NULL and writes "MESSAGE in FILE:LINE" into err. */
pv_conf_t *pv_conf_load(const char *path, char *err, size_t errlen);
/* What the command line adds to a config file (NGINX's -p, -g, -e, -T). */
typedef struct pv_conf_opts_s {
    const char *prefix;    /* -p: relative paths, and a relative config path, resolve here
                            * (NULL: the config file's directory; `include` always
                            * resolves against the config file's directory) */
    const char *params;    /* -g: directives read before the file, "in command line" */
    const char *error_log; /* -e: the error log when the config names none ("stderr" or a path) */
    /* -T: called with each file as it is read, the main file first */
    void (*on_file)(void *arg, const char *path, const char *text, size_t len);
    void *arg;
} pv_conf_opts_t;
/* pv_conf_load() with the command line's additions; opts may be NULL. */
pv_conf_t *pv_conf_load_opts(const char *path, const pv_conf_opts_t *opts, char *err, size_t errlen);
/* The file name messages about -g directives carry, as NGINX's "in command line". */
#define PV_CONF_CMDLINE "command line"
/* pv_conf_load_text() flags */
#define PV_CONF_F_NO_DNS 0x01     /* resolve numeric addresses only; a name is "host not found" */
#define PV_CONF_F_NO_INCLUDE 0x02 /* `include` is an error (fuzzing: no file access) */
/* Like pv_conf_load() with the main file's text given in memory; path
 * names it in messages and gives the prefix for relative paths. */
pv_conf_t *pv_conf_load_text(const char *path, const char *text, size_t len, unsigned flags,
                             char *err, size_t errlen);
/* Take / drop a reference; the last drop frees the snapshot. */
void pv_conf_ref(pv_conf_t *c);
void pv_conf_unref(pv_conf_t *c);
/* Hang b on c's blocks (any thread); freed with c by free(). */
void pv_conf_block_push(pv_conf_t *c, pv_conf_block_t *b);
/* Make every *_temp_path directory the config writes (mode 0700, owned
 * by `user` when started as root), as NGINX does at start. */
int pv_conf_temp_paths_make(const pv_conf_t *conf, char *err, size_t errlen);
/* Started as root with `user`: take that account's group, groups and
 * uid (after the sockets and logs are open), as NGINX's workers do. */
int pv_conf_drop_privileges(const pv_conf_t *conf, char *err, size_t errlen);
/* The CPUs this process may really use: cgroup cpu.max (v2) or
 * cpu.cfs_quota_us (v1) quota rounded up, capped by the affinity mask.
 * sys_root prefixes /proc and /sys paths ("" for the real ones);
 * why receives a short explanation. */
int pv_conf_auto_workers(const char *sys_root, char *why, size_t whylen);

#endif
