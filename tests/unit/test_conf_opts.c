/* What the command line adds to a config (pv_conf_load_opts): -g
 * directives before the file, the -p prefix for relative paths (include
 * keeps the config file's directory), -e as the default error log, the
 * -T callback, and the daemon / master_process defaults. Files live in a
 * fresh temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/conf_int.h"

static char dir[256];
static char err[1024];

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

static pv_conf_t *load(const char *name, const pv_conf_opts_t *o)
{
    char path[512];
    if (name[0] == '/' || (o && o->prefix))
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    err[0] = '\0';
    return pv_conf_load_opts(path, o, err, sizeof(err));
}

static void expect_str(const char *got, const char *fmt, const char *arg)
{
    char want[600];
    snprintf(want, sizeof(want), fmt, arg);
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void test_params_come_first(void **state)
{
    put("main.conf", "events { worker_connections 64; }\n");
    pv_conf_opts_t o = {.params = "worker_processes 3; daemon off;"};
    pv_conf_t *c = load("main.conf", &o);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->worker_processes, 3);
    assert_int_equal(c->daemon, 0);
    pv_conf_unref(c);

    /* the file repeating a -g directive is the duplicate */
    put("dup.conf", "worker_processes 2;\n");
    assert_null(load("dup.conf", &o));
    char want[600];
    snprintf(want, sizeof(want), "\"worker_processes\" directive is duplicate in %s/dup.conf:1", dir);
    assert_string_equal(err, want);

    /* errors in -g say "in command line", without a line */
    pv_conf_opts_t bad = {.params = "no_such 1;"};
    assert_null(load("main.conf", &bad));
    assert_string_equal(err, "unknown directive \"no_such\" in command line");
    pv_conf_opts_t open = {.params = "daemon off"};
    assert_null(load("main.conf", &open));
    assert_string_equal(err, "unexpected end of file, expecting \";\" or \"}\" in command line");
}

static void test_prefix(void **state)
{
    put("conf/inc.conf", "pid logs/pv.pid;\n");
    put("conf/main.conf", "include inc.conf;\nerror_log logs/err.log;\n");
    char prefix[300];
    snprintf(prefix, sizeof(prefix), "%s/", dir); /* a trailing slash, as the suite passes it */
    pv_conf_opts_t o = {.prefix = prefix};
    pv_conf_t *c = load("conf/main.conf", &o);
    if (!c)
        fail_msg("%s", err);
    expect_str(c->path, "%s/conf/main.conf", dir);
    expect_str(c->prefix, "%s", dir);
    expect_str(c->pid_path, "%s/logs/pv.pid", dir);
    expect_str(c->error_log_path, "%s/logs/err.log", dir);
    pv_conf_unref(c);

    /* without -p, everything is relative to the config file's directory */
    put("conf/main2.conf", "pid logs/pv.pid;\n");
    c = load("conf/main2.conf", NULL);
    assert_non_null(c);
    expect_str(c->pid_path, "%s/conf/logs/pv.pid", dir);
    pv_conf_unref(c);
}

static void test_error_log_option(void **state)
{
    put("plain.conf", "worker_processes 1;\n");
    put("own.conf", "error_log own.log warn;\n");
    pv_conf_opts_t o = {.prefix = dir, .error_log = "e.log"};
    pv_conf_t *c = load("plain.conf", &o);
    assert_non_null(c);
    expect_str(c->error_log_path, "%s/e.log", dir);
    assert_int_equal(c->error_log_level, 3); /* error */
    pv_conf_unref(c);
    c = load("own.conf", &o);
    assert_non_null(c);
    expect_str(c->error_log_path, "%s/own.log", dir);
    pv_conf_unref(c);
    pv_conf_opts_t se = {.error_log = "stderr"};
    c = load("plain.conf", &se);
    assert_non_null(c);
    assert_null(c->error_log_path);
    pv_conf_unref(c);
}

typedef struct seen_s {
    int n;
    char paths[4][300];
    size_t lens[4];
} seen_t;

static void on_file(void *arg, const char *path, const char *text, size_t len)
{
    seen_t *s = arg;
    assert_true(s->n < 4);
    snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
    s->lens[s->n++] = len;
    (void)text;
}

static void test_each_file_is_reported(void **state)
{
    put("d/x.conf", "worker_processes 1;\n");
    put("d/y.conf", "pid y.pid;\n");
    put("dm.conf", "include d/*.conf;\n");
    seen_t s = {0};
    pv_conf_opts_t o = {.on_file = on_file, .arg = &s};
    pv_conf_t *c = load("dm.conf", &o);
    assert_non_null(c);
    pv_conf_unref(c);
    assert_int_equal(s.n, 3);
    expect_str(s.paths[0], "%s/dm.conf", dir);
    expect_str(s.paths[1], "%s/d/x.conf", dir);
    expect_str(s.paths[2], "%s/d/y.conf", dir);
    assert_int_equal(s.lens[1], strlen("worker_processes 1;\n"));
}

static void test_daemon_and_master_process(void **state)
{
    put("m.conf", "master_process off;\nworker_processes 4;\n");
    pv_conf_t *c = load("m.conf", NULL);
    assert_non_null(c);
    assert_int_equal(c->worker_processes, 1);
    assert_int_equal(c->master_process, 0);
    assert_int_equal(c->daemon, 0); /* portvakt's default; NGINX's is on */
    pv_conf_unref(c);
    put("d.conf", "daemon on;\n");
    c = load("d.conf", NULL);
    assert_non_null(c);
    assert_int_equal(c->daemon, 1);
    pv_conf_unref(c);
    put("bad.conf", "master_process maybe;\n");
    assert_null(load("bad.conf", NULL));
    assert_non_null(strstr(err, "it must be \"on\" or \"off\""));
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/pv-conf-opts-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_come_first),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_error_log_option),
        cmocka_unit_test(test_each_file_is_reported),
        cmocka_unit_test(test_daemon_and_master_process),
    };
    return cmocka_run_group_tests_name("conf_opts", tests, setup, teardown);
}
