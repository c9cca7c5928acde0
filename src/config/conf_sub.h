/* The sub_filter settings of a level (NGINX's ngx_http_sub_filter_module):
 * the patterns and their replacements, the types, once and
 * last_modified. Included by conf.h after conf_content.h. */
#ifndef PV_CONF_SUB_H
#define PV_CONF_SUB_H

struct pv_sub_tables_s;

/* One `sub_filter STRING REPLACEMENT`: the string compiled from its
 * lowercased text (a value without variables is lowercase), the
 * replacement as written. */
typedef struct pv_sub_pair_s {
    pv_cv_t match;
    pv_cv_t value;
} pv_sub_pair_t;

typedef struct pv_sub_conf_s {
    pv_sub_pair_t *pairs;          /* in order; NULL = inherit (none after merging) */
    int npairs;
    int dynamic;                   /* a string has variables: the tables are made per request */
    struct pv_sub_tables_s *tables; /* the strings' search tables when none has variables */
    pv_mime_list_t *types;         /* sub_filter_types; NULL = inherit, default text/html */
    int once;                      /* sub_filter_once; default on */
    int last_modified;             /* sub_filter_last_modified; default off */
} pv_sub_conf_t;

#endif
