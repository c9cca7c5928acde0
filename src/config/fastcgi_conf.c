/* The fastcgi_* directives (ngx_http_fastcgi_module): fastcgi_pass, which
 * makes a location's pass as proxy_pass does (so upstream blocks,
 * implicit upstreams, unix: sockets and keepalive pools follow the same
 * code) but marks it for the fastcgi module, and the module's settings,
 * merged from http to server to location. */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

void pv_conf_fastcgi_init(pv_fastcgi_conf_t *f)
{
    memset(f, 0, sizeof(*f));
    f->connect_timeout = f->read_timeout = f->send_timeout = PV_UNSET;
    f->next_upstream = PV_UNSET;
    f->next_upstream_tries = f->next_upstream_timeout = PV_UNSET;
    f->intercept_errors = f->keep_conn = PV_UNSET;
    f->pass_request_headers = f->pass_request_body = f->request_buffering = PV_UNSET;
    f->buffer_size = PV_UNSET;
    f->buffering = PV_UNSET;
    f->ignore = PV_UNSET;
    f->buffers_num = PV_UNSET;
    f->buffers_size = f->busy_buffers_size = f->temp_file_write_size = PV_UNSET;
    f->max_temp_file_size = f->limit_rate = PV_UNSET;
    f->socket_keepalive = PV_UNSET;
    f->ignore_client_abort = f->force_ranges = PV_UNSET;
}

#define MERGE(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == PV_UNSET)                                                                      \
            c->f = p ? p->f : (def);                                                               \
    } while (0)

void pv_conf_fastcgi_merge(pv_fastcgi_conf_t *c, const pv_fastcgi_conf_t *p)
{
    MERGE(connect_timeout, 60000);
    MERGE(read_timeout, 60000);
    MERGE(send_timeout, 60000);
    MERGE(next_upstream, PV_NEXT_F_ERROR | PV_NEXT_F_TIMEOUT);
    MERGE(next_upstream_tries, 0);
    MERGE(next_upstream_timeout, 0);
    MERGE(intercept_errors, 0);
    MERGE(keep_conn, 0);
    MERGE(pass_request_headers, 1);
    MERGE(pass_request_body, 1);
    MERGE(request_buffering, 1);
    MERGE(buffer_size, 4096);
    MERGE(buffering, 1);
    MERGE(ignore, 0);
    MERGE(max_temp_file_size, 1024 * 1024 * 1024);
    MERGE(limit_rate, 0);
    MERGE(socket_keepalive, 0);
    MERGE(ignore_client_abort, 0);
    MERGE(force_ranges, 0);
    if (c->buffers_num == PV_UNSET) {
        c->buffers_num = p ? p->buffers_num : 8;
        c->buffers_size = p ? p->buffers_size : 4096;
    }
    /* the busy and write sizes inherit only as written, as NGINX */
    if (c->busy_buffers_size == PV_UNSET && p)
        c->busy_buffers_size = p->busy_buffers_size;
    if (c->temp_file_write_size == PV_UNSET && p)
        c->temp_file_write_size = p->temp_file_write_size;
    int64_t size = PV_MAX(c->buffer_size, c->buffers_size);
    c->pipe.buffering = c->buffering;
    c->pipe.buffers_num = c->buffers_num;
    c->pipe.buffers_size = c->buffers_size;
    c->pipe.busy_size = c->busy_buffers_size != PV_UNSET ? c->busy_buffers_size : 2 * size;
    c->pipe.write_size = c->temp_file_write_size != PV_UNSET ? c->temp_file_write_size : 2 * size;
    c->pipe.max_temp_file_size = c->max_temp_file_size;
    c->pipe.limit_rate = c->limit_rate;
    if (!c->bind_set && p) {
        c->bind = p->bind;
        c->bind_set = p->bind_set;
    }
    if (c->next_upstream & PV_NEXT_F_OFF)
        c->next_upstream = PV_NEXT_F_OFF;
    if (!c->params && p) { /* fastcgi_param lines are inherited all or none */
        c->params = p->params;
        c->nparams = p->nparams;
    }
    if (!c->nhide && p) {
        c->hide = p->hide;
        c->nhide = p->nhide;
    }
    if (!c->npass && p) {
        c->pass = p->pass;
        c->npass = p->npass;
    }
    if (!c->ncatch_stderr && p) {
        c->catch_stderr = p->catch_stderr;
        c->ncatch_stderr = p->ncatch_stderr;
    }
    if (!c->index.p && p)
        c->index = p->index;
    if (!c->split_set && p) {
        c->split = p->split;
        c->split_set = p->split_set;
    }
}

/* fastcgi_pass ADDRESS | unix:PATH | UPSTREAM: no scheme, no URI. */
static int set_pass_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_location_t *loc = cx->loc;
    const char *url = ARG(nd, 1);
    if (loc->proxy_pass)
        return DUP(cx, nd);
    pv_proxy_pass_t *pp = pv_arena_calloc(cx->a, sizeof(*pp));
    pp->fastcgi = 1;
    if (strchr(url, '$')) {
        /* evaluated per request as the proxy's run-time targets are, as
         * the address part of an http:// URL (a name, host:port, unix:PATH) */
        const char *u = pv_arena_printf(cx->a, "http://%s", url);
        pp->cv = pv_arena_calloc(cx->a, sizeof(*pp->cv));
        if (pv_conf_compile(cx, nd, pp->cv, u, strlen(u)) != PV_OK)
            return PV_ERR;
        pp->url = (pv_str_t){pv_arena_strdup(cx->a, url), nd->args[1].len};
        pp->host = "";
        pp->src = nd->src;
        loc->proxy_pass = pp;
        return PV_OK;
    }
    if (strstr(url, "://"))
        return pv_conf_error(cx, &nd->src, "invalid host in upstream \"%s\"", url);
    size_t len = nd->args[1].len;
    if (strncasecmp(url, "unix:", 5) == 0) {
        pv_conf_addr_t un = {.len = 0};
        const char *err = pv_conf_unix_addr(url + 5, len - 5, &un);
        if (err)
            return pv_conf_error(cx, &nd->src, "%s in upstream \"%s\"", err, url);
        pp->proxy_host = PV_STR("localhost");
        char *host = pv_arena_strndup(cx->a, url, len);
        pv_conf_pass_target(cx, loc, pp, nd, url, host, 0);
        cx->passes[cx->npasses - 1].un = un;
        return PV_OK;
    }
    size_t hlen = strcspn(url, "/?");
    if (url[hlen])
        return pv_conf_error(cx, &nd->src, "invalid host in upstream \"%s\"", url);
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, url, hlen, &host, &port) != 0)
        return pv_conf_error(cx, &nd->src, "invalid port in upstream \"%s\"", url);
    if (!*host)
        return pv_conf_error(cx, &nd->src, "no host in upstream \"%s\"", url);
    pp->proxy_host = (pv_str_t){pv_arena_strndup(cx->a, url, hlen), hlen};
    pv_conf_pass_target(cx, loc, pp, nd, url, host, port);
    return PV_OK;
}

static pv_fastcgi_conf_t *fconf(void *base)
{
    return &((pv_loc_conf_t *)base)->fastcgi;
}

/* fastcgi_param NAME VALUE [if_not_empty] */
static int set_param_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    int ine = 0;
    if (nd->nargs == 4) {
        if (strcmp(ARG(nd, 3), "if_not_empty") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 3));
        ine = 1;
    }
    pv_fcgi_param_t *pr = pv_conf_push(cx->a, &f->params, &f->nparams, sizeof(*pr));
    pr->name = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    pr->if_not_empty = ine;
    return pv_conf_compile(cx, nd, &pr->value, ARG(nd, 2), nd->args[2].len);
}

static int set_list_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_fastcgi_conf_t *f = fconf(base);
    const char *which = cmd->data;
    pv_str_t *n = !which                        ? pv_conf_push(cx->a, &f->hide, &f->nhide, sizeof(*n))
                  : strcmp(which, "pass") == 0 ? pv_conf_push(cx->a, &f->pass, &f->npass, sizeof(*n))
                                               : pv_conf_push(cx->a, &f->catch_stderr, &f->ncatch_stderr, sizeof(*n));
    *n = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return PV_OK;
}

static int set_msec_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_msec(cx, nd, (int64_t *)((char *)fconf(base) + cmd->offset));
}

static int set_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = (int64_t *)((char *)fconf(base) + cmd->offset);
    if (pv_conf_size(cx, nd, f) != PV_OK)
        return PV_ERR;
    if (*f < 1024 || *f > 1024 * 1024)
        return pv_conf_error(cx, &nd->src, "\"%s\" must be between 1k and 1m", ARG(nd, 0));
    return PV_OK;
}

/* fastcgi_buffers NUMBER SIZE, as NGINX's bufs setter */
static int set_buffers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->buffers_num != PV_UNSET)
        return DUP(cx, nd);
    int64_t num = pv_conf_parse_num(nd->args[1]);
    int64_t size = pv_conf_parse_size(nd->args[2]);
    if (num <= 0 || num > 0x7fffffff || size <= 0 || size > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    f->buffers_num = (int)num;
    f->buffers_size = size;
    return PV_OK;
}

/* A size (fastcgi_busy_buffers_size, _temp_file_write_size,
 * _max_temp_file_size, _limit_rate), as NGINX's size slot. */
static int set_any_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_size(cx, nd, (int64_t *)((char *)fconf(base) + cmd->offset));
}

/* fastcgi_bind ADDRESS [transparent] | off, as proxy_bind */
static int set_bind_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->bind_set)
        return DUP(cx, nd);
    f->bind_set = 1;
    return pv_conf_bind(cx, nd, &f->bind);
}

static int set_flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)fconf(base) + cmd->offset));
}

static int set_tries_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->next_upstream_tries != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0)
        return pv_conf_error(cx, &nd->src, "invalid number \"%s\"", ARG(nd, 1));
    f->next_upstream_tries = v;
    return PV_OK;
}

static const pv_conf_enum_t next_upstream[] = {
    {"error", PV_NEXT_F_ERROR},         {"timeout", PV_NEXT_F_TIMEOUT},   {"invalid_header", PV_NEXT_F_INVALID_HEADER},
    {"non_idempotent", PV_NEXT_F_NON_IDEMPOTENT}, {"http_500", PV_NEXT_F_HTTP_500}, {"http_503", PV_NEXT_F_HTTP_503},
    {"http_403", PV_NEXT_F_HTTP_403},   {"http_404", PV_NEXT_F_HTTP_404}, {"http_429", PV_NEXT_F_HTTP_429},
    {"off", PV_NEXT_F_OFF},             {NULL, 0}};

static int set_next_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->next_upstream != PV_UNSET)
        return DUP(cx, nd);
    return pv_conf_bitmask(cx, nd, next_upstream, &f->next_upstream);
}

/* fastcgi_ignore_headers FIELD ...: as proxy_ignore_headers */
static int set_ignore_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    return pv_conf_bitmask(cx, nd, pv_conf_ignore_names, &fconf(base)->ignore);
}

static int set_index_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->index.p)
        return DUP(cx, nd);
    f->index = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return PV_OK;
}

/* fastcgi_split_path_info REGEX: two captures, the script and the path info. */
static int set_split_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    pv_fastcgi_conf_t *f = fconf(base);
    if (f->split_set)
        return DUP(cx, nd);
    f->split = pv_conf_regex(cx, &nd->src, ARG(nd, 1), nd->args[1].len, 0);
    if (!f->split)
        return PV_ERR;
    f->split_set = 1;
    return PV_OK;
}

#define F(f) PV_BASE_LOC, offsetof(pv_fastcgi_conf_t, f)
#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t fastcgi_cmds[] = {
    {"fastcgi_pass", PV_CTX_LOCATION | PV_CTX_LIF, PV_ARGS_TAKE1, set_pass_cb, NONE, NULL},
    {"fastcgi_param", PV_CTX_ANY_LOC, PV_ARGS_TAKE2 | PV_ARGS_TAKE3, set_param_cb, NONE, NULL},
    {"fastcgi_hide_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_list_cb, NONE, NULL},
    {"fastcgi_pass_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_list_cb, NONE, "pass"},
    {"fastcgi_catch_stderr", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_list_cb, NONE, "catch"},
    {"fastcgi_index", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_index_cb, NONE, NULL},
    {"fastcgi_split_path_info", PV_CTX_LOCATION, PV_ARGS_TAKE1, set_split_cb, NONE, NULL},
    {"fastcgi_connect_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, F(connect_timeout), NULL},
    {"fastcgi_read_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, F(read_timeout), NULL},
    {"fastcgi_send_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, F(send_timeout), NULL},
    {"fastcgi_next_upstream", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_next_cb, NONE, NULL},
    {"fastcgi_next_upstream_tries", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_tries_cb, NONE, NULL},
    {"fastcgi_next_upstream_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_msec_cb, F(next_upstream_timeout), NULL},
    {"fastcgi_intercept_errors", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(intercept_errors), NULL},
    {"fastcgi_keep_conn", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(keep_conn), NULL},
    {"fastcgi_pass_request_headers", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(pass_request_headers), NULL},
    {"fastcgi_pass_request_body", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(pass_request_body), NULL},
    {"fastcgi_request_buffering", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(request_buffering), NULL},
    {"fastcgi_buffer_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_size_cb, F(buffer_size), NULL},
    {"fastcgi_buffers", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_buffers_cb, NONE, NULL},
    {"fastcgi_buffering", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(buffering), NULL},
    {"fastcgi_ignore_headers", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_ignore_cb, NONE, NULL},
    {"fastcgi_busy_buffers_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_any_size_cb, F(busy_buffers_size), NULL},
    {"fastcgi_temp_file_write_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_any_size_cb, F(temp_file_write_size), NULL},
    {"fastcgi_max_temp_file_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_any_size_cb, F(max_temp_file_size), NULL},
    {"fastcgi_limit_rate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_any_size_cb, F(limit_rate), NULL},
    {"fastcgi_bind", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_bind_cb, NONE, NULL},
    {"fastcgi_socket_keepalive", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(socket_keepalive), NULL},
    {"fastcgi_ignore_client_abort", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(ignore_client_abort), NULL},
    {"fastcgi_force_ranges", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_flag_cb, F(force_ranges), NULL},
};

const pv_conf_module_t pv_conf_fastcgi_module = {"fastcgi", fastcgi_cmds, PV_NELEM(fastcgi_cmds)};
