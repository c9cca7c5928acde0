/* Compile "text $var ${var}text" into literal and variable parts once, at
 * load time. The rules are NGINX's script compiler's: a name is
 * [A-Za-z0-9_]+ and case-insensitive, and a '$' not followed by a name is
 * an error ("invalid variable name"), not a literal. The names come from
 * the tables registered with pv_cv_vars(). */
#include "cv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The registered tables (NULL-terminated) and the entry of declared names;
 * set before any config is loaded, read-only after. */
static const pv_var_t *const *var_tables;
static const pv_cv_special_t *var_special;

/* Names declared by auth_request_set in the config being loaded. */
static char *declared[256];
static int ndeclared;
/* User variables (set, map, named captures) of the config being loaded;
 * the position is the slot. */
#define PV_CV_MAX_USER 4096
static char *user_names[PV_CV_MAX_USER];
static int nuser;

void pv_cv_declare(const char *name, size_t len)
{
    for (int i = 0; i < ndeclared; i++)
        if (strlen(declared[i]) == len && strncasecmp(declared[i], name, len) == 0)
            return;
    if (ndeclared < (int)PV_NELEM(declared))
        declared[ndeclared++] = strndup(name, len);
}

void pv_cv_declared_reset(void)
{
    while (ndeclared)
        free(declared[--ndeclared]);
    while (nuser)
        free(user_names[--nuser]);
}

int pv_cv_user_find(const char *name, size_t len)
{
    for (int i = 0; i < nuser; i++)
        if (strlen(user_names[i]) == len && strncasecmp(user_names[i], name, len) == 0)
            return i;
    return -1;
}

int pv_cv_declare_user(const char *name, size_t len)
{
    int i = pv_cv_user_find(name, len);
    if (i >= 0)
        return i;
    if (nuser == PV_CV_MAX_USER)
        return -1;
    char *n = malloc(len + 1);
    if (!n)
        return -1;
    memcpy(n, name, len);
    n[len] = '\0';
    for (size_t k = 0; k < len; k++)
        n[k] = (n[k] >= 'A' && n[k] <= 'Z') ? (char)(n[k] | 0x20) : n[k];
    user_names[nuser] = n;
    return nuser++;
}

int pv_cv_user_count(void)
{
    return nuser;
}

const char *pv_cv_user_name(int i)
{
    return i >= 0 && i < nuser ? user_names[i] : NULL;
}

void pv_cv_vars(const pv_var_t *const *tables, const pv_cv_special_t *special)
{
    var_tables = tables;
    var_special = special;
}

/* An entry of the tables with exactly this name, or NULL. */
static const pv_var_t *find_exact(const char *low, size_t n)
{
    for (size_t t = 0; var_tables && var_tables[t]; t++)
        for (const pv_var_t *v = var_tables[t]; v->name.len; v++)
            if (!(v->flags & PV_VAR_F_PREFIX) && v->name.len == n && memcmp(v->name.p, low, n) == 0)
                return v;
    return NULL;
}

/* The prefixed entry that takes this name, or NULL. */
static const pv_var_t *find_prefix(const char *low, size_t n, pv_str_t *rest)
{
    for (size_t t = 0; var_tables && var_tables[t]; t++) {
        for (const pv_var_t *v = var_tables[t]; v->name.len; v++) {
            if ((v->flags & PV_VAR_F_PREFIX) && n >= v->name.len &&
                memcmp(v->name.p, low, v->name.len) == 0) {
                *rest = (pv_str_t){low + v->name.len, n - v->name.len};
                return v;
            }
        }
    }
    return NULL;
}

const pv_var_t *pv_var_find(const char *low, size_t n, pv_str_t *rest)
{
    const pv_var_t *v = find_exact(low, n);
    if (v) {
        *rest = (pv_str_t){NULL, 0};
        return v;
    }
    return find_prefix(low, n, rest);
}

int pv_cv_upstream_fields;

static int is_name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static int is_declared(const char *low, size_t n)
{
    for (int i = 0; i < ndeclared; i++)
        if (strlen(declared[i]) == n && strncasecmp(declared[i], low, n) == 0)
            return 1;
    return 0;
}

/* Map a lowercased name to a part; returns 0 if the name is unknown. The
 * rest of a prefixed name is copied; in a header name '_' becomes '-'. */
static int lookup(pv_arena_t *a, const char *low, size_t n, pv_cv_part_t *part)
{
    pv_str_t rest = {NULL, 0};
    /* NGINX: a built-in name first, then the added ones, then prefixes */
    const pv_var_t *v = find_exact(low, n);
    int u = v ? -1 : pv_cv_user_find(low, n);
    if (u >= 0 && var_special) {
        part->var = var_special->user;
        part->index = u;
        part->text = (pv_str_t){pv_arena_strndup(a, low, n), n};
        return 1;
    }
    if (!v && !(var_special && is_declared(low, n)))
        v = find_prefix(low, n, &rest);
    if (v) {
        part->var = v;
        part->text = (pv_str_t){NULL, 0};
        if (v->flags & PV_VAR_F_UPSTREAM)
            pv_cv_upstream_fields = 1;
        if (v->flags & PV_VAR_F_PREFIX) {
            char *t = pv_arena_strndup(a, rest.p, rest.len);
            for (size_t i = 0; (v->flags & PV_VAR_F_HEADER) && i < rest.len; i++)
                t[i] = t[i] == '_' ? '-' : t[i];
            part->text = (pv_str_t){t, rest.len};
        }
        return 1;
    }
    if (var_special && is_declared(low, n)) {
        part->var = var_special->declared;
        part->text = (pv_str_t){pv_arena_strndup(a, low, n), n};
        return 1;
    }
    return 0;
}

int pv_cv_compile(pv_cv_t *cv, pv_arena_t *arena, const char *src, size_t len, char *err,
                  size_t errlen)
{
    /* Every '$' starts at most one variable part and one literal part. */
    size_t max = 1;
    for (size_t i = 0; i < len; i++)
        max += src[i] == '$' ? 2 : 0;
    pv_cv_part_t *parts = pv_arena_calloc(arena, max * sizeof(*parts));
    int n = 0, vars = 0;
    size_t i = 0, lit = 0;
    while (i < len) {
        if (src[i] != '$') {
            i++;
            continue;
        }
        if (i > lit) {
            parts[n].var = NULL;
            parts[n].text = (pv_str_t){pv_arena_strndup(arena, src + lit, i - lit), i - lit};
            n++;
        }
        size_t j = i + 1;
        if (j < len && src[j] >= '1' && src[j] <= '9' && var_special) {
            /* "$1".."$9": one digit, as NGINX's script compiler reads it */
            parts[n].var = var_special->capture;
            parts[n].index = src[j] - '0';
            parts[n].text = (pv_str_t){NULL, 0};
            n++;
            vars++;
            i = lit = j + 1;
            continue;
        }
        int bracket = j < len && src[j] == '{';
        if (bracket)
            j++;
        size_t start = j;
        while (j < len && is_name_char((unsigned char)src[j]))
            j++;
        size_t nlen = j - start;
        if (bracket && (j >= len || src[j] != '}')) {
            snprintf(err, errlen, "the closing bracket in \"%.*s\" variable is missing", (int)nlen,
                     src + start);
            return PV_ERR;
        }
        if (nlen == 0) {
            snprintf(err, errlen, "invalid variable name");
            return PV_ERR;
        }
        char low[128];
        if (nlen >= sizeof(low)) {
            snprintf(err, errlen, "unknown \"%.*s\" variable", (int)nlen, src + start);
            return PV_ERR;
        }
        for (size_t k = 0; k < nlen; k++) {
            char c = src[start + k];
            low[k] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
        }
        if (!lookup(arena, low, nlen, &parts[n])) {
            /* without pv_cv_vars() every name is unknown: say why */
            snprintf(err, errlen, "unknown \"%.*s\" variable%s", (int)nlen, src + start,
                     var_tables ? "" : " (no variables are registered)");
            return PV_ERR;
        }
        n++;
        vars++;
        i = lit = j + (bracket ? 1 : 0);
    }
    if (len > lit) {
        parts[n].var = NULL;
        parts[n].text = (pv_str_t){pv_arena_strndup(arena, src + lit, len - lit), len - lit};
        n++;
    }
    if (n == 0)
        parts[0].text = (pv_str_t){"", 0};
    cv->parts = parts;
    cv->nparts = n;
    cv->is_const = vars == 0;
    return PV_OK;
}
