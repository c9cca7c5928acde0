/* Request metrics across a reload: the counts of each series the new
 * config keeps (a server block, location, upstream, upstream server, zone
 * or cache zone with the same labels) move from the old snapshot's block
 * into the new one's, so a counter goes on where it was instead of
 * starting from zero. Gauges (requests in progress, idle connections)
 * belong to their snapshot and stay. A series the new config drops ends
 * with it, as its labels do. */
#include "stats.h"

#include <string.h>

#include "server.h"

/* dst += src, src = 0, over n counters; only src's writer calls it */
static void move_ctrs(pv_ctr_t *dst, pv_ctr_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = pv_ctr_get(&src[i]);
        if (v) {
            pv_ctr_add(&dst[i], v);
            atomic_store_explicit(&src[i], 0, memory_order_relaxed);
        }
    }
}

#define MOVE(d, s) move_ctrs((pv_ctr_t *)(d), (pv_ctr_t *)(s), sizeof(*(s)) / sizeof(pv_ctr_t))

static const pv_server_t *find_server(const pv_http_conf_t *h, const char *label)
{
    for (int i = 0; i < h->nservers; i++)
        if (strcmp(h->servers[i]->mlabel, label) == 0)
            return h->servers[i];
    return NULL;
}

static const pv_location_t *find_loc(const pv_server_t *s, const char *label)
{
    for (int i = 0; i < s->nlocations; i++)
        if (s->locations[i]->mid && strcmp(s->locations[i]->metrics_name, label) == 0)
            return s->locations[i];
    return NULL;
}

static void carry_servers(pv_stats_t *dst, const pv_http_conf_t *dh, pv_stats_t *src, const pv_http_conf_t *sh)
{
    for (int i = 0; i < sh->nservers; i++) {
        const pv_server_t *s = sh->servers[i], *d = find_server(dh, s->mlabel);
        if (!d)
            continue;
        MOVE(&dst->srv[d->sid].c, &src->srv[s->sid].c);
        MOVE(&dst->srv[d->sid].dur, &src->srv[s->sid].dur);
        for (int j = 0; j < s->nlocations; j++) {
            const pv_location_t *l = s->locations[j], *m = l->mid ? find_loc(d, l->metrics_name) : NULL;
            if (m)
                MOVE(&dst->loc[m->mid - 1], &src->loc[l->mid - 1]);
        }
    }
}

/* The server of u at i in du: the same index when its text is the same
 * (a repeated address keeps its place), else the first with that text. */
static int find_peer(const pv_upstream_conf_t *du, const pv_upstream_conf_t *su, int i)
{
    if (i < du->nservers && strcmp(du->servers[i].text, su->servers[i].text) == 0)
        return i;
    for (int k = 0; k < du->nservers; k++)
        if (strcmp(du->servers[k].text, su->servers[i].text) == 0)
            return k;
    return -1;
}

static void move_peer(pv_stat_peer_t *d, pv_stat_peer_t *s)
{
    MOVE(&d->requests, &s->requests);
    MOVE(&d->status, &s->status);
    MOVE(&d->fails, &s->fails);
    MOVE(&d->opened, &s->opened);
    MOVE(&d->reused, &s->reused);
    MOVE(&d->closed, &s->closed);
    MOVE(&d->bytes_in, &s->bytes_in);
    MOVE(&d->bytes_out, &s->bytes_out);
    MOVE(&d->resp, &s->resp);
    MOVE(&d->connect, &s->connect);
    MOVE(&d->header, &s->header);
}

static void carry_upstreams(pv_stats_t *dst, const pv_http_conf_t *dh, pv_stats_t *src, const pv_http_conf_t *sh)
{
    for (int u = 0; u < sh->nupstreams; u++) {
        const pv_upstream_conf_t *su = sh->upstreams[u], *du = NULL;
        for (int k = 0; k < dh->nupstreams && !du; k++)
            if (strcmp(dh->upstreams[k]->name, su->name) == 0)
                du = dh->upstreams[k];
        if (!du)
            continue;
        MOVE(&dst->ups[du->index], &src->ups[su->index]);
        for (int i = 0; i < su->nservers; i++) {
            int k = find_peer(du, su, i);
            if (k >= 0)
                move_peer(&dst->peer[du->peer_base + k], &src->peer[su->peer_base + i]);
        }
    }
}

static void carry_zones(pv_stats_t *dst, const pv_http_conf_t *dh, pv_stats_t *src, const pv_http_conf_t *sh)
{
    for (int z = 0; z < sh->nzones; z++)
        for (int k = 0; k < dh->nzones; k++)
            if (dh->zones[k]->kind == sh->zones[z]->kind && strcmp(dh->zones[k]->name, sh->zones[z]->name) == 0) {
                MOVE(&dst->zone[dh->zones[k]->index], &src->zone[sh->zones[z]->index]);
                break;
            }
    for (int c = 0; c < sh->ncaches; c++)
        for (int k = 0; k < dh->ncaches; k++)
            if (strcmp(dh->caches[k]->name, sh->caches[c]->name) == 0) {
                MOVE(&dst->cache[dh->caches[k]->index], &src->cache[sh->caches[c]->index]);
                break;
            }
}

void pv_stats_carry(pv_stats_t *dst, const pv_http_conf_t *dh, pv_stats_t *src, const pv_http_conf_t *sh)
{
    if (!dst || !src || !dh || !sh)
        return;
    carry_servers(dst, dh, src, sh);
    carry_upstreams(dst, dh, src, sh);
    carry_zones(dst, dh, src, sh);
    MOVE(&dst->auth, &src->auth);
}
