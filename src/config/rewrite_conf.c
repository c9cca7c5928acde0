/* The rewrite module's directives (ngx_http_rewrite_module): set, if,
 * rewrite, return, break, rewrite_log, uninitialized_variable_warn. Each
 * server and location compiles its directives, in order, into a script
 * (pv_script_t) that http/script.c runs in the server rewrite and rewrite
 * phases. An `if` block's directives join the script of the block around
 * it, behind a jump; in a location the block also gets a configuration of
 * its own (NGINX's nameless location: "if is evil"), made active when the
 * condition holds. Also: the regex compiler every directive shares, whose
 * named groups become user variables, and the pass that declares the user
 * variables before the walk. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "conf_int.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- regexes ---- */

pv_regex_t *pv_conf_regex(pv_conf_ctx_t *cx, const pv_conf_src_t *src, const char *pat, size_t len,
                          int caseless)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, caseless ? PCRE2_CASELESS : 0, &code, &off,
                                   NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        if (off >= len)
            pv_conf_error(cx, src, "pcre2_compile() failed: %s in \"%.*s\"", (char *)msg, (int)len,
                          pat);
        else
            pv_conf_error(cx, src, "pcre2_compile() failed: %s in \"%.*s\" at \"%.*s\"",
                          (char *)msg, (int)len, pat, (int)(len - off), pat + off);
        return NULL;
    }
    pv_conf_add_regex(cx, re);
    pv_regex_t *rx = pv_arena_calloc(cx->a, sizeof(*rx));
    rx->code = re;
    rx->src = pv_arena_strndup(cx->a, pat, len);
    uint32_t ncap = 0, nnames = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &nnames);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    rx->ncaptures = (int)ncap;
    rx->nnames = (int)nnames;
    if (nnames) {
        rx->name_group = pv_arena_alloc(cx->a, nnames * sizeof(int));
        rx->name_slot = pv_arena_alloc(cx->a, nnames * sizeof(int));
    }
    for (uint32_t i = 0; i < nnames; i++) {
        PCRE2_SPTR e = table + i * esize;
        const char *name = (const char *)e + 2;
        rx->name_group[i] = (e[0] << 8) | e[1];
        rx->name_slot[i] = pv_cv_declare_user(name, strlen(name));
        if (rx->name_slot[i] < 0) {
            pv_conf_error(cx, src, "too many variables");
            return NULL;
        }
    }
    return rx;
}

/* ---- the declaring pass ---- */

/* Declare the named groups of pattern p (errors are the walk's to report). */
static void declare_groups(const char *p, size_t len, int caseless)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, len, caseless ? PCRE2_CASELESS : 0, &code, &off,
                                   NULL);
    if (!re)
        return;
    uint32_t n = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &n);
    pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < n; i++) {
        const char *name = (const char *)table + i * esize + 2;
        pv_cv_declare_user(name, strlen(name));
    }
    pcre2_code_free(re);
}

/* A directive's regexes, as its setter will compile them. */
static void declare_node(const pv_conf_node_t *nd, int in_map)
{
    const char *name = nd->args[0].p;
    int n = nd->nargs;
    if (in_map) {
        if (n >= 1 && name[0] == '~') {
            int ci = name[1] == '*';
            declare_groups(name + 1 + ci, nd->args[0].len - 1 - (size_t)ci, ci);
        }
        return;
    }
    if (strcmp(name, "set") == 0 && n >= 2 && ARG(nd, 1)[0] == '$')
        pv_cv_declare_user(ARG(nd, 1) + 1, nd->args[1].len - 1);
    else if ((strcmp(name, "map") == 0 || strcmp(name, "split_clients") == 0) && n >= 3 &&
             ARG(nd, 2)[0] == '$')
        pv_cv_declare_user(ARG(nd, 2) + 1, nd->args[2].len - 1);
    else if (strcmp(name, "geo") == 0 && n >= 2 && ARG(nd, n - 1)[0] == '$')
        pv_cv_declare_user(ARG(nd, n - 1) + 1, nd->args[n - 1].len - 1);
    else if (strcmp(name, "rewrite") == 0 && n >= 2)
        declare_groups(ARG(nd, 1), nd->args[1].len, 0);
    else if (strcmp(name, "server_name") == 0) {
        for (int i = 1; i < n; i++)
            if (ARG(nd, i)[0] == '~')
                declare_groups(ARG(nd, i) + 1, nd->args[i].len - 1, 0);
    }
    else if (strcmp(name, "location") == 0 && n >= 2) {
        const char *a = ARG(nd, 1);
        if (n == 3 && (strcmp(a, "~") == 0 || strcmp(a, "~*") == 0))
            declare_groups(ARG(nd, 2), nd->args[2].len, a[1] == '*');
        else if (n == 2 && a[0] == '~')
            declare_groups(a + 1 + (a[1] == '*'), nd->args[1].len - 1 - (a[1] == '*'), a[1] == '*');
    } else if (strcmp(name, "if") == 0 && n >= 4) {
        const char *op = ARG(nd, 2);
        size_t ol = nd->args[2].len;
        const char *pat = ARG(nd, n - 1);
        size_t pl = nd->args[n - 1].len;
        if (pl && pat[pl - 1] == ')')
            pl--;
        if (ol && op[0] == '!') {
            op++;
            ol--;
        }
        if ((ol == 1 && op[0] == '~') || (ol == 2 && op[0] == '~' && op[1] == '*'))
            declare_groups(pat, pl, ol == 2);
    }
}

static void declare_tree(const pv_conf_node_t *first, int in_map)
{
    for (const pv_conf_node_t *nd = first; nd; nd = nd->next) {
        if (nd->nargs < 1)
            continue;
        declare_node(nd, in_map);
        if (nd->child)
            declare_tree(nd->child, strcmp(nd->args[0].p, "map") == 0 ||
                                        strcmp(nd->args[0].p, "geo") == 0);
    }
}

void pv_conf_rewrite_declare(const pv_conf_node_t *first)
{
    declare_tree(first, 0);
}

/* ---- the script ---- */

/* The script the current block's directives join. */
static pv_script_t *script_of(pv_conf_ctx_t *cx)
{
    if (cx->script)
        return cx->script;
    return cx->loc ? &cx->loc->rw : &cx->srv->rw;
}

static pv_rw_op_t *add_op(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int op)
{
    pv_script_t *s = script_of(cx);
    pv_rw_op_t *o = pv_conf_push(cx->a, &s->ops, &s->nops, sizeof(*o));
    o->op = op;
    o->src = nd->src;
    o->slot = -1;
    return o;
}

static int set_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    const char *name = ARG(nd, 1);
    size_t len = nd->args[1].len;
    if (name[0] != '$')
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", name);
    name++;
    len--;
    char low[128];
    if (len == 0 || len >= sizeof(low))
        return pv_conf_error(cx, &nd->src, "invalid variable name \"%s\"", ARG(nd, 1));
    for (size_t i = 0; i < len; i++)
        low[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] | 0x20) : name[i];
    low[len] = '\0';
    pv_str_t rest;
    const pv_var_t *v = pv_var_find(low, len, &rest);
    int slot = -1;
    if (strcmp(low, "limit_rate") == 0) {
        slot = PV_RW_SLOT_LIMIT_RATE; /* NGINX's set handler of $limit_rate */
    } else if (strcmp(low, "args") != 0) {
        /* a built-in name cannot be set; $args and $limit_rate can (NGINX's set handlers) */
        if (v && !(v->flags & PV_VAR_F_PREFIX))
            return pv_conf_error(cx, &nd->src, "the duplicate \"%s\" variable", low);
        slot = pv_cv_declare_user(low, len);
        if (slot < 0)
            return pv_conf_error(cx, &nd->src, "too many variables");
    }
    pv_rw_op_t *o = add_op(cx, nd, PV_RW_SET);
    o->slot = slot;
    if (slot >= 0)
        *(int *)pv_conf_push(cx->tmp, &cx->set_slots, &cx->nset_slots, sizeof(int)) = slot;
    return pv_conf_compile(cx, nd, &o->value, ARG(nd, 2), nd->args[2].len);
}

static int return_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                     void *base)
{
    const char *a = ARG(nd, 1);
    pv_rw_op_t *o = add_op(cx, nd, PV_RW_RETURN);
    int64_t n = pv_conf_parse_num(nd->args[1]);
    const pv_str_t *text = NULL;
    if (n >= 0) {
        if (n > 999)
            return pv_conf_error(cx, &nd->src, "invalid return code \"%s\"", a);
        o->code = (int)n;
        if (nd->nargs == 3)
            text = &nd->args[2];
    } else if (nd->nargs == 2 && (strncmp(a, "http://", 7) == 0 || strncmp(a, "https://", 8) == 0 ||
                                  strncmp(a, "$scheme", 7) == 0)) {
        o->code = 302;
        text = &nd->args[1];
    } else {
        return pv_conf_error(cx, &nd->src, "invalid return code \"%s\"", a);
    }
    if (text) {
        o->has_text = 1;
        if (pv_conf_compile(cx, nd, &o->value, text->p, text->len) != PV_OK)
            return PV_ERR;
    }
    return PV_OK;
}

static int break_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                    void *base)
{
    add_op(cx, nd, PV_RW_BREAK);
    return PV_OK;
}

static int rewrite_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                      void *base)
{
    pv_str_t repl = nd->args[2];
    if (repl.len == 0)
        return pv_conf_error(cx, &nd->src, "empty replacement");
    pv_regex_t *rx = pv_conf_regex(cx, &nd->src, ARG(nd, 1), nd->args[1].len, 0);
    if (!rx)
        return PV_ERR;
    pv_rw_op_t *o = add_op(cx, nd, PV_RW_REWRITE);
    o->re = rx;
    if (repl.p[repl.len - 1] == '?')
        repl.len--; /* the last "?" drops the original arguments */
    else
        o->add_args = 1;
    if (strncmp(repl.p, "http://", 7) == 0 || strncmp(repl.p, "https://", 8) == 0 ||
        strncmp(repl.p, "$scheme", 7) == 0) {
        o->code = 302;
        o->flag = PV_RWF_REDIRECT;
    }
    if (nd->nargs == 4) {
        static const struct {
            const char *name;
            int flag, code;
        } flags[] = {{"last", PV_RWF_LAST, 0},
                     {"break", PV_RWF_BREAK, 0},
                     {"redirect", PV_RWF_REDIRECT, 302},
                     {"permanent", PV_RWF_PERMANENT, 301}};
        size_t i = 0;
        while (i < PV_NELEM(flags) && strcmp(flags[i].name, ARG(nd, 3)) != 0)
            i++;
        if (i == PV_NELEM(flags))
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 3));
        o->flag = flags[i].flag;
        if (flags[i].code)
            o->code = flags[i].code;
    }
    o->has_args = memchr(repl.p, '?', repl.len) != NULL;
    return pv_conf_compile(cx, nd, &o->value, repl.p, repl.len);
}

/* Strip the parentheses of `if (...)`: the first argument must start with
 * '(' and the last end with ')'; either may stand alone. Fills args[] with
 * the condition's words; returns their count or -1. */
static int if_words(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_str_t *w, int max)
{
    int first = 1, last = nd->nargs - 1;
    pv_str_t a = nd->args[first], z = nd->args[last];
    const char *bad = NULL;
    if (a.len < 1 || a.p[0] != '(')
        bad = a.p;
    else if (z.len < 1 || z.p[z.len - 1] != ')')
        bad = z.p;
    int n = 0;
    for (int i = first; !bad && i <= last && n < max; i++) {
        pv_str_t s = nd->args[i];
        if (i == first) {
            s.p++;
            s.len--;
        }
        if (i == last)
            s.len--;
        if (s.len == 0 && (i == first || i == last))
            continue;
        w[n++] = s;
    }
    if (!bad && n == 0)
        bad = a.p;
    if (bad) {
        pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", bad);
        return -1;
    }
    return n;
}

/* Compile the condition of `if` into o, with NGINX's messages. */
static int if_condition(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_rw_op_t *o)
{
    pv_str_t w[4] = {{"", 0}, {"", 0}, {"", 0}, {"", 0}};
    int n = if_words(cx, nd, w, (int)PV_NELEM(w));
    if (n < 0 || !w[0].p)
        return PV_ERR;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)w[0].len, w[0].p);
    if (w[0].len > 1 && w[0].p[0] == '$') { // NOLINT(clang-analyzer-core.NullDereference)
        if (n != 1 && n != 3)
            return pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", tmp);
        if (pv_conf_compile(cx, nd, &o->value, w[0].p, w[0].len) != PV_OK)
            return PV_ERR;
        if (o->value.nparts != 1 || !o->value.parts[0].var)
            return pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", tmp);
        o->cond = PV_IF_VAR;
        if (n == 1)
            return PV_OK;
        pv_str_t op = w[1], rhs = w[2];
        if (op.len == 1 && op.p[0] == '=') {
            o->cond = PV_IF_EQ;
        } else if (op.len == 2 && op.p[0] == '!' && op.p[1] == '=') {
            o->cond = PV_IF_NE;
        } else {
            int neg = op.p[0] == '!';
            pv_str_t t = {op.p + neg, op.len - (size_t)neg};
            if (!((t.len == 1 && t.p[0] == '~') || (t.len == 2 && t.p[0] == '~' && t.p[1] == '*'))) {
                snprintf(tmp, sizeof(tmp), "%.*s", (int)op.len, op.p);
                return pv_conf_error(cx, &nd->src, "unexpected \"%s\" in condition", tmp);
            }
            o->cond = PV_IF_RE;
            o->negate = neg;
            o->re = pv_conf_regex(cx, &nd->src, rhs.p, rhs.len, t.len == 2);
            return o->re ? PV_OK : PV_ERR;
        }
        return pv_conf_compile(cx, nd, &o->arg, rhs.p, rhs.len);
    }
    pv_str_t p = w[0];
    int neg = p.len == 3 && p.p[0] == '!' && p.p[1] == '-';
    if ((p.len == 2 && p.p[0] == '-') || neg) {
        if (n != 2)
            return pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", tmp);
        char op = p.p[neg ? 2 : 1];
        if (op != 'f' && op != 'd' && op != 'e' && op != 'x')
            return pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", tmp);
        o->cond = PV_IF_FILE;
        o->negate = neg;
        o->file_op = op;
        return pv_conf_compile(cx, nd, &o->arg, w[1].p, w[1].len);
    }
    return pv_conf_error(cx, &nd->src, "invalid condition \"%s\"", tmp);
}

/* A location's `if` block gets a configuration of its own, merged from
 * the location's at load (NGINX's nameless location); a server's does not. */
static pv_location_t *if_location(pv_conf_ctx_t *cx)
{
    pv_location_t *p = cx->loc;
    pv_location_t *l = pv_arena_calloc(cx->a, sizeof(*l));
    l->match = p->match;
    l->name = p->name;
    l->re = p->re;
    l->src = p->src;
    l->parent = p;
    pv_conf_loc_init(&l->conf);
    pv_http_conf_t *h = cx->http;
    *(pv_location_t **)pv_conf_push(cx->a, &h->iflocs, &h->niflocs, sizeof(l)) = l;
    return l;
}

static int if_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_script_t *s = script_of(cx);
    pv_rw_op_t *o = add_op(cx, nd, PV_RW_IF);
    int at = s->nops - 1;
    if (if_condition(cx, nd, o) != PV_OK)
        return PV_ERR;
    pv_location_t *saved_loc = cx->loc;
    pv_loc_conf_t *saved_lc = cx->lc;
    pv_script_t *saved_script = cx->script;
    int ctx = PV_CTX_SIF;
    if (cx->loc) {
        o->ifloc = if_location(cx);
        cx->loc = o->ifloc;
        cx->lc = &o->ifloc->conf;
        ctx = PV_CTX_LIF;
    }
    cx->script = s;
    int rc = pv_conf_walk(cx, nd->child, ctx);
    cx->script = saved_script;
    cx->loc = saved_loc;
    cx->lc = saved_lc;
    /* the array may have moved while the block was compiled */
    s->ops[at].next = s->nops;
    return rc;
}

static int rewrite_log_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    return pv_conf_flag(cx, nd, &cx->lc->rewrite_log);
}

static int uninit_warn_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    return pv_conf_flag(cx, nd, &cx->lc->uninitialized_variable_warn);
}

int pv_conf_rewrite_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    h->nuvars = pv_cv_user_count();
    h->uvar_names = pv_arena_calloc(cx->a, (size_t)(h->nuvars + 1) * sizeof(char *));
    h->uvar_maps = pv_arena_calloc(cx->a, (size_t)(h->nuvars + 1) * sizeof(pv_map_t *));
    for (int i = 0; i < h->nuvars; i++)
        h->uvar_names[i] = pv_arena_strdup(cx->a, pv_cv_user_name(i));
    h->uvar_is_set = pv_arena_calloc(cx->a, (size_t)h->nuvars + 1);
    for (int i = 0; i < cx->nmaps; i++)
        h->uvar_maps[cx->maps[i]->slot] = cx->maps[i];
    for (int i = 0; i < cx->nset_slots; i++)
        h->uvar_is_set[cx->set_slots[i]] = 1;
    return PV_OK;
}

#define RW_CTX (PV_CTX_SERVER | PV_CTX_LOCATION | PV_CTX_SIF | PV_CTX_LIF)

static const pv_conf_cmd_t rewrite_cmds[] = {
    {"rewrite", RW_CTX, PV_ARGS_TAKE2 | PV_ARGS_TAKE3, rewrite_cb, PV_BASE_NONE, 0, NULL},
    {"return", RW_CTX, PV_ARGS_TAKE12, return_cb, PV_BASE_NONE, 0, NULL},
    {"break", RW_CTX, PV_ARGS_NOARGS, break_cb, PV_BASE_NONE, 0, NULL},
    {"if", PV_CTX_SERVER | PV_CTX_LOCATION, PV_ARGS_BLOCK | PV_ARGS_1MORE, if_cb, PV_BASE_NONE, 0,
     NULL},
    {"set", RW_CTX, PV_ARGS_TAKE2, set_cb, PV_BASE_NONE, 0, NULL},
    {"rewrite_log", RW_CTX | PV_CTX_HTTP, PV_ARGS_FLAG, rewrite_log_cb, PV_BASE_NONE, 0, NULL},
    {"uninitialized_variable_warn", RW_CTX | PV_CTX_HTTP, PV_ARGS_FLAG, uninit_warn_cb,
     PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_rewrite_module = {"rewrite", rewrite_cmds, PV_NELEM(rewrite_cmds)};
