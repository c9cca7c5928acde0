/* Internals shared by the config loader's files: the parse tree
 * (parser.c), the directive table and setters (directives.c) and the
 * resolve/merge/validate pass (load.c). Not for the runtime. */
#ifndef PV_CONF_INT_H
#define PV_CONF_INT_H

#include "conf.h"

/* One directive as written: `args[0] args[1]...;` or with a `{ }` body. */
typedef struct pv_conf_node_s pv_conf_node_t;
struct pv_conf_node_s {
    pv_str_t *args;        /* args[0] is the directive name; all NUL-terminated */
    int nargs;             /* including the name */
    int block;             /* ended with '{' rather than ';' */
    pv_conf_node_t *child; /* first directive of the body */
    pv_conf_node_t *next;  /* next sibling */
    pv_conf_src_t src;     /* file and line of the name */
};

/* State for turning text into a tree; `include` is expanded here. */
typedef struct pv_parser_s {
    pv_arena_t *tmp;    /* tree and file texts: freed after loading */
    pv_arena_t *keep;   /* snapshot arena: file names outlive the tree */
    const char *prefix; /* directory of the main file, for relative includes */
    /* -T: each file's text as it is read (NULL: none wanted) */
    void (*on_file)(void *arg, const char *path, const char *text, size_t len);
    void *on_file_arg;
    unsigned flags;     /* PV_CONF_F_* */
    int depth;          /* include nesting, bounded against loops */
    char *err;          /* message buffer */
    size_t errlen;
} pv_parser_t;

/* Parse a file (absolute path) into a list of top-level nodes. */
int pv_conf_parse_file(pv_parser_t *ps, const char *path, pv_conf_node_t **first);
/* Parse text that came from file into a list of top-level nodes. */
int pv_conf_parse_text(pv_parser_t *ps, const char *file, const char *text, size_t len,
                       pv_conf_node_t **first);

/* directive contexts (a mask in the table) */
#define PV_CTX_MAIN 0x01
#define PV_CTX_EVENTS 0x02
#define PV_CTX_HTTP 0x04
#define PV_CTX_UPSTREAM 0x08
#define PV_CTX_SERVER 0x10
#define PV_CTX_LOCATION 0x20
#define PV_CTX_SIF 0x40      /* an `if` block in a server */
#define PV_CTX_LIF 0x80      /* an `if` block in a location */
#define PV_CTX_MAP 0x100     /* a `map` block (its entries are not directives) */
#define PV_CTX_LMT 0x200     /* a `limit_except` block */
#define PV_CTX_ANY_LOC (PV_CTX_HTTP | PV_CTX_SERVER | PV_CTX_LOCATION)

/* A resolved socket address. */
typedef struct pv_conf_addr_s {
    struct sockaddr_storage ss; /* the address */
    socklen_t len;              /* its length */
} pv_conf_addr_t;

/* A `proxy_pass` whose target is found after the whole file is read, since
 * an upstream may be declared after its first use. */
typedef struct pv_conf_pass_ref_s {
    pv_proxy_pass_t *pp;  /* what to fill in */
    char *host;           /* host as written (no brackets for IPv6) */
    int port;             /* port, or 0 when the URL had none */
    pv_conf_src_t src;    /* the proxy_pass line */
    pv_conf_addr_t un;    /* proxy_pass http://unix:/path: the socket (un.len 0 otherwise) */
} pv_conf_pass_ref_t;

/* An access_log whose format is looked up once every log_format is known. */
typedef struct pv_conf_log_ref_s {
    pv_loc_conf_t *lc;    /* level whose list holds the entry */
    int idx;              /* entry index (the list may still grow) */
    const char *fmt;      /* format name */
    pv_conf_src_t src;    /* the access_log line */
} pv_conf_log_ref_t;

/* Walk state while applying the directive table to a tree. */
typedef struct pv_conf_ctx_s {
    pv_conf_t *conf;       /* snapshot being built */
    pv_arena_t *a;         /* == &conf->arena */
    pv_arena_t *tmp;       /* scratch freed after loading (reference lists) */
    unsigned flags;        /* PV_CONF_F_* */
    char *err;             /* message buffer */
    size_t errlen;
    int ctx;               /* PV_CTX_* of the block being walked */
    pv_http_conf_t *http;  /* the http block, once seen */
    pv_server_t *http_srv; /* holds http-level values of the server-only settings */
    pv_server_t *srv;      /* server being filled (http_srv at http level) */
    pv_location_t *loc;    /* location being filled */
    pv_upstream_conf_t *ups; /* upstream being filled */
    pv_loc_conf_t *lc;     /* settings of the current http/server/location level */
    int events_seen;       /* `events` is allowed once */
    pv_conf_pass_ref_t *passes; /* proxy_pass targets to resolve */
    int npasses;
    pv_conf_log_ref_t *logrefs; /* access_log formats to resolve */
    int nlogrefs;
    struct pv_conf_tls_ref_s *tlsrefs; /* upstream TLS settings built so far (proxy_ssl.c) */
    int ntlsrefs;
    pv_script_t *script;   /* inside an `if` block: the script its directives join */
    pv_map_t **maps;       /* every map, by declaration */
    int nmaps;
    int *set_slots;        /* user variables some `set` assigns */
    int nset_slots;
} pv_conf_ctx_t;

/* Apply the directive table to a list of nodes in context ctx. */
int pv_conf_walk(pv_conf_ctx_t *cx, const pv_conf_node_t *first, int ctx);
/* Resolve, merge and check after the walk; fills http's derived lists. */
int pv_conf_finish(pv_conf_ctx_t *cx);

/* Write "MESSAGE in FILE:LINE" into cx->err; returns PV_ERR. */
int pv_conf_error(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Make a path absolute against the main file's directory. */
const char *pv_conf_full_path(pv_conf_ctx_t *cx, const char *path);
/* Append one zeroed element to an arena array whose capacity is implied
 * by its count (powers of two); returns the new element. */
void *pv_conf_push(pv_arena_t *a, void *arrp, int *n, size_t elsize);
/* Set every field of a level's settings to "inherit". */
void pv_conf_loc_init(pv_loc_conf_t *lc);
/* Run fn(arg) when the snapshot is freed. */
void pv_conf_add_cleanup(pv_conf_ctx_t *cx, void (*fn)(void *), void *arg);
/* Remember a compiled regex so the snapshot frees it. */
void pv_conf_add_regex(pv_conf_ctx_t *cx, void *re);

/* argument count flags, as NGINX's NGX_CONF_TAKE* */
#define PV_ARGS_NOARGS 0x001
#define PV_ARGS_TAKE1 0x002
#define PV_ARGS_TAKE2 0x004
#define PV_ARGS_TAKE3 0x008
#define PV_ARGS_TAKE12 (PV_ARGS_TAKE1 | PV_ARGS_TAKE2)
#define PV_ARGS_FLAG 0x100
#define PV_ARGS_1MORE 0x200
#define PV_ARGS_2MORE 0x400
#define PV_ARGS_BLOCK 0x800

/* which struct a row's offset points into */
enum { PV_BASE_NONE = 0, PV_BASE_MAIN, PV_BASE_LOC, PV_BASE_SRV, PV_BASE_UPS };

typedef struct pv_conf_cmd_s pv_conf_cmd_t;
/* Setters return PV_OK, or PV_ERR with cx->err written. */
typedef int (*pv_conf_set_cb)(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                              const pv_conf_node_t *nd, void *base);

struct pv_conf_cmd_s {
    const char *name;   /* directive name */
    unsigned ctx;       /* PV_CTX_* where it is allowed */
    unsigned args;      /* PV_ARGS_* */
    pv_conf_set_cb set; /* typed setter */
    int base;           /* PV_BASE_*: struct the offset is into */
    size_t offset;      /* field offset for the generic setters */
    const void *data;   /* setter-specific table (enum/bitmask values) */
};

/* one name/value pair for enum and bitmask directives */
typedef struct {
    const char *name; /* value as written */
    int value;        /* stored value or bit */
} pv_conf_enum_t;

/* `NAME on|off` into *f (PV_UNSET until set): NGINX's flag setter, with its
 * duplicate and invalid-value messages. */
int pv_conf_flag(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *f);
/* `NAME SIZE` (k, m, g) and `NAME TIME` (ms) into *f, NGINX's messages. */
int pv_conf_size(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int64_t *f);
int pv_conf_msec(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int64_t *f);
/* The same for a value at cmd->offset in base (NGINX's
 * ngx_conf_set_flag_slot(), _size_slot(), _msec_slot()). */
int pv_conf_flag_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
int pv_conf_size_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
int pv_conf_msec_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
/* `NAME WORD` into an int slot: the value of WORD in cmd->data, a
 * pv_conf_enum_t list ending with a NULL name (ngx_conf_set_enum_slot()). */
int pv_conf_enum_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
/* `NAME WORD...` OR-ed into *f (PV_UNSET counts as 0) from names, matched
 * in any case: NGINX's bitmask setter; bits accumulate over repeats. */
int pv_conf_bitmask(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_conf_enum_t *names, int *f);
#define DUP(cx, nd) pv_conf_error((cx), &(nd)->src, "\"%s\" directive is duplicate", (nd)->args[0].p)
#define ARG(nd, i) ((nd)->args[i].p)

/* A module's directive table. Every table is in the one list of
 * directives.c; a name is looked up in each, in list order, and rows
 * sharing a name are told apart by context. */
typedef struct pv_conf_module_s {
    const char *name;          /* for the list's readers */
    const pv_conf_cmd_t *cmds; /* the rows */
    size_t ncmds;
} pv_conf_module_t;

/* upstream, server, the balancing methods, zone, keepalive (upstream_conf.c). */
extern const pv_conf_module_t pv_conf_upstream_module;
/* After the walk: check a block's server parameters against its method,
 * put primaries before backups and build the consistent-hash ring. */
int pv_conf_upstream_finish(pv_conf_ctx_t *cx, pv_upstream_conf_t *u);
/* `match` blocks (match_conf.c). */
extern const pv_conf_module_t pv_conf_match_module;
/* After the merge: give a location's health_check to its upstream. */
int pv_conf_health_attach(pv_conf_ctx_t *cx, pv_location_t *loc);
/* portvakt_metrics, stub_status, portvakt_status, metrics_name (metrics_conf.c). */
extern const pv_conf_module_t pv_conf_metrics_module;
/* A report location's conflicts with other content (proxy_pass, probes). */
int pv_conf_report_check(pv_conf_ctx_t *cx, const pv_location_t *loc);
/* The metrics slots and labels of servers, locations and upstream servers. */
void pv_conf_metrics_finish(pv_conf_ctx_t *cx);
/* NGINX's consistent-hash ring of servers[0, n) into out (room for the
 * weights' sum * 160 points); returns the count of unique points. */
int pv_conf_chash_ring(const pv_upstream_server_t *servers, int n, pv_chash_point_t *out);

/* The access-phase directives (policy_conf.c). */
extern const pv_conf_module_t pv_conf_policy_module;
/* Before the walk: declare the variables auth_request_set creates. */
void pv_conf_policy_declare(const pv_conf_node_t *first);
void pv_conf_policy_declare_children(const pv_conf_node_t *first);
/* Set a level's policy settings to "inherit". */
void pv_conf_policy_init(pv_policy_conf_t *p);
/* After merging: a location's policy settings are complete and coherent. */
int pv_conf_policy_check(pv_conf_ctx_t *cx, const pv_location_t *loc);
/* After the walk: merge a level's policy settings with its parent's. */
void pv_conf_policy_merge(pv_policy_conf_t *c, const pv_policy_conf_t *p);
/* After the walk: resolve zone names, create or adopt the zones. */
int pv_conf_policy_finish(pv_conf_ctx_t *cx);

/* The header and proxied-field directives (header_conf.c). */
extern const pv_conf_module_t pv_conf_header_module;
/* proxy_cookie_domain, _path, _flags (cookie_conf.c). */
extern const pv_conf_module_t pv_conf_cookie_module;
void pv_conf_cookie_merge(pv_cookie_conf_t *c, const pv_cookie_conf_t *p);
void pv_conf_hdr_init(pv_hdr_conf_t *h);
/* Fill unset values from the parent level, or NGINX's defaults (p NULL). */
void pv_conf_hdr_merge(pv_hdr_conf_t *c, const pv_hdr_conf_t *p);
/* After merging: what a location's settings ask for can be done. */
int pv_conf_hdr_check(pv_conf_ctx_t *cx, const pv_location_t *loc);

/* charset_map, charset, source_charset, override_charset, charset_types
 * (charset_conf.c). */
extern const pv_conf_module_t pv_conf_charset_module;
void pv_conf_charset_init(pv_charset_conf_t *c);
/* Fill unset values from the parent level, or NGINX's defaults (p NULL). */
void pv_conf_charset_merge(pv_charset_conf_t *c, const pv_charset_conf_t *p);
/* After merging: a charset_map joins the level's source_charset and charset. */
int pv_conf_charset_check(pv_conf_ctx_t *cx, const pv_charset_conf_t *c, const pv_conf_src_t *src);

/* error_page, recursive_error_pages, proxy_intercept_errors (errpage_conf.c). */
extern const pv_conf_module_t pv_conf_errpage_module;

/* The TLS directives (ssl_conf.c) and the SSL_CTX built from them
 * (ssl_ctx.c). */
extern const pv_conf_module_t pv_conf_ssl_module;
/* Set a server's TLS settings to "inherit". */
void pv_conf_ssl_init(pv_ssl_conf_t *c);
/* Merge a server's TLS settings with the http level's. */
void pv_conf_ssl_merge(pv_ssl_conf_t *c, const pv_ssl_conf_t *p);
/* After the listen groups: build every server's SSL_CTX, check the TLS
 * addresses. */
int pv_conf_ssl_finish(pv_conf_ctx_t *cx);
/* The proxy_ssl_* directives and the client SSL_CTX of an https
 * proxy_pass (proxy_ssl.c). */
extern const pv_conf_module_t pv_conf_proxy_ssl_module;
/* grpc_pass and the grpc_* settings (grpc_conf.c). */
extern const pv_conf_module_t pv_conf_grpc_module;
void pv_conf_grpc_init(pv_grpc_conf_t *g);
void pv_conf_grpc_merge(pv_grpc_conf_t *c, const pv_grpc_conf_t *p);
/* fastcgi_pass and the fastcgi_* settings (fastcgi_conf.c). */
extern const pv_conf_module_t pv_conf_fastcgi_module;
/* proxy_ignore_headers' and fastcgi_ignore_headers' names: PV_IGN_* */
extern const pv_conf_enum_t pv_conf_ignore_names[];
void pv_conf_fastcgi_init(pv_fastcgi_conf_t *f);
void pv_conf_fastcgi_merge(pv_fastcgi_conf_t *c, const pv_fastcgi_conf_t *p);
void pv_conf_proxy_ssl_init(pv_proxy_ssl_conf_t *c);
/* Fill unset values from the parent level, or NGINX's defaults (p NULL). */
void pv_conf_proxy_ssl_merge(pv_proxy_ssl_conf_t *c, const pv_proxy_ssl_conf_t *p);
/* Set loc->proxy_pass->tls from the merged settings, sharing it (and its
 * SSL_CTX) with earlier locations that have the same ones. */
int pv_conf_proxy_ssl_build(pv_conf_ctx_t *cx, pv_location_t *loc);
/* An int setter: a number from 0 to 2^31-1 (worker_connections, max_headers). */
int pv_conf_set_int(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
/* proxy_pass (pass_conf.c). */
int pv_conf_set_proxy_pass(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
int pv_conf_set_proxy_bind(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);
/* proxy_bind's and fastcgi_bind's arguments: *out the address, or NULL for off. */
int pv_conf_bind(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const struct pv_bind_conf_s **out);
/* pp, the target of the line nd (URL url, host and port as written), is
 * loc's, and is looked up once the whole file is read. */
void pv_conf_pass_target(pv_conf_ctx_t *cx, pv_location_t *loc, pv_proxy_pass_t *pp, const pv_conf_node_t *nd,
                         const char *url, char *host, int port);
/* resolver and resolver_timeout (resolver_conf.c). */
extern const pv_conf_module_t pv_conf_resolver_module;
void pv_conf_resolver_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p);
/* The logs and traces directives and the ready-made log formats
 * (trace_conf.c). */
extern const pv_conf_module_t pv_conf_trace_module;
void pv_conf_trace_init(pv_trace_conf_t *c);
void pv_conf_trace_merge(pv_trace_conf_t *c, const pv_trace_conf_t *p);
/* Add "json" and "otel" to a new http block's formats. */
int pv_conf_trace_formats(pv_conf_ctx_t *cx, const pv_conf_node_t *nd);

/* The realip directives (realip_conf.c). */
extern const pv_conf_module_t pv_conf_realip_module;
void pv_conf_realip_init(pv_realip_conf_t *c);
void pv_conf_realip_merge(pv_realip_conf_t *c, const pv_realip_conf_t *p);
/* "ADDR" or "ADDR/BITS" (IPv4 or IPv6) into out; PV_ERR if invalid. */
int pv_conf_parse_cidr(const char *text, pv_cidr_t *out);
/* NGINX's wildcard names (server_name, map's hostnames), low lowercased:
 * "*.a.b" is PV_SN_WILD_HEAD ".a.b"; so is ".a.b", which matches "a.b"
 * too (*exact, else empty); "a.b.*" is PV_SN_WILD_TAIL "a.b." (not NUL
 * terminated); else PV_SN_EXACT. *name points into low. */
int pv_conf_wildcard(pv_str_t low, pv_str_t *name, pv_str_t *exact);
/* The names of ssl_protocols / proxy_ssl_protocols and their PV_SSL_* bits. */
extern const pv_conf_enum_t pv_conf_ssl_protocols[];
/* ssl_protocols / proxy_ssl_protocols: the bits into *protocols (a
 * second one at the same level is an error) and where they were set. */
int pv_conf_ssl_protocols_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *protocols, pv_conf_src_t *src);
/* ssl_verify_depth / proxy_ssl_verify_depth: 0 to 100 into *depth. */
int pv_conf_ssl_depth_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *depth);
/* ssl_conf_command / proxy_ssl_conf_command: NAME VALUE added to *cmds. */
int pv_conf_ssl_command_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, struct pv_ssl_cmd_s **cmds, int *ncmds);
/* Make exactly the PV_SSL_* protocols given usable on an SSL_CTX. */
void pv_conf_ssl_apply_protocols(void *ctx, int protocols);
/* The private key in f (EVP_PKEY *), an encrypted one opened with the
 * lines of password_file (may be NULL) tried in turn; NULL after an
 * error reported with f's FILE:LINE. */
void *pv_conf_ssl_load_key(pv_conf_ctx_t *cx, const pv_ssl_file_t *f, const pv_ssl_file_t *password_file);
/* Loads a PEM CRL file (ssl_crl, proxy_ssl_crl) into an SSL_CTX's store and
 * turns on CRL checks of the whole chain; NULL loads nothing. */
int pv_conf_ssl_load_crl(pv_conf_ctx_t *cx, void *ctx, const pv_ssl_file_t *crl);
/* Apply `ssl_conf_command`-style commands to an SSL_CTX, with both roles'
 * commands allowed and file values under the prefix, as NGINX applies
 * them. PV_ERR after an error naming the command's FILE:LINE. */
int pv_conf_ssl_commands(pv_conf_ctx_t *cx, void *ctx, const pv_ssl_cmd_t *cmds, int ncmds);
/* Build s->ssl.ctx when s has certificates. */
int pv_conf_ssl_build(pv_conf_ctx_t *cx, pv_server_t *s);
/* The compression directives (zip_conf.c): gzip_*, gzip_disable, brotli_*. */
extern const pv_conf_module_t pv_conf_zip_module;
extern const pv_conf_module_t pv_conf_ssi_module;
void pv_conf_ssi_init(pv_ssi_conf_t *c);
void pv_conf_ssi_merge(pv_ssi_conf_t *c, const pv_ssi_conf_t *p);
void pv_conf_add_merge(pv_add_conf_t *c, const pv_add_conf_t *p);
void pv_conf_mirror_init(pv_loc_conf_t *lc);
void pv_conf_mirror_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p);
/* The response cache directives (cache_conf.c): proxy_cache_path, proxy_cache_*. */
extern const pv_conf_module_t pv_conf_cache_module;
void pv_conf_pcache_init(pv_pcache_conf_t *c);
/* dflt: the *_cache_key text when none is given (NULL: none) */
void pv_conf_pcache_merge(pv_conf_ctx_t *cx, pv_pcache_conf_t *c, const pv_pcache_conf_t *p, const char *dflt);
/* Make (or keep) the zone of every proxy_cache_path; resolve a location's proxy_cache. */
int pv_conf_cache_finish(pv_conf_ctx_t *cx);
int pv_conf_cache_resolve(pv_conf_ctx_t *cx, pv_location_t *loc);
void pv_conf_zip_init(pv_zip_conf_t *z);
/* `NAME MIME... | *` added to *lp (made with text/html first), lowercase. */
int pv_conf_mime_types(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_mime_list_t **lp);
/* The default types list: text/html alone. */
extern pv_mime_list_t pv_conf_html_only;
/* Fill unset values from the parent level, or NGINX's defaults (p NULL). */
void pv_conf_zip_merge(pv_zip_conf_t *z, const pv_zip_conf_t *p);
/* The sub_filter directives (sub_conf.c). */
extern const pv_conf_module_t pv_conf_sub_module;
void pv_conf_sub_init(pv_sub_conf_t *c);
/* Fill unset values from the parent level, or NGINX's defaults (p NULL),
 * and build the search tables of a level with its own strings. */
void pv_conf_sub_merge(pv_conf_ctx_t *cx, pv_sub_conf_t *c, const pv_sub_conf_t *p);
/* The static file directives (static_conf.c). */
extern const pv_conf_module_t pv_conf_static_module;
/* Set a level's static settings to "inherit". */
void pv_conf_static_init(pv_static_conf_t *s);
/* Fill unset static settings from the parent level, or NGINX's defaults
 * (p NULL: root "html" under the prefix, index.html, the built-in types). */
void pv_conf_static_merge(pv_conf_ctx_t *cx, pv_static_conf_t *c, const pv_static_conf_t *p);
/* The rewrite module's directives (rewrite_conf.c) and map (map_conf.c). */
extern const pv_conf_module_t pv_conf_rewrite_module;
extern const pv_conf_module_t pv_conf_map_module;
extern const pv_conf_module_t pv_conf_geo_module;
/* Before the walk: declare the user variables of set, map and the named
 * captures of every regex, so any directive may use them (NGINX resolves
 * variable names once the whole file is read). */
void pv_conf_rewrite_declare(const pv_conf_node_t *first);
/* Compile a regex as NGINX's ngx_http_regex_compile() does (named groups
 * become user variables); NULL with cx->err written. */
pv_regex_t *pv_conf_regex(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *pat,
                          size_t len, int caseless);
/* After the walk: the user variables' table, and each map's slot. */
int pv_conf_rewrite_finish(pv_conf_ctx_t *cx);
/* Write the compiled value of s into cv; PV_ERR with cx->err written. */
int pv_conf_compile(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_cv_t *cv, const char *s,
                    size_t len);

/* Buffering, temp paths and connection tuning (buffer_conf.c). */
extern const pv_conf_module_t pv_conf_buffer_module;
void pv_conf_buffer_init(pv_loc_conf_t *lc);
void pv_conf_buffer_init_srv(pv_server_t *s);
/* proxy_store, proxy_store_access (store_conf.c); the merge runs before
 * proxy_cache's, which it may turn off. */
extern const pv_conf_module_t pv_conf_store_module;
void pv_conf_store_init(pv_loc_conf_t *lc);
void pv_conf_store_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p);
/* Fill a level's unset values from its parent, or the defaults (p NULL). */
void pv_conf_buffer_merge(pv_conf_ctx_t *cx, pv_loc_conf_t *c, const pv_loc_conf_t *p);
/* A server's values from the http level's (hs: the http-level holder). */
void pv_conf_buffer_merge_srv(pv_server_t *s, const pv_server_t *hs);
/* After merging a level: NGINX's checks of the response buffer sizes. */
int pv_conf_buffer_check(pv_conf_ctx_t *cx, const pv_loc_conf_t *c, const pv_conf_src_t *src);
/* One module's response buffer sizes checked as NGINX checks them. */
int pv_conf_pipe_check(pv_conf_ctx_t *cx, const char *m, int64_t buffer_size, const pv_pipe_conf_t *c,
                       const pv_conf_src_t *src);

/* The residency directives (residency_conf.c) and the check after the
 * merge (residency.c). */
extern const pv_conf_module_t pv_conf_residency_module;
void pv_conf_residency_init(pv_loc_conf_t *lc);
void pv_conf_residency_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p);
/* An ISO 3166-1 alpha-2 code argument of nd into *out, or an error. */
int pv_conf_jurisdiction_arg(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *a, int *out);
/* After every location is merged: resolve the scopes and targets, check
 * the gateway's place and proxy_pass with variables, then refuse any
 * route out of a scope (pv_residency_walk()). */
int pv_conf_residency_finish(pv_conf_ctx_t *cx);

/* Resolve host (numeric or a name, "*" = any IPv4) with port into up to
 * max addresses, IPv4 first; returns the count, 0 if not found. */
int pv_conf_resolve(pv_conf_ctx_t *cx, const char *host, int port, pv_conf_addr_t *out, int max);
/* The address of a unix domain socket at path (len bytes, after
 * "unix:"): NULL, or NGINX's message for a path that cannot be one. */
const char *pv_conf_unix_addr(const char *path, size_t len, pv_conf_addr_t *out);
/* "127.0.0.1:8080" / "[::1]:8080" / "unix:/path" */
void pv_conf_addr_text(const struct sockaddr *sa, char *buf, size_t len);
/* Split "host[:port]" / "[v6][:port]"; host is copied into the arena.
 * Returns 0, or -1 for a bad port; *port is 0 when none was given. */
int pv_conf_split_hostport(pv_arena_t *a, const char *s, size_t len, char **host, int *port);

/* Value parsers (NGINX syntax); each returns -1 on an invalid value. */
int64_t pv_conf_parse_msec(pv_str_t s);
int64_t pv_conf_parse_num(pv_str_t s);
/* Value of "key=value" if arg starts with key=, else NULL. */
const char *pv_conf_param(const char *arg, const char *key);

/* A socket parameter of `listen` (backlog=, rcvbuf=, ipv6only=, ...) into
 * l->sock: PV_OK, PV_ERR (reported), or PV_AGAIN when p is none of them. */
int pv_conf_listen_option(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *p, pv_listen_t *l);
/* `listen ADDRESS[:PORT] [PARAMETER...]` in a server block. */
int pv_conf_listen_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base);

#endif
