/* The request model: what the server side parsed and what later phases
 * (router, proxy, variables, access log) read. One lives per request in
 * the connection's request arena; slices point into the connection's head
 * buffer, which stays put until the request ends. */
#ifndef PV_REQUEST_H
#define PV_REQUEST_H

#include <stdint.h>
#include <sys/socket.h>
#include "../core/common.h"
#include "../core/arena.h"

struct pv_server_s;
struct pv_location_s;
struct pv_conf_s;

/* How a message body is delimited, for requests and responses alike. */
enum {
    PV_FRAME_NONE = 0, /* no body */
    PV_FRAME_LENGTH,   /* Content-Length */
    PV_FRAME_CHUNKED,  /* Transfer-Encoding: chunked */
    PV_FRAME_CLOSE     /* until the connection closes (responses; a request body after a 101) */
};

typedef struct pv_header_s {
    pv_str_t name;  /* as received */
    pv_str_t value; /* OWS trimmed */
} pv_header_t;

/* The status logged for a request the client closed before an answer
 * left (NGINX's NGX_HTTP_CLIENT_CLOSED_REQUEST); never sent. */
#define PV_HTTP_CLIENT_CLOSED 499
#define PV_HTTP_CLOSE 444          /* NGINX's code for "close the connection, answer nothing" */

/* PV_REQ_F_*: facts about the request found while parsing. */
#define PV_REQ_F_CHUNKED 0x01         /* Transfer-Encoding: chunked */
#define PV_REQ_F_HAS_CL 0x02          /* a valid Content-Length was given */
#define PV_REQ_F_KEEPALIVE 0x04       /* the client wants the connection kept */
#define PV_REQ_F_EXPECT_CONTINUE 0x08 /* Expect: 100-continue */
#define PV_REQ_F_ABSOLUTE_FORM 0x10   /* target was http://host/path */
#define PV_REQ_F_HEAD 0x20            /* method HEAD: no response body */
#define PV_REQ_F_HTTP09 0x40          /* HTTP/0.9 (no version): answered without a head */
#define PV_REQ_F_UPGRADE 0x200        /* may switch protocols: an HTTP/1.1 request with Upgrade */
#define PV_REQ_F_REWRITTEN 0x80       /* `rewrite` changed the URI: the target as received no
                                         longer applies, internal locations may serve it */
#define PV_REQ_F_LOC_INVALID 0x100    /* `rewrite ... break`: the proxy_pass URI part no longer
                                         replaces the location's prefix (NGINX's valid_location) */
#define PV_REQ_F_ARGS_SET 0x4000      /* $args was set (`set`, auth_request_set): the target as
                                         received no longer goes upstream (NGINX's valid_unparsed_uri) */
#define PV_REQ_F_BODY_DROPPED 0x400   /* error_page redirected the request: its body is not passed on */
#define PV_REQ_F_ACCESS_DONE 0x800    /* an internal redirect after the access phase ran: its limits not again */

#define PV_REQ_F_RES_ANON 0x1000      /* the request entered a residency scope whose logs anonymise
                                         the client's address */
#define PV_REQ_F_LOG_ANON 0x2000      /* while its log line is written: $remote_addr and
                                         $realip_remote_addr give the anonymised address */
#define PV_REQ_F_GZIP_VARY 0x10000    /* gzip_static found a .gz file: gzip_vary applies (NGINX's
                                         r->gzip_vary) */
#define PV_REQ_F_NO_UPSTREAM 0x40000 /* the proxy handler was kept for an `if` block without
                                         proxy_pass (NGINX's content handler): 500 */
#define PV_REQ_F_PIPELINED 0x20000   /* its first bytes were buffered when the request before it
                                         on the connection ended ($pipe, NGINX's r->pipeline) */
#define PV_REQ_F_ADD_URI_TO_ALIAS 0x8000 /* try_files found a file under a regex location's alias:
                                         the URI is appended to it (NGINX's add_uri_to_alias) */

/* $upstream_cache_status values */
enum {
    PV_CACHE_NONE = 0, PV_CACHE_MISS, PV_CACHE_BYPASS, PV_CACHE_EXPIRED, PV_CACHE_STALE,
    PV_CACHE_UPDATING, PV_CACHE_REVALIDATED, PV_CACHE_HIT, PV_CACHE_N
};

/* A user variable's value in a request (set, map, named captures). */
typedef struct pv_uval_s {
    const char *p;
    uint32_t len;
    uint8_t state;  /* PV_UVAL_* */
} pv_uval_t;
enum { PV_UVAL_NONE = 0, PV_UVAL_SET, PV_UVAL_BUSY };

typedef struct pv_request_s {
    pv_arena_t *arena;          /* per-request arena (reset when it ends) */
    struct pv_conf_s *conf;     /* snapshot this request runs on */
    struct pv_server_s *srv;    /* chosen virtual server */
    struct pv_location_s *loc;  /* chosen location; NULL if none matched */

    /* connection facts */
    const struct sockaddr *peer;    /* client address */
    char peer_text[48];             /* "127.0.0.1" / "::1" */
    uint16_t peer_port;             /* client port */
    struct pv_realip_s *realip;     /* the connection's address when realip changed peer; else NULL */
    const char *local_text;         /* server address text (owned by the config) */
    uint16_t local_port;            /* port the request arrived on */
    uint64_t conn_id;               /* connection serial number */
    uint32_t conn_requests;         /* requests so far on this connection, this one included */
    uint64_t conn_start_ns;         /* the loop's clock (ns) when the connection began ($connection_time) */
    const struct pv_xprt_s *xprt;   /* the connection's transport (TLS facts for $https, $ssl_*) */

    /* request line */
    pv_str_t method;        /* "GET" */
    int method_id;          /* llhttp method number */
    pv_str_t request_line;  /* whole first line without CRLF */
    pv_str_t request_uri;   /* target as received (origin-form part for absolute-form) */
    pv_str_t uri;           /* normalised, percent-decoded path (arena) */
    pv_str_t args;          /* query string without '?' (points into request_uri) */
    int has_args;           /* '?' was present */
    int http_major, http_minor;

    /* header fields in arrival order */
    pv_header_t *headers;
    int nheaders;
    pv_str_t host;          /* Host without port, lowercased (arena); from the
                               absolute-form target when there is one */
    int64_t content_length; /* -1 if none */
    unsigned flags;         /* PV_REQ_F_* */

    /* proxying facts (for variables and logs) */
    pv_str_t proxy_host;        /* $proxy_host */
    pv_str_t accel_type;        /* the Content-Type of a response that X-Accel-Redirect replaced: the
                                   type of a file, text or proxied response without one of its own */
    pv_str_t accel_charset;     /* an upstream's X-Accel-Charset: the charset to recode into */
    pv_str_t proxy_uri;         /* proxy_pass with variables: its evaluated URI part, sent as is */
    char upstream_addr[256];    /* "$upstream_addr": addresses tried, ", "-separated */
    char upstream_status[64];   /* statuses of the tries */
    uint8_t cache_status;       /* PV_CACHE_* for $upstream_cache_status; 0: the cache was not involved */
    struct pv_pcache_s *pcache; /* the response cache's state for the request (proxy/pcache.h) */
    const struct pv_cache_path_s *cache_zone; /* the zone it was looked up in (the metrics), NULL: none */

    /* response facts */
    int status;                  /* status sent to the client (0 before) */
    uint64_t body_bytes_sent;    /* response body bytes sent to the client */
    uint64_t bytes_sent;         /* all bytes sent to the client */
    uint64_t request_length;     /* bytes of request line, head and body read */
    int64_t limit_rate;          /* $limit_rate: bytes per second to the client (0: no limit) */
    int64_t limit_rate_after;    /* bytes sent before it applies */
    uint8_t limit_rate_set;      /* set by `set $limit_rate` or X-Accel-Limit-Rate: the location's is not taken */
    uint8_t allow_ranges;        /* the handler lets the range filter answer a Range from the body
                                    as it streams (brange.h; NGINX's allow_ranges, single_range) */
    uint8_t notmod_off;          /* a 200 is not tested against the preconditions as its head goes out
                                    (notmod.h; NGINX's disable_not_modified): an upstream's answer the
                                    cache may not store, or one its handler tested itself */
    pv_str_t request_body;       /* $request_body: the body read whole into memory ({NULL, 0}: none) */
    const char *request_body_file; /* $request_body_file: its temp file, or NULL */
    pv_header_t *resp_headers;   /* response header fields sent (for $sent_http_) */
    int nresp_headers;
    pv_str_t sent_head;          /* or the HTTP/1 head sent, indexed into them on first use */
    pv_str_t sent_trailers;      /* trailer lines made so far ("name: value\n"), for $sent_trailer_ */

    /* access phase facts */
    pv_header_t *upstream_headers; /* last upstream response head (for $upstream_http_) */
    int nupstream_headers;
    pv_str_t consumer;             /* $consumer: owner of the API key presented */
    pv_str_t hide_header;          /* a client field not to forward (the API key header) */
    pv_str_t upstream_method;      /* method sent upstream when not the client's (auth subrequest: GET) */
    const struct pv_jwt_s *jwt;    /* verified token (for $jwt_claim_ and $jwt_header_) */
    pv_header_t *uvars;            /* auth_request_set variables: name, value */
    int nuvars;
    const char *limit_req_status;  /* $limit_req_status; NULL when no limit applied */
    const char *limit_conn_status; /* $limit_conn_status */

    /* rewrite module and map */
    pv_uval_t *uvals;              /* user variables by slot (arena); NULL before the first */
    size_t *captures;              /* the last regex match: start and end of each group */
    int ncaptures;                 /* entries in captures (2 per group, as NGINX counts) */
    const char *captures_data;     /* the subject they index */
    int uri_changes;               /* URI changes and internal redirects so far (at most 10) */
    int err_status;                /* error_page: the status the final response is sent with (0: its own) */
    pv_str_t err_location;         /* error_page: the Location of the redirect it answers */
    uint8_t error_page;            /* an error_page redirect happened (recursive_error_pages off: no more) */
    int uri_changed;               /* the URI changed: find the location again */

    /* data residency (phases.c): the last scope the request entered and
     * where it may go, that scope's set or, after scopes that differ, the
     * arena's intersection of theirs; NULL before any */
    const struct pv_residency_s *res_scope;
    const struct pv_jurset_s *res_allow;

    uint64_t start_ns;           /* monotonic time the first byte arrived */
    int64_t start_wall_ms;       /* wall-clock time of the same (for logs) */
    char request_id[33];         /* 32 hex chars, made on first use ("" before) */
    pv_str_t rid;                /* $request_id: request_id, or the client's trusted one ({NULL, 0} before) */
    struct pv_trace_s *trace;    /* W3C trace context (trace.c), made on first use */
    struct pv_utry_s *utries;    /* upstream tries, NGINX's upstream states (timing.c): utry0, */
    struct pv_utry_s {           /* then an arena array when there are more */
        uint64_t start_ns;       /* when the try began (the loop's clock) */
        uint64_t connect_ns;     /* when it got there; 0: not reached */
        uint64_t header_ns;
        uint64_t end_ns;
        uint8_t redirect;        /* an internal redirect came before this try (" : ") */
        uint64_t sent;           /* bytes written to the upstream ($upstream_bytes_sent) */
        uint64_t received;       /* bytes read from it ($upstream_bytes_received) */
        uint64_t head;           /* of those, the response head's; 0 before it is whole */
    } utry0, *utry;              /* utry: the last try, NULL before the first */
    uint16_t nutries, cutries;   /* tries recorded, room */
} pv_request_t;

/* Look up the first request header with this name (case-insensitive). */
const pv_header_t *pv_request_header(const pv_request_t *r, const char *name, size_t len);

/* The client's address as an error log line names it ("client: %s"):
 * its /24 or /48 once the request entered a residency scope that
 * anonymises (residency_log_addr), else the address. The text lives in
 * a per-thread buffer until the next call. */
const char *pv_log_client(const pv_request_t *r);

#endif
