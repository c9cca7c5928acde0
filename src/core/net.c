#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static int sockopt(int fd, int level, int name, int v, const char *what, int *failed, char *err, size_t errlen)
{
    if (setsockopt(fd, level, name, &v, sizeof(v)) == 0)
        return 0;
    if (!*failed)
        snprintf(err, errlen, "setsockopt(%s, %d) failed (%d: %s)", what, v, errno, strerror(errno));
    *failed = 1;
    return -1;
}

int pv_net_listen_tune(int fd, const pv_net_lopts_t *o, char *err, size_t errlen)
{
    int failed = 0, family = AF_UNSPEC;
    socklen_t fl = sizeof(family);
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &fl);
    if (o->rcvbuf)
        sockopt(fd, SOL_SOCKET, SO_RCVBUF, o->rcvbuf, "SO_RCVBUF", &failed, err, errlen);
    if (o->sndbuf)
        sockopt(fd, SOL_SOCKET, SO_SNDBUF, o->sndbuf, "SO_SNDBUF", &failed, err, errlen);
    if (o->keepalive)
        sockopt(fd, SOL_SOCKET, SO_KEEPALIVE, o->keepalive > 0, "SO_KEEPALIVE", &failed, err, errlen);
    if (o->keepidle)
        sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepidle, "TCP_KEEPIDLE", &failed, err, errlen);
    if (o->keepintvl)
        sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepintvl, "TCP_KEEPINTVL", &failed, err, errlen);
    if (o->keepcnt)
        sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepcnt, "TCP_KEEPCNT", &failed, err, errlen);
    /* these two are also turned off again when a reload drops them (a
     * unix domain socket never has the first) */
    if (o->deferred || family != AF_UNIX)
        sockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, o->deferred, "TCP_DEFER_ACCEPT", &failed, err, errlen);
    if (o->fastopen)
        sockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, o->fastopen, "TCP_FASTOPEN", &failed, err, errlen);
    /* set even when it is the default, so that a reload that drops it
     * restores the default; 0 is the system's (net.ipv4.tcp_notsent_lowat).
     * A unix domain socket has none: given there, it fails as deferred does */
    if (family != AF_UNIX || o->notsent_lowat)
        sockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT,
                o->notsent_lowat < 0 ? 0 : o->notsent_lowat ? o->notsent_lowat : PV_NET_NOTSENT_LOWAT,
                "TCP_NOTSENT_LOWAT", &failed, err, errlen);
    return failed ? -1 : 0;
}

int pv_net_listen(const struct sockaddr *addr, socklen_t len, const pv_net_lopts_t *o, char *err, size_t errlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket() failed (%d: %s)", errno, strerror(errno));
        return -1;
    }
    int one = 1;
    if (addr->sa_family == AF_UNIX) {
        /* one socket for all workers; the TCP options are the caller's to
         * apply and report (NGINX warns of them and goes on) */
        const char *what = bind(fd, addr, len) < 0 ? "bind" : listen(fd, o->backlog) < 0 ? "listen" : NULL;
        if (what) {
            snprintf(err, errlen, "%s() failed (%d: %s)", what, errno, strerror(errno));
            close(fd);
            if (what[0] == 'l')
                unlink(((const struct sockaddr_un *)addr)->sun_path);
            return -1;
        }
        return fd;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "setsockopt(SO_REUSEPORT) failed (%d: %s)", errno, strerror(errno));
        close(fd);
        return -1;
    }
    if (addr->sa_family == AF_INET6) {
        int v6only = o->ipv6only;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    }
    /* accepted sockets inherit TCP_NODELAY: one setsockopt per listener
     * instead of one per connection */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, addr, len) < 0) {
        snprintf(err, errlen, "bind() failed (%d: %s)", errno, strerror(errno));
        close(fd);
        return -1;
    }
    if (pv_net_listen_tune(fd, o, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    if (listen(fd, o->backlog) < 0) {
        snprintf(err, errlen, "listen() failed (%d: %s)", errno, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pv_net_connect(const struct sockaddr *addr, socklen_t len)
{
    return pv_net_connect_from(addr, len, NULL);
}

/* Bind fd to local before its connect, as NGINX's ngx_event_connect_peer:
 * IP_TRANSPARENT when asked, the port left to connect() when none is
 * given (IP_BIND_ADDRESS_NO_PORT). */
static int bind_local(int fd, const pv_net_bind_t *local)
{
    int one = 1;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&local->ss;
    if (local->transparent && setsockopt(fd, local->ss.ss_family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
                                         local->ss.ss_family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT,
                                         &one, sizeof(one)) < 0)
        return -1;
    if (!sin->sin_port) /* sin_port and sin6_port sit at the same offset */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    return bind(fd, (const struct sockaddr *)&local->ss, local->len);
}

int pv_net_connect_from(const struct sockaddr *addr, socklen_t len, const pv_net_bind_t *local)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((local && bind_local(fd, local) < 0) ||
        (connect(fd, addr, len) < 0 && errno != EINPROGRESS)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Dotted quad without inet_ntop(), which goes through printf: this runs
 * for every request. out must hold INET_ADDRSTRLEN bytes. */
static void ipv4_text(const struct in_addr *a, char *out)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
}

uint16_t pv_net_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        if (outlen >= INET_ADDRSTRLEN)
            ipv4_text(&s->sin_addr, out);
        else
            inet_ntop(AF_INET, &s->sin_addr, out, (socklen_t)outlen);
        return ntohs(s->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, out, (socklen_t)outlen);
        return ntohs(s->sin6_port);
    }
    if (sa->sa_family == AF_UNIX) {
        /* a client of a unix domain socket: NGINX's $remote_addr of an
         * unnamed one (the name a bound client has is not kept) */
        snprintf(out, outlen, "unix:");
        return 0;
    }
    if (outlen)
        out[0] = '\0';
    return 0;
}

int pv_net_sock_error(int fd)
{
    int e = 0;
    socklen_t l = sizeof(e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
        return errno;
    return e;
}

int pv_net_parse_addr(const char *s, size_t len, pv_net_bind_t *out)
{
    char host[64];
    const char *port = NULL, *end = s + len;
    size_t hl = len;
    if (len && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb || (rb + 1 < end && rb[1] != ':'))
            return -1;
        s++;
        hl = (size_t)(rb - s);
        port = rb + 1 < end ? rb + 2 : NULL;
    } else {
        const char *c = memchr(s, ':', len);
        if (c && !memchr(c + 1, ':', (size_t)(end - c - 1))) { /* one colon: IPv4 and a port */
            hl = (size_t)(c - s);
            port = c + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(host))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    unsigned long pn = 0;
    if (port) {
        if (port == end || end - port > 5)
            return -1;
        for (const char *p = port; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            pn = pn * 10 + (unsigned long)(*p - '0');
        }
        if (pn < 1 || pn > 65535)
            return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)pn);
        out->len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)pn);
        out->len = sizeof(*sin6);
    } else {
        return -1;
    }
    return 0;
}
