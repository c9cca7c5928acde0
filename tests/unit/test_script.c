/* The rewrite module's pieces without a server: how set, if, rewrite and
 * return compile, what pv_script_run() does to a request (URI, args,
 * variables, captures, answers), $1..$9 in compiled values, and map
 * lookups. Expected values were checked against nginx 1.22.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/conf.h"
#include "http/map.h"
#include "http/script.h"
#include "http/uvars.h"
#include "http/vars.h"

#define HTTP_SRV(body)                                                                             \
    "http {\n"                                                                                     \
    " map $arg_k $m { default d; abc exact; ~^re(?<n>\\d+)$ \"re$n$1\"; }\n"                       \
    " map $arg_h $hn { hostnames; *.a.test head; www.a.* tail; a.test exact; }\n"                  \
    " server {\n  listen 127.0.0.1:8080;\n" body "\n }\n}\n"

static pv_conf_t *load(const char *text)
{
    char err[512];
    pv_conf_t *c = pv_conf_load_text("/t/t.conf", text, strlen(text), PV_CONF_F_NO_DNS, err,
                                     sizeof(err));
    if (!c)
        fail_msg("load: %s", err);
    return c;
}

static char *load_err(const char *text)
{
    static char err[512];
    pv_conf_t *c = pv_conf_load_text("/t/t.conf", text, strlen(text), PV_CONF_F_NO_DNS, err,
                                     sizeof(err));
    if (c) {
        pv_conf_unref(c);
        return NULL;
    }
    return err;
}

/* A request for target on c's first server, as the server side makes it. */
typedef struct {
    pv_arena_t arena;
    pv_request_t r;
} req_t;

static void req_init(req_t *q, pv_conf_t *c, const char *path, const char *args)
{
    memset(q, 0, sizeof(*q));
    pv_arena_init(&q->arena, 1024);
    q->r.arena = &q->arena;
    q->r.conf = c;
    q->r.srv = c->http->servers[0];
    q->r.uri = (pv_str_t){path, strlen(path)};
    q->r.args = (pv_str_t){args, strlen(args)};
    q->r.has_args = args[0] != '\0';
    char *ru = pv_arena_printf(&q->arena, "%s%s%s", path, args[0] ? "?" : "", args);
    q->r.request_uri = (pv_str_t){ru, strlen(ru)};
    q->r.host = (pv_str_t){"h.test", 6};
    strcpy(q->r.peer_text, "127.0.0.1");
}

/* The value of "$name..." for q, as a C string in the request arena. */
static const char *val(req_t *q, const char *src)
{
    pv_cv_t cv;
    char err[128];
    /* the loaded config's user variables, in their slots again */
    const pv_http_conf_t *h = q->r.conf->http;
    pv_cv_declared_reset();
    for (int i = 0; i < h->nuvars; i++)
        assert_int_equal(pv_cv_declare_user(h->uvar_names[i], strlen(h->uvar_names[i])), i);
    int rc = pv_cv_compile(&cv, &q->arena, src, strlen(src), err, sizeof(err));
    pv_cv_declared_reset();
    if (rc != PV_OK)
        fail_msg("compile %s: %s", src, err);
    return pv_cv_eval_arena(&cv, &q->r).p;
}

static int run_srv(req_t *q, pv_script_out_t *out)
{
    const pv_server_t *s = q->r.srv;
    return pv_script_run(&q->r, &s->rw, &s->conf, out);
}

static void test_compile(void **state)
{
    pv_conf_t *c = load(HTTP_SRV("  set $a 1;\n  if ($a) { set $b 2; return 204; }\n"
                                 "  rewrite ^/x(.*) /y$1? permanent;\n  break;\n"
                                 "  location /l { if ($a = 1) { proxy_pass http://127.0.0.1:9; } }"));
    const pv_server_t *s = c->http->servers[0];
    assert_int_equal(s->rw.nops, 6);
    assert_int_equal(s->rw.ops[0].op, PV_RW_SET);
    assert_int_equal(s->rw.ops[1].op, PV_RW_IF);
    assert_int_equal(s->rw.ops[1].next, 4);    /* past the block's set and return */
    assert_null(s->rw.ops[1].ifloc);           /* a server's if has no configuration */
    assert_int_equal(s->rw.ops[4].op, PV_RW_REWRITE);
    assert_int_equal(s->rw.ops[4].code, 301);
    assert_int_equal(s->rw.ops[4].add_args, 0);
    assert_int_equal(s->rw.ops[5].op, PV_RW_BREAK);
    const pv_location_t *l = s->locations[0];
    assert_int_equal(l->rw.nops, 1);
    assert_non_null(l->rw.ops[0].ifloc);
    assert_ptr_equal(l->rw.ops[0].ifloc->parent, l);
    assert_non_null(l->rw.ops[0].ifloc->proxy_pass);
    assert_null(l->proxy_pass);
    pv_conf_unref(c);
}

static void test_captures_compile_one_digit(void **state)
{
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_cv_t cv;
    char err[128];
    assert_int_equal(pv_cv_compile(&cv, &a, "$1x$10", 6, err, sizeof(err)), PV_OK);
    assert_int_equal(cv.nparts, 4);
    assert_ptr_equal(cv.parts[0].var, &pv_var_capture);
    assert_int_equal(cv.parts[0].index, 1);
    assert_string_equal(cv.parts[1].text.p, "x");
    assert_int_equal(cv.parts[2].index, 1);
    assert_string_equal(cv.parts[3].text.p, "0");
    pv_arena_free(&a);
}

static void test_rewrite_args(void **state)
{
    pv_conf_t *c = load(HTTP_SRV("  rewrite ^/a/(.*)$ /b/$1?x=$1;\n  rewrite ^/b/(.*)$ /c/$1;"));
    req_t q;
    pv_script_out_t out;
    req_init(&q, c, "/a/z", "o=1");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_NEXT);
    assert_string_equal(q.r.uri.p, "/c/z");
    assert_memory_equal(q.r.args.p, "x=z&o=1", 7);
    assert_int_equal(q.r.args.len, 7);
    assert_true(q.r.flags & PV_REQ_F_REWRITTEN);
    assert_int_equal(q.r.uri_changed, 1);
    assert_string_equal(val(&q, "[$1]"), "[z]");
    pv_arena_free(&q.arena);
    pv_conf_unref(c);
}

static void test_rewrite_redirect_and_return(void **state)
{
    pv_conf_t *c = load(HTTP_SRV("  rewrite ^/r/(.*)$ http://e.test/%41$1 redirect;\n"
                                 "  if ($arg_t) { return 403 \"no $arg_t\"; }\n  return 404;"));
    req_t q;
    pv_script_out_t out;
    req_init(&q, c, "/r/a b", "p=1");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_ANSWER);
    assert_int_equal(out.code, 302);
    assert_string_equal(out.url, "http://e.test/Aa b?p=1");  /* %41 decoded, args appended */
    pv_arena_free(&q.arena);
    req_init(&q, c, "/x", "t=9");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_ANSWER);
    assert_int_equal(out.code, 403);
    assert_memory_equal(out.body.p, "no 9", 4);
    pv_arena_free(&q.arena);
    req_init(&q, c, "/x", "");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_ANSWER);
    assert_int_equal(out.code, 404);
    assert_int_equal(out.has_text, 0);
    pv_arena_free(&q.arena);
    pv_conf_unref(c);
}

static void test_set_if_break(void **state)
{
    pv_conf_t *c = load(HTTP_SRV("  set $v \"<$arg_a>\";\n  if ($arg_a ~ ^(?<d>\\d)(\\d)$) { set $w \"$d$2\"; }\n"
                                 "  if ($arg_a !~ ^\\d) { set $w nodigit; }\n"
                                 "  rewrite ^ /new break;\n  set $after 1;"));
    req_t q;
    pv_script_out_t out;
    req_init(&q, c, "/", "a=42");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_NEXT);
    assert_string_equal(val(&q, "$v|$w|$d|$after"), "<42>|42|4|");
    assert_true(q.r.flags & PV_REQ_F_LOC_INVALID);
    assert_int_equal(q.r.uri_changed, 0);
    /* a regex without groups leaves the last captures alone */
    assert_string_equal(val(&q, "[$1]"), "[4]");
    pv_arena_free(&q.arena);
    req_init(&q, c, "/", "a=x");
    q.r.captures = (size_t[]){0, 1, 0, 1};
    q.r.ncaptures = 4;
    q.r.captures_data = "c";
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_NEXT);
    assert_string_equal(val(&q, "$w"), "nodigit");
    /* a failed match clears them */
    assert_string_equal(val(&q, "[$1]"), "[]");
    pv_arena_free(&q.arena);
    pv_conf_unref(c);
}

/* A volatile map whose regex moves the captures while a replacement is
 * made: the second pass sees other values; nothing is written past what
 * the first pass measured. */
static void test_replacement_bounded(void **state)
{
    pv_conf_t *c = load("http {\n map $arg_x $vm { volatile; ~^(.+)$ \"$1\"; }\n"
                        " server {\n  listen 127.0.0.1:8080;\n  rewrite ^/(a) /$1-$vm-$1;\n }\n}\n");
    req_t q;
    pv_script_out_t out;
    req_init(&q, c, "/a", "x=longer-than-a");
    assert_int_equal(run_srv(&q, &out), PV_SCRIPT_NEXT);
    /* first pass: "/a-longer-than-a-longer-than-a" (31 bytes) */
    assert_true(q.r.uri.len <= 31);
    assert_memory_equal(q.r.uri.p, "/longer-than-a", 14);
    pv_arena_free(&q.arena);
    pv_conf_unref(c);
}

static void test_map_lookup(void **state)
{
    pv_conf_t *c = load(HTTP_SRV("  return 200;"));
    req_t q;
    static const struct {
        const char *args, *expr, *want;
    } cases[] = {
        {"k=ABC", "$m", "exact"},      {"k=zz", "$m", "d"},         {"k=re42", "$m|$n", "re4242|42"},
        {"", "$m", "d"},               {"h=x.a.test", "$hn", "head"}, {"h=www.a.org", "$hn", "tail"},
        {"h=a.test.", "$hn", "exact"}, {"h=b.test", "[$hn]", "[]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_init(&q, c, "/", cases[i].args);
        assert_string_equal(val(&q, cases[i].expr), cases[i].want);
        pv_arena_free(&q.arena);
    }
    pv_conf_unref(c);
}

static void test_errors(void **state)
{
    assert_non_null(strstr(load_err(HTTP_SRV("  rewrite ^/ /x last2;")), "invalid parameter \"last2\""));
    assert_non_null(strstr(load_err(HTTP_SRV("  if ($a) { }")), "unknown \"a\" variable"));
    assert_non_null(strstr(load_err(HTTP_SRV("  if ($host == x) { }")), "unexpected \"==\" in condition"));
    assert_non_null(strstr(load_err(HTTP_SRV("  if (-q /x) { }")), "invalid condition \"-q\""));
    assert_non_null(strstr(load_err(HTTP_SRV("  set $host x;")), "the duplicate \"host\" variable"));
    assert_non_null(strstr(load_err("http {\n map $host $x { a; }\n}\n"),
                           "invalid number of the map parameters in /t/t.conf:2"));
    /* names used before the directive that makes them are known */
    assert_null(load_err(HTTP_SRV("  return 200 $later;\n  set $later 1;")));
}

static int setup(void **state)
{
    pv_http_vars_init();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_captures_compile_one_digit),
        cmocka_unit_test(test_rewrite_args),
        cmocka_unit_test(test_rewrite_redirect_and_return),
        cmocka_unit_test(test_set_if_break),
        cmocka_unit_test(test_replacement_bounded),
        cmocka_unit_test(test_map_lookup),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("script", tests, setup, NULL);
}
