/* The charset settings (ngx_http_charset_module): the charsets the
 * configuration names, the charset_map tables between them, and a
 * level's charset, source_charset, override_charset and charset_types.
 * Included by conf.h; the directives are charset_conf.c's. */
#ifndef PV_CONF_CHARSET_H
#define PV_CONF_CHARSET_H

#include <stdint.h>

#include "../core/common.h"
#include "cv.h"

#define PV_CHARSET_OFF (-2) /* charset off; source_charset unset */
#define PV_CHARSET_NONE (-3) /* a name no directive gave: no map can recode it */
#define PV_CHARSET_VAR (-4)  /* the name is a variable's value */

/* A charset_map: a byte table both ways, or (to utf-8) each byte's UTF-8
 * text and, back, a code point's byte by its high byte's page. */
typedef struct pv_charset_map_s {
    int from, to;            /* charset indexes */
    uint8_t *fwd, *back;     /* byte maps: 256 bytes each way */
    uint8_t *u8;             /* to utf-8: 256 x 4 (length, then up to 3 bytes) */
    uint8_t **pages;         /* from utf-8: 256 pages of 256 (NULL: none); 0 maps nothing */
} pv_charset_map_t;

/* Every charset the http block names (charset_map, charset,
 * source_charset), as first written; names match without case. */
typedef struct pv_charsets_s {
    pv_str_t *names;
    uint8_t *utf8;           /* 1: the name is utf-8 */
    int n;
    pv_charset_map_t *maps;
    int nmaps;
} pv_charsets_t;

/* A level's charset settings; unset values PV_UNSET / NULL. */
typedef struct pv_charset_conf_s {
    int charset;             /* an index, PV_CHARSET_OFF or _VAR; default off */
    int source;              /* the same for source_charset; default off */
    pv_cv_t *charset_var;    /* charset $NAME */
    pv_cv_t *source_var;     /* source_charset $NAME */
    int override;            /* override_charset; default off */
    pv_str_t *types;         /* charset_types, lower case; NULL: inherit */
    int ntypes;              /* -1: `*` (any type) */
} pv_charset_conf_t;

/* The index of name among cs's charsets, or PV_CHARSET_NONE. */
int pv_charset_find(const pv_charsets_t *cs, pv_str_t name);
/* The map from one charset to another: its table in *fwd (a byte map,
 * or the utf-8 side's), with *dir 1 when `to` is utf-8, -1 when `from`
 * is, 0 for bytes; NULL when there is none. */
const pv_charset_map_t *pv_charset_map_find(const pv_charsets_t *cs, int from, int to, int *dir);

#endif
