/* limit_req and limit_conn zones. NGINX keeps a zone in one shared-memory
 * slab under one mutex (a red-black tree plus an LRU queue); portvakt's
 * workers are threads, so a zone is plain memory split into shards, each
 * with its own mutex, chained hash table, LRU list and share of the size
 * budget. Keys are hashed with SipHash-1-3 under a random per-zone seed so
 * clients cannot aim their keys at one chain. */
#include "limit.h"

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../core/log.h"

/* Most shards a zone gets; a shard gets at least this many units. */
#define PV_LIMIT_MAX_SHARDS 64
#define PV_LIMIT_MIN_SHARD_UNITS 256
/* NGINX frees an idle entry only after this long without requests. */
#define PV_LIMIT_IDLE_MS 60000
/* At most one "could not allocate node" alert per zone per this many ms. */
#define PV_LIMIT_NOMEM_LOG_MS 1000

/* One key's state. limit_req uses every field; limit_conn only the count.
 * The layout keeps the fixed part at 52 bytes so a 12-byte key fits one
 * 64-byte unit. */
typedef struct pv_lnode_s {
    struct pv_lnode_s *hnext; /* next entry in the same hash bucket */
    struct pv_lnode_s *prev;  /* LRU neighbour towards the most recent (limit_req) */
    struct pv_lnode_s *next;  /* LRU neighbour towards the least recent (limit_req) */
    uint64_t last;            /* now_ms of the last accounted request (limit_req) */
    uint64_t excess;          /* milli-requests above the rate at `last` (limit_req) */
    uint32_t hash;            /* low half of the key's hash: bucket index, quick compare */
    uint32_t count;           /* limit_req: checks holding it; limit_conn: holders */
    uint16_t klen;            /* key length */
    uint8_t fresh;            /* created by a check not yet accounted: next excess is 0 */
    uint8_t shard;            /* index of the owning shard (release without rehashing) */
    unsigned char key[];      /* the key bytes */
} pv_lnode_t;

#define PV_LNODE_HDR offsetof(pv_lnode_t, key)

/* A slice of a zone with its own lock, on its own cache lines. */
typedef struct pv_lshard_s {
    pthread_mutex_t lock;  /* guards everything below and the entries */
    pv_lnode_t **buckets;  /* chained hash table */
    uint32_t mask;         /* bucket count - 1 (a power of two) */
    pv_lnode_t *head;      /* most recently used entry (limit_req) */
    pv_lnode_t *tail;      /* least recently used entry: where eviction starts */
    size_t used;           /* units held by entries */
    size_t cap;            /* units this shard may hold */
    size_t count;          /* entries */
    pv_lnode_t *free;      /* one-unit nodes kept for reuse (chained by hnext) */
    size_t nfree;          /* their number; used + nfree never exceeds cap */
} __attribute__((aligned(64))) pv_lshard_t;

/* What both zone kinds share: the name and the sharded table. */
typedef struct pv_ltable_s {
    char *name;            /* zone name, for logs */
    pv_lshard_t *shards;   /* nshards shards */
    unsigned nshards;      /* a power of two */
    uint64_t seed[2];      /* SipHash key */
} pv_ltable_t;

struct pv_limit_req_zone_s {
    pv_ltable_t t;                /* the entries */
    uint64_t rate;                /* milli-requests per second */
    _Atomic uint64_t nomem_log;   /* wall ms of the last "could not allocate" alert */
};

struct pv_limit_conn_zone_s {
    pv_ltable_t t;                /* the entries */
};

/* ---- hashing ------------------------------------------------------------ */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                        \
    do {                                                                                \
        v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);                   \
        v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                                        \
        v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                                        \
        v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);                   \
    } while (0)

/* SipHash-1-3: fast for short keys and keyed, so chains stay short even
 * when clients choose their keys. */
static uint64_t siphash13(const uint64_t seed[2], const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ seed[0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ seed[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ seed[0];
    uint64_t v3 = 0x7465646279746573ULL ^ seed[1];
    uint64_t b = (uint64_t)len << 56;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8);
        m = le64toh(m);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the sharded table -------------------------------------------------- */

static size_t node_units(size_t klen)
{
    return (PV_LNODE_HDR + klen + PV_LIMIT_UNIT - 1) / PV_LIMIT_UNIT;
}

static int table_init(pv_ltable_t *t, const char *name, size_t size)
{
    size_t units = size / PV_LIMIT_UNIT;

    memset(t, 0, sizeof(*t));
    if (units == 0 || !name)
        return PV_ERR;
    t->nshards = 1;
    while (t->nshards < PV_LIMIT_MAX_SHARDS && units / (t->nshards * 2) >= PV_LIMIT_MIN_SHARD_UNITS)
        t->nshards *= 2;
    if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t)sizeof(t->seed)) {
        /* no entropy yet (early boot): a weaker seed still spreads keys */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t->seed[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)t;
        t->seed[1] = pv_now_ns() ^ (uintptr_t)&ts;
    }
    t->name = strdup(name);
    t->shards = aligned_alloc(64, t->nshards * sizeof(pv_lshard_t));
    if (!t->name || !t->shards) {
        free(t->name);
        free(t->shards);
        return PV_ERR;
    }
    memset(t->shards, 0, t->nshards * sizeof(pv_lshard_t));
    for (unsigned i = 0; i < t->nshards; i++) {
        pv_lshard_t *s = &t->shards[i];
        size_t nb = 4;
        s->cap = units / t->nshards + (i < units % t->nshards ? 1 : 0);
        while (nb < s->cap)
            nb *= 2;
        s->mask = (uint32_t)(nb - 1);
        s->buckets = calloc(nb, sizeof(*s->buckets));
        pthread_mutex_init(&s->lock, NULL);
        if (!s->buckets) {
            for (unsigned j = 0; j <= i; j++) {
                free(t->shards[j].buckets);
                pthread_mutex_destroy(&t->shards[j].lock);
            }
            free(t->name);
            free(t->shards);
            return PV_ERR;
        }
    }
    return PV_OK;
}

static void table_free(pv_ltable_t *t)
{
    for (unsigned i = 0; i < t->nshards; i++) {
        pv_lshard_t *s = &t->shards[i];
        for (uint32_t b = 0; b <= s->mask; b++) {
            pv_lnode_t *n = s->buckets[b];
            while (n) {
                pv_lnode_t *nx = n->hnext;
                free(n);
                n = nx;
            }
        }
        while (s->free) {
            pv_lnode_t *nx = s->free->hnext;
            free(s->free);
            s->free = nx;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(t->shards);
    free(t->name);
}

/* The shard a hash belongs to; the low 32 bits pick the bucket. */
static pv_lshard_t *table_shard(pv_ltable_t *t, uint64_t h, unsigned *idx)
{
    *idx = (unsigned)(h >> 32) & (t->nshards - 1);
    return &t->shards[*idx];
}

static size_t table_count(pv_ltable_t *t)
{
    size_t n = 0;
    for (unsigned i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].count;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

static pv_lnode_t *shard_find(pv_lshard_t *s, uint32_t h, pv_str_t key)
{
    for (pv_lnode_t *n = s->buckets[h & s->mask]; n; n = n->hnext)
        if (n->hash == h && n->klen == key.len && memcmp(n->key, key.p, key.len) == 0)
            return n;
    return NULL;
}

static void lru_unlink(pv_lshard_t *s, pv_lnode_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        s->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        s->tail = n->prev;
    n->prev = n->next = NULL;
}

static void lru_push(pv_lshard_t *s, pv_lnode_t *n)
{
    n->prev = NULL;
    n->next = s->head;
    if (s->head)
        s->head->prev = n;
    else
        s->tail = n;
    s->head = n;
}

/* A node for key in shard s, inserted in the hash table (not the LRU), or
 * NULL when the shard has no room (the caller evicts first) or malloc fails. */
static pv_lnode_t *shard_insert(pv_lshard_t *s, unsigned idx, uint32_t h, pv_str_t key)
{
    size_t u = node_units(key.len);
    pv_lnode_t *n;

    if (s->used + u > s->cap)
        return NULL;
    if (u == 1 && s->free) {
        n = s->free;
        s->free = n->hnext;
        s->nfree--;
    } else {
        /* keep used + nfree within cap: drop spare nodes this one displaces */
        while (s->free && s->used + s->nfree + u > s->cap) {
            n = s->free;
            s->free = n->hnext;
            s->nfree--;
            free(n);
        }
        n = malloc(u == 1 ? PV_LIMIT_UNIT : PV_LNODE_HDR + key.len);
        if (!n)
            return NULL;
    }
    memset(n, 0, PV_LNODE_HDR);
    n->hash = h;
    n->klen = (uint16_t)key.len;
    n->shard = (uint8_t)idx;
    memcpy(n->key, key.p, key.len);
    n->hnext = s->buckets[h & s->mask];
    s->buckets[h & s->mask] = n;
    s->used += u;
    s->count++;
    return n;
}

/* Unlink n from the hash table (and the LRU if linked) and free it. */
static void shard_remove(pv_lshard_t *s, pv_lnode_t *n, int in_lru)
{
    pv_lnode_t **pp = &s->buckets[n->hash & s->mask];
    size_t u = node_units(n->klen);

    while (*pp != n)
        pp = &(*pp)->hnext;
    *pp = n->hnext;
    if (in_lru)
        lru_unlink(s, n);
    s->used -= u;
    s->count--;
    if (u == 1 && s->used + s->nfree < s->cap) {
        n->hnext = s->free;
        s->free = n;
        s->nfree++;
    } else {
        free(n);
    }
}

/* ---- limit_req arithmetic (ngx_http_limit_req_lookup / _account) --------- */

/* Milliseconds since `last` as NGINX counts them: a clock seen a little
 * behind (another thread's cached time) counts as 0, far behind as 1. */
static int64_t req_elapsed(uint64_t now, uint64_t last)
{
    int64_t ms = (int64_t)(now - last);
    if (ms < -60000)
        return 1;
    return ms < 0 ? 0 : ms;
}

/* rate * ms / 1000, saturated instead of overflowing after long idle times. */
static int64_t req_leak(uint64_t rate, int64_t ms)
{
    unsigned __int128 v = (unsigned __int128)rate * (uint64_t)ms / 1000;
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* The excess this request would bring the entry to: what is left after the
 * bucket leaked for ms, plus the request itself. A fresh entry stands for
 * NGINX's node with last == 0, whose first request always gets excess 0. */
static uint64_t req_next_excess(const pv_lnode_t *n, uint64_t rate, int64_t ms)
{
    if (n->fresh)
        return 0;
    int64_t e = (int64_t)n->excess - req_leak(rate, ms) + 1000;
    return e < 0 ? 0 : (uint64_t)e;
}

/* Store an accounted request; `last` only moves when time did, as NGINX. */
static void req_store(pv_lnode_t *n, uint64_t excess, int64_t ms, uint64_t now)
{
    if (n->fresh) {
        n->fresh = 0;
        n->last = now;
    } else if (ms) {
        n->last = now;
    }
    n->excess = excess;
}

/* ngx_http_limit_req_expire(): from the LRU end, free up to two entries
 * idle for a minute whose bucket has drained; with force, first free the
 * least recently used entry whatever its state. An entry held by a check in
 * progress stops the walk: older ones were bumped past it. */
static void req_expire(pv_limit_req_zone_t *z, pv_lshard_t *s, uint64_t now, int force)
{
    for (int n = force ? 0 : 1; n < 3; n++) {
        pv_lnode_t *lr = s->tail;
        if (!lr || lr->count)
            return;
        if (n != 0 && !lr->fresh) {
            int64_t ms = (int64_t)(now - lr->last);
            if (ms < 0)
                ms = -ms;
            if (ms < PV_LIMIT_IDLE_MS)
                return;
            if ((int64_t)lr->excess - req_leak(z->rate, ms) > 0)
                return;
        }
        shard_remove(s, lr, 1);
    }
}

static void req_nomem_log(pv_limit_req_zone_t *z)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t prev = atomic_load_explicit(&z->nomem_log, memory_order_relaxed);
    if (prev && now - prev < PV_LIMIT_NOMEM_LOG_MS)
        return;
    if (atomic_compare_exchange_strong(&z->nomem_log, &prev, now))
        pv_log(PV_LOG_ALERT, "could not allocate node in limit_req zone \"%s\"", z->t.name);
}

enum { LK_OK, LK_AGAIN, LK_BUSY, LK_ERROR };

/* A limit_req entry held between the lookup and the account phase. */
typedef struct pv_req_pin_s {
    pv_lnode_t *node;    /* the pinned entry; NULL if the limit was skipped or accounted */
    pv_lshard_t *shard;  /* its shard, to lock again */
} pv_req_pin_t;

/* ngx_http_limit_req_lookup() with the shard locked. The last limit of a
 * request is accounted at once (LK_OK); earlier ones are only checked and
 * pinned (LK_AGAIN) until every later limit has passed. LK_BUSY: the
 * request would overflow the burst and changes nothing. LK_ERROR: no room
 * for a new key. *ep gets the excess the request would bring. */
static int req_lookup(pv_limit_req_zone_t *z, const pv_limit_req_t *lim, pv_lshard_t *s,
                      unsigned idx, uint32_t h, pv_str_t key, uint64_t now, int account,
                      uint64_t *ep, pv_req_pin_t *pin)
{
    pv_lnode_t *lr = shard_find(s, h, key);

    if (lr) {
        lru_unlink(s, lr);
        lru_push(s, lr);
        int64_t ms = req_elapsed(now, lr->last);
        uint64_t excess = req_next_excess(lr, z->rate, ms);
        *ep = excess;
        if (excess > lim->burst)
            return LK_BUSY;
        if (account) {
            req_store(lr, excess, ms, now);
            return LK_OK;
        }
        lr->count++;
        pin->node = lr;
        pin->shard = s;
        return LK_AGAIN;
    }

    *ep = 0;
    req_expire(z, s, now, 0);
    size_t u = node_units(key.len);
    if (s->used + u > s->cap) {
        req_expire(z, s, now, 1);
        /* a key wider than one unit may need more than NGINX's one forced eviction */
        while (s->used + u > s->cap && s->tail && !s->tail->count)
            shard_remove(s, s->tail, 1);
    }
    lr = shard_insert(s, idx, h, key);
    if (!lr)
        return LK_ERROR;
    lru_push(s, lr);
    if (account) {
        lr->last = now;
        return LK_OK;
    }
    lr->fresh = 1;
    lr->count = 1;
    pin->node = lr;
    pin->shard = s;
    return LK_AGAIN;
}

/* ngx_http_limit_req_unlock(): a later limit rejected; let go of the
 * earlier ones without charging them. */
static void req_unpin(pv_req_pin_t *pins, int n)
{
    while (n--) {
        if (!pins[n].node)
            continue;
        pthread_mutex_lock(&pins[n].shard->lock);
        pins[n].node->count--;
        pthread_mutex_unlock(&pins[n].shard->lock);
        pins[n].node = NULL;
    }
}

static uint64_t req_delay_ms(const pv_limit_req_t *lim, uint64_t excess)
{
    if (excess <= lim->delay)
        return 0;
    return (excess - lim->delay) * 1000 / lim->zone->rate;
}

/* RateLimit header values for one limit whose key is (or, rejected, would
 * have been) at `excess`: requests accepted at once from now, and ms until
 * the bucket is empty (rejected: until a retry can pass). */
static void req_headers(const pv_limit_req_t *limit, uint64_t excess, int rejected,
                        uint64_t *remaining, uint64_t *reset_ms)
{
    uint64_t rate = limit->zone->rate;

    if (rejected || excess > limit->burst) {
        uint64_t over = excess > limit->burst ? excess - limit->burst : 0;
        *remaining = 0;
        *reset_ms = (over * 1000 + rate - 1) / rate;
        return;
    }
    *remaining = (limit->burst - excess) / 1000;
    *reset_ms = (excess * 1000 + rate - 1) / rate;
}

/* Keep the tightest limit's numbers for the RateLimit headers. */
static void req_tightest(pv_limit_req_result_t *res, int *have, const pv_limit_req_t *lim,
                         uint64_t excess, int rejected)
{
    uint64_t rem, reset;
    req_headers(lim, excess, rejected, &rem, &reset);
    if (!*have || rem < res->remaining || (rem == res->remaining && reset > res->reset_ms)) {
        res->remaining = rem;
        res->reset_ms = reset;
        *have = 1;
    }
}

/* ---- limit_req API ------------------------------------------------------ */

int pv_limit_rate_parse(pv_str_t s, uint64_t *rate)
{
    uint64_t scale = 1, v = 0;
    size_t len = s.len;

    if (len >= 3 && memcmp(s.p + len - 3, "r/s", 3) == 0) {
        len -= 3;
    } else if (len >= 3 && memcmp(s.p + len - 3, "r/m", 3) == 0) {
        scale = 60;
        len -= 3;
    }
    if (len == 0)
        return PV_ERR;
    for (size_t i = 0; i < len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return PV_ERR;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
        if (v > INT32_MAX)
            return PV_ERR;
    }
    if (v == 0)
        return PV_ERR;
    v = v * 1000 / scale;
    if (v == 0)
        return PV_ERR;
    *rate = v;
    return PV_OK;
}

pv_limit_req_zone_t *pv_limit_req_zone_new(const char *name, size_t size, uint64_t rate)
{
    if (rate == 0)
        return NULL;
    pv_limit_req_zone_t *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    if (table_init(&z->t, name, size) != PV_OK) {
        free(z);
        return NULL;
    }
    z->rate = rate;
    return z;
}

void pv_limit_req_zone_free(pv_limit_req_zone_t *z)
{
    if (!z)
        return;
    table_free(&z->t);
    free(z);
}

const char *pv_limit_req_zone_name(const pv_limit_req_zone_t *z)
{
    return z->t.name;
}

uint64_t pv_limit_req_zone_rate(const pv_limit_req_zone_t *z)
{
    return z->rate;
}

size_t pv_limit_req_zone_count(pv_limit_req_zone_t *z)
{
    return table_count(&z->t);
}

int pv_limit_req_check(const pv_limit_req_t *limits, const pv_str_t *keys, int n,
                       uint64_t now_ms, pv_limit_req_result_t *res)
{
    pv_req_pin_t pins_local[8];
    pv_req_pin_t *pins = pins_local;
    uint64_t excess = 0;
    int rc = -1, i, last = -1, have = 0;

    memset(res, 0, sizeof(*res));
    res->action = PV_LIMIT_PASS;
    res->which = -1;
    if (n <= 0)
        return PV_LIMIT_PASS;
    if ((size_t)n > PV_NELEM(pins_local)) {
        pins = calloc((size_t)n, sizeof(*pins));
        if (!pins) {
            /* cannot hold the earlier limits: act as NGINX does on no memory */
            res->action = PV_LIMIT_REJECT;
            res->which = 0;
            res->nomem = 1;
            return PV_LIMIT_REJECT;
        }
    } else {
        memset(pins_local, 0, sizeof(pins_local));
    }

    for (i = 0; i < n; i++) {
        const pv_limit_req_t *lim = &limits[i];
        pv_limit_req_zone_t *z = lim->zone;
        last = i;
        if (keys[i].len == 0)
            continue;
        if (keys[i].len > PV_LIMIT_REQ_KEY_MAX) {
            pv_log(PV_LOG_ERR, "the value of the key of limit_req zone \"%s\" is more than 65535 bytes",
                   z->t.name);
            continue;
        }
        uint64_t h = siphash13(z->t.seed, (const unsigned char *)keys[i].p, keys[i].len);
        unsigned idx;
        pv_lshard_t *s = table_shard(&z->t, h, &idx);
        pthread_mutex_lock(&s->lock);
        rc = req_lookup(z, lim, s, idx, (uint32_t)h, keys[i], now_ms, i == n - 1, &excess,
                        &pins[i]);
        pthread_mutex_unlock(&s->lock);
        if (rc == LK_ERROR)
            req_nomem_log(z);
        if (rc != LK_AGAIN)
            break;
    }

    if (rc == -1)
        goto done;

    if (rc == LK_BUSY || rc == LK_ERROR) {
        req_unpin(pins, i);
        res->action = PV_LIMIT_REJECT;
        res->which = i;
        res->excess = excess;
        res->nomem = rc == LK_ERROR;
        if (rc == LK_BUSY)
            req_headers(&limits[i], excess, 1, &res->remaining, &res->reset_ms);
        goto done;
    }

    /* ngx_http_limit_req_account(): the last limit looked up decided with
     * `excess` (0 when its key was skipped); now charge the pinned ones,
     * re-reading their state, and keep the longest delay. */
    if (rc == LK_AGAIN)
        excess = 0;
    else
        req_tightest(res, &have, &limits[last], excess, 0);
    uint64_t max_delay = req_delay_ms(&limits[last], excess);
    res->which = last;
    res->excess = excess;

    for (int j = i - 1; j >= 0; j--) {
        pv_lnode_t *lr = pins[j].node;
        if (!lr)
            continue;
        const pv_limit_req_t *lim = &limits[j];
        pthread_mutex_lock(&pins[j].shard->lock);
        int64_t ms = req_elapsed(now_ms, lr->last);
        uint64_t e = req_next_excess(lr, lim->zone->rate, ms);
        req_store(lr, e, ms, now_ms);
        lr->count--;
        pthread_mutex_unlock(&pins[j].shard->lock);
        pins[j].node = NULL;
        req_tightest(res, &have, lim, e, 0);
        uint64_t d = req_delay_ms(lim, e);
        if (d > max_delay) {
            max_delay = d;
            res->which = j;
            res->excess = e;
        }
    }
    if (max_delay) {
        res->action = PV_LIMIT_DELAY;
        res->delay_ms = max_delay;
    }

done:
    if (pins != pins_local)
        free(pins);
    return res->action;
}

void pv_limit_req_decide(const pv_limit_req_t *limit, uint64_t excess, int rejected,
                         pv_limit_req_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->which = 0;
    res->excess = excess;
    req_headers(limit, excess, rejected, &res->remaining, &res->reset_ms);
    if (rejected) {
        res->action = PV_LIMIT_REJECT;
        return;
    }
    res->delay_ms = req_delay_ms(limit, excess);
    res->action = res->delay_ms ? PV_LIMIT_DELAY : PV_LIMIT_PASS;
}

const char *pv_limit_req_status(const pv_limit_req_result_t *res, int dry_run)
{
    if (res->which < 0)
        return NULL;
    switch (res->action) {
    case PV_LIMIT_DELAY:
        return dry_run ? "DELAYED_DRY_RUN" : "DELAYED";
    case PV_LIMIT_REJECT:
        return dry_run ? "REJECTED_DRY_RUN" : "REJECTED";
    default:
        return "PASSED";
    }
}

void pv_limit_req_log(const pv_limit_req_t *limits, const pv_limit_req_result_t *res,
                      int log_level, int dry_run, const char *context)
{
    if (res->which < 0 || res->action == PV_LIMIT_PASS || res->nomem)
        return;
    const char *zone = limits[res->which].zone->t.name;
    unsigned long long e = (unsigned long long)res->excess;
    if (!context)
        context = "";
    if (res->action == PV_LIMIT_REJECT) {
        pv_log(log_level, "limiting requests%s, excess: %llu.%03llu by zone \"%s\"%s",
               dry_run ? ", dry run" : "", e / 1000, e % 1000, zone, context);
        return;
    }
    int delay_level = log_level >= PV_LOG_INFO ? log_level : log_level + 1;
    pv_log(delay_level, "delaying request%s, excess: %llu.%03llu, by zone \"%s\"%s",
           dry_run ? ", dry run" : "", e / 1000, e % 1000, zone, context);
}

/* ---- limit_conn (ngx_http_limit_conn_handler / _cleanup) ----------------- */

pv_limit_conn_zone_t *pv_limit_conn_zone_new(const char *name, size_t size)
{
    pv_limit_conn_zone_t *z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    if (table_init(&z->t, name, size) != PV_OK) {
        free(z);
        return NULL;
    }
    return z;
}

void pv_limit_conn_zone_free(pv_limit_conn_zone_t *z)
{
    if (!z)
        return;
    table_free(&z->t);
    free(z);
}

const char *pv_limit_conn_zone_name(const pv_limit_conn_zone_t *z)
{
    return z->t.name;
}

size_t pv_limit_conn_zone_count(pv_limit_conn_zone_t *z)
{
    return table_count(&z->t);
}

int pv_limit_conn_acquire(pv_limit_conn_zone_t *z, pv_str_t key, unsigned limit,
                          pv_limit_conn_ref_t *ref)
{
    ref->zone = NULL;
    ref->node = NULL;
    if (key.len == 0 || key.len > PV_LIMIT_CONN_KEY_MAX)
        return PV_LIMIT_PASS;

    uint64_t h = siphash13(z->t.seed, (const unsigned char *)key.p, key.len);
    unsigned idx;
    pv_lshard_t *s = table_shard(&z->t, h, &idx);
    int rc = PV_LIMIT_PASS;

    pthread_mutex_lock(&s->lock);
    pv_lnode_t *lc = shard_find(s, (uint32_t)h, key);
    if (lc) {
        if (lc->count >= limit)
            rc = PV_LIMIT_REJECT;
        else
            lc->count++;
    } else {
        lc = shard_insert(s, idx, (uint32_t)h, key);
        if (lc)
            lc->count = 1;
        else
            rc = PV_LIMIT_NOMEM;
    }
    pthread_mutex_unlock(&s->lock);

    if (rc == PV_LIMIT_PASS) {
        ref->zone = z;
        ref->node = lc;
    }
    return rc;
}

void pv_limit_conn_release(pv_limit_conn_ref_t *ref)
{
    pv_lnode_t *lc = ref->node;
    if (!ref->zone || !lc)
        return;
    pv_lshard_t *s = &ref->zone->t.shards[lc->shard];
    pthread_mutex_lock(&s->lock);
    if (--lc->count == 0)
        shard_remove(s, lc, 0);
    pthread_mutex_unlock(&s->lock);
    ref->zone = NULL;
    ref->node = NULL;
}

void pv_limit_conn_release_all(pv_limit_conn_ref_t *refs, int n)
{
    for (int i = 0; i < n; i++)
        pv_limit_conn_release(&refs[i]);
}

int pv_limit_conn_check(const pv_limit_conn_t *limits, const pv_str_t *keys, int n,
                        pv_limit_conn_ref_t *refs, int *which)
{
    *which = -1;
    for (int i = 0; i < n; i++) {
        refs[i].zone = NULL;
        refs[i].node = NULL;
    }
    for (int i = 0; i < n; i++) {
        if (keys[i].len == 0)
            continue;
        if (keys[i].len > PV_LIMIT_CONN_KEY_MAX) {
            pv_log(PV_LOG_ERR, "the value of the key of limit_conn zone \"%s\" is more than 255 bytes",
                   limits[i].zone->t.name);
            continue;
        }
        int rc = pv_limit_conn_acquire(limits[i].zone, keys[i], limits[i].conn, &refs[i]);
        if (rc != PV_LIMIT_PASS) {
            pv_limit_conn_release_all(refs, i);
            *which = i;
            return rc;
        }
    }
    return PV_LIMIT_PASS;
}

void pv_limit_conn_log(const pv_limit_conn_t *limit, int log_level, int dry_run,
                       const char *context)
{
    pv_log(log_level, "limiting connections%s by zone \"%s\"%s", dry_run ? ", dry run," : "",
           limit->zone->t.name, context ? context : "");
}
