#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "logring.h"
#include "time.h"

/* NGINX's limit for one error message (NGX_MAX_ERROR_STR). */
#define PV_LOG_LINE_MAX 2048

static const char *const level_names[] = {"emerg", "alert", "crit", "error",
                                          "warn",  "notice", "info", "debug"};

/* Where lines go: -1 until a file is opened (then stderr is used). The
 * descriptor number never changes once set; reopening dup3()s the new file
 * onto it, so a writer racing a reopen can never hit a recycled number. */
static atomic_int log_fd = -1;
static atomic_int log_level = PV_LOG_NOTICE; /* until pv_log_open(): start-up messages */
static pthread_mutex_t log_open_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int log_tid;
/* Once the log writer runs: the error log's sink; lines go through the
 * calling thread's ring and are never written from the caller. */
static pv_logsink_t *_Atomic log_sink;
static char log_path[PATH_MAX] = "/dev/stderr"; /* what pv_log_open() opened */

int pv_log_level_parse(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < PV_NELEM(level_names); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int pv_log_open(const char *path, int level)
{
    int fd;

    if (level < PV_LOG_EMERG || level > PV_LOG_DEBUG) {
        errno = EINVAL;
        return -1;
    }
    if (!path || strcmp(path, "stderr") == 0)
        fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;

    pthread_mutex_lock(&log_open_lock);
    int cur = atomic_load(&log_fd);
    if (cur < 0) {
        atomic_store(&log_fd, fd);
    } else {
        int e = dup3(fd, cur, O_CLOEXEC) < 0 ? errno : 0;
        close(fd);
        if (e) {
            pthread_mutex_unlock(&log_open_lock);
            errno = e;
            return -1;
        }
    }
    atomic_store(&log_level, level);
    snprintf(log_path, sizeof(log_path), "%s", !path || strcmp(path, "stderr") == 0 ? "/dev/stderr" : path);
    pthread_mutex_unlock(&log_open_lock);
    return 0;
}

int pv_log_reopen(void)
{
    char path[PATH_MAX];
    pthread_mutex_lock(&log_open_lock);
    memcpy(path, log_path, sizeof(path));
    pthread_mutex_unlock(&log_open_lock);
    int level = atomic_load(&log_level);
    return pv_log_open(strcmp(path, "/dev/stderr") == 0 ? "stderr" : path, level);
}

int pv_log_use_ring(char *err, size_t errlen)
{
    pv_logsink_t *s = pv_logring_sink(log_path, "error log", err, errlen);
    if (!s)
        return PV_ERR;
    atomic_store_explicit(&log_sink, s, memory_order_release);
    return PV_OK;
}

void pv_log_use_direct(void)
{
    atomic_store_explicit(&log_sink, NULL, memory_order_release);
}

void pv_log_set_thread_id(int id)
{
    log_tid = id;
}

static pv_log_req_fn log_req_fn;
__thread const void *pv_log_req_cur;

void pv_log_req_hook(pv_log_req_fn fn)
{
    log_req_fn = fn;
}

/* One line, NGINX's prefix, message and newline, into buf; its length. */
static size_t log_format(char *buf, int level, const char *fmt, va_list ap)
{
    if (level < PV_LOG_EMERG)
        level = PV_LOG_EMERG;
    if (level > PV_LOG_DEBUG)
        level = PV_LOG_DEBUG;
    pv_time_update();
    pv_str_t ts = pv_time_err_log();
    int n = snprintf(buf, PV_LOG_LINE_MAX, "%.*s [%s] %d#%d: ", (int)ts.len, ts.p,
                     level_names[level], (int)getpid(), log_tid);
    size_t len = n < 0 ? 0 : PV_MIN((size_t)n, (size_t)PV_LOG_LINE_MAX - 1);
    n = vsnprintf(buf + len, PV_LOG_LINE_MAX - len, fmt, ap);
    if (n > 0)
        len += PV_MIN((size_t)n, PV_LOG_LINE_MAX - len - 1);
    const void *log_req = pv_log_req_cur;
    if (log_req && log_req_fn && len + 16 < PV_LOG_LINE_MAX) {
        memcpy(buf + len, ", request_id: ", 14);
        len += 14;
        len += log_req_fn(log_req, buf + len, PV_LOG_LINE_MAX - 1 - len);
    }
    buf[len++] = '\n';
    return len;
}

static void log_write_main(const char *buf, size_t len)
{
    pv_logsink_t *sink = atomic_load_explicit(&log_sink, memory_order_acquire);
    if (sink) {
        pv_logring_push(sink, buf, len); /* a full ring drops and counts the line */
        return;
    }
    int fd = atomic_load_explicit(&log_fd, memory_order_acquire);
    if (fd < 0)
        fd = STDERR_FILENO;
    ssize_t w;
    do {
        w = write(fd, buf, len);
    } while (w < 0 && errno == EINTR);
}

void pv_log(int level, const char *fmt, ...)
{
    if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    int saved = errno;
    char buf[PV_LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(buf, level, fmt, ap);
    va_end(ap);
    log_write_main(buf, len);
    errno = saved;
}

void pv_log_to(const pv_errlog_t *el, int level, const char *fmt, ...)
{
    int want = 0, ring = atomic_load_explicit(&log_sink, memory_order_acquire) != NULL;
    if (el && ring && el->sink) {
        for (const pv_errlog_t *e = el; e; e = e->next)
            want |= level <= e->level;
    } else {
        el = NULL;
        want = level <= atomic_load_explicit(&log_level, memory_order_relaxed);
    }
    if (!want)
        return;
    int saved = errno;
    char buf[PV_LOG_LINE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    size_t len = log_format(buf, level, fmt, ap);
    va_end(ap);
    if (!el)
        log_write_main(buf, len);
    for (const pv_errlog_t *e = el; e; e = e->next)
        if (level <= e->level && e->sink)
            pv_logring_push(e->sink, buf, len);
    errno = saved;
}
