/* sub_filter's matcher: NGINX's search of a response body for several
 * strings at once, streaming. Patterns are lowercase and compared with
 * the body's bytes lowercased (ASCII). At each position, leftmost first,
 * the patterns are tried in NGINX's order (by their byte at the shortest
 * pattern's last place, then as written); the first that matches is
 * replaced and the search goes on after it. A position only starts to be
 * tried once the shortest pattern's length is there; a Horspool shift
 * table over those bytes skips the positions no pattern can start at.
 *
 * A pattern that runs past the end of the input waits for more: those
 * bytes are held, at most the longest pattern's length less one, and the
 * search resumes there with the same pattern. At the end of the body a
 * waiting match is given up and the held bytes go out as they are, as
 * NGINX does. Bytes at the end of an input that no pattern can start at
 * go out at once (NGINX's flush). So the output does not depend on how
 * the body is cut. No allocation: the caller gives the room. */
#ifndef PV_HTTP_SUBMATCH_H
#define PV_HTTP_SUBMATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define PV_SUB_MAX_PATTERNS 255 /* NGINX's limit per level */

/* The patterns of one level (or of one request, with variables). */
typedef struct pv_sub_tables_s {
    const pv_str_t *pat; /* lowercase, non-empty, in NGINX's order */
    const uint8_t *orig; /* pat[i] is the orig[i]'th as written */
    int n;
    size_t min, max;     /* shortest and longest length */
    uint8_t index[257];  /* pat[index[c]..index[c+1]) have c at min-1 */
    size_t shift[256];   /* how far the byte c at min-1 lets the search skip */
} pv_sub_tables_t;

/* Order n patterns (lowercase, non-empty, n 1..255) and build t over
 * them; pat and orig are the caller's room for n entries each. */
void pv_sub_tables_build(pv_sub_tables_t *t, const pv_str_t *in, int n, pv_str_t *pat, uint8_t *orig);

/* What the matcher puts out. */
enum {
    PV_SUB_INPUT = 0, /* p[0..n) of the input given: it stays valid */
    PV_SUB_HELD,      /* p[0..n) of held bytes: copy them now */
    PV_SUB_REPLACE    /* the replacement of the pattern written n'th (0-based) */
};
typedef int (*pv_sub_emit_pt)(void *ctx, int kind, const char *p, size_t n);

typedef struct pv_sub_match_s {
    const pv_sub_tables_t *t;
    char *hold;       /* t->max bytes */
    size_t hlen;
    int resume;       /* the pattern a match waiting at hold[0] goes on with */
    int once;         /* sub_filter_once: each pattern replaced once */
    int applied;      /* patterns replaced (once) */
    uint8_t *done;    /* t->n flags: pat[i] was replaced (once) */
    uint8_t passing;  /* once, and every pattern replaced: the rest passes */
} pv_sub_match_t;

/* hold: t->max bytes; done: t->n bytes. */
void pv_sub_match_init(pv_sub_match_t *m, const pv_sub_tables_t *t, int once, char *hold, uint8_t *done);
/* Search p[0..n) after what came before. PV_OK, or what emit answered
 * when not PV_OK. */
int pv_sub_feed(pv_sub_match_t *m, const char *p, size_t n, pv_sub_emit_pt emit, void *ctx);
/* The body ended: the held bytes go out. */
int pv_sub_end(pv_sub_match_t *m, pv_sub_emit_pt emit, void *ctx);

#endif
