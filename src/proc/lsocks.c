/* Listening sockets of the main thread (see lsocks.h). */
#include "lsocks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/log.h"

static const char *unix_path(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_UNIX ? ((const struct sockaddr_un *)a)->sun_path : NULL;
}

static void close_fds(pv_lsock_t *s, int nworkers)
{
    for (int k = 0; s->fds && k < nworkers; k++)
        if (s->fds[k] >= 0)
            close(s->fds[k]);
    free(s->fds);
    s->fds = NULL;
}

/* Close s's sockets; a unix socket's file goes with them. */
static void close_one(pv_lsock_t *s, int nworkers, int how)
{
    const char *path = s->fds ? unix_path(&s->addr) : NULL;
    close_fds(s, nworkers);
    if (!path)
        return;
    if (how == PV_LSOCKS_DROPPED)
        pv_log(PV_LOG_WARN, "deleting socket %s", path);
    if (unlink(path) < 0)
        pv_log(PV_LOG_EMERG, "unlink() %s failed (%d: %s)", path, errno, strerror(errno));
}

void pv_lsocks_close(pv_lsock_t *ls, int n, int nworkers, int how)
{
    for (int i = 0; ls && i < n; i++)
        close_one(&ls[i], nworkers, how);
    free(ls);
}

/* A unix domain socket: bound once, the workers' descriptors are
 * duplicates of it. The TCP parameters NGINX also sets on it fail there
 * and, as in NGINX, are logged and ignored; reuseport cannot be set. */
static int open_unix(const pv_listen_t *l, int *fds, int nworkers)
{
    char err[256];
    const char *path = ((const struct sockaddr_un *)&l->addr)->sun_path;
    if (l->reuseport) {
        pv_log(PV_LOG_EMERG, "setsockopt(SO_REUSEPORT) %s failed (%d: %s) in %s:%d", l->text, EOPNOTSUPP,
               strerror(EOPNOTSUPP), l->src.file, l->src.line);
        return -1;
    }
    fds[0] = pv_net_listen((const struct sockaddr *)&l->addr, l->addrlen, &l->sock, err, sizeof(err));
    if (fds[0] < 0) {
        pv_log(PV_LOG_EMERG, "%s for %s in %s:%d", err, l->text, l->src.file, l->src.line);
        return -1;
    }
    if (chmod(path, 0666) < 0)
        pv_log(PV_LOG_EMERG, "chmod() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
    if (pv_net_listen_tune(fds[0], &l->sock, err, sizeof(err)) < 0)
        pv_log(PV_LOG_ALERT, "%s for %s in %s:%d, ignored", err, l->text, l->src.file, l->src.line);
    for (int k = 1; k < nworkers; k++) {
        fds[k] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
        if (fds[k] < 0) {
            pv_log(PV_LOG_EMERG, "dup() of %s failed (%d: %s)", l->text, errno, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int open_inet(const pv_listen_t *l, int *fds, int nworkers)
{
    for (int k = 0; k < nworkers; k++) {
        char err[256];
        fds[k] = pv_net_listen((const struct sockaddr *)&l->addr, l->addrlen, &l->sock, err, sizeof(err));
        if (fds[k] < 0) {
            pv_log(PV_LOG_EMERG, "%s for %s in %s:%d", err, l->text, l->src.file, l->src.line);
            return -1;
        }
    }
    return 0;
}

/* The socket of `old` for l's address, tuned to l's parameters; NULL
 * when there is none (ipv6only is fixed at bind(): a change needs a new
 * socket). */
static int *take_over(const pv_listen_t *l, int nworkers, pv_lsock_t *old, int nold)
{
    for (int i = 0; i < nold; i++) {
        if (!old[i].fds || old[i].addrlen != l->addrlen || memcmp(&old[i].addr, &l->addr, l->addrlen) != 0 ||
            (l->addr.ss_family == AF_INET6 && old[i].sock.ipv6only != l->sock.ipv6only))
            continue;
        int *fds = old[i].fds;
        old[i].fds = NULL;
        /* a unix socket's workers share one: it is tuned once */
        int n = l->addr.ss_family == AF_UNIX ? 1 : nworkers;
        for (int k = 0; k < n; k++) {
            char err[256];
            if (pv_net_listen_tune(fds[k], &l->sock, err, sizeof(err)) < 0 && k == 0)
                pv_log(PV_LOG_ALERT, "%s for %s in %s:%d", err, l->text, l->src.file, l->src.line);
            if (old[i].sock.backlog != l->sock.backlog)
                listen(fds[k], l->sock.backlog); /* Linux applies a new backlog to a listening socket */
        }
        return fds;
    }
    return NULL;
}

/* After a failure at group g: the taken-over sockets go back to old, the
 * new ones are closed (a unix socket's file removed: it was made here). */
static void undo(pv_lsock_t *ls, int g, int nworkers, pv_lsock_t *old, int nold)
{
    for (int h = 0; h <= g; h++) {
        for (int i = 0; i < nold && ls[h].fds; i++) {
            if (!old[i].fds && old[i].addrlen == ls[h].addrlen &&
                memcmp(&old[i].addr, &ls[h].addr, ls[h].addrlen) == 0) {
                old[i].fds = ls[h].fds;
                ls[h].fds = NULL;
            }
        }
        if (!ls[h].fds)
            continue;
        const char *path = unix_path(&ls[h].addr);
        int bound = nworkers > 0 && ls[h].fds[0] >= 0;
        close_fds(&ls[h], nworkers);
        if (path && bound)
            unlink(path);
    }
    free(ls);
}

pv_lsock_t *pv_lsocks_open(const pv_conf_t *conf, int nworkers, pv_lsock_t *old, int nold)
{
    int ng = conf->http ? conf->http->nlistens : 0;
    pv_lsock_t *ls = calloc((size_t)(ng ? ng : 1), sizeof(*ls));
    if (!ls)
        return NULL;
    for (int g = 0; g < ng; g++) {
        const pv_listen_t *l = &conf->http->listens[g].listen;
        pv_lsock_t *s = &ls[g];
        s->addr = l->addr;
        s->addrlen = l->addrlen;
        s->sock = l->sock;
        s->fds = take_over(l, nworkers, old, nold);
        if (s->fds)
            continue;
        s->fds = malloc(sizeof(int) * (size_t)nworkers);
        if (!s->fds) {
            undo(ls, g, nworkers, old, nold);
            return NULL;
        }
        for (int k = 0; k < nworkers; k++)
            s->fds[k] = -1;
        if ((l->addr.ss_family == AF_UNIX ? open_unix(l, s->fds, nworkers) : open_inet(l, s->fds, nworkers)) < 0) {
            undo(ls, g, nworkers, old, nold);
            return NULL;
        }
    }
    return ls;
}

int *pv_lsocks_for_worker(const pv_lsock_t *ls, int ng, int k)
{
    int *fds = calloc((size_t)(ng ? ng : 1), sizeof(int));
    for (int g = 0; fds && g < ng; g++)
        fds[g] = ls[g].fds[k];
    return fds;
}

int pv_lsocks_test(const pv_conf_t *conf, char *err, size_t errlen)
{
    for (int g = 0; conf->http && g < conf->http->nlistens; g++) {
        const pv_listen_t *l = &conf->http->listens[g].listen;
        if (l->addr.ss_family != AF_UNIX)
            continue;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket() %s failed (%d: %s)", l->text, errno, strerror(errno));
            return -1;
        }
        int rc = bind(fd, (const struct sockaddr *)&l->addr, l->addrlen);
        int e = errno;
        close(fd);
        if (rc == 0) {
            unlink(((const struct sockaddr_un *)&l->addr)->sun_path);
        } else if (e != EADDRINUSE) {
            snprintf(err, errlen, "bind() to %s failed (%d: %s) in %s:%d", l->text, e, strerror(e), l->src.file,
                     l->src.line);
            return -1;
        }
    }
    return 0;
}
