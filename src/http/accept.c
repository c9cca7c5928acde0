/* Accepting client connections: the accept loop (worker_connections,
 * EMFILE back-off), then what a connection speaks before HTTP: on an
 * address with `listen ... proxy_protocol`, the PROXY protocol header
 * (v1 or v2) a load balancer sends first, read from the socket itself
 * before TLS or HTTP/2 start, as NGINX reads it. Its addresses stay with
 * the transport (pv_xprt_t.pp) for $proxy_protocol_* and realip. */
#include "accept.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/net.h"
#include "../core/proxy_proto.h"
#include "h2.h"
#include "slots.h"
#include "ssl.h"

void pv_server_accept_cb(pv_io_t *io, unsigned events)
{
    pv_listener_t *l = io->data;
    pv_worker_t *w = l->w;
    PV_UNUSED(events);
    if (io->fd < 0)
        return; /* a slot replaced by a reload during this loop turn */

    for (int i = 0; i < 64; i++) {
        /* at the limit an idle keepalive connection makes room for one
         * that is known to wait (the level-triggered listener called us
         * for it, and calls again while more do); with none idle,
         * newcomers wait in the listen backlog until a slot frees */
        if (w->nconns >= w->conf->worker_connections && !w->draining) {
            if (i > 0)
                return;
            if (!pv_slots_reclaim(w)) {
                pv_worker_accept_full(w);
                return;
            }
        }
        struct sockaddr_storage ss;
        ss.ss_family = AF_UNSPEC;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pv_worker_accept_overload(w, errno);
            return;
        }
        if (w->draining) {
            close(fd);
            continue;
        }
        /* a client of a unix domain socket is kept as its family alone */
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof(sa));
        if (ss.ss_family == AF_UNIX)
            sa.sin6_family = AF_UNIX;
        else
            memcpy(&sa, &ss, PV_MIN(sl, sizeof(sa)));
        pv_xprt_t x;
        pv_xprt_init(&x, fd, NULL, NULL);
        pv_listen_group_t *lg = &w->conf->http->listens[l->group];
        if (lg->listen.http2 && !lg->listen.ssl && !lg->listen.proxy_protocol) {
            /* `listen ... http2` on a plain address: HTTP/2 only, as NGINX 1.22 */
            pv_h2_accept(w, &x, (uint16_t)l->group, &sa);
            continue;
        }
        pv_hconn_t *c = pv_server_conn_open(w, l->group, &x, (const struct sockaddr *)&sa, sizeof(sa));
        /* a TLS address: the connection gets the TLS transport (after the
         * PROXY protocol header, on an address that takes one) */
        if (c && !lg->listen.proxy_protocol && pv_http_ssl_accept(c, lg) != PV_OK) {
            pv_cache_nomem("a TLS session", NULL);
            pv_server_close(c);
        }
    }
}

/* Peek at what came, take the header off the socket once it is whole,
 * and hand the connection on; a broken header closes it (NGINX sends
 * nothing either). The wait is under client_header_timeout. */
void pv_http_pp_io_cb(pv_io_t *io, unsigned events)
{
    pv_hconn_t *c = io->data;
    pv_xprt_events(&c->x, events);
    if (!c->x.readable)
        return;
    uint8_t buf[PV_PP_MAX];
    ssize_t n;
    do
        n = recv(c->x.io.fd, buf, sizeof(buf), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->x.readable = 0;
        return;
    }
    char addr[48], err[200];
    if (n <= 0) {
        if (n < 0)
            pv_log(PV_LOG_INFO, "recv() failed (%d: %s) while reading PROXY protocol, client: %s", errno,
                   strerror(errno), (pv_net_addr_text((const struct sockaddr *)&c->peer, addr, sizeof(addr)), addr));
        pv_server_close(c);
        return;
    }
    pv_pp_t pp;
    int has;
    ssize_t hl = pv_pp_parse(buf, (size_t)n, &pp, &has, err, sizeof(err));
    if (hl == 0) {
        c->x.readable = 0; /* the rest of the header brings a new edge */
        return;
    }
    if (hl < 0) {
        pv_net_addr_text((const struct sockaddr *)&c->peer, addr, sizeof(addr));
        pv_log(PV_LOG_ERR, "%s while reading PROXY protocol, client: %s", err, addr);
        pv_server_close(c);
        return;
    }
    if (has && !(c->x.pp = malloc(sizeof(pp)))) {
        pv_cache_nomem("a PROXY protocol header", NULL);
        pv_server_close(c);
        return;
    }
    if (has)
        *c->x.pp = pp;
    if (recv(c->x.io.fd, buf, (size_t)hl, 0) != hl) { /* what the peek saw is there */
        pv_server_close(c);
        return;
    }
    pv_server_conn_begin(c);
}
