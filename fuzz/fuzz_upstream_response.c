/* libFuzzer target: the upstream response parser (head and body). The
 * first byte picks the piece size, whether the request was HEAD and
 * whether it asked for an upgrade (a 101 is then final); the
 * rest is fed as an upstream would send it, whole and in pieces. Checks
 * the parser's promises: fields and spans lie inside the buffer, bare
 * LFs of a head made CRLF leave the bytes after it unchanged, the
 * framing decision is one of the known ones and agrees with the fields,
 * and the same bytes parse the same way however they are split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/upstream/response.h"

typedef struct result_s {
    int rc;           /* PV_URESP_* of the head, or 2 for an invalid body */
    size_t head;      /* bytes of head */
    int status, frame, nfields, keepalive, ninterim;
    size_t body;      /* body bytes decoded */
    int body_done;
} result_t;

static pv_uresp_t rp;
static char buf[2][1 << 17]; /* the bytes as the proxy holds them, one per run */

static void inside(const char *p, size_t len, const char *base, size_t size)
{
    if (len && (p < base || p + len > base + size))
        abort();
}

static void run(const uint8_t *data, size_t size, size_t step, int head_req, int upgrade, result_t *res, char *in)
{
    size_t off = 0, pos = 0, last = 0, used = 0, room = 2 * size + 2;
    memset(res, 0, sizeof(*res));
    pv_uresp_init(&rp, head_req);
    rp.upgrade_asked = (uint8_t)upgrade;
    res->rc = PV_URESP_AGAIN;
    while (off < size && res->rc == PV_URESP_AGAIN) {
        size_t n = size - off < step ? size - off : step;
        memcpy(in + last, data + off, n);
        last += n;
        off += n;
        size_t len = last - pos;
        res->rc = pv_uresp_parse(&rp, in + pos, &len, room - pos, &used);
        if (len < last - pos || pos + len > room || res->rc == PV_URESP_FULL)
            abort(); /* a head holds fewer bare LFs than bytes */
        last = pos + len;
        if (res->rc == PV_URESP_DONE) {
            if (used > len)
                abort();
            pos += used;
        } else if (res->rc == PV_URESP_AGAIN) {
            pos = last;
        }
    }
    /* the bytes after the head are the input's, unchanged */
    size_t rest = last - pos;
    if (res->rc == PV_URESP_DONE && (rest > off || memcmp(in + pos, data + off - rest, rest) != 0))
        abort();
    memcpy(in + last, data + off, size - off);
    size = last + size - off;
    off = pos;
    if (res->rc != PV_URESP_DONE)
        return;
    res->head = off;
    res->status = rp.status;
    res->frame = rp.frame;
    res->nfields = rp.nfields;
    res->keepalive = rp.keepalive;
    res->ninterim = rp.ninterim;
    if (rp.status == 101) {
        /* asked for, with Upgrade, final, nothing after it is a body */
        int up = 0;
        for (int i = 0; i < rp.nfields; i++)
            up |= rp.fields[i].name.len == 7 && strncasecmp(rp.fields[i].name.p, "upgrade", 7) == 0;
        if (!upgrade || !up || rp.frame != PV_FRAME_NONE || rp.keepalive)
            abort();
    } else if (rp.status < 200 || rp.status > 999 || rp.frame < PV_FRAME_NONE || rp.frame > PV_FRAME_CLOSE ||
               rp.nfields < 0 || rp.nfields > PV_URESP_MAX_FIELDS) {
        abort();
    }
    if ((rp.frame == PV_FRAME_NONE) != (rp.body_done != 0))
        abort();
    if (rp.frame == PV_FRAME_CLOSE && rp.keepalive)
        abort();
    if (head_req && rp.frame != PV_FRAME_NONE)
        abort();
    inside(rp.reason.p, rp.reason.len, in, off);
    for (int i = 0; i < rp.nfields; i++) {
        inside(rp.fields[i].name.p, rp.fields[i].name.len, in, off);
        inside(rp.fields[i].value.p, rp.fields[i].value.len, in, off);
        if (!rp.fields[i].name.len)
            abort();
    }
    while (off < size && !rp.body_done) {
        size_t n = size - off < step ? size - off : step;
        pv_str_t spans[3];
        int ns = 0;
        ssize_t u = pv_uresp_body(&rp, in + off, n, spans, &ns, 3);
        if (u < 0) {
            res->rc = 2;
            return;
        }
        if ((size_t)u > n || (u == 0 && ns == 0))
            abort();
        for (int i = 0; i < ns; i++) {
            inside(spans[i].p, spans[i].len, in + off, n);
            res->body += spans[i].len;
        }
        off += (size_t)u;
    }
    res->body_done = rp.body_done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 31) + 1;
    int head_req = (data[0] & 0x80) != 0;
    int upgrade = (data[0] & 0x40) != 0;
    data++;
    size--;
    if (2 * size + 2 > sizeof(buf[0]))
        return 0;
    result_t a, b;
    run(data, size, size ? size : 1, head_req, upgrade, &a, buf[0]);
    run(data, size, step, head_req, upgrade, &b, buf[1]);
    /* whole and piecewise must agree on everything the proxy acts on; the
     * body decoded before a framing error depends on where it was cut */
    if (a.rc != b.rc || a.head != b.head || a.status != b.status || a.frame != b.frame ||
        a.nfields != b.nfields || a.keepalive != b.keepalive || a.ninterim != b.ninterim ||
        (a.rc != 2 && (a.body != b.body || a.body_done != b.body_done)))
        abort();
    return 0;
}
