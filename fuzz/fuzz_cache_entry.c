/* libFuzzer target: the response cache's entry header parser
 * (src/http/fcache_entry.c), which reads whatever a file on disk holds.
 *
 * Input: the first bytes of an entry file. A header that parses must lie
 * inside the input, with a head whose lines all read (and the walk over
 * an accepted head splits them as the checking reader does); a header written
 * back from what was parsed must parse to the same entry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "http/fcache.h"

static int inside(pv_str_t s, const uint8_t *data, size_t size)
{
    return s.len == 0 || ((const uint8_t *)s.p >= data && (const uint8_t *)s.p + s.len <= data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv_fc_entry_t e;
    if (pv_fc_entry_parse((const char *)data, size, &e) != 0)
        return 0;
    if (!inside(e.key, data, size) || !inside(e.etag, data, size) || !inside(e.vary, data, size) ||
        !inside(e.head, data, size) || e.body_start > size || e.status < 100 || e.status > 599)
        abort();
    size_t pos = 0, wpos = 0;
    pv_str_t n, v, wn, wv;
    int lines = 0, rc;
    while ((rc = pv_fc_head_next(e.head, &pos, &n, &v)) == 1) {
        /* the walk over an accepted head splits each line the same */
        if (pv_fc_head_walk(e.head, &wpos, &wn, &wv) != 1 || wpos != pos || wn.p != n.p || wn.len != n.len ||
            wv.p != v.p || wv.len != v.len)
            abort();
        lines++;
    }
    if (rc != 0 || lines == 0 || pv_fc_head_walk(e.head, &wpos, &wn, &wv) != 0)
        abort();
    pv_fc_entry_t k; /* the same bytes kept: the same entry, unchecked */
    if (pv_fc_entry_parse_kept((const char *)data, size, &k) != 0 || k.head.p != e.head.p ||
        k.head.len != e.head.len || k.status != e.status || k.body_start != e.body_start)
        abort();
    static char out[PV_FC_HEAD_MAX];
    pv_fc_entry_t w = e;
    ssize_t len = pv_fc_entry_write(&w, out, sizeof(out));
    pv_fc_entry_t back;
    if (len != (ssize_t)e.body_start || pv_fc_entry_parse(out, (size_t)len, &back) != 0 ||
        back.body_len != e.body_len || back.valid_sec != e.valid_sec || back.status != e.status ||
        back.updating_sec != e.updating_sec || back.error_sec != e.error_sec ||
        back.head.len != e.head.len || memcmp(back.head.p, e.head.p, e.head.len) != 0 ||
        back.key.len != e.key.len || memcmp(back.md5, e.md5, 16) != 0)
        abort();
    return 0;
}
