/* `map` lookups (and split_clients' parts), as ngx_http_map_find() and ngx_http_map_variable() do
 * them: exact keys compare case-insensitively; with `hostnames` a
 * trailing dot of the source is dropped and the longest "*.name" then the
 * longest "name.*" wildcard match; regexes are tried in order on a
 * non-empty source, and their captures are there for the value. */
#include "map.h"

#include <string.h>

#include <arpa/inet.h>

#include "realip.h"
#include "uvars.h"

const pv_map_entry_t *pv_map_find(pv_request_t *r, const pv_map_t *m, pv_str_t low, pv_str_t orig)
{
    const pv_map_entry_t *head = NULL, *tail = NULL;
    for (int i = 0; i < m->nentries; i++) {
        const pv_map_entry_t *e = &m->entries[i];
        switch (e->kind) {
        case PV_SN_EXACT:
            if (e->key.len == low.len && memcmp(e->key.p, low.p, low.len) == 0)
                return e;
            break;
        case PV_SN_WILD_HEAD:
            /* ".example.com" matches "a.example.com", not "example.com" */
            if (low.len > e->key.len &&
                memcmp(low.p + low.len - e->key.len, e->key.p, e->key.len) == 0 &&
                (!head || e->key.len > head->key.len))
                head = e;
            break;
        case PV_SN_WILD_TAIL:
            /* "www.example." matches "www.example.org" */
            if (low.len > e->key.len && memcmp(low.p, e->key.p, e->key.len) == 0 &&
                (!tail || e->key.len > tail->key.len))
                tail = e;
            break;
        default:
            break;
        }
    }
    if (head)
        return head;
    if (tail)
        return tail;
    if (orig.len == 0)
        return NULL;
    for (int i = 0; i < m->nentries; i++) {
        const pv_map_entry_t *e = &m->entries[i];
        if (e->kind != PV_SN_REGEX)
            continue;
        int rc = pv_regex_exec(r, e->re, orig);
        if (rc == 1)
            return e;
        if (rc < 0)
            return NULL;
    }
    return NULL;
}

uint32_t pv_murmur_hash2(const unsigned char *p, size_t len)
{
    uint32_t h = (uint32_t)len, k;
    while (len >= 4) {
        k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= 0x5bd1e995;
        k ^= k >> 24;
        k *= 0x5bd1e995;
        h *= 0x5bd1e995;
        h ^= k;
        p += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= 0x5bd1e995;
    }
    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;
    return h;
}

/* split_clients: the first part whose bound the hash is below, or `*`. */
static pv_str_t split_eval(pv_request_t *r, const pv_map_t *m, pv_str_t src)
{
    uint32_t hash = pv_murmur_hash2((const unsigned char *)src.p, src.len);
    for (int i = 0; i < m->nentries; i++)
        if (!m->entries[i].bound || hash < m->entries[i].bound)
            return pv_cv_eval_arena(&m->entries[i].value, r);
    return (pv_str_t){"", 0};
}

/* The address a geo block looks up (ngx_http_geo_addr()): $ADDRESS's
 * text, else the client's; then X-Forwarded-For from a `proxy`. 0 when
 * there is none that parses. */
static int geo_addr(pv_request_t *r, const pv_map_t *m, struct sockaddr_in6 *cur)
{
    const pv_geo_conf_t *g = m->geo;
    memset(cur, 0, sizeof(*cur));
    if (g->has_source) {
        pv_str_t src = pv_cv_eval_arena(&m->source, r);
        struct sockaddr_in *v4 = (struct sockaddr_in *)cur;
        uint32_t a;
        char buf[64];
        if (pv_geo_inet4(src.p, src.len, &a) == 0 && a != 0xffffffffu) {
            v4->sin_family = AF_INET;
            v4->sin_addr.s_addr = htonl(a);
        } else if (src.len && src.len < sizeof(buf)) {
            memcpy(buf, src.p, src.len);
            buf[src.len] = '\0';
            if (inet_pton(AF_INET6, buf, &cur->sin6_addr) != 1)
                return 0;
            cur->sin6_family = AF_INET6;
        } else {
            return 0;
        }
    } else if (r->peer && r->peer->sa_family == AF_INET) {
        memcpy(cur, r->peer, sizeof(struct sockaddr_in));
    } else if (r->peer && r->peer->sa_family == AF_INET6) {
        memcpy(cur, r->peer, sizeof(struct sockaddr_in6));
    } else {
        cur->sin6_family = r->peer ? r->peer->sa_family : AF_UNSPEC;
    }
    if (g->nproxies) {
        pv_realip_conf_t c = {.from = g->proxies, .nfrom = g->nproxies, .header_kind = PV_REALIP_XFF,
                              .header = "X-Forwarded-For", .recursive = g->proxy_recursive};
        pv_realip_fields(r, cur, &c);
    }
    return 1;
}

/* geo: the longest network holding the address, or the range holding
 * it; an IPv4-mapped IPv6 address is looked up as IPv4, and what has no
 * IPv4 address (a unix socket, an address that does not parse; in
 * `ranges` any IPv6 one) as 255.255.255.255. */
static pv_str_t geo_eval(pv_request_t *r, const pv_map_t *m)
{
    const pv_geo_conf_t *g = m->geo;
    struct sockaddr_in6 cur;
    uint32_t v4 = 0xffffffffu;
    const uint8_t *v6 = NULL;
    if (geo_addr(r, m, &cur) && cur.sin6_family == AF_INET) {
        v4 = ntohl(((const struct sockaddr_in *)&cur)->sin_addr.s_addr);
    } else if (cur.sin6_family == AF_INET6) {
        const uint8_t *b = cur.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&cur.sin6_addr))
            v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
        else if (!g->ranges)
            v6 = b;
    }
    const pv_str_t *v;
    if (g->ranges) {
        v = g->rs.blocks ? pv_geo_ranges_find(&g->rs, v4) : NULL;
        if (!v)
            v = g->range_default;
    } else if (v6) {
        v = pv_geo_tree_find(&g->t6, v6, 128);
    } else {
        uint8_t be[4] = {(uint8_t)(v4 >> 24), (uint8_t)(v4 >> 16), (uint8_t)(v4 >> 8), (uint8_t)v4};
        v = pv_geo_tree_find(&g->t4, be, 32);
    }
    return *v;
}

pv_str_t pv_map_eval(pv_request_t *r, const pv_map_t *m)
{
    if (m->geo)
        return geo_eval(r, m);
    pv_str_t src = pv_cv_eval_arena(&m->source, r);
    if (m->split)
        return split_eval(r, m, src);
    if (m->hostnames && src.len > 0 && src.p[src.len - 1] == '.')
        src.len--;
    char *low = pv_arena_alloc(r->arena, src.len + 1);
    for (size_t i = 0; i < src.len; i++) {
        char c = src.p[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
    }
    low[src.len] = '\0';
    const pv_map_entry_t *e = pv_map_find(r, m, (pv_str_t){low, src.len}, src);
    const pv_cv_t *v = e ? &e->value : m->default_value;
    if (!v)
        return (pv_str_t){"", 0};
    return pv_cv_eval_arena(v, r);
}
