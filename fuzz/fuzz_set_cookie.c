/* libFuzzer target: pv_cookie_split() and pv_cookie_join(), the Set-Cookie
 * reader and writer of proxy_cookie_*. Checks: every key and value lies
 * inside the input, holds no ';' and is trimmed of spaces; the joined
 * length is what join writes; joining a split of the joined text gives
 * the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/proxy/cookie.h"

static void check_part(pv_str_t s, const char *b, size_t n)
{
    if (!s.p)
        return;
    if (s.p < b || s.p + s.len > b + n || memchr(s.p, ';', s.len))
        abort();
    if (s.len && (s.p[0] == ' ' || s.p[s.len - 1] == ' '))
        abort();
}

static char *joined(pv_str_t v, size_t *len)
{
    int n = pv_cookie_count(v);
    pv_cookie_attr_t *a = malloc(sizeof(*a) * (size_t)n);
    if (!a)
        return NULL;
    pv_cookie_split(v, a);
    for (int i = 0; i < n; i++) {
        check_part(a[i].key, v.p, v.len);
        check_part(a[i].value, v.p, v.len);
    }
    *len = pv_cookie_join(a, n, NULL);
    char *out = malloc(*len + 1);
    if (out && pv_cookie_join(a, n, out) != *len)
        abort();
    free(a);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1); /* an exact copy: reads past it are caught */
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    size_t l1, l2;
    char *j1 = joined((pv_str_t){copy, size}, &l1);
    char *j2 = j1 ? joined((pv_str_t){j1, l1}, &l2) : NULL;
    if (j2 && (l1 != l2 || memcmp(j1, j2, l1) != 0))
        abort();
    free(j2);
    free(j1);
    free(copy);
    return 0;
}
