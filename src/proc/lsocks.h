/* The main thread's table of listening sockets: one entry per listen
 * address of the config, with a socket per worker (SO_REUSEPORT), kept
 * open across reloads for as long as some config listens there. A unix
 * domain socket is one socket the workers share (each holds its own
 * descriptor of it); its file is made 0666 once bound, and removed when
 * no config listens there any more or at exit, as NGINX does. */
#ifndef PV_LSOCKS_H
#define PV_LSOCKS_H

#include <sys/socket.h>

#include "../config/conf.h"
#include "../core/net.h"

typedef struct pv_lsock_s {
    struct sockaddr_storage addr; /* bound address */
    socklen_t addrlen;
    pv_net_lopts_t sock;          /* socket parameters */
    int *fds;                     /* one per worker */
} pv_lsock_t;

/* How a table is closed: at exit, or what a reload no longer listens on
 * (a unix socket's file removed with NGINX's "deleting socket" warning). */
enum { PV_LSOCKS_EXIT = 0, PV_LSOCKS_DROPPED };

/* The table for conf: the sockets of `old` with the same address are
 * taken over (and moved out of `old`), the others are opened. NULL on
 * failure, logged, with everything opened here closed again. */
pv_lsock_t *pv_lsocks_open(const pv_conf_t *conf, int nworkers, pv_lsock_t *old, int nold);
void pv_lsocks_close(pv_lsock_t *ls, int n, int nworkers, int how);
/* Worker k's fds, one per listen group (the caller owns the array). */
int *pv_lsocks_for_worker(const pv_lsock_t *ls, int ng, int k);
/* -t: each unix domain socket's path bound once and removed again, as
 * NGINX's test does (one in use by a running server passes). 0, or -1
 * with NGINX's message in err. */
int pv_lsocks_test(const pv_conf_t *conf, char *err, size_t errlen);

#endif
