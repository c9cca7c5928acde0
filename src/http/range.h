/* The pure parts of serving a file, without I/O: byte ranges (NGINX's
 * range filter), the validators and preconditions (its not-modified
 * filter), HTTP dates, and the mapping of a URI to a file path under a
 * root or an alias. Fuzzed by fuzz/fuzz_range.c. */
#ifndef PV_RANGE_H
#define PV_RANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../core/common.h"

/* One satisfiable range: bytes [start, end). */
typedef struct pv_range_s {
    int64_t start, end;
} pv_range_t;

/* What a Range field asks for. */
enum {
    PV_RANGE_NONE = 0, /* serve the whole body with 200 (no, ignored or declined ranges) */
    PV_RANGE_OK,       /* 206 with the *n ranges */
    PV_RANGE_416       /* Range Not Satisfiable */
};

/* Parse a Range field value for a body of size bytes, as NGINX does:
 * "bytes=" (any case), then ranges "a-b", "a-", "-n" separated by commas
 * with optional spaces. At most max ranges (more: the whole body), at most
 * cap are stored in out. Overlapping ranges whose sum exceeds size, or a
 * range starting at 0 that is empty, give the whole body. */
int pv_range_parse(pv_str_t value, int64_t size, int max, pv_range_t *out, int cap, int *n);

/* Whether an If-Range value lets the ranges apply: an entity tag equal
 * to etag (byte for byte), or a date equal to mtime. */
int pv_range_if_range(pv_str_t value, pv_str_t etag, time_t mtime);

/* NGINX's ngx_http_test_if_match(): whether list (If-Match or, weak set,
 * If-None-Match) names etag; "*" names any. */
int pv_etag_match(pv_str_t list, pv_str_t etag, int weak);

/* Parse an HTTP date (RFC 1123, RFC 850 or asctime form); -1 if invalid. */
time_t pv_http_time_parse(pv_str_t s);
/* Write t as an IMF-fixdate ("Thu, 01 Jan 1970 00:00:00 GMT", 29 bytes
 * and a NUL) into buf (at least 30 bytes); returns the length. */
size_t pv_http_time_format(time_t t, char *buf);

/* Join root (len bytes, no trailing NUL needed) and the part of uri after
 * its first skip bytes into out (cap bytes, NUL-terminated). Returns the
 * length, or -1 when it does not fit or the result could leave the root:
 * a NUL byte, or a "." or ".." segment, in the URI part. */
ssize_t pv_path_join(const char *root, size_t rlen, pv_str_t uri, size_t skip, char *out, size_t cap);

#endif
