/* Clocks. pv_now_ms()/pv_now_ns() (common.h) read CLOCK_MONOTONIC.
 * The wall clock is cached per thread: the event loop calls
 * pv_time_update() once per iteration and everything else reads the cache,
 * so a busy thread formats its date strings at most once per second and
 * takes no lock. A thread that never called pv_time_update() gets the
 * cache filled on first use. Local-time strings follow the process's
 * timezone (TZ), as NGINX's do. */
#ifndef PV_TIME_H
#define PV_TIME_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

/* Longest string pv_time_msec() writes, NUL included. */
#define PV_TIME_MSEC_LEN 32

/* Refresh this thread's cached wall clock; cheap when the second is unchanged. */
void pv_time_update(void);
/* Cached wall clock, milliseconds since the epoch. */
int64_t pv_time_ms(void);
/* IMF-fixdate for Date: headers, "Thu, 26 Nov 2026 19:00:00 GMT". */
pv_str_t pv_time_http_date(void);
/* $time_local, "26/Nov/2026:19:00:00 +0000". */
pv_str_t pv_time_local(void);
/* $time_iso8601, "2026-11-26T19:00:00+00:00". */
pv_str_t pv_time_iso8601(void);
/* Error log timestamp, "2026/11/26 19:00:00". */
pv_str_t pv_time_err_log(void);
/* $msec, "1795719600.123", into buf (PV_TIME_MSEC_LEN bytes); returns the length. */
size_t pv_time_msec(char *buf);

#endif
