#include "range.h"

#include <string.h>
#include <strings.h>

/* ---- Range -------------------------------------------------------------- */

static int digit(const char *p, const char *e)
{
    return p < e && *p >= '0' && *p <= '9';
}

/* Digits at *pp into *v; -1 on overflow. */
static int number(const char **pp, const char *e, int64_t *v)
{
    const char *p = *pp;
    int64_t n = 0;
    while (digit(p, e)) {
        if (n > (INT64_MAX - (*p - '0')) / 10)
            return -1;
        n = n * 10 + (*p++ - '0');
    }
    *pp = p;
    *v = n;
    return 0;
}

static const char *spaces(const char *p, const char *e)
{
    while (p < e && *p == ' ')
        p++;
    return p;
}

int pv_range_parse(pv_str_t value, int64_t size, int max, pv_range_t *out, int cap, int *n)
{
    *n = 0;
    if (value.len < 7 || strncasecmp(value.p, "bytes=", 6) != 0 || max <= 0)
        return PV_RANGE_NONE;
    const char *p = value.p + 6, *e = value.p + value.len;
    int64_t total = 0;
    int count = 0;
    for (;;) {
        int64_t start = 0, end = 0;
        int suffix = 0;
        p = spaces(p, e);
        if (p < e && *p == '-') {
            suffix = 1;
            p++;
        } else {
            if (!digit(p, e) || number(&p, e, &start) < 0)
                return PV_RANGE_416;
            p = spaces(p, e);
            if (p == e || *p++ != '-')
                return PV_RANGE_416;
            p = spaces(p, e);
            if (p == e || *p == ',') {
                end = size;
                goto found;
            }
        }
        if (!digit(p, e) || number(&p, e, &end) < 0)
            return PV_RANGE_416;
        p = spaces(p, e);
        if (p != e && *p != ',')
            return PV_RANGE_416;
        if (suffix) {
            start = end < size ? size - end : 0;
            end = size - 1;
        }
        end = end >= size ? size : end + 1;
    found:
        if (start < end) {
            if (total > INT64_MAX - (end - start))
                return PV_RANGE_416;
            total += end - start;
            if (count == max)
                return PV_RANGE_NONE;
            if (count < cap)
                out[count] = (pv_range_t){start, end};
            count++;
        } else if (start == 0) {
            return PV_RANGE_NONE;
        }
        if (p == e)
            break;
        p++; /* the comma */
    }
    if (count == 0)
        return PV_RANGE_416;
    if (total > size || count > cap)
        return PV_RANGE_NONE;
    *n = count;
    return PV_RANGE_OK;
}

int pv_range_if_range(pv_str_t value, pv_str_t etag, time_t mtime)
{
    if (value.len >= 2 && value.p[value.len - 1] == '"')
        return etag.len && value.len == etag.len && memcmp(value.p, etag.p, etag.len) == 0;
    return mtime != (time_t)-1 && pv_http_time_parse(value) == mtime;
}

int pv_etag_match(pv_str_t list, pv_str_t etag, int weak)
{
    if (list.len == 1 && list.p[0] == '*')
        return 1;
    if (!etag.len)
        return 0;
    if (weak && etag.len > 2 && etag.p[0] == 'W' && etag.p[1] == '/') {
        etag.p += 2;
        etag.len -= 2;
    }
    const char *p = list.p, *e = list.p + list.len;
    while (p < e) {
        if (weak && e - p > 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if ((size_t)(e - p) < etag.len)
            return 0;
        if (memcmp(p, etag.p, etag.len) == 0) {
            const char *q = p + etag.len;
            while (q < e && (*q == ' ' || *q == '\t'))
                q++;
            if (q == e || *q == ',')
                return 1;
        }
        while (p < e && *p != ',')
            p++;
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
    }
    return 0;
}

/* ---- HTTP dates ----------------------------------------------------------- */

static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char wdays[] = "SunMonTueWedThuFriSat";

static int month_of(const char *p, const char *e)
{
    if (e - p < 3)
        return -1;
    for (int m = 0; m < 12; m++)
        if (memcmp(p, months + 3 * m, 3) == 0)
            return m;
    return -1;
}

/* n digits at *pp */
static int digits(const char **pp, const char *e, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!digit(*pp, e))
            return -1;
        x = x * 10 + (*(*pp)++ - '0');
    }
    *v = x;
    return 0;
}

static int hms(const char **pp, const char *e, int *h, int *m, int *s)
{
    if (digits(pp, e, 2, h) || *pp == e || *(*pp)++ != ':' || digits(pp, e, 2, m) || *pp == e ||
        *(*pp)++ != ':' || digits(pp, e, 2, s))
        return -1;
    return 0;
}

time_t pv_http_time_parse(pv_str_t s)
{
    const char *p = s.p, *e = s.p + s.len;
    int day, mon, year, h, m, sec;
    const char *sp = memchr(p, ' ', s.len), *comma = memchr(p, ',', s.len);
    if (comma && (!sp || comma < sp)) {
        p = spaces(comma + 1, e);
        if (digits(&p, e, 2, &day))
            return -1;
        if (p < e && *p == ' ') {                   /* RFC 1123: 06 Nov 1994 */
            p++;
            if ((mon = month_of(p, e)) < 0)
                return -1;
            p += 3;
            if (p == e || *p++ != ' ' || digits(&p, e, 4, &year))
                return -1;
        } else if (p < e && *p == '-') {            /* RFC 850: 06-Nov-94 */
            p++;
            if ((mon = month_of(p, e)) < 0)
                return -1;
            p += 3;
            if (p == e || *p++ != '-' || digits(&p, e, 2, &year))
                return -1;
            year += year < 70 ? 2000 : 1900;
        } else {
            return -1;
        }
        if (p == e || *p++ != ' ' || hms(&p, e, &h, &m, &sec))
            return -1;
    } else if (sp) {                                 /* asctime: Sun Nov  6 08:49:37 1994 */
        p = sp + 1;
        if ((mon = month_of(p, e)) < 0)
            return -1;
        p += 3;
        if (p == e || *p++ != ' ')
            return -1;
        if (p < e && *p == ' ')
            p++;
        if (digits(&p, e, 1, &day))
            return -1;
        if (digit(p, e))
            day = day * 10 + (*p++ - '0');
        if (p == e || *p++ != ' ' || hms(&p, e, &h, &m, &sec) || p == e || *p++ != ' ' ||
            digits(&p, e, 4, &year))
            return -1;
    } else {
        return -1;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (h > 23 || m > 59 || sec > 59 || day < 1 || day > mdays[mon] || year < 1970)
        return -1;
    if (mon == 1 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
        return -1;
    struct tm tm = {.tm_sec = sec, .tm_min = m, .tm_hour = h, .tm_mday = day, .tm_mon = mon,
                    .tm_year = year - 1900};
    return timegm(&tm);
}

size_t pv_http_time_format(time_t t, char *buf)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(buf, wdays + 3 * tm.tm_wday, 3);
    buf[3] = ',';
    buf[4] = ' ';
    buf[5] = (char)('0' + tm.tm_mday / 10);
    buf[6] = (char)('0' + tm.tm_mday % 10);
    buf[7] = ' ';
    memcpy(buf + 8, months + 3 * tm.tm_mon, 3);
    buf[11] = ' ';
    int y = tm.tm_year + 1900;
    if (y < 0 || y > 9999)
        y = 9999;
    buf[12] = (char)('0' + y / 1000);
    buf[13] = (char)('0' + y / 100 % 10);
    buf[14] = (char)('0' + y / 10 % 10);
    buf[15] = (char)('0' + y % 10);
    buf[16] = ' ';
    int v[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 3; i++) {
        buf[17 + 3 * i] = (char)('0' + v[i] / 10);
        buf[18 + 3 * i] = (char)('0' + v[i] % 10);
        buf[19 + 3 * i] = i < 2 ? ':' : ' ';
    }
    memcpy(buf + 26, "GMT", 4);
    return 29;
}

/* ---- paths ---------------------------------------------------------------- */

ssize_t pv_path_join(const char *root, size_t rlen, pv_str_t uri, size_t skip, char *out, size_t cap)
{
    if (skip > uri.len)
        skip = uri.len;
    const char *u = uri.p + skip;
    size_t ulen = uri.len - skip;
    if (rlen + ulen + 1 > cap)
        return -1;
    if (memchr(root, '\0', rlen) || memchr(u, '\0', ulen))
        return -1;
    /* a "." or ".." segment of the URI part (a rewritten URI is not
     * normalised) could climb out of the root */
    for (size_t i = 0; i < ulen; i++) {
        if (u[i] != '.' || (i > 0 && u[i - 1] != '/'))
            continue;
        size_t j = i + 1;
        if (j < ulen && u[j] == '.')
            j++;
        if (j == ulen || u[j] == '/')
            if (i > 0 || skip > 0 || rlen > 0)
                return -1;
    }
    memcpy(out, root, rlen);
    memcpy(out + rlen, u, ulen);
    out[rlen + ulen] = '\0';
    return (ssize_t)(rlen + ulen);
}
