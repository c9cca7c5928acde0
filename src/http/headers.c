/* Header-field syntax and list helpers (RFC 9110 §5, §7.6.1). */
#include "headers.h"

#include <string.h>

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
const uint8_t pv_http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

const pv_header_t *pv_request_header(const pv_request_t *r, const char *name, size_t len)
{
    for (int i = 0; i < r->nheaders; i++) {
        if (pv_str_ieq(r->headers[i].name, name, len))
            return &r->headers[i];
    }
    return NULL;
}

int pv_header_name_valid(pv_str_t name)
{
    if (name.len == 0)
        return 0;
    for (size_t i = 0; i < name.len; i++) {
        if (!pv_http_tchar[(unsigned char)name.p[i]])
            return 0;
    }
    return 1;
}

/* VCHAR 0x21-0x7e, obs-text 0x80-0xff, SP, HTAB */
static int value_bytes_valid(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Every field of every head passes here, so eight bytes are looked at a
 * time: a word with no byte below 0x20 and none equal to 0x7f is valid
 * (both tests are exact for "some byte"); any other word, which is only
 * one with a tab in practice, is checked a byte at a time. */
int pv_header_value_valid(pv_str_t value)
{
    const char *p = value.p;
    size_t n = value.len;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        y = x ^ (ONES * 0x7f);
        if ((((x - ONES * 0x20) & ~x) | ((y - ONES) & ~y)) & HIGHS) {
            if (!value_bytes_valid(p, 8))
                return 0;
        }
    }
    return value_bytes_valid(p, n);
}

int pv_http_parse_content_length(pv_str_t v, int64_t *out)
{
    if (v.len == 0)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < '0' || c > '9')
            return -1;
        if (n > (INT64_MAX - (c - '0')) / 10)
            return -1;
        n = n * 10 + (c - '0');
    }
    *out = n;
    return 0;
}

int pv_conn_next_token(pv_str_t *rest, pv_str_t *tok)
{
    const char *p = rest->p, *end = rest->p + rest->len;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end) {
            rest->p = end;
            rest->len = 0;
            return 0;
        }
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        rest->p = p;
        rest->len = (size_t)(end - p);
        if (e > s) {
            tok->p = s;
            tok->len = (size_t)(e - s);
            return 1;
        }
    }
}

int pv_conn_has_token(pv_str_t value, const char *tok)
{
    size_t tl = strlen(tok);
    pv_str_t t;
    while (pv_conn_next_token(&value, &t)) {
        if (pv_str_ieq(t, tok, tl))
            return 1;
    }
    return 0;
}

int pv_conn_lists_name(const pv_header_t *hs, int n, pv_str_t name)
{
    for (int i = 0; i < n; i++) {
        if (!PV_STR_IEQ(hs[i].name, "connection"))
            continue;
        pv_str_t v = hs[i].value, t;
        while (pv_conn_next_token(&v, &t)) {
            if (pv_str_ieq(t, name.p, name.len))
                return 1;
        }
    }
    return 0;
}

int pv_header_is_hop_by_hop(pv_str_t name)
{
    switch (name.len) {
    case 2:
        return PV_STR_IEQ(name, "te");
    case 7:
        return PV_STR_IEQ(name, "trailer") || PV_STR_IEQ(name, "upgrade");
    case 10:
        return PV_STR_IEQ(name, "connection") || PV_STR_IEQ(name, "keep-alive");
    case 16:
        return PV_STR_IEQ(name, "proxy-connection");
    case 17:
        return PV_STR_IEQ(name, "transfer-encoding");
    default:
        return 0;
    }
}

size_t pv_http_date(time_t t, char out[30])
{
    static const char wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* hand-formatted: strftime depends on the locale */
    char *p = out;
    memcpy(p, wday[tm.tm_wday], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = ' ';
    memcpy(p, mon[tm.tm_mon], 3);
    p += 3;
    *p++ = ' ';
    int y = tm.tm_year + 1900;
    *p++ = (char)('0' + (y / 1000) % 10);
    *p++ = (char)('0' + (y / 100) % 10);
    *p++ = (char)('0' + (y / 10) % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_hour / 10);
    *p++ = (char)('0' + tm.tm_hour % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_min / 10);
    *p++ = (char)('0' + tm.tm_min % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_sec / 10);
    *p++ = (char)('0' + tm.tm_sec % 10);
    memcpy(p, " GMT", 4);
    p += 4;
    *p = '\0';
    return (size_t)(p - out);
}

void pv_http_crlf_init(pv_crlf_t *st, uint32_t off)
{
    *st = (pv_crlf_t){.off = off, .blank = 1};
}

/* Scan p[s->off, last) as far as the head's end, a line at a time: s is
 * advanced and the bare LFs are counted. Returns where the scan stopped. */
static size_t crlf_scan(const char *p, size_t last, pv_crlf_t *s, size_t *n)
{
    size_t i = s->off;
    *n = 0;
    while (i < last && !s->done) {
        const char *lf = memchr(p + i, '\n', last - i);
        size_t e = lf ? (size_t)(lf - p) : last;
        /* anything but a CR makes the line more than empty */
        for (size_t k = i; k < e && s->blank; k++)
            s->blank = p[k] == '\r';
        s->started |= !s->blank;
        if (e > i)
            s->cr = p[e - 1] == '\r';
        if (!lf)
            return last;
        *n += !s->cr;
        /* an empty line before the first line is skipped */
        s->done = s->started && s->blank;
        s->blank = 1;
        s->cr = 0;
        i = e + 1;
    }
    return i;
}

size_t pv_http_head_crlf(char *p, size_t *last, size_t cap, pv_crlf_t *st)
{
    pv_crlf_t s = *st;
    size_t n;
    size_t end = crlf_scan(p, *last, &s, &n);
    if (n && *last + n > cap)
        return n;
    if (n) {
        /* the bytes after the head move as one block; the head is
         * expanded from its back, each byte read before it is written */
        memmove(p + end + n, p + end, *last - end);
        size_t w = end + n;
        for (size_t r = end; w > r;) {
            char ch = p[--r];
            p[--w] = ch;
            if (ch == '\n' && (r == st->off ? !st->cr : p[r - 1] != '\r'))
                p[--w] = '\r';
        }
        *last += n;
        s.added += (uint32_t)n;
    }
    s.off = (uint32_t)(end + n);
    *st = s;
    return 0;
}

int pv_http_head_line_endings_ok(const char *p, size_t len)
{
    const char *end = p + len;
    for (const char *q = memchr(p, '\r', len); q; q = memchr(q + 1, '\r', (size_t)(end - q - 1))) {
        if (q + 1 >= end || q[1] != '\n')
            return 0;
    }
    for (const char *q = memchr(p, '\n', len); q; q = memchr(q + 1, '\n', (size_t)(end - q - 1))) {
        if (q == p || q[-1] != '\r')
            return 0;
        if (q + 1 < end && (q[1] == ' ' || q[1] == '\t'))
            return 0;
        if (q + 1 >= end)
            break;
    }
    return 1;
}

pv_str_t pv_http_trim_ows(pv_str_t v)
{
    while (v.len && (v.p[0] == ' ' || v.p[0] == '\t')) {
        v.p++;
        v.len--;
    }
    while (v.len && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
        v.len--;
    return v;
}

void pv_headers_join_cookies(pv_request_t *r, pv_arena_t *a)
{
    int first = -1, n = 0;
    size_t len = 0;
    for (int i = 0; i < r->nheaders; i++)
        if (PV_STR_IEQ(r->headers[i].name, "cookie")) {
            if (first < 0)
                first = i;
            n++;
            len += r->headers[i].value.len + 2;
        }
    if (n < 2)
        return;
    char *d = pv_arena_alloc(a, len), *p = d;
    int k = 0;
    for (int i = 0; i < r->nheaders; i++) {
        if (!PV_STR_IEQ(r->headers[i].name, "cookie")) {
            r->headers[k++] = r->headers[i];
            continue;
        }
        if (p != d) {
            memcpy(p, "; ", 2);
            p += 2;
        }
        memcpy(p, r->headers[i].value.p, r->headers[i].value.len);
        p += r->headers[i].value.len;
        if (i == first)
            k++;
    }
    r->headers[first].value = (pv_str_t){d, (size_t)(p - d)};
    r->nheaders = k;
}
