/* The charset directives (ngx_http_charset_module): charset_map,
 * charset, source_charset, override_charset, charset_types. Every name
 * the http block gives joins one list of charsets; a charset_map's
 * lines fill the tables between two of them. Syntax, messages and
 * inheritance are NGINX's. */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/recode.h"

static const char *const default_types[] = {"text/html", "text/xml", "text/plain", "text/vnd.wap.wml",
                                            "application/javascript", "application/rss+xml"};

int pv_charset_find(const pv_charsets_t *cs, pv_str_t name)
{
    for (int i = 0; i < cs->n; i++)
        if (cs->names[i].len == name.len && strncasecmp(cs->names[i].p, name.p, name.len) == 0)
            return i;
    return PV_CHARSET_NONE;
}

const pv_charset_map_t *pv_charset_map_find(const pv_charsets_t *cs, int from, int to, int *dir)
{
    for (int i = 0; i < cs->nmaps; i++) {
        const pv_charset_map_t *m = &cs->maps[i];
        if (m->from == from && m->to == to) {
            *dir = m->u8 ? 1 : 0;
            return m;
        }
        if (m->from == to && m->to == from) {
            *dir = m->u8 ? -1 : 0;
            return m;
        }
    }
    return NULL;
}

/* The index of name, added when new. */
static int add_charset(pv_conf_ctx_t *cx, const char *name, size_t len)
{
    pv_charsets_t *cs = &cx->http->charsets;
    int i = pv_charset_find(cs, (pv_str_t){(char *)name, len});
    if (i >= 0)
        return i;
    pv_str_t *n = pv_conf_push(cx->a, &cs->names, &cs->n, sizeof(*n));
    *n = (pv_str_t){pv_arena_strndup(cx->a, name, len), len};
    uint8_t *u = pv_arena_alloc(cx->a, (size_t)cs->n);
    if (cs->n > 1)
        memcpy(u, cs->utf8, (size_t)cs->n - 1);
    u[cs->n - 1] = strcasecmp(n->p, "utf-8") == 0;
    cs->utf8 = u;
    return cs->n - 1;
}

/* NGINX's ngx_hextoi(): -1 when s is empty, has a non-hex digit or is
 * too big. */
static long hextoi(const char *s, size_t len)
{
    long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0 || v > (0x7fffffffL - d) / 16)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A line of a map to utf-8: `BYTE UTF8HEX`, the character's UTF-8 bytes
 * (one to three) as hex. */
static int map_utf8_line(pv_conf_ctx_t *cx, pv_charset_map_t *m, const pv_conf_node_t *c, int b)
{
    size_t len = c->args[1].len;
    uint8_t *t = &m->u8[b * 4];
    if (len == 0 || len / 2 > 3)
        return pv_conf_error(cx, &c->src, "invalid value \"%s\"", ARG(c, 1));
    int k = 0;
    for (size_t i = 0; i < len; i += 2) {
        long v = hextoi(ARG(c, 1) + i, i + 1 < len ? 2 : 1);
        if (v < 0 || v > 255 || i + 1 >= len)
            return pv_conf_error(cx, &c->src, "invalid value \"%s\"", ARG(c, 1));
        t[1 + k++] = (uint8_t)v;
    }
    t[0] = (uint8_t)k;
    const uint8_t *p = t + 1;
    uint32_t cp = pv_utf8_decode(&p, (size_t)k);
    if (cp > 0xffff)
        return pv_conf_error(cx, &c->src, "invalid value \"%s\"", ARG(c, 1));
    if (!m->pages[cp >> 8] && !(m->pages[cp >> 8] = pv_arena_calloc(cx->a, 256)))
        return pv_conf_error(cx, &c->src, "out of memory");
    m->pages[cp >> 8][cp & 0xff] = (uint8_t)b;
    return PV_OK;
}

static int map_lines(pv_conf_ctx_t *cx, pv_charset_map_t *m, const pv_conf_node_t *first)
{
    for (const pv_conf_node_t *c = first; c; c = c->next) {
        if (c->block)
            return pv_conf_error(cx, &c->src, "unexpected \"{\"");
        if (c->nargs != 2)
            return pv_conf_error(cx, &c->src, "invalid parameters number");
        long b = hextoi(ARG(c, 0), c->args[0].len);
        if (b < 0 || b > 255)
            return pv_conf_error(cx, &c->src, "invalid value \"%s\"", ARG(c, 0));
        if (m->u8) {
            if (map_utf8_line(cx, m, c, (int)b) != PV_OK)
                return PV_ERR;
            continue;
        }
        long d = hextoi(ARG(c, 1), c->args[1].len);
        if (d < 0 || d > 255)
            return pv_conf_error(cx, &c->src, "invalid value \"%s\"", ARG(c, 1));
        m->fwd[b] = (uint8_t)d;
        m->back[d] = (uint8_t)b;
    }
    return PV_OK;
}

/* Both ways ASCII as it is; other bytes "?" (to utf-8: the code points
 * no line names come back as "&#N;"). */
static int map_init(pv_conf_ctx_t *cx, pv_charset_map_t *m, int utf8)
{
    if (utf8) {
        m->u8 = pv_arena_alloc(cx->a, 256 * 4);
        m->pages = pv_arena_calloc(cx->a, 256 * sizeof(*m->pages));
        if (!m->u8 || !m->pages || !(m->pages[0] = pv_arena_calloc(cx->a, 256)))
            return PV_ERR;
        for (int i = 0; i < 256; i++) {
            m->u8[i * 4] = 1;
            m->u8[i * 4 + 1] = i < 128 ? (uint8_t)i : '?';
            if (i < 128)
                m->pages[0][i] = (uint8_t)i;
        }
        return PV_OK;
    }
    m->fwd = pv_arena_alloc(cx->a, 256);
    m->back = pv_arena_alloc(cx->a, 256);
    if (!m->fwd || !m->back)
        return PV_ERR;
    for (int i = 0; i < 256; i++)
        m->fwd[i] = m->back[i] = i < 128 ? (uint8_t)i : '?';
    return PV_OK;
}

/* `charset_map FROM TO { BYTE BYTE; ... }`: TO may be utf-8, and the map
 * serves both ways. */
static int charset_map_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_charsets_t *cs = &cx->http->charsets;
    int from = add_charset(cx, ARG(nd, 1), nd->args[1].len);
    int to = add_charset(cx, ARG(nd, 2), nd->args[2].len);
    if (from == to)
        return pv_conf_error(cx, &nd->src, "\"charset_map\" between the same charsets \"%s\" and \"%s\"",
                             ARG(nd, 1), ARG(nd, 2));
    int dir;
    if (pv_charset_map_find(cs, from, to, &dir))
        return pv_conf_error(cx, &nd->src, "duplicate \"charset_map\" between \"%s\" and \"%s\"", ARG(nd, 1),
                             ARG(nd, 2));
    if (cs->utf8[from] && !cs->utf8[to])
        return pv_conf_error(cx, &nd->src, "a \"charset_map\" from \"%s\" is not supported; write it as "
                             "\"charset_map %s %s\"", ARG(nd, 1), ARG(nd, 2), ARG(nd, 1));
    pv_charset_map_t *m = pv_conf_push(cx->a, &cs->maps, &cs->nmaps, sizeof(*m));
    m->from = from;
    m->to = to;
    if (map_init(cx, m, cs->utf8[to]) != PV_OK)
        return pv_conf_error(cx, &nd->src, "out of memory");
    return map_lines(cx, m, nd->child);
}

/* `charset NAME|off|$VAR` and `source_charset NAME|$VAR` (cmd->data). */
static int charset_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(base);
    pv_charset_conf_t *c = &cx->lc->hdr.cs;
    int src = cmd->data != NULL;
    int *v = src ? &c->source : &c->charset;
    if (*v != PV_UNSET)
        return DUP(cx, nd);
    if (!src && strcmp(ARG(nd, 1), "off") == 0) {
        *v = PV_CHARSET_OFF;
        return PV_OK;
    }
    if (ARG(nd, 1)[0] == '$') {
        pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
        if (src)
            c->source_var = cv;
        else
            c->charset_var = cv;
        *v = PV_CHARSET_VAR;
        return pv_conf_compile(cx, nd, cv, ARG(nd, 1), nd->args[1].len);
    }
    *v = add_charset(cx, ARG(nd, 1), nd->args[1].len);
    return PV_OK;
}

static int override_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    return pv_conf_flag(cx, nd, &cx->lc->hdr.cs.override);
}

/* `charset_types TYPE...`, as NGINX's types slot: the first at a level
 * starts from text/html, each adds to the list (a repeated type warns),
 * and `*` is any type from then on. */
static int types_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_charset_conf_t *c = &cx->lc->hdr.cs;
    if (c->ntypes < 0)
        return PV_OK;
    if (!c->types)
        *(pv_str_t *)pv_conf_push(cx->a, &c->types, &c->ntypes, sizeof(pv_str_t)) = (pv_str_t)PV_STR("text/html");
    for (int i = 1; i < nd->nargs; i++) {
        if (strcmp(ARG(nd, i), "*") == 0) {
            c->ntypes = -1;
            return PV_OK;
        }
        char *t = pv_arena_strndup(cx->a, ARG(nd, i), nd->args[i].len);
        for (char *p = t; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        int dup = 0;
        for (int k = 0; k < c->ntypes && !dup; k++)
            dup = strcmp(c->types[k].p, t) == 0;
        if (dup) {
            pv_log(PV_LOG_WARN, "duplicate MIME type \"%s\" in %s:%d", t, nd->src.file, nd->src.line);
            continue;
        }
        *(pv_str_t *)pv_conf_push(cx->a, &c->types, &c->ntypes, sizeof(pv_str_t)) =
            (pv_str_t){t, nd->args[i].len};
    }
    return PV_OK;
}

void pv_conf_charset_init(pv_charset_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->charset = c->source = c->override = PV_UNSET;
}

void pv_conf_charset_merge(pv_charset_conf_t *c, const pv_charset_conf_t *p)
{
    static pv_str_t defaults[PV_NELEM(default_types)];
    if (c->charset == PV_UNSET) {
        c->charset = p ? p->charset : PV_CHARSET_OFF;
        c->charset_var = p ? p->charset_var : NULL;
    }
    if (c->source == PV_UNSET) {
        c->source = p ? p->source : PV_CHARSET_OFF;
        c->source_var = p ? p->source_var : NULL;
    }
    if (c->override == PV_UNSET)
        c->override = p ? p->override : 0;
    if (!c->types && !c->ntypes && p && p->types) {
        c->types = p->types;
        c->ntypes = p->ntypes;
    } else if (!c->types) {
        for (size_t i = 0; i < PV_NELEM(default_types); i++)
            defaults[i] = (pv_str_t){(char *)default_types[i], strlen(default_types[i])};
        c->types = defaults;
        c->ntypes = (int)PV_NELEM(default_types);
    }
}

/* As NGINX at its start: a location that recodes between two names has
 * a charset_map between them. */
int pv_conf_charset_check(pv_conf_ctx_t *cx, const pv_charset_conf_t *c, const pv_conf_src_t *src)
{
    if (c->charset < 0 || c->source < 0 || c->charset == c->source)
        return PV_OK;
    const pv_charsets_t *cs = &cx->http->charsets;
    int dir;
    if (pv_charset_map_find(cs, c->source, c->charset, &dir))
        return PV_OK;
    return pv_conf_error(cx, src, "no \"charset_map\" between the charsets \"%s\" and \"%s\"",
                         cs->names[c->source].p, cs->names[c->charset].p);
}

#define ANY_LIF (PV_CTX_ANY_LOC | PV_CTX_LIF)

static const pv_conf_cmd_t charset_cmds[] = {
    {"charset_map", PV_CTX_HTTP, PV_ARGS_TAKE2 | PV_ARGS_BLOCK, charset_map_cb, PV_BASE_NONE, 0, NULL},
    {"charset", ANY_LIF, PV_ARGS_TAKE1, charset_cb, PV_BASE_NONE, 0, NULL},
    {"source_charset", ANY_LIF, PV_ARGS_TAKE1, charset_cb, PV_BASE_NONE, 0, "source"},
    {"override_charset", ANY_LIF, PV_ARGS_FLAG, override_cb, PV_BASE_NONE, 0, NULL},
    {"charset_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, types_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_charset_module = {"charset", charset_cmds, PV_NELEM(charset_cmds)};
