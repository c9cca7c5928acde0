#include "balance.h"

#include <stdio.h>
#include <string.h>
#include <netinet/in.h>

#include "../core/common.h"
#include "../core/crc32.h"

#define TRIED(k, i) (((k)->tried[(i) >> 6] >> ((i) & 63)) & 1)
#define SET_TRIED(k, i) ((k)->tried[(i) >> 6] |= 1ull << ((i) & 63))
#define ST(peers, i) (&(peers)[i]->bal)

/* NGINX's peers->single: one server and no backup; its index, or -1.
 * Such a server is never failed out, and a failure on it leaves nothing
 * to retry. The slots of `resolve` lines count by the addresses they hold
 * now, as NGINX counts its peers again after each answer: a name that
 * gives one address is a single server. Under the group's lock. */
static int single(const pv_upstream_conf_t *cf, pv_peer_t *const *peers)
{
    if (!cf->nresolve)
        return cf->nservers == 1 ? 0 : -1;
    int one = -1;
    for (int i = 0; i < cf->nservers; i++) {
        if (cf->servers[i].resolve_host && !peers[i]->curlen)
            continue;
        if (one >= 0 || i >= cf->nprimary)
            return -1;
        one = i;
    }
    return one;
}

static __thread uint64_t rng;

void pv_bal_seed(uint64_t seed)
{
    rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* xorshift64*: NGINX uses random(); no sequence is promised. */
static uint32_t next_random(void)
{
    if (!rng)
        pv_bal_seed((uint64_t)(uintptr_t)&rng ^ (uint64_t)pv_crc32(&rng, sizeof(rng)));
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 33);
}

void pv_bal_init(pv_upick_t *k, const pv_upstream_conf_t *cf, uint64_t *tried_words, const char *key,
                 size_t keylen, const struct sockaddr *client, int64_t max_tries)
{
    memset(k, 0, sizeof(*k));
    k->tried = tried_words ? tried_words : &k->tried1;
    k->server = -1;
    for (int i = 0; i < cf->nservers; i++)
        k->tries += !cf->servers[i].down;
    if (max_tries > 0 && k->tries > max_tries)
        k->tries = (int)max_tries;
    k->key = key;
    k->keylen = key ? keylen : 0;
    if (cf->method == PV_BAL_IP_HASH) {
        k->hash = 89;
        k->addrlen = 3; /* NGINX's pseudo address for a non-IP client: three zero bytes */
        if (client && client->sa_family == AF_INET) {
            memcpy(k->addr, &((const struct sockaddr_in *)client)->sin_addr, 3);
        } else if (client && client->sa_family == AF_INET6) {
            const struct in6_addr *a6 = &((const struct sockaddr_in6 *)client)->sin6_addr;
            static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (memcmp(a6->s6_addr, v4mapped, 12) == 0) {
                memcpy(k->addr, a6->s6_addr + 12, 3);
            } else {
                memcpy(k->addr, a6->s6_addr, 16);
                k->addrlen = 16;
            }
        }
    } else if (cf->method == PV_BAL_CHASH && cf->npoints > 0) {
        k->hash = pv_bal_chash_find(cf->points, cf->npoints, pv_crc32(k->key ? k->key : "", k->keylen));
    }
}

uint32_t pv_bal_chash_find(const pv_chash_point_t *points, int npoints, uint32_t hash)
{
    uint32_t i = 0, j = (uint32_t)npoints;
    while (i < j) {
        uint32_t m = (i + j) / 2;
        if (hash > points[m].hash)
            i = m + 1;
        else if (hash < points[m].hash)
            j = m;
        else
            return m;
    }
    return i;
}

int pv_bal_usable(const pv_upstream_server_t *s, const pv_bal_state_t *st, int64_t now)
{
    if (s->down || st->hc_down || st->od_until > now)
        return 0;
    if (s->max_fails && !s->request_fails && st->fails >= s->max_fails && now - st->checked <= s->fail_timeout)
        return 0;
    return !(s->max_conns && st->conns >= s->max_conns);
}

/* The weight a server takes part in a round with: its effective weight,
 * scaled down while it comes back under slow_start. */
static int round_weight(const pv_upstream_server_t *s, pv_bal_state_t *st, int64_t now)
{
    if (!st->slow_since)
        return st->effective_weight;
    int64_t t = now - st->slow_since;
    if (t >= s->slow_start || t < 0) {
        st->slow_since = 0;
        return st->effective_weight;
    }
    int w = (int)((int64_t)st->effective_weight * t / s->slow_start);
    return w > 0 ? w : 1;
}

/* A server was picked: counted in its conns, and its check time moved on
 * when its fail window has passed (a success then clears its failures).
 * One that had failed out starts its slow start here. */
static void picked(pv_upick_t *k, const pv_upstream_server_t *s, pv_bal_state_t *st, int i, int64_t now)
{
    if (now - st->checked > s->fail_timeout) {
        if (s->slow_start && s->max_fails && st->fails >= s->max_fails)
            st->slow_since = now ? now : 1;
        st->checked = now;
    }
    st->conns++;
    SET_TRIED(k, i);
    k->server = i;
    k->held = 1;
}

/* A server's weight: the line's, or for a service= slot its SRV record's. */
static inline int weight_of(const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int i)
{
    return cf->servers[i].resolve_service ? ST(peers, i)->weight : cf->servers[i].weight;
}

/* One round of smooth weighted round robin over the usable, untried
 * servers among [lo, hi) for which match() holds (NGINX's
 * ngx_http_upstream_get_peer()); the chosen index or -1. */
static int rr_round(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int lo, int hi,
                    int line, int64_t now)
{
    int best = -1, total = 0;
    for (int i = lo; i < hi; i++) {
        const pv_upstream_server_t *s = &cf->servers[i];
        pv_bal_state_t *st = ST(peers, i);
        if (TRIED(k, i) || (line >= 0 && s->line != line) || !pv_bal_usable(s, st, now))
            continue;
        int w = round_weight(s, st, now);
        st->current_weight += w;
        total += w;
        if (st->effective_weight < weight_of(cf, peers, i))
            st->effective_weight++;
        if (best < 0 || st->current_weight > ST(peers, best)->current_weight)
            best = i;
    }
    if (best >= 0)
        ST(peers, best)->current_weight -= total;
    return best;
}

/* Round robin with the backup tier (NGINX's get_round_robin_peer()). */
static int rr_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    for (;;) {
        int i;
        int one = single(cf, peers);
        if (one >= 0) {
            const pv_upstream_server_t *s = &cf->servers[one];
            pv_bal_state_t *st = ST(peers, one);
            i = !s->down && !st->hc_down && !(s->max_conns && st->conns >= s->max_conns) ? one : -1;
        } else {
            i = k->backup ? rr_round(k, cf, peers, cf->nprimary, cf->nservers, -1, now)
                          : rr_round(k, cf, peers, 0, cf->nprimary, -1, now);
        }
        if (i >= 0) {
            picked(k, &cf->servers[i], ST(peers, i), i, now);
            return i;
        }
        if (k->backup || cf->nprimary == cf->nservers)
            return -1;
        k->backup = 1;
    }
}

/* least_conn over [lo, hi): fewest conns for the weight, ties broken by
 * smooth weighted round robin among them, as NGINX. */
static int lc_round(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int lo, int hi,
                    int64_t now)
{
    int best = -1, many = 0;
    for (int i = lo; i < hi; i++) {
        const pv_upstream_server_t *s = &cf->servers[i];
        if (TRIED(k, i) || !pv_bal_usable(s, ST(peers, i), now))
            continue;
        if (best < 0) {
            best = i;
            continue;
        }
        int64_t a = (int64_t)ST(peers, i)->conns * weight_of(cf, peers, best);
        int64_t b = (int64_t)ST(peers, best)->conns * weight_of(cf, peers, i);
        if (a < b) {
            best = i;
            many = 0;
        } else if (a == b) {
            many = 1;
        }
    }
    if (best < 0 || !many)
        return best;
    int total = 0, first = best;
    for (int i = first; i < hi; i++) {
        const pv_upstream_server_t *s = &cf->servers[i];
        pv_bal_state_t *st = ST(peers, i);
        if (TRIED(k, i) || !pv_bal_usable(s, st, now) ||
            (int64_t)st->conns * weight_of(cf, peers, first) != (int64_t)ST(peers, first)->conns * weight_of(cf, peers, i))
            continue;
        int w = round_weight(s, st, now);
        st->current_weight += w;
        total += w;
        if (st->effective_weight < weight_of(cf, peers, i))
            st->effective_weight++;
        if (st->current_weight > ST(peers, best)->current_weight)
            best = i;
    }
    ST(peers, best)->current_weight -= total;
    return best;
}

static int lc_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    if (single(cf, peers) >= 0)
        return rr_get(k, cf, peers, now);
    for (;;) {
        int i = k->backup ? lc_round(k, cf, peers, cf->nprimary, cf->nservers, now)
                          : lc_round(k, cf, peers, 0, cf->nprimary, now);
        if (i >= 0) {
            picked(k, &cf->servers[i], ST(peers, i), i, now);
            return i;
        }
        if (k->backup || cf->nprimary == cf->nservers)
            return -1;
        k->backup = 1;
    }
}

/* The primary server that weighted position w (0 <= w < total weight of
 * the primaries, down ones included) falls on. */
static int by_weight(const pv_upstream_conf_t *cf, uint32_t w)
{
    int p = 0;
    while (p < cf->nprimary - 1 && w >= (uint32_t)cf->servers[p].weight) {
        w -= (uint32_t)cf->servers[p].weight;
        p++;
    }
    return p;
}

static uint32_t total_weight(const pv_upstream_conf_t *cf)
{
    uint32_t t = 0;
    for (int i = 0; i < cf->nprimary; i++)
        t += (uint32_t)cf->servers[i].weight;
    return t;
}

/* The next position of ip_hash or hash (the running value advances). */
static uint32_t hash_step(pv_upick_t *k, const pv_upstream_conf_t *cf)
{
    if (cf->method == PV_BAL_IP_HASH) {
        for (int i = 0; i < k->addrlen; i++)
            k->hash = (k->hash * 113 + k->addr[i]) % 6271;
        return k->hash;
    }
    /* Cache::Memcached: ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV */
    uint32_t c = PV_CRC32_INIT;
    if (k->rehash > 0) {
        char buf[16];
        int n = snprintf(buf, sizeof(buf), "%u", k->rehash);
        c = pv_crc32_update(c, buf, (size_t)n);
    }
    c = pv_crc32_final(pv_crc32_update(c, k->key, k->keylen));
    k->hash += (c >> 16) & 0x7fff;
    k->rehash++;
    return k->hash;
}

/* ip_hash and hash: walk the weighted positions until a usable server;
 * round robin after PV_BAL_HASH_TRIES attempts. */
static int hash_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    if (k->htries > PV_BAL_HASH_TRIES || single(cf, peers) >= 0 || (cf->method == PV_BAL_HASH && k->keylen == 0))
        return rr_get(k, cf, peers, now);
    uint32_t total = total_weight(cf), saved = k->hash;
    if (total == 0)
        return rr_get(k, cf, peers, now);
    for (;;) {
        int p = by_weight(cf, hash_step(k, cf) % total);
        if (!TRIED(k, p) && pv_bal_usable(&cf->servers[p], ST(peers, p), now)) {
            picked(k, &cf->servers[p], ST(peers, p), p, now);
            return p;
        }
        if (++k->htries > PV_BAL_HASH_TRIES) {
            if (cf->method == PV_BAL_IP_HASH)
                k->hash = saved; /* NGINX keeps ip_hash's value only when it found a server */
            return rr_get(k, cf, peers, now);
        }
    }
}

/* hash ... consistent: from the key's ring point onwards, the servers of
 * each point's line, round robin among them. */
static int chash_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    if (k->htries > PV_BAL_HASH_TRIES || single(cf, peers) >= 0 || k->keylen == 0 || cf->npoints == 0)
        return rr_get(k, cf, peers, now);
    for (;;) {
        int line = cf->points[k->hash % (uint32_t)cf->npoints].line;
        int i = rr_round(k, cf, peers, 0, cf->nprimary, line, now);
        if (i >= 0) {
            picked(k, &cf->servers[i], ST(peers, i), i, now);
            return i;
        }
        k->hash++;
        if (++k->htries > PV_BAL_HASH_TRIES)
            return rr_get(k, cf, peers, now);
    }
}

/* random [two]: servers drawn by weight; with two, the one of a pair with
 * fewer conns for its weight (the first on a tie). */
static int random_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    if (k->htries > PV_BAL_HASH_TRIES || cf->nprimary < 2)
        return rr_get(k, cf, peers, now);
    uint32_t total = total_weight(cf);
    int prev = -1, p;
    if (total == 0)
        return rr_get(k, cf, peers, now);
    for (;;) {
        p = by_weight(cf, next_random() % total);
        if (p != prev && !TRIED(k, p) && pv_bal_usable(&cf->servers[p], ST(peers, p), now)) {
            if (cf->method == PV_BAL_RANDOM)
                break;
            if (prev >= 0) {
                if ((int64_t)ST(peers, p)->conns * cf->servers[prev].weight >
                    (int64_t)ST(peers, prev)->conns * cf->servers[p].weight)
                    p = prev;
                break;
            }
            prev = p;
        }
        if (++k->htries > PV_BAL_HASH_TRIES)
            return rr_get(k, cf, peers, now);
    }
    picked(k, &cf->servers[p], ST(peers, p), p, now);
    return p;
}

int pv_bal_get(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int64_t now)
{
    switch (cf->method) {
    case PV_BAL_LEAST_CONN:
        return lc_get(k, cf, peers, now);
    case PV_BAL_IP_HASH:
    case PV_BAL_HASH:
        return hash_get(k, cf, peers, now);
    case PV_BAL_CHASH:
        return chash_get(k, cf, peers, now);
    case PV_BAL_RANDOM:
    case PV_BAL_RANDOM2:
        return random_get(k, cf, peers, now);
    default:
        return rr_get(k, cf, peers, now);
    }
}

/* Outlier detection: a 5xx answer or a failure extends server i's run,
 * anything else ends it; a run of od_consecutive ejects the server for
 * od_base times its ejections so far (at most od_max), unless no other
 * server of its tier would be left. Returns the ejection's length, or 0. */
static int64_t outlier(const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int i, int bad, int64_t now)
{
    pv_bal_state_t *st = ST(peers, i);
    if (!bad) {
        st->od_run = 0;
        if (st->od_ejections && now - st->od_until > cf->od_max)
            st->od_ejections = 0;
        return 0;
    }
    if (++st->od_run < cf->od_consecutive)
        return 0;
    int lo = i < cf->nprimary ? 0 : cf->nprimary, hi = i < cf->nprimary ? cf->nprimary : cf->nservers, others = 0;
    for (int j = lo; j < hi && !others; j++)
        others = j != i && pv_bal_usable(&cf->servers[j], ST(peers, j), now);
    if (!others)
        return 0; /* never the last one */
    st->od_run = 0;
    st->od_ejections++;
    st->ejected_total++;
    int64_t t = PV_MIN(cf->od_base * st->od_ejections, cf->od_max);
    st->od_until = now + t;
    if (cf->servers[i].slow_start)
        st->slow_since = st->od_until; /* it comes back slowly (not usable before) */
    return t;
}

int64_t pv_bal_observe(const pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int verdict,
                       int status, int64_t now)
{
    if (!k->held || !cf->od_consecutive || verdict == PV_BAL_DROP)
        return 0;
    return outlier(cf, peers, k->server, verdict == PV_BAL_FAILED || status >= 500, now);
}

int pv_bal_free(pv_upick_t *k, const pv_upstream_conf_t *cf, pv_peer_t *const *peers, int verdict,
                int64_t now)
{
    if (!k->held)
        return 0;
    k->held = 0;
    const pv_upstream_server_t *s = &cf->servers[k->server];
    pv_bal_state_t *st = ST(peers, k->server);
    st->conns--;
    if (verdict == PV_BAL_DROP)
        return 0;
    if (single(cf, peers) >= 0) {
        k->tries = 0;
        return 0;
    }
    int out = 0;
    if (verdict == PV_BAL_FAILED) {
        st->fails++;
        st->accessed = now;
        st->checked = now;
        st->slow_since = 0;
        if (s->max_fails) {
            st->effective_weight -= s->weight / s->max_fails;
            out = st->fails >= s->max_fails;
        }
        if (st->effective_weight < 0)
            st->effective_weight = 0;
    } else if (st->accessed < st->checked) {
        st->fails = 0;
    }
    if (k->tries)
        k->tries--;
    return out;
}
