/* The buffer an HTTP/1 request head is read into, as NGINX sizes it:
 * client_header_buffer_size first, then a standard buffer, then up to
 * the large_client_header_buffers total. */
#include "headbuf.h"

#include <string.h>

/* The most bytes of a head that may arrive: large_client_header_buffers
 * in total, or a standard buffer when that is less. */
static size_t head_limit(const pv_hreq_t *hr)
{
    const pv_server_t *s = hr->r.srv;
    size_t limit = (size_t)s->large_header_buffers_num * (size_t)s->large_header_buffers_size;
    return PV_MAX(limit, (size_t)PV_BUF_SIZE);
}

/* Grow the head buffer when a head outgrows it: from the first small one
 * (client_header_buffer_size) to a standard buffer, then up to the
 * large_client_header_buffers total, as NGINX moves a long head into a
 * large buffer. The buffer must take need more bytes, crs of them CRs to
 * insert before bare LFs: those do not count against the limit, the
 * buffer is made larger by them. Returns 0, -1 at the limit, -2 when out
 * of memory. */
int pv_head_grow(pv_hconn_t *c, size_t need, size_t crs)
{
    pv_hreq_t *hr = c->hr;
    size_t limit = head_limit(hr);
    pv_buf_t *b = c->in;
    size_t added = hr->crlf.added;
    if (b->last + need - crs - PV_MIN(added, b->last) > limit)
        return -1;
    size_t size = PV_BUF_SIZE;
    if (b->size >= PV_BUF_SIZE || b->last + need > PV_BUF_SIZE) {
        /* room for the CRs; grown again for more, by as much again
         * (a head holds fewer than limit / 2 + 2 bare LFs) */
        size_t more = added + crs;
        if (b->size > limit)
            more = PV_MAX(more, PV_MIN(2 * (b->size - limit), limit / 2 + 2));
        size = limit + more;
    }
    pv_buf_t *nb = pv_buf_get_size(size);
    if (!nb)
        return -2;
    memcpy(nb->data, b->data, b->last);
    nb->pos = b->pos;
    nb->last = b->last;
    pv_buf_put(b);
    c->in = nb;
    return 0;
}

/* Free room to read more of a head into c->in: the buffer's, but no
 * more than lets the bytes that arrived reach the limit. */
size_t pv_head_room(const pv_hconn_t *c)
{
    const pv_buf_t *b = c->in;
    size_t room = b->size - b->last;
    if (c->hr) {
        size_t cap = head_limit(c->hr) + c->hr->crlf.added;
        room = cap > b->last ? PV_MIN(room, cap - b->last) : 0;
    }
    return room;
}

/* The status for a head over the limit: 414 while the request line is
 * not whole or its target is still being read, 431 after. */
int pv_head_too_big(const pv_hconn_t *c)
{
    const pv_hreq_t *hr = c->hr;
    if (hr && !hr->line_checked) {
        const pv_buf_t *b = c->in;
        const char *p = b->data + b->pos, *end = b->data + b->last;
        while (p < end && (*p == '\r' || *p == '\n'))
            p++;
        return p < end && memchr(p, '\n', (size_t)(end - p)) ? 431 : 414;
    }
    return !hr || (hr->url.len && hr->last_cb == 3) ? 414 : 431;
}

/* client_header_buffer_size of the address's default server (1 KiB
 * unless set), as NGINX reads a head. */
static size_t first_size(const pv_hconn_t *c)
{
    int64_t size = c->w->conf->http->listens[c->group].default_srv->client_header_buffer_size;
    return size > 0 && size < PV_BUF_SIZE ? (size_t)size : PV_BUF_SIZE;
}

pv_buf_t *pv_head_buf(pv_hconn_t *c)
{
    return pv_buf_get_size(first_size(c));
}

/* NGINX's head buffer holds a head that fits client_header_buffer_size,
 * else one large buffer; body bytes that came with the head fill the
 * rest. */
size_t pv_head_body_room(const pv_hreq_t *hr)
{
    size_t first = first_size(hr->c), head = hr->head_len;
    if (head <= first)
        return first - head;
    size_t large = (size_t)hr->r.srv->large_header_buffers_size;
    return head < large ? large - head : 0;
}

