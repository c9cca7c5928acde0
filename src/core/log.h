/* Error log (the process's diagnostics) in NGINX's format:
 *   2026/11/26 19:00:00 [error] 1234#2: message
 * Thread-safe; lines never mix. At start-up and at exit each line is
 * written directly with one write(2). While the workers run
 * (pv_log_use_ring() .. pv_log_use_direct()) a line is only appended to
 * the calling thread's ring for the error log's sink (core/logring.h) and
 * written by the log writer thread: a slow sink drops lines (counted and
 * reported), it never blocks the caller. */
#ifndef PV_LOG_H
#define PV_LOG_H

#include <stddef.h>

enum {
    PV_LOG_EMERG = 0,
    PV_LOG_ALERT,
    PV_LOG_CRIT,
    PV_LOG_ERR,
    PV_LOG_WARN,
    PV_LOG_NOTICE,
    PV_LOG_INFO,
    PV_LOG_DEBUG
};

/* Direct the error log to a file (appended) or "stderr"; level is the
 * least severe level written. Returns 0, or -1 with errno set. */
int pv_log_open(const char *path, int level);
/* Open the error log's file again by its path (rotation, SIGUSR1) for the
 * direct writes; the ring's sink is reopened by pv_logring_reopen(). */
int pv_log_reopen(void);
/* Send lines through the log writer from now on; it must run
 * (pv_logring_start()). PV_ERR with a message in err if the sink cannot
 * be opened. */
int pv_log_use_ring(char *err, size_t errlen);
/* Write lines directly again; call before pv_logring_stop(). */
void pv_log_use_direct(void);
/* Parse an NGINX level name ("warn", "error", ...); -1 if unknown. */
int pv_log_level_parse(const char *name);
/* Number of the calling worker (shown after '#'); 0 on the main thread. */
void pv_log_set_thread_id(int id);
/* The request a worker thread is working on: while one is named, every
 * line ends with ", request_id: ID", ID written by the hook the HTTP side
 * registers (core knows no request). Each event handler that works for a
 * request names it on entry and names none on return (events do not
 * nest); a request that ends is named no more (pv_log_req_gone()), so the
 * pointer never outlives its request. */
typedef size_t (*pv_log_req_fn)(const void *req, char *buf, size_t cap);
void pv_log_req_hook(pv_log_req_fn fn);
extern __thread const void *pv_log_req_cur; /* the request named, or NULL */

/* Name req (NULL: none). */
static inline void pv_log_req_set(const void *req)
{
    pv_log_req_cur = req;
}

/* req ends. */
static inline void pv_log_req_gone(const void *req)
{
    if (pv_log_req_cur == req)
        pv_log_req_cur = NULL;
}
/* Log one line at level (dropped when less severe than the log's level). */
void pv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An `error_log FILE [LEVEL]` of an http, server or location block: the
 * lines of requests it applies to go there instead of the main error log.
 * Several in one block chain through next, each with its level. */
typedef struct pv_errlog_s {
    const char *path;                /* absolute path, or "/dev/stderr" */
    int level;                       /* least severe level written */
    struct pv_logsink_s *sink;       /* opened when the config is put to use (main thread) */
    const struct pv_errlog_s *next;  /* the block's next error_log */
} pv_errlog_t;

/* Log one line to el's files, each under its level, through the log
 * writer's rings; el NULL, or a log whose sink is not open (the writer not
 * running), is the main error log. */
void pv_log_to(const pv_errlog_t *el, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
