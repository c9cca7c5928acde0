/* libFuzzer target: the pure parts of serving a file (src/http/range.c):
 * Range parsing, If-Range, entity tag lists, HTTP dates and path joining.
 *
 * Input: byte 0 picks the file size (and max_ranges), then the Range
 * value up to the first '\n', then an entity-tag list or a date up to the
 * next '\n', then a URI to join under a root. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/range.h"

static const int64_t sizes[] = {0, 1, 13, 100, 65536, 300000, INT64_MAX / 2, INT64_MAX};

/* Every range is inside the body, non-empty, and their sum fits it. */
static void check_ranges(const pv_range_t *r, int n, int64_t size)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].start < 0 || r[i].start >= r[i].end || r[i].end > size)
            abort();
        sum += r[i].end - r[i].start;
    }
    if (sum > size)
        abort();
}

static pv_str_t line(const uint8_t **p, const uint8_t *e)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(e - *p));
    pv_str_t s = {(const char *)*p, (size_t)((nl ? nl : e) - *p)};
    *p = nl ? nl + 1 : e;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t fsize = sizes[data[0] & 7];
    int max = (data[0] >> 3) & 7;
    const uint8_t *p = data + 1, *e = data + size;
    pv_str_t range = line(&p, e), list = line(&p, e), uri = line(&p, e);

    pv_range_t r[16];
    int n = 0;
    int kind = pv_range_parse(range, fsize, max ? max : 1000, r, 16, &n);
    if (kind == PV_RANGE_OK) {
        if (n < 1 || n > 16 || n > (max ? max : 1000))
            abort();
        check_ranges(r, n, fsize);
    } else if (n != 0) {
        abort();
    }

    (void)pv_etag_match(list, (pv_str_t){"\"6553f100-d\"", 12}, data[0] & 1);
    (void)pv_range_if_range(list, (pv_str_t){"\"6553f100-d\"", 12}, 1700000000);
    time_t t = pv_http_time_parse(list);
    if (t != (time_t)-1) {
        /* a date that parses formats and parses back to itself */
        char b[32];
        pv_http_time_format(t, b);
        if (pv_http_time_parse((pv_str_t){b, 29}) != t)
            abort();
    }

    char out[512];
    ssize_t k = pv_path_join("/srv/www", 8, uri, data[0] & 3, out, sizeof(out));
    if (k >= 0) {
        if ((size_t)k != strlen(out) || memcmp(out, "/srv/www", 8) != 0)
            abort();
        /* no segment of the result climbs out */
        if (strstr(out, "/../") || (k >= 3 && strcmp(out + k - 3, "/..") == 0))
            abort();
    }
    return 0;
}
