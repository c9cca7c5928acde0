/* The proxied response body's way to the client (see pipe.h). */
#include "pipe.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../http/reqbody.h"
#include "../http/server.h"
#include "../upstream/upstream.h"
#include "pcache.h"
#include "proxy.h"
#include "pstore.h"

/* ---- the response head ------------------------------------------------------ */

/* ngx_atoi: digits only, no sign; -1 when not a number or too large. */
static int64_t parse_rate(pv_str_t v)
{
    int64_t n = 0;
    if (!v.len)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9' || n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

void pv_pipe_start(pv_proxy_t *px, const pv_pipe_conf_t *cf, int ign, const pv_header_t *fields, int nfields)
{
    pv_pipe_t *p = &px->pipe;
    p->cf = cf;
    p->buffering = (uint8_t)(cf->buffering && !px->sub_done);
    p->delayed = 0;
    p->read_len = 0;
    p->start_s = (uint64_t)(pv_time_ms() / 1000); /* wall-clock seconds, as NGINX's ngx_time() */
    for (int i = 0; i < nfields; i++) {
        const pv_header_t *f = &fields[i];
        if (f->name.len == 17 && !(ign & PV_IGN_X_ACCEL_BUFFERING) && PV_STR_IEQ(f->name, "x-accel-buffering")) {
            /* the upstream switches buffering for its response, as NGINX lets it */
            if (PV_STR_IEQ(f->value, "yes"))
                p->buffering = !px->sub_done;
            else if (PV_STR_IEQ(f->value, "no"))
                p->buffering = 0;
        } else if (f->name.len == 18 && !(ign & PV_IGN_X_ACCEL_LIMIT_RATE) &&
                   PV_STR_IEQ(f->name, "x-accel-limit-rate")) {
            int64_t n = parse_rate(f->value);
            if (n >= 0) {
                px->r->limit_rate = n;
                px->r->limit_rate_set = 1;
            }
        }
    }
    /* the rate applies to a buffered response only, as NGINX's */
    p->rate = p->buffering ? cf->limit_rate : 0;
    if (!p->buffering && px->r->pcache)
        pv_pcache_unbuffered(px->hr); /* nor is an unbuffered one stored */
}

void pv_pipe_head(pv_proxy_t *px)
{
    const pv_loc_conf_t *lc = &px->loc->conf;
    int ign = lc->hdr.ignore == PV_UNSET ? 0 : lc->hdr.ignore;
    pv_pipe_start(px, &lc->proxy_pipe, ign, px->rp.fields, px->rp.accel ? px->rp.nfields : 0);
}

int pv_pipe_rate_wait(pv_proxy_t *px, size_t *max)
{
    pv_pipe_t *p = &px->pipe;
    pv_loop_t *loop = px->hr->w->loop;
    int64_t limit = p->rate * ((int64_t)(pv_time_ms() / 1000) - (int64_t)p->start_s + 1) - (int64_t)p->read_len;
    if (limit <= 0) {
        p->delayed = 1;
        pv_timer_set(loop, &px->u->timer, (uint64_t)(-limit * 1000 / p->rate + 1));
        return 1;
    }
    p->delayed = 0;
    if ((uint64_t)limit < *max)
        *max = (size_t)limit;
    return 0;
}

/* ---- what is held ------------------------------------------------------------ */

/* Bytes the pipe may still take: behind bytes in the file only the file
 * (they leave in order), else the memory not filled and the file. Under
 * *_store the file has no limit, as NGINX's (it is the store's). */
static uint64_t room(const pv_pipe_t *p)
{
    const pv_pipe_conf_t *cf = p->cf;
    uint64_t max = cf->store ? (uint64_t)INT64_MAX : (uint64_t)cf->max_temp_file_size;
    uint64_t file = max > p->wr ? max - p->wr : 0;
    if (p->rd != p->wr)
        return file;
    uint64_t mem = (uint64_t)(cf->buffers_num - p->nbufs) * (uint64_t)cf->buffers_size;
    if (p->tail)
        mem += p->tail->size - p->tail->last;
    return mem + file;
}

static int file_put(pv_proxy_t *px, const char *d, size_t n)
{
    pv_pipe_t *p = &px->pipe;
    pv_hreq_t *hr = px->hr;
    const pv_pipe_conf_t *cf = p->cf;
    if (!p->path) {
        p->fd = pv_temp_file_open(hr, cf->temp_path, &p->path);
        if (p->fd < 0) {
            p->path = NULL;
            return -1;
        }
        /* nobody opens it by name: it leaves the directory at once, as
         * NGINX's non-persistent temp files do */
        unlink(p->path);
        if (!cf->store) /* NGINX's store file is this one, made without the warning */
            pv_log(PV_LOG_WARN, "an upstream response is buffered to a temporary file %s while reading upstream, "
                            "client: %s", p->path, hr->r.peer_text);
    }
    while (n) {
        size_t k = (size_t)PV_MIN((uint64_t)n, (uint64_t)cf->write_size); /* *_temp_file_write_size */
        ssize_t w = pwrite(p->fd, d, k, (off_t)p->wr);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            pv_log(PV_LOG_CRIT, "pwrite() \"%s\" failed (%d: %s), client: %s", p->path, errno,
                   strerror(errno), hr->r.peer_text);
            return -1;
        }
        d += w;
        n -= (size_t)w;
        p->wr += (uint64_t)w;
    }
    return 0;
}

/* Keep n bytes (room() was asked): memory while the file is empty, then
 * the file. 0, or -1 (logged). */
static int put(pv_proxy_t *px, const char *d, size_t n)
{
    pv_pipe_t *p = &px->pipe;
    const pv_pipe_conf_t *cf = p->cf;
    while (n && p->rd == p->wr) {
        pv_buf_t *t = p->tail;
        if (!t || t->last == t->size) {
            if (p->nbufs >= cf->buffers_num)
                break;
            if (!(t = pv_buf_get_size((size_t)cf->buffers_size))) {
                pv_cache_nomem("a response buffer", px->hr->r.peer_text);
                return -1;
            }
            if (p->tail)
                p->tail->next = t;
            else
                p->head = t;
            p->tail = t;
            p->nbufs++;
        }
        size_t k = PV_MIN(n, (size_t)(t->size - t->last));
        memcpy(t->data + t->last, d, k);
        t->last += (uint32_t)k;
        d += k;
        n -= k;
    }
    return n ? file_put(px, d, n) : 0;
}

/* The bytes of the last give() are written: drop them. */
static void given(pv_pipe_t *p)
{
    uint64_t n = p->out;
    p->out = 0;
    if (p->out_file) {
        p->rd += n;
        if (p->rd == p->wr)
            p->rd = p->wr = 0; /* drained: the file is written from its start again */
        return;
    }
    while (n && p->head) { /* the bytes given are all in the held buffers */
        pv_buf_t *b = p->head;
        size_t k = (size_t)PV_MIN(n, (uint64_t)(b->last - b->pos));
        b->pos += (uint32_t)k;
        n -= k;
        if (b->pos == b->last) {
            /* memory goes back as soon as the client has it */
            p->head = b->next;
            if (!p->head)
                p->tail = NULL;
            p->nbufs--;
            pv_buf_put(b);
        }
    }
}

/* Queue the next held bytes to the client, at most proxy_busy_buffers_size:
 * memory first, then the file. 1 when queued, 0 when nothing is held, -1
 * on a failure (logged). */
static int give(pv_proxy_t *px)
{
    pv_pipe_t *p = &px->pipe;
    pv_hreq_t *hr = px->hr;
    size_t busy = (size_t)p->cf->busy_size, total = 0;
    pv_str_t spans[16];
    int ns = 0, max = PV_MIN(pv_resp_room(hr), 16);
    for (pv_buf_t *b = p->head; b && ns < max && total < busy; b = b->next) {
        size_t k = PV_MIN((size_t)(b->last - b->pos), busy - total);
        spans[ns++] = (pv_str_t){b->data + b->pos, k};
        total += k;
    }
    if (ns) {
        p->out = total;
        p->out_file = 0;
        pv_resp_send_body(hr, spans, ns);
        return 1;
    }
    if (p->rd == p->wr || max <= 0)
        return 0;
    if (!p->chunk && !(p->chunk = pv_buf_get())) {
        pv_cache_nomem("a response buffer", hr->r.peer_text);
        return -1;
    }
    size_t want = (size_t)PV_MIN((uint64_t)PV_MIN(busy, (size_t)p->chunk->size), p->wr - p->rd);
    ssize_t n = pread(p->fd, p->chunk->data, want, (off_t)p->rd);
    if (n <= 0) {
        pv_log(PV_LOG_CRIT, "pread() \"%s\" failed (%d: %s), client: %s", p->path, n < 0 ? errno : 0,
               n < 0 ? strerror(errno) : "file shorter than written", hr->r.peer_text);
        return -1;
    }
    p->out = (uint64_t)n;
    p->out_file = 1;
    pv_str_t s = {p->chunk->data, (size_t)n};
    pv_resp_send_body(hr, &s, 1);
    return 1;
}

/* Hand the client what is held while it takes it. 0 when it is slow or
 * nothing is held (the body then goes straight through again), -1 when
 * the request has ended (nothing of it may be touched). */
static int drain(pv_proxy_t *px)
{
    pv_pipe_t *p = &px->pipe;
    pv_hreq_t *hr = px->hr;
    for (;;) {
        int rc = pv_resp_flush(hr);
        if (rc == PV_ERR)
            return -1;
        if (rc == PV_AGAIN)
            return 0;
        pv_buf_put(p->held);
        p->held = NULL;
        given(p);
        int g = give(px);
        if (g < 0) {
            pv_resp_abort(hr);
            return -1;
        }
        if (g)
            continue;
        if (p->upstream_done) {
            hr->handling = 0;
            if (p->cut)
                pv_resp_abort(hr);
            else
                pv_resp_finish(hr);
            return -1;
        }
        p->on = 0;
        return 0;
    }
}

/* ---- the body ----------------------------------------------------------------- */

/* Where every decoded body span goes, once and in order: proxy_store's
 * file first (the whole body, as the upstream sent it), then to the
 * client's queue, or into what is held for it. 0, or -1 after ending the
 * request. */
static inline __attribute__((always_inline)) int deliver(pv_proxy_t *px, const pv_str_t *spans, int n)
{
    if (px->sub_done) {
        if (px->hr->tee) /* an auth subrequest's body is dropped, or only stored */
            px->hr->tee->body(px->hr, spans, n);
        return 0;
    }
    if (pv_unlikely(px->pipe.store) && pv_pstore_body(px, spans, n) < 0) {
        pv_resp_abort(px->hr);
        return -1;
    }
    if (!px->pipe.on) {
        pv_resp_send_body(px->hr, spans, n);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        if (put(px, spans[i].p, spans[i].len) < 0) {
            pv_resp_abort(px->hr);
            return -1;
        }
    }
    return 0;
}

/* Decode what the read buffer holds into the client queue while it has
 * room. 1 once the body is complete, 0 otherwise, -1 on a framing error,
 * -2 when the request ended. */
static inline __attribute__((always_inline)) int direct(pv_proxy_t *px)
{
    pv_buf_t *b = px->uin;
    pv_str_t spans[16];
    while (!px->rp.body_done && b->pos < b->last) {
        int max = px->sub_done ? 16 : PV_MIN(pv_resp_room(px->hr), 16);
        if (max <= 0)
            return 0;
        int ns = 0;
        ssize_t used = pv_uresp_body(&px->rp, b->data + b->pos, b->last - b->pos, spans, &ns, max);
        if (used < 0)
            return -1;
        b->pos += (uint32_t)used;
        if (deliver(px, spans, ns) < 0)
            return -2;
    }
    return px->rp.body_done;
}

/* Decode what the read buffer holds into what is held, while there is
 * room. PV_PIPE_DONE once the body is complete, PV_PIPE_READ otherwise,
 * PV_PIPE_BAD on a framing error, PV_PIPE_WAIT when the request ended. */
static int absorb(pv_proxy_t *px)
{
    pv_buf_t *b = px->uin;
    pv_str_t spans[16];
    while (!px->rp.body_done && b->pos < b->last) {
        uint64_t r = room(&px->pipe);
        if (!r)
            break;
        int ns = 0;
        size_t len = (size_t)PV_MIN((uint64_t)(b->last - b->pos), r); /* decoded bytes are never more */
        ssize_t used = pv_uresp_body(&px->rp, b->data + b->pos, len, spans, &ns, 16);
        if (used < 0)
            return PV_PIPE_BAD;
        b->pos += (uint32_t)used;
        if (deliver(px, spans, ns) < 0)
            return PV_PIPE_WAIT;
        if (!used)
            break;
    }
    return px->rp.body_done ? PV_PIPE_DONE : PV_PIPE_READ;
}

/* The client fell behind: from now on the body goes through what is held
 * and the upstream is read on regardless. The read buffer stays with the
 * client queue, which points into it; a new one reads. 0, or -1 after
 * ending the request. */
static int hold(pv_proxy_t *px)
{
    pv_pipe_t *p = &px->pipe;
    pv_buf_t *b = pv_buf_get(), *old = px->uin;
    if (!b) {
        pv_cache_nomem("an upstream response buffer", px->r->peer_text);
        pv_resp_abort(px->hr);
        return -1;
    }
    size_t rest = old->last - old->pos;
    memcpy(b->data, old->data + old->pos, rest);
    b->last = (uint32_t)rest;
    old->last = old->pos;
    px->uin = b;
    p->held = old;
    p->on = p->used = 1;
    p->out = 0;
    return 0;
}

int pv_pipe_body(pv_proxy_t *px)
{
    pv_pipe_t *p = &px->pipe;
    pv_buf_t *b;
    for (;;) {
        b = px->uin;
        if (p->on) {
            int rc = absorb(px);
            if (rc != PV_PIPE_READ)
                return rc;
            if (drain(px) < 0)
                return PV_PIPE_WAIT;
            if (!p->on)
                continue; /* all taken: straight through again */
            if (b->pos < b->last) {
                /* nothing more fits: the upstream waits for the client,
                 * with no read timeout meanwhile (as NGINX) */
                pv_timer_del(px->hr->w->loop, &px->u->timer);
                return PV_PIPE_WAIT;
            }
            b->pos = b->last = 0;
            return PV_PIPE_READ;
        }
        if (b->pos < b->last || px->resp_frame == PV_FRAME_NONE) {
            int done = direct(px);
            if (done)
                return done == -2 ? PV_PIPE_WAIT : done < 0 ? PV_PIPE_BAD : PV_PIPE_DONE;
        }
        if (b->pos == b->last && b->last < b->size && px->u->x.readable && !p->rate &&
            pv_resp_postpone(px->hr)) {
            /* a small output (a head, a compressor's first bytes) waits
             * for what the next read may bring at once, so they leave
             * in one write; upstream_read writes it before it waits. The
             * queue points into the read buffer: the read goes behind
             * what it holds, never over it */
            return PV_PIPE_READ;
        }
        int rc = pv_resp_flush(px->hr);
        if (rc == PV_AGAIN && p->buffering) {
            if (hold(px) < 0)
                return PV_PIPE_WAIT;
            continue;
        }
        if (rc != PV_OK)
            return PV_PIPE_WAIT; /* the client is slow (proceed() follows), or gone */
        if (b->pos < b->last)
            continue; /* more was read than the queue took */
        b->pos = b->last = 0;
        return PV_PIPE_READ;
    }
}

int pv_pipe_push(pv_proxy_t *px, pv_buf_t **bp)
{
    pv_pipe_t *p = &px->pipe;
    pv_buf_t *b = *bp;
    pv_str_t s = {b->data + b->pos, b->last - b->pos};
    if (p->on) {
        /* what fits is held; the rest waits in b for room */
        s.len = (size_t)PV_MIN((uint64_t)s.len, room(p));
        if (s.len && deliver(px, &s, 1) < 0)
            return PV_PIPE_ENDED;
        b->pos += (uint32_t)s.len;
        if (b->pos == b->last)
            b->pos = b->last = 0;
        if (drain(px) < 0)
            return PV_PIPE_ENDED;
        /* the caller's next buffer must fit, or the upstream waits */
        return !p->on || (!b->last && room(p) >= b->size) ? PV_PIPE_READ : PV_PIPE_WAIT;
    }
    if (s.len)
        deliver(px, &s, 1);
    int rc = pv_resp_flush(px->hr);
    if (rc == PV_ERR)
        return PV_PIPE_ENDED;
    if (rc == PV_OK) {
        b->pos = b->last = 0;
        return PV_PIPE_READ;
    }
    if (!p->buffering)
        return PV_PIPE_WAIT; /* the queue points into b until the client takes it */
    /* the client fell behind: b stays with its queue; the caller goes on
     * with a new buffer and what it decodes is held */
    pv_buf_t *nb = pv_buf_get_size(b->size);
    if (!nb) {
        pv_cache_nomem("an upstream response buffer", px->r->peer_text);
        pv_resp_abort(px->hr);
        return PV_PIPE_ENDED;
    }
    *bp = nb;
    p->held = b;
    p->on = p->used = 1;
    p->out = 0;
    return PV_PIPE_READ;
}

int pv_pipe_proceed(pv_proxy_t *px)
{
    if (px->pipe.on && drain(px) < 0)
        return 0;
    return px->u && px->resp_head_done;
}

int pv_pipe_upstream_done(pv_proxy_t *px)
{
    pv_pipe_t *p = &px->pipe;
    if (!p->on)
        return 0;
    p->upstream_done = 1;
    drain(px);
    return 1;
}

int pv_pipe_upstream_cut(pv_proxy_t *px, int rest)
{
    pv_pipe_t *p = &px->pipe;
    if (!rest) {
        pv_resp_abort(px->hr);
        return 0;
    }
    p->upstream_done = p->cut = p->on = p->used = 1;
    return drain(px) == 0;
}

void pv_pipe_free(pv_pipe_t *p)
{
    while (p->head) {
        pv_buf_t *b = p->head;
        p->head = b->next;
        pv_buf_put(b);
    }
    pv_buf_put(p->held);
    pv_buf_put(p->chunk);
    pv_pstore_drop(p->store);
    if (p->path)
        close(p->fd);
    memset(p, 0, sizeof(*p));
}
