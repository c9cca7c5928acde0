/* The directive table and its setters. Each row says where a directive
 * may appear, how many arguments it takes and which typed setter writes
 * it into which struct; the walker checks all of that before the setter
 * runs, with NGINX's messages. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "conf_int.h"

#include <limits.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/logring.h"


/* ---- generic typed setters ---- */

int pv_conf_size(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int64_t *f)
{
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = pv_conf_parse_size(nd->args[1]);
    if (*f < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    return PV_OK;
}

int pv_conf_msec(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int64_t *f)
{
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = pv_conf_parse_msec(nd->args[1]);
    if (*f < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    return PV_OK;
}

int pv_conf_flag(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, int *f)
{
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    if (strcasecmp(ARG(nd, 1), "on") == 0)
        *f = 1;
    else if (strcasecmp(ARG(nd, 1), "off") == 0)
        *f = 0;
    else
        return pv_conf_error(cx, &nd->src,
                             "invalid value \"%s\" in \"%s\" directive, it must be \"on\" or \"off\"",
                             ARG(nd, 1), ARG(nd, 0));
    return PV_OK;
}

int pv_conf_flag_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, (int *)((char *)base + cmd->offset));
}

int pv_conf_size_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_size(cx, nd, (int64_t *)((char *)base + cmd->offset));
}

int pv_conf_msec_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_msec(cx, nd, (int64_t *)((char *)base + cmd->offset));
}

static int set_num_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                      void *base)
{
    int64_t *f = (int64_t *)((char *)base + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    *f = pv_conf_parse_num(nd->args[1]);
    if (*f < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid number", ARG(nd, 0));
    return PV_OK;
}

int pv_conf_set_int(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)base + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0 || v > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid number", ARG(nd, 0));
    *f = (int)v;
    return PV_OK;
}

int pv_conf_enum_slot(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)base + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    for (const pv_conf_enum_t *e = cmd->data; e->name; e++) {
        if (strcasecmp(e->name, ARG(nd, 1)) == 0) {
            *f = e->value;
            return PV_OK;
        }
    }
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, 1));
}

int pv_conf_bitmask(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_conf_enum_t *names, int *f)
{
    int v = *f == PV_UNSET ? 0 : *f;
    for (int i = 1; i < nd->nargs; i++) {
        const pv_conf_enum_t *e = names;
        while (e->name && strcasecmp(e->name, ARG(nd, i)) != 0)
            e++;
        if (!e->name)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, i));
        v |= e->value;
    }
    *f = v;
    return PV_OK;
}

static int set_bitmask_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                          void *base)
{
    return pv_conf_bitmask(cx, nd, cmd->data, (int *)((char *)base + cmd->offset));
}

/* ---- main and events ---- */

static int set_worker_processes_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                                   const pv_conf_node_t *nd, void *base)
{
    pv_conf_t *c = cx->conf;
    if (c->worker_processes != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "auto") == 0) {
        c->worker_processes_auto = 1;
        c->worker_processes = 0;
        return PV_OK;
    }
    int64_t n = pv_conf_parse_num(nd->args[1]);
    if (n <= 0 || n > 4096)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    c->worker_processes = (int)n;
    return PV_OK;
}

/* error_log in http, server or location: one more log of the block, as
 * NGINX chains them, each with its own level (default error). */
static int set_scope_error_log(pv_conf_ctx_t *cx, const pv_conf_node_t *nd)
{
    const char *path = ARG(nd, 1);
    if (strncmp(path, "syslog:", 7) == 0 || strncmp(path, "memory:", 7) == 0)
        return pv_conf_error(cx, &nd->src, "\"%.6s\" error logs are not supported", path);
    int level = PV_LOG_ERR;
    if (nd->nargs == 3 && (level = pv_log_level_parse(ARG(nd, 2))) < 0)
        return pv_conf_error(cx, &nd->src, "invalid log level \"%s\"", ARG(nd, 2));
    pv_errlog_t *el = pv_arena_calloc(cx->a, sizeof(*el));
    el->path = strcmp(path, "stderr") == 0 ? "/dev/stderr" : pv_conf_full_path(cx, path);
    el->level = level;
    pv_errlog_t **tail = &cx->lc->error_log;
    while (*tail)
        tail = (pv_errlog_t **)&(*tail)->next;
    *tail = el;
    return PV_OK;
}

static int set_error_log_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                            void *base)
{
    static const char *const levels[] = {"emerg", "alert", "crit", "error",
                                         "warn",  "notice", "info", "debug"};
    pv_conf_t *c = cx->conf;
    if (cx->ctx != PV_CTX_MAIN)
        return set_scope_error_log(cx, nd);
    if (c->error_log_level != PV_UNSET)
        return DUP(cx, nd);
    c->error_log_level = PV_LOG_ERR;
    if (nd->nargs == 3) {
        size_t i = 0;
        while (i < PV_NELEM(levels) && strcmp(levels[i], ARG(nd, 2)) != 0)
            i++;
        if (i == PV_NELEM(levels))
            return pv_conf_error(cx, &nd->src, "invalid log level \"%s\"", ARG(nd, 2));
        c->error_log_level = (int)i;
    }
    c->error_log_path = strcmp(ARG(nd, 1), "stderr") == 0 ? NULL : pv_conf_full_path(cx, ARG(nd, 1));
    return PV_OK;
}

static int set_pid_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                      void *base)
{
    if (cx->conf->pid_path)
        return DUP(cx, nd);
    cx->conf->pid_path = pv_conf_full_path(cx, ARG(nd, 1));
    return PV_OK;
}

static int set_events_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    if (cx->events_seen++)
        return DUP(cx, nd);
    return pv_conf_walk(cx, nd->child, PV_CTX_EVENTS);
}

static void srv_init(pv_server_t *s)
{
    pv_conf_loc_init(&s->conf);
    s->client_header_timeout = PV_UNSET;
    s->client_header_buffer_size = PV_UNSET;
    s->large_header_buffers_num = PV_UNSET;
    s->large_header_buffers_size = PV_UNSET;
    pv_conf_ssl_init(&s->ssl);
    s->http2 = PV_UNSET;
    s->http2_max_concurrent_streams = PV_UNSET;
    s->http2_body_preread_size = PV_UNSET;
    pv_conf_buffer_init_srv(s);
}

static int set_http_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                       void *base)
{
    if (cx->http)
        return DUP(cx, nd);
    pv_http_conf_t *h = pv_arena_calloc(cx->a, sizeof(*h));
    cx->conf->http = cx->http = h;
    pv_conf_loc_init(&h->conf);
    h->http2_recv_buffer_size = PV_UNSET;
    h->server_names_hash_max_size = PV_UNSET;
    h->server_names_hash_bucket_size = PV_UNSET;
    cx->http_srv = pv_arena_calloc(cx->a, sizeof(pv_server_t));
    srv_init(cx->http_srv);
    /* "combined" always exists and may not be redefined (NGINX's rule). */
    static const char combined[] = "$remote_addr - $remote_user [$time_local] \"$request\" "
                                   "$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
    pv_log_format_t *f = pv_arena_calloc(cx->a, sizeof(*f));
    f->name = "combined";
    f->escape = PV_ESCAPE_DEFAULT;
    char msg[256];
    if (pv_cv_compile(&f->value, cx->a, combined, sizeof(combined) - 1, msg, sizeof(msg)) != PV_OK)
        return pv_conf_error(cx, &nd->src, "%s", msg);
    *(pv_log_format_t **)pv_conf_push(cx->a, &h->formats, &h->nformats, sizeof(f)) = f;
    if (pv_conf_trace_formats(cx, nd) != PV_OK)
        return PV_ERR;
    cx->srv = cx->http_srv;
    cx->lc = &h->conf;
    return pv_conf_walk(cx, nd->child, PV_CTX_HTTP);
}

/* ---- http / server / location settings ---- */

static int set_keepalive_timeout_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                                    const pv_conf_node_t *nd, void *base)
{
    pv_loc_conf_t *lc = cx->lc;
    if (lc->keepalive_timeout != PV_UNSET)
        return DUP(cx, nd);
    lc->keepalive_timeout = pv_conf_parse_msec(nd->args[1]);
    if (lc->keepalive_timeout < 0)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    if (nd->nargs == 3) {
        lc->keepalive_header = pv_conf_parse_msec(nd->args[2]);
        if (lc->keepalive_header < 0)
            return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    }
    return PV_OK;
}

/* One of access_log's parameters after the format, as NGINX reads them. */
static int access_log_param(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_access_log_t *l, const char *a)
{
    if (strncmp(a, "buffer=", 7) == 0) {
        pv_str_t v = {(char *)a + 7, strlen(a + 7)};
        int64_t n = pv_conf_parse_size(v);
        if (n <= 0)
            return pv_conf_error(cx, &nd->src, "invalid buffer size \"%s\"", v.p);
        l->buffer = (size_t)n;
        return PV_OK;
    }
    if (strncmp(a, "flush=", 6) == 0) {
        pv_str_t v = {(char *)a + 6, strlen(a + 6)};
        int64_t ms = pv_conf_parse_msec(v);
        if (ms <= 0)
            return pv_conf_error(cx, &nd->src, "invalid flush time \"%s\"", v.p);
        l->flush = ms;
        return PV_OK;
    }
    if (strncmp(a, "gzip", 4) == 0 && (a[4] == '\0' || a[4] == '=')) {
        if (!l->buffer)
            l->buffer = 64 * 1024;
        l->gzip = 1;
        if (a[4] == '=') {
            int64_t n = pv_conf_parse_num((pv_str_t){a + 5, strlen(a + 5)});
            if (n < 1 || n > 9)
                return pv_conf_error(cx, &nd->src, "invalid compression level \"%s\"", a + 5);
            l->gzip = (int)n;
        }
        return PV_OK;
    }
    if (strncmp(a, "if=", 3) == 0) {
        l->cond = pv_arena_calloc(cx->a, sizeof(*l->cond));
        return pv_conf_compile(cx, nd, l->cond, a + 3, strlen(a + 3));
    }
    return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
}

/* A time in seconds as NGINX's open_log_file_cache reads one ("10s",
 * "1m"; no milliseconds); -1 when invalid. */
static int64_t logcache_sec(pv_str_t v)
{
    if (memmem(v.p, v.len, "ms", 2))
        return -1;
    return pv_conf_parse_msec(v);
}

/* open_log_file_cache max=N [inactive=T] [min_uses=N] [valid=T] | off:
 * how the access log writer keeps the files of paths with variables
 * (core/logring.h). Defaults as NGINX's: inactive=10s min_uses=1 valid=60s. */
static int set_open_log_file_cache_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                      void *base)
{
    static atomic_uint ids;
    pv_logcache_t c = {0, 0, 1, 10000, 60000};
    int off = 0;
    if (cx->lc->log_cache)
        return pv_conf_error(cx, &nd->src, "\"open_log_file_cache\" directive is duplicate");
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        const char *eq = strchr(a, '=');
        pv_str_t v = {(char *)(eq ? eq + 1 : a), eq ? strlen(eq + 1) : 0};
        int64_t n = -1;
        if (strncmp(a, "max=", 4) == 0 && (n = pv_conf_parse_num(v)) >= 0 && n <= INT_MAX)
            c.max = (int)n;
        else if (strncmp(a, "min_uses=", 9) == 0 && (n = pv_conf_parse_num(v)) >= 0 && n <= INT_MAX)
            c.min_uses = (int)n;
        else if (strncmp(a, "inactive=", 9) == 0 && (n = logcache_sec(v)) >= 0)
            c.inactive_ms = n;
        else if (strncmp(a, "valid=", 6) == 0 && (n = logcache_sec(v)) >= 0)
            c.valid_ms = n;
        else if (strcmp(a, "off") == 0)
            off = 1;
        else
            return pv_conf_error(cx, &nd->src, "invalid \"open_log_file_cache\" parameter \"%s\"", a);
    }
    if (off)
        c.max = 0;
    else if (c.max == 0)
        return pv_conf_error(cx, &nd->src, "\"open_log_file_cache\" must have \"max\" parameter");
    c.id = atomic_fetch_add(&ids, 1) + 1;
    pv_logcache_t *p = pv_arena_calloc(cx->a, sizeof(*p));
    if (!p)
        return pv_conf_error(cx, &nd->src, "out of memory");
    *p = c;
    cx->lc->log_cache = p;
    return PV_OK;
}

static int set_access_log_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                             const pv_conf_node_t *nd, void *base)
{
    pv_loc_conf_t *lc = cx->lc;
    const char *path = ARG(nd, 1);
    int idx = lc->naccess_logs;
    pv_access_log_t *l = pv_conf_push(cx->a, &lc->access_logs, &lc->naccess_logs, sizeof(*l));
    if (strcmp(path, "off") == 0) {
        if (nd->nargs > 2)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        l->off = 1;
        return PV_OK;
    }
    l->src = nd->src;
    for (int i = 3; i < nd->nargs; i++)
        if (access_log_param(cx, nd, l, ARG(nd, i)) != PV_OK)
            return PV_ERR;
    if (l->flush && !l->buffer)
        return pv_conf_error(cx, &nd->src, "no buffer is defined for access_log \"%s\"", path);
    if (strncmp(path, "syslog:", 7) == 0)
        return pv_conf_error(cx, &nd->src, "syslog access logs are not supported");
    l->path = pv_conf_full_path(cx, path);
    if (strchr(path, '$')) {
        if (l->buffer)
            return pv_conf_error(cx, &nd->src, "buffered logs cannot have variables in name");
        l->path_cv = pv_arena_calloc(cx->a, sizeof(*l->path_cv));
        if (pv_conf_compile(cx, nd, l->path_cv, l->path, strlen(l->path)) != PV_OK)
            return PV_ERR;
    }
    for (int i = 0; l->buffer && i < cx->nlogrefs; i++) {
        /* one file, one buffer: NGINX's rule for two buffered logs */
        const pv_access_log_t *o = &cx->logrefs[i].lc->access_logs[cx->logrefs[i].idx];
        if (o->buffer && strcmp(o->path, l->path) == 0 &&
            (o->buffer != l->buffer || o->flush != l->flush || o->gzip != l->gzip))
            return pv_conf_error(cx, &nd->src, "access_log \"%s\" already defined with conflicting parameters",
                                 path);
    }
    pv_conf_log_ref_t *r = pv_conf_push(cx->tmp, &cx->logrefs, &cx->nlogrefs, sizeof(*r));
    r->lc = lc;
    r->idx = idx;
    r->fmt = nd->nargs >= 3 ? pv_arena_strdup(cx->a, ARG(nd, 2)) : "combined";
    r->src = nd->src;
    return PV_OK;
}

/* Compile a value, adding the directive's location to the message. */
static int compile(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_cv_t *cv, const char *s,
                   size_t len)
{
    char msg[256];
    if (pv_cv_compile(cv, cx->a, s, len, msg, sizeof(msg)) != PV_OK)
        return pv_conf_error(cx, &nd->src, "%s", msg);
    return PV_OK;
}

int pv_conf_compile(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_cv_t *cv, const char *s,
                    size_t len)
{
    return compile(cx, nd, cv, s, len);
}

static int set_proxy_set_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                                   const pv_conf_node_t *nd, void *base)
{
    pv_loc_conf_t *lc = cx->lc;
    pv_set_header_t *h = pv_conf_push(cx->a, &lc->set_headers, &lc->nset_headers, sizeof(*h));
    h->name = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    return compile(cx, nd, &h->value, ARG(nd, 2), nd->args[2].len);
}

static int set_large_buffers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                                const pv_conf_node_t *nd, void *base)
{
    pv_server_t *s = cx->srv;
    if (s->large_header_buffers_num != PV_UNSET)
        return DUP(cx, nd);
    int64_t num = pv_conf_parse_num(nd->args[1]);
    int64_t size = pv_conf_parse_size(nd->args[2]);
    if (num <= 0 || num > 0x7fffffff || size <= 1)
        return pv_conf_error(cx, &nd->src, "\"%s\" directive invalid value", ARG(nd, 0));
    s->large_header_buffers_num = (int)num;
    s->large_header_buffers_size = size;
    return PV_OK;
}

static int set_log_format_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                             const pv_conf_node_t *nd, void *base)
{
    pv_http_conf_t *h = cx->http;
    int slot = -1; /* a ready-made format this one replaces */
    for (int i = 0; i < h->nformats && slot < 0; i++) {
        if (strcmp(h->formats[i]->name, ARG(nd, 1)) != 0)
            continue;
        if (!h->formats[i]->builtin)
            return pv_conf_error(cx, &nd->src, "duplicate \"log_format\" name \"%s\"", ARG(nd, 1));
        slot = i;
    }
    pv_log_format_t *f = pv_arena_calloc(cx->a, sizeof(*f));
    f->name = pv_arena_strdup(cx->a, ARG(nd, 1));
    f->escape = PV_ESCAPE_DEFAULT;
    int first = 2;
    const char *esc = pv_conf_param(ARG(nd, 2), "escape");
    if (esc) {
        first = 3;
        if (strcmp(esc, "default") == 0)
            f->escape = PV_ESCAPE_DEFAULT;
        else if (strcmp(esc, "json") == 0)
            f->escape = PV_ESCAPE_JSON;
        else if (strcmp(esc, "none") == 0)
            f->escape = PV_ESCAPE_NONE;
        else
            return pv_conf_error(cx, &nd->src, "unknown log format escaping \"%s\"", esc);
    }
    size_t len = 0;
    for (int i = first; i < nd->nargs; i++)
        len += nd->args[i].len;
    char *s = pv_arena_alloc(cx->a, len + 1), *d = s;
    for (int i = first; i < nd->nargs; i++) {
        memcpy(d, ARG(nd, i), nd->args[i].len);
        d += nd->args[i].len;
    }
    *d = '\0';
    if (compile(cx, nd, &f->value, s, len) != PV_OK)
        return PV_ERR;
    if (slot >= 0)
        h->formats[slot] = f;
    else
        *(pv_log_format_t **)pv_conf_push(cx->a, &h->formats, &h->nformats, sizeof(f)) = f;
    return PV_OK;
}

/* ---- server ---- */

/* ---- HTTP/2 ---- */

static int set_http2_recv_buffer_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                    void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_http_conf_t *h = cx->http;
    if (h->http2_recv_buffer_size != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_size(nd->args[1]);
    if (v <= 2 * 16384 || v > 64 * 1024 * 1024)
        return pv_conf_error(cx, &nd->src, "\"http2_recv_buffer_size\" must be more than 32k and at most 64m");
    h->http2_recv_buffer_size = v;
    return PV_OK;
}

/* The directives NGINX 1.19.7 made obsolete: accepted with NGINX's
 * warning, and the directive named in it governs (keepalive_timeout,
 * keepalive_requests, client_header_timeout, large_client_header_buffers). */
static int set_http2_obsolete_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                                 void *base)
{
    PV_UNUSED(cx);
    PV_UNUSED(base);
    pv_log(PV_LOG_WARN, "the \"%s\" directive is obsolete, use the \"%s\" directive instead in %s:%d",
           cmd->name, (const char *)cmd->data, nd->src.file, nd->src.line);
    return PV_OK;
}

/* send_lowat, proxy_send_lowat, fastcgi_send_lowat set SO_SNDLOWAT, which
 * Linux does not let a program change (ENOPROTOOPT): the size is checked
 * and NGINX's Linux warning given, whatever the value. */
static int set_lowat_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    if (pv_conf_size(cx, nd, (int64_t *)((char *)base + cmd->offset)) != PV_OK)
        return PV_ERR;
    pv_log(PV_LOG_WARN, "\"%s\" is not supported, ignored in %s:%d", cmd->name, nd->src.file, nd->src.line);
    return PV_OK;
}

static int set_server_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                         void *base)
{
    pv_http_conf_t *h = cx->http;
    pv_server_t *s = pv_arena_calloc(cx->a, sizeof(*s));
    srv_init(s);
    s->src = nd->src;
    *(pv_server_t **)pv_conf_push(cx->a, &h->servers, &h->nservers, sizeof(s)) = s;
    cx->srv = s;
    cx->lc = &s->conf;
    int rc = pv_conf_walk(cx, nd->child, PV_CTX_SERVER);
    cx->srv = cx->http_srv;
    cx->lc = &h->conf;
    return rc;
}

/* The name NGINX keeps as the server's own (server_name_in_redirect): the
 * first one, lowercased unless a regex, without a leading '.'. */
/* server_name's "$hostname" is the machine's name. */
static const char *hostname_arg(const char *a, size_t *len, char host[256])
{
    if (strcmp(a, "$hostname") != 0)
        return a;
    if (gethostname(host, 256) != 0)
        host[0] = '\0';
    host[255] = '\0';
    *len = strlen(host);
    return host;
}

static pv_str_t first_server_name(pv_conf_ctx_t *cx, const char *a, size_t len)
{
    char host[256];
    a = hostname_arg(a, &len, host);
    if (a[0] == '.' && len > 1) {
        a++;
        len--;
    }
    char *n = pv_arena_strndup(cx->a, a, len);
    if (a[0] != '~') {
        for (size_t k = 0; k < len; k++)
            n[k] = (n[k] >= 'A' && n[k] <= 'Z') ? (char)(n[k] | 0x20) : n[k];
    }
    return (pv_str_t){n, len};
}

static int set_server_name_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd,
                              const pv_conf_node_t *nd, void *base)
{
    pv_server_t *s = cx->srv;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        size_t len = nd->args[i].len;
        if (!s->first_name.p)
            s->first_name = first_server_name(cx, a, len);
        if (a[0] == '~') {
            int caseless = 0;
            for (const char *p = a + 1; *p; p++)
                caseless |= *p >= 'A' && *p <= 'Z';
            pv_regex_t *rx = pv_conf_regex(cx, &nd->src, a + 1, len - 1, caseless);
            if (!rx)
                return PV_ERR;
            pv_server_name_t *sn = pv_conf_push(cx->a, &s->names, &s->nnames, sizeof(*sn));
            sn->kind = PV_SN_REGEX;
            sn->name = (pv_str_t){pv_arena_strdup(cx->a, a + 1), len - 1};
            sn->re = rx->code;
            sn->rx = rx;
            continue;
        }
        char host[256];
        a = hostname_arg(a, &len, host);
        char *low = pv_arena_strndup(cx->a, a, len);
        for (size_t k = 0; k < len; k++)
            low[k] = (low[k] >= 'A' && low[k] <= 'Z') ? (char)(low[k] | 0x20) : low[k];
        if (strcmp(low, "*") == 0)
            return pv_conf_error(cx, &nd->src, "server name \"%s\" is invalid", a);
        pv_str_t name, exact;
        int kind = pv_conf_wildcard((pv_str_t){low, len}, &name, &exact);
        if (exact.len) {
            pv_server_name_t *ex = pv_conf_push(cx->a, &s->names, &s->nnames, sizeof(*ex));
            ex->kind = PV_SN_EXACT;
            ex->name = exact;
        }
        if (kind == PV_SN_WILD_TAIL)
            name.p = pv_arena_strndup(cx->a, name.p, name.len);
        if (memchr(name.p, '*', name.len))
            return pv_conf_error(cx, &nd->src, "invalid server name or wildcard \"%s\"", a);
        pv_server_name_t *sn = pv_conf_push(cx->a, &s->names, &s->nnames, sizeof(*sn));
        sn->kind = kind;
        sn->name = name;
    }
    return PV_OK;
}

/* NGINX's rules for a location inside another (ngx_http_core_location). */
static int check_nesting(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_location_t *outer,
                         const char *name, int match, int named)
{
    if (!outer)
        return PV_OK;
    if (outer->match == PV_LOC_EXACT)
        return pv_conf_error(cx, &nd->src, "location \"%s\" cannot be inside the exact location \"%s\"",
                             name, outer->name.p);
    if (outer->named)
        return pv_conf_error(cx, &nd->src, "location \"%s\" cannot be inside the named location \"%s\"",
                             name, outer->name.p);
    if (named)
        return pv_conf_error(cx, &nd->src, "named location \"%s\" can be on the server level only", name);
    if (match != PV_LOC_REGEX && match != PV_LOC_REGEX_ICASE &&
        strncmp(name, outer->name.p, outer->name.len) != 0)
        return pv_conf_error(cx, &nd->src, "location \"%s\" is outside location \"%s\"", name, outer->name.p);
    return PV_OK;
}

static int set_location_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    static const struct {
        const char *mod;
        int match;
    } mods[] = {{"=", PV_LOC_EXACT}, {"^~", PV_LOC_PREFIX_STOP}, {"~*", PV_LOC_REGEX_ICASE},
                {"~", PV_LOC_REGEX}};
    int match = PV_LOC_PREFIX;
    const char *name = ARG(nd, nd->nargs - 1);
    if (nd->nargs == 3) {
        size_t i = 0;
        while (i < PV_NELEM(mods) && strcmp(mods[i].mod, ARG(nd, 1)) != 0)
            i++;
        if (i == PV_NELEM(mods))
            return pv_conf_error(cx, &nd->src, "invalid location modifier \"%s\"", ARG(nd, 1));
        match = mods[i].match;
    } else {
        for (size_t i = 0; i < PV_NELEM(mods); i++) {
            size_t ml = strlen(mods[i].mod);
            if (strncmp(name, mods[i].mod, ml) == 0) {
                match = mods[i].match;
                name += ml;
                break;
            }
        }
    }
    int named = nd->nargs == 2 && match == PV_LOC_PREFIX && name[0] == '@';
    pv_location_t *outer = cx->ctx == PV_CTX_LOCATION ? cx->loc : NULL;
    if (check_nesting(cx, nd, outer, name, match, named) != PV_OK)
        return PV_ERR;
    pv_server_t *s = cx->srv;
    pv_location_t *loc = pv_arena_calloc(cx->a, sizeof(*loc));
    loc->match = match;
    loc->named = named;
    loc->outer = outer;
    loc->name = (pv_str_t){pv_arena_strdup(cx->a, name), strlen(name)};
    loc->src = nd->src;
    pv_conf_loc_init(&loc->conf);
    if (match == PV_LOC_REGEX || match == PV_LOC_REGEX_ICASE) {
        loc->rx = pv_conf_regex(cx, &nd->src, name, strlen(name), match == PV_LOC_REGEX_ICASE);
        if (!loc->rx)
            return PV_ERR;
        loc->re = loc->rx->code;
    } else {
        for (int i = 0; i < s->nlocations; i++) {
            pv_location_t *o = s->locations[i];
            if (o->match == PV_LOC_REGEX || o->match == PV_LOC_REGEX_ICASE || o->outer != outer)
                continue;
            if ((o->match == PV_LOC_EXACT) == (match == PV_LOC_EXACT) &&
                strcmp(o->name.p, name) == 0)
                return pv_conf_error(cx, &nd->src, "duplicate location \"%s\"", name);
        }
    }
    *(pv_location_t **)pv_conf_push(cx->a, &s->locations, &s->nlocations, sizeof(loc)) = loc;
    if (outer)
        *(pv_location_t **)pv_conf_push(cx->a, &outer->children, &outer->nchildren, sizeof(loc)) = loc;
    pv_loc_conf_t *saved_lc = cx->lc;
    cx->loc = loc;
    cx->lc = &loc->conf;
    int rc = pv_conf_walk(cx, nd->child, PV_CTX_LOCATION);
    cx->loc = outer;
    cx->lc = saved_lc;
    return rc;
}

static int set_internal_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                           void *base)
{
    if (cx->loc->internal)
        return DUP(cx, nd);
    cx->loc->internal = 1;
    return PV_OK;
}

const char *const pv_conf_methods[PV_METHOD_NUM] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY",
    "MOVE", "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH"};

unsigned pv_conf_method_bit(pv_str_t m)
{
    for (int i = 0; i < PV_METHOD_NUM; i++)
        if (strlen(pv_conf_methods[i]) == m.len && strncasecmp(pv_conf_methods[i], m.p, m.len) == 0)
            return 1u << i;
    return 0;
}

/* `limit_except METHOD... { ... }`: the block is the configuration of the
 * methods not named (NGINX's), merged from its location's like an `if`
 * block's; GET names HEAD too. */
static int set_limit_except_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                               void *base)
{
    pv_location_t *p = cx->loc;
    if (p->lmt)
        return DUP(cx, nd);
    unsigned mask = 0;
    for (int i = 1; i < nd->nargs; i++) {
        unsigned b = pv_conf_method_bit(nd->args[i]);
        if (!b)
            return pv_conf_error(cx, &nd->src, "invalid method \"%s\"", ARG(nd, i));
        mask |= b;
    }
    if (mask & 1u)
        mask |= 2u;
    pv_location_t *l = pv_arena_calloc(cx->a, sizeof(*l));
    l->match = p->match;
    l->name = p->name;
    l->re = p->re;
    l->rx = p->rx;
    l->src = nd->src;
    l->parent = p;
    pv_conf_loc_init(&l->conf);
    pv_http_conf_t *h = cx->http;
    *(pv_location_t **)pv_conf_push(cx->a, &h->iflocs, &h->niflocs, sizeof(l)) = l;
    p->lmt = l;
    p->lmt_methods = mask;
    pv_loc_conf_t *saved_lc = cx->lc;
    cx->loc = l;
    cx->lc = &l->conf;
    int rc = pv_conf_walk(cx, nd->child, PV_CTX_LMT);
    cx->loc = p;
    cx->lc = saved_lc;
    return rc;
}

/* ---- the table ---- */

static const pv_conf_enum_t http_versions[] = {{"1.0", 10}, {"1.1", 11}, {NULL, 0}};

static const pv_conf_enum_t next_upstream[] = {
    {"error", PV_NEXT_F_ERROR},
    {"timeout", PV_NEXT_F_TIMEOUT},
    {"invalid_header", PV_NEXT_F_INVALID_HEADER},
    {"http_500", PV_NEXT_F_HTTP_500},
    {"http_502", PV_NEXT_F_HTTP_502},
    {"http_503", PV_NEXT_F_HTTP_503},
    {"http_504", PV_NEXT_F_HTTP_504},
    {"http_403", PV_NEXT_F_HTTP_403},
    {"http_404", PV_NEXT_F_HTTP_404},
    {"http_429", PV_NEXT_F_HTTP_429},
    {"non_idempotent", PV_NEXT_F_NON_IDEMPOTENT},
    {"off", PV_NEXT_F_OFF},
    {NULL, 0}};

#define MAIN(f) PV_BASE_MAIN, offsetof(pv_conf_t, f)
#define LOC(f) PV_BASE_LOC, offsetof(pv_loc_conf_t, f)
#define SRV(f) PV_BASE_SRV, offsetof(pv_server_t, f)
#define UPS(f) PV_BASE_UPS, offsetof(pv_upstream_conf_t, f)
#define NONE PV_BASE_NONE, 0

/* The directive tables, one per module, and the one list the walker
 * looks names up in; rows sharing a name are told apart by context, as
 * NGINX's modules are. */
/* the main and events contexts: workers, limits, error log, pid */
static const pv_conf_cmd_t core_cmds[] = {
    {"worker_processes", PV_CTX_MAIN, PV_ARGS_TAKE1, set_worker_processes_cb, NONE, NULL},
    {"error_log", PV_CTX_MAIN | PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_error_log_cb, NONE, NULL},
    {"pid", PV_CTX_MAIN, PV_ARGS_TAKE1, set_pid_cb, NONE, NULL},
    {"daemon", PV_CTX_MAIN, PV_ARGS_FLAG, pv_conf_flag_slot, MAIN(daemon), NULL},
    {"master_process", PV_CTX_MAIN, PV_ARGS_FLAG, pv_conf_flag_slot, MAIN(master_process), NULL},
    {"worker_rlimit_nofile", PV_CTX_MAIN, PV_ARGS_TAKE1, set_num_cb, MAIN(worker_rlimit_nofile),
     NULL},
    {"worker_shutdown_timeout", PV_CTX_MAIN, PV_ARGS_TAKE1, pv_conf_msec_slot, MAIN(worker_shutdown_timeout),
     NULL},
    {"events", PV_CTX_MAIN, PV_ARGS_BLOCK | PV_ARGS_NOARGS, set_events_cb, NONE, NULL},
    {"worker_connections", PV_CTX_EVENTS, PV_ARGS_TAKE1, pv_conf_set_int, MAIN(worker_connections),
     NULL},
    {"http", PV_CTX_MAIN, PV_ARGS_BLOCK | PV_ARGS_NOARGS, set_http_cb, NONE, NULL},
};

/* the http, server and location blocks: listen, names, timeouts, buffers, return */
static const pv_conf_cmd_t http_cmds[] = {
    {"keepalive_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, set_keepalive_timeout_cb, NONE, NULL},
    {"keepalive_requests", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_num_cb, LOC(keepalive_requests),
     NULL},
    {"client_max_body_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot,
     LOC(client_max_body_size), NULL},
    {"client_body_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOC(client_body_timeout),
     NULL},
    {"send_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOC(send_timeout), NULL},
    {"send_lowat", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_lowat_cb, LOC(lowat[0]), NULL},
    {"client_header_timeout", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, pv_conf_msec_slot,
     SRV(client_header_timeout), NULL},
    {"client_header_buffer_size", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, pv_conf_size_slot,
     SRV(client_header_buffer_size), NULL},
    {"large_client_header_buffers", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE2,
     set_large_buffers_cb, NONE, NULL},
    {"server", PV_CTX_HTTP, PV_ARGS_BLOCK | PV_ARGS_NOARGS, set_server_cb, NONE, NULL},
    {"listen", PV_CTX_SERVER, PV_ARGS_1MORE, pv_conf_listen_cb, NONE, NULL},
    {"server_name", PV_CTX_SERVER, PV_ARGS_1MORE, set_server_name_cb, NONE, NULL},
    {"location", PV_CTX_SERVER | PV_CTX_LOCATION, PV_ARGS_BLOCK | PV_ARGS_TAKE12, set_location_cb,
     NONE, NULL},
    {"internal", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_internal_cb, NONE, NULL},
    {"limit_except", PV_CTX_LOCATION, PV_ARGS_BLOCK | PV_ARGS_1MORE, set_limit_except_cb, NONE, NULL},
    {"http2", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_FLAG, pv_conf_flag_slot, SRV(http2), NULL},
    {"http2_max_concurrent_streams", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_num_cb,
     SRV(http2_max_concurrent_streams), NULL},
    {"http2_body_preread_size", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, pv_conf_size_slot,
     SRV(http2_body_preread_size), NULL},
    {"http2_chunk_size", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_size_slot, LOC(http2_chunk_size), NULL},
    {"http2_recv_buffer_size", PV_CTX_HTTP, PV_ARGS_TAKE1, set_http2_recv_buffer_cb, NONE, NULL},
    {"http2_idle_timeout", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_http2_obsolete_cb, NONE,
     "keepalive_timeout"},
    {"http2_recv_timeout", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_http2_obsolete_cb, NONE,
     "client_header_timeout"},
    {"http2_max_requests", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_http2_obsolete_cb, NONE,
     "keepalive_requests"},
    {"http2_max_field_size", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_http2_obsolete_cb, NONE,
     "large_client_header_buffers"},
    {"http2_max_header_size", PV_CTX_HTTP | PV_CTX_SERVER, PV_ARGS_TAKE1, set_http2_obsolete_cb, NONE,
     "large_client_header_buffers"},
};

/* proxy_pass and the proxy_* settings */
static const pv_conf_cmd_t proxy_cmds[] = {
    {"proxy_http_version", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_enum_slot, LOC(proxy_http_version),
     http_versions},
    {"proxy_set_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE2, set_proxy_set_header_cb, NONE, NULL},
    {"proxy_connect_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot,
     LOC(proxy_connect_timeout), NULL},
    {"proxy_read_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOC(proxy_read_timeout),
     NULL},
    {"proxy_send_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot, LOC(proxy_send_timeout),
     NULL},
    {"proxy_next_upstream", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_bitmask_cb,
     LOC(proxy_next_upstream), next_upstream},
    {"proxy_next_upstream_tries", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_num_cb,
     LOC(proxy_next_upstream_tries), NULL},
    {"proxy_next_upstream_timeout", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, pv_conf_msec_slot,
     LOC(proxy_next_upstream_timeout), NULL},
    {"proxy_pass_request_body", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot,
     LOC(proxy_pass_request_body), NULL},
    {"proxy_pass", PV_CTX_LOCATION | PV_CTX_LIF | PV_CTX_LMT, PV_ARGS_TAKE1, pv_conf_set_proxy_pass, NONE, NULL},
    {"proxy_bind", PV_CTX_ANY_LOC, PV_ARGS_TAKE12, pv_conf_set_proxy_bind, NONE, NULL},
    {"proxy_send_lowat", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_lowat_cb, LOC(lowat[1]), NULL},
    {"fastcgi_send_lowat", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_lowat_cb, LOC(lowat[2]), NULL},
};

/* upstream blocks: the keepalive pool's limits (the rest: upstream_conf.c) */
static const pv_conf_cmd_t upstream_cmds[] = {
    {"keepalive_requests", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, set_num_cb, UPS(keepalive_requests),
     NULL},
    {"keepalive_timeout", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, pv_conf_msec_slot, UPS(keepalive_timeout),
     NULL},
    {"keepalive_time", PV_CTX_UPSTREAM, PV_ARGS_TAKE1, pv_conf_msec_slot, UPS(keepalive_time), NULL},
};

/* access_log and log_format */
static const pv_conf_cmd_t log_cmds[] = {
    {"access_log", PV_CTX_ANY_LOC | PV_CTX_LIF | PV_CTX_LMT, PV_ARGS_1MORE, set_access_log_cb, NONE, NULL},
    {"open_log_file_cache", PV_CTX_ANY_LOC, PV_ARGS_1MORE, set_open_log_file_cache_cb, NONE, NULL},
    {"log_format", PV_CTX_HTTP, PV_ARGS_2MORE, set_log_format_cb, NONE, NULL},
};

#define MODULE(name, cmds) &(const pv_conf_module_t){(name), (cmds), PV_NELEM(cmds)}
static const pv_conf_module_t *const modules[] = {
    MODULE("core", core_cmds), MODULE("http", http_cmds), MODULE("proxy", proxy_cmds),
    &pv_conf_upstream_module, &pv_conf_match_module, MODULE("upstream", upstream_cmds), MODULE("log", log_cmds),
    &pv_conf_policy_module,
    &pv_conf_ssl_module, &pv_conf_proxy_ssl_module, &pv_conf_grpc_module, &pv_conf_fastcgi_module, &pv_conf_realip_module, &pv_conf_trace_module,
    &pv_conf_resolver_module,
    &pv_conf_rewrite_module, &pv_conf_map_module, &pv_conf_geo_module,
    &pv_conf_zip_module, &pv_conf_sub_module, &pv_conf_ssi_module, &pv_conf_cache_module, &pv_conf_static_module,
    &pv_conf_header_module, &pv_conf_charset_module, &pv_conf_cookie_module, &pv_conf_errpage_module,
    &pv_conf_buffer_module, &pv_conf_store_module, &pv_conf_residency_module, &pv_conf_metrics_module,
};

/* Does the argument count (name excluded) fit the row's spec? */
static int args_ok(unsigned spec, int n)
{
    if (spec & PV_ARGS_FLAG)
        return n == 1;
    if (spec & PV_ARGS_1MORE)
        return n >= 1 || (spec & PV_ARGS_NOARGS); /* with NOARGS: any count */
    if (spec & PV_ARGS_2MORE)
        return n >= 2;
    return n <= 3 && (spec & (1u << n));
}

int pv_conf_walk(pv_conf_ctx_t *cx, const pv_conf_node_t *first, int ctx)
{
    for (const pv_conf_node_t *nd = first; nd; nd = nd->next) {
        const char *name = nd->args[0].p;
        const pv_conf_cmd_t *cmd = NULL;
        int named = 0;
        for (size_t m = 0; m < PV_NELEM(modules) && !cmd; m++) {
            for (size_t i = 0; i < modules[m]->ncmds && !cmd; i++) {
                const pv_conf_cmd_t *c = &modules[m]->cmds[i];
                if (strcmp(c->name, name) != 0)
                    continue;
                named = 1;
                if (c->ctx & ctx)
                    cmd = c;
            }
        }
        if (!named)
            return pv_conf_error(cx, &nd->src, "unknown directive \"%s\"", name);
        if (!cmd)
            return pv_conf_error(cx, &nd->src, "\"%s\" directive is not allowed here", name);
        if ((cmd->args & PV_ARGS_BLOCK) && !nd->block)
            return pv_conf_error(cx, &nd->src, "directive \"%s\" has no opening \"{\"", name);
        if (!(cmd->args & PV_ARGS_BLOCK) && nd->block)
            return pv_conf_error(cx, &nd->src, "directive \"%s\" is not terminated by \";\"", name);
        if (!args_ok(cmd->args, nd->nargs - 1))
            return pv_conf_error(cx, &nd->src, "invalid number of arguments in \"%s\" directive",
                                 name);
        void *base = NULL;
        switch (cmd->base) {
        case PV_BASE_MAIN:
            base = cx->conf;
            break;
        case PV_BASE_LOC:
            base = cx->lc;
            break;
        case PV_BASE_SRV:
            base = cx->srv;
            break;
        case PV_BASE_UPS:
            base = cx->ups;
            break;
        }
        int saved = cx->ctx;
        cx->ctx = ctx;
        int rc = cmd->set(cx, cmd, nd, base);
        cx->ctx = saved;
        if (rc != PV_OK)
            return PV_ERR;
    }
    return PV_OK;
}
