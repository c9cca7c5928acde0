/* Config tokenizer: words, quotes, escapes, comments, errors and lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config/lexer.h"

typedef struct {
    pv_arena_t arena;
    pv_lexer_t lx;
    char err[256];
} fixture_t;

static fixture_t fx;

static void start(const char *text)
{
    pv_arena_init(&fx.arena, 0);
    fx.err[0] = '\0';
    pv_lex_init(&fx.lx, "t.conf", text, strlen(text), &fx.arena, fx.err, sizeof(fx.err));
}

static void stop(void)
{
    pv_arena_free(&fx.arena);
}

/* Expect a word token with this text on this line. */
static void word(const char *text, int line)
{
    pv_token_t t;
    assert_int_equal(pv_lex_next(&fx.lx, &t), PV_TOK_WORD);
    assert_int_equal(t.text.len, strlen(text));
    assert_memory_equal(t.text.p, text, t.text.len);
    assert_int_equal(t.text.p[t.text.len], '\0');
    assert_int_equal(t.line, line);
}

static void punct(int kind, int line)
{
    pv_token_t t;
    assert_int_equal(pv_lex_next(&fx.lx, &t), kind);
    assert_int_equal(t.line, line);
}

static void error(const char *msg)
{
    pv_token_t t;
    assert_int_equal(pv_lex_next(&fx.lx, &t), PV_TOK_ERR);
    assert_string_equal(fx.err, msg);
}

static void test_directives_and_blocks(void **state)
{
    start("worker_processes 4;\nhttp {\n  server{listen 80;}\n}\n");
    word("worker_processes", 1);
    word("4", 1);
    punct(PV_TOK_SEMI, 1);
    word("http", 2);
    punct(PV_TOK_LBRACE, 2);
    word("server", 3);
    punct(PV_TOK_LBRACE, 3);
    word("listen", 3);
    word("80", 3);
    punct(PV_TOK_SEMI, 3);
    punct(PV_TOK_RBRACE, 3);
    punct(PV_TOK_RBRACE, 4);
    punct(PV_TOK_EOF, 5);
    punct(PV_TOK_EOF, 5);
    stop();
}

static void test_comments(void **state)
{
    start("# head\n\nfoo bar; # tail { } ;\n  #x\nbaz#not-a-comment;");
    word("foo", 3);
    word("bar", 3);
    punct(PV_TOK_SEMI, 3);
    word("baz#not-a-comment", 5);
    punct(PV_TOK_SEMI, 5);
    punct(PV_TOK_EOF, 5);
    stop();
}

static void test_quotes_and_escapes(void **state)
{
    start("a \"b c\" 'd e' \"q\\\"q\" 'it\\'s' \"\\\\\" \"t\\tr\\rn\\n\" \"\\x\\$\";");
    word("a", 1);
    word("b c", 1);
    word("d e", 1);
    word("q\"q", 1);
    word("it's", 1);
    word("\\", 1);
    word("t\tr\rn\n", 1);
    word("\\x\\$", 1);
    punct(PV_TOK_SEMI, 1);
    stop();
}

static void test_quoted_specials(void **state)
{
    /* Braces, semicolons and '#' are plain inside quotes; an empty
     * string is a word; a quote may run across lines. */
    start("x \"{;}#\" \"\" 'multi\nline' y;");
    word("x", 1);
    word("{;}#", 1);
    word("", 1);
    word("multi\nline", 1);
    word("y", 2);
    punct(PV_TOK_SEMI, 2);
    stop();
}

static void test_unquoted_rules(void **state)
{
    /* '}' does not end a word; "${" stays inside it but "$a{" opens a
     * block; escaped whitespace and ';' stay in the word. */
    start("a} ${host}x $a{ b\\ c d\\;e \\\"f;");
    word("a}", 1);
    word("${host}x", 1);
    word("$a", 1);
    punct(PV_TOK_LBRACE, 1);
    word("b\\ c", 1);
    word("d\\;e", 1);
    word("\"f", 1);
    punct(PV_TOK_SEMI, 1);
    stop();
}

static void test_word_ends_at_brace_and_semicolon(void **state)
{
    start("server{x;y}");
    word("server", 1);
    punct(PV_TOK_LBRACE, 1);
    word("x", 1);
    punct(PV_TOK_SEMI, 1);
    word("y}", 1);
    punct(PV_TOK_EOF, 1);
    stop();
}

static void test_after_quote(void **state)
{
    start("\"a\";\"b\"{\"c\")d");
    word("a", 1);
    punct(PV_TOK_SEMI, 1);
    word("b", 1);
    punct(PV_TOK_LBRACE, 1);
    word("c", 1);
    word(")d", 1); /* NGINX: a ')' after a quote starts the next word */
    stop();
}

static void test_unterminated_quote(void **state)
{
    start("a \"abc\n\ndef");
    word("a", 1);
    error("unexpected end of file, expecting \";\" or \"}\" in t.conf:3");
    stop();
    start("'x");
    error("unexpected end of file, expecting \";\" or \"}\" in t.conf:1");
    stop();
}

static void test_junk_after_quote(void **state)
{
    start("x\n\"a\"b;");
    word("x", 1);
    error("unexpected \"b\" in t.conf:2");
    stop();
    start("'a'}");
    error("unexpected \"}\" in t.conf:1");
    stop();
}

/* A NUL byte cannot be part of a word: names are C strings downstream. */
static void test_nul_byte(void **state)
{
    static const char text[] = "a b\0c;\n'x\0'";
    pv_arena_init(&fx.arena, 0);
    pv_lex_init(&fx.lx, "t.conf", text, sizeof(text) - 1, &fx.arena, fx.err, sizeof(fx.err));
    word("a", 1);
    error("unexpected NUL byte in t.conf:1");
    stop();
    pv_arena_init(&fx.arena, 0);
    pv_lex_init(&fx.lx, "t.conf", text + 7, sizeof(text) - 8, &fx.arena, fx.err, sizeof(fx.err));
    error("unexpected NUL byte in t.conf:1");
    stop();
    static const char comment[] = "# a comment may hold \0\nz";
    pv_arena_init(&fx.arena, 0);
    pv_lex_init(&fx.lx, "t.conf", comment, sizeof(comment) - 1, &fx.arena, fx.err, sizeof(fx.err));
    word("z", 2);
    stop();
}

static void test_crlf_lines(void **state)
{
    start("a;\r\nb;\r\n\tc;");
    word("a", 1);
    punct(PV_TOK_SEMI, 1);
    word("b", 2);
    punct(PV_TOK_SEMI, 2);
    word("c", 3);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directives_and_blocks),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_quotes_and_escapes),
        cmocka_unit_test(test_quoted_specials),
        cmocka_unit_test(test_unquoted_rules),
        cmocka_unit_test(test_word_ends_at_brace_and_semicolon),
        cmocka_unit_test(test_after_quote),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_junk_after_quote),
        cmocka_unit_test(test_crlf_lines),
    };
    return cmocka_run_group_tests_name("conf_lexer", tests, NULL, NULL);
}
