#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/cache.h"
#include "../core/counters.h"
#include "../core/log.h"

static __thread pv_worker_t *self;
/* the modules, NULL-terminated (pv_worker_modules) */
static pv_module_t *const *modules;
/* their reap hooks, which run on every loop iteration, in one array */
static void (*reapers[PV_MODULES_MAX])(pv_worker_t *w);
static int nreapers;

/* Every module, in list order: m names the module in the body. */
#define EACH_MODULE(m) for (pv_module_t *const *m##_it = modules, *m; m##_it && (m = *m##_it); m##_it++)

int pv_worker_modules(pv_module_t *const *mods)
{
    modules = mods;
    int i = 0;
    nreapers = 0;
    EACH_MODULE(m) {
        if (i == PV_MODULES_MAX) {
            pv_log(PV_LOG_EMERG, "more than %d modules", PV_MODULES_MAX);
            return PV_ERR;
        }
        m->index = i++;
        if (m->reap)
            reapers[nreapers++] = m->reap;
        if (m->init && m->init() != PV_OK) {
            pv_log(PV_LOG_EMERG, "module %s failed to start", m->name);
            return PV_ERR;
        }
    }
    return PV_OK;
}

static pv_io_cb accept_handler(void)
{
    EACH_MODULE(m)
        if (m->accept)
            return m->accept;
    return NULL;
}

pv_worker_t *pv_worker_self(void)
{
    return self;
}

static void evfd_cb(pv_io_t *io, unsigned events);

static void accept_timer_cb(pv_timer_t *t);
static void shutdown_timer_cb(pv_timer_t *t);
static void trim_timer_cb(pv_timer_t *t);

int pv_worker_init(pv_worker_t *w, int id, pv_conf_t *conf, const int *fds, int nfds)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->gen = calloc(1, sizeof(pv_wgen_t));
    if (!w->gen)
        return PV_ERR;
    w->gen->conf = conf;
    w->conf = conf;
    pv_conf_ref(conf);
    w->loop = pv_loop_new();
    if (!w->loop)
        return PV_ERR;
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->evfd < 0)
        return PV_ERR;
    w->evio = (pv_io_t){.fd = w->evfd, .cb = evfd_cb, .data = w};
    w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pv_timer_init(&w->accept_timer, accept_timer_cb, w);
    pv_timer_init(&w->shutdown_timer, shutdown_timer_cb, w);
    pv_timer_init(&w->trim_timer, trim_timer_cb, w);
    w->listeners = calloc((size_t)(nfds ? nfds : 1), sizeof(pv_listener_t));
    if (!w->listeners)
        return PV_ERR;
    w->nlisteners = nfds;
    for (int i = 0; i < nfds; i++) {
        pv_listener_t *l = &w->listeners[i];
        l->io = (pv_io_t){.fd = fds[i], .cb = accept_handler(), .data = l};
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

void pv_worker_reload(pv_worker_t *w, pv_conf_t *conf, int *fds)
{
    pv_conf_ref(conf);
    w->next_conf = conf;
    w->next_fds = fds;
    pv_worker_signal(w, PV_WCMD_RELOAD);
}

pv_wgen_t *pv_worker_gen_hold(pv_worker_t *w)
{
    w->gen->live++;
    return w->gen;
}

static void gen_free(pv_wgen_t *g)
{
    EACH_MODULE(m)
        if (m->gen_free && g->mod[m->index])
            m->gen_free(g);
    pv_conf_unref(g->conf);
    free(g);
}

/* Every module builds its state for g; on failure what was built is
 * freed again and PV_ERR returned. */
static int gen_init(pv_worker_t *w, pv_wgen_t *g, pv_wgen_t *old)
{
    EACH_MODULE(m) {
        if (m->gen_init && m->gen_init(w, g, old) != PV_OK) {
            EACH_MODULE(f) {
                if (f == m)
                    break;
                if (f->gen_free && g->mod[f->index])
                    f->gen_free(g);
            }
            return PV_ERR;
        }
    }
    return PV_OK;
}

/* Close every connection of every module now. */
static void close_all(pv_worker_t *w)
{
    EACH_MODULE(m)
        if (m->close_all)
            m->close_all(w);
}

static void reap_all(pv_worker_t *w)
{
    for (int i = 0; i < nreapers; i++)
        reapers[i](w);
}

void pv_worker_gen_release(pv_worker_t *w, pv_wgen_t *g)
{
    if (--g->live > 0 || g == w->gen)
        return;
    for (pv_wgen_t **pp = &w->retired; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            gen_free(g);
            return;
        }
    }
}

/* Listening sockets in or out of the loop (accept back-off, drain). */
static void listeners_watch(pv_worker_t *w, int on)
{
    for (int i = 0; i < w->nlisteners; i++) {
        pv_listener_t *l = &w->listeners[i];
        if (l->io.fd < 0)
            continue;
        if (on)
            pv_loop_add_level(w->loop, &l->io);
        else
            pv_loop_del(w->loop, &l->io);
    }
}

/* Listeners are out of the loop for a back-off or for want of a slot. */
static int listeners_off(const pv_worker_t *w)
{
    return w->accept_paused || w->conn_paused;
}

/* Stop taking new connections; the listening fds belong to the main
 * thread, which closes them. */
/* A stopping worker listens no more: its own sockets (one per address
 * and worker) are shut down, which refuses new connections at once, as
 * NGINX's closed listeners do, instead of leaving them in a backlog no
 * one accepts from; the descriptors stay the main thread's to close. */
static void stop_listening(pv_worker_t *w)
{
    if (!listeners_off(w))
        listeners_watch(w, 0);
    pv_timer_del(w->loop, &w->accept_timer);
    for (int i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].io.fd >= 0)
            shutdown(w->listeners[i].io.fd, SHUT_RDWR);
        w->listeners[i].io.fd = -1;
    }
}

void pv_worker_accept_overload(pv_worker_t *w, int err)
{
    /* Give up the reserve descriptor to accept and close one pending
     * connection, so that client is told at once instead of waiting in
     * the backlog, then take the listeners out of the level-triggered
     * loop so the error cannot spin it. Existing connections go on. */
    if (w->reserve_fd >= 0) {
        close(w->reserve_fd);
        w->reserve_fd = -1;
        for (int i = 0; i < w->nlisteners; i++) {
            if (w->listeners[i].io.fd < 0)
                continue;
            int fd = accept4(w->listeners[i].io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                close(fd);
                w->shed++;
                pv_count(PV_CTR_SHED);
                break;
            }
        }
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pv_count(PV_CTR_ACCEPT_ERRORS);
    if (!w->accept_paused) {
        pv_log(PV_LOG_ALERT, "accept() failed (%d: %s): %d connections open, shed one, pausing accepts for %d ms",
               err, strerror(err), w->nconns, PV_ACCEPT_PAUSE_MS);
        if (!w->conn_paused)
            listeners_watch(w, 0);
        w->accept_paused = 1;
    }
    pv_timer_set(w->loop, &w->accept_timer, PV_ACCEPT_PAUSE_MS);
}

void pv_worker_accept_full(pv_worker_t *w)
{
    /* as NGINX and HAProxy do: the kernel's listen backlog holds the
     * newcomers, who are served as soon as a slot frees, instead of being
     * closed at once */
    w->full_waits++;
    uint64_t now = pv_loop_now(w->loop);
    if (now - w->full_logged_ms >= 1000) {
        w->full_logged_ms = now;
        pv_log(PV_LOG_ALERT, "%d worker_connections are not enough and none is idle: newcomers wait in the "
               "listen backlog until a connection closes (%llu such pauses)",
               w->conf->worker_connections, (unsigned long long)w->full_waits);
        w->full_waits = 0;
    }
    if (w->conn_paused)
        return;
    if (!w->accept_paused)
        listeners_watch(w, 0);
    w->conn_paused = 1;
}

/* A slot freed while accepting waited for one: take the listeners back. */
static void accept_resume(pv_worker_t *w)
{
    w->conn_paused = 0;
    if (!w->accept_paused && !w->draining)
        listeners_watch(w, 1);
}

static void accept_timer_cb(pv_timer_t *t)
{
    pv_worker_t *w = t->data;
    if (!w->accept_paused || w->draining)
        return;
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->reserve_fd < 0) {
        /* still no descriptor to spare: keep waiting */
        pv_timer_set(w->loop, &w->accept_timer, PV_ACCEPT_PAUSE_MS);
        return;
    }
    pv_log(PV_LOG_NOTICE, "accepting connections again (%llu shed while descriptors ran out)",
           (unsigned long long)w->shed);
    w->shed = 0;
    w->accept_paused = 0;
    if (!w->conn_paused)
        listeners_watch(w, 1);
}

static void shutdown_timer_cb(pv_timer_t *t)
{
    pv_worker_t *w = t->data;
    pv_log(PV_LOG_NOTICE, "worker_shutdown_timeout: closing %d remaining connections", w->nconns);
    close_all(w);
}

/* Every PV_TRIM_MS: free cached objects the last tick did not use, and
 * once the load has passed (a quiet tick, or one with a quarter of the
 * busiest tick's requests) hand memory that a burst left free back to the
 * kernel: glibc keeps freed heap pages resident until malloc_trim(). It
 * visits every arena, the workers' per-thread ones included, which are
 * kept because they spare the workers a shared lock. */
static void trim_timer_cb(pv_timer_t *t)
{
    pv_worker_t *w = t->data;
    uint64_t n = w->requests - w->trim_requests;
    w->trim_requests = w->requests;
    if (n > w->trim_busiest)
        w->trim_busiest = n;
    w->trim_owed += pv_cache_trim_all();
    int closed = w->trim_peak_conns > w->nconns;
    if ((w->trim_owed || closed) && (n < PV_TRIM_QUIET || n * 4 < w->trim_busiest)) {
        malloc_trim(0);
        w->trim_owed = 0;
        w->trim_busiest = n;
        w->trim_peak_conns = w->nconns;
    }
    /* nothing left to give back: sleep until requests come again (see
     * before_sleep_cb) rather than wake an idle worker */
    if (n || w->trim_owed || w->trim_peak_conns > w->nconns || pv_cache_held())
        pv_timer_set(w->loop, t, PV_TRIM_MS);
}

/* Switch to the snapshot the main thread handed over: adopt the new set of
 * listening sockets (unchanged ones keep their fd), let every module build
 * its state for the new generation (new upstream pools take over the idle
 * connections) and map its connections to the new listen groups, and
 * retire the old generation. */
static void apply_reload(pv_worker_t *w)
{
    pv_conf_t *nc = w->next_conf;
    int *fds = w->next_fds;
    w->next_conf = NULL;
    w->next_fds = NULL;
    if (!nc)
        return;
    int ng = nc->http ? nc->http->nlistens : 0;
    pv_listener_t *nl = calloc((size_t)(ng ? ng : 1), sizeof(*nl));
    pv_wgen_t *g = calloc(1, sizeof(*g));
    int *map = calloc((size_t)(w->nlisteners ? w->nlisteners : 1), sizeof(int));
    if (g)
        g->conf = nc;
    if (!nl || !g || !map || gen_init(w, g, w->gen) != PV_OK) {
        pv_log(PV_LOG_ALERT, "worker %d: out of memory applying a reload; keeping the old configuration", w->id);
        free(nl);
        free(g);
        free(map);
        pv_conf_unref(nc);
        free(fds);
        atomic_fetch_add(&w->reloads, 1);
        return;
    }
    for (int i = 0; i < w->nlisteners; i++) {
        map[i] = -1;
        for (int j = 0; j < ng; j++)
            if (fds[j] == w->listeners[i].io.fd && w->listeners[i].io.fd >= 0)
                map[i] = j;
        if (map[i] < 0 && w->listeners[i].io.fd >= 0 && !listeners_off(w) && !w->draining)
            pv_loop_del(w->loop, &w->listeners[i].io);
    }
    for (int j = 0; j < ng; j++) {
        nl[j] = (pv_listener_t){.io = {.fd = fds[j], .cb = accept_handler(), .data = &nl[j]}, .w = w, .group = j};
        int known = 0;
        for (int i = 0; i < w->nlisteners; i++)
            known |= map[i] == j;
        if (w->draining)
            nl[j].io.fd = -1;
        else if (known) {
            /* same socket: re-register so the loop points at the new slot */
            if (!listeners_off(w)) {
                for (int i = 0; i < w->nlisteners; i++)
                    if (map[i] == j)
                        pv_loop_del(w->loop, &w->listeners[i].io);
                pv_loop_add_level(w->loop, &nl[j].io);
            }
        } else if (!listeners_off(w)) {
            pv_loop_add_level(w->loop, &nl[j].io);
        }
    }
    EACH_MODULE(m)
        if (m->reload)
            m->reload(w, map, w->nlisteners);
    /* events of this loop turn may still name the old slots: point them at
     * the new groups and free the array before the next wait */
    for (int i = 0; i < w->nlisteners; i++) {
        w->listeners[i].group = map[i];
        if (map[i] < 0)
            w->listeners[i].io.fd = -1;
    }
    free(w->old_listeners);
    w->old_listeners = w->listeners;
    free(map);
    w->listeners = nl;
    w->nlisteners = ng;

    pv_wgen_t *old = w->gen;
    w->gen = g;
    w->conf = nc;
    if (old->live > 0) {
        old->next = w->retired;
        w->retired = old;
    } else {
        gen_free(old);
    }
    free(fds);
    atomic_fetch_add(&w->reloads, 1);
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
        close_all(w);
        pv_loop_stop(w->loop);
        return;
    }
    if (cmd & PV_WCMD_RELOAD)
        apply_reload(w);
    if (cmd & PV_WCMD_POKE)
        EACH_MODULE(m)
            if (m->poke)
                m->poke(w);
    if ((cmd & PV_WCMD_QUIT) && !w->draining) {
        w->draining = 1;
        stop_listening(w);
        EACH_MODULE(m)
            if (m->drain)
                m->drain(w);
        if (w->conf->worker_shutdown_timeout > 0)
            pv_timer_set(w->loop, &w->shutdown_timer, (uint64_t)w->conf->worker_shutdown_timeout);
    }
}

/* Runs before every wait: free what was closed, serve buffered pipelined
 * requests, accept again when a slot freed, wake the trim timer when requests came, and end a graceful
 * stop once nothing is left. */
static void before_sleep_cb(pv_loop_t *l, void *data)
{
    pv_worker_t *w = data;
    reap_all(w);
    if (w->old_listeners) {
        free(w->old_listeners);
        w->old_listeners = NULL;
    }
    if (w->conn_paused && w->nconns < w->conf->worker_connections)
        accept_resume(w);
    if (!pv_timer_armed(&w->trim_timer) && w->requests != w->trim_requests)
        pv_timer_set(l, &w->trim_timer, PV_TRIM_MS);
    if (w->draining && w->nconns == 0)
        pv_loop_stop(l);
}

int pv_worker_gen_start(pv_worker_t *w)
{
    return gen_init(w, w->gen, NULL);
}

void *pv_worker_main(void *arg)
{
    pv_worker_t *w = arg;
    self = w;
    pv_log_set_thread_id(w->id);
    int ok = 1;
    EACH_MODULE(m)
        if (ok && m->worker_init && m->worker_init(w) != PV_OK)
            ok = 0;
    if (!ok || pv_worker_gen_start(w) != PV_OK) {
        pv_log(PV_LOG_EMERG, "worker %d: out of memory", w->id);
        atomic_store(&w->finished, 1);
        return NULL;
    }
    listeners_watch(w, 1);
    pv_loop_add_level(w->loop, &w->evio);
    pv_loop_set_hook(w->loop, before_sleep_cb, w);
    pv_timer_set(w->loop, &w->trim_timer, PV_TRIM_MS);
    pv_loop_run(w->loop);

    close_all(w);
    reap_all(w);
    while (w->retired) {
        pv_wgen_t *g = w->retired;
        w->retired = g->next;
        gen_free(g);
    }
    gen_free(w->gen);
    w->gen = NULL;
    reap_all(w);
    if (w->next_conf)
        pv_conf_unref(w->next_conf);
    free(w->next_fds);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    free(w->old_listeners);
    EACH_MODULE(m)
        if (m->worker_exit)
            m->worker_exit(w);
    pv_cache_drain_all();
    atomic_store(&w->finished, 1);
    return NULL;
}
