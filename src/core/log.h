/* Error log (the process's diagnostics) in NGINX's format:
 *   2026/11/26 19:00:00 [error] 1234#2: message
 * Thread-safe; each line is written with one write(2) so lines never mix.
 * The access log is separate (src/obs/accesslog.h) and never blocks. */
#ifndef PV_LOG_H
#define PV_LOG_H

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
/* Parse an NGINX level name ("warn", "error", ...); -1 if unknown. */
int pv_log_level_parse(const char *name);
/* Number of the calling worker (shown after '#'); 0 on the main thread. */
void pv_log_set_thread_id(int id);
void pv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
