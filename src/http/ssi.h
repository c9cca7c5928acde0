/* Server Side Includes (NGINX's ngx_http_ssi_filter_module): a body
 * filter (bfilter.h) that parses the commands of a response whose
 * location has `ssi on` and a type in ssi_types, and puts out the text,
 * the commands' output and the bodies of included subrequests
 * (subreq.h), in document order. ssi.c holds the filter, its output
 * queue and `include`; ssi_cmd.c the other commands and the variables. */
#ifndef PV_HTTP_SSI_H
#define PV_HTTP_SSI_H

#include "../config/conf.h"
#include "bfilter.h"
#include "ssi_parse.h"
#include "subreq.h"

extern const pv_bfilter_module_t pv_ssi_bfilter;

/* ---- between ssi.c and ssi_cmd.c ------------------------------------------ */

struct pv_hreq_s;

typedef struct pv_ssi_var_s {
    pv_str_t name, value;
    struct pv_ssi_var_s *next;
} pv_ssi_var_t;

typedef struct pv_ssi_chunk_s {
    pv_str_t text;
    struct pv_ssi_chunk_s *next;
} pv_ssi_chunk_t;

typedef struct pv_ssi_block_s {
    pv_str_t name;
    pv_ssi_chunk_t *first, *last;
    struct pv_ssi_block_s *next;
} pv_ssi_block_t;

/* What a request and all its subrequests share (NGINX keeps it in the
 * main request's context): `set` variables, blocks, the last regex
 * match of an `if`. In the main request's arena. */
typedef struct pv_ssi_shared_s {
    pv_ssi_var_t *vars;
    pv_ssi_block_t *blocks, *last_block;
    size_t *caps;          /* start and end of each group */
    int ncaps;             /* entries in caps */
    const char *caps_data; /* the subject */
} pv_ssi_shared_t;

/* An entry of the output queue: text, or an included subrequest. */
typedef struct pv_ssi_item_s {
    uint8_t kind;                  /* PV_SSI_IT_* */
    pv_str_t text;
    pv_subreq_t *sub;
    pv_ssi_block_t *stub;          /* include stub=: put out when the subrequest fails or is empty */
    struct pv_ssi_item_s *next;
} pv_ssi_item_t;
#define PV_SSI_IT_TEXT 0
#define PV_SSI_IT_SUB 1

#define PV_SSI_ENC_NONE 0
#define PV_SSI_ENC_URL 1
#define PV_SSI_ENC_ENTITY 2

/* A request's filter state. */
typedef struct pv_ssi_s {
    pv_bfilter_t f;                /* first: the chain's part */
    struct pv_hreq_s *hr;
    const pv_ssi_conf_t *conf;
    pv_ssi_shared_t *m;
    pv_ssi_parser_t p;
    /* input taken and not parsed yet (valid until it is all out) */
    pv_str_t *in;
    int nin, incap, in_i;
    size_t in_off;
    /* output in document order */
    pv_ssi_item_t *head, *tail, *spare;
    int handed;                    /* the head subrequest's spans were put out */
    pv_subreq_t *wait;             /* parsing waits for it (wait="yes", set=, file=) */
    pv_str_t *wait_var;            /* set=: the variable its body goes into */
    /* the commands' state */
    uint8_t output, output_chosen, conditional, block, encoding;
    pv_str_t errmsg, timefmt;
    pv_str_t content_type;         /* the response's (a stub's, include stub=) */
    const char *cmd_params[PV_SSI_PARAMS_MAX + 1]; /* scratch */
} pv_ssi_t;

/* The command table's `conditional` levels. */
#define PV_SSI_COND_IF 1
#define PV_SSI_COND_ELSE 2

/* Put text out, or into the block being defined; errmsg for a failed
 * command. PV_OK or PV_ERR (memory). */
int pv_ssi_text(pv_ssi_t *s, pv_str_t t);
int pv_ssi_error_out(pv_ssi_t *s);
/* Evaluate a parameter value (PV_SSI_ADD_PREFIX for include's URI) into
 * the request arena. PV_OK, or PV_ERR (logged). */
int pv_ssi_evaluate(pv_ssi_t *s, pv_str_t in, int flags, pv_str_t *out);
/* A `set` variable's value slot (NULL when none), or a new one. */
pv_str_t *pv_ssi_var(pv_ssi_t *s, pv_str_t name, int create);
/* Run the command the parser has just read. */
void pv_ssi_command(pv_ssi_t *s);
/* include (ssi.c): 0 done, 1 parsing waits, -1 error (errmsg). */
int pv_ssi_include(pv_ssi_t *s, const pv_str_t *const *params);

#endif
