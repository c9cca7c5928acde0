/* `map` lookups (and split_clients' parts), as ngx_http_map_find() and ngx_http_map_variable() do
 * them: exact keys compare case-insensitively; with `hostnames` a
 * trailing dot of the source is dropped and the longest "*.name" then the
 * longest "name.*" wildcard match; regexes are tried in order on a
 * non-empty source, and their captures are there for the value. */
#include "map.h"

#include <string.h>

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

pv_str_t pv_map_eval(pv_request_t *r, const pv_map_t *m)
{
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
