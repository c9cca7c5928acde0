/* The request body stream (see body.h), and its HTTP/1 implementation:
 * bytes come from the head buffer first and then from a buffer of their
 * own; chunked framing is decoded in place and client_max_body_size is
 * checked on the way. */
#include "body.h"

#include "../core/cache.h"
#include "../core/log.h"
#include "headbuf.h"
#include "reqbody.h"
#include "server.h"
#include "accesslog.h"

static pv_buf_t *body_buf(const pv_hreq_t *hr)
{
    return hr->bin ? hr->bin : hr->c->in;
}

static size_t h1_buffered(const pv_hreq_t *hr)
{
    const pv_buf_t *b = body_buf(hr);
    return b ? b->last - b->pos : 0;
}

/* Once the body was read whole (reqbody.c), the calls read the copy. */
#define WHOLE(hr) ((hr)->rb && (hr)->rb->complete)

int pv_body_done(const pv_hreq_t *hr)
{
    return WHOLE(hr) ? pv_reqbody_done(hr) : hr->body_done;
}

int pv_body_error(const pv_hreq_t *hr)
{
    return hr->body_error;
}

void pv_body_hold(pv_hreq_t *hr)
{
    hr->body_held = 1;
}

static int h1_take(pv_hreq_t *hr, pv_str_t *spans, int max)
{
    pv_buf_t *b = body_buf(hr);
    if (hr->body_error)
        return PV_ERR;
    if (hr->body_done || b->pos == b->last || max <= 0)
        return 0;
    if (hr->body_frame == PV_FRAME_CLOSE) {
        /* a tunnel after a 101: every byte as it came (not counted in
         * $request_length, as NGINX does not count them) */
        spans[0] = (pv_str_t){b->data + b->pos, b->last - b->pos};
        b->pos = b->last;
        return 1;
    }
    if (hr->body_frame == PV_FRAME_LENGTH) {
        size_t n = b->last - b->pos;
        if (n > hr->body_left)
            n = (size_t)hr->body_left;
        spans[0] = (pv_str_t){b->data + b->pos, n};
        b->pos += (uint32_t)n;
        hr->r.request_length += n;
        hr->body_left -= n;
        hr->body_done = hr->body_left == 0;
        return 1;
    }
    int ns = 0;
    ssize_t used = pv_chunked_decode(&hr->chunk, b->data + b->pos, b->last - b->pos, spans, &ns, max);
    if (used < 0) {
        /* the client's framing is broken: nothing more can be trusted */
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid chunked body, client: %s", pv_log_client(&hr->r));
        hr->body_error = 400;
        return PV_ERR;
    }
    b->pos += (uint32_t)used;
    hr->r.request_length += (uint64_t)used;
    for (int i = 0; i < ns; i++)
        hr->body_decoded += spans[i].len;
    int64_t max_size = hr->r.loc->conf.client_max_body_size;
    if (max_size > 0 && hr->body_decoded > (uint64_t)max_size) {
        pv_log_r(&hr->r, PV_LOG_ERR, "client intended to send too large chunked body: %llu+ bytes, client: %s",
               (unsigned long long)hr->body_decoded, pv_log_client(&hr->r));
        hr->body_error = 413;
        return PV_ERR;
    }
    if (hr->chunk.done)
        hr->body_done = 1;
    return ns;
}

/* Read from the client into the body buffer. Bytes read, 0 at EOF,
 * PV_AGAIN or PV_ERR. */
static int read_body(pv_hreq_t *hr)
{
    pv_hconn_t *c = hr->c;
    pv_buf_t *b = body_buf(hr);
    if (b->pos == b->last) {
        if (b == c->in && !hr->bin) {
            /* keep the head where it is (the request model points into
             * it); further body bytes go to their own buffer */
            hr->bin = pv_buf_get();
            if (!hr->bin) {
                pv_cache_nomem("a body buffer", pv_log_client(&hr->r));
                return PV_ERR;
            }
            b = hr->bin;
        } else {
            b->pos = b->last = 0;
        }
        hr->body_released = 1;
    }
    if (b->last == b->size)
        return PV_AGAIN;
    ssize_t n = pv_xprt_read(&c->x, b->data + b->last, b->size - b->last);
    if (n > 0)
        b->last += (uint32_t)n;
    return (int)n;
}

static void body_timer(pv_hreq_t *hr)
{
    pv_hconn_t *c = hr->c;
    pv_timer_set(c->w->loop, &c->timer, (uint64_t)hr->r.loc->conf.client_body_timeout);
}

static int h1_read(pv_hreq_t *hr)
{
    int n = hr->c->x.readable ? read_body(hr) : PV_AGAIN;
    if (hr->body_frame == PV_FRAME_CLOSE) {
        /* a tunnel: its end (or an error, as NGINX takes one) is the
         * client closing; no client_body_timeout, the tunnel times itself */
        if (n == PV_AGAIN)
            return PV_AGAIN;
        if (n <= 0)
            hr->body_done = 1;
        return PV_OK;
    }
    if (n > 0)
        return PV_OK;
    if (n == PV_AGAIN) {
        body_timer(hr);
        return PV_AGAIN;
    }
    pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed connection while sending request body, client: %s",
           pv_log_client(&hr->r));
    return PV_ERR;
}

/* The body bytes held in the buffer, decoded (chunked framing on a copy
 * of the decoder's state: nothing is consumed). Their length; *raw gets
 * the bytes they take with their framing, *whole is set when the body
 * ends within them. Broken framing stops the count (the take that meets
 * it reports it). */
static uint64_t h1_held(pv_hreq_t *hr, uint64_t *raw, int *whole)
{
    pv_buf_t *b = body_buf(hr);
    size_t have = b ? b->last - b->pos : 0;
    if (hr->body_frame == PV_FRAME_LENGTH) {
        *whole = have >= hr->body_left;
        return *raw = PV_MIN((uint64_t)have, hr->body_left);
    }
    pv_chunked_t ck = hr->chunk;
    pv_str_t spans[16];
    uint32_t pos = b ? b->pos : 0;
    uint64_t len = 0;
    while (b && pos < b->last && !ck.done) {
        int ns = 0;
        ssize_t used = pv_chunked_decode(&ck, b->data + pos, b->last - pos, spans, &ns, 16);
        if (used <= 0)
            break;
        pos += (uint32_t)used;
        for (int i = 0; i < ns; i++)
            len += spans[i].len;
    }
    *raw = b ? pos - b->pos : 0;
    *whole = ck.done;
    return len;
}

static int h1_arrived(pv_hreq_t *hr, size_t limit, size_t *len)
{
    limit += pv_head_body_room(hr); /* NGINX's body buffer follows what came with the head */
    if (hr->body_done || hr->body_error ||
        (hr->body_frame != PV_FRAME_LENGTH && hr->body_frame != PV_FRAME_CHUNKED) ||
        (hr->body_frame == PV_FRAME_LENGTH && hr->body_left > limit))
        return 0;
    for (;;) {
        int whole;
        uint64_t raw, held = h1_held(hr, &raw, &whole);
        if (raw > limit) /* NGINX's buffers take the chunked framing too */
            return 0;
        if (whole) {
            *len = (size_t)held;
            return 1;
        }
        int n = hr->c->x.readable ? read_body(hr) : PV_AGAIN;
        if (n == PV_AGAIN)
            return 0; /* nothing more now, or the buffer is full */
        if (n <= 0) {
            pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed connection while sending request body, client: %s",
                   pv_log_client(&hr->r));
            return PV_ERR;
        }
    }
}

static int h1_rewindable(const pv_hreq_t *hr)
{
    return !hr->body_released;
}

static int h1_rewind(pv_hreq_t *hr)
{
    if (hr->body_released)
        return -1;
    hr->c->in->pos = hr->head_len;
    hr->r.request_length = hr->head_len - hr->crlf.added;
    hr->body_done = hr->body_frame == PV_FRAME_NONE;
    hr->body_left = hr->r.content_length > 0 ? (uint64_t)hr->r.content_length : 0;
    pv_chunked_init(&hr->chunk);
    hr->body_decoded = 0;
    hr->body_error = 0;
    return 0;
}

static void h1_discard_buffered(pv_hreq_t *hr)
{
    pv_buf_t *b = hr->c->in;
    /* no framing yet: a head refused before it was decided has no body
     * to skip (the connection closes after the answer) */
    if (hr->body_done || hr->bin || !b || hr->body_frame == PV_FRAME_NONE)
        return;
    if (hr->body_frame == PV_FRAME_LENGTH) {
        if (hr->body_left <= (uint64_t)(b->last - b->pos)) {
            b->pos += (uint32_t)hr->body_left;
            hr->r.request_length += hr->body_left;
            hr->body_left = 0;
            hr->body_done = 1;
        }
        return;
    }
    pv_chunked_t ck = hr->chunk;
    pv_str_t spans[16];
    uint32_t pos = b->pos;
    while (pos < b->last && !ck.done) {
        int ns = 0;
        ssize_t used = pv_chunked_decode(&ck, b->data + pos, b->last - pos, spans, &ns, 16);
        if (used < 0) {
            /* NGINX's discarding meets the broken framing too: 400 */
            pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid chunked body, client: %s", pv_log_client(&hr->r));
            hr->body_error = 400;
            return;
        }
        if (used == 0)
            return;
        pos += (uint32_t)used;
    }
    if (ck.done) {
        hr->r.request_length += pos - b->pos;
        b->pos = pos;
        hr->chunk = ck;
        hr->body_done = 1;
    }
}

static int h1_client_closed(pv_hreq_t *hr)
{
    int n = pv_xprt_peek(&hr->c->x);
    return n == 0 || n == PV_ERR;
}

const pv_body_ops_t pv_h1_body = {
    h1_take, h1_buffered, h1_read, h1_arrived, h1_rewind, h1_rewindable, h1_discard_buffered, h1_client_closed,
};

/* ---- the calls ---------------------------------------------------------- */

int pv_body_take(pv_hreq_t *hr, pv_str_t *spans, int max)
{
    return WHOLE(hr) ? pv_reqbody_take(hr, spans, max) : hr->proto->body->take(hr, spans, max);
}

size_t pv_body_buffered(const pv_hreq_t *hr)
{
    return WHOLE(hr) ? pv_reqbody_buffered(hr) : hr->proto->body->buffered(hr);
}

int pv_body_read(pv_hreq_t *hr)
{
    return WHOLE(hr) ? pv_reqbody_next(hr) : hr->proto->body->read(hr);
}

int pv_body_arrived(pv_hreq_t *hr, size_t limit, size_t *len)
{
    return WHOLE(hr) ? 0 : hr->proto->body->arrived(hr, limit, len);
}

int pv_body_rewind(pv_hreq_t *hr)
{
    if (WHOLE(hr)) {
        pv_reqbody_rewind(hr);
        return 0;
    }
    return hr->proto->body->rewind(hr);
}

int pv_body_rewindable(const pv_hreq_t *hr)
{
    return WHOLE(hr) ? 1 : hr->proto->body->rewindable(hr);
}

void pv_body_discard_buffered(pv_hreq_t *hr)
{
    hr->proto->body->discard_buffered(hr);
}

int pv_body_client_closed(pv_hreq_t *hr)
{
    return hr->proto->body->client_closed(hr);
}
