/* Socket helpers: listeners, non-blocking connects, address text. */
#ifndef PV_NET_H
#define PV_NET_H

#include <sys/socket.h>
#include <stdint.h>

/* A listening socket's settings (NGINX's listen parameters). */
typedef struct pv_net_lopts_s {
    int backlog;        /* listen() backlog */
    int ipv6only;       /* IPV6_V6ONLY on an IPv6 socket (bound with it; NGINX's default on) */
    int rcvbuf, sndbuf; /* SO_RCVBUF / SO_SNDBUF bytes; 0: the system's */
    int deferred;       /* TCP_DEFER_ACCEPT: accept once data has arrived */
    int fastopen;       /* TCP_FASTOPEN queue length; 0: off */
    int keepalive;      /* SO_KEEPALIVE on accepted sockets: 1 on, -1 off, 0 the system's */
    int keepidle, keepintvl, keepcnt; /* TCP_KEEPIDLE (s), TCP_KEEPINTVL (s), TCP_KEEPCNT; 0: the system's */
    int notsent_lowat;  /* TCP_NOTSENT_LOWAT bytes, inherited by accepted sockets; 0: PV_NET_NOTSENT_LOWAT,
                         * -1: off (the system's) */
} pv_net_lopts_t;

/* The unsent bytes a client's socket holds before it stops taking more.
 * Without a limit the kernel queues megabytes of a large response beyond
 * what the peer's window lets go; each window update then transmits them
 * in the context of whoever sent the ACK (on loopback, the client) and
 * the memory stays taken until the peer reads. 128 KiB keeps a 10 Gbit/s
 * link busy for 100 us of event-loop latency. */
#define PV_NET_NOTSENT_LOWAT (128 * 1024)

/* Open a non-blocking listening socket on addr with SO_REUSEPORT (one per
 * worker shares the port) and o's settings. Returns fd or -1 with an
 * explanation in err. A unix domain socket is bound without SO_REUSEPORT
 * (its workers share the one socket) and without o's settings beyond the
 * backlog: the caller applies those with pv_net_listen_tune(). */
int pv_net_listen(const struct sockaddr *addr, socklen_t len, const pv_net_lopts_t *o, char *err, size_t errlen);
/* Apply o's settings that can change on a listening socket (all but
 * ipv6only), also to one kept across a reload. 0, or -1 with err set
 * after the first that failed (the others are still applied). */
int pv_net_listen_tune(int fd, const pv_net_lopts_t *o, char *err, size_t errlen);
/* A local address to connect from (proxy_bind). */
typedef struct pv_net_bind_s {
    struct sockaddr_storage ss;
    socklen_t len;
    uint8_t transparent; /* IP_TRANSPARENT: a non-local address may be bound */
} pv_net_bind_t;

/* Start a non-blocking connect, from local when it is given. Returns fd
 * (connection may still be in progress) or -1 with errno set. */
int pv_net_connect(const struct sockaddr *addr, socklen_t len);
int pv_net_connect_from(const struct sockaddr *addr, socklen_t len, const pv_net_bind_t *local);
/* Parse an IP literal with an optional port as NGINX's ngx_parse_addr_port
 * takes them: "ADDR", "ADDR:PORT", "[IPV6]", "[IPV6]:PORT" (a bare IPv6
 * address too). 0, or -1 when it is none. */
int pv_net_parse_addr(const char *s, size_t len, pv_net_bind_t *out);
/* Format the address part ("127.0.0.1", "::1"; "unix:" for a unix
 * domain socket, whose path is not read) and return the port (0 there). */
uint16_t pv_net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);
/* Pending socket error (SO_ERROR), 0 if none. */
int pv_net_sock_error(int fd);

#endif
