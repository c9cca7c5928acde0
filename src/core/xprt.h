/* Transports: the byte stream under every connection, as a table of
 * operations (Redis's ConnectionType, HAProxy's xprt_ops). The plain
 * socket is one implementation; TLS is another. Code above this layer
 * reads, writes and closes through the table and looks only at the
 * readiness flags, which the transport keeps: a TLS read that needs the
 * socket writable, or plaintext already decrypted and buffered, shows up
 * as the flags, not as a branch in HTTP code. */
#ifndef PV_XPRT_H
#define PV_XPRT_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "loop.h"

typedef struct pv_xprt_s pv_xprt_t;

typedef struct pv_xprt_ops_s {
    const char *name; /* "plain", "tls" (for logs) */
    /* Read up to len bytes: the count read, 0 at the peer's end of
     * stream, PV_AGAIN (a readiness flag was cleared) or PV_ERR (errno). */
    ssize_t (*read)(pv_xprt_t *x, void *buf, size_t len);
    /* Write from iov: the count written, PV_AGAIN or PV_ERR (errno). */
    ssize_t (*writev)(pv_xprt_t *x, const struct iovec *iov, int iovcnt);
    /* Without consuming anything: 1 when data is waiting, 0 when the peer
     * has ended the stream, PV_AGAIN when nothing is waiting, PV_ERR. */
    int (*peek)(pv_xprt_t *x);
    /* End our direction of the stream once written data has left. */
    int (*shutdown)(pv_xprt_t *x);
    /* Release the transport and close the descriptor (after the loop
     * stopped watching it). */
    void (*close)(pv_xprt_t *x);
} pv_xprt_ops_t;

/* One connection's transport. Embedded in its owner (client or upstream
 * connection); io.data points at the owner. */
struct pv_xprt_s {
    pv_io_t io;                /* the socket in the loop */
    const pv_xprt_ops_t *ops;  /* implementation */
    void *ctx;                 /* implementation state (a TLS session); NULL for plain */
    uint8_t readable;          /* a read may make progress (edge-triggered: until PV_AGAIN) */
    uint8_t writable;          /* a write may make progress */
    uint8_t fin;               /* the peer's FIN (or an error) was signalled: read until EOF */
    uint8_t read_wants;        /* PV_EV_READ or PV_EV_WRITE: the socket event a stalled read waits for */
    uint8_t write_wants;       /* the same for a stalled write */
    const char *why;           /* after a PV_ERR: the transport's account of it for the log
                                * (a TLS handshake to an upstream), else NULL; valid until the
                                * next transport call of this thread */
    struct pv_pp_s *pp;        /* the addresses of a PROXY protocol header read before it
                                * (core/proxy_proto.h), else NULL; freed with the transport */
};

/* The plain socket transport. */
extern const pv_xprt_ops_t pv_xprt_plain;

/* Set x up over fd with the plain transport; cb/data as for pv_io_t. */
void pv_xprt_init(pv_xprt_t *x, int fd, pv_io_cb cb, void *data);
/* Fold socket events (PV_EV_*) into the readiness flags. Returns the
 * events as the owner should see them: PV_EV_READ when a read may make
 * progress, PV_EV_WRITE when a write may (for TLS, a read may wait for
 * the socket to be writable and the reverse), the other bits unchanged. */
unsigned pv_xprt_events(pv_xprt_t *x, unsigned events);

static inline ssize_t pv_xprt_read(pv_xprt_t *x, void *buf, size_t len) { return x->ops->read(x, buf, len); }
static inline ssize_t pv_xprt_writev(pv_xprt_t *x, const struct iovec *iov, int n) { return x->ops->writev(x, iov, n); }
static inline int pv_xprt_peek(pv_xprt_t *x) { return x->ops->peek(x); }
static inline int pv_xprt_shutdown(pv_xprt_t *x) { return x->ops->shutdown(x); }
/* Close the transport; the caller has taken io out of the loop. */
static inline void pv_xprt_close(pv_xprt_t *x)
{
    if (x->io.fd >= 0)
        x->ops->close(x);
    x->io.fd = -1;
    free(x->pp);
    x->pp = NULL;
}

#endif
