#include "tpool.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

/* The queue of tasks waiting for a pool thread. */
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pv_task_t *qhead, *qtail;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int started;

static void *pool_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&qmu);
        while (!qhead)
            pthread_cond_wait(&qcond, &qmu);
        pv_task_t *t = qhead;
        qhead = t->next;
        if (!qhead)
            qtail = NULL;
        pthread_mutex_unlock(&qmu);

        t->work(t);

        pv_tport_t *p = t->port;
        t->next = NULL;
        pthread_mutex_lock(&p->mu);
        int wake = p->head == NULL;
        if (p->tail)
            p->tail->next = t;
        else
            p->head = t;
        p->tail = t;
        pthread_mutex_unlock(&p->mu);
        if (wake) {
            uint64_t one = 1;
            while (write(p->io.fd, &one, sizeof(one)) < 0 && errno == EINTR)
                ;
        }
    }
    return NULL;
}

static void start_once(void)
{
    for (int i = 0; i < PV_TPOOL_THREADS; i++) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        if (pthread_create(&th, &at, pool_main, NULL) == 0)
            started++;
        pthread_attr_destroy(&at);
    }
    if (!started)
        pv_log(PV_LOG_EMERG, "the file thread pool could not start a thread");
}

int pv_tpool_start(void)
{
    pthread_once(&once, start_once);
    return started ? PV_OK : PV_ERR;
}

/* Run the done callbacks of the finished tasks. */
static void drain(pv_tport_t *p)
{
    pthread_mutex_lock(&p->mu);
    pv_task_t *t = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (t) {
        pv_task_t *next = t->next;
        p->pending--;
        t->done(t);
        t = next;
    }
}

static void port_cb(pv_io_t *io, unsigned events)
{
    pv_tport_t *p = io->data;
    uint64_t n;
    while (read(io->fd, &n, sizeof(n)) > 0)
        ;
    drain(p);
}

int pv_tport_init(pv_tport_t *p, pv_loop_t *loop)
{
    p->io.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->io.fd < 0)
        return PV_ERR;
    p->io.cb = port_cb;
    p->io.data = p;
    p->loop = loop;
    p->head = p->tail = NULL;
    p->pending = 0;
    pthread_mutex_init(&p->mu, NULL);
    if (pv_loop_add(loop, &p->io) != PV_OK) {
        close(p->io.fd);
        p->io.fd = -1;
        return PV_ERR;
    }
    return PV_OK;
}

void pv_tport_close(pv_tport_t *p)
{
    if (p->io.fd < 0)
        return;
    while (p->pending > 0) {
        drain(p);
        if (p->pending > 0)
            usleep(1000);
    }
    pv_loop_del(p->loop, &p->io);
    close(p->io.fd);
    p->io.fd = -1;
    pthread_mutex_destroy(&p->mu);
}

void pv_tpool_submit(pv_tport_t *p, pv_task_t *t)
{
    t->port = p;
    t->next = NULL;
    p->pending++;
    pthread_mutex_lock(&qmu);
    if (qtail)
        qtail->next = t;
    else
        qhead = t;
    qtail = t;
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qmu);
}
