/* Set-Cookie rewriting (see cookie.h), with NGINX's semantics: the value
 * is split at ';'; a Domain attribute goes through the proxy_cookie_domain
 * lines and a Path attribute through the proxy_cookie_path lines, the
 * first line that matches replacing it; the first proxy_cookie_flags
 * line whose cookie name matches sets or removes Secure, HttpOnly and
 * SameSite. Once anything matched, the attributes are written back joined
 * with "; ". A value without '=' in its first pair is left alone. */
#include "cookie.h"

#include <string.h>
#include <strings.h>

#include "../http/uvars.h"

enum {
    SECURE_ON = 0x01,
    SECURE_OFF = 0x02,
    HTTPONLY_ON = 0x04,
    HTTPONLY_OFF = 0x08,
    SAMESITE_STRICT = 0x10,
    SAMESITE_LAX = 0x20,
    SAMESITE_NONE = 0x40,
    SAMESITE_OFF = 0x80,
    SAMESITE_SET = SAMESITE_STRICT | SAMESITE_LAX | SAMESITE_NONE,
};

static const struct {
    const char *name;
    int bit;
} flag_names[] = {
    {"secure", SECURE_ON},
    {"nosecure", SECURE_OFF},
    {"httponly", HTTPONLY_ON},
    {"nohttponly", HTTPONLY_OFF},
    {"samesite=strict", SAMESITE_STRICT},
    {"samesite=lax", SAMESITE_LAX},
    {"samesite=none", SAMESITE_NONE},
    {"nosamesite", SAMESITE_OFF},
};

int pv_cookie_count(pv_str_t v)
{
    int n = 1;
    for (size_t i = 0; i < v.len; i++)
        n += v.p[i] == ';';
    return n;
}

static pv_str_t trim(const char *b, const char *e)
{
    while (b < e && *b == ' ')
        b++;
    while (e > b && e[-1] == ' ')
        e--;
    return (pv_str_t){(char *)b, (size_t)(e - b)};
}

void pv_cookie_split(pv_str_t v, pv_cookie_attr_t *a)
{
    const char *s = v.p, *end = v.p + v.len;
    for (int i = 0;; i++) {
        const char *last = memchr(s, ';', (size_t)(end - s));
        if (!last)
            last = end;
        const char *eq = memchr(s, '=', (size_t)(last - s));
        a[i].key = trim(s, eq ? eq : last);
        a[i].value = eq ? trim(eq + 1, last) : (pv_str_t){NULL, 0};
        if (last == end)
            return;
        s = last + 1;
    }
}

size_t pv_cookie_join(const pv_cookie_attr_t *a, int n, char *out)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (!a[i].key.p)
            continue;
        if (i > 0) {
            if (out)
                memcpy(out + len, "; ", 2);
            len += 2;
        }
        if (out)
            memcpy(out + len, a[i].key.p, a[i].key.len);
        len += a[i].key.len;
        if (a[i].value.p) {
            if (out) {
                out[len] = '=';
                memcpy(out + len + 1, a[i].value.p, a[i].value.len);
            }
            len += 1 + a[i].value.len;
        }
    }
    return len;
}

int pv_proxy_cookie_any(const pv_cookie_conf_t *c)
{
    return c->ndomains || c->npaths || c->nflags;
}

static pv_str_t concat(pv_request_t *r, pv_str_t a, pv_str_t b)
{
    char *s = pv_arena_alloc(r->arena, a.len + b.len + 1);
    memcpy(s, a.p, a.len);
    memcpy(s + a.len, b.p, b.len);
    s[a.len + b.len] = '\0';
    return (pv_str_t){s, a.len + b.len};
}

/* The first of the lines that matches *v replaces it (a regex: the whole
 * value; a domain: all but a leading '.', compared in any case; a path:
 * the prefix, compared exactly). 1 when one did. */
static int rewrite_value(pv_request_t *r, const pv_redirect_t *l, int n, int domain, pv_str_t *v)
{
    for (int i = 0; i < n; i++) {
        if (l[i].re) {
            if (pv_regex_exec(r, l[i].re, *v) <= 0)
                continue;
            *v = pv_cv_eval_arena(&l[i].replacement, r);
            return 1;
        }
        pv_str_t pat = pv_cv_eval_arena(&l[i].pattern, r);
        if (domain) {
            size_t dot = v->len && v->p[0] == '.';
            if (pat.len != v->len - dot || strncasecmp(pat.p, v->p + dot, pat.len) != 0)
                continue;
            *v = concat(r, (pv_str_t){v->p, dot}, pv_cv_eval_arena(&l[i].replacement, r));
            return 1;
        }
        if (pat.len > v->len || memcmp(pat.p, v->p, pat.len) != 0)
            continue;
        *v = concat(r, pv_cv_eval_arena(&l[i].replacement, r), (pv_str_t){v->p + pat.len, v->len - pat.len});
        return 1;
    }
    return 0;
}

/* The flag bits of the first proxy_cookie_flags line naming the cookie;
 * 0 when none does or its flags evaluate to no known word. */
static int flags_for(pv_request_t *r, const pv_cookie_conf_t *c, pv_str_t name)
{
    const pv_cookie_flags_t *cf = NULL;
    for (int i = 0; i < c->nflags && !cf; i++) {
        if (c->flags[i].re) {
            if (pv_regex_exec(r, c->flags[i].re, name) > 0)
                cf = &c->flags[i];
            continue;
        }
        pv_str_t pat = pv_cv_eval_arena(&c->flags[i].name, r);
        if (pat.len == name.len && strncasecmp(pat.p, name.p, pat.len) == 0)
            cf = &c->flags[i];
    }
    int f = 0;
    for (int i = 0; cf && i < cf->nflags; i++) {
        pv_str_t w = pv_cv_eval_arena(&cf->flags[i], r);
        for (size_t k = 0; k < PV_NELEM(flag_names); k++)
            if (w.len == strlen(flag_names[k].name) && strncasecmp(w.p, flag_names[k].name, w.len) == 0)
                f |= flag_names[k].bit;
    }
    return f;
}

static void set_attr(pv_cookie_attr_t *a, const char *key, const char *value)
{
    a->key = (pv_str_t){(char *)key, strlen(key)};
    a->value = value ? (pv_str_t){(char *)value, strlen(value)} : (pv_str_t){NULL, 0};
}

static const char *samesite_word(int f)
{
    return f & SAMESITE_STRICT ? "Strict" : f & SAMESITE_LAX ? "Lax" : "None";
}

/* Apply flag bits f to a[1..*n): a flag to set that is there is kept (a
 * SameSite of another value rewritten), one to remove is dropped, and the
 * ones to set that were missing are appended (a has room for three). */
static void edit_flags(pv_cookie_attr_t *a, int *n, int f)
{
    for (int i = 1; i < *n; i++) {
        pv_str_t k = a[i].key;
        if (k.len == 6 && PV_STR_IEQ(k, "secure")) {
            if (f & SECURE_ON)
                f &= ~SECURE_ON;
            else if (f & SECURE_OFF)
                a[i].key.p = NULL;
        } else if (k.len == 8 && PV_STR_IEQ(k, "httponly")) {
            if (f & HTTPONLY_ON)
                f &= ~HTTPONLY_ON;
            else if (f & HTTPONLY_OFF)
                a[i].key.p = NULL;
        } else if (k.len == 8 && PV_STR_IEQ(k, "samesite")) {
            if (f & SAMESITE_SET) {
                const char *w = samesite_word(f);
                if (!a[i].value.p || a[i].value.len != strlen(w) || strncasecmp(a[i].value.p, w, a[i].value.len) != 0)
                    set_attr(&a[i], "SameSite", w);
                f &= ~SAMESITE_SET;
            } else if (f & SAMESITE_OFF) {
                a[i].key.p = NULL;
            }
        }
    }
    if (f & SECURE_ON)
        set_attr(&a[(*n)++], "Secure", NULL);
    if (f & HTTPONLY_ON)
        set_attr(&a[(*n)++], "HttpOnly", NULL);
    if (f & SAMESITE_SET)
        set_attr(&a[(*n)++], "SameSite", samesite_word(f));
}

int pv_proxy_cookie_rewrite(pv_request_t *r, const pv_cookie_conf_t *c, pv_str_t v, pv_str_t *out)
{
    if (!v.p)
        return 0;
    int n = pv_cookie_count(v);
    pv_cookie_attr_t *a = pv_arena_alloc(r->arena, sizeof(*a) * (size_t)(n + 3));
    pv_cookie_split(v, a);
    if (!a[0].value.p)
        return 0;
    int changed = 0;
    for (int i = 1; i < n; i++) {
        pv_str_t k = a[i].key;
        if (!a[i].value.p)
            continue;
        if (c->ndomains && k.len == 6 && PV_STR_IEQ(k, "domain"))
            changed |= rewrite_value(r, c->domains, c->ndomains, 1, &a[i].value);
        else if (c->npaths && k.len == 4 && PV_STR_IEQ(k, "path"))
            changed |= rewrite_value(r, c->paths, c->npaths, 0, &a[i].value);
    }
    int f = c->nflags ? flags_for(r, c, a[0].key) : 0;
    if (f) {
        edit_flags(a, &n, f);
        changed = 1;
    }
    if (!changed)
        return 0;
    size_t len = pv_cookie_join(a, n, NULL);
    char *s = pv_arena_alloc(r->arena, len + 1);
    pv_cookie_join(a, n, s);
    s[len] = '\0';
    *out = (pv_str_t){s, len};
    return 1;
}
