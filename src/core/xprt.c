#include "xprt.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

void pv_xprt_init(pv_xprt_t *x, int fd, pv_io_cb cb, void *data)
{
    *x = (pv_xprt_t){
        .io = {.fd = fd, .cb = cb, .data = data},
        .ops = &pv_xprt_plain,
        .read_wants = PV_EV_READ,
        .write_wants = PV_EV_WRITE,
    };
}

unsigned pv_xprt_events(pv_xprt_t *x, unsigned events)
{
    unsigned out = events & ~(unsigned)(PV_EV_READ | PV_EV_WRITE);
    if (events & PV_EV_RDHUP)
        x->fin = 1;
    if (events & (x->read_wants | PV_EV_HUP)) {
        x->readable = 1;
        out |= PV_EV_READ;
    }
    if (events & x->write_wants) {
        x->writable = 1;
        out |= PV_EV_WRITE;
    }
    return out;
}

static ssize_t plain_read(pv_xprt_t *x, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = recv(x->io.fd, buf, len, 0);
        if (n > 0) {
            /* a short read emptied the socket: the next byte brings a new
             * edge, so no recv() just to see EAGAIN (unless the FIN is in) */
            if ((size_t)n < len && !x->fin)
                x->readable = 0;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            x->readable = 0;
            return PV_AGAIN;
        }
        return PV_ERR;
    }
}

static ssize_t plain_writev(pv_xprt_t *x, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t w = sendmsg(x->io.fd, &mh, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            x->writable = 0;
            return PV_AGAIN;
        }
        return PV_ERR;
    }
}

static int plain_peek(pv_xprt_t *x)
{
    char ch;
    for (;;) {
        ssize_t n = recv(x->io.fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? PV_AGAIN : PV_ERR;
    }
}

static int plain_shutdown(pv_xprt_t *x)
{
    return shutdown(x->io.fd, SHUT_WR) == 0 ? PV_OK : PV_ERR;
}

static void plain_close(pv_xprt_t *x)
{
    close(x->io.fd);
}

const pv_xprt_ops_t pv_xprt_plain = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .peek = plain_peek,
    .shutdown = plain_shutdown,
    .close = plain_close,
};
