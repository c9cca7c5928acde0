/* The lookup structures of the geo module (ngx_http_geo_module): a binary
 * radix tree of network prefixes (IPv4 and IPv6, longest match wins) and
 * the `ranges` table of IPv4 address ranges, kept as NGINX keeps it: per
 * /16 block, sorted, disjoint pieces (so its overlap and duplicate rules
 * are NGINX's), found by a binary search. Values are opaque pointers. */
#ifndef PV_GEO_H
#define PV_GEO_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

typedef struct pv_geo_node_s {
    uint32_t child[2];          /* node indexes; 0: none (the root is nobody's child) */
    const void *value;          /* NULL: no value here */
} pv_geo_node_t;

typedef struct pv_geo_tree_s {
    pv_geo_node_t *nodes;       /* nodes[0] is the root (the /0 prefix) */
    uint32_t n, cap;
    pv_arena_t *a;
} pv_geo_tree_t;

enum { PV_GEO_ADDED = 0, PV_GEO_BUSY = 1 };

void pv_geo_tree_init(pv_geo_tree_t *t, pv_arena_t *a);

/* Put value at the prefix of `bits` bits of addr (network byte order).
 * When the prefix has a value already: with replace it is replaced (*old
 * gets the old one), else kept; PV_GEO_BUSY either way. */
int pv_geo_tree_insert(pv_geo_tree_t *t, const uint8_t *addr, int bits, const void *value,
                       int replace, const void **old);

/* Remove the value of exactly that prefix: 0, or -1 when it had none. */
int pv_geo_tree_delete(pv_geo_tree_t *t, const uint8_t *addr, int bits);

/* The value of the longest prefix holding addr (of nbits bits), or NULL. */
const void *pv_geo_tree_find(const pv_geo_tree_t *t, const uint8_t *addr, int nbits);

typedef struct pv_geo_piece_s {
    uint16_t start, end;        /* the low 16 bits, inclusive */
    const void *value;
} pv_geo_piece_t;

typedef struct pv_geo_block_s {
    uint32_t n, cap;
    pv_geo_piece_t p[];         /* sorted, disjoint */
} pv_geo_block_t;

typedef struct pv_geo_ranges_s {
    pv_geo_block_t **blocks;    /* 65536, by the high 16 bits; NULL: empty */
    pv_arena_t *a;
} pv_geo_ranges_t;

int pv_geo_ranges_init(pv_geo_ranges_t *rs, pv_arena_t *a);

/* Add start-end (host order) with value, as ngx_http_geo_add_range():
 * within each /16 block a piece may equal an existing one (its value is
 * replaced: *dups counts them, *old gets the last old value) or lie
 * inside one (which is split); any other overlap is an error: -1, with
 * the overlapped piece in *ostart, *oend. */
int pv_geo_ranges_add(pv_geo_ranges_t *rs, uint32_t start, uint32_t end, const void *value,
                      int *dups, const void **old, uint32_t *ostart, uint32_t *oend);

/* Remove the pieces exactly equal to start-end in each block: 0, or 1
 * when some block had none to remove. */
int pv_geo_ranges_delete(pv_geo_ranges_t *rs, uint32_t start, uint32_t end);

/* The value of the range holding addr (host order), or NULL. */
const void *pv_geo_ranges_find(const pv_geo_ranges_t *rs, uint32_t addr);

/* An IPv4 address as ngx_inet_addr() reads it (digits and exactly three
 * dots, each part at most 255; an empty part counts as 0): 0 and *out
 * in host order, or -1. 255.255.255.255 is 0xffffffff here; the callers
 * refuse it where NGINX, to whom it means "invalid", does. */
int pv_geo_inet4(const char *p, size_t n, uint32_t *out);

/* "ADDR" or "ADDR/BITS" (ngx_ptocidr): family 4 or 6 in *fam, the
 * address (network order) in addr, masked to *bits; 1 when bits beyond
 * the mask were set (NGINX warns), 0, or -1 when invalid. */
int pv_geo_cidr(const char *p, size_t n, int *fam, uint8_t addr[16], int *bits);

#endif
