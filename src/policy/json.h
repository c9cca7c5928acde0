/* Strict RFC 8259 JSON parser for the authentication code (JWT headers and
 * claims, JSON Web Key Sets). The document is parsed into a flat array of
 * nodes that the caller provides (count them first with pv_json_count), so
 * a parse costs no allocation of its own and values are slices of the
 * text: nothing is copied until a string with escapes is asked for.
 *
 * Strictness, because two parsers that read one token differently are how
 * JWT checks get bypassed: only the four RFC whitespace bytes; numbers as
 * the RFC grammar has them (no leading zeros, no '+', no NaN); strings
 * must be valid UTF-8 with no raw control characters, and \u escapes must
 * pair surrogates; nothing may follow the top-level value; nesting is
 * limited by the caller. Duplicate member names in one object are
 * REJECTED (RFC 7515 section 5.2 lets a JOSE parser choose between
 * rejecting and last-wins; rejecting leaves no room for disagreement).
 * Names are compared after unescaping, so {"a":1,"\u0061":2} is a
 * duplicate too. */
#ifndef PV_JSON_H
#define PV_JSON_H

#include <stdint.h>
#include "../core/common.h"

#define PV_JSON_DEPTH_MAX 256 /* hard ceiling on the caller's nesting limit (stack use) */
#define PV_JSON_NUMBER_MAX 400 /* longest number literal pv_json_double converts */

/* The type of a node. */
typedef enum pv_json_type_e {
    PV_JSON_NULL,
    PV_JSON_FALSE,
    PV_JSON_TRUE,
    PV_JSON_NUMBER,
    PV_JSON_STRING,
    PV_JSON_ARRAY,
    PV_JSON_OBJECT,
} pv_json_type_t;

#define PV_JSON_F_ESCAPED 0x01 /* string: has backslash escapes, so it must be unescaped to be read */
#define PV_JSON_F_INTEGER 0x02 /* number: no fraction and no exponent */

/* One value. Nodes are in document order: a container's children follow
 * it; an object's children alternate name (a string node) and value. */
typedef struct pv_json_node_s {
    uint8_t type;   /* pv_json_type_t */
    uint8_t flags;  /* PV_JSON_F_* */
    uint32_t next;  /* index of the next sibling, 0 for the last one (the root is never a sibling) */
    uint32_t count; /* array: elements; object: members (name/value pairs); scalars: 0 */
    uint32_t off;   /* offset of the value in the text; for strings, of the first byte after the quote */
    uint32_t len;   /* bytes of the value; strings without their quotes, containers through the bracket */
} pv_json_node_t;

/* A parsed document: the text (not copied, it must outlive the document)
 * and the caller's node array. */
typedef struct pv_json_s {
    const char *text;      /* the parsed text */
    size_t len;            /* its length */
    pv_json_node_t *nodes; /* nodes[0] is the root value */
    uint32_t n;            /* nodes in use */
    const char *err;       /* after a failed parse: a short constant message */
    size_t erroff;         /* after a failed parse: the byte offset where it failed */
} pv_json_t;

/* Number of nodes pv_json_parse needs for text; exact when the text is
 * valid JSON (an invalid text may need fewer or more, and then fails). */
size_t pv_json_count(const char *text, size_t len);

/* Parse text[0..len) into nodes[0..cap); max_depth limits the nesting of
 * arrays and objects (1 = no container inside the top level one). Returns
 * PV_OK, or PV_ERR with d->err and d->erroff set. */
int pv_json_parse(pv_json_t *d, const char *text, size_t len, pv_json_node_t *nodes, size_t cap,
                  unsigned max_depth);

/* 1-based line of a byte offset in text, for "FILE:LINE" messages. */
unsigned pv_json_line(const char *text, size_t len, size_t off);

/* The root value of a parsed document. */
const pv_json_node_t *pv_json_root(const pv_json_t *d);

/* First child of an array (its first element) or object (its first member
 * name); NULL when empty or not a container. */
const pv_json_node_t *pv_json_first(const pv_json_t *d, const pv_json_node_t *n);

/* Next sibling, NULL after the last. In an object the sibling of a name
 * is its value and the sibling of a value is the next name. */
const pv_json_node_t *pv_json_next(const pv_json_t *d, const pv_json_node_t *n);

/* Value of the member of obj called name[0..nlen) (compared with the
 * unescaped member name), or NULL if obj is not an object or has none. */
const pv_json_node_t *pv_json_get(const pv_json_t *d, const pv_json_node_t *obj, const char *name,
                                  size_t nlen);

/* 1 if n is a string whose unescaped value is s[0..len), else 0. */
int pv_json_streq(const pv_json_t *d, const pv_json_node_t *n, const char *s, size_t len);

/* The unescaped value of string node n. Without escapes *out points into
 * the text and buf is not touched; with escapes the value is written to
 * buf[0..cap) (not NUL-terminated). PV_ERR if n is not a string or the
 * value does not fit. The value may contain any byte, NUL included. */
int pv_json_str(const pv_json_t *d, const pv_json_node_t *n, char *buf, size_t cap, pv_str_t *out);

/* Unescaped length of string node n (the buf size pv_json_str needs). */
size_t pv_json_strlen(const pv_json_t *d, const pv_json_node_t *n);

/* The value's JSON text exactly as it appears in the document (strings
 * with their quotes and escapes). */
pv_str_t pv_json_raw(const pv_json_t *d, const pv_json_node_t *n);

/* Integer value of number node n: PV_ERR unless it has no fraction or
 * exponent and fits int64_t. */
int pv_json_int64(const pv_json_t *d, const pv_json_node_t *n, int64_t *v);

/* Value of number node n as a double (may be +-HUGE_VAL when out of
 * range); PV_ERR if n is not a number or is longer than PV_JSON_NUMBER_MAX. */
int pv_json_double(const pv_json_t *d, const pv_json_node_t *n, double *v);

#endif
