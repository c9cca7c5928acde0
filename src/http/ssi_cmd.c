/* The SSI commands other than include (echo, config, set, if, elif,
 * else, endif, block, endblock), their checks as NGINX makes them, and
 * the variables a value may name: `set` ones, the last `if` match's
 * captures, $date_local and $date_gmt, then the request's. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ssi.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/time.h"
#include "accesslog.h"
#include "server.h"
#include "uvars.h"
#include "vars.h"

/* ---- variables --------------------------------------------------------------- */

pv_str_t *pv_ssi_var(pv_ssi_t *s, pv_str_t name, int create)
{
    for (pv_ssi_var_t *v = s->m->vars; v; v = v->next)
        if (v->name.len == name.len && memcmp(v->name.p, name.p, name.len) == 0)
            return &v->value;
    if (!create)
        return NULL;
    pv_arena_t *a = &pv_subreq_main(s->hr)->arena;
    pv_ssi_var_t *v = pv_arena_alloc(a, sizeof(*v));
    char *n = pv_arena_strndup(a, name.p, name.len);
    if (!v || !n)
        return NULL;
    v->name = (pv_str_t){n, name.len};
    v->value = (pv_str_t){"", 0};
    v->next = s->m->vars;
    s->m->vars = v;
    return &v->value;
}

/* $date_local / $date_gmt in timefmt ("%s": seconds). */
static int date_format(pv_arena_t *a, pv_str_t timefmt, int gmt, pv_str_t *val)
{
    time_t now = (time_t)(pv_time_ms() / 1000);
    char *out = pv_arena_alloc(a, 256);
    if (!out)
        return 0;
    if (timefmt.len == 2 && memcmp(timefmt.p, "%s", 2) == 0) {
        *val = (pv_str_t){out, (size_t)snprintf(out, 256, "%lld", (long long)now)};
        return 1;
    }
    char fmt[256];
    size_t n = PV_MIN(timefmt.len, sizeof(fmt) - 1);
    memcpy(fmt, timefmt.p, n);
    fmt[n] = '\0';
    struct tm tm;
    if (gmt)
        gmtime_r(&now, &tm);
    else
        localtime_r(&now, &tm);
    size_t len = strftime(out, 256, fmt, &tm);
    *val = (pv_str_t){out, len};
    return len > 0;
}

static int date_var(pv_ssi_t *s, int gmt, pv_str_t *val)
{
    return date_format(&s->hr->arena, s->timefmt, gmt, val);
}

/* The variables outside SSI (a log format): the default timefmt. */
static int date_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    PV_UNUSED(o);
    int gmt = part->var->name.len == 8;
    if (!r->arena || !date_format(r->arena, PV_STR("%A, %d-%b-%Y %H:%M:%S %Z"), gmt, v))
        return PV_VAL_MISSING;
    return PV_VAL_FOUND;
}

const pv_var_t pv_vars_ssi[] = {
    PV_VAR("date_local", date_cb, 0),
    PV_VAR("date_gmt", date_cb, 0),
    PV_VAR_END,
};

static int part_value(pv_hreq_t *hr, const pv_cv_part_t *part, pv_str_t *val)
{
    char scratch[256];
    pv_str_t got = pv_var_get(&hr->r, part, scratch, sizeof(scratch));
    if (!got.p)
        return 0;
    if (got.p >= scratch && got.p < scratch + sizeof(scratch)) {
        char *c = pv_arena_strndup(&hr->arena, got.p, got.len);
        if (!c)
            return 0;
        got.p = c;
    }
    *val = got;
    return 1;
}

/* A request variable by its lowercase name: built-in names, then those
 * `set` and map declare, then prefixes ($http_...), as NGINX looks; a
 * declared one never set under a prefix's name is the prefix's (NGINX
 * gives such a variable the prefix's getter). */
static int request_var(pv_hreq_t *hr, const char *low, size_t n, pv_str_t *val)
{
    pv_str_t rest = {NULL, 0};
    const pv_var_t *v = pv_var_find(low, n, &rest);
    const pv_http_conf_t *h = hr->r.conf->http;
    if (!v || (v->flags & PV_VAR_F_PREFIX)) {
        for (int i = 0; h && i < h->nuvars; i++) {
            if (strlen(h->uvar_names[i]) == n && memcmp(h->uvar_names[i], low, n) == 0) {
                pv_cv_part_t part = {.var = &pv_var_user, .index = i, .text = {low, n}};
                int unset = !hr->r.uvals || hr->r.uvals[i].state != PV_UVAL_SET;
                if (v && unset)
                    break;
                return part_value(hr, &part, val);
            }
        }
    }
    if (!v)
        return 0;
    pv_cv_part_t part = {.var = v};
    if (v->flags & PV_VAR_F_PREFIX) {
        char *t = pv_arena_strndup(&hr->arena, rest.p, rest.len);
        if (!t)
            return 0;
        for (size_t i = 0; (v->flags & PV_VAR_F_HEADER) && i < rest.len; i++)
            t[i] = t[i] == '_' ? '-' : t[i];
        part.text = (pv_str_t){t, rest.len};
    }
    return part_value(hr, &part, val);
}

static int lookup(void *ctx, pv_str_t name, pv_str_t *val)
{
    pv_ssi_t *s = ctx;
    char low[256];
    if (name.len == 0 || name.len > sizeof(low))
        return 0;
    for (size_t i = 0; i < name.len; i++)
        low[i] = (char)(name.p[i] >= 'A' && name.p[i] <= 'Z' ? name.p[i] | 0x20 : name.p[i]);
    pv_str_t key = {low, name.len};
    if (low[0] >= '0' && low[0] <= '9') {
        /* the last `if` match's groups */
        int g = 0;
        for (size_t i = 0; i < key.len && g < 100; i++)
            g = g * 10 + (low[i] - '0');
        if (2 * g + 1 < s->m->ncaps && s->m->caps[2 * g] != PCRE2_UNSET) {
            *val = (pv_str_t){s->m->caps_data + s->m->caps[2 * g], s->m->caps[2 * g + 1] - s->m->caps[2 * g]};
            return 1;
        }
        *val = (pv_str_t){"", 0};
        return 1;
    }
    pv_str_t *sv = pv_ssi_var(s, key, 0);
    if (sv) {
        *val = *sv;
        return 1;
    }
    if (PV_STR_IEQ(key, "date_local") || PV_STR_IEQ(key, "date_gmt"))
        return date_var(s, key.len == 8, val);
    return request_var(s->hr, low, key.len, val);
}

int pv_ssi_evaluate(pv_ssi_t *s, pv_str_t in, int flags, pv_str_t *out)
{
    char buf[1024];
    ssize_t n = pv_ssi_eval(in, flags, s->hr->r.uri, lookup, s, buf, sizeof(buf));
    char *p;
    if (n == PV_SSI_EVAL_LONG) {
        n = pv_ssi_eval(in, flags, s->hr->r.uri, lookup, s, NULL, 0);
        if (n >= 0 && (p = pv_arena_alloc(&s->hr->arena, (size_t)n + 1)) != NULL)
            n = pv_ssi_eval(in, flags, s->hr->r.uri, lookup, s, p, (size_t)n + 1);
        else if (n >= 0)
            return PV_ERR;
    } else if (n >= 0) {
        if (!(p = pv_arena_alloc(&s->hr->arena, (size_t)n + 1)))
            return PV_ERR;
        memcpy(p, buf, (size_t)n);
    }
    if (n < 0) {
        pv_log_r(&s->hr->r, PV_LOG_ERR, "invalid variable name in \"%.*s\"", (int)in.len, in.p);
        return PV_ERR;
    }
    p[n] = '\0';
    *out = (pv_str_t){p, (size_t)n};
    return PV_OK;
}

/* ---- echo ------------------------------------------------------------------ */

/* NGINX's ngx_escape_uri(NGX_ESCAPE_HTML): blanks, '"', '#', '%', '\'',
 * '<', '>', control characters and bytes past 0x7e. */
static int url_escaped(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '"' || c == '#' || c == '%' || c == '\'' || c == '<' || c == '>';
}

static pv_str_t encode(pv_ssi_t *s, pv_str_t v)
{
    size_t extra = 0;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (s->encoding == PV_SSI_ENC_URL)
            extra += url_escaped(c) ? 2 : 0;
        else if (s->encoding == PV_SSI_ENC_ENTITY)
            extra += c == '<' || c == '>' ? 3 : c == '&' ? 4 : c == '"' ? 5 : 0;
    }
    if (!extra)
        return v;
    char *o = pv_arena_alloc(&s->hr->arena, v.len + extra);
    if (!o)
        return (pv_str_t){NULL, 0};
    size_t n = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        const char *ent = NULL;
        if (s->encoding == PV_SSI_ENC_URL && url_escaped(c)) {
            o[n++] = '%';
            o[n++] = hex[c >> 4];
            o[n++] = hex[c & 15];
            continue;
        }
        if (s->encoding == PV_SSI_ENC_ENTITY)
            ent = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : NULL;
        if (ent) {
            memcpy(o + n, ent, strlen(ent));
            n += strlen(ent);
        } else {
            o[n++] = (char)c;
        }
    }
    return (pv_str_t){o, n};
}

enum { ECHO_VAR, ECHO_DEFAULT, ECHO_ENCODING };

static int cmd_echo(pv_ssi_t *s, pv_str_t **pm)
{
    pv_str_t *var = pm[ECHO_VAR];
    for (size_t i = 0; i < var->len; i++)
        ((char *)var->p)[i] = (char)(var->p[i] >= 'A' && var->p[i] <= 'Z' ? var->p[i] | 0x20 : var->p[i]);
    pv_str_t value;
    int found;
    pv_str_t *sv = pv_ssi_var(s, *var, 0);
    if (sv) {
        value = *sv;
        found = 1;
    } else {
        found = lookup(s, *var, &value);
    }
    if (!found) {
        if (!pm[ECHO_DEFAULT])
            value = PV_STR("(none)");
        else
            value = *pm[ECHO_DEFAULT];
    }
    pv_str_t *enc = pm[ECHO_ENCODING];
    if (enc) {
        if ((enc->len == 4 && memcmp(enc->p, "none", 4) == 0))
            s->encoding = PV_SSI_ENC_NONE;
        else if ((enc->len == 3 && memcmp(enc->p, "url", 3) == 0))
            s->encoding = PV_SSI_ENC_URL;
        else if ((enc->len == 6 && memcmp(enc->p, "entity", 6) == 0))
            s->encoding = PV_SSI_ENC_ENTITY;
        else
            pv_log_r(&s->hr->r, PV_LOG_ERR, "unknown encoding \"%.*s\" in the \"echo\" command", (int)enc->len,
                     enc->p);
    }
    if (!value.len)
        return 0;
    /* the parameters' buffer is reused by the next command: keep a copy */
    pv_str_t out = encode(s, value);
    if (!out.p)
        return -1;
    if (out.p == value.p || (pm[ECHO_DEFAULT] && out.p == pm[ECHO_DEFAULT]->p)) {
        char *c = pv_arena_strndup(&s->hr->arena, out.p, out.len);
        if (!c)
            return -1;
        out.p = c;
    }
    return pv_ssi_text(s, out) == PV_OK ? 0 : -1;
}

/* ---- config, set -------------------------------------------------------------- */

enum { CONFIG_ERRMSG, CONFIG_TIMEFMT };

static int cmd_config(pv_ssi_t *s, pv_str_t **pm)
{
    for (int i = CONFIG_ERRMSG; i <= CONFIG_TIMEFMT; i++) {
        if (!pm[i])
            continue;
        char *c = pv_arena_strndup(&s->hr->arena, pm[i]->p, pm[i]->len);
        if (!c)
            return -1;
        *(i == CONFIG_ERRMSG ? &s->errmsg : &s->timefmt) = (pv_str_t){c, pm[i]->len};
    }
    return 0;
}

enum { SET_VAR, SET_VALUE };

static int cmd_set(pv_ssi_t *s, pv_str_t **pm)
{
    pv_str_t value;
    if (pv_ssi_evaluate(s, *pm[SET_VALUE], 0, &value) != PV_OK)
        return -1;
    pv_str_t *name = pm[SET_VAR];
    for (size_t i = 0; i < name->len; i++)
        ((char *)name->p)[i] = (char)(name->p[i] >= 'A' && name->p[i] <= 'Z' ? name->p[i] | 0x20 : name->p[i]);
    pv_str_t *slot = pv_ssi_var(s, *name, 1);
    if (!slot)
        return -1;
    /* the main request's arena: a subrequest's `set` outlives it */
    char *c = pv_arena_strndup(&pv_subreq_main(s->hr)->arena, value.p, value.len);
    if (!c)
        return -1;
    *slot = (pv_str_t){c, value.len};
    return 0;
}

/* ---- if ------------------------------------------------------------------------ */

/* right (NUL-terminated) as a regular expression against left: 1 match,
 * 0 none, -1 an error (logged). The groups become $1..., the named ones
 * `set` variables, for the main request. */
static int regex_match(pv_ssi_t *s, pv_str_t re, pv_str_t left)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re.p, re.len, 0, &err, &off, NULL);
    if (!code) {
        char msg[128];
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof(msg));
        pv_log_r(&s->hr->r, PV_LOG_ERR, "pcre2_compile() failed: %s in \"%.*s\" at \"%s\"", msg, (int)re.len, re.p,
                 re.p + off);
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = md ? pcre2_match(code, (PCRE2_SPTR)left.p, left.len, 0, 0, md, NULL) : -1;
    int ret = rc > 0 ? 1 : 0;
    pv_arena_t *a = &pv_subreq_main(s->hr)->arena;
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t *caps = pv_arena_alloc(a, sizeof(size_t) * 2 * (size_t)rc);
        char *data = pv_arena_strndup(a, left.p, left.len);
        if (caps && data) {
            for (int i = 0; i < 2 * rc; i++)
                caps[i] = ov[i];
            s->m->caps = caps;
            s->m->ncaps = 2 * rc;
            s->m->caps_data = data;
            uint32_t nnames = 0, esize = 0;
            PCRE2_SPTR tbl = NULL;
            pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &nnames);
            pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &esize);
            pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &tbl);
            for (uint32_t i = 0; i < nnames; i++, tbl += esize) {
                int g = (tbl[0] << 8) | tbl[1];
                const char *nm = (const char *)tbl + 2;
                pv_str_t *slot = pv_ssi_var(s, (pv_str_t){nm, strlen(nm)}, 1);
                if (slot && g < rc && ov[2 * g] != PCRE2_UNSET)
                    *slot = (pv_str_t){data + ov[2 * g], ov[2 * g + 1] - ov[2 * g]};
            }
        }
    } else if (rc < -1) {
        pv_log_r(&s->hr->r, PV_LOG_ALERT, "pcre2_match() failed: %d on \"%.*s\" using \"%.*s\"", rc, (int)left.len,
                 left.p, (int)re.len, re.p);
        ret = -1;
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return ret;
}

static int cmd_if(pv_ssi_t *s, pv_str_t **pm)
{
    if (s->p.cmdlen == 2 && s->conditional) {
        pv_log_r(&s->hr->r, PV_LOG_ERR, "the \"if\" command inside the \"if\" command");
        return -1;
    }
    if (s->output_chosen) {
        s->output = 0;
        return 0;
    }
    pv_str_t *expr = pm[0];
    pv_ssi_if_t e;
    if (pv_ssi_if_split((char *)expr->p, expr->len, &e) != PV_OK) {
        pv_log_r(&s->hr->r, PV_LOG_ERR, "invalid expression in \"%.*s\"", (int)expr->len, expr->p);
        return -1;
    }
    pv_str_t left, right;
    if (pv_ssi_evaluate(s, e.left, 0, &left) != PV_OK)
        return -1;
    int yes;
    if (e.op == PV_SSI_IF_TEST) {
        yes = left.len > 0;
    } else {
        if (pv_ssi_evaluate(s, e.right, 0, &right) != PV_OK)
            return -1;
        int match;
        if (e.regex) {
            match = regex_match(s, right, left);
            if (match < 0)
                return -1;
        } else {
            match = left.len == right.len && memcmp(left.p, right.p, left.len) == 0;
        }
        yes = e.op == PV_SSI_IF_EQ ? match : !match;
    }
    s->output = (uint8_t)yes;
    if (yes)
        s->output_chosen = 1;
    s->conditional = PV_SSI_COND_IF;
    return 0;
}

static int cmd_else(pv_ssi_t *s, pv_str_t **pm)
{
    PV_UNUSED(pm);
    s->output = !s->output_chosen;
    s->conditional = PV_SSI_COND_ELSE;
    return 0;
}

static int cmd_endif(pv_ssi_t *s, pv_str_t **pm)
{
    PV_UNUSED(pm);
    s->output = 1;
    s->output_chosen = 0;
    s->conditional = 0;
    return 0;
}

/* ---- block ------------------------------------------------------------------- */

static int cmd_block(pv_ssi_t *s, pv_str_t **pm)
{
    pv_arena_t *a = &pv_subreq_main(s->hr)->arena;
    pv_ssi_block_t *b = pv_arena_calloc(a, sizeof(*b));
    char *n = pv_arena_strndup(a, pm[0]->p, pm[0]->len);
    if (!b || !n)
        return -1;
    b->name = (pv_str_t){n, pm[0]->len};
    if (s->m->last_block)
        s->m->last_block->next = b;
    else
        s->m->blocks = b;
    s->m->last_block = b;
    s->output = 0;
    s->block = 1;
    return 0;
}

static int cmd_endblock(pv_ssi_t *s, pv_str_t **pm)
{
    PV_UNUSED(pm);
    s->output = 1;
    s->block = 0;
    return 0;
}

/* ---- the table and the dispatch ------------------------------------------------ */

static int cmd_include(pv_ssi_t *s, pv_str_t **pm)
{
    return pv_ssi_include(s, (const pv_str_t *const *)pm);
}

typedef struct {
    const char *name;
    int (*handler)(pv_ssi_t *s, pv_str_t **pm);
    const char *params[6]; /* by index; a leading '!' marks a mandatory one */
    uint8_t conditional, block;
} cmd_t;

static const cmd_t cmds[] = {
    {"include", cmd_include, {"virtual", "file", "wait", "set", "stub"}, 0, 0},
    {"echo", cmd_echo, {"!var", "default", "encoding"}, 0, 0},
    {"config", cmd_config, {"errmsg", "timefmt"}, 0, 0},
    {"set", cmd_set, {"!var", "!value"}, 0, 0},
    {"if", cmd_if, {"!expr"}, 0, 0},
    {"elif", cmd_if, {"!expr"}, PV_SSI_COND_IF, 0},
    {"else", cmd_else, {NULL}, PV_SSI_COND_IF, 0},
    {"endif", cmd_endif, {NULL}, PV_SSI_COND_ELSE, 0},
    {"block", cmd_block, {"!name"}, 0, 0},
    {"endblock", cmd_endblock, {NULL}, 0, 1},
};

/* The command's text again, into the block being defined (a command
 * inside a block runs when the block is put out as a stub). */
static int block_command(pv_ssi_t *s)
{
    pv_ssi_parser_t *p = &s->p;
    size_t len = 5 + p->cmdlen + 4;
    for (int i = 0; i < p->nparams; i++)
        len += 1 + p->params[i].nlen + 2 + p->params[i].vlen + 1;
    char *t = pv_arena_alloc(&s->hr->arena, len);
    if (!t)
        return -1;
    size_t n = 0;
    memcpy(t, "<!--#", 5);
    n = 5;
    memcpy(t + n, p->cmd, p->cmdlen);
    n += p->cmdlen;
    for (int i = 0; i < p->nparams; i++) {
        pv_str_t v = pv_ssi_value(p, i);
        t[n++] = ' ';
        memcpy(t + n, p->params[i].name, p->params[i].nlen);
        n += p->params[i].nlen;
        t[n++] = '=';
        t[n++] = '"';
        memcpy(t + n, v.p, v.len);
        n += v.len;
        t[n++] = '"';
    }
    memcpy(t + n, " -->", 4);
    n += 4;
    return pv_ssi_text(s, (pv_str_t){t, n});
}

/* The parameters by the command's index: -1 for an error (logged). */
static int map_params(pv_ssi_t *s, const cmd_t *c, pv_str_t *vals, pv_str_t **pm)
{
    pv_ssi_parser_t *p = &s->p;
    memset(pm, 0, sizeof(pv_str_t *) * 6);
    for (int i = 0; i < p->nparams; i++) {
        int k = 0;
        for (; k < 6 && c->params[k]; k++) {
            const char *nm = c->params[k] + (c->params[k][0] == '!');
            if (strlen(nm) == p->params[i].nlen && memcmp(nm, p->params[i].name, p->params[i].nlen) == 0)
                break;
        }
        if (k == 6 || !c->params[k]) {
            pv_log_r(&s->hr->r, PV_LOG_ERR, "invalid parameter name: \"%s\" in \"%s\" SSI command",
                     p->params[i].name, p->cmd);
            return -1;
        }
        if (pm[k]) {
            pv_log_r(&s->hr->r, PV_LOG_ERR, "duplicate \"%s\" parameter in \"%s\" SSI command", p->params[i].name,
                     p->cmd);
            return -1;
        }
        vals[i] = pv_ssi_value(p, i);
        pm[k] = &vals[i];
    }
    for (int k = 0; k < 6 && c->params[k]; k++) {
        if (c->params[k][0] == '!' && !pm[k]) {
            pv_log_r(&s->hr->r, PV_LOG_ERR, "mandatory \"%s\" parameter is absent in \"%s\" SSI command",
                     c->params[k] + 1, p->cmd);
            return -1;
        }
    }
    return 0;
}

static int dispatch(pv_ssi_t *s)
{
    pv_ssi_parser_t *p = &s->p;
    const cmd_t *c = NULL;
    for (size_t i = 0; i < PV_NELEM(cmds) && !c; i++)
        if (strlen(cmds[i].name) == p->cmdlen && memcmp(cmds[i].name, p->cmd, p->cmdlen) == 0)
            c = &cmds[i];
    if (!c) {
        if (!s->output)
            return 0;
        pv_log_r(&s->hr->r, PV_LOG_ERR, "invalid SSI command: \"%s\"", p->cmd);
        return -1;
    }
    if (!s->output && !c->block) {
        if (s->block)
            return block_command(s);
        if (!c->conditional)
            return 0;
    }
    if (c->conditional && (s->conditional == 0 || s->conditional > c->conditional)) {
        pv_log_r(&s->hr->r, PV_LOG_ERR, "invalid context of SSI command: \"%s\"", p->cmd);
        return -1;
    }
    pv_str_t vals[PV_SSI_PARAMS_MAX];
    pv_str_t *pm[6];
    if (map_params(s, c, vals, pm) < 0)
        return -1;
    return c->handler(s, pm);
}

void pv_ssi_command(pv_ssi_t *s)
{
    int rc = dispatch(s);
    if (rc < 0 && pv_ssi_error_out(s) != PV_OK)
        s->f.failed = 1;
}
