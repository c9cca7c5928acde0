/* libFuzzer target: the compression body filter (src/http/zfilter.c)
 * between a handler and a scripted protocol. The first bytes pick the
 * coding (gzip, Brotli, or gunzip of a gzip stream made here), the level
 * and gzip_buffers; the rest is the body, fed in spans whose sizes the
 * input also gives, while the protocol's room() and flush() answer as the
 * input says (no room, PV_AGAIN). It plays the server: after a PV_AGAIN
 * the queue is written and the filter's flush (and the running handler's
 * proceed(), once the filter took over at finish) runs again. Checks: the
 * filter never answers PV_OK to a flush while it holds the handler's
 * bytes, never hands the protocol more than room() allowed, never has
 * more than gzip_buffers of output out, and what the protocol got decodes
 * to the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>

#include "../src/http/compress.h"
#include "../src/http/server.h"

#define OUT_MAX (1 << 20)

static uint8_t out[OUT_MAX];      /* what the protocol wrote */
static size_t nout;
static pv_str_t queued[4096];     /* spans handed to the protocol, not yet written */
static int nqueued;
static const uint8_t *script;     /* the protocol's answers */
static size_t nscript, iscript;
static int finished, aborted;
static pv_zip_conf_t zc;

static int next_bit(void)
{
    if (iscript >= nscript)
        return 0;
    return script[iscript++] & 1;
}

static void write_out(void)
{
    for (int i = 0; i < nqueued; i++) {
        if (nout + queued[i].len > OUT_MAX)
            abort();
        memcpy(out + nout, queued[i].p, queued[i].len);
        nout += queued[i].len;
    }
    nqueued = 0;
}

static int p_room(const pv_hreq_t *hr)
{
    (void)hr;
    return nqueued >= 4000 || next_bit() ? 0 : 4;
}

static void p_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    (void)hr;
    if (n > 4)
        abort(); /* more than room() allowed */
    size_t held = 0;
    for (int i = 0; i < n; i++)
        queued[nqueued++] = spans[i];
    for (int i = 0; i < nqueued; i++)
        held += queued[i].len;
    /* the filter's output out at once: its buffers, rounded up to a class */
    if (held > (size_t)zc.gzip_bufs_num * 4096)
        abort();
}

static int p_flush(pv_hreq_t *hr)
{
    (void)hr;
    if (nqueued && next_bit())
        return PV_AGAIN;
    write_out();
    return PV_OK;
}

static void p_finish(pv_hreq_t *hr)
{
    (void)hr;
    write_out();
    finished = 1;
}

static void p_abort(pv_hreq_t *hr)
{
    (void)hr;
    aborted = 1;
}

static const pv_resp_ops_t ops = {NULL, p_room, p_send_body, p_flush, p_finish, p_abort, NULL, NULL, NULL};
static const pv_proto_t proto = {"fuzz", &ops, NULL, NULL};
static const pv_handler_t handler = {"fuzz", NULL, NULL, NULL, NULL};

/* The server's part after a PV_AGAIN: write, then flush and proceed. */
static int drain(pv_hreq_t *hr)
{
    for (int guard = 0; guard < 100000; guard++) {
        write_out();
        int rc = pv_resp_flush(hr);
        if (rc == PV_ERR || aborted)
            return PV_ERR;
        if (rc == PV_AGAIN)
            continue;
        if (hr->handling && hr->handler != &handler && hr->handler->proceed) {
            hr->handler->proceed(hr);
            if (finished || aborted)
                return PV_OK;
            continue;
        }
        return PV_OK;
    }
    abort();
}

static size_t decode(int coding, const uint8_t *p, size_t n, uint8_t *dst, size_t cap)
{
    if (coding == PV_CODING_BR) {
        size_t len = cap;
        if (BrotliDecoderDecompress(n, p, &len, dst) != BROTLI_DECODER_RESULT_SUCCESS)
            abort();
        return len;
    }
    if (coding == PV_CODING_GUNZIP) {
        memcpy(dst, p, n);
        return n;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        abort();
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = dst;
    zs.avail_out = (uInt)cap;
    if (inflate(&zs, Z_FINISH) != Z_STREAM_END || zs.avail_in)
        abort();
    size_t len = zs.total_out;
    inflateEnd(&zs);
    return len;
}

static uint8_t body_in[1 << 16], gz[1 << 17], back[1 << 17];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int coding = 1 + data[0] % 3;
    memset(&zc, 0, sizeof(zc));
    zc.gzip_comp_level = 1 + data[1] % 9;
    zc.brotli_comp_level = data[1] % 12;
    zc.gzip_bufs_num = zc.gunzip_bufs_num = 1 + data[2] % 4;
    zc.gzip_bufs_size = zc.gunzip_bufs_size = 1024 << (data[3] % 3);
    /* the rest: half the protocol's script, half the body */
    size_t rest = size - 4, nbody = PV_MIN(rest / 2, sizeof(body_in));
    memcpy(body_in, data + 4, nbody);
    script = data + 4 + nbody;
    nscript = rest - nbody;
    iscript = 0;
    const uint8_t *feed = body_in;
    size_t nfeed = nbody;
    if (coding == PV_CODING_GUNZIP) {
        uLongf glen = sizeof(gz) - 32;
        z_stream zs;
        memset(&zs, 0, sizeof(zs));
        deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
        zs.next_in = body_in;
        zs.avail_in = (uInt)nbody;
        zs.next_out = gz;
        zs.avail_out = (uInt)glen;
        deflate(&zs, Z_FINISH);
        glen = zs.total_out;
        deflateEnd(&zs);
        feed = gz;
        nfeed = glen;
    }

    static pv_hreq_t hr;
    memset(&hr, 0, sizeof(hr));
    pv_arena_init(&hr.arena, 1024);
    hr.proto = &proto;
    hr.handler = &handler;
    nout = 0;
    nqueued = 0;
    finished = aborted = 0;
    if (pv_compress_start(&hr, coding, &zc, data[3] & 4 ? (int64_t)nfeed : -1) != PV_OK)
        abort();

    size_t off = 0;
    int si = 1;
    while (off < nfeed && !aborted) {
        int room = pv_resp_room(&hr);
        if (room <= 0) {
            if (pv_resp_flush(&hr) != PV_OK && drain(&hr) != PV_OK)
                break;
            continue;
        }
        pv_str_t spans[4];
        int n = 0;
        for (; n < PV_MIN(room, 4) && off < nfeed; n++) {
            size_t len = 1 + (si < (int)nscript ? script[si++] : 255) % 300;
            len = PV_MIN(len, nfeed - off);
            spans[n] = (pv_str_t){(const char *)feed + off, len};
            off += len;
        }
        pv_resp_send_body(&hr, spans, n);
        int rc = pv_resp_flush(&hr);
        if (rc == PV_AGAIN && drain(&hr) != PV_OK)
            break;
        /* PV_OK: every byte handed over was taken by the encoder */
        if (hr.zf && pv_compress_room(&hr) == 0 && !aborted)
            abort();
    }
    if (!aborted) {
        pv_resp_finish(&hr);
        if (!finished && !aborted)
            drain(&hr);
        if (!finished && !aborted)
            abort();
    }
    if (finished) {
        size_t len = decode(coding, out, nout, back, sizeof(back));
        if (len != nbody || memcmp(back, body_in, nbody) != 0)
            abort();
    }
    pv_compress_free(&hr);
    pv_arena_free(&hr.arena);
    return 0;
}
