/* The fastcgi_* settings of a location (ngx_http_fastcgi_module).
 * Included by conf.h, which defines what they refer to. */
#ifndef PV_CONF_FASTCGI_H
#define PV_CONF_FASTCGI_H

/* One fastcgi_param line. */
typedef struct pv_fcgi_param_s {
    pv_str_t name;
    pv_cv_t value;
    int if_not_empty;              /* sent only when the value is not empty */
} pv_fcgi_param_t;

/* The fastcgi_* directives; unset values PV_UNSET / NULL. */
typedef struct pv_fastcgi_conf_s {
    pv_fcgi_param_t *params;       /* fastcgi_param list; NULL = inherit (as a whole, as NGINX) */
    int nparams;
    int64_t connect_timeout;       /* default 60s */
    int64_t read_timeout;          /* default 60s */
    int64_t send_timeout;          /* default 60s */
    int next_upstream;             /* PV_NEXT_F_* mask; default error|timeout */
    int64_t next_upstream_tries;   /* 0: no limit */
    int64_t next_upstream_timeout; /* ms; 0: none */
    int intercept_errors;          /* default off */
    int keep_conn;                 /* FCGI_KEEP_CONN: the connection may go back to the pool; default off */
    int pass_request_headers;      /* HTTP_* params from the request's fields; default on */
    int pass_request_body;         /* the body as STDIN; default on */
    int request_buffering;         /* the whole body read before a responder is asked; default on */
    int64_t buffer_size;           /* default 4k: the response's head at most, and each read */
    int buffering;                 /* fastcgi_buffering; default on */
    int ignore;                    /* fastcgi_ignore_headers PV_IGN_* bits; default none */
    int buffers_num;               /* fastcgi_buffers N SIZE; default 8 4k */
    int64_t buffers_size;
    int64_t busy_buffers_size;     /* as written; PV_UNSET: twice the larger of buffer_size and SIZE */
    int64_t temp_file_write_size;  /* as written; same default */
    int64_t max_temp_file_size;    /* default 1024m; 0: no temp file */
    int64_t limit_rate;            /* fastcgi_limit_rate; default 0: none */
    pv_pipe_conf_t pipe;           /* the buffering settings in effect (merge; temp_path: fastcgi_temp_path) */
    const struct pv_bind_conf_s *bind; /* fastcgi_bind; NULL: none (off, or unset) */
    int bind_set;                  /* fastcgi_bind given at this level (off too) */
    int socket_keepalive;          /* fastcgi_socket_keepalive: SO_KEEPALIVE; default off */
    pv_str_t *hide;                /* fastcgi_hide_header names */
    int nhide;
    pv_str_t *pass;                /* fastcgi_pass_header names */
    int npass;
    pv_str_t *catch_stderr;        /* fastcgi_catch_stderr strings */
    int ncatch_stderr;
    pv_str_t index;                /* fastcgi_index; NULL p: unset */
    struct pv_regex_s *split;      /* fastcgi_split_path_info; NULL: unset */
    int split_set;
    int ignore_client_abort;       /* default off: a client gone before the answer ends the exchange */
    int force_ranges;              /* default off: byte ranges whatever the responder's Accept-Ranges */
    pv_store_conf_t store;         /* fastcgi_store, fastcgi_store_access */
} pv_fastcgi_conf_t;

#endif
