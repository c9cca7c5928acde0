/* Evaluation of compiled values, and the registration of the variable
 * tables with the config compiler. The variables themselves (names and
 * getters) are in var_request.c and var_response.c; this file knows none
 * of them. */
#include "vars.h"

#include <string.h>

#include "request.h"
#include "uvars.h"

/* Scratch pv_cv_eval() hands to getters; every formatted value fits. */
#define PV_VAR_SCRATCH 128

static const char hex_upper[] = "0123456789ABCDEF";
static const char *const empty_value = "";

/* Every table of variables; pv_var_find() searches them in this order. */
static const pv_var_t *const var_tables[] = {pv_vars_request, pv_vars_response, pv_vars_timing,
                                            pv_vars_trace,   pv_vars_ssl,       pv_vars_static, pv_vars_ssi,
                                            pv_vars_fastcgi, NULL};

/* ---- output ------------------------------------------------------------ */

/* Append bytes as they are. */
static void w_raw(pv_var_out_t *w, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (w->len < w->cap) {
        size_t k = PV_MIN(n, w->cap - w->len);
        memcpy(w->out + w->len, p, k);
    }
    w->len += n;
}

/* Append one byte as it is. */
static void w_byte(pv_var_out_t *w, char c)
{
    if (w->len < w->cap)
        w->out[w->len] = c;
    w->len++;
}

/* The bytes each escaping changes. NGINX's log escaping: '"', '\\',
 * control bytes, DEL and non-ASCII; JSON escaping leaves bytes >= 0x7f
 * alone, as ngx_escape_json() does. */
static const uint8_t esc_log[256] = {[0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f ... 0xff] = 1};
static const uint8_t esc_json[256] = {[0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1};

/* Append a variable's value with the writer's escaping. */
static void w_escaped(pv_var_out_t *w, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, run = 0;

    if (n == 0)
        return;
    if (w->escape == PV_ESCAPE_NONE) {
        w_raw(w, p, n);
        return;
    }
    const uint8_t *needs = w->escape == PV_ESCAPE_JSON ? esc_json : esc_log;
    while (i < n) {
        unsigned char c = s[i];
        if (!needs[c]) {
            i++;
            continue;
        }
        w_raw(w, p + run, i - run);
        if (w->escape == PV_ESCAPE_JSON) {
            char e[6] = {'\\', 0};
            switch (c) {
            case '"': case '\\': e[1] = (char)c; w_raw(w, e, 2); break;
            case '\n': w_raw(w, "\\n", 2); break;
            case '\r': w_raw(w, "\\r", 2); break;
            case '\t': w_raw(w, "\\t", 2); break;
            case '\b': w_raw(w, "\\b", 2); break;
            case '\f': w_raw(w, "\\f", 2); break;
            default:
                e[1] = 'u'; e[2] = '0'; e[3] = '0';
                e[4] = hex_upper[c >> 4]; e[5] = hex_upper[c & 0xf];
                w_raw(w, e, 6);
            }
        } else {
            char e[4] = {'\\', 'x', hex_upper[c >> 4], hex_upper[c & 0xf]};
            w_raw(w, e, 4);
        }
        run = ++i;
    }
    w_raw(w, p + run, n - run);
}

void pv_var_put(pv_var_out_t *o, const char *p, size_t n)
{
    w_escaped(o, p, n);
}

/* ---- header helpers for getters ---------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

int pv_var_hdr_eq(pv_str_t h, pv_str_t want)
{
    if (h.len != want.len)
        return 0;
    for (size_t i = 0; i < h.len; i++) {
        unsigned char a = lower((unsigned char)h.p[i]), b = lower((unsigned char)want.p[i]);
        if (a == '_')
            a = '-';
        if (b == '_')
            b = '-';
        if (a != b)
            return 0;
    }
    return 1;
}

const pv_header_t *pv_var_hdr_first(const pv_header_t *hs, int n, pv_str_t name, int *count)
{
    const pv_header_t *first = NULL;
    int c = 0;
    for (int i = 0; i < n; i++) {
        if (pv_var_hdr_eq(hs[i].name, name)) {
            if (!first)
                first = &hs[i];
            c++;
        }
    }
    if (count)
        *count = c;
    return first;
}

pv_str_t pv_var_hdr_value(const pv_header_t *h)
{
    return (pv_str_t){h->value.p ? h->value.p : empty_value, h->value.len};
}

/* Skip spaces in [p, e). */
static const char *skip_sp(const char *p, const char *e)
{
    while (p < e && *p == ' ')
        p++;
    return p;
}

int pv_var_cookie(const pv_header_t *hs, int n, pv_str_t name, pv_str_t *v)
{
    for (int i = 0; i < n; i++) {
        if (!PV_STR_IEQ(hs[i].name, "cookie") || name.len > hs[i].value.len)
            continue;
        const char *p = hs[i].value.p, *e = p + hs[i].value.len;
        while (p < e) {
            if ((size_t)(e - p) >= name.len && strncasecmp(p, name.p, name.len) == 0) {
                const char *q = skip_sp(p + name.len, e);
                if (q < e && *q == '=') {
                    q = skip_sp(q + 1, e);
                    const char *end = memchr(q, ';', (size_t)(e - q));
                    *v = (pv_str_t){(char *)q, (size_t)((end ? end : e) - q)};
                    return PV_VAL_FOUND;
                }
            }
            while (p < e && *p != ';' && *p != ',')
                p++;
            p = skip_sp(p + (p < e), e);
        }
    }
    return PV_VAL_MISSING;
}

int pv_var_set_cookie(const pv_header_t *hs, int n, pv_str_t name, pv_str_t *v)
{
    for (int i = 0; i < n; i++) {
        if (!PV_STR_IEQ(hs[i].name, "set-cookie") || name.len >= hs[i].value.len)
            continue;
        const char *p = hs[i].value.p, *e = p + hs[i].value.len;
        if (strncasecmp(p, name.p, name.len) != 0)
            continue;
        p = skip_sp(p + name.len, e);
        if (p == e || *p != '=')
            continue;
        p = skip_sp(p + 1, e);
        const char *end = memchr(p, ';', (size_t)(e - p));
        *v = (pv_str_t){(char *)p, (size_t)((end ? end : e) - p)};
        return PV_VAL_FOUND;
    }
    return PV_VAL_MISSING;
}

int pv_var_hdr_join(const pv_header_t *hs, int n, pv_str_t name, char sep, pv_var_out_t *o)
{
    char s[2] = {sep, ' '};
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (!pv_var_hdr_eq(hs[i].name, name))
            continue;
        if (!first)
            w_escaped(o, s, 2);
        w_escaped(o, hs[i].value.p, hs[i].value.len);
        first = 0;
    }
    return PV_VAL_WRITTEN;
}

/* ---- registration (before config load) -------------------------------- */

void pv_http_vars_init(void)
{
    static const pv_cv_special_t special = {&pv_var_declared, &pv_var_user, &pv_var_capture};
    pv_cv_vars(var_tables, &special);
}

/* ---- evaluation -------------------------------------------------------- */

int pv_cv_true(const pv_cv_t *cv, struct pv_request_s *r)
{
    char v[2];
    size_t len = pv_cv_eval(cv, r, PV_ESCAPE_NONE, v, sizeof(v));
    return len && !(len == 1 && v[0] == '0');
}

size_t pv_cv_eval(const pv_cv_t *cv, struct pv_request_s *r, int escape, char *out, size_t cap)
{
    char scratch[PV_VAR_SCRATCH];
    pv_var_out_t w = {out, cap, 0, escape & ~PV_CV_ANON, (escape & PV_CV_ANON) != 0, scratch, sizeof(scratch)};

    escape &= ~PV_CV_ANON;
    if (!cv || cv->nparts <= 0)
        return 0;
    if (cv->is_const) {
        w_raw(&w, cv->parts[0].text.p, cv->parts[0].text.len);
        return w.len;
    }
    for (int i = 0; i < cv->nparts; i++) {
        const pv_cv_part_t *part = &cv->parts[i];
        if (!part->var) {
            w_raw(&w, part->text.p, part->text.len);
            continue;
        }
        pv_str_t v = {empty_value, 0};
        switch (part->var->get(r, part, &w, &v)) {
        case PV_VAL_FOUND:
            if (escape == PV_ESCAPE_NONE || (part->var->flags & PV_VAR_F_PLAIN))
                w_raw(&w, v.p, v.len);
            else
                w_escaped(&w, v.p, v.len);
            break;
        case PV_VAL_WRITTEN:
            break;
        default:
            if (escape == PV_ESCAPE_DEFAULT)
                w_byte(&w, '-');
            else if (escape == PV_ESCAPE_JSON && (part->var->flags & PV_VAR_F_NUMBER))
                w_raw(&w, "null", 4);
            break;
        }
    }
    return w.len;
}

pv_str_t pv_var_get(struct pv_request_s *r, const pv_cv_part_t *part, char *scratch, size_t scratchlen)
{
    pv_var_out_t w = {scratch, scratchlen, 0, PV_ESCAPE_NONE, 0, scratch, scratchlen};
    pv_str_t v = {empty_value, 0};

    if (!part->var)
        return (pv_str_t){NULL, 0};
    switch (part->var->get(r, part, &w, &v)) {
    case PV_VAL_MISSING:
        return (pv_str_t){NULL, 0};
    case PV_VAL_FOUND:
        return v;
    default:
        if (w.len <= scratchlen)
            return (pv_str_t){scratch, w.len};
        if (!r->arena)
            return (pv_str_t){scratch, scratchlen};
        /* a joined header list longer than scratch lives in the request arena */
        char *p = pv_arena_alloc(r->arena, w.len);
        w = (pv_var_out_t){p, w.len, 0, PV_ESCAPE_NONE, 0, scratch, scratchlen};
        part->var->get(r, part, &w, &v);
        return (pv_str_t){p, w.len};
    }
}
