/* The compression body filter: the handler's body spans go through a
 * gzip (zlib, raw deflate with NGINX's header and trailer) or Brotli
 * encoder, or the gunzip decoder, into at most gzip_buffers (gunzip_buffers)
 * output buffers, which are handed to
 * the protocol's response calls. The handler's bytes are held (not
 * copied) until the encoder has taken them: room() is 0 and flush() does
 * not answer PV_OK before that, as the response calls promise. When the
 * handler finishes and the end of the stream does not fit at once, the
 * filter becomes the request's running handler until it is written. */
#include "compress.h"

#include <stdlib.h>
#include <string.h>
#include <brotli/encode.h>
#include <zlib.h>

#include "../core/buf.h"
#include "server.h"

#define ZF_SPANS 16 /* handler spans taken at once */

typedef struct pv_zfilter_s {
    int coding;              /* PV_CODING_* */
    z_stream *zs;            /* gzip: raw deflate; gunzip: inflate */
    BrotliEncoderState *br;  /* br */
    uint32_t crc, isize;     /* gzip trailer */
    uint8_t tail[10];        /* gzip header, then trailer, not yet in a buffer */
    uint8_t ntail, tail_off;
    uint8_t zdone;           /* the encoder has ended its stream */
    uint8_t ended;           /* ... and every byte of it is in a buffer */
    uint8_t finishing;       /* the handler finished: no more input */
    uint8_t failed;          /* the encoder or memory failed: the response is cut */
    uint8_t took_over;       /* the filter is the running handler (finishing) */
    uint8_t saved_handling;
    uint8_t standard;        /* gzip: the usual window and hash size (its state may be kept) */
    const pv_handler_t *saved; /* the handler it replaced */
    pv_str_t in[ZF_SPANS];   /* handler bytes not yet taken by the encoder */
    int in_first, nin;
    pv_buf_t **bufs;         /* output buffers, allocated as needed */
    int maxbufs, nalloc;     /* gzip_buffers number; allocated so far */
    int cur;                 /* the buffer being filled; -1: none */
    uint32_t sent;           /* bytes of bufs[cur] handed to the protocol */
    size_t bufsize;          /* gzip_buffers size */
} pv_zfilter_t;

/* One idle deflate state per thread, of the size most responses use
 * (window 32 KiB, hash level 8), reset and kept between responses: a
 * new state costs its 256 KiB taken from and given back to the heap. */
static __thread z_stream *idle_deflate;

void pv_compress_thread_cleanup(void)
{
    if (idle_deflate) {
        deflateEnd(idle_deflate);
        free(idle_deflate);
        idle_deflate = NULL;
    }
}

static z_stream *deflate_get(int level, int wbits, int memlevel)
{
    z_stream *zs = idle_deflate;
    if (zs && wbits == 15 && memlevel == 8) {
        idle_deflate = NULL;
        if (deflateParams(zs, level, Z_DEFAULT_STRATEGY) == Z_OK)
            return zs;
        deflateEnd(zs);
        free(zs);
    }
    zs = calloc(1, sizeof(*zs));
    if (zs && deflateInit2(zs, level, Z_DEFLATED, -wbits, memlevel, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(zs);
        zs = NULL;
    }
    return zs;
}

static void deflate_put(z_stream *zs, int standard)
{
    if (standard && !idle_deflate && deflateReset(zs) == Z_OK) {
        idle_deflate = zs;
        return;
    }
    deflateEnd(zs);
    free(zs);
}

int pv_compress_start(pv_hreq_t *hr, int coding, const pv_zip_conf_t *zc, int64_t length)
{
    pv_zfilter_t *zf = pv_arena_calloc(&hr->arena, sizeof(*zf));
    if (!zf)
        return PV_ERR;
    zf->coding = coding;
    zf->cur = -1;
    zf->maxbufs = coding == PV_CODING_GUNZIP ? zc->gunzip_bufs_num : zc->gzip_bufs_num;
    zf->bufsize = (size_t)(coding == PV_CODING_GUNZIP ? zc->gunzip_bufs_size : zc->gzip_bufs_size);
    zf->bufs = pv_arena_calloc(&hr->arena, sizeof(pv_buf_t *) * (size_t)zf->maxbufs);
    if (!zf->bufs)
        return PV_ERR;
    if (coding == PV_CODING_GZIP) {
        /* NGINX's window and hash sizes, made smaller for a short body */
        int wbits = 15, memlevel = 8;
        while (length > 0 && wbits > 9 && length < (1 << (wbits - 1)) - 262) {
            wbits--;
            memlevel--;
        }
        memlevel = memlevel < 1 ? 1 : memlevel;
        zf->standard = wbits == 15 && memlevel == 8;
        if (!(zf->zs = deflate_get(zc->gzip_comp_level, wbits, memlevel)))
            return PV_ERR;
        static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        memcpy(zf->tail, head, sizeof(head));
        zf->ntail = sizeof(head);
        zf->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    } else if (coding == PV_CODING_GUNZIP) {
        /* zlib reads the gzip header and trailer; members may follow each other */
        if (!(zf->zs = calloc(1, sizeof(*zf->zs))))
            return PV_ERR;
        if (inflateInit2(zf->zs, 16 + MAX_WBITS) != Z_OK) {
            free(zf->zs);
            zf->zs = NULL;
            return PV_ERR;
        }
    } else {
        zf->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (!zf->br)
            return PV_ERR;
        int lgwin = 19;
        while (length > 0 && lgwin > BROTLI_MIN_WINDOW_BITS && ((int64_t)1 << (lgwin - 1)) >= length)
            lgwin--;
        BrotliEncoderSetParameter(zf->br, BROTLI_PARAM_QUALITY, (uint32_t)zc->brotli_comp_level);
        BrotliEncoderSetParameter(zf->br, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
        if (length > 0)
            BrotliEncoderSetParameter(zf->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)PV_MIN(length, 1 << 30));
    }
    hr->zf = zf;
    return PV_OK;
}

void pv_compress_free(pv_hreq_t *hr)
{
    pv_zfilter_t *zf = hr->zf;
    if (!zf)
        return;
    if (zf->coding == PV_CODING_GZIP) {
        deflate_put(zf->zs, zf->standard);
    } else if (zf->coding == PV_CODING_GUNZIP) {
        inflateEnd(zf->zs);
        free(zf->zs);
    } else
        BrotliEncoderDestroyInstance(zf->br);
    for (int i = 0; i < zf->nalloc; i++)
        pv_buf_put(zf->bufs[i]);
    hr->zf = NULL;
}

/* ---- encoding ---------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* gunzip: inflate from in into out. The stream ends with the input:
 * once the handler finished, a call that makes nothing ends it. */
static ssize_t decode(pv_zfilter_t *zf, pv_str_t *in, char *out, size_t cap, int fin)
{
    zf->zs->next_in = (Bytef *)(uintptr_t)in->p;
    zf->zs->avail_in = (uInt)in->len;
    zf->zs->next_out = (Bytef *)out;
    zf->zs->avail_out = (uInt)cap;
    int rc = inflate(zf->zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        return -1;
    size_t used = in->len - zf->zs->avail_in, made = cap - zf->zs->avail_out;
    if (rc == Z_STREAM_END && inflateReset(zf->zs) != Z_OK)
        return -1;
    if (used) {
        in->p += used;
        in->len -= used;
    }
    if (fin && !used && !made)
        zf->zdone = 1;
    return (ssize_t)made;
}

/* Run the encoder from in into out (cap bytes); the bytes taken leave
 * in. Returns the bytes written, or -1 when the encoder failed. */
static ssize_t encode(pv_zfilter_t *zf, pv_str_t *in, char *out, size_t cap, int fin)
{
    size_t used, made;
    if (zf->coding == PV_CODING_GUNZIP)
        return decode(zf, in, out, cap, fin);
    if (zf->coding == PV_CODING_GZIP) {
        zf->zs->next_in = (Bytef *)(uintptr_t)in->p;
        zf->zs->avail_in = (uInt)in->len;
        zf->zs->next_out = (Bytef *)out;
        zf->zs->avail_out = (uInt)cap;
        int rc = deflate(zf->zs, fin ? Z_FINISH : Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return -1;
        used = in->len - zf->zs->avail_in;
        made = cap - zf->zs->avail_out;
        if (used)
            zf->crc = (uint32_t)crc32(zf->crc, (const Bytef *)in->p, (uInt)used);
        zf->isize += (uint32_t)used;
        if (rc == Z_STREAM_END) {
            put_le32(zf->tail, zf->crc);
            put_le32(zf->tail + 4, zf->isize);
            zf->ntail = 8;
            zf->tail_off = 0;
            zf->zdone = 1;
        }
    } else {
        size_t ai = in->len, ao = cap;
        const uint8_t *ni = (const uint8_t *)in->p;
        uint8_t *no = (uint8_t *)out;
        if (!BrotliEncoderCompressStream(zf->br, fin ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_PROCESS, &ai,
                                         &ni, &ao, &no, NULL))
            return -1;
        used = in->len - ai;
        made = cap - ao;
        if (fin && BrotliEncoderIsFinished(zf->br))
            zf->zdone = 1;
    }
    if (used) { /* in may be the empty span (p NULL) */
        in->p += used;
        in->len -= used;
    }
    return (ssize_t)made;
}

/* Hand the bytes of the current buffer not handed over yet to the
 * protocol. 0 when it has no room for them now. */
static int push(pv_hreq_t *hr, pv_zfilter_t *zf)
{
    pv_buf_t *b = zf->cur >= 0 ? zf->bufs[zf->cur] : NULL;
    if (!b || b->last == zf->sent)
        return 1;
    if (hr->proto->resp->room(hr) <= 0)
        return 0;
    pv_str_t s = {b->data + zf->sent, b->last - zf->sent};
    hr->proto->resp->send_body(hr, &s, 1);
    zf->sent = b->last;
    return 1;
}

static int unsent(const pv_zfilter_t *zf)
{
    return zf->cur >= 0 && zf->bufs[zf->cur]->last != zf->sent;
}

/* The protocol wrote everything handed to it: the buffers are free,
 * but for the bytes of the current one not handed over yet. */
static void recycle(pv_zfilter_t *zf)
{
    if (zf->cur < 0)
        return;
    if (!unsent(zf)) {
        zf->cur = -1;
        return;
    }
    pv_buf_t *b = zf->bufs[zf->cur];
    zf->bufs[zf->cur] = zf->bufs[0];
    zf->bufs[0] = b;
    zf->cur = 0;
}

/* The next output buffer, or NULL when all gzip_buffers are out (or
 * memory ran out: failed is set). */
static pv_buf_t *next_buf(pv_zfilter_t *zf)
{
    if (zf->cur + 1 >= zf->maxbufs)
        return NULL;
    int i = zf->cur + 1;
    if (i == zf->nalloc) {
        pv_buf_t *b = pv_buf_get_size(zf->bufsize);
        if (!b) {
            zf->failed = 1;
            return NULL;
        }
        zf->bufs[zf->nalloc++] = b;
    }
    zf->cur = i;
    zf->sent = 0;
    zf->bufs[i]->pos = zf->bufs[i]->last = 0;
    return zf->bufs[i];
}

/* Encode what is pending while there is output room; a full buffer
 * goes to the protocol. Stops when nothing is left, when every buffer
 * is out, or when the protocol has no room. */
static void produce(pv_hreq_t *hr, pv_zfilter_t *zf)
{
    while (!zf->failed && (zf->nin > 0 || (zf->finishing && !zf->ended))) {
        pv_buf_t *b = zf->cur >= 0 ? zf->bufs[zf->cur] : NULL;
        if (!b || b->last == b->size) {
            if (b && !push(hr, zf))
                return;
            if (!(b = next_buf(zf)))
                return;
        }
        char *out = b->data + b->last;
        size_t cap = b->size - b->last;
        if (zf->ntail) {
            size_t n = PV_MIN(cap, zf->ntail);
            memcpy(out, zf->tail + zf->tail_off, n);
            b->last += (uint32_t)n;
            zf->tail_off = (uint8_t)(zf->tail_off + n);
            zf->ntail = (uint8_t)(zf->ntail - n);
            zf->ended = zf->zdone && !zf->ntail;
            continue;
        }
        if (zf->zdone) {
            zf->ended = 1;
            continue;
        }
        pv_str_t none = {NULL, 0};
        pv_str_t *in = zf->nin ? &zf->in[zf->in_first] : &none;
        ssize_t n = encode(zf, in, out, cap, zf->finishing && zf->nin <= 1);
        if (n < 0) {
            zf->failed = 1;
            return;
        }
        b->last += (uint32_t)n;
        if (zf->nin && in->len == 0 && --zf->nin == 0)
            zf->in_first = 0;
        else if (zf->nin && in->len == 0)
            zf->in_first++;
    }
}

/* ---- the response calls ------------------------------------------------------ */

int pv_compress_room(const pv_hreq_t *hr)
{
    return hr->zf->nin || hr->zf->finishing ? 0 : ZF_SPANS;
}

void pv_compress_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    pv_zfilter_t *zf = hr->zf;
    if (zf->in_first + zf->nin + n > ZF_SPANS) {
        memmove(zf->in, zf->in + zf->in_first, sizeof(pv_str_t) * (size_t)zf->nin);
        zf->in_first = 0;
    }
    for (int i = 0; i < n && zf->in_first + zf->nin < ZF_SPANS; i++)
        if (spans[i].len)
            zf->in[zf->in_first + zf->nin++] = spans[i];
    produce(hr, zf);
}

size_t pv_compress_pending(const pv_hreq_t *hr)
{
    const pv_zfilter_t *zf = hr->zf;
    return unsent(zf) ? zf->bufs[zf->cur]->last - zf->sent : 0;
}

int pv_compress_flush(pv_hreq_t *hr)
{
    pv_zfilter_t *zf = hr->zf;
    for (;;) {
        if (zf->failed) {
            hr->proto->resp->abort(hr);
            return PV_ERR;
        }
        int rc = hr->proto->resp->flush(hr);
        if (rc != PV_OK)
            return rc;
        recycle(zf);
        /* the handler's bytes are all in the encoder: a buffer not yet
         * full waits for more, as NGINX's gzip passes on full buffers
         * and the rest at the end (a small answer is one write) */
        if (!zf->nin && !(zf->finishing && !zf->ended))
            return PV_OK;
        produce(hr, zf);
    }
}

static void finish_step(pv_hreq_t *hr);
static void noop(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
}

static void zf_cleanup(pv_hreq_t *hr)
{
    pv_zfilter_t *zf = hr->zf;
    if (zf && zf->saved && zf->saved->cleanup)
        zf->saved->cleanup(hr);
}

/* the filter as the running handler while the end of the stream goes out */
static const pv_handler_t zf_handler = {"compress", finish_step, noop, noop, zf_cleanup};

static void give_back(pv_hreq_t *hr, pv_zfilter_t *zf)
{
    if (!zf->took_over)
        return;
    hr->handler = zf->saved;
    hr->handling = zf->saved_handling;
    zf->took_over = 0;
}

static void finish_step(pv_hreq_t *hr)
{
    pv_zfilter_t *zf = hr->zf;
    for (;;) {
        produce(hr, zf);
        if (zf->failed) {
            give_back(hr, zf);
            hr->proto->resp->abort(hr);
            return;
        }
        if (zf->ended && push(hr, zf) && !unsent(zf)) {
            give_back(hr, zf);
            pv_resp_done(hr);
            return;
        }
        if (!zf->took_over) {
            zf->saved = hr->handler;
            zf->saved_handling = hr->handling;
            hr->handler = &zf_handler;
            hr->handling = 1;
            zf->took_over = 1;
        }
        push(hr, zf);
        if (hr->proto->resp->flush(hr) != PV_OK)
            return; /* proceed() follows once it is written, or the request is gone */
        recycle(zf);
    }
}

void pv_compress_finish(pv_hreq_t *hr)
{
    hr->zf->finishing = 1;
    finish_step(hr);
}
