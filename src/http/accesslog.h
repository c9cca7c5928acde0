/* Access log: each finished request is formatted per access_log entry
 * into a thread-local buffer and pushed to the entry's sink, a
 * non-blocking per-thread ring (core/logring.h) drained by the log writer
 * thread. A line that does not fit is dropped and counted. */
#ifndef PV_ACCESSLOG_H
#define PV_ACCESSLOG_H

#include <stdint.h>

#include "../config/conf.h"
#include "../core/log.h"
#include "../core/logring.h"
#include "request.h"

#define PV_ACCESSLOG_RING_SIZE PV_LOGRING_SIZE /* bytes per worker per sink */
#define PV_ACCESSLOG_LINE_MAX (64 * 1024)      /* longer lines are truncated */

/* Start the log writer thread; PV_OK if it runs (or already ran). */
int pv_accesslog_start(void);
/* Flush what the rings hold (giving up on a sink stuck for a few seconds),
 * join the writer and close every sink, the error log's too. Entries of
 * snapshots opened before must not be written after this; call
 * pv_accesslog_open() again. */
void pv_accesslog_stop(void);
/* Open every sink the snapshot's access_log entries and http, server and
 * location error_log entries name and store the handle in each entry. Already-open paths
 * are reused; "/dev/stdout" and "/dev/stderr" map to fds 1 and 2; relative
 * paths resolve against conf->prefix. Main thread, after pv_conf_load().
 * On failure returns PV_ERR with an NGINX-style message in err. */
int pv_accesslog_open(pv_conf_t *conf, char *err, size_t errlen);
/* Give the calling thread its own rings; once per worker thread. Threads
 * that write without registering are registered on first use. */
int pv_accesslog_register_worker(int worker_id);
/* The worker module: registers each worker thread as a log writer. */
extern struct pv_module_s pv_accesslog_module;
/* Log the finished request to every access_log of its location (or of its
 * server when no location matched). Never blocks. */
void pv_accesslog_write(pv_request_t *r);
/* The error log of a request's lines (error_log of its location, else of
 * its server: the listen address's default one until Host chose another);
 * NULL: the main error log. */
const pv_errlog_t *pv_req_errlog(const pv_request_t *r);
/* Log a line of request r to its error log. */
#define pv_log_r(r, level, ...) pv_log_to(pv_req_errlog(r), level, __VA_ARGS__)
/* Ask the writer to reopen file sinks (log rotation); returns at once. */
void pv_accesslog_reopen(void);
/* Wait up to timeout_ms for the writer to empty every ring; PV_OK when it
 * did, PV_AGAIN otherwise. */
int pv_accesslog_flush(int timeout_ms);
/* Lines dropped so far because a ring was full, over all sinks (the error
 * log's included). */
uint64_t pv_accesslog_dropped(void);

#endif
