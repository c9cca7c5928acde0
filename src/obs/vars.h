/* Variables and compiled values ("complex values" in NGINX's terms).
 * A string such as "$remote_addr, $http_x_real_ip" is compiled once at
 * config load into literal and variable parts, and evaluated per request
 * straight into an output buffer without allocation. */
#ifndef PV_VARS_H
#define PV_VARS_H

#include <stddef.h>
#include <stdint.h>
#include "../core/common.h"
#include "../core/arena.h"

struct pv_request_s;

/* escaping applied to variable values when evaluating (log_format escape=) */
enum { PV_ESCAPE_NONE = 0, PV_ESCAPE_DEFAULT, PV_ESCAPE_JSON };

/* One piece of a compiled value. */
typedef struct pv_cv_part_s {
    uint16_t var;   /* 0 = literal; else a PV_VAR_* id */
    pv_str_t text;  /* literal text, or for PV_VAR_HTTP the header name
                       ("x-real-ip" form: lowercase, '_' already turned to '-') */
} pv_cv_part_t;

typedef struct pv_cv_s {
    pv_cv_part_t *parts; /* in order */
    int nparts;
    int is_const;        /* no variables: parts[0].text is the whole value */
} pv_cv_t;

/* Variable ids. */
enum {
    PV_VAR_NONE = 0,
    PV_VAR_REMOTE_ADDR,
    PV_VAR_REMOTE_PORT,
    PV_VAR_BINARY_REMOTE_ADDR,
    PV_VAR_PROXY_ADD_X_FORWARDED_FOR,
    PV_VAR_HOST,
    PV_VAR_HTTP,            /* $http_NAME: request header */
    PV_VAR_SENT_HTTP,       /* $sent_http_NAME: response header sent */
    PV_VAR_SCHEME,
    PV_VAR_REQUEST_URI,
    PV_VAR_URI,
    PV_VAR_DOCUMENT_URI,
    PV_VAR_ARGS,
    PV_VAR_QUERY_STRING,
    PV_VAR_IS_ARGS,
    PV_VAR_ARG,             /* $arg_NAME */
    PV_VAR_REQUEST_METHOD,
    PV_VAR_REQUEST,         /* request line */
    PV_VAR_REQUEST_ID,
    PV_VAR_SERVER_PORT,
    PV_VAR_SERVER_ADDR,
    PV_VAR_SERVER_NAME,
    PV_VAR_SERVER_PROTOCOL,
    PV_VAR_PROXY_HOST,
    PV_VAR_PROXY_PORT,
    PV_VAR_UPSTREAM_ADDR,
    PV_VAR_UPSTREAM_STATUS,
    PV_VAR_STATUS,
    PV_VAR_REQUEST_TIME,
    PV_VAR_UPSTREAM_RESPONSE_TIME,
    PV_VAR_UPSTREAM_CONNECT_TIME,
    PV_VAR_TIME_ISO8601,
    PV_VAR_TIME_LOCAL,
    PV_VAR_MSEC,
    PV_VAR_BODY_BYTES_SENT,
    PV_VAR_BYTES_SENT,
    PV_VAR_REQUEST_LENGTH,
    PV_VAR_CONTENT_LENGTH,
    PV_VAR_CONTENT_TYPE,
    PV_VAR_REMOTE_USER,
    PV_VAR_CONNECTION,
    PV_VAR_CONNECTION_REQUESTS,
    PV_VAR_PID,
    PV_VAR_HOSTNAME,
    PV_VAR_NGINX_VERSION,
    PV_VAR_UPSTREAM_HTTP,   /* $upstream_http_NAME: upstream response header */
    PV_VAR_CONSUMER,        /* $consumer: API key owner */
    PV_VAR_JWT_CLAIM,       /* $jwt_claim_NAME */
    PV_VAR_JWT_HEADER,      /* $jwt_header_NAME */
    PV_VAR_LIMIT_REQ_STATUS,
    PV_VAR_LIMIT_CONN_STATUS,
    PV_VAR_USER,            /* a variable declared by auth_request_set; text = name */
    PV_VAR__COUNT
};

/* Declare a variable name that directives such as auth_request_set
 * create, so pv_cv_compile() accepts it anywhere in the same config (NGINX
 * resolves variable names after the whole file is read). Cleared by
 * pv_cv_declared_reset(); config loading is single-threaded. */
void pv_cv_declare(const char *name, size_t len);
void pv_cv_declared_reset(void);
/* Compile src into cv (allocating from arena). Recognises $name and
 * ${name}. Unknown variables are an error: returns PV_ERR and writes a
 * message ("unknown \"foo\" variable") into err. */
int pv_cv_compile(pv_cv_t *cv, pv_arena_t *arena, const char *src, size_t len,
                  char *err, size_t errlen);

/* Evaluate into out[0..cap). Returns the full length the value needs
 * (like snprintf): if it is > cap the output was truncated and the
 * caller should retry with a larger buffer. */
size_t pv_cv_eval(const pv_cv_t *cv, struct pv_request_s *r, int escape, char *out, size_t cap);

/* Value of a single variable (no escaping). Returns a slice that is valid
 * until the request ends; scratch (at least 64 bytes) may be used for
 * values that have to be formatted. A missing value is an empty slice. */
pv_str_t pv_var_get(struct pv_request_s *r, const pv_cv_part_t *part, char *scratch, size_t scratchlen);

#endif
