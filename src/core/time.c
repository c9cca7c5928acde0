#include "time.h"

#include <stdio.h>
#include <time.h>

/* Per-thread wall-clock cache; every field is owned by its thread. */
typedef struct pv_time_cache_s {
    int valid;          /* filled at least once */
    int64_t ms;         /* wall clock at the last update, ms since the epoch */
    int64_t sec;        /* second the strings below describe */
    int64_t tz_minute;  /* minute in which gmtoff was last looked up */
    long gmtoff;        /* local offset from UTC in seconds */
    char http[32];      /* IMF-fixdate */
    size_t http_len;
    char local[32];     /* $time_local */
    size_t local_len;
    char iso[32];       /* $time_iso8601 */
    size_t iso_len;
    char err[24];       /* error log timestamp */
    size_t err_len;
} pv_time_cache_t;

static __thread pv_time_cache_t tc;

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

uint64_t pv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pv_now_ms(void)
{
    return pv_now_ns() / 1000000u;
}

static size_t fmt_len(int n, size_t cap)
{
    return n < 0 ? 0 : PV_MIN((size_t)n, cap - 1);
}

/* Rebuild the strings for a new second. The UTC offset is looked up once
 * a minute (localtime_r may take glibc's timezone lock); zone transitions
 * fall on minute boundaries, so the cached offset is always right. */
static void time_format(int64_t sec)
{
    time_t t = (time_t)sec;
    struct tm g, l;

    if (!tc.valid || sec / 60 != tc.tz_minute) {
        struct tm lt;
        localtime_r(&t, &lt);
        tc.gmtoff = lt.tm_gmtoff;
        tc.tz_minute = sec / 60;
    }
    gmtime_r(&t, &g);
    time_t lsec = (time_t)(sec + tc.gmtoff);
    gmtime_r(&lsec, &l);

    long off = tc.gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    int oh = (int)(off / 3600), om = (int)(off % 3600 / 60);

    int n = snprintf(tc.http, sizeof(tc.http), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                     wdays[g.tm_wday], g.tm_mday, months[g.tm_mon], g.tm_year + 1900,
                     g.tm_hour, g.tm_min, g.tm_sec);
    tc.http_len = fmt_len(n, sizeof(tc.http));
    n = snprintf(tc.local, sizeof(tc.local), "%02d/%s/%d:%02d:%02d:%02d %c%02d%02d",
                 l.tm_mday, months[l.tm_mon], l.tm_year + 1900, l.tm_hour, l.tm_min,
                 l.tm_sec, sign, oh, om);
    tc.local_len = fmt_len(n, sizeof(tc.local));
    n = snprintf(tc.iso, sizeof(tc.iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
                 l.tm_year + 1900, l.tm_mon + 1, l.tm_mday, l.tm_hour, l.tm_min, l.tm_sec,
                 sign, oh, om);
    tc.iso_len = fmt_len(n, sizeof(tc.iso));
    n = snprintf(tc.err, sizeof(tc.err), "%04d/%02d/%02d %02d:%02d:%02d",
                 l.tm_year + 1900, l.tm_mon + 1, l.tm_mday, l.tm_hour, l.tm_min, l.tm_sec);
    tc.err_len = fmt_len(n, sizeof(tc.err));
    tc.sec = sec;
}

void pv_time_update(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tc.ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (!tc.valid || (int64_t)ts.tv_sec != tc.sec) {
        time_format((int64_t)ts.tv_sec);
        tc.valid = 1;
    }
}

static inline void time_ensure(void)
{
    if (pv_unlikely(!tc.valid))
        pv_time_update();
}

int64_t pv_time_ms(void)
{
    time_ensure();
    return tc.ms;
}

pv_str_t pv_time_http_date(void)
{
    time_ensure();
    return (pv_str_t){tc.http, tc.http_len};
}

pv_str_t pv_time_local(void)
{
    time_ensure();
    return (pv_str_t){tc.local, tc.local_len};
}

pv_str_t pv_time_iso8601(void)
{
    time_ensure();
    return (pv_str_t){tc.iso, tc.iso_len};
}

pv_str_t pv_time_err_log(void)
{
    time_ensure();
    return (pv_str_t){tc.err, tc.err_len};
}

size_t pv_time_msec(char *buf)
{
    time_ensure();
    int n = snprintf(buf, PV_TIME_MSEC_LEN, "%lld.%03d", (long long)(tc.ms / 1000),
                     (int)(tc.ms % 1000));
    return fmt_len(n, PV_TIME_MSEC_LEN);
}
