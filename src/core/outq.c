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
    if (len == 0)
        return;
    char *h = q->hdr[q->nhdr++];
    int hl = snprintf(h, sizeof(q->hdr[0]), "%zx\r\n", len);
    pv_outq_push(q, h, (size_t)hl);
    pv_outq_push(q, p, len);
    pv_outq_push(q, "\r\n", 2);
}

void pv_outq_push_last_chunk(pv_outq_t *q)
{
    pv_outq_push(q, "0\r\n\r\n", 5);
}

int pv_outq_flush(pv_outq_t *q, pv_xprt_t *x, uint64_t *sent)
{
    while (q->n > 0) {
        ssize_t w = pv_xprt_writev(x, &q->iov[q->first], q->n);
        if (w < 0)
            return (int)w;
        if (sent)
            *sent += (uint64_t)w;
        size_t left = (size_t)w;
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
    q->first = 0;
    q->nhdr = 0;
    return PV_OK;
}
