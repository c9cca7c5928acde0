/* The SSI directives (ngx_http_ssi_module's): ssi, ssi_types,
 * ssi_silent_errors, ssi_value_length, ssi_last_modified,
 * ssi_min_file_chunk, ssi_ignore_recycled_buffers; and those of the
 * other modules that ride the same subrequests: the addition module's
 * (add_before_body, add_after_body, addition_types), the mirror
 * module's (mirror, mirror_request_body) and the core's
 * log_subrequest. Merged from http to server to location; the code that
 * uses them is http/ssi.c, http/addition.c, http/mirror.c and
 * http/subreq.c. */
#include "conf_int.h"

#include <string.h>

static pv_ssi_conf_t *sc(void *base)
{
    return &((pv_loc_conf_t *)base)->ssi;
}

void pv_conf_ssi_init(pv_ssi_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->enable = PV_UNSET;
    c->silent_errors = PV_UNSET;
    c->last_modified = PV_UNSET;
    c->ignore_recycled = PV_UNSET;
    c->min_file_chunk = PV_UNSET;
    c->value_len = PV_UNSET;
}

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)sc(base) + cmd->offset));
}

static int set_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_size(cx, nd, (int64_t *)((char *)sc(base) + cmd->offset));
}

/* ssi_types, addition_types: as gzip_types, text/html always in the list. */
static int set_types_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_mime_types(cx, nd, (pv_mime_list_t **)((char *)base + cmd->offset));
}

/* add_before_body / add_after_body URI: the subrequest's URI as given
 * (an empty one turns an inherited one off). */
static int set_uri_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_str_t *u = (pv_str_t *)((char *)base + cmd->offset);
    if (u->p)
        return DUP(cx, nd);
    *u = (pv_str_t){pv_arena_strndup(cx->a, nd->args[1].p, nd->args[1].len), nd->args[1].len};
    pv_add_conf_t *ad = &((pv_loc_conf_t *)base)->add;
    *(u == &ad->before ? &ad->before_src : &ad->after_src) = nd->src;
    return PV_OK;
}

/* mirror URI | off: repeated lines add; `off` stands alone, as in NGINX
 * (a second line with it, or after it, is a duplicate). The URI is taken
 * literally: no variables. */
static int mirror_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_mirror_conf_t *m = &((pv_loc_conf_t *)base)->mirror;
    int off = strcmp(nd->args[1].p, "off") == 0;
    if (m->set && (off || m->n == 0))
        return DUP(cx, nd);
    m->set = 1;
    if (off)
        return PV_OK;
    pv_str_t *u = pv_conf_push(cx->a, &m->uris, &m->n, sizeof(*u));
    int n = m->n - 1;
    pv_conf_src_t *src = pv_conf_push(cx->a, &m->srcs, &n, sizeof(*src));
    if (!u || !src)
        return pv_conf_error(cx, &nd->src, "out of memory");
    *u = (pv_str_t){pv_arena_strndup(cx->a, nd->args[1].p, nd->args[1].len), nd->args[1].len};
    *src = nd->src;
    PV_UNUSED(cmd);
    return PV_OK;
}

static int loc_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)base + cmd->offset));
}

#define SC(f) PV_BASE_LOC, offsetof(pv_ssi_conf_t, f)

static const pv_conf_cmd_t ssi_cmds[] = {
    {"ssi", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_FLAG, set_flag_cb, SC(enable), NULL},
    {"ssi_silent_errors", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, SC(silent_errors), NULL},
    {"ssi_ignore_recycled_buffers", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, SC(ignore_recycled), NULL},
    {"ssi_last_modified", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, SC(last_modified), NULL},
    {"ssi_min_file_chunk", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_size_cb, SC(min_file_chunk), NULL},
    {"ssi_value_length", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_size_cb, SC(value_len), NULL},
    {"ssi_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_types_cb, PV_BASE_LOC, offsetof(pv_loc_conf_t, ssi.types), NULL},
    {"add_before_body", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_uri_cb, PV_BASE_LOC, offsetof(pv_loc_conf_t, add.before),
     NULL},
    {"add_after_body", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_uri_cb, PV_BASE_LOC, offsetof(pv_loc_conf_t, add.after),
     NULL},
    {"addition_types", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_types_cb, PV_BASE_LOC, offsetof(pv_loc_conf_t, add.types),
     NULL},
    {"mirror", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, mirror_cb, PV_BASE_LOC, 0, NULL},
    {"mirror_request_body", PV_CTX_ANY_LOC, PV_ARGS_FLAG, loc_flag_cb, PV_BASE_LOC,
     offsetof(pv_loc_conf_t, mirror.request_body), NULL},
    {"log_subrequest", PV_CTX_ANY_LOC, PV_ARGS_FLAG, loc_flag_cb, PV_BASE_LOC, offsetof(pv_loc_conf_t, log_subrequest),
     NULL},
};

const pv_conf_module_t pv_conf_ssi_module = {"ssi", ssi_cmds, PV_NELEM(ssi_cmds)};

#define SMERGE(f, def) \
    if (c->f == PV_UNSET) \
    c->f = p ? p->f : (def)

void pv_conf_ssi_merge(pv_ssi_conf_t *c, const pv_ssi_conf_t *p)
{
    SMERGE(enable, 0);
    SMERGE(silent_errors, 0);
    SMERGE(last_modified, 0);
    SMERGE(ignore_recycled, 0);
    SMERGE(min_file_chunk, 1024);
    SMERGE(value_len, 255); /* NGINX's merge: 255, though its documentation says 256 */
    if (!c->types)
        c->types = p ? p->types : &pv_conf_html_only;
}

void pv_conf_add_merge(pv_add_conf_t *c, const pv_add_conf_t *p)
{
    if (!c->before.p && p) {
        c->before = p->before;
        c->before_src = p->before_src;
    }
    if (!c->after.p && p) {
        c->after = p->after;
        c->after_src = p->after_src;
    }
    if (!c->before.p)
        c->before = (pv_str_t){"", 0};
    if (!c->after.p)
        c->after = (pv_str_t){"", 0};
    if (!c->types)
        c->types = p ? p->types : &pv_conf_html_only;
}

void pv_conf_mirror_init(pv_loc_conf_t *lc)
{
    memset(&lc->mirror, 0, sizeof(lc->mirror));
    lc->mirror.request_body = PV_UNSET;
    lc->log_subrequest = PV_UNSET;
}

/* NGINX's merge: a level with its own `mirror` lines keeps them alone. */
void pv_conf_mirror_merge(pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    if (!c->mirror.set && p) {
        c->mirror.uris = p->mirror.uris;
        c->mirror.srcs = p->mirror.srcs;
        c->mirror.n = p->mirror.n;
    }
    if (c->mirror.request_body == PV_UNSET)
        c->mirror.request_body = p ? p->mirror.request_body : 1;
    if (c->log_subrequest == PV_UNSET)
        c->log_subrequest = p ? p->log_subrequest : 0;
}
