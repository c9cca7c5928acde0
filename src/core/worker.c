#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "../http/server.h"
#include "../obs/accesslog.h"
#include "../upstream/upstream.h"

static __thread pv_worker_t *self;

pv_worker_t *pv_worker_self(void)
{
    return self;
}

static void evfd_cb(pv_io_t *io, unsigned events);

int pv_worker_init(pv_worker_t *w, int id, pv_conf_t *conf, const int *fds, int nfds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->conf = conf;
    pv_conf_ref(conf);
    w->loop = pv_loop_new();
    if (!w->loop)
        return PV_ERR;
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->evfd < 0)
        return PV_ERR;
    w->evio = (pv_io_t){.fd = w->evfd, .cb = evfd_cb, .data = w};
    w->listeners = calloc((size_t)(nfds ? nfds : 1), sizeof(pv_listener_t));
    if (!w->listeners)
        return PV_ERR;
    w->nlisteners = nfds;
    for (int i = 0; i < nfds; i++) {
        pv_listener_t *l = &w->listeners[i];
        l->io = (pv_io_t){.fd = fds[i], .cb = pv_server_accept_cb, .data = l};
        l->w = w;
        l->group = i;
    }
    return PV_OK;
}

void pv_worker_signal(pv_worker_t *w, int cmd)
{
    atomic_fetch_or(&w->cmd, cmd);
    uint64_t one = 1;
    ssize_t n = write(w->evfd, &one, sizeof(one));
    PV_UNUSED(n);
}

/* Stop taking new connections; the listening fds belong to the main
 * thread, which closes them. */
static void stop_listening(pv_worker_t *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].io.fd >= 0)
            pv_loop_del(w->loop, &w->listeners[i].io);
        w->listeners[i].io.fd = -1;
    }
}

static void evfd_cb(pv_io_t *io, unsigned events)
{
    pv_worker_t *w = io->data;
    uint64_t v;
    ssize_t n = read(w->evfd, &v, sizeof(v));
    PV_UNUSED(n);
    PV_UNUSED(events);
    int cmd = atomic_exchange(&w->cmd, 0);
    if (cmd & PV_WCMD_STOP) {
        stop_listening(w);
        while (w->conns)
            pv_server_close(w->conns);
        pv_loop_stop(w->loop);
        return;
    }
    if (cmd & PV_WCMD_QUIT) {
        w->draining = 1;
        stop_listening(w);
        pv_server_drain(w);
    }
}

/* Runs before every wait: free what was closed, serve buffered pipelined
 * requests, and end a graceful stop once nothing is left. */
static void before_sleep_cb(pv_loop_t *l, void *data)
{
    pv_worker_t *w = data;
    pv_server_reap(w);
    pv_upstream_reap(w);
    if (w->draining && w->nconns == 0)
        pv_loop_stop(l);
}

void *pv_worker_main(void *arg)
{
    pv_worker_t *w = arg;
    self = w;
    pv_log_set_thread_id(w->id);
    pv_accesslog_register_worker(w->id);
    if (pv_upstream_pools_init(w, w->conf) != PV_OK) {
        pv_log(PV_LOG_EMERG, "worker %d: out of memory", w->id);
        return NULL;
    }
    for (int i = 0; i < w->nlisteners; i++)
        if (pv_loop_add_level(w->loop, &w->listeners[i].io) < 0)
            pv_log(PV_LOG_ALERT, "epoll_ctl() failed for a listener (%d: %s)", errno, strerror(errno));
    pv_loop_add_level(w->loop, &w->evio);
    pv_loop_set_hook(w->loop, before_sleep_cb, w);
    pv_loop_run(w->loop);

    while (w->conns)
        pv_server_close(w->conns);
    pv_server_reap(w);
    pv_upstream_pools_free(w);
    pv_upstream_reap(w);
    pv_conf_unref(w->conf);
    pv_buf_drain_cache();
    atomic_store(&w->finished, 1);
    return NULL;
}
