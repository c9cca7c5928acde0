/* Config tokenizer; see lexer.h for the rules it reproduces. */
#include "lexer.h"

#include <stdio.h>

void pv_lex_init(pv_lexer_t *lx, const char *file, const char *text, size_t len,
                 pv_arena_t *arena, char *err, size_t errlen)
{
    lx->p = text;
    lx->end = text + len;
    lx->file = file;
    lx->line = 1;
    lx->arena = arena;
    lx->err = err;
    lx->errlen = errlen;
}

static int is_space(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int lex_error(pv_lexer_t *lx, pv_token_t *tok, const char *msg)
{
    snprintf(lx->err, lx->errlen, "%s in %s:%d", msg, lx->file, lx->line);
    tok->kind = PV_TOK_ERR;
    return PV_TOK_ERR;
}

static int lex_unexpected(pv_lexer_t *lx, pv_token_t *tok, char ch)
{
    char msg[16];
    snprintf(msg, sizeof(msg), "unexpected \"%c\"", ch);
    return lex_error(lx, tok, msg);
}

/* Copy raw word bytes into the arena, undoing the escapes NGINX undoes. */
static pv_str_t unescape(pv_arena_t *a, const char *s, const char *e)
{
    char *out = pv_arena_alloc(a, (size_t)(e - s) + 1), *d = out;
    while (s < e) {
        if (*s == '\\' && s + 1 < e) {
            switch (s[1]) {
            case '"':
            case '\'':
            case '\\':
                s++;
                break;
            case 't':
                *d++ = '\t';
                s += 2;
                continue;
            case 'r':
                *d++ = '\r';
                s += 2;
                continue;
            case 'n':
                *d++ = '\n';
                s += 2;
                continue;
            default:
                break;
            }
        }
        *d++ = *s++;
    }
    *d = '\0';
    return (pv_str_t){out, (size_t)(d - out)};
}

/* A quoted word: ends at the matching quote, which must be followed by
 * whitespace, ';', '{', ')' or the end of the text. A ')' starts the next
 * word, as in NGINX (`if ($a = "x")` ends with the word ")"). */
static int lex_quoted(pv_lexer_t *lx, pv_token_t *tok)
{
    char q = *lx->p++;
    const char *start = lx->p;
    int esc = 0;
    for (;;) {
        if (lx->p >= lx->end)
            return lex_error(lx, tok, "unexpected end of file, expecting \";\" or \"}\"");
        char ch = *lx->p;
        if (ch == '\0')
            return lex_error(lx, tok, "unexpected NUL byte");
        if (ch == '\n')
            lx->line++;
        if (esc) {
            esc = 0;
        } else if (ch == '\\') {
            esc = 1;
        } else if (ch == q) {
            break;
        }
        lx->p++;
    }
    const char *stop = lx->p++;
    if (lx->p < lx->end) {
        char ch = *lx->p;
        if (!is_space(ch) && ch != ';' && ch != '{' && ch != ')')
            return lex_unexpected(lx, tok, ch);
    }
    tok->text = unescape(lx->arena, start, stop);
    tok->quoted = 1;
    tok->kind = PV_TOK_WORD;
    return PV_TOK_WORD;
}

/* An unquoted word: ends at whitespace, ';' or '{' unless escaped, and a
 * '{' right after '$' belongs to the word ("${name}"). */
static int lex_word(pv_lexer_t *lx, pv_token_t *tok)
{
    const char *start = lx->p;
    int esc = 0, variable = 0;
    while (lx->p < lx->end) {
        char ch = *lx->p;
        if (ch == '\0')
            return lex_error(lx, tok, "unexpected NUL byte");
        if (esc) {
            esc = 0;
            if (ch == '\n')
                lx->line++;
            lx->p++;
            continue;
        }
        if (ch == '{' && variable) {
            lx->p++;
            continue;
        }
        variable = 0;
        if (ch == '\\') {
            esc = 1;
        } else if (ch == '$') {
            variable = 1;
        } else if (is_space(ch) || ch == ';' || ch == '{') {
            break;
        }
        lx->p++;
    }
    tok->text = unescape(lx->arena, start, lx->p);
    tok->kind = PV_TOK_WORD;
    return PV_TOK_WORD;
}

int pv_lex_next(pv_lexer_t *lx, pv_token_t *tok)
{
    tok->text = (pv_str_t){"", 0};
    tok->quoted = 0;
    for (;;) {
        if (lx->p >= lx->end) {
            tok->line = lx->line;
            tok->kind = PV_TOK_EOF;
            return PV_TOK_EOF;
        }
        char ch = *lx->p;
        if (ch == '\n') {
            lx->line++;
            lx->p++;
        } else if (is_space(ch)) {
            lx->p++;
        } else if (ch == '#') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else {
            break;
        }
    }
    tok->line = lx->line;
    switch (*lx->p) {
    case ';':
        lx->p++;
        tok->kind = PV_TOK_SEMI;
        return PV_TOK_SEMI;
    case '{':
        lx->p++;
        tok->kind = PV_TOK_LBRACE;
        return PV_TOK_LBRACE;
    case '}':
        lx->p++;
        tok->kind = PV_TOK_RBRACE;
        return PV_TOK_RBRACE;
    case '"':
    case '\'':
        return lex_quoted(lx, tok);
    default:
        return lex_word(lx, tok);
    }
}
