/* Strict JSON parser into a caller-provided flat node array; see json.h
 * for what is refused and why. Recursive descent, depth-limited. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* Parser state for one document. */
typedef struct json_parser_s {
    const char *s;         /* text */
    size_t len;            /* text length */
    size_t pos;            /* next byte to read */
    pv_json_node_t *nodes; /* output */
    size_t cap;            /* output capacity */
    uint32_t n;            /* nodes used */
    unsigned max_depth;    /* nesting limit */
    const char *err;       /* first error */
    size_t erroff;         /* where it happened */
} json_parser_t;

static int fail(json_parser_t *p, const char *msg)
{
    if (!p->err) {
        p->err = msg;
        p->erroff = p->pos;
    }
    return -1;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(json_parser_t *p)
{
    while (p->pos < p->len && is_ws((unsigned char)p->s[p->pos]))
        p->pos++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s (the caller checked they are there); -1 if not hex. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80),
 * 0 if it is not one: no overlong forms, no surrogates, nothing above
 * U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

static int new_node(json_parser_t *p, pv_json_type_t type)
{
    if (p->n >= p->cap)
        return fail(p, "too many values");
    pv_json_node_t *nd = &p->nodes[p->n];
    nd->type = (uint8_t)type;
    nd->flags = 0;
    nd->next = 0;
    nd->count = 0;
    nd->off = (uint32_t)p->pos;
    nd->len = 0;
    return (int)p->n++;
}

/* A string at p->pos (on the opening quote). Returns its node index. */
static int parse_string(json_parser_t *p)
{
    int idx = new_node(p, PV_JSON_STRING);
    if (idx < 0)
        return -1;
    p->pos++;
    size_t start = p->pos;
    uint8_t flags = 0;
    for (;;) {
        if (p->pos >= p->len)
            return fail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(p, "control character in string");
        if (c == '\\') {
            flags |= PV_JSON_F_ESCAPED;
            if (p->pos + 1 >= p->len)
                return fail(p, "unterminated string");
            unsigned char e = (unsigned char)p->s[p->pos + 1];
            if (e == 'u') {
                if (p->len - p->pos < 6)
                    return fail(p, "bad \\u escape");
                long cp = hex4(p->s + p->pos + 2);
                if (cp < 0)
                    return fail(p, "bad \\u escape");
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail(p, "unpaired surrogate in \\u escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    long lo = -1;
                    if (p->len - p->pos >= 12 && p->s[p->pos + 6] == '\\' && p->s[p->pos + 7] == 'u')
                        lo = hex4(p->s + p->pos + 8);
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail(p, "unpaired surrogate in \\u escape");
                    p->pos += 12;
                } else {
                    p->pos += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return fail(p, "bad escape in string");
            p->pos += 2;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (n == 0)
                return fail(p, "invalid UTF-8 in string");
            p->pos += n;
            continue;
        }
        p->pos++;
    }
    pv_json_node_t *nd = &p->nodes[idx];
    nd->off = (uint32_t)start;
    nd->len = (uint32_t)(p->pos - start);
    nd->flags = flags;
    p->pos++; /* closing quote */
    return idx;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* number = [ minus ] int [ frac ] [ exp ] (RFC 8259 section 6). */
static int parse_number(json_parser_t *p)
{
    int idx = new_node(p, PV_JSON_NUMBER);
    if (idx < 0)
        return -1;
    size_t start = p->pos;
    uint8_t flags = PV_JSON_F_INTEGER;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos]))
        return fail(p, "bad number");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            return fail(p, "leading zero in number");
    } else {
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        flags = 0;
        p->pos++;
        if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos]))
            return fail(p, "bad number");
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        flags = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit((unsigned char)p->s[p->pos]))
            return fail(p, "bad number");
        while (p->pos < p->len && is_digit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    p->nodes[idx].flags = flags;
    p->nodes[idx].len = (uint32_t)(p->pos - start);
    return idx;
}

static int parse_literal(json_parser_t *p, const char *lit, size_t n, pv_json_type_t type)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
        return fail(p, "unexpected character");
    int idx = new_node(p, type);
    if (idx < 0)
        return -1;
    p->nodes[idx].len = (uint32_t)n;
    p->pos += n;
    return idx;
}

/* Iterator over the unescaped bytes of a string's raw text. */
typedef struct unesc_s {
    const char *s;          /* raw string content (no quotes) */
    size_t len;             /* its length */
    size_t i;               /* next raw byte */
    unsigned char pend[4];  /* UTF-8 bytes of the current escape */
    int np;                 /* bytes in pend */
    int ip;                 /* next byte of pend */
} unesc_t;

/* Next unescaped byte, -1 at the end. The text was validated by the
 * parser, so escapes are well formed here. */
static int unesc_next(unesc_t *u)
{
    if (u->ip < u->np)
        return u->pend[u->ip++];
    if (u->i >= u->len)
        return -1;
    unsigned char c = (unsigned char)u->s[u->i];
    if (c != '\\') {
        u->i++;
        return c;
    }
    unsigned char e = (unsigned char)u->s[u->i + 1];
    u->i += 2;
    switch (e) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u':
        break;
    default:
        return e; /* '"', '\\', '/' */
    }
    uint32_t cp = (uint32_t)hex4(u->s + u->i);
    u->i += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo = (uint32_t)hex4(u->s + u->i + 2);
        u->i += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    u->ip = 0;
    if (cp < 0x80) {
        u->np = 0;
        return (int)cp;
    }
    if (cp < 0x800) {
        u->pend[0] = (unsigned char)(0xc0 | (cp >> 6));
        u->pend[1] = (unsigned char)(0x80 | (cp & 0x3f));
        u->np = 2;
    } else if (cp < 0x10000) {
        u->pend[0] = (unsigned char)(0xe0 | (cp >> 12));
        u->pend[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u->pend[2] = (unsigned char)(0x80 | (cp & 0x3f));
        u->np = 3;
    } else {
        u->pend[0] = (unsigned char)(0xf0 | (cp >> 18));
        u->pend[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u->pend[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u->pend[3] = (unsigned char)(0x80 | (cp & 0x3f));
        u->np = 4;
    }
    return u->pend[u->ip++];
}

static void unesc_init(unesc_t *u, const char *text, const pv_json_node_t *n)
{
    u->s = text + n->off;
    u->len = n->len;
    u->i = 0;
    u->np = u->ip = 0;
}

/* Equality of two validated string nodes after unescaping. */
static int str_nodes_eq(const char *text, const pv_json_node_t *a, const pv_json_node_t *b)
{
    if (!((a->flags | b->flags) & PV_JSON_F_ESCAPED))
        return a->len == b->len && memcmp(text + a->off, text + b->off, a->len) == 0;
    unesc_t ua, ub;
    unesc_init(&ua, text, a);
    unesc_init(&ub, text, b);
    for (;;) {
        int ca = unesc_next(&ua), cb = unesc_next(&ub);
        if (ca != cb)
            return 0;
        if (ca < 0)
            return 1;
    }
}

static int parse_value(json_parser_t *p, unsigned depth);

/* An object at p->pos (on '{'). Members are linked name -> value -> name. */
static int parse_object(json_parser_t *p, unsigned depth)
{
    int idx = new_node(p, PV_JSON_OBJECT);
    if (idx < 0)
        return -1;
    size_t start = p->pos++;
    uint32_t last = 0, first = 0, count = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected member name");
            size_t name_pos = p->pos;
            int k = parse_string(p);
            if (k < 0)
                return -1;
            /* reject a name seen before in this object */
            for (uint32_t o = first; o; o = p->nodes[p->nodes[o].next].next) {
                if (str_nodes_eq(p->s, &p->nodes[o], &p->nodes[k])) {
                    p->pos = name_pos;
                    return fail(p, "duplicate member name");
                }
                if (p->nodes[o].next == last)
                    break;
            }
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
            int v = parse_value(p, depth);
            if (v < 0)
                return -1;
            if (last)
                p->nodes[last].next = (uint32_t)k;
            else
                first = (uint32_t)k;
            p->nodes[k].next = (uint32_t)v;
            last = (uint32_t)v;
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == '}') {
                p->pos++;
                break;
            }
            return fail(p, "expected ',' or '}'");
        }
    }
    p->nodes[idx].count = count;
    p->nodes[idx].len = (uint32_t)(p->pos - start);
    return idx;
}

/* An array at p->pos (on '['). */
static int parse_array(json_parser_t *p, unsigned depth)
{
    int idx = new_node(p, PV_JSON_ARRAY);
    if (idx < 0)
        return -1;
    size_t start = p->pos++;
    uint32_t last = 0, count = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            int v = parse_value(p, depth);
            if (v < 0)
                return -1;
            if (last)
                p->nodes[last].next = (uint32_t)v;
            last = (uint32_t)v;
            count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == ']') {
                p->pos++;
                break;
            }
            return fail(p, "expected ',' or ']'");
        }
    }
    p->nodes[idx].count = count;
    p->nodes[idx].len = (uint32_t)(p->pos - start);
    return idx;
}

/* Any value; depth is the number of containers around it. */
static int parse_value(json_parser_t *p, unsigned depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of text");
    switch (p->s[p->pos]) {
    case '{':
        if (depth >= p->max_depth)
            return fail(p, "nesting too deep");
        return parse_object(p, depth + 1);
    case '[':
        if (depth >= p->max_depth)
            return fail(p, "nesting too deep");
        return parse_array(p, depth + 1);
    case '"':
        return parse_string(p);
    case 't':
        return parse_literal(p, "true", 4, PV_JSON_TRUE);
    case 'f':
        return parse_literal(p, "false", 5, PV_JSON_FALSE);
    case 'n':
        return parse_literal(p, "null", 4, PV_JSON_NULL);
    default:
        if (p->s[p->pos] == '-' || is_digit((unsigned char)p->s[p->pos]))
            return parse_number(p);
        return fail(p, "unexpected character");
    }
}

size_t pv_json_count(const char *text, size_t len)
{
    size_t n = 0;
    int sep = 1; /* previous byte outside strings ended a token */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"') {
            n++;
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            sep = 0;
        } else if (c == '[' || c == '{') {
            n++;
            sep = 1;
        } else if (c == ',' || c == ':' || c == ']' || c == '}' || is_ws(c)) {
            sep = 1;
        } else {
            if (sep)
                n++;
            sep = 0;
        }
    }
    return n;
}

int pv_json_parse(pv_json_t *d, const char *text, size_t len, pv_json_node_t *nodes, size_t cap,
                  unsigned max_depth)
{
    json_parser_t p = {.s = text, .len = len, .nodes = nodes, .cap = cap};
    p.max_depth = max_depth > PV_JSON_DEPTH_MAX ? PV_JSON_DEPTH_MAX : max_depth;
    d->text = text;
    d->len = len;
    d->nodes = nodes;
    d->n = 0;
    d->err = NULL;
    d->erroff = 0;
    if (len >= UINT32_MAX) {
        d->err = "document too large";
        return PV_ERR;
    }
    if (parse_value(&p, 0) >= 0) {
        skip_ws(&p);
        if (p.pos != len)
            fail(&p, "trailing characters after the value");
    }
    if (p.err) {
        d->err = p.err;
        d->erroff = p.erroff;
        return PV_ERR;
    }
    d->n = p.n;
    return PV_OK;
}

unsigned pv_json_line(const char *text, size_t len, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

const pv_json_node_t *pv_json_root(const pv_json_t *d)
{
    return d->n ? &d->nodes[0] : NULL;
}

const pv_json_node_t *pv_json_first(const pv_json_t *d, const pv_json_node_t *n)
{
    (void)d;
    if (!n || (n->type != PV_JSON_ARRAY && n->type != PV_JSON_OBJECT) || n->count == 0)
        return NULL;
    return n + 1;
}

const pv_json_node_t *pv_json_next(const pv_json_t *d, const pv_json_node_t *n)
{
    return n && n->next ? &d->nodes[n->next] : NULL;
}

int pv_json_streq(const pv_json_t *d, const pv_json_node_t *n, const char *s, size_t len)
{
    if (!n || n->type != PV_JSON_STRING)
        return 0;
    if (!(n->flags & PV_JSON_F_ESCAPED))
        return n->len == len && memcmp(d->text + n->off, s, len) == 0;
    unesc_t u;
    unesc_init(&u, d->text, n);
    size_t i = 0;
    for (int c; (c = unesc_next(&u)) >= 0; i++)
        if (i >= len || (unsigned char)s[i] != c)
            return 0;
    return i == len;
}

const pv_json_node_t *pv_json_get(const pv_json_t *d, const pv_json_node_t *obj, const char *name,
                                  size_t nlen)
{
    if (!obj || obj->type != PV_JSON_OBJECT)
        return NULL;
    for (const pv_json_node_t *k = pv_json_first(d, obj); k; k = pv_json_next(d, k + 1))
        if (pv_json_streq(d, k, name, nlen))
            return k + 1; /* a name is one node: its value follows it */
    return NULL;
}

size_t pv_json_strlen(const pv_json_t *d, const pv_json_node_t *n)
{
    if (!n || n->type != PV_JSON_STRING)
        return 0;
    if (!(n->flags & PV_JSON_F_ESCAPED))
        return n->len;
    unesc_t u;
    unesc_init(&u, d->text, n);
    size_t i = 0;
    while (unesc_next(&u) >= 0)
        i++;
    return i;
}

int pv_json_str(const pv_json_t *d, const pv_json_node_t *n, char *buf, size_t cap, pv_str_t *out)
{
    if (!n || n->type != PV_JSON_STRING)
        return PV_ERR;
    if (!(n->flags & PV_JSON_F_ESCAPED)) {
        *out = (pv_str_t){d->text + n->off, n->len};
        return PV_OK;
    }
    unesc_t u;
    unesc_init(&u, d->text, n);
    size_t i = 0;
    for (int c; (c = unesc_next(&u)) >= 0; i++) {
        if (i >= cap)
            return PV_ERR;
        buf[i] = (char)c;
    }
    *out = (pv_str_t){buf, i};
    return PV_OK;
}

pv_str_t pv_json_raw(const pv_json_t *d, const pv_json_node_t *n)
{
    if (n->type == PV_JSON_STRING)
        return (pv_str_t){d->text + n->off - 1, (size_t)n->len + 2};
    return (pv_str_t){d->text + n->off, n->len};
}

int pv_json_int64(const pv_json_t *d, const pv_json_node_t *n, int64_t *v)
{
    if (!n || n->type != PV_JSON_NUMBER || !(n->flags & PV_JSON_F_INTEGER))
        return PV_ERR;
    const char *s = d->text + n->off;
    size_t i = 0, len = n->len;
    int neg = s[0] == '-';
    if (neg)
        i++;
    /* accumulate negatively so INT64_MIN fits */
    int64_t acc = 0;
    for (; i < len; i++) {
        int dg = s[i] - '0';
        if (acc < (INT64_MIN + dg) / 10)
            return PV_ERR;
        acc = acc * 10 - dg;
    }
    if (!neg) {
        if (acc == INT64_MIN)
            return PV_ERR;
        acc = -acc;
    }
    *v = acc;
    return PV_OK;
}

int pv_json_double(const pv_json_t *d, const pv_json_node_t *n, double *v)
{
    if (!n || n->type != PV_JSON_NUMBER || n->len > PV_JSON_NUMBER_MAX)
        return PV_ERR;
    char buf[PV_JSON_NUMBER_MAX + 1];
    memcpy(buf, d->text + n->off, n->len);
    buf[n->len] = '\0';
    *v = strtod(buf, NULL);
    return PV_OK;
}
