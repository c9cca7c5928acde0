/* portvakt command line, in NGINX's manner. */
#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config/conf.h"
#include "core/counters.h"
#include "core/log.h"
#include "core/net.h"
#include "doctor/doctor.h"
#include "doctor/resmap.h"
#include "http/access.h"
#include "http/accesslog.h"
#include "http/fcache.h"
#include "http/h2.h"
#include "http/server.h"
#include "http/realip.h"
#include "http/ssl.h"
#include "http/vars.h"
#include "proc/lsocks.h"
#include "proc/worker.h"
#include "http/static.h"
#include "http/mirror.h"
#include "http/stats.h"
#include "proxy/probe.h"
#include "proxy/report.h"
#include "proxy/proxy.h"
#include "proxy/grpc.h"
#include "proxy/fastcgi.h"
#include "upstream/discovery.h"
#include "upstream/dynamic.h"
#include "upstream/health.h"
#include "upstream/upstream.h"

/* What every worker runs, in hook order: counters, request metrics
 * (before the upstream pools, which count into them) and the access log
 * writer first, the HTTP side before the upstream pools its requests use. */
static pv_module_t *const modules[] = {
    &pv_counters_module, &pv_stats_module, &pv_accesslog_module, &pv_http_module, &pv_http_ssl_module,
    &pv_http_realip_module, &pv_h2_module, &pv_access_module, &pv_proxy_module, &pv_grpc_module, &pv_fastcgi_module, &pv_probe_module,
    &pv_report_module,
    &pv_static_module, &pv_mirror_module, &pv_upstream_module, &pv_upstream_dyn_module,
    &pv_upstream_discovery_module, &pv_health_module, NULL,
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: portvakt [-?hvVtTq] [-s signal] [-c filename] [-p prefix] [-e filename]\n"
               "                [-g directives]\n"
               "       portvakt doctor [-c filename] [--json | --sysctl] [--sys-root dir]\n"
               "       portvakt doctor --residency -c filename [--json]\n"
               "       portvakt residency -c filename [--json | --dot]\n\n"
               "Options:\n"
               "  -?,-h         : this help\n"
               "  -v            : show version and exit\n"
               "  -V            : show version and build details and exit\n"
               "  -t            : test configuration and exit\n"
               "  -T            : test configuration, dump it and exit\n"
               "  -q            : suppress non-error messages during configuration testing\n"
               "  -s signal     : send signal to a running instance: stop, quit, reopen, reload\n"
               "  -p prefix     : set prefix path (default: the configuration file's directory)\n"
               "  -e filename   : set error log file (default: stderr)\n"
               "  -c filename   : set configuration file (default: " PV_DEFAULT_CONF ")\n"
               "  -g directives : set global directives out of configuration file\n");
}

/* NGINX's http modules, as its configure script names them, and whether
 * portvakt implements each. `-V` turns this table into NGINX's
 * "configure arguments:" line: a module NGINX builds by default that
 * portvakt lacks is `--without-NAME`, an optional one it has is
 * `--with-NAME`. Tools that read that line (NGINX's test suite) then see
 * a missing module as missing. The README lists the same table. */
static const struct {
    const char *name;
    int by_default; /* NGINX builds it unless --without-NAME */
    int have;       /* portvakt implements it */
} nginx_modules[] = {
    {"http_proxy_module", 1, 1},           {"http_upstream_keepalive_module", 1, 1},
    {"http_auth_basic_module", 1, 1},      {"http_limit_req_module", 1, 1},
    {"http_limit_conn_module", 1, 1},      {"http_auth_request_module", 0, 1},
    {"http_access_module", 1, 1},          {"http_rewrite_module", 1, 1},
    {"http_map_module", 1, 1},             {"http_geo_module", 1, 1},
    {"http_split_clients_module", 1, 1},   {"http_referer_module", 1, 0},
    {"http_charset_module", 1, 1},         {"http_gzip_module", 1, 1},
    {"http_ssi_module", 1, 1},             {"http_userid_module", 1, 0},
    {"http_mirror_module", 1, 1},          {"http_autoindex_module", 1, 1},
    {"http_fastcgi_module", 1, 1},         {"http_uwsgi_module", 1, 0},
    {"http_scgi_module", 1, 0},            {"http_grpc_module", 1, 1},
    {"http_memcached_module", 1, 0},       {"http_empty_gif_module", 1, 0},
    {"http_browser_module", 1, 0},         {"http_upstream_hash_module", 1, 1},
    {"http_upstream_ip_hash_module", 1, 1}, {"http_upstream_least_conn_module", 1, 1},
    {"http_upstream_random_module", 1, 1}, {"http_upstream_zone_module", 1, 1},
    {"http_gunzip_module", 0, 1},          {"http-cache", 1, 1},
    {"http_ssl_module", 0, 1},             {"http_v2_module", 0, 1},
    {"http_realip_module", 0, 1},          {"http_gzip_static_module", 0, 1},
    {"http_flv_module", 0, 1},             {"http_sub_module", 0, 1},
    {"http_addition_module", 0, 1},
};

static void version(int full)
{
    fprintf(stderr, "portvakt version: " PV_NAME "/" PV_VERSION "\n");
    if (!full)
        return;
    /* the release whose behaviour portvakt follows, in the form tools
     * that compare NGINX versions read */
    fprintf(stderr, "nginx version: nginx/" PV_NGINX_VERSION " (followed by " PV_NAME ")\n");
    fprintf(stderr, "built with %s, llhttp %d.%d.%d, pcre2\n", OPENSSL_VERSION_TEXT, LLHTTP_VERSION_MAJOR,
            LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
#ifdef __VERSION__
    fprintf(stderr, "built by cc " __VERSION__ "\n");
#endif
    fprintf(stderr, "TLS SNI support enabled\n");
    fprintf(stderr, "configure arguments:");
    for (size_t i = 0; i < PV_NELEM(nginx_modules); i++)
        if (nginx_modules[i].by_default != nginx_modules[i].have)
            fprintf(stderr, " --with%s-%s", nginx_modules[i].have ? "" : "out", nginx_modules[i].name);
    fprintf(stderr, "\n");
}

/* `-s SIGNAL`: find the running instance through the pid file. */
static int send_signal(pv_conf_t *conf, const char *name)
{
    int sig;
    if (strcmp(name, "stop") == 0)
        sig = SIGTERM;
    else if (strcmp(name, "quit") == 0)
        sig = SIGQUIT;
    else if (strcmp(name, "reload") == 0)
        sig = SIGHUP;
    else if (strcmp(name, "reopen") == 0)
        sig = SIGUSR1;
    else {
        fprintf(stderr, "portvakt: [emerg] invalid option: \"-s %s\"\n", name);
        return 1;
    }
    if (!conf->pid_path) {
        fprintf(stderr, "portvakt: [error] no \"pid\" file is configured in %s\n", conf->path);
        return 1;
    }
    FILE *f = fopen(conf->pid_path, "r");
    if (!f) {
        fprintf(stderr, "portvakt: [error] open() \"%s\" failed (%d: %s)\n", conf->pid_path, errno, strerror(errno));
        return 1;
    }
    long pid = 0;
    int ok = fscanf(f, "%ld", &pid) == 1 && pid > 0;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "portvakt: [error] invalid PID number in \"%s\"\n", conf->pid_path);
        return 1;
    }
    if (kill((pid_t)pid, sig) < 0) {
        fprintf(stderr, "portvakt: [error] kill(%ld, %d) failed (%d: %s)\n", pid, sig, errno, strerror(errno));
        return 1;
    }
    return 0;
}

static int write_pid(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

/* worker_rlimit_nofile: raise RLIMIT_NOFILE before anything is opened. */
static void set_nofile(pv_conf_t *conf)
{
    struct rlimit rl;
    if (conf->worker_rlimit_nofile > 0) {
        rl.rlim_cur = rl.rlim_max = (rlim_t)conf->worker_rlimit_nofile;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            struct rlimit have;
            getrlimit(RLIMIT_NOFILE, &have);
            rl.rlim_max = have.rlim_max;
            rl.rlim_cur = PV_MIN((rlim_t)conf->worker_rlimit_nofile, have.rlim_max);
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < (rlim_t)conf->worker_rlimit_nofile)
                pv_log(PV_LOG_ALERT, "setrlimit(RLIMIT_NOFILE, %lld) failed (%d: %s); the limit stays %llu",
                       (long long)conf->worker_rlimit_nofile, errno, strerror(errno),
                       (unsigned long long)rl.rlim_cur);
        }
    }
}

/* SIGHUP: load and check the new config here, off the workers' paths;
 * when it is good, open the listen addresses it adds, hand it to every
 * worker, wait until each has switched, then close the addresses it
 * dropped. A bad config is logged and the running one keeps serving. */
/* A reload's result, for the metrics (the main thread's counter block). */
static void reload_counted(int ok)
{
    pv_count(ok ? PV_CTR_RELOADS : PV_CTR_RELOAD_FAILS);
    pv_count_set(PV_CTR_RELOAD_LAST_FAILED, !ok);
}

static void reload(const char *path, const pv_conf_opts_t *co, pv_conf_t **cur, pv_worker_t *workers,
                   int nworkers, pv_lsock_t **ls, int *nls)
{
    char err[1024];
    pv_conf_t *nc = pv_conf_load_opts(path, co, err, sizeof(err));
    if (!nc) {
        pv_log(PV_LOG_EMERG, "%s", err);
        pv_log(PV_LOG_ERR, "reload failed: the running configuration keeps serving");
        reload_counted(0);
        return;
    }
    if (nc->worker_processes != nworkers)
        pv_log(PV_LOG_NOTICE, "worker_processes %d takes effect at the next start; %d workers go on",
               nc->worker_processes, nworkers);
    if (pv_accesslog_open(nc, err, sizeof(err)) != 0 || pv_conf_temp_paths_make(nc, err, sizeof(err)) != 0 ||
        pv_fcache_start(nc, err, sizeof(err)) != 0) {
        pv_log(PV_LOG_EMERG, "%s", err);
        pv_log(PV_LOG_ERR, "reload failed: the running configuration keeps serving");
        reload_counted(0);
        pv_conf_unref(nc);
        return;
    }
    pv_lsock_t *nl = pv_lsocks_open(nc, nworkers, *ls, *nls);
    if (!nl) {
        pv_log(PV_LOG_ERR, "reload failed: the running configuration keeps serving");
        reload_counted(0);
        pv_conf_unref(nc);
        return;
    }
    pv_doctor_startup(nc);
    int ng = nc->http ? nc->http->nlistens : 0;
    int before[nworkers];
    for (int k = 0; k < nworkers; k++) {
        before[k] = atomic_load(&workers[k].reloads);
        pv_worker_reload(&workers[k], nc, pv_lsocks_for_worker(nl, ng, k));
    }
    for (int waited = 0; waited < 10000; waited++) {
        int pending = 0;
        for (int k = 0; k < nworkers; k++)
            pending += atomic_load(&workers[k].reloads) == before[k] && !atomic_load(&workers[k].finished);
        if (!pending)
            break;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pv_lsocks_close(*ls, *nls, nworkers, PV_LSOCKS_DROPPED); /* what is left there is no longer listened on */
    *ls = nl;
    *nls = ng;
    pv_conf_unref(*cur);
    *cur = nc;
    pv_log(PV_LOG_NOTICE, "configuration reloaded from %s", nc->path);
    reload_counted(1);
}

/* What the command line asked for. */
typedef struct opts_s {
    const char *conf_path; /* -c */
    const char *sig_name;  /* -s */
    int test_only;         /* -t, -T */
    int dump;              /* -T */
    int quiet;             /* -q */
    pv_conf_opts_t conf;   /* -p, -g, -e and the -T collector */
    int startup_log;       /* the -e file is open */
} opts_t;

/* The value of option c: the rest of its argument ("-pDIR") or the next
 * one ("-p DIR"); NULL with the message NGINX gives when it is missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *rest, char c)
{
    if (*rest)
        return rest;
    if (*i + 1 < argc)
        return argv[++*i];
    static const char *const what[] = {"p", "directory name", "c", "file name", "e", "file name",
                                       "g", "parameter", "s", "parameter"};
    const char *need = "parameter";
    for (size_t k = 0; k < PV_NELEM(what); k += 2)
        if (what[k][0] == c)
            need = what[k + 1];
    fprintf(stderr, "portvakt: [emerg] option \"-%c\" requires %s\n", c, need);
    return NULL;
}

/* NGINX's options: flags may be grouped ("-tq"); an option with a value
 * ends its group. Returns -1 to go on, else the exit status (-v, -V, -h
 * and errors end here). */
static int parse_args(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *p = argv[i];
        if (*p++ != '-' || !*p) {
            fprintf(stderr, "portvakt: [emerg] invalid option: \"%s\"\n", argv[i]);
            return 1;
        }
        while (*p) {
            char c = *p++;
            const char **to = NULL;
            switch (c) {
            case 'v':
            case 'V':
                version(c == 'V');
                return 0;
            case 'T':
                o->dump = 1;
                /* fall through */
            case 't':
                o->test_only = 1;
                continue;
            case 'q':
                o->quiet = 1;
                continue;
            case '?':
            case 'h':
                usage(stdout);
                return 0;
            case 'c': to = &o->conf_path; break;
            case 's': to = &o->sig_name; break;
            case 'p': to = &o->conf.prefix; break;
            case 'e': to = &o->conf.error_log; break;
            case 'g': to = &o->conf.params; break;
            default:
                fprintf(stderr, "portvakt: [emerg] invalid option: \"%c\"\n", c);
                usage(stderr);
                return 1;
            }
            if (!(*to = opt_value(argc, argv, &i, p, c)))
                return 1;
            break;
        }
    }
    if (o->sig_name && strcmp(o->sig_name, "stop") && strcmp(o->sig_name, "quit") &&
        strcmp(o->sig_name, "reopen") && strcmp(o->sig_name, "reload")) {
        fprintf(stderr, "portvakt: [emerg] invalid option: \"-s %s\"\n", o->sig_name);
        return 1;
    }
    return -1;
}

/* -T: every file the config reads, once, in the order read. */
typedef struct dump_s {
    struct dump_s *next;
    char *path;
    char *text;
    size_t len;
} dump_t;

static void dump_add(void *arg, const char *path, const char *text, size_t len)
{
    dump_t **tail = arg;
    for (; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->path, path) == 0)
            return;
    dump_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(path)) || !(d->text = malloc(len ? len : 1))) {
        if (d)
            free(d->path);
        free(d);
        return;
    }
    memcpy(d->text, text, len);
    d->len = len;
    *tail = d;
}

/* NGINX's -T output: "# configuration file PATH:", the text, a newline
 * (when print); the list is freed. */
static void dump_print(dump_t *d, int print)
{
    while (d) {
        dump_t *next = d->next;
        if (print) {
            printf("# configuration file %s:\n", d->path);
            fwrite(d->text, 1, d->len, stdout);
            printf("\n");
        }
        free(d->path);
        free(d->text);
        free(d);
        d = next;
    }
    fflush(stdout);
}

/* Create and start the workers, each with its listening sockets; a
 * failure here ends the process, since nothing serves yet. */
static pv_worker_t *start_workers(pv_conf_t *conf, pv_lsock_t *ls, int nls)
{
    int nworkers = conf->worker_processes;
    pv_counters_register(); /* the main thread counts reloads */
    pv_worker_t *workers = calloc((size_t)nworkers, sizeof(pv_worker_t));
    for (int i = 0; i < nworkers; i++) {
        int *fds = pv_lsocks_for_worker(ls, nls, i);
        if (!workers || !fds || pv_worker_init(&workers[i], i + 1, conf, fds, nls) != PV_OK) {
            pv_log(PV_LOG_EMERG, "cannot start worker %d (%d: %s)", i + 1, errno, strerror(errno));
            exit(1);
        }
        free(fds);
    }
    for (int i = 0; i < nworkers; i++)
        pthread_create(&workers[i].thread, NULL, pv_worker_main, &workers[i]);
    pv_log(PV_LOG_NOTICE, PV_NAME "/" PV_VERSION " started: %d worker%s%s%s%s", nworkers, nworkers == 1 ? "" : "s",
           conf->worker_processes_auto ? " (auto: " : "",
           conf->worker_processes_auto && conf->worker_processes_why ? conf->worker_processes_why : "",
           conf->worker_processes_auto ? ")" : "");
    return workers;
}

/* The main thread's life while workers run: signals, taken synchronously,
 * until every worker has finished. */
static void signal_loop(const opts_t *o, pv_conf_t **conf, pv_worker_t *workers, int nworkers,
                        pv_lsock_t **ls, int *nls, const sigset_t *set)
{
    int stopping = 0;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < nworkers; i++)
            alive += !atomic_load(&workers[i].finished);
        if (!alive)
            return;
        struct timespec ts = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGINT) {
            pv_log(PV_LOG_NOTICE, "signal %d (SIGINT) received, exiting", sig);
            sd_notify(0, "STOPPING=1");
            for (int i = 0; i < nworkers; i++)
                pv_worker_signal(&workers[i], PV_WCMD_STOP);
        } else if ((sig == SIGTERM || sig == SIGQUIT) && !stopping) {
            pv_log(PV_LOG_NOTICE, "signal %d (%s) received, shutting down gracefully", sig,
                   sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
            stopping = 1;
            sd_notify(0, "STOPPING=1");
            for (int i = 0; i < nworkers; i++)
                pv_worker_signal(&workers[i], PV_WCMD_QUIT);
        } else if (sig == SIGHUP && !stopping) {
            pv_log(PV_LOG_NOTICE, "signal %d (SIGHUP) received, reconfiguring", sig);
            sd_notify(0, "RELOADING=1");
            reload(o->conf_path, &o->conf, conf, workers, nworkers, ls, nls);
            sd_notify(0, "READY=1"); /* on the new config, or on the old one if it was refused */
        } else if (sig == SIGUSR1) {
            pv_log(PV_LOG_NOTICE, "signal %d (SIGUSR1) received, reopening logs", sig);
            pv_accesslog_reopen(); /* every sink, the error log's too; the writer makes the files */
            pv_log_reopen();
        }
    }
}

/* -e FILE: NGINX opens it before reading the config, so what goes wrong
 * there is in the file too. Relative to the prefix, else to the config
 * file's directory. Returns 1 when the file is open. */
static int open_startup_log(const opts_t *o)
{
    const char *e = o->conf.error_log;
    char path[4096];
    if (!e || strcmp(e, "stderr") == 0)
        return 0;
    const char *slash = strrchr(o->conf_path, '/');
    if (e[0] == '/')
        snprintf(path, sizeof(path), "%s", e);
    else if (o->conf.prefix)
        snprintf(path, sizeof(path), "%s/%s", o->conf.prefix, e);
    else if (slash)
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - o->conf_path), o->conf_path, e);
    else
        snprintf(path, sizeof(path), "%s", e);
    if (pv_log_open(path, PV_LOG_NOTICE) == 0)
        return 1;
    fprintf(stderr, "portvakt: [alert] could not open error log file: open() \"%s\" failed (%d: %s)\n", path,
            errno, strerror(errno));
    return 0;
}

/* Load and check the config; -t, -T and -s end here. Returns NULL when
 * the program is done, with *rc its exit status. */
static pv_conf_t *load_conf(opts_t *o, int *rc)
{
    char err[1024];
    dump_t *dump = NULL;
    if (o->dump) {
        o->conf.on_file = dump_add;
        o->conf.arg = &dump;
    }
    pv_conf_t *conf = pv_conf_load_opts(o->conf_path, &o->conf, err, sizeof(err));
    o->conf.on_file = NULL;
    *rc = 1;
    if (!conf) {
        fprintf(stderr, "portvakt: [emerg] %s\n", err);
        if (o->startup_log)
            pv_log(PV_LOG_EMERG, "%s", err);
        if (o->test_only)
            fprintf(stderr, "portvakt: configuration file %s test failed\n", o->conf_path);
        dump_print(dump, 0);
        return NULL;
    }
    if (o->test_only) {
        if (pv_lsocks_test(conf, err, sizeof(err)) != 0) {
            fprintf(stderr, "portvakt: [emerg] %s\n", err);
            if (o->startup_log)
                pv_log(PV_LOG_EMERG, "%s", err);
            fprintf(stderr, "portvakt: configuration file %s test failed\n", o->conf_path);
            dump_print(dump, 0);
            pv_conf_unref(conf);
            return NULL;
        }
        if (!o->quiet) {
            fprintf(stderr, "portvakt: the configuration file %s syntax is ok\n", conf->path);
            fprintf(stderr, "portvakt: configuration file %s test is successful\n", conf->path);
        }
        dump_print(dump, 1);
        pv_conf_unref(conf);
        *rc = 0;
        return NULL;
    }
    if (o->sig_name) {
        *rc = send_signal(conf, o->sig_name);
        pv_conf_unref(conf);
        return NULL;
    }
    return conf;
}

/* `daemon on`, as NGINX detaches: the parent exits at once with 0, the
 * child leads a new session with stdin and stdout on /dev/null, and
 * stderr goes to the error log when that is a file. Before any thread
 * exists. */
static int daemonize(const char *error_log)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    if (setsid() < 0)
        return -1;
    umask(0);
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
        return -1;
    if (fd > STDERR_FILENO)
        close(fd);
    if (error_log) {
        fd = open(error_log, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            return -1;
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o = {.conf_path = PV_DEFAULT_CONF};
    /* the variables are known before any config is read, doctor's too */
    pv_http_vars_init();
    pv_fcache_init();
    if (argc > 1 && strcmp(argv[1], "residency") == 0)
        return pv_residency_main(argc - 1, argv + 1);
    for (int i = 2; argc > 1 && strcmp(argv[1], "doctor") == 0 && i < argc; i++)
        if (strcmp(argv[i], "--residency") == 0)
            return pv_doctor_residency_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "doctor") == 0)
        return pv_doctor_main(argc - 1, argv + 1);
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    o.startup_log = open_startup_log(&o);
    pv_conf_t *conf = load_conf(&o, &rc);
    if (!conf)
        return rc;

    /* host limits are checked while diagnostics still go to stderr at
     * notice level, as NGINX reports what it finds at start */
    set_nofile(conf);
    if (conf->worker_processes_auto)
        pv_log(PV_LOG_NOTICE, "worker_processes auto: %d (%s)", conf->worker_processes,
               conf->worker_processes_why ? conf->worker_processes_why : "");
    pv_doctor_startup(conf);
    if (pv_log_open(conf->error_log_path, conf->error_log_level) < 0) {
        fprintf(stderr, "portvakt: [emerg] open() \"%s\" failed (%d: %s)\n", conf->error_log_path, errno,
                strerror(errno));
        return 1;
    }

    /* signals are taken synchronously by the main thread only */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int nworkers = conf->worker_processes;
    int nls = conf->http ? conf->http->nlistens : 0;
    if (pv_worker_modules(modules) != PV_OK)
        exit(1);
    /* listen errors still reach the terminal and the exit status when
     * `daemon on` detaches after them, as with NGINX */
    pv_lsock_t *ls = pv_lsocks_open(conf, nworkers, NULL, 0);
    if (!ls)
        exit(1);
    if (conf->daemon && daemonize(conf->error_log_path) < 0) {
        pv_log(PV_LOG_EMERG, "daemon() failed (%d: %s)", errno, strerror(errno));
        exit(1);
    }
    /* the pid file exists before the first connection can be accepted,
     * so whoever reaches the gateway can also signal it */
    char *pid_path = conf->pid_path ? strdup(conf->pid_path) : NULL;
    if (pid_path && write_pid(pid_path) < 0) {
        pv_log(PV_LOG_EMERG, "open() \"%s\" failed (%d: %s)", pid_path, errno, strerror(errno));
        pv_lsocks_close(ls, nls, nworkers, PV_LSOCKS_EXIT);
        exit(1);
    }
    char err[1024];
    /* temp directories, then the account change once everything root
     * may open is open: sockets, logs, the pid file (NGINX's workers) */
    if (pv_accesslog_start() != 0 || pv_log_use_ring(err, sizeof(err)) != 0 ||
        pv_accesslog_open(conf, err, sizeof(err)) != 0 || pv_conf_temp_paths_make(conf, err, sizeof(err)) != 0 ||
        pv_conf_drop_privileges(conf, err, sizeof(err)) != 0 || pv_fcache_start(conf, err, sizeof(err)) != 0) {
        pv_log_use_direct();
        pv_log(PV_LOG_EMERG, "%s", err);
        if (pid_path)
            unlink(pid_path);
        pv_lsocks_close(ls, nls, nworkers, PV_LSOCKS_EXIT);
        exit(1);
    }

    pv_worker_t *workers = start_workers(conf, ls, nls);
    /* systemd (Type=notify): serving now; a no-op without NOTIFY_SOCKET */
    sd_notify(0, "READY=1");
    signal_loop(&o, &conf, workers, nworkers, &ls, &nls, &set);
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
    pv_lsocks_close(ls, nls, nworkers, PV_LSOCKS_EXIT);
    for (int i = 0; i < nworkers; i++) {
        pv_loop_free(workers[i].loop);
        close(workers[i].evfd);
        free(workers[i].listeners);
    }
    free(workers);
    pv_log_use_direct(); /* the lines after this one are written at once */
    pv_accesslog_stop(); /* writes out what the rings hold */
    if (pid_path)
        unlink(pid_path);
    free(pid_path);
    pv_log(PV_LOG_NOTICE, "exit");
    pv_conf_unref(conf);
    return 0;
}
