/* An output queue of iovecs written with one writev(2). Data is never
 * copied: entries point into the buffers that hold it, which the owner
 * keeps until the queue has drained. Chunked framing adds small size lines
 * kept inside the queue itself. */
#ifndef PV_OUTQ_H
#define PV_OUTQ_H

#include <stdint.h>
#include <sys/uio.h>
#include "common.h"
#include "xprt.h"

#define PV_OUTQ_IOV 64 /* entries per queue */
#define PV_OUTQ_HDR 24 /* chunk-size lines per queue */

typedef struct pv_outq_s {
    struct iovec iov[PV_OUTQ_IOV]; /* pending entries, iov[first..first+n) */
    int first;                     /* first pending entry */
    int n;                         /* pending entries */
    int nhdr;                      /* chunk-size lines in use */
    char hdr[PV_OUTQ_HDR][20];     /* storage for chunk-size lines */
} pv_outq_t;

static inline void pv_outq_reset(pv_outq_t *q) { q->first = q->n = q->nhdr = 0; }
static inline int pv_outq_empty(const pv_outq_t *q) { return q->n == 0; }
/* Whether a chunk (3 entries and a size line) still fits. */
static inline int pv_outq_chunk_room(const pv_outq_t *q)
{
    return q->first + q->n + 3 <= PV_OUTQ_IOV && q->nhdr < PV_OUTQ_HDR;
}
/* Whether n plain entries still fit. */
static inline int pv_outq_room(const pv_outq_t *q, int n) { return q->first + q->n + n <= PV_OUTQ_IOV; }
/* Bytes pending. */
static inline size_t pv_outq_bytes(const pv_outq_t *q)
{
    size_t n = 0;
    for (int i = q->first; i < q->first + q->n; i++)
        n += q->iov[i].iov_len;
    return n;
}

/* Append len bytes at p (not copied). */
void pv_outq_push(pv_outq_t *q, const void *p, size_t len);
/* Append one chunk of the chunked coding around len bytes at p. */
void pv_outq_push_chunk(pv_outq_t *q, const void *p, size_t len);
/* Append one chunk around n spans (entries: n plus 2, and a size line),
 * as NGINX frames the body bytes it sends upstream at once. */
void pv_outq_push_chunkv(pv_outq_t *q, const pv_str_t *v, int n);
/* Append the last chunk and the empty trailer section. */
void pv_outq_push_last_chunk(pv_outq_t *q);
/* Write as much as the transport takes. Returns PV_OK when drained,
 * PV_AGAIN when it is full, PV_ERR (errno set) on error. Bytes written
 * are added to *sent. */
int pv_outq_flush(pv_outq_t *q, pv_xprt_t *x, uint64_t *sent);
/* The same, writing at most max bytes: PV_OK once they are written or
 * the queue is drained (the caller looks which), else as above. */
int pv_outq_flush_max(pv_outq_t *q, pv_xprt_t *x, uint64_t *sent, size_t max);

#endif
