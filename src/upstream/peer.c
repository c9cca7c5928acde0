#include "peer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "../core/common.h"

#define FAILS_MASK 0xffffu

static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static pv_peer_t *peers;

pv_peer_t *pv_peer_acquire(const char *upstream, const struct sockaddr *sa, socklen_t len, int nth)
{
    pthread_mutex_lock(&plock);
    for (pv_peer_t *p = peers; p; p = p->next) {
        if (p->nth == nth && p->addrlen == len && memcmp(&p->addr, sa, len) == 0 && strcmp(p->upstream, upstream) == 0) {
            p->refs++;
            pthread_mutex_unlock(&plock);
            return p;
        }
    }
    pv_peer_t *p = calloc(1, sizeof(*p));
    if (p && (len > sizeof(p->addr) || !(p->upstream = strdup(upstream)))) {
        free(p);
        p = NULL;
    }
    if (p) {
        memcpy(&p->addr, sa, len);
        p->addrlen = len;
        p->nth = nth;
        atomic_init(&p->fail_state, 0);
        atomic_init(&p->idle_close, 0);
        pthread_mutex_init(&p->sess_lock, NULL);
        p->refs = 1;
        p->next = peers;
        peers = p;
    }
    pthread_mutex_unlock(&plock);
    return p;
}

void pv_peer_hold(pv_peer_t *p)
{
    pthread_mutex_lock(&plock);
    p->refs++;
    pthread_mutex_unlock(&plock);
}

void pv_peer_release(pv_peer_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&plock);
    if (--p->refs == 0) {
        for (pv_peer_t **pp = &peers; *pp; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
        pthread_mutex_destroy(&p->sess_lock);
        free(p->sess);
        free(p->upstream);
        free(p);
    }
    pthread_mutex_unlock(&plock);
}

int pv_peer_fails(pv_peer_t *p, uint64_t now)
{
    uint64_t st = atomic_load_explicit(&p->fail_state, memory_order_relaxed);
    return (st >> 16) > now ? (int)(st & FAILS_MASK) : 0;
}

/* Window end and count share one word, so workers failing the same
 * server at once never lose a count or reopen a window wrongly. */
int pv_peer_fail(pv_peer_t *p, uint64_t now, int64_t fail_timeout)
{
    uint64_t old = atomic_load_explicit(&p->fail_state, memory_order_relaxed), nw;
    unsigned n;
    do {
        n = (old >> 16) > now ? (unsigned)(old & FAILS_MASK) : 0;
        if (n < FAILS_MASK)
            n++;
        nw = ((now + (uint64_t)fail_timeout) << 16) | n;
    } while (!atomic_compare_exchange_weak(&p->fail_state, &old, nw));
    return (int)n;
}

void pv_peer_ok(pv_peer_t *p)
{
    /* the common case (no failures) only reads the shared word */
    uint64_t old = atomic_load_explicit(&p->fail_state, memory_order_relaxed);
    while ((old & FAILS_MASK) && !atomic_compare_exchange_weak(&p->fail_state, &old, old & ~(uint64_t)FAILS_MASK))
        ;
}

#define IDLE_BITS 24
#define IDLE_MASK ((1ull << IDLE_BITS) - 1)
#define SEEN_BIT (1ull << 63) /* a sighting is recorded (the loop's clock may start at 0) */
#define SEEN_MS(st) (((st) & ~SEEN_BIT) >> IDLE_BITS)

/* One word, stored whole: two workers recording at once keep one of the
 * two sightings, which is as good as both. A shorter time replaces a
 * longer one; a longer one only replaces a sighting that has been
 * forgotten, so the limit follows a server whose timer grew. */
void pv_peer_idle_closed(pv_peer_t *p, uint64_t now, uint64_t idle_ms)
{
    uint64_t old = atomic_load_explicit(&p->idle_close, memory_order_relaxed);
    idle_ms = PV_MIN(idle_ms, IDLE_MASK);
    if (old && SEEN_MS(old) + PV_PEER_IDLE_MEMORY_MS > now && (old & IDLE_MASK) < idle_ms)
        return;
    atomic_store_explicit(&p->idle_close, (now << IDLE_BITS) | idle_ms | SEEN_BIT, memory_order_relaxed);
}

int64_t pv_peer_idle_limit(pv_peer_t *p, uint64_t now)
{
    uint64_t st = atomic_load_explicit(&p->idle_close, memory_order_relaxed);
    if (!st || SEEN_MS(st) + PV_PEER_IDLE_MEMORY_MS <= now)
        return -1;
    return (int64_t)(st & IDLE_MASK);
}

int pv_peer_count(void)
{
    int n = 0;
    pthread_mutex_lock(&plock);
    for (pv_peer_t *p = peers; p; p = p->next)
        n++;
    pthread_mutex_unlock(&plock);
    return n;
}

void pv_peer_save_session(pv_peer_t *p, SSL_SESSION *sess)
{
    int n = i2d_SSL_SESSION(sess, NULL);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL, *q = buf;
    if (!buf)
        return;
    if (i2d_SSL_SESSION(sess, &q) != n) {
        free(buf);
        return;
    }
    pthread_mutex_lock(&p->sess_lock);
    unsigned char *old = p->sess;
    p->sess = buf;
    p->sess_len = (size_t)n;
    pthread_mutex_unlock(&p->sess_lock);
    free(old);
}

SSL_SESSION *pv_peer_load_session(pv_peer_t *p)
{
    SSL_SESSION *sess = NULL;
    pthread_mutex_lock(&p->sess_lock);
    if (p->sess) {
        const unsigned char *q = p->sess;
        sess = d2i_SSL_SESSION(NULL, &q, (long)p->sess_len);
    }
    pthread_mutex_unlock(&p->sess_lock);
    return sess;
}
