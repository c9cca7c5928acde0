/* Shared basics: return codes, string slices, small helpers. */
#ifndef PV_COMMON_H
#define PV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PV_OK 0
#define PV_ERR (-1)
#define PV_AGAIN (-2)

#define PV_VERSION "0.1.0"
#define PV_NAME "portvakt"
/* the NGINX release whose behaviour portvakt follows */
#define PV_NGINX_VERSION "1.22.1"

/* A non-owning byte slice; not NUL-terminated unless said so. */
typedef struct pv_str_s {
    const char *p; /* first byte */
    size_t len;    /* byte count */
} pv_str_t;

#define PV_STR(lit) ((pv_str_t){(lit), sizeof(lit) - 1})
#define PV_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PV_MAX(a, b) ((a) > (b) ? (a) : (b))
#define PV_UNUSED(x) ((void)(x))
#define pv_likely(x) __builtin_expect(!!(x), 1)
#define pv_unlikely(x) __builtin_expect(!!(x), 0)

/* Case-insensitive equality of a slice with a C string literal/NUL string.
 * Equal bytes cost one compare; only bytes that differ are looked at as
 * letters (field names mostly come in the literal's own case). */
static inline int pv_str_ieq(pv_str_t s, const char *lit, size_t litlen)
{
    if (s.len != litlen)
        return 0;
    for (size_t i = 0; i < litlen; i++) {
        unsigned char a = (unsigned char)s.p[i], x = a ^ (unsigned char)lit[i];
        if (x == 0)
            continue;
        if (x != 0x20 || (unsigned char)((a | 0x20) - 'a') > 'z' - 'a')
            return 0;
    }
    return 1;
}

/* Whether n is one of l[0..nl), compared without case. */
static inline int pv_str_in_ilist(pv_str_t n, const pv_str_t *l, int nl)
{
    for (int i = 0; i < nl; i++)
        if (pv_str_ieq(n, l[i].p, l[i].len))
            return 1;
    return 0;
}
/* Decimal digits of v into buf (room for 20); returns the count. Cheaper
 * than snprintf on paths that run once per request. */
static inline size_t pv_u64_digits(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Lower-case hex digits of v into buf (room for 16), no leading zeros;
 * returns the count (printf's %llx). */
static inline size_t pv_u64_hex(char *buf, uint64_t v)
{
    size_t n = 1;
    for (uint64_t t = v >> 4; t; t >>= 4)
        n++;
    for (size_t i = n; i-- > 0; v >>= 4)
        buf[i] = "0123456789abcdef"[v & 15];
    return n;
}

/* Value of a base64 character, -1 if it is not one; url selects the
 * URL-safe alphabet ("-_" for "+/"). */
static inline int pv_b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

#define PV_STR_IEQ(s, lit) pv_str_ieq((s), (lit), sizeof(lit) - 1)

static inline int pv_str_eq(pv_str_t s, const char *lit, size_t litlen)
{
    return s.len == litlen && memcmp(s.p, lit, litlen) == 0;
}

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t pv_now_ms(void);
uint64_t pv_now_ns(void);

#endif
