/* portvakt command line, in NGINX's manner. */
#include <errno.h>
#include <llhttp.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/conf.h"
#include "core/log.h"
#include "core/net.h"
#include "core/worker.h"
#include "obs/accesslog.h"

#define PV_DEFAULT_CONF "/etc/portvakt/portvakt.conf"

static void usage(FILE *f)
{
    fprintf(f, "Usage: portvakt [-?hvVt] [-s signal] [-c filename]\n\n"
               "Options:\n"
               "  -?,-h         : this help\n"
               "  -v            : show version and exit\n"
               "  -V            : show version and build details and exit\n"
               "  -t            : test configuration and exit\n"
               "  -s signal     : send signal to a running instance: stop, quit, reload\n"
               "  -c filename   : set configuration file (default: " PV_DEFAULT_CONF ")\n");
}

static void version(int full)
{
    fprintf(stderr, "portvakt version: " PV_NAME "/" PV_VERSION "\n");
    if (full) {
        fprintf(stderr, "built with %s, llhttp %d.%d.%d, pcre2\n", OPENSSL_VERSION_TEXT, LLHTTP_VERSION_MAJOR,
                LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
#ifdef __VERSION__
        fprintf(stderr, "built by cc " __VERSION__ "\n");
#endif
    }
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

/* Open one listening socket per listen address per worker. */
static int *open_listeners(pv_conf_t *conf, int nworkers, int *nfds)
{
    int ng = conf->http ? conf->http->nlistens : 0;
    int *fds = calloc((size_t)(ng * nworkers + 1), sizeof(int));
    if (!fds)
        return NULL;
    for (int g = 0; g < ng; g++) {
        pv_listen_t *l = &conf->http->listens[g].listen;
        for (int i = 0; i < nworkers; i++) {
            char err[256];
            int fd = pv_net_listen((struct sockaddr *)&l->addr, l->addrlen, l->backlog, err, sizeof(err));
            if (fd < 0) {
                pv_log(PV_LOG_EMERG, "%s for %s", err, l->text);
                for (int k = 0; k < g * nworkers + i; k++)
                    close(fds[k]);
                free(fds);
                return NULL;
            }
            fds[i * ng + g] = fd;
        }
    }
    *nfds = ng;
    return fds;
}

int main(int argc, char **argv)
{
    const char *conf_path = PV_DEFAULT_CONF;
    const char *sig_name = NULL;
    int test_only = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            fprintf(stderr, "portvakt: [emerg] invalid option: \"%s\"\n", a);
            return 1;
        }
        switch (a[1]) {
        case 'v':
            version(0);
            return 0;
        case 'V':
            version(1);
            return 0;
        case 't':
            test_only = 1;
            break;
        case '?':
        case 'h':
            usage(stdout);
            return 0;
        case 'c':
        case 's': {
            const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "portvakt: [emerg] option \"-%c\" requires %s\n", a[1],
                        a[1] == 'c' ? "file name" : "signal name");
                return 1;
            }
            if (a[1] == 'c')
                conf_path = v;
            else
                sig_name = v;
            break;
        }
        default:
            fprintf(stderr, "portvakt: [emerg] invalid option: \"%s\"\n", a);
            usage(stderr);
            return 1;
        }
    }

    char err[1024];
    pv_conf_t *conf = pv_conf_load(conf_path, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "portvakt: [emerg] %s\n", err);
        if (test_only)
            fprintf(stderr, "portvakt: configuration file %s test failed\n", conf_path);
        return 1;
    }
    if (test_only) {
        fprintf(stderr, "portvakt: the configuration file %s syntax is ok\n", conf->path);
        fprintf(stderr, "portvakt: configuration file %s test is successful\n", conf->path);
        pv_conf_unref(conf);
        return 0;
    }
    if (sig_name) {
        int rc = send_signal(conf, sig_name);
        pv_conf_unref(conf);
        return rc;
    }

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
    int nfds = 0;
    int *fds = open_listeners(conf, nworkers, &nfds);
    if (!fds)
        return 1;
    if (pv_accesslog_start() != 0 || pv_accesslog_open(conf, err, sizeof(err)) != 0) {
        pv_log(PV_LOG_EMERG, "%s", err);
        return 1;
    }
    if (conf->pid_path && write_pid(conf->pid_path) < 0) {
        pv_log(PV_LOG_EMERG, "open() \"%s\" failed (%d: %s)", conf->pid_path, errno, strerror(errno));
        return 1;
    }

    pv_worker_t *workers = calloc((size_t)nworkers, sizeof(pv_worker_t));
    for (int i = 0; i < nworkers; i++) {
        if (pv_worker_init(&workers[i], i + 1, conf, fds + i * nfds, nfds) != PV_OK) {
            pv_log(PV_LOG_EMERG, "cannot start worker %d (%d: %s)", i + 1, errno, strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < nworkers; i++)
        pthread_create(&workers[i].thread, NULL, pv_worker_main, &workers[i]);
    pv_log(PV_LOG_NOTICE, PV_NAME "/" PV_VERSION " started: %d worker%s%s%s%s", nworkers, nworkers == 1 ? "" : "s",
           conf->worker_processes_auto ? " (auto: " : "",
           conf->worker_processes_auto && conf->worker_processes_why ? conf->worker_processes_why : "",
           conf->worker_processes_auto ? ")" : "");

    int stopping = 0;
    for (;;) {
        int alive = 0;
        for (int i = 0; i < nworkers; i++)
            alive += !atomic_load(&workers[i].finished);
        if (!alive)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT) {
            pv_log(PV_LOG_NOTICE, "signal %d (SIGINT) received, exiting", sig);
            for (int i = 0; i < nworkers; i++)
                pv_worker_signal(&workers[i], PV_WCMD_STOP);
        } else if ((sig == SIGTERM || sig == SIGQUIT) && !stopping) {
            pv_log(PV_LOG_NOTICE, "signal %d (%s) received, shutting down gracefully", sig,
                   sig == SIGTERM ? "SIGTERM" : "SIGQUIT");
            stopping = 1;
            for (int i = 0; i < nworkers; i++)
                pv_worker_signal(&workers[i], PV_WCMD_QUIT);
        } else if (sig == SIGHUP) {
            pv_log(PV_LOG_NOTICE, "signal %d (SIGHUP) received: reload is not available in this build", sig);
        }
    }
    for (int i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < nworkers * nfds; i++)
        close(fds[i]);
    free(fds);
    for (int i = 0; i < nworkers; i++) {
        pv_loop_free(workers[i].loop);
        close(workers[i].evfd);
        free(workers[i].listeners);
    }
    free(workers);
    pv_accesslog_stop();
    if (conf->pid_path)
        unlink(conf->pid_path);
    pv_log(PV_LOG_NOTICE, "exit");
    pv_conf_unref(conf);
    return 0;
}
