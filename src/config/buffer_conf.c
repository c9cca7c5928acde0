/* Directives of buffering, temporary files and connection tuning, with
 * NGINX's syntax and defaults: the *_temp_path directories (made at start
 * as NGINX makes them), `user`, tcp_nodelay, reset_timedout_connection,
 * lingering_close, lingering_time, lingering_timeout,
 * keepalive_time, keepalive_disable, chunked_transfer_encoding,
 * underscores_in_headers, ignore_invalid_headers, max_headers and the
 * server names hash sizes (accepted and checked: portvakt's server name lookup has no
 * such hash to size). */
#include "conf_int.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/log.h"

/* ---- temp paths ---- */

/* `NAME PATH [L1 [L2 [L3]]]`: levels of 1 to 10 digits, 10 in all at
 * most (NGINX's ngx_conf_set_path_slot). */
static int temp_path_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                        void *base)
{
    pv_temp_path_t **slot = (pv_temp_path_t **)((char *)base + cmd->offset);
    if (*slot)
        return DUP(cx, nd);
    if (nd->nargs > 5)
        return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"%s\" directive", ARG(nd, 0));
    pv_temp_path_t *t = pv_arena_calloc(cx->a, sizeof(*t));
    const char *p = pv_conf_full_path(cx, ARG(nd, 1));
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    t->path = pv_arena_strndup(cx->a, p, len);
    t->configured = 1;
    t->src = nd->src;
    int total = 0;
    for (int i = 2; i < nd->nargs; i++) {
        int64_t n = pv_conf_parse_num(nd->args[i]);
        if (n <= 0 || n > 10 || (total += (int)n) > 10)
            return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
        t->levels[i - 2] = (int)n;
    }
    *slot = t;
    pv_http_conf_t *h = cx->http;
    *(pv_temp_path_t **)pv_conf_push(cx->a, &h->temp_paths, &h->ntemp_paths, sizeof(t)) = t;
    return PV_OK;
}

int pv_conf_temp_paths_make(const pv_conf_t *conf, char *err, size_t errlen)
{
    const pv_http_conf_t *h = conf->http;
    int as_root = geteuid() == 0;
    for (int i = 0; h && i < h->ntemp_paths; i++) {
        const char *p = h->temp_paths[i]->path;
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "mkdir() \"%s\" failed (%d: %s)", p, errno, strerror(errno));
            return PV_ERR;
        }
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "\"%s\" is not a directory", p);
            return PV_ERR;
        }
        /* the workers' account must own it, as NGINX chowns its paths */
        if (as_root && conf->user && *conf->user && st.st_uid != conf->uid && chown(p, conf->uid, (gid_t)-1) < 0) {
            snprintf(err, errlen, "chown(\"%s\", %u) failed (%d: %s)", p, conf->uid, errno,
                     strerror(errno));
            return PV_ERR;
        }
    }
    return PV_OK;
}

/* ---- user ---- */

/* `user NAME [GROUP]`: resolved at load; only a process started as root
 * changes accounts (NGINX warns and ignores it otherwise). Without GROUP
 * the group is the one named as the user, as NGINX does. */
static int user_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_conf_t *c = cx->conf;
    if (c->user)
        return DUP(cx, nd);
    if (geteuid() != 0) {
        pv_log(PV_LOG_WARN,
               "the \"user\" directive makes sense only if the master process runs with "
               "super-user privileges, ignored in %s:%d",
               nd->src.file, nd->src.line);
        c->user = "";
        return PV_OK;
    }
    const char *gname = nd->nargs == 3 ? ARG(nd, 2) : ARG(nd, 1);
    errno = 0;
    struct passwd *pw = getpwnam(ARG(nd, 1));
    if (!pw)
        return pv_conf_error(cx, &nd->src, "getpwnam(\"%s\") failed", ARG(nd, 1));
    c->uid = pw->pw_uid;
    struct group *gr = getgrnam(gname);
    if (!gr)
        return pv_conf_error(cx, &nd->src, "getgrnam(\"%s\") failed", gname);
    c->gid = gr->gr_gid;
    c->user = pv_arena_strdup(cx->a, ARG(nd, 1));
    return PV_OK;
}

int pv_conf_drop_privileges(const pv_conf_t *conf, char *err, size_t errlen)
{
    if (!conf->user || !*conf->user || geteuid() != 0)
        return PV_OK;
    if (setgid(conf->gid) < 0) {
        snprintf(err, errlen, "setgid(%u) failed (%d: %s)", conf->gid, errno, strerror(errno));
        return PV_ERR;
    }
    if (initgroups(conf->user, conf->gid) < 0) {
        snprintf(err, errlen, "initgroups(%s, %u) failed (%d: %s)", conf->user, conf->gid, errno,
                 strerror(errno));
        return PV_ERR;
    }
    if (setuid(conf->uid) < 0) {
        snprintf(err, errlen, "setuid(%u) failed (%d: %s)", conf->uid, errno, strerror(errno));
        return PV_ERR;
    }
    return PV_OK;
}

/* ---- hash sizes ---- */

/* server_names_hash_*: NGINX sizes a hash of server names with them; a
 * value is checked as NGINX's number parser does and has no effect here. */
static int hash_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                        void *base)
{
    int64_t *f = (int64_t *)((char *)cx->http + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = pv_conf_parse_num(nd->args[1]);
    if (*f < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid number", ARG(nd, 0));
    return PV_OK;
}

/* connection_pool_size: NGINX's first allocation per connection; checked
 * as NGINX checks it (ngx_http_core_pool_size: at least its smallest pool
 * on 64-bit systems, a multiple of 16); portvakt's connection memory is
 * sized otherwise (docs/ARCHITECTURE.md, Memory), so it has no effect. */
static int pool_size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = &cx->srv->connection_pool_size;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = pv_conf_parse_size(nd->args[1]);
    if (*f < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    if (*f < 112)
        return pv_conf_error(cx, &nd->src, "the pool size must be no less than 112");
    if (*f % 16)
        return pv_conf_error(cx, &nd->src, "the pool size must be a multiple of 16");
    return PV_OK;
}

/* ---- init and merge ---- */

void pv_conf_buffer_init(pv_loc_conf_t *lc)
{
    lc->client_body_temp_path = NULL;
    lc->proxy_temp_path = NULL;
    memset(lc->other_temp_paths, 0, sizeof(lc->other_temp_paths));
    lc->tcp_nodelay = PV_UNSET;
    lc->reset_timedout_connection = PV_UNSET;
    lc->lingering_close = PV_UNSET;
    lc->lingering_time = PV_UNSET;
    lc->lingering_timeout = PV_UNSET;
    lc->chunked_transfer_encoding = PV_UNSET;
    lc->proxy_request_buffering = PV_UNSET;
    lc->client_body_buffer_size = PV_UNSET;
    lc->client_body_in_file_only = PV_UNSET;
    lc->client_body_in_single_buffer = PV_UNSET;
    lc->proxy_buffering = PV_UNSET;
    lc->proxy_buffers_num = PV_UNSET;
    lc->proxy_buffers_size = PV_UNSET;
    lc->proxy_buffer_size = PV_UNSET;
    lc->proxy_busy_buffers_size = PV_UNSET;
    lc->proxy_temp_file_write_size = PV_UNSET;
    lc->proxy_max_temp_file_size = PV_UNSET;
    lc->proxy_limit_rate = PV_UNSET;
    lc->proxy_force_ranges = PV_UNSET;
    lc->proxy_ignore_client_abort = PV_UNSET;
    lc->limit_rate = (pv_size_cv_t){PV_UNSET, NULL};
    lc->limit_rate_after = (pv_size_cv_t){PV_UNSET, NULL};
    lc->keepalive_time = PV_UNSET;
    lc->keepalive_disable = PV_UNSET;
}

void pv_conf_buffer_init_srv(pv_server_t *s)
{
    s->underscores_in_headers = PV_UNSET;
    s->connection_pool_size = PV_UNSET;
    s->ignore_invalid_headers = PV_UNSET;
    s->max_headers = PV_UNSET;
}

/* A default temp path: <prefix>/NAME, made when first needed. */
static pv_temp_path_t *default_path(pv_conf_ctx_t *cx, const char *name)
{
    pv_temp_path_t *t = pv_arena_calloc(cx->a, sizeof(*t));
    t->path = pv_conf_full_path(cx, name);
    return t;
}

void pv_conf_buffer_merge(pv_conf_ctx_t *cx, pv_loc_conf_t *c, const pv_loc_conf_t *p)
{
    if (!c->client_body_temp_path)
        c->client_body_temp_path = p ? p->client_body_temp_path : default_path(cx, "client_body_temp");
    if (!c->proxy_temp_path)
        c->proxy_temp_path = p ? p->proxy_temp_path : default_path(cx, "proxy_temp");
    if (c->tcp_nodelay == PV_UNSET)
        c->tcp_nodelay = p ? p->tcp_nodelay : 1;
    if (c->reset_timedout_connection == PV_UNSET)
        c->reset_timedout_connection = p ? p->reset_timedout_connection : 0;
    if (c->lingering_close == PV_UNSET)
        c->lingering_close = p ? p->lingering_close : PV_LINGER_ON;
    if (c->lingering_time == PV_UNSET)
        c->lingering_time = p ? p->lingering_time : 30000;
    if (c->lingering_timeout == PV_UNSET)
        c->lingering_timeout = p ? p->lingering_timeout : 5000;
    if (c->chunked_transfer_encoding == PV_UNSET)
        c->chunked_transfer_encoding = p ? p->chunked_transfer_encoding : 1;
    if (c->proxy_request_buffering == PV_UNSET)
        c->proxy_request_buffering = p ? p->proxy_request_buffering : 1;
    if (c->client_body_buffer_size == PV_UNSET)
        c->client_body_buffer_size = p ? p->client_body_buffer_size : 8192;
    if (c->client_body_in_file_only == PV_UNSET)
        c->client_body_in_file_only = p ? p->client_body_in_file_only : PV_BODY_FILE_OFF;
    if (c->client_body_in_single_buffer == PV_UNSET)
        c->client_body_in_single_buffer = p ? p->client_body_in_single_buffer : 0;
    if (c->proxy_buffering == PV_UNSET)
        c->proxy_buffering = p ? p->proxy_buffering : 1;
    if (c->proxy_buffers_num == PV_UNSET) {
        c->proxy_buffers_num = p ? p->proxy_buffers_num : 8;
        c->proxy_buffers_size = p ? p->proxy_buffers_size : 4096;
    }
    if (c->proxy_buffer_size == PV_UNSET)
        c->proxy_buffer_size = p ? p->proxy_buffer_size : 4096;
    /* the busy and write sizes inherit only as written: unset, each level
     * takes them from its own buffers (pv_conf_buffer_check), as NGINX */
    if (c->proxy_busy_buffers_size == PV_UNSET && p)
        c->proxy_busy_buffers_size = p->proxy_busy_buffers_size;
    if (c->proxy_temp_file_write_size == PV_UNSET && p)
        c->proxy_temp_file_write_size = p->proxy_temp_file_write_size;
    if (c->proxy_max_temp_file_size == PV_UNSET)
        c->proxy_max_temp_file_size = p ? p->proxy_max_temp_file_size : 1024 * 1024 * 1024;
    if (c->proxy_limit_rate == PV_UNSET)
        c->proxy_limit_rate = p ? p->proxy_limit_rate : 0;
    if (c->proxy_force_ranges == PV_UNSET)
        c->proxy_force_ranges = p ? p->proxy_force_ranges : 0;
    if (c->proxy_ignore_client_abort == PV_UNSET)
        c->proxy_ignore_client_abort = p ? p->proxy_ignore_client_abort : 0;
    if (c->keepalive_time == PV_UNSET)
        c->keepalive_time = p ? p->keepalive_time : 3600000;
    if (c->keepalive_disable == PV_UNSET)
        c->keepalive_disable = p ? p->keepalive_disable : PV_KA_DISABLE_MSIE6;
    if (c->limit_rate.n == PV_UNSET)
        c->limit_rate = p ? p->limit_rate : (pv_size_cv_t){0, NULL};
    if (c->limit_rate_after.n == PV_UNSET)
        c->limit_rate_after = p ? p->limit_rate_after : (pv_size_cv_t){0, NULL};
    int64_t size = PV_MAX(c->proxy_buffer_size, c->proxy_buffers_size);
    c->busy_size = c->proxy_busy_buffers_size != PV_UNSET ? c->proxy_busy_buffers_size : 2 * size;
    c->write_size = c->proxy_temp_file_write_size != PV_UNSET ? c->proxy_temp_file_write_size : 2 * size;
    c->proxy_pipe = (pv_pipe_conf_t){c->proxy_buffering, c->proxy_buffers_num, c->proxy_buffers_size, c->busy_size,
                                     c->write_size, c->proxy_max_temp_file_size, c->proxy_limit_rate,
                                     c->proxy_temp_path, c->proxy_store.on > 0};
    if (!c->other_temp_paths[0])
        c->other_temp_paths[0] = p ? p->other_temp_paths[0] : default_path(cx, "fastcgi_temp");
    c->fastcgi.pipe.temp_path = c->other_temp_paths[0];
}

void pv_conf_buffer_merge_srv(pv_server_t *s, const pv_server_t *hs)
{
    if (s->underscores_in_headers == PV_UNSET)
        s->underscores_in_headers = hs->underscores_in_headers != PV_UNSET ? hs->underscores_in_headers : 0;
    if (s->ignore_invalid_headers == PV_UNSET)
        s->ignore_invalid_headers = hs->ignore_invalid_headers != PV_UNSET ? hs->ignore_invalid_headers : 1;
    if (s->max_headers == PV_UNSET)
        s->max_headers = hs->max_headers != PV_UNSET ? hs->max_headers : 1000;
}

/* `keepalive_disable none | msie6 | safari ...` (NGINX's bitmask slot:
 * every name sets its bit, and "none" anywhere clears them all). */
static int ka_disable_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = &cx->lc->keepalive_disable;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = 0;
    int none = 0;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strcmp(a, "none") == 0)
            none = 1;
        else if (strcmp(a, "msie6") == 0)
            *f |= PV_KA_DISABLE_MSIE6;
        else if (strcmp(a, "safari") == 0)
            *f |= PV_KA_DISABLE_SAFARI;
        else
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", a);
    }
    if (none)
        *f = 0;
    return PV_OK;
}

static const pv_conf_enum_t linger_names[] = {
    {"off", PV_LINGER_OFF}, {"on", PV_LINGER_ON}, {"always", PV_LINGER_ALWAYS}, {NULL, 0}};

static int file_only_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    static const char *const names[] = {"off", "on", "clean"};
    int *f = &cx->lc->client_body_in_file_only;
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(ARG(nd, 1), names[i]) == 0) {
            *f = i;
            return PV_OK;
        }
    }
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, 1));
}

/* proxy_buffers NUM SIZE, as NGINX's bufs setter */
static int buffers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_loc_conf_t *lc = cx->lc;
    if (lc->proxy_buffers_num != PV_UNSET)
        return DUP(cx, nd);
    int64_t num = pv_conf_parse_num(nd->args[1]);
    int64_t size = pv_conf_parse_size(nd->args[2]);
    if (num <= 0 || num > 0x7fffffff || size <= 0 || size > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    lc->proxy_buffers_num = (int)num;
    lc->proxy_buffers_size = size;
    return PV_OK;
}

/* limit_rate and limit_rate_after: a size, or a value with variables
 * parsed per request (NGINX's complex value size slot) */
static int size_cv_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_size_cv_t *f = (pv_size_cv_t *)((char *)base + cmd->offset);
    if (f->n != PV_UNSET)
        return DUP(cx, nd);
    pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
    if (pv_conf_compile(cx, nd, cv, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    f->n = 0;
    if (!cv->is_const) {
        f->cv = cv;
        return PV_OK;
    }
    int64_t n = pv_conf_parse_size(nd->args[1]);
    if (n < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    f->n = n;
    return PV_OK;
}

/* NGINX's checks of a module's response buffer sizes against each other
 * (its merge_loc_conf), made once a level is merged: m is the module's
 * prefix ("proxy", "fastcgi"), buffer_size its *_buffer_size. */
int pv_conf_pipe_check(pv_conf_ctx_t *cx, const char *m, int64_t buffer_size, const pv_pipe_conf_t *c,
                       const pv_conf_src_t *src)
{
    int64_t size = PV_MAX(buffer_size, c->buffers_size);
    char sizes[128];
    snprintf(sizes, sizeof(sizes), "the maximum of the value of \"%s_buffer_size\" and one of the \"%s_buffers\"", m,
             m);
    if (c->buffers_num < 2)
        return pv_conf_error(cx, src, "there must be at least 2 \"%s_buffers\"", m);
    if (c->busy_size < size)
        return pv_conf_error(cx, src, "\"%s_busy_buffers_size\" must be equal to or greater than %s", m, sizes);
    if (c->busy_size > (c->buffers_num - 1) * c->buffers_size)
        return pv_conf_error(cx, src, "\"%s_busy_buffers_size\" must be less than the size of all "
                                      "\"%s_buffers\" minus one buffer", m, m);
    if (c->write_size < size)
        return pv_conf_error(cx, src, "\"%s_temp_file_write_size\" must be equal to or greater than %s", m, sizes);
    if (c->max_temp_file_size != 0 && c->max_temp_file_size < size)
        return pv_conf_error(cx, src, "\"%s_max_temp_file_size\" must be equal to zero to disable "
                                      "temporary files usage or must be equal to or greater than %s", m, sizes);
    return PV_OK;
}

int pv_conf_buffer_check(pv_conf_ctx_t *cx, const pv_loc_conf_t *c, const pv_conf_src_t *src)
{
    if (pv_conf_pipe_check(cx, "proxy", c->proxy_buffer_size, &c->proxy_pipe, src) != PV_OK)
        return PV_ERR;
    return pv_conf_pipe_check(cx, "fastcgi", c->fastcgi.buffer_size, &c->fastcgi.pipe, src);
}

/* ---- the table ---- */

#define LOCF(f) PV_BASE_LOC, offsetof(pv_loc_conf_t, f)
#define SRVF(f) PV_BASE_SRV, offsetof(pv_server_t, f)
#define HTTPF(f) PV_BASE_NONE, offsetof(pv_http_conf_t, f)
#define PATH_ARGS (PV_ARGS_1MORE)

static const pv_conf_cmd_t buffer_cmds[] = {
    {"client_body_temp_path", PV_CTX_ANY_LOC, PATH_ARGS, temp_path_cb, LOCF(client_body_temp_path), NULL},
    {"proxy_temp_path", PV_CTX_ANY_LOC, PATH_ARGS, temp_path_cb, LOCF(proxy_temp_path), NULL},
    {"fastcgi_temp_path", PV_CTX_ANY_LOC, PATH_ARGS, temp_path_cb, LOCF(other_temp_paths[0]), NULL},
    {"scgi_temp_path", PV_CTX_ANY_LOC, PATH_ARGS, temp_path_cb, LOCF(other_temp_paths[1]), NULL},
    {"uwsgi_temp_path", PV_CTX_ANY_LOC, PATH_ARGS, temp_path_cb, LOCF(other_temp_paths[2]), NULL},
    {"user", PV_CTX_MAIN, PV_ARGS_TAKE12, user_cb, PV_BASE_NONE, 0, NULL},
    {"tcp_nodelay", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOCF(tcp_nodelay), NULL},
    {"reset_timedout_connection", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOCF(reset_timedout_connection), NULL},
    {"lingering_close", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_enum_slot, LOCF(lingering_close), linger_names},
    {"lingering_time", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOCF(lingering_time), NULL},
    {"lingering_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOCF(lingering_timeout), NULL},
    {"chunked_transfer_encoding", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOCF(chunked_transfer_encoding), NULL},
    {"proxy_request_buffering", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOCF(proxy_request_buffering), NULL},
    {"client_body_buffer_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOCF(client_body_buffer_size), NULL},
    {"client_body_in_file_only", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, file_only_cb, PV_BASE_NONE, 0, NULL},
    {"client_body_in_single_buffer", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOCF(client_body_in_single_buffer), NULL},
    {"proxy_buffering", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOCF(proxy_buffering), NULL},
    {"proxy_buffers", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, buffers_cb, PV_BASE_NONE, 0, NULL},
    {"proxy_buffer_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOCF(proxy_buffer_size), NULL},
    {"proxy_busy_buffers_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOCF(proxy_busy_buffers_size), NULL},
    {"proxy_temp_file_write_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOCF(proxy_temp_file_write_size),
     NULL},
    {"proxy_max_temp_file_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot,
     LOCF(proxy_max_temp_file_size), NULL},
    {"proxy_limit_rate", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOCF(proxy_limit_rate), NULL},
    {"proxy_force_ranges", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOCF(proxy_force_ranges), NULL},
    {"proxy_ignore_client_abort", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOCF(proxy_ignore_client_abort), NULL},
    {"keepalive_time", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOCF(keepalive_time), NULL},
    {"keepalive_disable", PV_CTX_ANY_LOC, PV_ARGS_1MORE, ka_disable_cb, PV_BASE_NONE, 0, NULL},
    {"limit_rate", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_TAKE1, size_cv_cb, LOCF(limit_rate), NULL},
    {"limit_rate_after", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_TAKE1, size_cv_cb, LOCF(limit_rate_after), NULL},
    {"underscores_in_headers", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_FLAG, pv_conf_flag_slot,
     SRVF(underscores_in_headers), NULL},
    {"ignore_invalid_headers", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_FLAG, pv_conf_flag_slot,
     SRVF(ignore_invalid_headers), NULL},
    {"max_headers", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, pv_conf_set_int, SRVF(max_headers), NULL},
    {"connection_pool_size", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, pool_size_cb, PV_BASE_NONE, 0, NULL},
    {"server_names_hash_max_size", PV_CTX_HTTP, PV_ARGS_TAKE1, hash_size_cb,
     HTTPF(server_names_hash_max_size), NULL},
    {"server_names_hash_bucket_size", PV_CTX_HTTP, PV_ARGS_TAKE1, hash_size_cb,
     HTTPF(server_names_hash_bucket_size), NULL},
};

const pv_conf_module_t pv_conf_buffer_module = {"buffer", buffer_cmds, PV_NELEM(buffer_cmds)};
