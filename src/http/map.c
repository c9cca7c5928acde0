/* `map` lookups, as ngx_http_map_find() and ngx_http_map_variable() do
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

pv_str_t pv_map_eval(pv_request_t *r, const pv_map_t *m)
{
    pv_str_t src = pv_cv_eval_arena(&m->source, r);
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
