/* The rewrite module's script engine: runs the scripts config/rewrite_conf.c
 * compiled for a server (server rewrite phase) and a location (rewrite
 * phase), and sends a request whose URI changed back to the location
 * search. */
#ifndef PV_SCRIPT_H
#define PV_SCRIPT_H

#include "../config/conf.h"
#include "request.h"

/* What a script did. */
enum { PV_SCRIPT_NEXT = 0, PV_SCRIPT_ANSWER };

/* The answer a script gives (return, a redirect, an error). */
typedef struct pv_script_out_s {
    int code;        /* status */
    const char *url; /* a redirect's Location (relative ones start with '/'), else NULL */
    pv_str_t body;   /* return's text for other codes */
    int has_text;    /* 0: the code alone (the error page for 400 and above) */
} pv_script_out_t;

/* Run script s for r, lc being the configuration it runs under (its
 * rewrite_log). Changes r's URI, args, user variables, captures, and its
 * location when a location's if holds; PV_SCRIPT_ANSWER with *out filled
 * when the request is to be answered now. */
/* Set $args (slot -1) or $limit_rate (PV_RW_SLOT_LIMIT_RATE) as their
 * NGINX set handlers do: `set` and auth_request_set. */
void pv_script_set_builtin(pv_request_t *r, int slot, pv_str_t v);
int pv_script_run(pv_request_t *r, const pv_script_t *s, const pv_loc_conf_t *lc,
                  pv_script_out_t *out);

/* The phases a subrequest goes through before its content (NGINX's
 * subrequests start at server rewrite): the server's script, then the
 * location search and the location's script until the URI stays. Sets
 * sr->loc (NULL: none); PV_SCRIPT_ANSWER when a script answered. */
int pv_script_subrequest(pv_request_t *sr, pv_script_out_t *out);

/* Register the server rewrite and rewrite phase handlers (start-up). */
void pv_script_init(void);

#endif
