/* Generic parse: text -> tree of directives, with `include` expanded in
 * place so later passes never see it. Meaning is given by directives.c. */
#include "conf_int.h"
#include "lexer.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/file.h"

/* Bounds that keep a looping include or a device file from running away. */
#define PV_CONF_MAX_DEPTH 32
#define PV_CONF_MAX_FILE (64u << 20)

static int parse_error(pv_parser_t *ps, const char *file, int line, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    snprintf(ps->err, ps->errlen, "%s in %s:%d", msg, file, line);
    return PV_ERR;
}

/* Read a whole file into the temporary arena. from is the include line,
 * or NULL for the main file (whose errors have no location). */
static int read_file(pv_parser_t *ps, const char *path, const pv_conf_src_t *from, char **text,
                     size_t *len)
{
    size_t n;
    char *buf = pv_file_read(path, PV_CONF_MAX_FILE, &n, ps->err, ps->errlen);
    if (!buf) {
        size_t l = strlen(ps->err);
        if (from && l < ps->errlen)
            snprintf(ps->err + l, ps->errlen - l, " in %s:%d", from->file, from->line);
        return PV_ERR;
    }
    *text = pv_arena_alloc(ps->tmp, n ? n : 1);
    memcpy(*text, buf, n);
    free(buf);
    *len = n;
    return PV_OK;
}

static int parse_list(pv_parser_t *ps, pv_lexer_t *lx, int in_block, pv_conf_node_t ***tail);

static int parse_path(pv_parser_t *ps, const char *path, const pv_conf_src_t *from,
                      pv_conf_node_t ***tail)
{
    char *text;
    size_t len;
    if (read_file(ps, path, from, &text, &len) != PV_OK)
        return PV_ERR;
    if (ps->on_file)
        ps->on_file(ps->on_file_arg, path, text, len);
    pv_lexer_t lx;
    pv_lex_init(&lx, pv_arena_strdup(ps->keep, path), text, len, ps->tmp, ps->err, ps->errlen);
    return parse_list(ps, &lx, 0, tail);
}

/* `include PATTERN;`: a plain path must exist; a glob may match nothing
 * (NGINX's rule), and matches are read in sorted order. */
static int do_include(pv_parser_t *ps, const pv_conf_node_t *nd, pv_conf_node_t ***tail)
{
    const pv_conf_src_t *src = &nd->src;
    if (nd->block)
        return parse_error(ps, src->file, src->line, "directive \"%s\" is not terminated by \";\"",
                           "include");
    if (nd->nargs != 2)
        return parse_error(ps, src->file, src->line,
                           "invalid number of arguments in \"%s\" directive", "include");
    if (ps->flags & PV_CONF_F_NO_INCLUDE)
        return parse_error(ps, src->file, src->line, "\"%s\" directive is not allowed here",
                           "include");
    if (ps->depth >= PV_CONF_MAX_DEPTH)
        return parse_error(ps, src->file, src->line, "too many nested includes at \"%s\"",
                           nd->args[1].p);
    const char *pat = nd->args[1].p;
    char *full = pat[0] == '/' ? pv_arena_strdup(ps->tmp, pat)
                               : pv_arena_printf(ps->tmp, "%s/%s", ps->prefix, pat);
    int rc = PV_OK;
    ps->depth++;
    if (!strpbrk(full, "*?[")) {
        rc = parse_path(ps, full, src, tail);
    } else {
        glob_t gl;
        int g = glob(full, 0, NULL, &gl);
        if (g != 0 && g != GLOB_NOMATCH) {
            rc = parse_error(ps, src->file, src->line, "glob() \"%s\" failed", full);
        } else if (g == 0) {
            for (size_t i = 0; i < gl.gl_pathc && rc == PV_OK; i++)
                rc = parse_path(ps, gl.gl_pathv[i], src, tail);
        }
        if (g == 0 || g == GLOB_NOMATCH)
            globfree(&gl);
    }
    ps->depth--;
    return rc;
}

/* Read directives until '}' (in_block) or the end of the text, appending
 * nodes at *tail. A file must close every block it opens. */
static int parse_list(pv_parser_t *ps, pv_lexer_t *lx, int in_block, pv_conf_node_t ***tail)
{
    pv_str_t *args = NULL;
    int nargs = 0, line = 0;
    for (;;) {
        pv_token_t tok;
        switch (pv_lex_next(lx, &tok)) {
        case PV_TOK_ERR:
            return PV_ERR;
        case PV_TOK_WORD:
            if (nargs == 0)
                line = tok.line;
            *(pv_str_t *)pv_conf_push(ps->tmp, &args, &nargs, sizeof(pv_str_t)) = tok.text;
            continue;
        case PV_TOK_EOF:
            if (nargs > 0)
                return parse_error(ps, lx->file, lx->line, "%s",
                                   "unexpected end of file, expecting \";\" or \"}\"");
            if (in_block)
                return parse_error(ps, lx->file, lx->line, "%s",
                                   "unexpected end of file, expecting \"}\"");
            return PV_OK;
        case PV_TOK_RBRACE:
            if (nargs > 0 || !in_block)
                return parse_error(ps, lx->file, lx->line, "%s", "unexpected \"}\"");
            return PV_OK;
        case PV_TOK_SEMI:
        case PV_TOK_LBRACE:
            if (nargs == 0 || !args)
                return parse_error(ps, lx->file, lx->line, "unexpected \"%s\"",
                                   tok.kind == PV_TOK_SEMI ? ";" : "{");
            break;
        }
        pv_conf_node_t *nd = pv_arena_calloc(ps->tmp, sizeof(*nd));
        nd->args = args;
        nd->nargs = nargs;
        nd->block = tok.kind == PV_TOK_LBRACE;
        nd->src.file = lx->file;
        nd->src.line = line;
        args = NULL;
        nargs = 0;
        /* args came from pv_conf_push, which never returns NULL (it aborts) */
        if (pv_str_eq(nd->args[0], "include", 7)) { // NOLINT(clang-analyzer-core.NullDereference)
            if (do_include(ps, nd, tail) != PV_OK)
                return PV_ERR;
            continue;
        }
        **tail = nd;
        *tail = &nd->next;
        if (nd->block) {
            pv_conf_node_t **ctail = &nd->child;
            if (parse_list(ps, lx, 1, &ctail) != PV_OK)
                return PV_ERR;
        }
    }
}

int pv_conf_parse_text(pv_parser_t *ps, const char *file, const char *text, size_t len,
                       pv_conf_node_t **first)
{
    pv_lexer_t lx;
    pv_conf_node_t **tail = first;
    *first = NULL;
    pv_lex_init(&lx, pv_arena_strdup(ps->keep, file), text, len, ps->tmp, ps->err, ps->errlen);
    return parse_list(ps, &lx, 0, &tail);
}

int pv_conf_parse_file(pv_parser_t *ps, const char *path, pv_conf_node_t **first)
{
    pv_conf_node_t **tail = first;
    *first = NULL;
    return parse_path(ps, path, NULL, &tail);
}
