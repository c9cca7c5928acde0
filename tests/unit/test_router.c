/* server_name and location selection against NGINX's precedence rules,
 * on hand-built config structs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/conf.h"
#include "http/router.h"

static pv_arena_t arena;

static void *compile(const char *re, int caseless)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, caseless ? PCRE2_CASELESS : 0, &err,
                                  &off, NULL);
    assert_non_null(c);
    return c;
}

static pv_location_t *loc(int match, const char *name, int proxied)
{
    pv_location_t *l = pv_arena_calloc(&arena, sizeof(*l));
    l->match = match;
    l->name = (pv_str_t){name, strlen(name)};
    if (match == PV_LOC_REGEX || match == PV_LOC_REGEX_ICASE)
        l->re = compile(name, match == PV_LOC_REGEX_ICASE);
    /* as the loader sets it: a prefix ending in '/' with proxy_pass */
    l->auto_redirect = proxied && match != PV_LOC_REGEX && match != PV_LOC_REGEX_ICASE &&
                       name[strlen(name) - 1] == '/';
    return l;
}

static pv_server_t *server(pv_location_t **locs, int n)
{
    pv_server_t *s = pv_arena_calloc(&arena, sizeof(*s));
    s->locations = pv_arena_alloc(&arena, sizeof(*locs) * (size_t)(n ? n : 1));
    memcpy(s->locations, locs, sizeof(*locs) * (size_t)n);
    s->nlocations = n;
    return s;
}

static void free_regexes(pv_server_t *s)
{
    for (int i = 0; i < s->nlocations; i++)
        pcre2_code_free(s->locations[i]->re);
}

static const char *find(pv_server_t *s, const char *uri, int *redirect)
{
    pv_location_t *l = pv_router_find_location(s, (pv_str_t){uri, strlen(uri)}, redirect);
    return l ? l->name.p : NULL;
}

static void expect(pv_server_t *s, const char *uri, const char *want, int want_redirect)
{
    int rd = -1;
    const char *got = find(s, uri, &rd);
    if (!want) {
        if (got)
            fail_msg("%s: got %s, want none", uri, got);
        return;
    }
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: got %s, want %s", uri, got ? got : "(none)", want);
    assert_int_equal(rd, want_redirect);
}

static int setup(void **state)
{
    (void)state;
    pv_arena_init(&arena, 8192);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pv_arena_free(&arena);
    pv_router_thread_cleanup();
    return 0;
}

/* The seed config: location /api/auth/ { proxy_pass http://auth_service/; } */
static void test_seed_auto_redirect(void **state)
{
    (void)state;
    pv_location_t *l[] = {loc(PV_LOC_PREFIX, "/api/auth/", 1)};
    pv_server_t *s = server(l, 1);
    expect(s, "/api/auth", "/api/auth/", 1);
    expect(s, "/api/auth/", "/api/auth/", 0);
    expect(s, "/api/auth/login", "/api/auth/", 0);
    expect(s, "/api/aut", NULL, 0);
    expect(s, "/api/authx", NULL, 0);
    expect(s, "/", NULL, 0);
}

static void test_auto_redirect_precedence(void **state)
{
    (void)state;
    /* a regex matching the slashless URI is not tried: NGINX decides the
     * redirect in the static step (confirmed against nginx 1.22.1) */
    pv_location_t *a[] = {loc(PV_LOC_PREFIX, "/", 0), loc(PV_LOC_PREFIX, "/api/auth/", 1),
                          loc(PV_LOC_REGEX, "^/api/auth$", 0)};
    pv_server_t *s = server(a, 3);
    expect(s, "/api/auth", "/api/auth/", 1);
    expect(s, "/api/other", "/", 0);
    free_regexes(s);

    /* an exact location for the slashless name wins */
    pv_location_t *b[] = {loc(PV_LOC_PREFIX, "/api/auth/", 1), loc(PV_LOC_EXACT, "/api/auth", 0)};
    s = server(b, 2);
    expect(s, "/api/auth", "/api/auth", 0);

    /* so does a prefix location of exactly that name */
    pv_location_t *c[] = {loc(PV_LOC_PREFIX, "/api/auth/", 1), loc(PV_LOC_PREFIX, "/api/auth", 0)};
    s = server(c, 2);
    expect(s, "/api/auth", "/api/auth", 0);
    expect(s, "/api/auth/x", "/api/auth/", 0);

    /* without proxy_pass there is no redirect */
    pv_location_t *d[] = {loc(PV_LOC_PREFIX, "/", 0), loc(PV_LOC_PREFIX, "/api/auth/", 0)};
    s = server(d, 2);
    expect(s, "/api/auth", "/", 0);

    /* exact and prefix of one name share a node: the exact one serves the redirect */
    pv_location_t *e[] = {loc(PV_LOC_PREFIX, "/x/", 1), loc(PV_LOC_EXACT, "/x/", 0)};
    s = server(e, 2);
    expect(s, "/x", "/x/", 1);
    int rd;
    pv_location_t *got = pv_router_find_location(s, PV_STR("/x"), &rd);
    assert_int_equal(got->match, PV_LOC_EXACT);
}

static void test_location_precedence(void **state)
{
    (void)state;
    pv_location_t *l[] = {
        loc(PV_LOC_PREFIX, "/", 0),
        loc(PV_LOC_EXACT, "/exact", 0),
        loc(PV_LOC_PREFIX, "/exact", 0),
        loc(PV_LOC_PREFIX_STOP, "/static/", 0),
        loc(PV_LOC_PREFIX, "/images/", 0),
        loc(PV_LOC_REGEX, "\\.(gif|jpg)$", 0),
        loc(PV_LOC_REGEX_ICASE, "\\.PNG$", 0),
        loc(PV_LOC_REGEX, "^/images/x", 0),
        loc(PV_LOC_PREFIX, "/images/deep/", 0),
    };
    pv_server_t *s = server(l, (int)PV_NELEM(l));
    /* exact wins at once, even over a same-name prefix */
    expect(s, "/exact", "/exact", 0);
    expect(s, "/exact/more", "/exact", 0);
    /* ^~ as the longest prefix stops regexes */
    expect(s, "/static/a.gif", "/static/", 0);
    /* plain prefix: regexes in declaration order win */
    expect(s, "/images/a.gif", "\\.(gif|jpg)$", 0);
    expect(s, "/images/x.gif", "\\.(gif|jpg)$", 0);
    expect(s, "/images/xyz", "^/images/x", 0);
    expect(s, "/images/deep/a.txt", "/images/deep/", 0);
    /* ~* is case-insensitive, ~ is not */
    expect(s, "/a/B.png", "\\.PNG$", 0);
    expect(s, "/a/B.GIF", "/", 0);
    /* nothing but the root prefix */
    expect(s, "/other", "/", 0);
    free_regexes(s);
}

static void test_location_no_match(void **state)
{
    (void)state;
    pv_location_t *l[] = {loc(PV_LOC_PREFIX, "/a/", 0), loc(PV_LOC_EXACT, "/b", 0),
                          loc(PV_LOC_REGEX, "^/c", 0)};
    pv_server_t *s = server(l, 3);
    expect(s, "/", NULL, 0);
    expect(s, "/b/", NULL, 0);
    expect(s, "/c1", "^/c", 0);
    expect(s, "/a", NULL, 0);
    int rd = 7;
    assert_null(pv_router_find_location(NULL, PV_STR("/"), &rd));
    assert_int_equal(rd, 0);
    free_regexes(s);
}

/* The longest prefix is chosen whatever the declaration order. */
static void test_longest_prefix(void **state)
{
    (void)state;
    pv_location_t *l[] = {loc(PV_LOC_PREFIX, "/a/b/c", 0), loc(PV_LOC_PREFIX, "/a", 0),
                          loc(PV_LOC_PREFIX_STOP, "/a/b", 0), loc(PV_LOC_REGEX, "c", 0)};
    pv_server_t *s = server(l, 4);
    expect(s, "/a/b/cd", "c", 0);
    expect(s, "/a/bc", "/a/b", 0);
    expect(s, "/a/bx", "/a/b", 0);
    expect(s, "/ax", "/a", 0);
    free_regexes(s);
}

static pv_server_t *named(const char *tag, pv_server_name_t *names, int n)
{
    pv_server_t *s = pv_arena_calloc(&arena, sizeof(*s));
    s->names = pv_arena_alloc(&arena, sizeof(*names) * (size_t)n);
    memcpy(s->names, names, sizeof(*names) * (size_t)n);
    s->nnames = n;
    s->src.file = tag;
    return s;
}

static const char *pick(pv_listen_group_t *g, const char *host)
{
    pv_server_t *s = pv_router_find_server(g, (pv_str_t){host, strlen(host)});
    return s ? s->src.file : NULL;
}

#define SN(kind, name, re) ((pv_server_name_t){(kind), PV_STR(name), (re), NULL})

static void test_server_names(void **state)
{
    (void)state;
    void *re1 = compile("^www\\d+\\.example\\.com$", 0);
    void *re2 = compile("example", 0);
    pv_server_name_t n_def[] = {SN(PV_SN_EXACT, "default.test", NULL)};
    pv_server_name_t n_exact[] = {SN(PV_SN_EXACT, "www.example.com", NULL), SN(PV_SN_EXACT, "", NULL)};
    /* ".example.com" as the loader stores it: an exact name and a head wildcard */
    pv_server_name_t n_dot[] = {SN(PV_SN_EXACT, "example.com", NULL), SN(PV_SN_WILD_HEAD, ".example.com", NULL)};
    pv_server_name_t n_head[] = {SN(PV_SN_WILD_HEAD, ".api.example.com", NULL)};
    pv_server_name_t n_tail[] = {SN(PV_SN_WILD_TAIL, "www.", NULL), SN(PV_SN_WILD_TAIL, "www.example.", NULL)};
    pv_server_name_t n_tail2[] = {SN(PV_SN_WILD_TAIL, "mail.", NULL)};
    pv_server_name_t n_re[] = {SN(PV_SN_REGEX, "^www\\d+\\.example\\.com$", re1)};
    pv_server_name_t n_re2[] = {SN(PV_SN_REGEX, "example", re2)};
    pv_server_t *srv[] = {
        named("def", n_def, 1),     named("exact", n_exact, 2), named("dot", n_dot, 2),
        named("head", n_head, 1),   named("tail", n_tail, 2),   named("tail2", n_tail2, 1),
        named("re", n_re, 1),       named("re2", n_re2, 1),
    };
    pv_listen_group_t g = {0};
    g.servers = srv;
    g.nservers = (int)PV_NELEM(srv);
    g.default_srv = srv[0];

    assert_string_equal(pick(&g, "www.example.com"), "exact");
    assert_string_equal(pick(&g, ""), "exact");
    assert_string_equal(pick(&g, "example.com"), "dot");
    assert_string_equal(pick(&g, "a.example.com"), "dot");
    assert_string_equal(pick(&g, "a.b.example.com"), "dot");
    /* the longest head wildcard wins, whatever the order */
    assert_string_equal(pick(&g, "v1.api.example.com"), "head");
    assert_string_equal(pick(&g, "api.example.com"), "dot");
    /* head wildcards beat tail wildcards, which beat regexes */
    assert_string_equal(pick(&g, "www2.example.com"), "dot");
    assert_string_equal(pick(&g, "www.example.org"), "tail");
    assert_string_equal(pick(&g, "www.example.co.uk"), "tail");
    assert_string_equal(pick(&g, "mail.x"), "tail2");
    assert_string_equal(pick(&g, "www."), "def");
    /* regexes in order, the first match */
    assert_string_equal(pick(&g, "www.x.example.net"), "tail");
    assert_string_equal(pick(&g, "www7.example.net"), "re2");
    assert_string_equal(pick(&g, "xexample.net"), "re2");
    assert_string_equal(pick(&g, "nothing.test"), "def");

    g.servers = srv + 6;
    g.nservers = 2;
    g.default_srv = srv[7];
    assert_string_equal(pick(&g, "www12.example.com"), "re");
    assert_string_equal(pick(&g, "example"), "re2");
    assert_string_equal(pick(&g, ""), "re2");
    pcre2_code_free(re1);
    pcre2_code_free(re2);
}

static void test_redirect_url(void **state)
{
    (void)state;
    pv_location_t *l = loc(PV_LOC_PREFIX, "/api/a b/", 1);
    pv_request_t r = {0};
    r.arena = &arena;
    r.host = PV_STR("h");
    r.local_port = 8080;
    r.local_text = "127.0.0.1";
    assert_string_equal(pv_router_location_url(&r, l->name, 1, r.args).p, "http://h:8080/api/a%20b/");
    r.args = PV_STR("q=1");
    r.host = (pv_str_t){NULL, 0};
    r.local_port = 80;
    assert_string_equal(pv_router_location_url(&r, l->name, 1, r.args).p, "http://127.0.0.1/api/a%20b/?q=1");
    r.local_text = "::1";
    assert_string_equal(pv_router_location_url(&r, l->name, 0, r.args).p, "http://[::1]/api/a b/?q=1");
    /* not a path: left as it is */
    assert_string_equal(pv_router_location_url(&r, PV_STR("x/y"), 0, (pv_str_t){NULL, 0}).p, "x/y");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_auto_redirect),
        cmocka_unit_test(test_auto_redirect_precedence),
        cmocka_unit_test(test_location_precedence),
        cmocka_unit_test(test_location_no_match),
        cmocka_unit_test(test_longest_prefix),
        cmocka_unit_test(test_server_names),
        cmocka_unit_test(test_redirect_url),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
