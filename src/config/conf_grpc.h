/* The grpc_* settings of a location (ngx_http_grpc_module). Included by
 * conf.h, which defines what they refer to. */
#ifndef PV_CONF_GRPC_H
#define PV_CONF_GRPC_H

/* The grpc_* directives (ngx_http_grpc_module); unset values PV_UNSET / NULL. */
typedef struct pv_grpc_conf_s {
    pv_set_header_t *set_headers;  /* grpc_set_header list; NULL = inherit */
    int nset_headers;
    int64_t connect_timeout;       /* default 60s */
    int64_t read_timeout;          /* default 60s */
    int64_t send_timeout;          /* default 60s */
    int next_upstream;             /* PV_NEXT_F_* mask; default error|timeout */
    int64_t next_upstream_tries;   /* 0: no limit */
    int64_t next_upstream_timeout; /* ms; 0: none */
    int intercept_errors;          /* default off */
    int64_t buffer_size;           /* default 4k: the response's head and each read */
    int socket_keepalive;          /* SO_KEEPALIVE on upstream sockets; default off */
    pv_str_t *hide;                /* grpc_hide_header names */
    int nhide;
    pv_str_t *pass;                /* grpc_pass_header names */
    int npass;
    pv_proxy_ssl_conf_t ssl;       /* grpc_ssl_* (used by grpcs://) */
} pv_grpc_conf_t;

#endif
