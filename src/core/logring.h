/* Log lines that never block an event-loop thread (the access log and,
 * once the workers run, the error log).
 *
 * A sink is a file (or fd 1 or 2) named by path. Each producer thread
 * appends whole lines to its own single-producer/single-consumer ring per
 * sink (PV_LOGRING_SIZE bytes). One background writer thread drains every
 * ring and does the write(2) calls; it may block on a slow sink, the
 * producers never do. When a ring is full the line is dropped and the
 * sink's counter incremented; the writer reports drops in the error log at
 * most once per second. The writer is woken through a futex only when it
 * is idle, and otherwise polls every few milliseconds, so a busy thread
 * makes no system call per line.
 *
 * Sinks are shared by path across config snapshots and reloads and live
 * until pv_logring_stop(). */
#ifndef PV_LOGRING_H
#define PV_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define PV_LOGRING_SIZE (256 * 1024)   /* bytes per producer thread per sink */
#define PV_LOGRING_MAX_THREADS 1024    /* producer threads (rings per sink) */
#define PV_LOGRING_MAX_SINKS 256       /* distinct log paths */

typedef struct pv_logsink_s pv_logsink_t;

/* open_log_file_cache: how the writer keeps the descriptors of a log whose
 * path has variables, as NGINX's open file cache does for such logs. */
typedef struct pv_logcache_s {
    unsigned id;          /* the directive's own; max counts the files of one id */
    int max;              /* files kept at most; 0 (off): opened and closed per write */
    int min_uses;         /* uses within inactive before the descriptor is kept */
    int64_t inactive_ms;  /* a file unused this long is closed and forgotten */
    int64_t valid_ms;     /* after this, the kept file is checked by name again */
} pv_logcache_t;

/* Start the writer thread; PV_OK if it runs (or already ran). */
int pv_logring_start(void);
/* Flush what the rings hold (giving up on a sink stuck for a few seconds),
 * join the writer and close every sink. Sinks handed out before must not
 * be used after this. */
void pv_logring_stop(void);
/* Whether the writer runs (between start and stop). */
int pv_logring_running(void);
/* The sink for path, opened (appending) and published if it is new;
 * "/dev/stdout" and "/dev/stderr" map to fds 1 and 2. what names it in
 * reports ("access log"). NULL with a message in err on failure. */
pv_logsink_t *pv_logring_sink(const char *path, const char *what, char *err, size_t errlen);
/* The sink for a log path with variables, evaluated per request, and the
 * file for one line, as NGINX's open file cache (cache; NULL: off) keeps
 * it: *fd is a file opened for this line (appending, created if missing),
 * or -1 when the descriptor the writer keeps serves. Push the line, then
 * hand *fd to the writer with pv_logring_var_handover(); the writer
 * closes it after writing unless the cache keeps it. NULL with a message
 * in err when the file cannot be opened (the line is lost, as in NGINX)
 * or PV_LOGRING_MAX_SINKS paths are taken. */
pv_logsink_t *pv_logring_sink_var(const char *path, const pv_logcache_t *cache, int *fd, char *err,
                                  size_t errlen);
/* Hand the file pv_logring_sink_var() opened for a line to the writer. */
void pv_logring_var_handover(pv_logsink_t *s, int fd);
/* Write the sink's lines compressed: each batch the writer takes becomes
 * one gzip member at level (1..9); 0 writes them plain. The last config
 * to name the path decides. */
void pv_logring_sink_gzip(pv_logsink_t *s, int level);
/* Hold the sink's lines until size bytes are waiting (buffer=), or the
 * oldest held one has waited flush_ms (flush=; 0: no limit), as
 * NGINX's buffered logs; a reopen, pv_logring_flush() and stop write them
 * at once. size 0 writes lines as they come. The last config to name the
 * path decides. */
void pv_logring_sink_buffer(pv_logsink_t *s, size_t size, int64_t flush_ms);
/* Give the calling thread its own rings; threads that push without
 * registering are registered on first use. */
int pv_logring_register_thread(void);
/* Append one whole line of n bytes; never blocks. PV_OK, or PV_AGAIN when
 * the ring is full and the line was dropped (and counted). */
int pv_logring_push(pv_logsink_t *s, const char *p, size_t n);
/* Count a line the caller could not even format as dropped. */
void pv_logring_drop(pv_logsink_t *s);
/* Ask the writer to reopen file sinks (log rotation); returns once it has
 * (at most about a second), so the new files exist only when they take lines. */
void pv_logring_reopen(void);
/* Wait up to timeout_ms for the writer to empty every ring; PV_OK when it
 * did, PV_AGAIN otherwise. */
int pv_logring_flush(int timeout_ms);
/* Lines dropped so far because a ring was full, over all sinks. */
uint64_t pv_logring_dropped(void);

#endif
