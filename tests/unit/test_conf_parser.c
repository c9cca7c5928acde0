/* Config loading end to end: every error class with its FILE:LINE,
 * include, inheritance and defaults, listen groups, proxy_pass, server
 * names, locations, log formats, compiled values, the auto worker count
 * and the reference gateway config. Files live in a fresh temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf_int.h"
#include "http/vars.h"

static char dir[256];
static char err[1024];

/* The table entry of a variable: "host", or the prefix "http_" for
 * $http_NAME. */
static const pv_var_t *var_entry(const char *name)
{
    const pv_var_t *const tables[] = {pv_vars_request, pv_vars_response, pv_vars_timing, pv_vars_trace};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const pv_var_t *v = tables[t]; v->name.len; v++)
            if (v->name.len == strlen(name) && memcmp(v->name.p, name, v->name.len) == 0)
                return v;
    fail_msg("no variable \"%s\"", name);
    return NULL;
}

/* Write dir/name (creating subdirectories) with the given text. */
static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static pv_conf_t *load(const char *text)
{
    char path[512];
    put("main.conf", text);
    snprintf(path, sizeof(path), "%s/main.conf", dir);
    err[0] = '\0';
    return pv_conf_load(path, err, sizeof(err));
}

static pv_conf_t *load_ok(const char *text)
{
    pv_conf_t *c = load(text);
    if (!c)
        fail_msg("load failed: %s", err);
    return c;
}

/* Expect an error "msg in DIR/file:line". */
static void expect_err_in(const char *text, const char *msg, const char *file, int line)
{
    char want[1024];
    pv_conf_t *c = load(text);
    assert_null(c);
    snprintf(want, sizeof(want), "%s in %s/%s:%d", msg, dir, file, line);
    assert_string_equal(err, want);
}

static void expect_err(const char *text, const char *msg, int line)
{
    expect_err_in(text, msg, "main.conf", line);
}

static int setup(void **state)
{
    pv_http_vars_init();
    snprintf(dir, sizeof(dir), "/tmp/pv-conf-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define HTTP_SRV(body) "http {\n server {\n  listen 127.0.0.1:8080;\n" body "\n }\n}\n"

/* ---- errors ---- */

static void test_syntax_errors(void **state)
{
    expect_err("http {\n", "unexpected end of file, expecting \"}\"", 2);
    expect_err("http {\n server {\n  listen 80\n", "unexpected end of file, expecting \";\" or \"}\"",
               4);
    expect_err("worker_processes 1;\n}\n", "unexpected \"}\"", 2);
    expect_err("\n;\n", "unexpected \";\"", 2);
    expect_err("{\n", "unexpected \"{\"", 1);
    expect_err("http {\n keepalive_timeout 5 }\n", "unexpected \"}\"", 2);
    expect_err("pid \"a\"b;\n", "unexpected \"b\"", 1);
    expect_err("pid \"a\n\n", "unexpected end of file, expecting \";\" or \"}\"", 3);
}

static void test_directive_errors(void **state)
{
    expect_err("\n\nfoo bar;\n", "unknown directive \"foo\"", 3);
    expect_err("http {\n server {\n  location / {\n   bogus_thing on;\n  }\n }\n}\n",
               "unknown directive \"bogus_thing\"", 4);
    expect_err("http {\n proxy_pass http://a;\n}\n",
               "\"proxy_pass\" directive is not allowed here", 2);
    expect_err("keepalive_timeout 5;\n", "\"keepalive_timeout\" directive is not allowed here", 1);
    expect_err("worker_connections 5;\n", "\"worker_connections\" directive is not allowed here",
               1);
    expect_err("http {\n server {\n  client_header_timeout 5s;\n  location / {\n"
               "   client_header_timeout 5s;\n  }\n }\n}\n",
               "\"client_header_timeout\" directive is not allowed here", 5);
    expect_err("http;\n", "directive \"http\" has no opening \"{\"", 1);
    expect_err("worker_processes 1 {\n}\n",
               "directive \"worker_processes\" is not terminated by \";\"", 1);
    expect_err("worker_processes 1 2;\n",
               "invalid number of arguments in \"worker_processes\" directive", 1);
    expect_err("http {\n upstream u {\n  server 127.0.0.1;\n  keepalive;\n }\n}\n",
               "invalid number of arguments in \"keepalive\" directive", 4);
    expect_err("http x {\n}\n", "invalid number of arguments in \"http\" directive", 1);
    expect_err("http {\n server {\n  location / {\n   internal 1;\n  }\n }\n}\n",
               "invalid number of arguments in \"internal\" directive", 4);
}

static void test_duplicates(void **state)
{
    expect_err("worker_processes 1;\nworker_processes 2;\n",
               "\"worker_processes\" directive is duplicate", 2);
    expect_err("http {\n}\nhttp {\n}\n", "\"http\" directive is duplicate", 3);
    expect_err("events {\n}\nevents {\n}\n", "\"events\" directive is duplicate", 3);
    expect_err("events {\n worker_connections 1;\n worker_connections 2;\n}\n",
               "\"worker_connections\" directive is duplicate", 3);
    expect_err("http {\n upstream u {\n  server 127.0.0.1;\n  keepalive 2;\n  keepalive 3;\n }\n}\n",
               "\"keepalive\" directive is duplicate", 5);
    expect_err("http {\n keepalive_timeout 1;\n keepalive_timeout 2;\n}\n",
               "\"keepalive_timeout\" directive is duplicate", 3);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass http://127.0.0.1;\n"
                        "   proxy_pass http://127.0.0.1;\n  }"),
               "\"proxy_pass\" directive is duplicate", 6);
    expect_err(HTTP_SRV("  location / {\n   internal;\n   internal;\n  }"),
               "\"internal\" directive is duplicate", 6);
    /* NGINX takes any number of returns: the script stops at the first */
    pv_conf_unref(load_ok(HTTP_SRV("  return 200;\n  return 201;")));
    expect_err("http {\n upstream u {\n  server 127.0.0.1;\n }\n upstream u {\n"
               "  server 127.0.0.1;\n }\n}\n",
               "duplicate upstream \"u\"", 5);
    expect_err("http {\n log_format a x;\n log_format a y;\n}\n",
               "duplicate \"log_format\" name \"a\"", 3);
    expect_err("http {\n log_format combined \"$status\";\n}\n",
               "duplicate \"log_format\" name \"combined\"", 2);
    expect_err(HTTP_SRV("  location /a {\n  }\n  location ^~ /a {\n  }"),
               "duplicate location \"/a\"", 6);
    expect_err(HTTP_SRV("  location = /a {\n  }\n  location =/a {\n  }"),
               "duplicate location \"/a\"", 6);
}

static void test_value_errors(void **state)
{
    expect_err("worker_processes x;\n", "\"worker_processes\" directive invalid value", 1);
    expect_err("daemon maybe;\n",
               "invalid value \"maybe\" in \"daemon\" directive, it must be \"on\" or \"off\"", 1);
    expect_err("http {\n keepalive_requests -1;\n}\n",
               "\"keepalive_requests\" directive invalid number", 2);
    expect_err("http {\n client_max_body_size 1x;\n}\n",
               "\"client_max_body_size\" directive invalid value", 2);
    expect_err("http {\n send_timeout 30s1m;\n}\n", "\"send_timeout\" directive invalid value", 2);
    expect_err("http {\n keepalive_timeout 10 1x;\n}\n",
               "\"keepalive_timeout\" directive invalid value", 2);
    expect_err("http {\n proxy_http_version 2.0;\n}\n", "invalid value \"2.0\"", 2);
    expect_err("http {\n proxy_next_upstream error foo;\n}\n", "invalid value \"foo\"", 2);
    expect_err("http {\n large_client_header_buffers 0 8k;\n}\n",
               "\"large_client_header_buffers\" directive invalid value", 2);
    expect_err("error_log /tmp/x bogus;\n", "invalid log level \"bogus\"", 1);
    expect_err("http {\n upstream u {\n  server 127.0.0.1 weight=0;\n }\n}\n",
               "invalid parameter \"weight=0\"", 3);
    expect_err("http {\n upstream u {\n  server 127.0.0.1 slow;\n }\n}\n",
               "invalid parameter \"slow\"", 3);
    expect_err("http {\n upstream u {\n  server 127.0.0.1:99999;\n }\n}\n",
               "invalid port in upstream \"127.0.0.1:99999\"", 3);
    expect_err("http {\n upstream u {\n  server 127.0.0.1;\n  keepalive 0;\n }\n}\n",
               "invalid value \"0\" in \"keepalive\" directive", 4);
    expect_err("http {\n upstream u {\n }\n}\n", "no servers are inside upstream", 2);
    expect_err("http {\n server {\n  listen 127.0.0.1:99999;\n }\n}\n",
               "invalid port in \"127.0.0.1:99999\" of the \"listen\" directive", 3);
    expect_err("http {\n server {\n  listen 8080 ssl;\n }\n}\n",
               "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive", 2);
    expect_err("http {\n server {\n  listen 8080 quic;\n }\n}\n",
               "the \"quic\" parameter of the \"listen\" directive is not supported yet", 3);
    expect_err("http {\n server {\n  listen 8080 setfib=1;\n }\n}\n",
               "invalid parameter \"setfib=1\"", 3);
    expect_err("http {\n server {\n  listen 8080 backlog=x;\n }\n}\n", "invalid backlog \"backlog=x\"",
               3);
    expect_err(HTTP_SRV("  return 1000;"), "invalid return code \"1000\"", 4);
    expect_err(HTTP_SRV("  return foo;"), "invalid return code \"foo\"", 4);
    expect_err(HTTP_SRV("  location x y z {\n  }"),
               "invalid number of arguments in \"location\" directive", 4);
    expect_err(HTTP_SRV("  location !! /x {\n  }"), "invalid location modifier \"!!\"", 4);
    expect_err(HTTP_SRV("  location /b {\n   location /a {\n   }\n  }"),
               "location \"/a\" is outside location \"/b\"", 5);
    expect_err(HTTP_SRV("  location = /b {\n   location /b/a {\n   }\n  }"),
               "location \"/b/a\" cannot be inside the exact location \"/b\"", 5);
    expect_err(HTTP_SRV("  location / {\n   location @a {\n   }\n  }"),
               "named location \"@a\" can be on the server level only", 5);
    expect_err(HTTP_SRV("  location ~ \"(a\" {\n  }"),
               "pcre2_compile() failed: missing closing parenthesis in \"(a\"", 4);
    expect_err(HTTP_SRV("  server_name \"~(a\";"),
               "pcre2_compile() failed: missing closing parenthesis in \"(a\"", 4);
    expect_err(HTTP_SRV("  server_name *;"), "server name \"*\" is invalid", 4);
    expect_err(HTTP_SRV("  server_name www.*.com;"),
               "invalid server name or wildcard \"www.*.com\"", 4);
    expect_err("http {\n access_log /tmp/a.log nosuch;\n}\n", "unknown log format \"nosuch\"", 2);
    expect_err("http {\n access_log off now;\n}\n", "invalid parameter \"now\"", 2);
    expect_err("http {\n log_format x escape=foo \"x\";\n}\n",
               "unknown log format escaping \"foo\"", 2);
}

static void test_variable_errors(void **state)
{
    expect_err(HTTP_SRV("  location / {\n   proxy_set_header A $foo;\n  }"),
               "unknown \"foo\" variable", 5);
    expect_err(HTTP_SRV("  location / {\n   return 200 \"cost 5$\";\n  }"), "invalid variable name",
               5);
    expect_err(HTTP_SRV("  location / {\n   proxy_set_header A \"a${b\";\n  }"),
               "the closing bracket in \"b\" variable is missing", 5);
    expect_err("http {\n log_format x\n   \"$status\"\n   \"$nope\";\n}\n",
               "unknown \"nope\" variable", 2);
}

static void test_proxy_pass_errors(void **state)
{
    expect_err(HTTP_SRV("  location ~ ^/a {\n   proxy_pass http://127.0.0.1:9/x;\n  }"),
               "\"proxy_pass\" cannot have URI part in location given by regular expression, or "
               "inside named location, or inside \"if\" statement, or inside \"limit_except\" "
               "block",
               5);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass https://127.0.0.1:x/;\n  }"),
               "invalid port in upstream \"127.0.0.1:x/\"", 5);
    expect_err(HTTP_SRV("  proxy_ssl_verify on;\n  location / {\n   proxy_pass https://127.0.0.1;\n  }"),
               "no proxy_ssl_trusted_certificate for proxy_ssl_verify", 4);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass ftp://a;\n  }"), "invalid URL prefix", 5);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass http://127.0.0.1:x/;\n  }"),
               "invalid port in upstream \"127.0.0.1:x/\"", 5);
    expect_err("http {\n upstream u {\n  server 127.0.0.1;\n }\n"
               " server {\n  location / {\n   proxy_pass http://u:80/x;\n  }\n }\n}\n",
               "upstream \"u\" may not have port 80", 7);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass ftp://$host;\n  }"),
               "invalid URL prefix in \"ftp://$host\"", 5);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass http://$nosuchvar;\n  }"),
               "unknown \"nosuchvar\" variable", 5);
    expect_err(HTTP_SRV("  location / {\n   proxy_pass http://$host;\n   health_check;\n  }"),
               "\"health_check\" needs a \"proxy_pass\" without variables", 6);
    expect_err(HTTP_SRV("  resolver 127.0.0.1 ipv4=off ipv6=off;"),
               "\"ipv4\" and \"ipv6\" cannot both be \"off\"", 4);
    expect_err(HTTP_SRV("  resolver 127.0.0.1 valid=1q;"), "invalid parameter: valid=1q", 4);
    expect_err("http {\n upstream u {\n  server unix:;\n }\n}\n",
               "no path in the unix domain socket in upstream \"unix:\"", 3);
}

static void test_unknown_upstream_host(void **state)
{
    /* Without name lookups so the test never depends on a resolver. */
    const char *text = "http {\n server {\n  location / {\n   proxy_pass http://auth_svc/;\n"
                       "  }\n }\n}\n";
    char want[512];
    assert_null(pv_conf_load_text("/etc/pv/x.conf", text, strlen(text), PV_CONF_F_NO_DNS, err,
                                  sizeof(err)));
    snprintf(want, sizeof(want), "host not found in upstream \"auth_svc\" in /etc/pv/x.conf:4");
    assert_string_equal(err, want);
    const char *t2 = "http {\n upstream u {\n  server backend.example:81;\n }\n}\n";
    assert_null(pv_conf_load_text("/etc/pv/x.conf", t2, strlen(t2), PV_CONF_F_NO_DNS, err,
                                  sizeof(err)));
    assert_string_equal(err, "host not found in upstream \"backend.example:81\" in /etc/pv/x.conf:3");
}

static void test_listen_conflicts(void **state)
{
    expect_err("http {\n server {\n  listen 8081;\n  listen 8081;\n }\n}\n",
               "a duplicate listen 0.0.0.0:8081", 4);
    expect_err("http {\n server {\n  listen 8081 default_server;\n }\n"
               " server {\n  listen 8081 default_server;\n }\n}\n",
               "a duplicate default server for 0.0.0.0:8081", 6);
    expect_err("http {\n server {\n  listen 8081 backlog=5;\n }\n"
               " server {\n  listen 8081 backlog=6;\n }\n}\n",
               "duplicate listen options for 0.0.0.0:8081", 6);
}

/* ---- include ---- */

static void test_include(void **state)
{
    put("conf.d/10-up.conf", "upstream inc_up {\n server 127.0.0.1:9001;\n}\n");
    put("conf.d/20-srv.conf", "server {\n listen 9002;\n include snippets/loc.inc;\n}\n");
    put("conf.d/skip.txt", "garbage here;\n");
    put("snippets/loc.inc", "location /x/ {\n proxy_pass http://inc_up;\n}\n");
    pv_conf_t *c = load_ok("http {\n include conf.d/*.conf;\n include none/*.conf;\n}\n");
    pv_http_conf_t *h = c->http;
    assert_int_equal(h->nupstreams, 1);
    assert_string_equal(h->upstreams[0]->name, "inc_up");
    assert_int_equal(h->nservers, 1);
    assert_int_equal(h->servers[0]->nlocations, 1);
    pv_location_t *loc = h->servers[0]->locations[0];
    assert_ptr_equal(loc->proxy_pass->upstream, h->upstreams[0]);
    char want[512];
    snprintf(want, sizeof(want), "%s/snippets/loc.inc", dir);
    assert_string_equal(loc->src.file, want);
    assert_int_equal(loc->src.line, 1);
    pv_conf_unref(c);
}

static void test_include_errors(void **state)
{
    put("bad/a.conf", "keepalive_timeout 5;\n\nkeepalive_bogus 1;\n");
    expect_err_in("http {\n include bad/*.conf;\n}\n", "unknown directive \"keepalive_bogus\"",
                  "bad/a.conf", 3);
    put("bad2.conf", "server {\n listen 1;\n");
    expect_err_in("http {\n include bad2.conf;\n}\n",
                  "unexpected end of file, expecting \"}\"", "bad2.conf", 3);
    char want[600];
    snprintf(want, sizeof(want), "open() \"%s/missing.conf\" failed (2: No such file or directory)",
             dir);
    expect_err("http {\n\n include missing.conf;\n}\n", want, 3);
    expect_err("include a b;\n", "invalid number of arguments in \"include\" directive", 1);
    put("loop.conf", "include loop.conf;\n");
    pv_conf_t *c = load("include loop.conf;\n");
    assert_null(c);
    assert_non_null(strstr(err, "too many nested includes"));
    const char *t = "include x.conf;\n";
    assert_null(pv_conf_load_text("/x/m.conf", t, strlen(t), PV_CONF_F_NO_INCLUDE, err,
                                  sizeof(err)));
    assert_string_equal(err, "\"include\" directive is not allowed here in /x/m.conf:1");
}

static void test_missing_main_file(void **state)
{
    assert_null(pv_conf_load("/nonexistent/pv.conf", err, sizeof(err)));
    assert_string_equal(err, "open() \"/nonexistent/pv.conf\" failed (2: No such file or directory)");
}

/* ---- inheritance and defaults ---- */

static void test_defaults(void **state)
{
    pv_conf_t *c = load_ok("http {\n server {\n  location / {\n  }\n }\n}\n");
    assert_int_equal(c->worker_processes, 1);
    assert_int_equal(c->worker_connections, 512);
    assert_null(c->error_log_path);
    assert_int_equal(c->error_log_level, 3);
    assert_null(c->pid_path);
    assert_int_equal(c->worker_rlimit_nofile, 0);
    assert_int_equal(c->refs, 1);
    pv_http_conf_t *h = c->http;
    pv_server_t *s = h->servers[0];
    const pv_loc_conf_t *lc = &s->locations[0]->conf;
    assert_int_equal(lc->keepalive_timeout, 75000);
    assert_int_equal(lc->keepalive_header, 0);
    assert_int_equal(lc->keepalive_requests, 1000);
    assert_int_equal(lc->client_max_body_size, 1024 * 1024);
    assert_int_equal(lc->client_body_timeout, 60000);
    assert_int_equal(lc->send_timeout, 60000);
    assert_int_equal(lc->proxy_http_version, 10);
    assert_null(lc->set_headers);
    assert_int_equal(lc->nset_headers, 0);
    assert_int_equal(lc->proxy_connect_timeout, 60000);
    assert_int_equal(lc->proxy_read_timeout, 60000);
    assert_int_equal(lc->proxy_send_timeout, 60000);
    assert_int_equal(lc->proxy_next_upstream, PV_NEXT_F_ERROR | PV_NEXT_F_TIMEOUT);
    assert_int_equal(lc->proxy_pass_request_body, 1);
    assert_int_equal(lc->naccess_logs, 1);
    assert_string_equal(lc->access_logs[0].path, "/dev/stdout");
    assert_string_equal(lc->access_logs[0].format->name, "combined");
    assert_int_equal(s->client_header_timeout, 60000);
    assert_int_equal(s->client_header_buffer_size, 1024);
    assert_int_equal(s->large_header_buffers_num, 4);
    assert_int_equal(s->large_header_buffers_size, 8192);
    assert_int_equal(s->nlistens, 1);
    assert_string_equal(s->listens[0].text, "0.0.0.0:80");
    assert_int_equal(s->listens[0].sock.backlog, 511);
    assert_int_equal(s->nnames, 1);
    assert_int_equal(s->names[0].kind, PV_SN_EXACT);
    assert_int_equal(s->names[0].name.len, 0);
    pv_conf_unref(c);

    c = load_ok("worker_processes 3;\n");
    assert_null(c->http);
    assert_int_equal(c->worker_processes, 3);
    pv_conf_unref(c);
}

static void test_inheritance(void **state)
{
    pv_conf_t *c = load_ok(
        "http {\n"
        " keepalive_timeout 10s 5;\n"
        " client_max_body_size 2m;\n"
        " proxy_set_header A 1;\n"
        " proxy_set_header B 2;\n"
        " client_header_timeout 7s;\n"
        " access_log logs/http.log;\n"
        " proxy_next_upstream http_502 off;\n"
        " server {\n"
        "  listen 8080;\n"
        "  send_timeout 1m;\n"
        "  large_client_header_buffers 8 16k;\n"
        "  proxy_set_header C 3;\n"
        "  location /a {\n"
        "   keepalive_timeout 3;\n"
        "   proxy_http_version 1.1;\n"
        "   access_log off;\n"
        "  }\n"
        "  location /b {\n"
        "   proxy_set_header D $host;\n"
        "   proxy_pass_request_body off;\n"
        "   proxy_next_upstream error timeout http_429;\n"
        "   access_log /var/log/b.log combined;\n"
        "   access_log b2.log;\n"
        "  }\n"
        " }\n"
        "}\n");
    pv_http_conf_t *h = c->http;
    pv_server_t *s = h->servers[0];
    assert_int_equal(h->conf.keepalive_timeout, 10000);
    assert_int_equal(h->conf.keepalive_header, 5000);
    assert_int_equal(h->conf.nset_headers, 2);
    assert_int_equal(h->conf.proxy_next_upstream, PV_NEXT_F_OFF);
    assert_int_equal(s->conf.client_max_body_size, 2 * 1024 * 1024);
    assert_int_equal(s->conf.send_timeout, 60000 * 1);
    assert_int_equal(s->conf.nset_headers, 1);
    assert_string_equal(s->conf.set_headers[0].name.p, "C");
    assert_int_equal(s->client_header_timeout, 7000);
    assert_int_equal(s->large_header_buffers_num, 8);
    assert_int_equal(s->large_header_buffers_size, 16384);
    char want[512];
    snprintf(want, sizeof(want), "%s/logs/http.log", dir);
    assert_string_equal(s->conf.access_logs[0].path, want);

    pv_loc_conf_t *a = &s->locations[0]->conf, *b = &s->locations[1]->conf;
    assert_int_equal(a->keepalive_timeout, 3000);
    assert_int_equal(a->keepalive_header, 5000);
    assert_int_equal(a->send_timeout, 60000);
    assert_int_equal(a->proxy_http_version, 11);
    assert_ptr_equal(a->set_headers, s->conf.set_headers);
    assert_int_equal(a->naccess_logs, 1);
    assert_int_equal(a->access_logs[0].off, 1);
    assert_int_equal(a->client_max_body_size, 2 * 1024 * 1024);
    assert_int_equal(b->nset_headers, 1);
    assert_string_equal(b->set_headers[0].name.p, "D");
    assert_int_equal(b->set_headers[0].value.is_const, 0);
    assert_ptr_equal(b->set_headers[0].value.parts[0].var, var_entry("host"));
    assert_int_equal(b->proxy_pass_request_body, 0);
    assert_int_equal(b->proxy_next_upstream,
                     PV_NEXT_F_ERROR | PV_NEXT_F_TIMEOUT | PV_NEXT_F_HTTP_429);
    assert_int_equal(b->naccess_logs, 2);
    assert_string_equal(b->access_logs[0].path, "/var/log/b.log");
    snprintf(want, sizeof(want), "%s/b2.log", dir);
    assert_string_equal(b->access_logs[1].path, want);
    assert_string_equal(b->access_logs[1].format->name, "combined");
    assert_int_equal(b->proxy_http_version, 10);
    pv_conf_unref(c);
}

static void test_main_directives(void **state)
{
    pv_conf_t *c = load_ok("worker_processes 6;\nerror_log logs/error.log warn;\npid run/pv.pid;\n"
                           "daemon off;\nworker_rlimit_nofile 65536;\n"
                           "events {\n worker_connections 4096;\n}\n");
    char want[512];
    snprintf(want, sizeof(want), "%s/logs/error.log", dir);
    assert_string_equal(c->error_log_path, want);
    assert_int_equal(c->error_log_level, 4);
    snprintf(want, sizeof(want), "%s/run/pv.pid", dir);
    assert_string_equal(c->pid_path, want);
    assert_int_equal(c->daemon, 0);
    assert_int_equal(c->worker_rlimit_nofile, 65536);
    assert_int_equal(c->worker_connections, 4096);
    assert_int_equal(c->worker_processes, 6);
    snprintf(want, sizeof(want), "%s/main.conf", dir);
    assert_string_equal(c->path, want);
    assert_string_equal(c->prefix, dir);
    pv_conf_unref(c);

    c = load_ok("worker_processes auto;\nerror_log stderr;\n");
    assert_int_equal(c->worker_processes_auto, 1);
    assert_true(c->worker_processes >= 1);
    assert_non_null(strstr(c->worker_processes_why, "affinity"));
    assert_null(c->error_log_path);
    pv_conf_ref(c);
    assert_int_equal(c->refs, 2);
    pv_conf_unref(c);
    pv_conf_unref(c);
}

/* ---- listen ---- */

static void test_listen_groups(void **state)
{
    pv_conf_t *c = load_ok("http {\n"
                           " server {\n  listen 127.0.0.1:8081;\n  listen [::1]:8082 reuseport;\n }\n"
                           " server {\n  listen 127.0.0.1:8081 default_server backlog=100;\n"
                           "  listen *:8083;\n }\n"
                           " server {\n  listen 127.0.0.1:8081;\n  listen 8083;\n"
                           "  listen 127.0.0.2;\n }\n"
                           "}\n");
    pv_http_conf_t *h = c->http;
    assert_int_equal(h->nlistens, 4);
    pv_listen_group_t *g = &h->listens[0];
    assert_string_equal(g->listen.text, "127.0.0.1:8081");
    assert_int_equal(g->nservers, 3);
    assert_ptr_equal(g->default_srv, h->servers[1]);
    assert_int_equal(g->listen.default_server, 1);
    assert_int_equal(g->listen.sock.backlog, 100);
    assert_string_equal(h->listens[1].listen.text, "[::1]:8082");
    assert_int_equal(h->listens[1].listen.addr.ss_family, AF_INET6);
    assert_int_equal(h->listens[1].listen.reuseport, 1);
    assert_int_equal(h->listens[1].listen.sock.backlog, 511);
    assert_string_equal(h->listens[2].listen.text, "0.0.0.0:8083");
    assert_int_equal(h->listens[2].nservers, 2);
    assert_ptr_equal(h->listens[2].default_srv, h->servers[1]);
    assert_string_equal(h->listens[3].listen.text, "127.0.0.2:80");
    assert_ptr_equal(h->listens[3].default_srv, h->servers[2]);
    assert_int_equal(h->servers[2]->listens[0].sock.backlog, 511);
    pv_conf_unref(c);
}

/* `listen ... http2` marks the address (any listen of it may say it);
 * `http2 on` and the tunables follow the http -> server inheritance, with
 * NGINX's defaults. */
static void test_http2_settings(void **state)
{
    pv_conf_t *c = load_ok("http {\n"
                           " http2_max_concurrent_streams 64;\n"
                           " http2_recv_buffer_size 128k;\n"
                           " http2_max_field_size 4k;\n"
                           " server {\n  listen 127.0.0.1:8081;\n  http2 on;\n  http2_body_preread_size 16k;\n"
                           "  location /a { http2_chunk_size 4k; }\n }\n"
                           " server {\n  listen 127.0.0.1:8082 http2;\n }\n"
                           " server {\n  listen 127.0.0.1:8082;\n  http2_max_concurrent_streams 10;\n }\n"
                           "}\n");
    pv_http_conf_t *h = c->http;
    assert_int_equal(h->http2_recv_buffer_size, 128 * 1024);
    assert_int_equal(h->listens[0].listen.http2, 0);
    assert_int_equal(h->listens[1].listen.http2, 1);
    assert_int_equal(h->servers[0]->http2, 1);
    assert_int_equal(h->servers[1]->http2, 0);
    assert_int_equal(h->servers[0]->http2_max_concurrent_streams, 64);
    assert_int_equal(h->servers[2]->http2_max_concurrent_streams, 10);
    assert_int_equal(h->servers[0]->http2_body_preread_size, 16 * 1024);
    assert_int_equal(h->servers[1]->http2_body_preread_size, 64 * 1024);
    assert_int_equal(h->servers[0]->conf.http2_chunk_size, 8192);
    assert_int_equal(h->servers[0]->locations[0]->conf.http2_chunk_size, 4096);
    pv_conf_unref(c);
    expect_err("http {\n http2 maybe;\n}\n",
               "invalid value \"maybe\" in \"http2\" directive, it must be \"on\" or \"off\"", 2);
    expect_err("http {\n http2_recv_buffer_size 1k;\n}\n",
               "\"http2_recv_buffer_size\" must be more than 32k and at most 64m", 2);
    expect_err("http {\n server {\n  http2_recv_buffer_size 1m;\n }\n}\n",
               "\"http2_recv_buffer_size\" directive is not allowed here", 3);
}

/* ---- proxy_pass ---- */

static void test_proxy_pass_forms(void **state)
{
    pv_conf_t *c = load_ok("http {\n server {\n"
                           "  location /a/ {\n   proxy_pass http://later/;\n  }\n"
                           "  location /b {\n   proxy_pass http://127.0.0.1:8080;\n  }\n"
                           "  location ^~ /c/ {\n   proxy_pass http://127.0.0.1:8080/v1?x=1;\n  }\n"
                           "  location = /d/ {\n   proxy_pass http://127.0.0.1:80;\n  }\n"
                           "  location ~* \\.php$ {\n   proxy_pass http://[::1]:9000;\n  }\n"
                           "  location /e/ {\n   return 204;\n  }\n"
                           " }\n"
                           " upstream later {\n  server 127.0.0.1:7000 weight=3 max_fails=2 "
                           "fail_timeout=30s backup;\n  server 127.0.0.2 down;\n"
                           "  keepalive_timeout 5s;\n  keepalive_time 2h;\n"
                           "  keepalive_requests 50;\n }\n"
                           "}\n");
    pv_http_conf_t *h = c->http;
    pv_location_t **l = h->servers[0]->locations;
    assert_int_equal(h->nupstreams, 4);
    pv_upstream_conf_t *later = h->upstreams[0];
    assert_string_equal(later->name, "later");
    assert_int_equal(later->implicit, 0);
    assert_int_equal(later->nservers, 2);
    /* primaries first, then the backups */
    assert_int_equal(later->nprimary, 1);
    assert_string_equal(later->servers[1].text, "127.0.0.1:7000");
    assert_int_equal(later->servers[1].weight, 3);
    assert_int_equal(later->servers[1].max_fails, 2);
    assert_int_equal(later->servers[1].fail_timeout, 30000);
    assert_int_equal(later->servers[1].backup, 1);
    assert_string_equal(later->servers[0].text, "127.0.0.2:80");
    assert_int_equal(later->servers[0].down, 1);
    assert_int_equal(later->servers[0].weight, 1);
    assert_int_equal(later->servers[0].fail_timeout, 10000);
    assert_int_equal(later->keepalive, 0);
    assert_int_equal(later->keepalive_timeout, 5000);
    assert_int_equal(later->keepalive_time, 7200000);
    assert_int_equal(later->keepalive_requests, 50);

    assert_ptr_equal(l[0]->proxy_pass->upstream, later);
    assert_string_equal(l[0]->proxy_pass->proxy_host.p, "later");
    assert_int_equal(l[0]->proxy_pass->has_uri, 1);
    assert_string_equal(l[0]->proxy_pass->uri.p, "/");
    assert_int_equal(l[0]->auto_redirect, 1);

    pv_upstream_conf_t *imp = l[1]->proxy_pass->upstream;
    assert_string_equal(imp->name, "127.0.0.1:8080");
    assert_int_equal(imp->implicit, 1);
    assert_int_equal(imp->keepalive, 0);
    assert_int_equal(imp->keepalive_requests, 1000);
    assert_int_equal(imp->keepalive_timeout, 60000);
    assert_int_equal(imp->keepalive_time, 3600000);
    assert_int_equal(imp->index, 1);
    assert_int_equal(later->index, 0);
    assert_string_equal(l[1]->proxy_pass->proxy_host.p, "127.0.0.1:8080");
    assert_int_equal(l[1]->proxy_pass->has_uri, 0);
    assert_int_equal(l[1]->auto_redirect, 0);

    assert_ptr_equal(l[2]->proxy_pass->upstream, imp);
    assert_string_equal(l[2]->proxy_pass->uri.p, "/v1?x=1");
    assert_int_equal(l[2]->match, PV_LOC_PREFIX_STOP);
    assert_int_equal(l[2]->auto_redirect, 1);

    assert_string_equal(l[3]->proxy_pass->proxy_host.p, "127.0.0.1");
    assert_string_equal(l[3]->proxy_pass->upstream->name, "127.0.0.1:80");
    /* NGINX sets auto_redirect on any location whose name ends in '/',
     * exact ones included (ngx_http_core_find_static_location uses it) */
    assert_int_equal(l[3]->auto_redirect, 1);

    assert_string_equal(l[4]->proxy_pass->proxy_host.p, "[::1]:9000");
    assert_string_equal(l[4]->proxy_pass->upstream->name, "[::1]:9000");
    assert_string_equal(l[4]->proxy_pass->upstream->servers[0].text, "[::1]:9000");
    assert_int_equal(l[4]->auto_redirect, 0);

    assert_null(l[5]->proxy_pass);
    assert_int_equal(l[5]->rw.ops[0].code, 204);
    assert_int_equal(l[5]->rw.ops[0].has_text, 0);
    assert_int_equal(l[5]->auto_redirect, 0);
    pv_conf_unref(c);
}

static void test_localhost_resolves(void **state)
{
    pv_conf_t *c = load_ok("http {\n upstream u {\n  server localhost:9000;\n }\n}\n");
    pv_upstream_conf_t *u = c->http->upstreams[0];
    assert_true(u->nservers >= 1);
    assert_string_equal(u->servers[0].text, "127.0.0.1:9000");
    pv_conf_unref(c);
}

/* ---- server names, locations, return ---- */

static void test_server_names(void **state)
{
    pv_conf_t *c = load_ok(HTTP_SRV("  server_name Example.COM *.Wild.org .both.net www.tail.*;\n"
                                    "  server_name \"\" ~^api\\d+\\.x$ ~^Caps$;"));
    pv_server_t *s = c->http->servers[0];
    assert_int_equal(s->nnames, 8);
    assert_int_equal(s->names[0].kind, PV_SN_EXACT);
    assert_string_equal(s->names[0].name.p, "example.com");
    assert_int_equal(s->names[1].kind, PV_SN_WILD_HEAD);
    assert_string_equal(s->names[1].name.p, ".wild.org");
    assert_int_equal(s->names[2].kind, PV_SN_EXACT);
    assert_string_equal(s->names[2].name.p, "both.net");
    assert_int_equal(s->names[3].kind, PV_SN_WILD_HEAD);
    assert_string_equal(s->names[3].name.p, ".both.net");
    assert_int_equal(s->names[4].kind, PV_SN_WILD_TAIL);
    assert_string_equal(s->names[4].name.p, "www.tail.");
    assert_int_equal(s->names[5].kind, PV_SN_EXACT);
    assert_int_equal(s->names[5].name.len, 0);
    assert_int_equal(s->names[6].kind, PV_SN_REGEX);
    assert_string_equal(s->names[6].name.p, "^api\\d+\\.x$");
    assert_non_null(s->names[6].re);
    assert_int_equal(s->names[7].kind, PV_SN_REGEX);
    assert_int_equal(c->nregexes, 2);
    pv_conf_unref(c);
}

static void test_locations_and_return(void **state)
{
    pv_conf_t *c = load_ok(HTTP_SRV("  return 301 https://$host$request_uri;\n"
                                    "  location / {\n  }\n"
                                    "  location = /exact {\n   return 200 \"hi\\n\";\n  }\n"
                                    "  location ^~ /static/ {\n   internal;\n  }\n"
                                    "  location ~ ^/re/(\\d+)$ {\n   return http://x/$uri;\n  }\n"
                                    "  location ~* \\.JPG$ {\n  }\n"
                                    "  location ~*\\.png$ {\n  }\n"
                                    "  location =/glued {\n  }"));
    pv_server_t *s = c->http->servers[0];
    assert_int_equal(s->rw.ops[0].code, 301);
    assert_int_equal(s->rw.ops[0].has_text, 1);
    assert_int_equal(s->rw.ops[0].value.nparts, 3);
    assert_string_equal(s->rw.ops[0].value.parts[0].text.p, "https://");
    assert_ptr_equal(s->rw.ops[0].value.parts[1].var, var_entry("host"));
    assert_ptr_equal(s->rw.ops[0].value.parts[2].var, var_entry("request_uri"));
    assert_int_equal(s->nlocations, 7);
    pv_location_t **l = s->locations;
    assert_int_equal(l[0]->match, PV_LOC_PREFIX);
    assert_string_equal(l[0]->name.p, "/");
    assert_int_equal(l[1]->match, PV_LOC_EXACT);
    assert_int_equal(l[1]->rw.ops[0].code, 200);
    assert_int_equal(l[1]->rw.ops[0].value.is_const, 1);
    assert_string_equal(l[1]->rw.ops[0].value.parts[0].text.p, "hi\n");
    assert_int_equal(l[2]->match, PV_LOC_PREFIX_STOP);
    assert_int_equal(l[2]->internal, 1);
    assert_int_equal(l[3]->match, PV_LOC_REGEX);
    assert_non_null(l[3]->re);
    assert_int_equal(l[3]->rw.ops[0].code, 302);
    assert_int_equal(l[4]->match, PV_LOC_REGEX_ICASE);
    assert_string_equal(l[4]->name.p, "\\.JPG$");
    assert_int_equal(l[5]->match, PV_LOC_REGEX_ICASE);
    assert_string_equal(l[5]->name.p, "\\.png$");
    assert_int_equal(l[6]->match, PV_LOC_EXACT);
    assert_string_equal(l[6]->name.p, "/glued");
    assert_int_equal(l[2]->src.line, 10);
    pv_conf_unref(c);
}

/* ---- log_format and compiled values ---- */

static void test_log_format(void **state)
{
    pv_conf_t *c = load_ok("http {\n log_format j escape=json '{\"s\":$status,'\n"
                           "   '\"u\":\"$upstream_addr\"}';\n"
                           " log_format plain 'x';\n"
                           " log_format none escape=none $msec;\n"
                           " server {\n  access_log /tmp/j.log j;\n }\n}\n");
    pv_http_conf_t *h = c->http;
    assert_int_equal(h->nformats, 6); /* combined, json, otel and the three */
    pv_log_format_t *comb = h->formats[0];
    assert_string_equal(comb->name, "combined");
    assert_int_equal(comb->escape, PV_ESCAPE_DEFAULT);
    assert_int_equal(comb->value.is_const, 0);
    assert_ptr_equal(comb->value.parts[0].var, var_entry("remote_addr"));
    assert_string_equal(h->formats[1]->name, "json");
    assert_int_equal(h->formats[1]->escape, PV_ESCAPE_JSON);
    assert_string_equal(h->formats[2]->name, "otel");
    pv_log_format_t *j = h->formats[3];
    assert_int_equal(j->escape, PV_ESCAPE_JSON);
    assert_int_equal(j->value.nparts, 5);
    assert_string_equal(j->value.parts[0].text.p, "{\"s\":");
    assert_ptr_equal(j->value.parts[1].var, var_entry("status"));
    assert_string_equal(j->value.parts[2].text.p, ",\"u\":\"");
    assert_ptr_equal(j->value.parts[3].var, var_entry("upstream_addr"));
    assert_string_equal(j->value.parts[4].text.p, "\"}");
    assert_int_equal(h->formats[4]->value.is_const, 1);
    assert_int_equal(h->formats[5]->escape, PV_ESCAPE_NONE);
    assert_ptr_equal(h->servers[0]->conf.access_logs[0].format, j);
    pv_conf_unref(c);
    /* a log_format named json replaces the ready-made one, in its place */
    c = load_ok("http {\n server {\n  access_log /tmp/j.log json;\n }\n log_format json 'mine';\n}\n");
    assert_int_equal(c->http->nformats, 3);
    assert_string_equal(c->http->formats[1]->name, "json");
    assert_int_equal(c->http->formats[1]->value.is_const, 1);
    assert_ptr_equal(c->http->servers[0]->conf.access_logs[0].format, c->http->formats[1]);
    pv_conf_unref(c);
}

static void test_cv_compile(void **state)
{
    pv_arena_t a;
    pv_cv_t cv;
    char e[128];
    pv_arena_init(&a, 0);

    assert_int_equal(pv_cv_compile(&cv, &a, "", 0, e, sizeof(e)), PV_OK);
    assert_int_equal(cv.nparts, 0);
    assert_int_equal(cv.is_const, 1);
    assert_int_equal(cv.parts[0].text.len, 0);

    assert_int_equal(pv_cv_compile(&cv, &a, "plain text", 10, e, sizeof(e)), PV_OK);
    assert_int_equal(cv.nparts, 1);
    assert_int_equal(cv.is_const, 1);
    assert_string_equal(cv.parts[0].text.p, "plain text");

    const char *s = "$Remote_Addr, ${http_x_real_IP}x$sent_http_content_type$arg_Page$1";
    assert_int_equal(pv_cv_compile(&cv, &a, s, strlen(s) - 2, e, sizeof(e)), PV_OK);
    assert_int_equal(cv.is_const, 0);
    assert_int_equal(cv.nparts, 6);
    assert_ptr_equal(cv.parts[0].var, var_entry("remote_addr"));
    assert_string_equal(cv.parts[1].text.p, ", ");
    assert_ptr_equal(cv.parts[2].var, var_entry("http_"));
    assert_string_equal(cv.parts[2].text.p, "x-real-ip");
    assert_string_equal(cv.parts[3].text.p, "x");
    assert_ptr_equal(cv.parts[4].var, var_entry("sent_http_"));
    assert_string_equal(cv.parts[4].text.p, "content-type");
    assert_ptr_equal(cv.parts[5].var, var_entry("arg_"));
    assert_string_equal(cv.parts[5].text.p, "page");

    static const char *const names[] = {
        "remote_port", "binary_remote_addr", "proxy_add_x_forwarded_for", "scheme", "uri",
        "document_uri", "args", "query_string", "is_args", "request_method", "request",
        "request_id", "server_port", "server_addr", "server_name", "server_protocol",
        "proxy_host", "proxy_port", "upstream_status", "request_time", "upstream_response_time",
        "upstream_connect_time", "time_iso8601", "time_local", "body_bytes_sent", "bytes_sent",
        "request_length", "content_length", "content_type", "remote_user", "connection",
        "connection_requests", "pid", "hostname", "nginx_version"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "$%s", names[i]);
        assert_int_equal(pv_cv_compile(&cv, &a, buf, (size_t)n, e, sizeof(e)), PV_OK);
        assert_int_equal(cv.nparts, 1);
        assert_ptr_equal(cv.parts[0].var, var_entry(names[i]));
    }

    assert_int_equal(pv_cv_compile(&cv, &a, "a $foo", 6, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "unknown \"foo\" variable");
    assert_int_equal(pv_cv_compile(&cv, &a, "a $", 3, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "invalid variable name");
    assert_int_equal(pv_cv_compile(&cv, &a, "$-x", 3, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "invalid variable name");
    assert_int_equal(pv_cv_compile(&cv, &a, "${}", 3, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "invalid variable name");
    assert_int_equal(pv_cv_compile(&cv, &a, "${host", 6, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "the closing bracket in \"host\" variable is missing");
    /* a prefix alone names the empty field, as in NGINX */
    assert_int_equal(pv_cv_compile(&cv, &a, "$http_", 6, e, sizeof(e)), PV_OK);
    assert_int_equal(pv_cv_compile(&cv, &a, "$nosuch_", 8, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "unknown \"nosuch_\" variable");
    pv_arena_free(&a);
}

/* The config knows the variables only once they are registered: before
 * that every name is unknown, even in the built-in "combined" format. */
static void test_cv_unregistered(void **state)
{
    pv_arena_t a;
    pv_cv_t cv;
    char e[128];
    pv_arena_init(&a, 0);

    pv_cv_vars(NULL, NULL);
    assert_int_equal(pv_cv_compile(&cv, &a, "$host", 5, e, sizeof(e)), PV_ERR);
    assert_string_equal(e, "unknown \"host\" variable (no variables are registered)");
    assert_int_equal(pv_cv_compile(&cv, &a, "plain", 5, e, sizeof(e)), PV_OK);
    expect_err("http {\n}\n",
               "unknown \"remote_addr\" variable (no variables are registered)", 1);

    pv_http_vars_init();
    pv_http_vars_init(); /* again: harmless */
    assert_int_equal(pv_cv_compile(&cv, &a, "$host", 5, e, sizeof(e)), PV_OK);
    assert_ptr_equal(cv.parts[0].var, var_entry("host"));
    pv_conf_unref(load_ok("http {\n}\n"));
    pv_arena_free(&a);
}

/* ---- value syntax ---- */

static int64_t msec(const char *s)
{
    return pv_conf_parse_msec((pv_str_t){s, strlen(s)});
}

static int64_t size(const char *s)
{
    return pv_conf_parse_size((pv_str_t){s, strlen(s)});
}

static void test_value_syntax(void **state)
{
    assert_int_equal(msec("60"), 60000);
    assert_int_equal(msec("0"), 0);
    assert_int_equal(msec("500ms"), 500);
    assert_int_equal(msec("1m30s"), 90000);
    assert_int_equal(msec("1h 30m"), 5400000);
    assert_int_equal(msec("1m 30"), 90000);
    assert_int_equal(msec("1d"), 86400000);
    assert_int_equal(msec("2w"), 14 * 86400000LL);
    assert_int_equal(msec("1M"), 30 * 86400000LL);
    assert_int_equal(msec("1y"), 365 * 86400000LL);
    assert_int_equal(msec("1s 500ms"), 1500);
    assert_int_equal(msec(""), -1);
    assert_int_equal(msec("s"), -1);
    assert_int_equal(msec("30s1m"), -1);
    assert_int_equal(msec("1h1h"), -1);
    assert_int_equal(msec("1x"), -1);
    assert_int_equal(msec("-1"), -1);
    assert_int_equal(msec("99999999999999999999"), -1);
    assert_int_equal(size("0"), 0);
    assert_int_equal(size("512"), 512);
    assert_int_equal(size("8k"), 8192);
    assert_int_equal(size("8K"), 8192);
    assert_int_equal(size("1m"), 1048576);
    assert_int_equal(size("2G"), 2147483648LL);
    assert_int_equal(size("k"), -1);
    assert_int_equal(size("1.5m"), -1);
    assert_int_equal(size("1t"), -1);
}

/* ---- auto worker count ---- */

static int real_affinity(void)
{
    char why[128];
    return pv_conf_auto_workers("/nonexistent-root", why, sizeof(why));
}

static void test_auto_workers(void **state)
{
    char root[300], why[200];
    int aff = real_affinity();
    assert_true(aff >= 1);

    snprintf(root, sizeof(root), "%s/v2", dir);
    put("v2/proc/self/cgroup", "0::/kube/pod1\n");
    put("v2/sys/fs/cgroup/kube/pod1/cpu.max", "max 100000\n");
    put("v2/sys/fs/cgroup/kube/cpu.max", "50000 100000\n");
    put("v2/sys/fs/cgroup/cpu.max", "max 100000\n");
    assert_int_equal(pv_conf_auto_workers(root, why, sizeof(why)), 1);
    char want[200];
    snprintf(want, sizeof(want), "cgroup cpu.max 50000/100000 -> 1, affinity %d CPUs", aff);
    assert_string_equal(why, want);

    put("v2/sys/fs/cgroup/kube/cpu.max", "max 100000\n");
    put("v2/sys/fs/cgroup/kube/pod1/cpu.max", "150000 100000\n");
    int n = pv_conf_auto_workers(root, why, sizeof(why));
    assert_int_equal(n, aff < 2 ? aff : 2);
    assert_non_null(strstr(why, "cgroup cpu.max 150000/100000 -> 2"));

    put("v2/sys/fs/cgroup/kube/pod1/cpu.max", "max 100000\n");
    assert_int_equal(pv_conf_auto_workers(root, why, sizeof(why)), aff);
    snprintf(want, sizeof(want), "no cgroup cpu quota, affinity %d CPUs", aff);
    assert_string_equal(why, want);

    /* a container seeing its own cgroup as the root */
    snprintf(root, sizeof(root), "%s/v2root", dir);
    put("v2root/proc/self/cgroup", "0::/\n");
    put("v2root/sys/fs/cgroup/cpu.max", "100000 100000\n");
    assert_int_equal(pv_conf_auto_workers(root, why, sizeof(why)), 1);

    snprintf(root, sizeof(root), "%s/v1", dir);
    put("v1/proc/self/cgroup", "5:memory:/x\n4:cpu,cpuacct:/docker/abc\n");
    put("v1/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put("v1/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put("v1/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n");
    put("v1/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    assert_int_equal(pv_conf_auto_workers(root, why, sizeof(why)), 1);
    assert_non_null(strstr(why, "cpu.cfs_quota_us 100000/100000 -> 1"));

    snprintf(root, sizeof(root), "%s/v1b", dir);
    put("v1b/proc/self/cgroup", "3:cpu:/\n");
    put("v1b/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
    put("v1b/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    assert_int_equal(pv_conf_auto_workers(root, why, sizeof(why)), aff);
}

/* ---- the reference gateway ---- */

static const char seed_conf[] =
    "# The gateway configuration from the design brief, verbatim.\n"
    "http {\n"
    "    # Optimize for high concurrency\n"
    "    keepalive_timeout 65;\n"
    "    keepalive_requests 100000;\n"
    "\n"
    "    upstream auth_service {\n"
    "        # The 'keepalive' directive is critical here.\n"
    "        # It keeps 32 idle connections open to the upstream.\n"
    "        server 127.0.0.5:8080;\n"
    "        keepalive 32;\n"
    "    }\n"
    "\n"
    "    upstream inventory_service {\n"
    "        server 127.0.0.6:8080;\n"
    "        keepalive 32;\n"
    "    }\n"
    "\n"
    "    server {\n"
    "        listen 80;\n"
    "        location /api/auth/ {\n"
    "            proxy_pass http://auth_service/;\n"
    "            # strict HTTP/1.1 is required for keepalive\n"
    "            proxy_http_version 1.1;\n"
    "            # Clear the Connection header to persist the link\n"
    "            proxy_set_header Connection \"\";\n"
    "            \n"
    "            proxy_set_header X-Real-IP $remote_addr;\n"
    "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    "        }\n"
    "    }\n"
    "}\n";

static void test_seed_config(void **state)
{
    pv_conf_t *c = load_ok(seed_conf);
    pv_http_conf_t *h = c->http;
    assert_int_equal(h->nupstreams, 2);
    pv_upstream_conf_t *auth = h->upstreams[0];
    assert_string_equal(auth->name, "auth_service");
    assert_int_equal(auth->keepalive, 32);
    assert_int_equal(auth->nservers, 1);
    assert_string_equal(auth->servers[0].text, "127.0.0.5:8080");
    assert_int_equal(auth->src.line, 7);
    assert_string_equal(h->upstreams[1]->servers[0].text, "127.0.0.6:8080");
    assert_int_equal(h->upstreams[1]->index, 1);
    assert_int_equal(h->nlistens, 1);
    assert_string_equal(h->listens[0].listen.text, "0.0.0.0:80");
    pv_server_t *s = h->servers[0];
    assert_int_equal(s->conf.keepalive_timeout, 65000);
    assert_int_equal(s->conf.keepalive_requests, 100000);
    pv_location_t *loc = s->locations[0];
    assert_string_equal(loc->name.p, "/api/auth/");
    assert_ptr_equal(loc->proxy_pass->upstream, auth);
    assert_string_equal(loc->proxy_pass->proxy_host.p, "auth_service");
    assert_string_equal(loc->proxy_pass->uri.p, "/");
    assert_int_equal(loc->auto_redirect, 1);
    assert_int_equal(loc->conf.proxy_http_version, 11);
    assert_int_equal(loc->conf.keepalive_timeout, 65000);
    assert_int_equal(loc->conf.nset_headers, 3);
    pv_set_header_t *sh = loc->conf.set_headers;
    assert_string_equal(sh[0].name.p, "Connection");
    assert_int_equal(sh[0].value.is_const, 1);
    assert_int_equal(sh[0].value.nparts, 0);
    assert_string_equal(sh[1].name.p, "X-Real-IP");
    assert_ptr_equal(sh[1].value.parts[0].var, var_entry("remote_addr"));
    assert_ptr_equal(sh[2].value.parts[0].var, var_entry("proxy_add_x_forwarded_for"));
    pv_conf_unref(c);
}

static void test_seed_config_private_addresses(void **state)
{
    /* Numeric addresses are parsed, never looked up, so 10.x loads offline. */
    char text[sizeof(seed_conf)];
    memcpy(text, seed_conf, sizeof(seed_conf));
    for (char *p = text; (p = strstr(p, "127.0.0.")); p += 8)
        memcpy(p, "10.10.0.", 8);
    pv_conf_t *c = pv_conf_load_text("/etc/portvakt/gw.conf", text, strlen(text), PV_CONF_F_NO_DNS,
                                     err, sizeof(err));
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->http->upstreams[0]->servers[0].text, "10.10.0.5:8080");
    assert_string_equal(c->prefix, "/etc/portvakt");
    pv_conf_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_directive_errors),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_variable_errors),
        cmocka_unit_test(test_proxy_pass_errors),
        cmocka_unit_test(test_unknown_upstream_host),
        cmocka_unit_test(test_listen_conflicts),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_missing_main_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_main_directives),
        cmocka_unit_test(test_listen_groups),
        cmocka_unit_test(test_http2_settings),
        cmocka_unit_test(test_proxy_pass_forms),
        cmocka_unit_test(test_localhost_resolves),
        cmocka_unit_test(test_server_names),
        cmocka_unit_test(test_locations_and_return),
        cmocka_unit_test(test_log_format),
        cmocka_unit_test(test_cv_compile),
        cmocka_unit_test(test_cv_unregistered),
        cmocka_unit_test(test_value_syntax),
        cmocka_unit_test(test_auto_workers),
        cmocka_unit_test(test_seed_config),
        cmocka_unit_test(test_seed_config_private_addresses),
    };
    return cmocka_run_group_tests_name("conf_parser", tests, setup, teardown);
}
