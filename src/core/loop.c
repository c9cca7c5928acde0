#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "time.h"

__thread uint64_t pv_loop_ns;

#define PV_LOOP_MAX_EVENTS 256

struct pv_loop_s {
    int epfd;                 /* epoll instance */
    int stop;                 /* leave pv_loop_run() after this iteration */
    uint64_t now;             /* cached monotonic ms */
    pv_timer_t **heap;        /* min-heap of armed timers by `when` */
    int nheap, capheap;
    pv_hook_cb hook;          /* before-sleep hook */
    void *hook_data;
};

pv_loop_t *pv_loop_new(void)
{
    pv_loop_t *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    l->now = pv_now_ms();
    return l;
}

void pv_loop_free(pv_loop_t *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->heap);
    free(l);
}

int pv_loop_add(pv_loop_t *l, pv_io_t *io)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int pv_loop_add_level(pv_loop_t *l, pv_io_t *io)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
}

int pv_loop_watch(pv_loop_t *l, pv_io_t *io, unsigned events, int added)
{
    struct epoll_event ev = {.events = ((events & PV_EV_READ) ? EPOLLIN : 0u) | ((events & PV_EV_WRITE) ? EPOLLOUT : 0u),
                             .data.ptr = io};
    return epoll_ctl(l->epfd, added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev);
}

void pv_loop_del(pv_loop_t *l, pv_io_t *io)
{
    if (io->fd >= 0)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void pv_timer_init(pv_timer_t *t, pv_timer_cb cb, void *data)
{
    t->when = 0;
    t->idx = -1;
    t->cb = cb;
    t->data = data;
}

static void heap_swap(pv_loop_t *l, int a, int b)
{
    pv_timer_t *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->idx = a;
    l->heap[b]->idx = b;
}

static void heap_up(pv_loop_t *l, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (l->heap[p]->when <= l->heap[i]->when)
            break;
        heap_swap(l, i, p);
        i = p;
    }
}

static void heap_down(pv_loop_t *l, int i)
{
    for (;;) {
        int c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c]->when < l->heap[m]->when)
            m = c;
        if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[m]->when)
            m = c + 1;
        if (m == i)
            return;
        heap_swap(l, i, m);
        i = m;
    }
}

void pv_timer_del(pv_loop_t *l, pv_timer_t *t)
{
    int i = t->idx;
    if (i < 0)
        return;
    t->idx = -1;
    l->nheap--;
    if (i == l->nheap)
        return;
    l->heap[i] = l->heap[l->nheap];
    l->heap[i]->idx = i;
    heap_up(l, i);
    heap_down(l, l->heap[i]->idx);
}

void pv_timer_set(pv_loop_t *l, pv_timer_t *t, uint64_t ms)
{
    uint64_t when = l->now + ms;
    if (t->idx >= 0) {
        /* most re-arms push the deadline later by a little: skip heap work
         * when it would not change the order enough to matter */
        if (t->when == when)
            return;
        uint64_t old = t->when;
        t->when = when;
        if (when < old)
            heap_up(l, t->idx);
        else
            heap_down(l, t->idx);
        return;
    }
    if (l->nheap == l->capheap) {
        int cap = l->capheap ? l->capheap * 2 : 256;
        pv_timer_t **h = realloc(l->heap, (size_t)cap * sizeof(*h));
        if (!h)
            abort();
        l->heap = h;
        l->capheap = cap;
    }
    t->when = when;
    t->idx = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->idx);
}

void pv_loop_set_hook(pv_loop_t *l, pv_hook_cb cb, void *data)
{
    l->hook = cb;
    l->hook_data = data;
}

uint64_t pv_loop_now(const pv_loop_t *l)
{
    return l->now;
}

void pv_loop_stop(pv_loop_t *l)
{
    l->stop = 1;
}

static void run_timers(pv_loop_t *l)
{
    while (l->nheap > 0 && l->heap[0]->when <= l->now) {
        pv_timer_t *t = l->heap[0];
        pv_timer_del(l, t);
        t->cb(t);
    }
}

void pv_loop_run(pv_loop_t *l)
{
    struct epoll_event evs[PV_LOOP_MAX_EVENTS];

    while (!l->stop) {
        if (l->hook)
            l->hook(l, l->hook_data);
        if (l->stop)
            break;
        int timeout = -1;
        if (l->nheap > 0) {
            uint64_t w = l->heap[0]->when;
            timeout = w <= l->now ? 0 : (int)PV_MIN(w - l->now, 60000);
        }
        int n = epoll_wait(l->epfd, evs, PV_LOOP_MAX_EVENTS, timeout);
        pv_loop_ns = pv_now_ns();
        l->now = pv_loop_ns / 1000000u;
        pv_time_update();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            pv_io_t *io = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            unsigned m = 0;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                m |= PV_EV_READ;
            if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                m |= PV_EV_WRITE;
            if (e & (EPOLLHUP | EPOLLERR))
                m |= PV_EV_HUP;
            if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                m |= PV_EV_RDHUP;
            io->cb(io, m);
        }
        run_timers(l);
    }
}
