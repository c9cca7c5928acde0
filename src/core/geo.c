/* The geo module's radix tree and range table (see geo.h). */
#include "geo.h"

#include <arpa/inet.h>
#include <string.h>

static int bit_at(const uint8_t *addr, int i)
{
    return (addr[i >> 3] >> (7 - (i & 7))) & 1;
}

void pv_geo_tree_init(pv_geo_tree_t *t, pv_arena_t *a)
{
    t->a = a;
    t->cap = 16;
    t->nodes = pv_arena_calloc(a, t->cap * sizeof(*t->nodes));
    t->n = 1;
}

static uint32_t new_node(pv_geo_tree_t *t)
{
    if (t->n == t->cap) {
        pv_geo_node_t *nn = pv_arena_calloc(t->a, (size_t)t->cap * 2 * sizeof(*nn));
        memcpy(nn, t->nodes, t->cap * sizeof(*nn));
        t->nodes = nn;
        t->cap *= 2;
    }
    return t->n++;
}

int pv_geo_tree_insert(pv_geo_tree_t *t, const uint8_t *addr, int bits, const void *value,
                       int replace, const void **old)
{
    uint32_t at = 0;
    for (int i = 0; i < bits; i++) {
        int b = bit_at(addr, i);
        if (!t->nodes[at].child[b]) {
            uint32_t k = new_node(t);
            t->nodes[at].child[b] = k;
        }
        at = t->nodes[at].child[b];
    }
    pv_geo_node_t *nd = &t->nodes[at];
    if (nd->value) {
        if (old)
            *old = nd->value;
        if (replace)
            nd->value = value;
        return PV_GEO_BUSY;
    }
    nd->value = value;
    return PV_GEO_ADDED;
}

int pv_geo_tree_delete(pv_geo_tree_t *t, const uint8_t *addr, int bits)
{
    uint32_t at = 0;
    for (int i = 0; i < bits; i++) {
        at = t->nodes[at].child[bit_at(addr, i)];
        if (!at)
            return -1;
    }
    if (!t->nodes[at].value)
        return -1;
    t->nodes[at].value = NULL;
    return 0;
}

const void *pv_geo_tree_find(const pv_geo_tree_t *t, const uint8_t *addr, int nbits)
{
    uint32_t at = 0;
    const void *best = t->nodes[0].value;
    for (int i = 0; i < nbits; i++) {
        at = t->nodes[at].child[bit_at(addr, i)];
        if (!at)
            break;
        if (t->nodes[at].value)
            best = t->nodes[at].value;
    }
    return best;
}

int pv_geo_ranges_init(pv_geo_ranges_t *rs, pv_arena_t *a)
{
    rs->a = a;
    rs->blocks = pv_arena_calloc(a, 0x10000 * sizeof(*rs->blocks));
    return rs->blocks ? 0 : -1;
}

/* Make room for one piece at index i of block h. */
static pv_geo_piece_t *open_at(pv_geo_ranges_t *rs, uint32_t h, uint32_t i)
{
    pv_geo_block_t *b = rs->blocks[h];
    if (!b || b->n == b->cap) {
        uint32_t cap = b ? b->cap * 2 : 4;
        pv_geo_block_t *nb = pv_arena_alloc(rs->a, sizeof(*nb) + cap * sizeof(nb->p[0]));
        nb->n = b ? b->n : 0;
        nb->cap = cap;
        if (b)
            memcpy(nb->p, b->p, b->n * sizeof(b->p[0]));
        rs->blocks[h] = b = nb;
    }
    memmove(&b->p[i + 1], &b->p[i], (b->n - i) * sizeof(b->p[0]));
    b->n++;
    return &b->p[i];
}

/* One block's part s-e of a new range. */
static int add_piece(pv_geo_ranges_t *rs, uint32_t h, uint32_t s, uint32_t e, const void *value,
                     int *dups, const void **old, uint32_t *ostart, uint32_t *oend)
{
    const pv_geo_block_t *b = rs->blocks[h];
    uint32_t i = b ? b->n : 0;
    while (i) {
        i--;
        const pv_geo_piece_t cur = rs->blocks[h]->p[i];
        if (e < cur.start)
            continue;
        if (s > cur.end) {
            *open_at(rs, h, i + 1) = (pv_geo_piece_t){(uint16_t)s, (uint16_t)e, value};
            return 0;
        }
        if (s == cur.start && e == cur.end) {
            *old = cur.value;
            (*dups)++;
            rs->blocks[h]->p[i].value = value;
            return 0;
        }
        if (s >= cur.start && e <= cur.end) {
            /* inside: split what is left on either side */
            if (e < cur.end)
                *open_at(rs, h, i + 1) = (pv_geo_piece_t){(uint16_t)(e + 1), cur.end, cur.value};
            *open_at(rs, h, i + 1) = (pv_geo_piece_t){(uint16_t)s, (uint16_t)e, value};
            pv_geo_block_t *nb = rs->blocks[h];
            if (s > cur.start) {
                nb->p[i].end = (uint16_t)(s - 1);
            } else {
                memmove(&nb->p[i], &nb->p[i + 1], (nb->n - i - 1) * sizeof(nb->p[0]));
                nb->n--;
            }
            return 0;
        }
        *ostart = h << 16 | cur.start;
        *oend = h << 16 | cur.end;
        return -1;
    }
    *open_at(rs, h, 0) = (pv_geo_piece_t){(uint16_t)s, (uint16_t)e, value};
    return 0;
}

int pv_geo_ranges_add(pv_geo_ranges_t *rs, uint32_t start, uint32_t end, const void *value,
                      int *dups, const void **old, uint32_t *ostart, uint32_t *oend)
{
    for (uint64_t n = start; n <= end; n = (n + 0x10000) & ~(uint64_t)0xffff) {
        uint32_t h = (uint32_t)(n >> 16);
        uint32_t s = n == start ? (uint32_t)n & 0xffff : 0;
        uint32_t e = ((uint32_t)n | 0xffff) > end ? end & 0xffff : 0xffff;
        if (add_piece(rs, h, s, e, value, dups, old, ostart, oend) < 0)
            return -1;
    }
    return 0;
}

int pv_geo_ranges_delete(pv_geo_ranges_t *rs, uint32_t start, uint32_t end)
{
    int warn = 0;
    for (uint64_t n = start; n <= end; n = (n + 0x10000) & ~(uint64_t)0xffff) {
        uint32_t h = (uint32_t)(n >> 16);
        uint32_t s = n == start ? (uint32_t)n & 0xffff : 0;
        uint32_t e = ((uint32_t)n | 0xffff) > end ? end & 0xffff : 0xffff;
        pv_geo_block_t *b = rs->blocks[h];
        uint32_t i = 0;
        while (b && i < b->n && !(b->p[i].start == s && b->p[i].end == e))
            i++;
        if (!b || i == b->n) {
            warn = 1;
            continue;
        }
        memmove(&b->p[i], &b->p[i + 1], (b->n - i - 1) * sizeof(b->p[0]));
        b->n--;
    }
    return warn;
}

const void *pv_geo_ranges_find(const pv_geo_ranges_t *rs, uint32_t addr)
{
    const pv_geo_block_t *b = rs->blocks[addr >> 16];
    uint32_t k = addr & 0xffff, lo = 0, hi = b ? b->n : 0;
    while (lo < hi) { /* the first piece ending at or after k */
        uint32_t mid = lo + (hi - lo) / 2;
        if (b->p[mid].end < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (b && lo < b->n && b->p[lo].start <= k)
        return b->p[lo].value;
    return NULL;
}

int pv_geo_inet4(const char *p, size_t n, uint32_t *out)
{
    uint32_t addr = 0, octet = 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9') {
            octet = octet * 10 + (uint32_t)(c - '0');
            if (octet > 255)
                return -1;
        } else if (c == '.') {
            addr = addr << 8 | octet;
            octet = 0;
            dots++;
        } else {
            return -1;
        }
    }
    if (dots != 3)
        return -1;
    *out = addr << 8 | octet;
    return 0;
}

int pv_geo_cidr(const char *p, size_t n, int *fam, uint8_t addr[16], int *bits)
{
    const char *slash = memchr(p, '/', n);
    size_t alen = slash ? (size_t)(slash - p) : n;
    int max;
    uint32_t v4;
    memset(addr, 0, 16);
    /* ngx_inet_addr()'s 255.255.255.255 is its error value: NGINX takes
     * that address only as the whole text */
    if (pv_geo_inet4(p, alen, &v4) == 0 &&
        (v4 != 0xffffffffu || (n == 15 && memcmp(p, "255.255.255.255", 15) == 0))) {
        *fam = 4;
        max = 32;
        v4 = htonl(v4);
        memcpy(addr, &v4, 4);
    } else {
        char buf[64];
        if (alen == 0 || alen >= sizeof(buf))
            return -1;
        memcpy(buf, p, alen);
        buf[alen] = '\0';
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return -1;
        *fam = 6;
        max = 128;
    }
    *bits = max;
    if (slash) {
        int b = 0;
        size_t i = alen + 1;
        if (i == n)
            return -1;
        for (; i < n; i++) {
            if (p[i] < '0' || p[i] > '9' || (b = b * 10 + (p[i] - '0')) > max)
                return -1;
        }
        *bits = b;
    }
    int meaningless = 0;
    for (int i = 0; i < max / 8; i++) {
        int keep = *bits - i * 8;
        uint8_t m = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        if (addr[i] & ~m)
            meaningless = 1;
        addr[i] &= m;
    }
    return meaningless;
}
