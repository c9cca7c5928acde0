/* Request-target parsing and normalisation with NGINX's semantics. */
#include "uri.h"

enum { ST_USUAL = 0, ST_SLASH, ST_DOT, ST_DOTDOT };

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Drop the segment before a trailing "/.." in out[0..*u); -1 above the root. */
static int pop_segment(char *out, size_t *u)
{
    ptrdiff_t j = (ptrdiff_t)*u - 4;
    while (j >= 0 && out[j] != '/')
        j--;
    if (j < 0)
        return -1;
    *u = (size_t)j + 1;
    return 0;
}

int pv_uri_normalize(const char *in, size_t len, char *out, size_t *outlen, pv_str_t *args,
                     int *has_args)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, u = 0;
    int st = ST_USUAL;

    *has_args = 0;
    args->p = NULL;
    args->len = 0;
    for (size_t k = 0; k < len; k++) {
        if (s[k] <= 0x20 || s[k] == 0x7f)
            return -1;
    }
    if (len == 0 || s[0] != '/') {
        /* absolute-form without a path: the path is "/" */
        if (len && s[0] != '?' && s[0] != '#')
            return -1;
        out[u++] = '/';
    }

    while (i < len) {
        unsigned char c = s[i++];
        int raw = 1;
        if (c == '%') {
            if (i + 2 > len)
                return -1;
            int h = hexval(s[i]), l = hexval(s[i + 1]);
            if (h < 0 || l < 0)
                return -1;
            i += 2;
            c = (unsigned char)(h << 4 | l);
            if (c == '\0')
                return -1;
            if (c == '%' || c == '#' || c == '?') {
                /* decoded delimiters are plain data, never re-interpreted */
                out[u++] = (char)c;
                st = ST_USUAL;
                continue;
            }
            raw = 0;
        }
        if (raw && (c == '?' || c == '#')) {
            if (st == ST_DOT) {
                u--;
            } else if (st == ST_DOTDOT) {
                if (pop_segment(out, &u) != 0)
                    return -1;
            }
            if (c == '?') {
                *has_args = 1;
                const char *a = in + i, *e = memchr(a, '#', len - i);
                args->p = a;
                args->len = e ? (size_t)(e - a) : len - i;
            }
            *outlen = u;
            return 0;
        }
        switch (st) {
        case ST_USUAL:
            out[u++] = (char)c;
            if (c == '/')
                st = ST_SLASH;
            break;
        case ST_SLASH:
            if (c == '/')
                break; /* merge_slashes */
            out[u++] = (char)c;
            st = c == '.' ? ST_DOT : ST_USUAL;
            break;
        case ST_DOT:
            if (c == '/') {
                u--;
                st = ST_SLASH;
            } else {
                out[u++] = (char)c;
                st = c == '.' ? ST_DOTDOT : ST_USUAL;
            }
            break;
        case ST_DOTDOT:
            if (c == '/') {
                if (pop_segment(out, &u) != 0)
                    return -1;
                st = ST_SLASH;
            } else {
                out[u++] = (char)c;
                st = ST_USUAL;
            }
            break;
        }
    }
    if (st == ST_DOT) {
        u--;
    } else if (st == ST_DOTDOT) {
        if (pop_segment(out, &u) != 0)
            return -1;
    }
    *outlen = u;
    return 0;
}

int pv_uri_path_quoted(pv_str_t request_uri)
{
    /* mostly there is no '%' at all: one vector scan says so */
    const char *pct = request_uri.len ? memchr(request_uri.p, '%', request_uri.len) : NULL;
    if (!pct)
        return 0;
    size_t n = (size_t)(pct - request_uri.p);
    return !memchr(request_uri.p, '?', n) && !memchr(request_uri.p, '#', n);
}

static int is_alpha(unsigned char c)
{
    c |= 0x20;
    return c >= 'a' && c <= 'z';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Characters NGINX accepts inside an IP-literal authority. */
static int is_literal_char(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr(".:-_~!$&'()*+,;=", c) != NULL);
}

/* absolute-form: scheme "://" authority [path-abempty] [? query]; the
 * authority is the host (name or [literal]) and an optional port, as NGINX
 * accepts it (no userinfo). Sets t->scheme, t->host; returns the offset of
 * the origin part or -1. */
static ptrdiff_t parse_absolute(const unsigned char *s, size_t len, pv_uri_target_t *t)
{
    size_t i = 0;
    if (!is_alpha(s[0]))
        return -1;
    while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (len - i < 3 || memcmp(s + i, "://", 3) != 0)
        return -1;
    t->scheme = (pv_str_t){(const char *)s, i};
    i += 3;
    size_t hs = i;
    if (i < len && s[i] == '[') {
        i++;
        while (i < len && s[i] != ']') {
            if (!is_literal_char(s[i]))
                return -1;
            i++;
        }
        if (i == len)
            return -1;
        i++;
    } else {
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.' || s[i] == '-'))
            i++;
    }
    if (i == hs)
        return -1;
    if (i < len && s[i] == ':') {
        i++;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && s[i] != '/' && s[i] != '?')
        return -1;
    t->host = (pv_str_t){(const char *)s + hs, i - hs};
    return (ptrdiff_t)i;
}

int pv_uri_parse_target(pv_arena_t *a, pv_str_t target, int allow_asterisk, pv_uri_target_t *t)
{
    const unsigned char *s = (const unsigned char *)target.p;
    memset(t, 0, sizeof(*t));
    if (target.len == 0)
        return -1;
    pv_str_t o = target;
    if (target.len == 1 && s[0] == '*') {
        if (!allow_asterisk)
            return -1;
        t->asterisk = 1;
        t->request_uri = target;
        t->uri = target;
        return 0;
    }
    if (s[0] != '/') {
        ptrdiff_t off = parse_absolute(s, target.len, t);
        if (off < 0)
            return -1;
        t->absolute = 1;
        o = (pv_str_t){target.p + off, target.len - (size_t)off};
        if (o.len == 0) {
            o = PV_STR("/");
        } else if (o.p[0] == '?') {
            /* "http://h?q": keep the origin part a valid origin-form */
            char *x = pv_arena_alloc(a, o.len + 2);
            x[0] = '/';
            memcpy(x + 1, o.p, o.len);
            x[o.len + 1] = '\0';
            o = (pv_str_t){x, o.len + 1};
        }
    }
    t->request_uri = o;
    char *u = pv_arena_alloc(a, o.len + 2);
    size_t ulen;
    if (pv_uri_normalize(o.p, o.len, u, &ulen, &t->args, &t->has_args) != 0)
        return -1;
    u[ulen] = '\0';
    t->uri = (pv_str_t){u, ulen};
    return 0;
}

/* ngx_escape_uri's NGX_ESCAPE_URI set. */
static int uri_needs_escape(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return 1;
    switch (c) {
    case '"': case '#': case '%': case '<': case '>': case '?':
    case '\\': case '^': case '`': case '{': case '|': case '}':
        return 1;
    default:
        return 0;
    }
}

size_t pv_uri_escape(char *dst, const char *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (uri_needs_escape(c)) {
            if (dst) {
                dst[n] = '%';
                dst[n + 1] = hex[c >> 4];
                dst[n + 2] = hex[c & 0xf];
            }
            n += 3;
        } else {
            if (dst)
                dst[n] = (char)c;
            n++;
        }
    }
    return n;
}

/* Length of the host part and whether it needs lowercasing; -1 if invalid. */
static ptrdiff_t host_scan(const char *in, size_t len, int *upper)
{
    enum { H_USUAL, H_LITERAL, H_REST } st = H_USUAL;
    ptrdiff_t dot = -2;
    size_t hl = len;
    *upper = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        switch (c) {
        case '.':
            if (dot == (ptrdiff_t)i - 1)
                return -1;
            dot = (ptrdiff_t)i;
            break;
        case ':':
            if (st == H_USUAL) {
                hl = i;
                st = H_REST;
            }
            break;
        case '[':
            if (i == 0)
                st = H_LITERAL;
            break;
        case ']':
            if (st == H_LITERAL) {
                hl = i + 1;
                st = H_REST;
            }
            break;
        default:
            if (c == '/' || c <= 0x20 || c == 0x7f)
                return -1;
            if (c >= 'A' && c <= 'Z')
                *upper = 1;
            break;
        }
    }
    if (hl > 0 && dot == (ptrdiff_t)hl - 1)
        hl--;
    if (hl == 0)
        return -1;
    return (ptrdiff_t)hl;
}

int pv_uri_host_normalize(const char *in, size_t len, char *out, size_t *outlen)
{
    int upper;
    ptrdiff_t hl = host_scan(in, len, &upper);
    if (hl < 0)
        return -1;
    for (ptrdiff_t i = 0; i < hl; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
    }
    *outlen = (size_t)hl;
    return 0;
}

int pv_uri_validate_host(pv_arena_t *a, pv_str_t host, pv_str_t *out)
{
    int upper;
    ptrdiff_t hl = host_scan(host.p, host.len, &upper);
    if (hl < 0)
        return -1;
    if (!upper) {
        *out = (pv_str_t){host.p, (size_t)hl};
        return 0;
    }
    char *x = pv_arena_alloc(a, (size_t)hl + 1);
    for (ptrdiff_t i = 0; i < hl; i++) {
        char c = host.p[i];
        x[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
    }
    x[hl] = '\0';
    *out = (pv_str_t){x, (size_t)hl};
    return 0;
}
