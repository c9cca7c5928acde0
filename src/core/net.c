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
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, addr, len) < 0 && errno != EINPROGRESS) {
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
