#include "peer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <openssl/ssl.h>

#include "../core/common.h"

static pthread_mutex_t plock = PTHREAD_MUTEX_INITIALIZER;
static pv_peer_t *peers;
static pv_peer_group_t *groups;

/* The group of upstream name, held once more; under plock. */
static pv_peer_group_t *group_hold(const char *name)
{
    for (pv_peer_group_t *g = groups; g; g = g->next) {
        if (strcmp(g->name, name) == 0) {
            g->refs++;
            return g;
        }
    }
    pv_peer_group_t *g = calloc(1, sizeof(*g));
    if (g && !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    if (g) {
        pthread_mutex_init(&g->lock, NULL);
        g->refs = 1;
        g->next = groups;
        groups = g;
    }
    return g;
}

/* Drop one hold of g; under plock. */
static void group_drop(pv_peer_group_t *g)
{
    if (--g->refs > 0)
        return;
    for (pv_peer_group_t **pp = &groups; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    pthread_mutex_destroy(&g->lock);
    free(g->name);
    free(g);
}

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
    if (p && (len > sizeof(p->addr) || !(p->upstream = strdup(upstream)) || !(p->group = group_hold(upstream)))) {
        free(p->upstream);
        free(p);
        p = NULL;
    }
    if (p) {
        memcpy(&p->addr, sa, len);
        p->addrlen = len;
        p->nth = nth;
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
        group_drop(p->group);
        free(p->sess);
        free(p->upstream);
        free(p);
    }
    pthread_mutex_unlock(&plock);
}

void pv_peer_configure(pv_peer_t *p, int weight, int checks)
{
    pthread_mutex_lock(&p->group->lock);
    if (checks == PV_PEER_HC_NONE) {
        p->bal.hc_down = p->bal.hc_checked = 0;
        p->bal.hc_fails = p->bal.hc_passes = 0;
    } else if (checks == PV_PEER_HC_MANDATORY && !p->bal.hc_checked) {
        p->bal.hc_down = 1;
    }
    if (p->bal.weight != weight) {
        p->bal.weight = weight;
        p->bal.effective_weight = weight;
        p->bal.current_weight = 0;
    }
    pthread_mutex_unlock(&p->group->lock);
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

/* Whether peer p is a slot of a `resolve` line for host: its key is the
 * line's name, "HOST" or "HOST:PORT" (slot_key() in config/upstream_conf.c). */
static int slot_of_host(const pv_peer_t *p, const char *host, size_t hl)
{
    const char *key = (const char *)&p->addr + 2;
    return p->addr.ss_family == AF_UNSPEC && p->addrlen > 2 && strncmp(key, host, hl) == 0 &&
           (key[hl] == '\0' || key[hl] == ':');
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

int pv_peer_host_addrs(const char *upstream, const char *host, int port, struct sockaddr_storage *out,
                       socklen_t *lens, int max)
{
    size_t hl = strlen(host);
    int n = 0;
    pthread_mutex_lock(&plock);
    for (int nth = 0, more = 1; more && n < max; nth++) {
        more = 0;
        for (pv_peer_t *p = peers; p && n < max; p = p->next) {
            if (p->nth < nth || strcmp(p->upstream, upstream) != 0 || !slot_of_host(p, host, hl))
                continue;
            more = 1;
            if (p->nth != nth)
                continue;
            pthread_mutex_lock(&p->group->lock);
            if (p->curlen) {
                memcpy(&out[n], &p->cur, p->curlen);
                lens[n] = p->curlen;
            }
            int dup = !p->curlen;
            pthread_mutex_unlock(&p->group->lock);
            if (!dup)
                set_port(&out[n], port);
            for (int i = 0; i < n && !dup; i++)
                dup = lens[i] == lens[n] && memcmp(&out[i], &out[n], lens[n]) == 0;
            n += !dup;
        }
    }
    pthread_mutex_unlock(&plock);
    return n;
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
