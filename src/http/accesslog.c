#include "accesslog.h"
#include "../core/module.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "static.h"
#include "vars.h"
#include "../config/residency.h"

#define PV_AL_FIRST_BUF 4096      /* initial per-thread line buffer */

/* Per-thread line buffer. */
static __thread char *al_buf;            /* line buffer */
static __thread size_t al_bufcap;        /* its size */
static pthread_key_t al_buf_key;         /* frees al_buf when its thread exits */
static pthread_once_t al_buf_once = PTHREAD_ONCE_INIT;

int pv_accesslog_start(void)
{
    return pv_logring_start();
}

void pv_accesslog_stop(void)
{
    pv_logring_stop();
}

int pv_accesslog_register_worker(int worker_id)
{
    PV_UNUSED(worker_id);
    return pv_logring_register_thread();
}

static int mod_worker_init(struct pv_worker_s *w)
{
    PV_UNUSED(w);
    return pv_accesslog_register_worker(0);
}

pv_module_t pv_accesslog_module = {
    .name = "access_log",
    .worker_init = mod_worker_init,
};

void pv_accesslog_reopen(void)
{
    pv_logring_reopen();
}

int pv_accesslog_flush(int timeout_ms)
{
    return pv_logring_flush(timeout_ms);
}

uint64_t pv_accesslog_dropped(void)
{
    return pv_logring_dropped();
}

/* Key whose destructor frees a thread's line buffer at thread exit. */
static void buf_key_init_cb(void)
{
    pthread_key_create(&al_buf_key, free);
}

/* Format r with fmt into the thread's buffer, '\n' included; the length.
 * anon: client addresses in their anonymised forms (log_anonymize). */
static size_t line_format(const pv_log_format_t *fmt, pv_request_t *r, int anon)
{
    int esc = fmt->escape | (anon ? PV_CV_ANON : 0);
    if (!al_buf) {
        pthread_once(&al_buf_once, buf_key_init_cb);
        al_buf = malloc(PV_AL_FIRST_BUF);
        if (!al_buf)
            return 0;
        al_bufcap = PV_AL_FIRST_BUF;
        pthread_setspecific(al_buf_key, al_buf);
    }
    size_t need = pv_cv_eval(&fmt->value, r, esc, al_buf, al_bufcap - 1);
    if (need > al_bufcap - 1 && al_bufcap < PV_ACCESSLOG_LINE_MAX) {
        size_t cap = PV_MIN(PV_ACCESSLOG_LINE_MAX, PV_MAX(need + 1, al_bufcap * 2));
        char *nb = realloc(al_buf, cap);
        if (nb) {
            al_buf = nb;
            al_bufcap = cap;
            pthread_setspecific(al_buf_key, al_buf);
            need = pv_cv_eval(&fmt->value, r, esc, al_buf, al_bufcap - 1);
        }
    }
    size_t len = PV_MIN(need, al_bufcap - 1);
    al_buf[len++] = '\n';
    return len;
}

/* The sink of a log whose path has variables, as NGINX opens one: only
 * while the request's root directory exists, the path evaluated per
 * request, the file opened for the line unless the location's
 * open_log_file_cache keeps it (core/logring.h); *fd is for the writer. */
static pv_logsink_t *path_sink(pv_request_t *r, const pv_loc_conf_t *lc, const pv_access_log_t *al, int *fd)
{
    char path[PATH_MAX], err[PATH_MAX + 128];
    size_t root = 0;
    struct stat st;
    if (r->loc && pv_static_map(r, r->loc, path, sizeof(path), &root) >= 0) {
        path[root] = '\0';
        int e = stat(path, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (e) {
            pv_log_r(r, PV_LOG_ERR, "testing \"%s\" existence failed (%d: %s), client: %s", path, e, strerror(e),
                     pv_log_client(r));
            return NULL;
        }
    }
    size_t n = pv_cv_eval(al->path_cv, r, PV_ESCAPE_NONE, path, sizeof(path));
    if (n >= sizeof(path) || memchr(path, '\0', n))
        return NULL;
    path[n] = '\0';
    pv_logsink_t *s = pv_logring_sink_var(path, lc->log_cache, fd, err, sizeof(err));
    if (!s)
        pv_log_r(r, PV_LOG_CRIT, "%s, client: %s", err, pv_log_client(r));
    return s;
}

void pv_accesslog_write(pv_request_t *r)
{
    const pv_loc_conf_t *lc = NULL;
    if (r->loc)
        lc = &r->loc->conf;
    else if (r->srv)
        lc = &r->srv->conf;
    else if (r->conf && r->conf->http)
        lc = &r->conf->http->conf;
    if (!lc || lc->naccess_logs <= 0 || !lc->access_logs)
        return;
    /* `access_log off` switches off every log of its level, as in NGINX */
    for (int i = 0; i < lc->naccess_logs; i++)
        if (lc->access_logs[i].off)
            return;

    /* a request of a residency scope is logged without its client's
     * full address (residency_log_addr) */
    unsigned anon = (r->flags & PV_REQ_F_RES_ANON) || pv_residency_anon(lc) ? PV_REQ_F_LOG_ANON : 0;
    r->flags |= anon;
    const pv_log_format_t *last = NULL;
    size_t len = 0;
    for (int i = 0; i < lc->naccess_logs; i++) {
        const pv_access_log_t *al = &lc->access_logs[i];
        if (!al->format || (al->cond && !pv_cv_true(al->cond, r)))
            continue;
        int fd = -1;
        pv_logsink_t *s = al->path_cv ? path_sink(r, lc, al, &fd) : al->sink;
        if (!s)
            continue;
        if (al->format != last) {
            len = line_format(al->format, r, lc->trace.anonymize);
            last = al->format;
        }
        if (len == 0)
            pv_logring_drop(s);
        else
            pv_logring_push(s, al_buf, len);
        pv_logring_var_handover(s, fd);
    }
    r->flags &= ~anon;
}

/* ---- opening sinks (main thread) -------------------------------------- */

/* Attach a sink to every entry of one level's access_log list. */
static int open_list(pv_conf_t *conf, pv_access_log_t *list, int n, char *err, size_t errlen)
{
    for (int i = 0; list && i < n; i++) {
        pv_access_log_t *al = &list[i];
        if (al->off || !al->path || al->sink || al->path_cv)
            continue;
        char buf[PATH_MAX];
        const char *path = al->path;
        if (path[0] != '/' && conf->prefix) {
            if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", conf->prefix, path) >= sizeof(buf)) {
                snprintf(err, errlen, "access log path too long: \"%s\"", path);
                return PV_ERR;
            }
            path = buf;
        }
        al->sink = pv_logring_sink(path, "access log", err, errlen);
        if (!al->sink)
            return PV_ERR;
        pv_logring_sink_gzip(al->sink, al->gzip);
        pv_logring_sink_buffer(al->sink, al->buffer, al->flush);
    }
    return PV_OK;
}

/* The sinks of a block's error_log chain (core/log.h). */
static int open_errlogs(pv_errlog_t *el, char *err, size_t errlen)
{
    for (; el; el = (pv_errlog_t *)el->next) {
        if (!el->sink && !(el->sink = pv_logring_sink(el->path, "error log", err, errlen)))
            return PV_ERR;
    }
    return PV_OK;
}

static int open_block(pv_conf_t *conf, pv_loc_conf_t *lc, char *err, size_t errlen)
{
    if (open_list(conf, lc->access_logs, lc->naccess_logs, err, errlen) != PV_OK)
        return PV_ERR;
    return open_errlogs(lc->error_log, err, errlen);
}

int pv_accesslog_open(pv_conf_t *conf, char *err, size_t errlen)
{
    if (!conf || !conf->http)
        return PV_OK;
    pv_http_conf_t *http = conf->http;
    int rc = open_block(conf, &http->conf, err, errlen);
    for (int i = 0; rc == PV_OK && i < http->nservers; i++) {
        pv_server_t *srv = http->servers[i];
        rc = open_block(conf, &srv->conf, err, errlen);
        for (int k = 0; rc == PV_OK && k < srv->nlocations; k++) {
            pv_location_t *loc = srv->locations[k];
            rc = open_block(conf, &loc->conf, err, errlen);
            if (rc == PV_OK && loc->lmt)
                rc = open_block(conf, &loc->lmt->conf, err, errlen);
        }
    }
    return rc;
}

const pv_errlog_t *pv_req_errlog(const pv_request_t *r)
{
    if (r->loc)
        return r->loc->conf.error_log;
    return r->srv ? r->srv->conf.error_log : NULL;
}
