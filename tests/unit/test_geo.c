/* The geo module without a server: the radix tree (longest prefix,
 * delete), the range table (NGINX's split, duplicate and overlap rules
 * per /16 block), address and network parsing as ngx_inet_addr() and
 * ngx_ptocidr(), and whole geo blocks loaded and looked up. Expected
 * values were checked against nginx 1.22.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "config/conf.h"
#include "core/geo.h"
#include "http/map.h"
#include "http/vars.h"

static void test_tree(void **state)
{
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_geo_tree_t t;
    pv_geo_tree_init(&t, &a);
    uint8_t n10[4] = {10, 0, 0, 0}, n1011[4] = {10, 1, 1, 0}, h[4] = {10, 1, 1, 7}, o[4] = {11, 0, 0, 1};
    const void *old = NULL;
    assert_int_equal(pv_geo_tree_insert(&t, n10, 8, "ten", 1, NULL), PV_GEO_ADDED);
    assert_int_equal(pv_geo_tree_insert(&t, n1011, 24, "sub", 1, NULL), PV_GEO_ADDED);
    assert_string_equal(pv_geo_tree_find(&t, h, 32), "sub");
    assert_null(pv_geo_tree_find(&t, o, 32));
    assert_int_equal(pv_geo_tree_insert(&t, n10, 8, "TEN", 1, &old), PV_GEO_BUSY);
    assert_string_equal(old, "ten");
    assert_int_equal(pv_geo_tree_insert(&t, n10, 8, "kept?", 0, &old), PV_GEO_BUSY);
    assert_int_equal(pv_geo_tree_delete(&t, n1011, 24), 0);
    assert_int_equal(pv_geo_tree_delete(&t, n1011, 24), -1);
    assert_int_equal(pv_geo_tree_delete(&t, n1011, 23), -1);
    assert_string_equal(pv_geo_tree_find(&t, h, 32), "TEN");
    assert_int_equal(pv_geo_tree_insert(&t, n10, 0, "all", 0, NULL), PV_GEO_ADDED);
    assert_string_equal(pv_geo_tree_find(&t, o, 32), "all");
    pv_arena_free(&a);
}

static void test_ranges(void **state)
{
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_geo_ranges_t rs;
    assert_int_equal(pv_geo_ranges_init(&rs, &a), 0);
    int dups = 0;
    const void *old = NULL;
    uint32_t os = 0, oe = 0;
    /* 10.0.0.0-10.2.255.255 spans three /16 blocks */
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a000000, 0x0a02ffff, "big", &dups, &old, &os, &oe), 0);
    /* inside one piece: split */
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a010010, 0x0a010020, "in", &dups, &old, &os, &oe), 0);
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a01000f), "big");
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a010010), "in");
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a010020), "in");
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a010021), "big");
    assert_null(pv_geo_ranges_find(&rs, 0x0a030000));
    /* same piece: replaced, counted */
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a010010, 0x0a010020, "in2", &dups, &old, &os, &oe), 0);
    assert_int_equal(dups, 1);
    assert_string_equal(old, "in");
    /* a start shared with a piece, or an end */
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a000000, 0x0a000005, "head", &dups, &old, &os, &oe), 0);
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a02fff0, 0x0a02ffff, "tail", &dups, &old, &os, &oe), 0);
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a000005), "head");
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a000006), "big");
    assert_string_equal(pv_geo_ranges_find(&rs, 0x0a02ffff), "tail");
    /* covering two pieces is an overlap */
    assert_int_equal(pv_geo_ranges_add(&rs, 0x0a010000, 0x0a010015, "x", &dups, &old, &os, &oe), -1);
    assert_int_equal(os, 0x0a010010);
    assert_int_equal(oe, 0x0a010020);
    /* delete is exact, per block */
    assert_int_equal(pv_geo_ranges_delete(&rs, 0x0a010010, 0x0a010020), 0);
    assert_null(pv_geo_ranges_find(&rs, 0x0a010015));
    assert_int_equal(pv_geo_ranges_delete(&rs, 0x0a010010, 0x0a010020), 1);
    /* the last block */
    assert_int_equal(pv_geo_ranges_add(&rs, 0xffffff00, 0xffffffff, "end", &dups, &old, &os, &oe), 0);
    assert_string_equal(pv_geo_ranges_find(&rs, 0xffffffff), "end");
    pv_arena_free(&a);
}

static void test_parse(void **state)
{
    uint32_t v;
    assert_int_equal(pv_geo_inet4("1.2.3.4", 7, &v), 0);
    assert_int_equal(v, 0x01020304);
    assert_int_equal(pv_geo_inet4("1..3.4", 6, &v), 0); /* an empty part is 0, as ngx_inet_addr */
    assert_int_equal(v, 0x01000304);
    assert_int_equal(pv_geo_inet4("255.255.255.255", 15, &v), 0);
    assert_int_equal(v, 0xffffffff);
    assert_int_equal(pv_geo_inet4("1.2.3.256", 9, &v), -1);
    assert_int_equal(pv_geo_inet4("1.2.3", 5, &v), -1);
    assert_int_equal(pv_geo_inet4("1.2.3.4.5", 9, &v), -1);
    assert_int_equal(pv_geo_inet4("1.2.3.a", 7, &v), -1);
    int fam, bits;
    uint8_t addr[16];
    assert_int_equal(pv_geo_cidr("10.1.2.3/8", 10, &fam, addr, &bits), 1); /* low bits set */
    assert_int_equal(fam, 4);
    assert_int_equal(bits, 8);
    assert_int_equal(addr[0], 10);
    assert_int_equal(addr[1], 0);
    assert_int_equal(pv_geo_cidr("10.0.0.0/8", 10, &fam, addr, &bits), 0);
    assert_int_equal(pv_geo_cidr("10.0.0.1", 8, &fam, addr, &bits), 0);
    assert_int_equal(bits, 32);
    assert_int_equal(pv_geo_cidr("2001:db8::/32", 13, &fam, addr, &bits), 0);
    assert_int_equal(fam, 6);
    assert_int_equal(bits, 32);
    assert_int_equal(pv_geo_cidr("::1", 3, &fam, addr, &bits), 0);
    assert_int_equal(bits, 128);
    assert_int_equal(pv_geo_cidr("10.0.0.0/33", 11, &fam, addr, &bits), -1);
    assert_int_equal(pv_geo_cidr("10.0.0.0/", 9, &fam, addr, &bits), -1);
    assert_int_equal(pv_geo_cidr("::/129", 6, &fam, addr, &bits), -1);
    assert_int_equal(pv_geo_cidr("x", 1, &fam, addr, &bits), -1);
}

static const char *load_err(const char *text)
{
    static char err[512];
    pv_conf_t *c = pv_conf_load_text("/t/t.conf", text, strlen(text), PV_CONF_F_NO_DNS, err, sizeof(err));
    if (c) {
        pv_conf_unref(c);
        return NULL;
    }
    return err;
}

#define GEO_CONF(block) "http {\n" block "\n server { listen 127.0.0.1:8080; }\n}\n"

/* The value of the geo variable of slot 0 for a request from peer with
 * X-Forwarded-For xff (or none) and ?a=arg. */
static const char *lookup(pv_conf_t *c, const char *peer, const char *xff, const char *arg)
{
    static char out[64];
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_request_t r;
    memset(&r, 0, sizeof(r));
    r.arena = &a;
    r.conf = c;
    r.srv = c->http->servers[0];
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    if (inet_pton(AF_INET, peer, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, peer, &sa.sin6_addr) == 1)
        sa.sin6_family = AF_INET6;
    else
        sa.sin6_family = AF_UNIX;
    r.peer = (const struct sockaddr *)&sa;
    pv_header_t hd = {{"X-Forwarded-For", 15}, {xff, xff ? strlen(xff) : 0}};
    if (xff) {
        r.headers = &hd;
        r.nheaders = 1;
    }
    char args[64];
    snprintf(args, sizeof(args), "a=%s", arg ? arg : "");
    r.args = (pv_str_t){args, strlen(args)};
    r.has_args = 1;
    pv_str_t v = pv_map_eval(&r, c->http->uvar_maps[0]);
    snprintf(out, sizeof(out), "%.*s", (int)v.len, v.p);
    pv_arena_free(&a);
    return out;
}

static pv_conf_t *load(const char *text)
{
    char err[512];
    pv_conf_t *c = pv_conf_load_text("/t/t.conf", text, strlen(text), PV_CONF_F_NO_DNS, err, sizeof(err));
    if (!c)
        fail_msg("load: %s", err);
    return c;
}

static void test_cidr_block(void **state)
{
    pv_conf_t *c = load(GEO_CONF(" geo $g {\n  default def;\n  127.0.0.0/8 lo;\n  127.0.0.1 one;\n"
                                 "  10.0.0.0/8 ten;\n  delete 10.0.0.0/8;\n  ::1 six;\n"
                                 "  2001:db8::/32 doc;\n  255.255.255.255 none;\n"
                                 "  proxy 127.0.0.2;\n }"));
    assert_string_equal(lookup(c, "127.0.0.1", NULL, NULL), "one");
    assert_string_equal(lookup(c, "127.0.0.3", NULL, NULL), "lo");
    assert_string_equal(lookup(c, "10.1.1.1", NULL, NULL), "def");
    assert_string_equal(lookup(c, "::1", NULL, NULL), "six");
    assert_string_equal(lookup(c, "2001:db8:1::5", NULL, NULL), "doc");
    assert_string_equal(lookup(c, "2001:db9::", NULL, NULL), "def");
    assert_string_equal(lookup(c, "::ffff:127.0.0.1", NULL, NULL), "one");
    assert_string_equal(lookup(c, "unix", NULL, NULL), "none");
    /* X-Forwarded-For only from a proxy */
    assert_string_equal(lookup(c, "127.0.0.2", "::1", NULL), "six");
    assert_string_equal(lookup(c, "127.0.0.3", "::1", NULL), "lo");
    pv_conf_unref(c);

    c = load(GEO_CONF(" geo $arg_a $g {\n  192.0.2.0/24 doc;\n }"));
    assert_string_equal(lookup(c, "127.0.0.1", NULL, "192.0.2.1"), "doc");
    assert_string_equal(lookup(c, "192.0.2.1", NULL, "10.0.0.1"), "");
    assert_string_equal(lookup(c, "192.0.2.1", NULL, "junk"), "");
    pv_conf_unref(c);
}

static void test_range_block(void **state)
{
    pv_conf_t *c = load(GEO_CONF(" geo $g {\n  ranges;\n  default def;\n  127.0.0.0-127.0.0.255 lo;\n"
                                 "  127.0.0.1-127.0.0.1 one;\n  10.0.0.0-10.255.255.255 ten;\n"
                                 "  delete 127.0.0.1-127.0.0.1;\n }"));
    assert_string_equal(lookup(c, "127.0.0.1", NULL, NULL), "def");
    assert_string_equal(lookup(c, "127.0.0.2", NULL, NULL), "lo");
    assert_string_equal(lookup(c, "10.200.0.1", NULL, NULL), "ten");
    assert_string_equal(lookup(c, "11.0.0.1", NULL, NULL), "def");
    assert_string_equal(lookup(c, "::1", NULL, NULL), "def"); /* no IPv4 address */
    pv_conf_unref(c);
}

static void test_errors(void **state)
{
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { default a; ranges; }")),
                           "the \"ranges\" directive must be the first directive inside \"geo\" block"));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { 10.0.0.0/40 a; }")), "invalid network \"10.0.0.0/40\""));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { ranges; 10.0.0.9-10.0.0.1 a; }")),
                           "invalid range \"10.0.0.9-10.0.0.1\""));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { ranges; 10.0.0.1-10.0.0.9 a; 10.0.0.0-10.0.0.5 b; }")),
                           "range \"10.0.0.0-10.0.0.5\" overlaps \"10.0.0.1-10.0.0.9\""));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { a b c; }")), "invalid number of the geo parameters"));
    assert_non_null(strstr(load_err(GEO_CONF(" geo g { }")), "invalid variable name \"g\""));
    assert_non_null(strstr(load_err(GEO_CONF(" geo a $g { }")), "invalid variable name \"a\""));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $uri { }")), "the duplicate \"uri\" variable"));
    assert_non_null(strstr(load_err(GEO_CONF(" geo $g { proxy x; }")), "invalid network \"x\""));
}

static int setup(void **state)
{
    pv_http_vars_init();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_cidr_block),
        cmocka_unit_test(test_range_block), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("geo", tests, setup, NULL);
}
