/* `match NAME { ... }` (NGINX Plus's syntax), what a health check's answer
 * must be, line by line:
 *   status [!] CODE|LO-HI ...;
 *   header [!] NAME;  header NAME (= | != | ~ | !~) VALUE;
 *   body (~ | !~) REGEX;
 * Every line must hold. The lines are not directives: the block is read
 * here whole, as a `map` block is. */
#include "conf_int.h"

#include <string.h>

/* status [!] CODE|LO-HI ... */
static int status_line(pv_conf_ctx_t *cx, const pv_conf_node_t *c, pv_match_cond_t *m)
{
    int i = 1;
    if (i < c->nargs && strcmp(ARG(c, i), "!") == 0) {
        m->neg = 1;
        i++;
    }
    if (i >= c->nargs)
        return pv_conf_error(cx, &c->src, "invalid number of arguments in \"status\"");
    m->ranges = pv_arena_alloc(cx->a, (size_t)(c->nargs - i) * sizeof(*m->ranges));
    for (; i < c->nargs; i++) {
        const char *a = ARG(c, i), *dash = strchr(a, '-');
        size_t l1 = dash ? (size_t)(dash - a) : strlen(a);
        int64_t lo = pv_conf_parse_num((pv_str_t){a, l1});
        int64_t hi = dash ? pv_conf_parse_num((pv_str_t){dash + 1, strlen(dash + 1)}) : lo;
        if (lo < 100 || hi > 999 || lo > hi)
            return pv_conf_error(cx, &c->src, "invalid status \"%s\"", a);
        m->ranges[m->nranges][0] = (int)lo;
        m->ranges[m->nranges++][1] = (int)hi;
    }
    return PV_OK;
}

/* header [!] NAME | header NAME OP VALUE */
static int header_line(pv_conf_ctx_t *cx, const pv_conf_node_t *c, pv_match_cond_t *m)
{
    if (c->nargs == 2 || (c->nargs == 3 && strcmp(ARG(c, 1), "!") == 0)) {
        m->neg = c->nargs == 3;
        m->op = PV_MATCH_PRESENT;
        m->name = pv_arena_strdup(cx->a, ARG(c, c->nargs - 1));
        return PV_OK;
    }
    if (c->nargs != 4)
        return pv_conf_error(cx, &c->src, "invalid number of arguments in \"header\"");
    const char *op = ARG(c, 2);
    m->name = pv_arena_strdup(cx->a, ARG(c, 1));
    m->neg = op[0] == '!';
    const char *o = op + m->neg;
    if (strcmp(o, "=") == 0) {
        m->op = PV_MATCH_EQ;
        m->value = pv_arena_strdup(cx->a, ARG(c, 3));
        return PV_OK;
    }
    if (strcmp(o, "~") != 0)
        return pv_conf_error(cx, &c->src, "invalid operator \"%s\"", op);
    m->op = PV_MATCH_RE;
    m->rx = pv_conf_regex(cx, &c->src, ARG(c, 3), c->args[3].len, 0);
    return m->rx ? PV_OK : PV_ERR;
}

/* body ~ REGEX | body !~ REGEX */
static int body_line(pv_conf_ctx_t *cx, const pv_conf_node_t *c, pv_match_cond_t *m)
{
    if (c->nargs != 3)
        return pv_conf_error(cx, &c->src, "invalid number of arguments in \"body\"");
    const char *op = ARG(c, 1);
    if (strcmp(op, "~") != 0 && strcmp(op, "!~") != 0)
        return pv_conf_error(cx, &c->src, "invalid operator \"%s\"", op);
    m->neg = op[0] == '!';
    m->op = PV_MATCH_RE;
    m->rx = pv_conf_regex(cx, &c->src, ARG(c, 2), c->args[2].len, 0);
    return m->rx ? PV_OK : PV_ERR;
}

static int match_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_http_conf_t *h = cx->http;
    for (int i = 0; i < h->nmatches; i++)
        if (strcmp(h->matches[i]->name, ARG(nd, 1)) == 0)
            return pv_conf_error(cx, &nd->src, "duplicate match \"%s\"", ARG(nd, 1));
    pv_match_t *m = pv_arena_calloc(cx->a, sizeof(*m));
    m->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    m->src = nd->src;
    for (const pv_conf_node_t *c = nd->child; c; c = c->next) {
        if (c->child || c->nargs < 1)
            return pv_conf_error(cx, &c->src, "unexpected block in \"match\"");
        pv_match_cond_t *mc = pv_conf_push(cx->a, &m->conds, &m->nconds, sizeof(*mc));
        const char *k = ARG(c, 0);
        int rc;
        if (strcmp(k, "status") == 0)
            rc = (mc->kind = PV_MATCH_STATUS, status_line(cx, c, mc));
        else if (strcmp(k, "header") == 0)
            rc = (mc->kind = PV_MATCH_HEADER, header_line(cx, c, mc));
        else if (strcmp(k, "body") == 0)
            rc = (mc->kind = PV_MATCH_BODY, body_line(cx, c, mc));
        else
            rc = pv_conf_error(cx, &c->src, "unknown directive \"%s\" in \"match\"", k);
        if (rc != PV_OK)
            return rc;
    }
    *(pv_match_t **)pv_conf_push(cx->a, &h->matches, &h->nmatches, sizeof(m)) = m;
    return PV_OK;
}

static const pv_conf_cmd_t match_cmds[] = {
    {"match", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_TAKE1, match_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_match_module = {"match", match_cmds, PV_NELEM(match_cmds)};
