/* The response cache for an auth_request subrequest (pcache.h). NGINX's
 * auth subrequest is an ordinary one that wants the head alone: its
 * location's proxy_cache looks the entry up, a fresh entry answers with
 * its stored status and fields and the upstream is not asked, and a
 * response the cache may keep is read whole and stored as any request's
 * (its body through the store's tee, none of it to the client). */
#include "pcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../http/accesslog.h"
#include "../http/server.h"
#include "../http/vars.h"
#include "rewrite.h"


/* The MD5 of the key, and of the key and the variant (NGINX's secondary
 * key) when v is given: the names pcache.c gives its entries. */
static void key_md5(const pv_pcache_t *c, const uint8_t *v, uint8_t out[16])
{
    pv_pcache_md5(c->key.p, c->key.len, v, v ? 16 : 0, out);
}


/* The stored head's fields but its status line into sr->upstream_headers
 * (copied into the arena). */
static void keep_head(pv_request_t *sr, pv_str_t head)
{
    char *copy = pv_arena_strndup(sr->arena, head.p, head.len);
    pv_header_t *f = pv_arena_alloc(sr->arena, PV_URESP_MAX_FIELDS * sizeof(*f));
    sr->upstream_headers = NULL;
    sr->nupstream_headers = 0;
    if (!copy || !f)
        return;
    head.p = copy;
    size_t pos = 0;
    pv_str_t n, v;
    int k = 0;
    while (k < PV_URESP_MAX_FIELDS && pv_fc_head_walk(head, &pos, &n, &v) == 1)
        if (n.len && !PV_STR_IEQ(n, "X-Accel-Charset"))
            f[k++] = (pv_header_t){n, v};
    sr->upstream_headers = f;
    sr->nupstream_headers = k;
}

/* Read the entry's header: 1 with *status and the fields kept; 0 when
 * another variant is stored under the main key (v: the subrequest's);
 * -1 when the file cannot be used (forgotten when it is not a valid one). */
static int read_entry(pv_request_t *sr, pv_pcache_t *c, uint8_t v[16], int *status)
{
    char *buf = malloc(PV_FC_HEAD_MAX);
    int fd = buf ? open(c->ref.path, O_RDONLY | O_CLOEXEC) : -1;
    int gone = buf && fd < 0 && errno == ENOENT; /* the manager removed it */
    struct stat st;
    ssize_t n = fd >= 0 && fstat(fd, &st) == 0 ? pread(fd, buf, PV_FC_HEAD_MAX, 0) : -1;
    if (fd >= 0)
        close(fd);
    pv_fc_entry_t e;
    int rc = -1;
    if (n <= 0 || pv_fc_entry_parse(buf, (size_t)n, &e) != 0 || e.key.len != c->key.len ||
        memcmp(e.key.p, c->key.p, c->key.len) != 0 || st.st_size != (off_t)e.body_start + e.body_len) {
        if (n > 0 || gone)
            pv_fc_forget(&c->ref);
        free(buf);
        return -1;
    }
    if (e.vary.len)
        pv_pcache_variant(sr, e.vary, v);
    if (e.vary.len && memcmp(v, e.variant, 16) != 0) {
        rc = c->secondary ? -1 : 0;
    } else {
        keep_head(sr, e.head);
        *status = e.status;
        rc = 1;
    }
    free(buf);
    return rc;
}

/* Where the lookup left the subrequest: 1 with *status when the entry
 * answers, 0 to ask the upstream. */
static int settle(pv_hreq_t *hr, pv_request_t *sr, pv_pcache_t *c, const uint8_t md5[16], int *status)
{
    const pv_pcache_conf_t *pc = c->pc;
    int64_t now = (int64_t)time(NULL);
    pv_fc_lookup(c->zone->impl, md5, c->key, now, pc->min_uses, pc->lock, pc->lock_age, &c->ref);
    switch (c->ref.state) {
    case PV_FC_HIT:
        sr->cache_status = PV_CACHE_HIT;
        break;
    case PV_FC_UPDATING:
        /* another request renews it: the stale entry answers while
         * proxy_cache_use_stale updating or its stale-while-revalidate
         * allows */
        if (!pv_pcache_stale_updating(c)) {
            sr->cache_status = PV_CACHE_EXPIRED;
            return 0;
        }
        sr->cache_status = PV_CACHE_UPDATING;
        break;
    case PV_FC_LOCKED:
        /* another request fills it: this one asks on its own, and
         * stores nothing */
        sr->cache_status = PV_CACHE_MISS;
        c->no_store = 1;
        return 0;
    case PV_FC_EXPIRED:
        sr->cache_status = PV_CACHE_EXPIRED;
        return 0;
    default:
        sr->cache_status = PV_CACHE_MISS;
        c->no_store = c->ref.scarce;
        return 0;
    }
    if (c->ref.error) {
        *status = c->ref.error; /* a stored 502 or 504 */
        return 1;
    }
    uint8_t v[16];
    int rc = read_entry(sr, c, v, status);
    if (rc == 0) {
        /* the subrequest's variant has a key of its own */
        memcpy(c->variant, v, 16);
        c->secondary = 1;
        uint8_t md5v[16];
        key_md5(c, v, md5v);
        return settle(hr, sr, c, md5v, status);
    }
    if (rc < 0) {
        sr->cache_status = PV_CACHE_MISS;
        c->no_store = 1;
        return 0;
    }
    return 1;
}

int pv_pcache_sub_start(pv_hreq_t *hr, pv_request_t *sr, const pv_pcache_use_t *use, pv_sub_done_cb done)
{
    const pv_pcache_conf_t *pc = use->pc;
    sr->pcache = NULL;
    sr->cache_zone = NULL;
    sr->cache_status = PV_CACHE_NONE;
    const pv_cache_path_t *zone = pc->cache;
    if (!zone && pc->cache_cv && pv_pcache_zone(hr, sr, use, &zone) < 0) {
        done(hr, sr, 500);
        return 1;
    }
    /* the subrequest's method is GET, whatever the client's */
    if (!zone || !zone->impl || !(pc->methods & pv_conf_method_bit((pv_str_t)PV_STR("GET"))))
        return 0;
    pv_pcache_t *c = pv_arena_alloc(sr->arena, sizeof(*c));
    pv_str_t key = c ? pv_pcache_key(sr, pc) : (pv_str_t){NULL, 0};
    if (!key.p)
        return 0;
    memset(c, 0, offsetof(pv_pcache_t, temp));
    c->temp[0] = '\0';
    c->fd = -1;
    c->pc = pc;
    c->use = *use;
    c->zone = zone;
    c->key = key;
    c->req = sr;
    c->sub_done = done;
    sr->pcache = c;
    sr->cache_zone = zone;
    uint8_t md5[16];
    key_md5(c, NULL, md5);
    if (pv_request_header(sr, "Authorization", 13) && !pc->key_auth) {
        /* as for any request: credentials are kept apart from the cache
         * unless its key tells the users apart */
        sr->cache_status = PV_CACHE_BYPASS;
        c->no_store = 1;
        return 0;
    }
    if (pv_pcache_any(sr, pc->bypass, pc->nbypass)) {
        /* not taken from the cache, but stored */
        sr->cache_status = PV_CACHE_BYPASS;
        pv_fc_lookup(zone->impl, md5, c->key, (int64_t)time(NULL), pc->min_uses, pc->lock, pc->lock_age, &c->ref);
        c->no_store = !pv_fc_claim(&c->ref, pc->lock_age);
        return 0;
    }
    int status;
    if (!settle(hr, sr, c, md5, &status))
        return 0;
    c->serving = 1;
    sr->pcache = NULL; /* nothing is held: the proxy is not asked */
    done(hr, sr, status);
    return 1;
}

/* Whether the response goes through the proxy's buffers, as NGINX
 * stores only a buffered one: proxy_buffering, or the upstream's
 * X-Accel-Buffering unless proxy_ignore_headers names it. */
static int buffered(const pv_proxy_t *px)
{
    const pv_loc_conf_t *lc = &px->loc->conf;
    int ign = lc->hdr.ignore == PV_UNSET ? 0 : lc->hdr.ignore, on = lc->proxy_pipe.buffering;
    for (int i = 0; px->rp.accel && !(ign & PV_IGN_X_ACCEL_BUFFERING) && i < px->rp.nfields; i++)
        if (PV_STR_IEQ(px->rp.fields[i].name, "X-Accel-Buffering"))
            on = PV_STR_IEQ(px->rp.fields[i].value, "yes") ? 1 : PV_STR_IEQ(px->rp.fields[i].value, "no") ? 0 : on;
    return on;
}

void pv_pcache_sub_head(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *sr = px->r;
    pv_pcache_t *c = sr->pcache;
    const pv_uresp_t *rp = &px->rp;
    if (!buffered(px))
        c->no_store = 1;
    pv_pcache_response(px, rp->status, rp->fields, rp->nfields);
    if (!hr->tee || hr->tee_ctx != c)
        return; /* not stored */
    /* the head a client would get, as the store's tee sees it */
    int frame = rp->frame == PV_FRAME_CHUNKED ? PV_RESP_CHUNKED : PV_RESP_LENGTH;
    int64_t len = rp->frame == PV_FRAME_LENGTH ? rp->content_length : 0;
    pv_upstream_response_t ur = {
        .status = rp->status,
        .reason = rp->reason,
        .headers = rp->fields,
        .nheaders = rp->nfields,
        .r = sr,
        .loc = px->loc,
    };
    pv_header_t fields[PV_URESP_MAX_FIELDS];
    pv_resp_head_t h;
    pv_proxy_response_head(&ur, frame, len, fields, &h);
    hr->tee->head(hr, &h);
}

/* Let the entry go: stored when complete, else its fill released. */
static void let_go(pv_hreq_t *hr, pv_pcache_t *c, int complete)
{
    if (hr->tee && hr->tee_ctx == c) {
        const pv_tee_t *t = hr->tee;
        hr->tee = NULL;
        t->done(hr, complete);
    }
    pv_fc_filled(&c->ref, 0, 0, 0);
}

void pv_pcache_sub_done(pv_hreq_t *hr, pv_request_t *sr, int status)
{
    pv_pcache_t *c = sr->pcache;
    const pv_proxy_t *px = hr->handler_ctx;
    let_go(hr, c, px && px->r == sr && px->resp_done);
    c->sub_done(hr, sr, status);
}

void pv_pcache_sub_cleanup(pv_hreq_t *hr, pv_request_t *sr)
{
    if (sr->pcache)
        let_go(hr, sr->pcache, 0);
}
