/* Tokenizer for NGINX's configuration language.
 * Words follow ngx_conf_file.c: unquoted words end at whitespace, ';' or
 * '{' (but "${" stays inside a word), '}' and '#' inside a word are plain
 * characters, quoted words accept \" \' \\ \t \r \n and keep any other
 * backslash pair as written. */
#ifndef PV_CONF_LEXER_H
#define PV_CONF_LEXER_H

#include <stddef.h>
#include "../core/common.h"
#include "../core/arena.h"

/* token kinds */
enum {
    PV_TOK_WORD = 0, /* a (possibly quoted) word */
    PV_TOK_SEMI,     /* ';' */
    PV_TOK_LBRACE,   /* '{' */
    PV_TOK_RBRACE,   /* '}' */
    PV_TOK_EOF,      /* end of the text */
    PV_TOK_ERR       /* a lexical error; the message is in err */
};

typedef struct pv_token_s {
    int kind;      /* PV_TOK_* */
    pv_str_t text; /* unescaped word (arena, NUL-terminated); empty for punctuation */
    int quoted;    /* the word was written in quotes */
    int line;      /* line the token starts on */
} pv_token_t;

typedef struct pv_lexer_s {
    const char *p;     /* next unread byte */
    const char *end;   /* end of the text */
    const char *file;  /* name used in messages */
    int line;          /* current line, 1-based */
    pv_arena_t *arena; /* word copies go here */
    char *err;         /* message buffer for PV_TOK_ERR */
    size_t errlen;
} pv_lexer_t;

/* Start tokenizing text[0..len) that came from file. */
void pv_lex_init(pv_lexer_t *lx, const char *file, const char *text, size_t len,
                 pv_arena_t *arena, char *err, size_t errlen);
/* Read the next token; returns its kind (also stored in tok->kind). */
int pv_lex_next(pv_lexer_t *lx, pv_token_t *tok);

#endif
