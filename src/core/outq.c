#include "outq.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

void pv_outq_push(pv_outq_t *q, const void *p, size_t len)
{
    if (len == 0)
        return;
    struct iovec *v = &q->iov[q->first + q->n++];
    v->iov_base = (void *)p;
    v->iov_len = len;
}

void pv_outq_push_chunk(pv_outq_t *q, const void *p, size_t len)
{
    pv_outq_push_chunkv(q, &(pv_str_t){(char *)p, len}, 1);
}

void pv_outq_push_chunkv(pv_outq_t *q, const pv_str_t *v, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += v[i].len;
    if (len == 0)
        return;
    char *h = q->hdr[q->nhdr++];
    int hl = snprintf(h, sizeof(q->hdr[0]), "%zx\r\n", len);
    pv_outq_push(q, h, (size_t)hl);
    for (int i = 0; i < n; i++)
        pv_outq_push(q, v[i].p, v[i].len);
    pv_outq_push(q, "\r\n", 2);
}

void pv_outq_push_last_chunk(pv_outq_t *q)
{
    pv_outq_push(q, "0\r\n\r\n", 5);
}

/* The first left bytes pending were written. */
static void consume(pv_outq_t *q, size_t left)
{
    while (left > 0) {
        struct iovec *v = &q->iov[q->first];
        if (left >= v->iov_len) {
            left -= v->iov_len;
            q->first++;
            q->n--;
        } else {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
            left = 0;
        }
    }
}

int pv_outq_flush(pv_outq_t *q, pv_xprt_t *x, uint64_t *sent)
{
    while (q->n > 0) {
        ssize_t w = pv_xprt_writev(x, &q->iov[q->first], q->n);
        if (w < 0)
            return (int)w;
        if (sent)
            *sent += (uint64_t)w;
        consume(q, (size_t)w);
    }
    q->first = 0;
    q->nhdr = 0;
    return PV_OK;
}

int pv_outq_flush_max(pv_outq_t *q, pv_xprt_t *x, uint64_t *sent, size_t max)
{
    while (q->n > 0 && max > 0) {
        /* the entries within max, the last one cut short for this call */
        struct iovec *v = &q->iov[q->first];
        size_t sum = 0, whole = 0;
        int n = 0;
        while (n < q->n && sum + v[n].iov_len <= max)
            sum += v[n++].iov_len;
        if (n < q->n && sum < max) {
            whole = v[n].iov_len;
            v[n++].iov_len = max - sum;
        }
        ssize_t w = pv_xprt_writev(x, v, n);
        if (whole)
            v[n - 1].iov_len = whole;
        if (w < 0)
            return (int)w;
        if (sent)
            *sent += (uint64_t)w;
        consume(q, (size_t)w);
        max -= (size_t)w;
    }
    if (q->n == 0)
        q->first = q->nhdr = 0;
    return PV_OK;
}
