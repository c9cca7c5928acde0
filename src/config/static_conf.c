/* Directives of static file serving: the core module's root, alias,
 * types, default_type, try_files, the transfer switches (sendfile, aio,
 * directio...), etag, if_modified_since, max_ranges, open_file_cache,
 * and the index and autoindex modules' directives, with NGINX's syntax,
 * messages and defaults. */
#include "conf_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pv_static_conf_t *st(pv_conf_ctx_t *cx)
{
    return &cx->lc->st;
}

void pv_conf_static_init(pv_static_conf_t *s)
{
    memset(s, 0, sizeof(*s));
    s->default_type = (pv_str_t){NULL, 0};
    s->etag = PV_UNSET;
    s->if_modified_since = PV_UNSET;
    s->max_ranges = PV_UNSET;
    s->sendfile = PV_UNSET;
    s->sendfile_max_chunk = PV_UNSET;
    s->postpone_output = PV_UNSET;
    s->output_bufs_num = PV_UNSET;
    s->tcp_nopush = PV_UNSET;
    s->directio = PV_UNSET;
    s->aio = PV_UNSET;
    s->autoindex = PV_UNSET;
    s->autoindex_format = PV_UNSET;
    s->autoindex_exact_size = PV_UNSET;
    s->autoindex_localtime = PV_UNSET;
    s->log_not_found = PV_UNSET;
    s->disable_symlinks = PV_UNSET;
    s->types_hash_max_size = PV_UNSET;
    s->types_hash_bucket_size = PV_UNSET;
    s->open_file_cache = PV_UNSET;
    s->open_file_cache_inactive = PV_UNSET;
    s->open_file_cache_valid = PV_UNSET;
    s->open_file_cache_min_uses = PV_UNSET;
    s->open_file_cache_errors = PV_UNSET;
}

static int compile(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *s, size_t len, pv_cv_t *cv)
{
    return pv_conf_compile(cx, nd, cv, s, len);
}

/* ---- root and alias ------------------------------------------------------ */

static int root_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    int alias = cmd->data != NULL;
    const char *v = ARG(nd, 1);
    if (s->root_set) {
        if (s->alias == alias)
            return DUP(cx, nd);
        return pv_conf_error(cx, &nd->src, "\"%s\" directive is duplicate, \"%s\" directive was specified earlier",
                             ARG(nd, 0), s->alias ? "alias" : "root");
    }
    if (alias && cx->loc && cx->loc->name.p && cx->loc->name.p[0] == '@')
        return pv_conf_error(cx, &nd->src, "the \"alias\" directive cannot be used inside the named location");
    if (strstr(v, "$document_root") || strstr(v, "${document_root}"))
        return pv_conf_error(cx, &nd->src, "the $document_root variable cannot be used in the \"%s\" directive",
                             ARG(nd, 0));
    if (strstr(v, "$realpath_root") || strstr(v, "${realpath_root}"))
        return pv_conf_error(cx, &nd->src, "the $realpath_root variable cannot be used in the \"%s\" directive",
                             ARG(nd, 0));
    size_t len = nd->args[1].len;
    if (!alias && len > 0 && v[len - 1] == '/')
        len--;
    char *path = pv_arena_strndup(cx->a, v, len);
    if (path[0] != '$')
        path = (char *)pv_conf_full_path(cx, path);
    s->root = pv_arena_calloc(cx->a, sizeof(*s->root));
    if (compile(cx, nd, path, strlen(path), s->root) != PV_OK)
        return PV_ERR;
    s->root_set = 1;
    s->alias = alias;
    if (alias) {
        const pv_location_t *l = cx->loc;
        s->alias_len = (l->match == PV_LOC_REGEX || l->match == PV_LOC_REGEX_ICASE) ? PV_ALIAS_REGEX
                                                                                     : l->name.len;
    }
    return PV_OK;
}

/* ---- index, try_files ---------------------------------------------------- */

static int index_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    for (int i = 1; i < nd->nargs; i++) {
        if (nd->args[i].len == 0)
            return pv_conf_error(cx, &nd->src, "index \"%s\" in \"index\" directive is invalid", ARG(nd, 1));
        pv_cv_t *cv = pv_conf_push(cx->a, &s->index, &s->nindex, sizeof(*cv));
        if (compile(cx, nd, ARG(nd, i), nd->args[i].len, cv) != PV_OK)
            return PV_ERR;
    }
    return PV_OK;
}

static int try_files_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->ntry || s->try_last.p)
        return DUP(cx, nd);
    s->try_files = pv_arena_calloc(cx->a, (size_t)(nd->nargs - 2) * sizeof(pv_cv_t) + 1);
    s->try_dir = pv_arena_calloc(cx->a, (size_t)(nd->nargs - 2) + 1);
    for (int i = 1; i < nd->nargs - 1; i++) {
        size_t len = nd->args[i].len;
        if (len > 0 && ARG(nd, i)[len - 1] == '/') {
            s->try_dir[s->ntry] = 1;
            len--;
        }
        if (compile(cx, nd, ARG(nd, i), len, &s->try_files[s->ntry++]) != PV_OK)
            return PV_ERR;
    }
    const pv_str_t *last = &nd->args[nd->nargs - 1];
    s->try_last = (pv_str_t){pv_arena_strndup(cx->a, last->p, last->len), last->len};
    s->try_kind = PV_TRY_URI;
    s->try_src = nd->src;
    if (last->p[0] == '@') {
        s->try_kind = PV_TRY_NAMED;
    } else if (last->p[0] == '=') {
        int64_t code = pv_conf_parse_num((pv_str_t){last->p + 1, last->len - 1});
        if (code < 0 || code > 999)
            return pv_conf_error(cx, &nd->src, "invalid code \"%s\"", last->p);
        s->try_kind = PV_TRY_CODE;
        s->try_code = (int)code;
    } else if (compile(cx, nd, last->p, last->len, &s->try_uri) != PV_OK) {
        return PV_ERR;
    }
    return PV_OK;
}

/* ---- types --------------------------------------------------------------- */

static int mime_cmp(const void *a, const void *b)
{
    const pv_mime_t *x = a, *y = b;
    size_t n = PV_MIN(x->ext.len, y->ext.len);
    int c = memcmp(x->ext.p, y->ext.p, n);
    return c ? c : (x->ext.len > y->ext.len) - (x->ext.len < y->ext.len);
}

/* `types { TYPE EXT...; ... }`: a later extension replaces an earlier one,
 * with NGINX's warning. */
static int types_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    pv_mime_t *m = NULL;
    int n = 0;
    if (s->types)
        return DUP(cx, nd);
    for (const pv_conf_node_t *c = nd->child; c; c = c->next) {
        if (c->block)
            return pv_conf_error(cx, &c->src, "unexpected \"{\"");
        if (c->nargs < 2)
            return pv_conf_error(cx, &c->src, "invalid number of arguments in \"%s\" directive", ARG(c, 0));
        for (int i = 1; i < c->nargs; i++) {
            char *ext = pv_arena_strndup(cx->a, ARG(c, i), c->args[i].len);
            for (char *p = ext; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            pv_mime_t *e = NULL;
            for (int j = 0; j < n; j++)
                if (m[j].ext.len == c->args[i].len && memcmp(m[j].ext.p, ext, m[j].ext.len) == 0)
                    e = &m[j];
            if (!e) {
                e = pv_conf_push(cx->a, &m, &n, sizeof(*e));
                e->ext = (pv_str_t){ext, c->args[i].len};
            }
            e->type = (pv_str_t){pv_arena_strndup(cx->a, ARG(c, 0), c->args[0].len), c->args[0].len};
        }
    }
    if (n)
        qsort(m, (size_t)n, sizeof(*m), mime_cmp);
    s->types = m ? m : pv_arena_calloc(cx->a, sizeof(*m));
    s->ntypes = n;
    return PV_OK;
}

static int default_type_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->default_type.p)
        return DUP(cx, nd);
    s->default_type = (pv_str_t){pv_arena_strndup(cx->a, ARG(nd, 1), nd->args[1].len), nd->args[1].len};
    return PV_OK;
}

/* ---- switches and sizes -------------------------------------------------- */

/* Each row's setter is one of the generic ones, on an offset inside
 * pv_static_conf_t; they are repeated here for this file's tables. */
static int flag_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)st(cx) + cmd->offset);
    return pv_conf_flag(cx, nd, f);
}

/* flv (ngx_http_flv_module): the location's own content handler, so
 * not inherited by nested locations. */
static int flv_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(nd);
    PV_UNUSED(base);
    st(cx)->flv = 1;
    return PV_OK;
}

static int enum_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)st(cx) + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    for (const pv_conf_enum_t *e = cmd->data; e->name; e++) {
        if (strcmp(e->name, ARG(nd, 1)) == 0) {
            *f = e->value;
            return PV_OK;
        }
    }
    return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", ARG(nd, 1), ARG(nd, 0));
}

static int int_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int *f = (int *)((char *)st(cx) + cmd->offset);
    if (*f != PV_UNSET)
        return DUP(cx, nd);
    int64_t v = pv_conf_parse_num(nd->args[1]);
    if (v < 0 || v > 0x7fffffff)
        return pv_conf_error(cx, &nd->src, "invalid number \"%s\" in \"%s\" directive", ARG(nd, 1), ARG(nd, 0));
    *f = (int)v;
    return PV_OK;
}

static int size_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = (int64_t *)((char *)st(cx) + cmd->offset);
    return pv_conf_size(cx, nd, f);
}

/* output_buffers NUMBER SIZE */
static int output_buffers_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->output_bufs_num != PV_UNSET)
        return DUP(cx, nd);
    int64_t n = pv_conf_parse_num(nd->args[1]);
    int64_t size = pv_conf_parse_size(nd->args[2]);
    if (n <= 0 || n > 1024 || size <= 0 || size > 16 * 1024 * 1024)
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", n <= 0 || n > 1024 ? ARG(nd, 1) : ARG(nd, 2));
    s->output_bufs_num = (int)n;
    s->output_bufs_size = size;
    return PV_OK;
}

static int msec_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    int64_t *f = (int64_t *)((char *)st(cx) + cmd->offset);
    return pv_conf_msec(cx, nd, f);
}

/* directio SIZE | off */
static int directio_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->directio != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(ARG(nd, 1), "off") == 0) {
        s->directio = 0;
        return PV_OK;
    }
    return size_cb(cx, cmd, nd, base);
}

/* aio on | off | threads[=pool]: pools other than the built-in one are
 * not configurable (there is no thread_pool directive). */
static int aio_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    const char *v = ARG(nd, 1);
    if (s->aio != PV_UNSET)
        return DUP(cx, nd);
    if (strcmp(v, "off") == 0)
        s->aio = PV_AIO_OFF;
    else if (strcmp(v, "on") == 0)
        s->aio = PV_AIO_ON;
    else if (strcmp(v, "threads") == 0 || strcmp(v, "threads=default") == 0)
        s->aio = PV_AIO_THREADS;
    else if (strncmp(v, "threads=", 8) == 0)
        return pv_conf_error(cx, &nd->src, "unknown thread pool \"%s\"", v + 8);
    else
        return pv_conf_error(cx, &nd->src, "invalid value \"%s\" in \"%s\" directive", v, ARG(nd, 0));
    return PV_OK;
}

/* disable_symlinks off | on | if_not_owner [from=PART] */
static int symlinks_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->disable_symlinks != PV_UNSET)
        return DUP(cx, nd);
    static const pv_conf_enum_t v[] = {{"off", PV_SYMLINKS_OFF}, {"on", PV_SYMLINKS_ON},
                                       {"if_not_owner", PV_SYMLINKS_IF_NOT_OWNER}, {NULL, 0}};
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strncmp(a, "from=", 5) == 0) {
            if (s->disable_symlinks == PV_SYMLINKS_OFF || s->disable_symlinks == PV_UNSET)
                return pv_conf_error(cx, &nd->src, "\"from=\" cannot be used with \"off\" parameter");
            if (pv_conf_compile(cx, nd, &s->symlinks_from, a + 5, strlen(a + 5)) != PV_OK)
                return PV_ERR;
            s->has_symlinks_from = 1;
            continue;
        }
        const pv_conf_enum_t *e = v;
        while (e->name && strcmp(e->name, a) != 0)
            e++;
        if (!e->name || s->disable_symlinks != PV_UNSET)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", a);
        s->disable_symlinks = e->value;
    }
    return PV_OK;
}

/* open_file_cache off | max=N [inactive=TIME] */
static int ofc_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_static_conf_t *s = st(cx);
    if (s->open_file_cache != PV_UNSET)
        return DUP(cx, nd);
    int64_t max = -1, inactive = 60000;
    for (int i = 1; i < nd->nargs; i++) {
        const char *a = ARG(nd, i);
        if (strncmp(a, "max=", 4) == 0) {
            max = pv_conf_parse_num((pv_str_t){a + 4, strlen(a + 4)});
            if (max <= 0 || max > 0x7fffffff)
                return pv_conf_error(cx, &nd->src, "invalid \"open_file_cache\" parameter \"%s\"", a);
        } else if (strncmp(a, "inactive=", 9) == 0) {
            inactive = pv_conf_parse_msec((pv_str_t){a + 9, strlen(a + 9)});
            if (inactive < 0)
                return pv_conf_error(cx, &nd->src, "invalid \"open_file_cache\" parameter \"%s\"", a);
        } else if (strcmp(a, "off") == 0) {
            max = 0;
        } else {
            return pv_conf_error(cx, &nd->src, "invalid \"open_file_cache\" parameter \"%s\"", a);
        }
    }
    if (max == 0 && nd->nargs == 2) {
        s->open_file_cache = 0;
        return PV_OK;
    }
    if (max <= 0)
        return pv_conf_error(cx, &nd->src, "\"open_file_cache\" must have the \"max\" parameter");
    static int ids; /* loading is single-threaded */
    s->open_file_cache = (int)max;
    s->open_file_cache_id = ++ids;
    s->open_file_cache_inactive = inactive;
    return PV_OK;
}

static const pv_conf_enum_t ims_values[] = {{"off", PV_IMS_OFF}, {"exact", PV_IMS_EXACT},
                                            {"before", PV_IMS_BEFORE}, {NULL, 0}};
static const pv_conf_enum_t autoindex_formats[] = {{"html", PV_AUTOINDEX_HTML}, {"json", PV_AUTOINDEX_JSON},
                                                   {"xml", PV_AUTOINDEX_XML}, {"jsonp", PV_AUTOINDEX_JSONP},
                                                   {NULL, 0}};

#define ST(f) PV_BASE_NONE, offsetof(pv_static_conf_t, f)
#define ANY (PV_CTX_ANY_LOC)
#define ANYIF (PV_CTX_ANY_LOC | PV_CTX_LIF)

static const pv_conf_cmd_t static_cmds[] = {
    {"root", ANYIF, PV_ARGS_TAKE1, root_cb, PV_BASE_NONE, 0, NULL},
    {"alias", PV_CTX_LOCATION, PV_ARGS_TAKE1, root_cb, PV_BASE_NONE, 0, "alias"},
    {"index", ANY, PV_ARGS_1MORE, index_cb, PV_BASE_NONE, 0, NULL},
    {"try_files", PV_CTX_SERVER | PV_CTX_LOCATION, PV_ARGS_2MORE, try_files_cb, PV_BASE_NONE, 0, NULL},
    {"types", ANY, PV_ARGS_BLOCK | PV_ARGS_NOARGS, types_cb, PV_BASE_NONE, 0, NULL},
    {"default_type", ANY, PV_ARGS_TAKE1, default_type_cb, PV_BASE_NONE, 0, NULL},
    {"types_hash_max_size", ANY, PV_ARGS_TAKE1, int_cb, ST(types_hash_max_size), NULL},
    {"types_hash_bucket_size", ANY, PV_ARGS_TAKE1, int_cb, ST(types_hash_bucket_size), NULL},
    {"etag", ANY, PV_ARGS_FLAG, flag_cb, ST(etag), NULL},
    {"if_modified_since", ANY, PV_ARGS_TAKE1, enum_cb, ST(if_modified_since), ims_values},
    {"max_ranges", ANY, PV_ARGS_TAKE1, int_cb, ST(max_ranges), NULL},
    {"sendfile", ANYIF, PV_ARGS_FLAG, flag_cb, ST(sendfile), NULL},
    {"sendfile_max_chunk", ANY, PV_ARGS_TAKE1, size_cb, ST(sendfile_max_chunk), NULL},
    {"postpone_output", ANY, PV_ARGS_TAKE1, size_cb, ST(postpone_output), NULL},
    {"output_buffers", ANY, PV_ARGS_TAKE2, output_buffers_cb, PV_BASE_NONE, 0, NULL},
    {"tcp_nopush", ANY, PV_ARGS_FLAG, flag_cb, ST(tcp_nopush), NULL},
    {"directio", ANY, PV_ARGS_TAKE1, directio_cb, ST(directio), NULL},
    {"aio", ANY, PV_ARGS_TAKE1, aio_cb, PV_BASE_NONE, 0, NULL},
    {"log_not_found", ANY, PV_ARGS_FLAG, flag_cb, ST(log_not_found), NULL},
    {"disable_symlinks", ANY, PV_ARGS_TAKE12, symlinks_cb, PV_BASE_NONE, 0, NULL},
    {"open_file_cache", ANY, PV_ARGS_TAKE12, ofc_cb, PV_BASE_NONE, 0, NULL},
    {"open_file_cache_valid", ANY, PV_ARGS_TAKE1, msec_cb, ST(open_file_cache_valid), NULL},
    {"open_file_cache_min_uses", ANY, PV_ARGS_TAKE1, int_cb, ST(open_file_cache_min_uses), NULL},
    {"open_file_cache_errors", ANY, PV_ARGS_FLAG, flag_cb, ST(open_file_cache_errors), NULL},
    {"flv", PV_CTX_LOCATION, PV_ARGS_NOARGS, flv_cb, PV_BASE_NONE, 0, NULL},
    {"autoindex", ANY, PV_ARGS_FLAG, flag_cb, ST(autoindex), NULL},
    {"autoindex_format", ANY, PV_ARGS_TAKE1, enum_cb, ST(autoindex_format), autoindex_formats},
    {"autoindex_exact_size", ANY, PV_ARGS_FLAG, flag_cb, ST(autoindex_exact_size), NULL},
    {"autoindex_localtime", ANY, PV_ARGS_FLAG, flag_cb, ST(autoindex_localtime), NULL},
};

const pv_conf_module_t pv_conf_static_module = {"static", static_cmds, PV_NELEM(static_cmds)};

/* ---- merge ---------------------------------------------------------------- */

/* NGINX's built-in types when no level has a `types` block. */
static pv_mime_t default_types[] = {
    {{"gif", 3}, {"image/gif", 9}},
    {{"htm", 3}, {"text/html", 9}},
    {{"html", 4}, {"text/html", 9}},
    {{"jpg", 3}, {"image/jpeg", 10}},
};

#define MERGE(f, def)                                                                              \
    do {                                                                                           \
        if (c->f == PV_UNSET)                                                                      \
            c->f = p ? p->f : (def);                                                               \
    } while (0)

void pv_conf_static_merge(pv_conf_ctx_t *cx, pv_static_conf_t *c, const pv_static_conf_t *p)
{
    if (!c->root_set) {
        if (p) {
            c->root = p->root;
            c->alias = p->alias;
            c->alias_len = p->alias_len;
        } else {
            c->root = pv_arena_calloc(cx->a, sizeof(*c->root));
            const char *html = pv_conf_full_path(cx, "html");
            pv_cv_compile(c->root, cx->a, html, strlen(html), NULL, 0);
        }
    }
    if (!c->nindex) {
        if (p) {
            c->index = p->index;
            c->nindex = p->nindex;
        } else {
            c->index = pv_arena_calloc(cx->a, sizeof(*c->index));
            pv_cv_compile(c->index, cx->a, "index.html", 10, NULL, 0);
            c->nindex = 1;
        }
    }
    if (!c->types) {
        c->types = p ? p->types : default_types;
        c->ntypes = p ? p->ntypes : (int)PV_NELEM(default_types);
    }
    if (!c->default_type.p)
        c->default_type = p ? p->default_type : (pv_str_t){"text/plain", 10};
    MERGE(etag, 1);
    MERGE(if_modified_since, PV_IMS_EXACT);
    MERGE(max_ranges, 0x7fffffff);
    MERGE(sendfile, 0);
    MERGE(sendfile_max_chunk, 2 * 1024 * 1024);
    MERGE(postpone_output, 1460);
    if (c->output_bufs_num == PV_UNSET) {
        c->output_bufs_num = p ? p->output_bufs_num : 2;
        c->output_bufs_size = p ? p->output_bufs_size : 32768;
    }
    MERGE(tcp_nopush, 0);
    MERGE(directio, 0);
    MERGE(aio, PV_AIO_THREADS);
    MERGE(autoindex, 0);
    MERGE(autoindex_format, PV_AUTOINDEX_HTML);
    MERGE(autoindex_exact_size, 1);
    MERGE(autoindex_localtime, 0);
    MERGE(log_not_found, 1);
    if (c->disable_symlinks == PV_UNSET) {
        c->disable_symlinks = p ? p->disable_symlinks : PV_SYMLINKS_OFF;
        if (p) {
            c->symlinks_from = p->symlinks_from;
            c->has_symlinks_from = p->has_symlinks_from;
        }
    }
    MERGE(types_hash_max_size, 1024);
    MERGE(types_hash_bucket_size, 64);
    if (c->open_file_cache == PV_UNSET) {
        c->open_file_cache = p ? p->open_file_cache : 0;
        c->open_file_cache_id = p ? p->open_file_cache_id : 0;
        c->open_file_cache_inactive = p ? p->open_file_cache_inactive : 60000;
    }
    MERGE(open_file_cache_valid, 60000);
    MERGE(open_file_cache_min_uses, 1);
    MERGE(open_file_cache_errors, 0);
}
