/* The response cache before and instead of the upstream (pcache.h): the
 * key and its lookup, the lock wait, and an entry served through the
 * static file path. Storing is pcache_store.c. */
/* The key's MD5 comes from OpenSSL's MD5 functions, deprecated in 3.0 for
 * EVP's but built: a context on the stack, where an EVP digest costs the
 * provider's setup and a cleanse each time (650 instructions of a cache
 * hit's 12,000). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "pcache.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/md5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/log.h"
#include "../http/accesslog.h"
#include "../http/fileop.h"
#include "../http/range.h"
#include "../http/server.h"
#include "../http/static.h"
#include "../http/vars.h"
#include "rewrite.h"

#define WAIT_POLL_MS 20 /* how often a request waiting for the lock looks again */

void pv_pcache_md5(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[16])
{
    MD5_CTX c;
    MD5_Init(&c);
    MD5_Update(&c, a, alen);
    if (blen)
        MD5_Update(&c, b, blen);
    MD5_Final(out, &c);
}

pv_str_t pv_pcache_key(pv_request_t *r, const pv_pcache_conf_t *pc)
{
    const pv_proxy_pass_t *pp = r->loc->proxy_pass;
    if (pc->key_default && pp && !pp->cv) {
        /* NGINX's own key: the proxy_pass scheme and host and the URI
         * sent upstream (ngx_http_proxy_create_key) */
        size_t cap = 8 + pp->proxy_host.len + pp->uri.len + 3 * (r->uri.len + r->request_uri.len) + r->args.len + 2;
        char *k = pv_arena_alloc(r->arena, cap);
        if (!k)
            return (pv_str_t){NULL, 0};
        size_t n = pp->ssl ? 8 : 7;
        memcpy(k, pp->ssl ? "https://" : "http://", n);
        memcpy(k + n, pp->proxy_host.p, pp->proxy_host.len);
        n += pp->proxy_host.len;
        size_t u = pv_proxy_upstream_uri(r, r->loc, k + n, cap - n);
        if (u <= cap - n)
            return (pv_str_t){k, n + u};
    }
    char kbuf[2048];
    size_t n = pv_cv_eval(pc->key, r, PV_ESCAPE_NONE, kbuf, sizeof(kbuf));
    char *k = pv_arena_alloc(r->arena, n + 1);
    if (!k)
        return (pv_str_t){NULL, 0};
    if (n < sizeof(kbuf))
        memcpy(k, kbuf, n);
    else
        pv_cv_eval(pc->key, r, PV_ESCAPE_NONE, k, n + 1);
    return (pv_str_t){k, n};
}

/* Whether any of the values is neither empty nor "0" (proxy_cache_bypass,
 * proxy_no_cache). */
int pv_pcache_any(pv_request_t *r, const pv_cv_t *cvs, int n)
{
    for (int i = 0; i < n; i++)
        if (pv_cv_true(&cvs[i], r))
            return 1;
    return 0;
}

/* A request field whose value is a list of tokens: its variant is the
 * same whatever the spaces and empty elements (NGINX's normalization). */
static int token_list(const char *name, size_t len)
{
    static const char *const lists[] = {"accept-charset", "accept-encoding", "accept-language"};
    for (size_t i = 0; i < PV_NELEM(lists); i++)
        if (strlen(lists[i]) == len && memcmp(lists[i], name, len) == 0)
            return 1;
    return 0;
}

/* One field's values in a variant: every line of that name, joined by
 * commas; a token list by its tokens alone. */
static void variant_values(MD5_CTX *c, const pv_request_t *r, const char *name, size_t len)
{
    int list = token_list(name, len), multiple = 0;
    for (int k = 0; k < r->nheaders; k++) {
        pv_str_t v = r->headers[k].value;
        if (r->headers[k].name.len != len || strncasecmp(r->headers[k].name.p, name, len) != 0)
            continue;
        if (!list) {
            if (multiple)
                MD5_Update(c, ",", 1);
            MD5_Update(c, v.p, v.len);
            multiple = 1;
            continue;
        }
        for (size_t i = 0; i < v.len;) {
            while (i < v.len && (v.p[i] == ' ' || v.p[i] == ','))
                i++;
            size_t s = i;
            while (i < v.len && v.p[i] != ',' && v.p[i] != ' ')
                i++;
            if (i == s)
                break;
            if (multiple)
                MD5_Update(c, ",", 1);
            MD5_Update(c, v.p + s, i - s);
            multiple = 1;
        }
    }
}

/* The request's variant for the field names a stored Vary lists: the MD5
 * of each name (lower case) with the request's values. */
void pv_pcache_variant(const pv_request_t *r, pv_str_t vary, uint8_t out[16])
{
    MD5_CTX ctx, *c = &ctx;
    MD5_Init(c);
    char name[PV_FC_VARY_MAX];
    size_t i = 0;
    while (i < vary.len) {
        while (i < vary.len && (vary.p[i] == ' ' || vary.p[i] == ',' || vary.p[i] == '\t'))
            i++;
        size_t len = 0;
        for (; i < vary.len && vary.p[i] != ',' && vary.p[i] != ' ' && vary.p[i] != '\t'; i++)
            if (len < sizeof(name))
                name[len++] = (char)tolower((unsigned char)vary.p[i]);
        if (len == 0)
            continue;
        MD5_Update(c, name, len);
        MD5_Update(c, ":", 1);
        variant_values(c, r, name, len);
        MD5_Update(c, "\n", 1);
    }
    MD5_Final(out, c);
}

static pv_loop_t *loop_of(pv_hreq_t *hr)
{
    return hr->w->loop;
}

/* ---- the lookup --------------------------------------------------------------- */

static void serve_entry(pv_hreq_t *hr);
static void wait_cb(pv_timer_t *t);
static int settle(pv_hreq_t *hr, pv_pcache_t *c);
static int to_secondary(pv_hreq_t *hr, pv_pcache_t *c, const uint8_t v[16]);

static void wait_proceed(pv_hreq_t *hr)
{
}

static void wait_readable(pv_hreq_t *hr)
{
    if (pv_body_done(hr) && pv_body_client_closed(hr))
        pv_resp_abort(hr);
}

static void wait_abort(pv_hreq_t *hr)
{
    pv_pcache_cleanup(hr);
}

static void wait_cleanup(pv_hreq_t *hr)
{
    pv_pcache_cleanup(hr);
    hr->handler_ctx = NULL;
}

/* The request's handler while it waits for the lock, or for the switch
 * to the file. */
static const pv_handler_t wait_handler = {"proxy_cache", wait_proceed, wait_readable, wait_abort, wait_cleanup};

/* Go to the upstream after all: the proxy takes the request back. */
static void to_upstream(pv_hreq_t *hr)
{
    pv_pcache_t *c = hr->r.pcache;
    c->decided = 1;
    if (hr->handler == &wait_handler) {
        hr->handler = NULL;
        hr->handler_ctx = NULL;
    }
    hr->handling = 0;
    c->use.resume(hr);
}

/* Whether a stale entry may answer while another request or this one's
 * background update renews it: proxy_cache_use_stale updating, or the
 * entry's stale-while-revalidate time not over. Its stale-if-error time
 * is noted for a failure to come. */
int pv_pcache_stale_updating(pv_pcache_t *c)
{
    int64_t now = (int64_t)time(NULL);
    c->stale_error = c->ref.valid_sec + c->ref.error_sec >= now;
    return (c->pc->use_stale & PV_STALE_UPDATING) || c->ref.valid_sec + c->ref.updating_sec >= now;
}

/* The entry answers: the lock's wait or the proxy's state (if any)
 * leaves the request first. */
static void take_over(pv_hreq_t *hr, pv_pcache_t *c)
{
    c->serving = 1;
    c->decided = 1;
    if (hr->handler == &wait_handler) {
        pv_timer_del(loop_of(hr), &c->timer);
        hr->handler = NULL;
        hr->handler_ctx = NULL;
    } else if (hr->handler) {
        hr->handler->cleanup(hr);
        hr->handler = NULL;
    }
    hr->handling = 0;
}

/* A stored error status answers as the upstream's did: by its
 * error_page, the proxy's state gone. */
static void answer_error(pv_hreq_t *hr, pv_pcache_t *c)
{
    take_over(hr, c);
    pv_resp_error(hr, c->ref.error);
}

/* What the lookup found decides the way on. */
static int act(pv_hreq_t *hr, pv_pcache_t *c)
{
    pv_request_t *r = &hr->r;
    switch (c->ref.state) {
    case PV_FC_HIT:
        r->cache_status = PV_CACHE_HIT;
        if (c->ref.error) {
            answer_error(hr, c);
            return 1;
        }
        break;
    case PV_FC_UPDATING:
        if (!pv_pcache_stale_updating(c)) {
            r->cache_status = PV_CACHE_EXPIRED;
            return 0;
        }
        r->cache_status = PV_CACHE_UPDATING;
        break;
    case PV_FC_LOCKED:
        /* another request fills the entry: wait for it (polled, as
         * NGINX's lock wait is) up to proxy_cache_lock_timeout */
        r->cache_status = PV_CACHE_MISS;
        c->wait_start = pv_now_ms();
        hr->handler = &wait_handler;
        hr->handler_ctx = c;
        hr->handling = 1;
        pv_timer_init(&c->timer, wait_cb, hr);
        pv_timer_set(loop_of(hr), &c->timer, WAIT_POLL_MS);
        return 1;
    case PV_FC_EXPIRED:
        if (r->cache_status == PV_CACHE_BYPASS)
            return 0;
        if (pv_pcache_stale_updating(c) && c->ref.fill && c->pc->background_update) {
            /* proxy_cache_background_update: the stale entry answers,
             * then this request updates it (background_start()) */
            r->cache_status = PV_CACHE_STALE;
            c->bg = 1;
            break;
        }
        r->cache_status = PV_CACHE_EXPIRED;
        return 0;
    default:
        if (r->cache_status != PV_CACHE_BYPASS)
            r->cache_status = PV_CACHE_MISS;
        return 0;
    }
    if (r->cache_status == PV_CACHE_BYPASS)
        return 0;
    serve_entry(hr);
    return 1;
}

static void wait_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = t->data;
    pv_pcache_t *c = hr->r.pcache;
    const pv_pcache_conf_t *pc = c->pc;
    if (pv_fc_relook(&c->ref, (int64_t)time(NULL), pc->lock_age)) {
        if (settle(hr, c) == 0)
            to_upstream(hr);
        return;
    }
    if (pv_now_ms() - c->wait_start >= (uint64_t)pc->lock_timeout) {
        /* NGINX: past the timeout the request goes to the upstream, and
         * its response is not stored */
        c->no_store = 1;
        to_upstream(hr);
        return;
    }
    pv_timer_set(loop_of(hr), &c->timer, WAIT_POLL_MS);
}

static void lookup(pv_hreq_t *hr, pv_pcache_t *c, const uint8_t md5[16])
{
    const pv_pcache_conf_t *pc = c->pc;
    pv_fc_lookup(c->zone->impl, md5, c->key, (int64_t)time(NULL), pc->min_uses, pc->lock, pc->lock_age, &c->ref);
}

/* The stored head's fields (not its status line) into the arena. */
static void keep_fields(pv_request_t *r, pv_pcache_t *c, pv_str_t head)
{
    enum { MAX = 64 };
    char *copy = pv_arena_strndup(r->arena, head.p, head.len);
    pv_header_t *f = pv_arena_alloc(r->arena, MAX * sizeof(*f));
    if (!copy || !f)
        return;
    head.p = copy;
    c->reval_nfields = 0;
    size_t pos = 0;
    pv_str_t n, v;
    while (c->reval_nfields < MAX && pv_fc_head_next(head, &pos, &n, &v) == 1)
        if (n.len)
            f[c->reval_nfields++] = (pv_header_t){n, v};
    c->reval_fields = f;
}

/* proxy_cache_revalidate: the expired entry's validators, read from its
 * header (one small read on the loop), and its fields. -1 when the entry
 * under the main key is another variant than the request's (v). */
static int read_validators(pv_request_t *r, pv_pcache_t *c, uint8_t v[16])
{
    char *buf = malloc(PV_FC_HEAD_MAX);
    int fd = buf ? open(c->ref.path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? pread(fd, buf, PV_FC_HEAD_MAX, 0) : -1;
    pv_fc_entry_t e;
    int ok = n > 0 && pv_fc_entry_parse(buf, (size_t)n, &e) == 0 && e.key.len == c->key.len &&
             memcmp(e.key.p, c->key.p, c->key.len) == 0;
    if (ok && e.vary.len && !c->secondary) {
        pv_pcache_variant(r, e.vary, v);
        if (memcmp(v, e.variant, 16) != 0) {
            close(fd);
            free(buf);
            return -1;
        }
    }
    /* NGINX keeps the validators of a 200 alone */
    if (ok && e.status == 200 && (e.etag.len || e.last_modified > 0)) {
        c->revalidating = 1;
        c->reval_status = e.status;
        keep_fields(r, c, e.head);
        if (e.etag.len)
            c->reval_etag = (pv_str_t){pv_arena_strndup(r->arena, e.etag.p, e.etag.len), e.etag.len};
        if (e.last_modified > 0) {
            char *lm = pv_arena_alloc(r->arena, 32);
            if (lm)
                c->reval_lm = (pv_str_t){lm, pv_http_time_format((time_t)e.last_modified, lm)};
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return 0;
}

void pv_pcache_validators(const pv_request_t *r, pv_str_t *etag, pv_str_t *lm)
{
    const pv_pcache_t *c = r->pcache;
    *etag = (pv_str_t){NULL, 0};
    *lm = (pv_str_t){NULL, 0};
    if (c && c->revalidating) {
        *etag = c->reval_etag;
        *lm = c->reval_lm;
    }
}

int pv_pcache_zone(pv_hreq_t *hr, pv_request_t *r, const pv_pcache_use_t *use, const pv_cache_path_t **zone)
{
    char v[256];
    size_t n = pv_cv_eval(use->pc->cache_cv, r, PV_ESCAPE_NONE, v, sizeof(v));
    *zone = NULL;
    if (n == 0 || (n == 3 && memcmp(v, "off", 3) == 0))
        return 0;
    const pv_http_conf_t *h = hr->gen->conf->http;
    for (int i = 0; n < sizeof(v) && h && i < h->ncaches; i++)
        if (strlen(h->caches[i]->name) == n && memcmp(h->caches[i]->name, v, n) == 0 &&
            h->caches[i]->fastcgi == use->fastcgi) {
            *zone = h->caches[i];
            return 0;
        }
    pv_log_r(r, PV_LOG_ERR, "cache \"%.*s\" not found, client: %s", (int)PV_MIN(n, sizeof(v)), v,
             pv_log_client(r));
    return -1;
}

/* The main request's zone for proxy_cache with variables; an unknown name
 * is answered 500, as NGINX's. */
static int zone_of(pv_hreq_t *hr, const pv_pcache_use_t *use, const pv_cache_path_t **zone)
{
    if (pv_pcache_zone(hr, &hr->r, use, zone) == 0)
        return 0;
    if (hr->handler && hr->handler->cleanup) {
        hr->handler->cleanup(hr); /* the proxy's state leaves the request */
        hr->handler = NULL;
    }
    pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
    return -1;
}

/* proxy_cache_purge, as NGINX Plus answers it: 204 when the entry for
 * the key was removed, 404 when there was none; a key ending in "*"
 * removes every entry whose key starts with the rest (204). */
static void purge_answer(pv_hreq_t *hr, pv_pcache_t *c, const uint8_t md5[16])
{
    pv_request_t *r = &hr->r;
    int status;
    if (c->key.len && c->key.p[c->key.len - 1] == '*') {
        status = pv_fc_purge_prefix(c->zone->impl, (pv_str_t){c->key.p, c->key.len - 1}) == 0 ? 204 : 503;
        if (status == 503)
            pv_log_r(r, PV_LOG_ERR, "too many wildcard purges of cache \"%s\" pending, client: %s",
                     c->zone->name, pv_log_client(r));
    } else {
        status = pv_fc_purge(c->zone->impl, md5) ? 204 : 404;
    }
    c->decided = 1;
    c->serving = 1; /* nothing to fill or release */
    if (hr->handler && hr->handler->cleanup) {
        hr->handler->cleanup(hr);
        hr->handler = NULL;
    }
    pv_resp_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

/* NGINX's check of a Range against proxy_cache_max_range_offset: a
 * range from the end, or starting at or past the offset, is not worth
 * fetching and storing the whole response for. */
static int range_cacheable(const pv_request_t *r, const pv_pcache_conf_t *pc)
{
    if (pc->max_range_offset == INT64_MAX)
        return 1;
    const pv_header_t *range = pv_request_header(r, "Range", 5);
    if (!range)
        return 1;
    const pv_str_t *h = &range->value;
    if (pc->max_range_offset == 0)
        return 0;
    if (h->len < 7 || strncasecmp(h->p, "bytes=", 6) != 0)
        return 1;
    size_t i = 6;
    while (i < h->len && h->p[i] == ' ')
        i++;
    if (i < h->len && h->p[i] == '-')
        return 0;
    int64_t off = 0;
    for (; i < h->len && h->p[i] >= '0' && h->p[i] <= '9'; i++) {
        if (off > (INT64_MAX - 9) / 10)
            return 0;
        off = off * 10 + (h->p[i] - '0');
    }
    return off < pc->max_range_offset;
}

int pv_pcache_start(pv_hreq_t *hr, const pv_pcache_use_t *use)
{
    pv_request_t *r = &hr->r;
    const pv_pcache_conf_t *pc = use->pc;
    pv_pcache_t *c = r->pcache;
    if (c && c->decided)
        return 0;
    const pv_cache_path_t *zone = pc->cache;
    if (!zone && pc->cache_cv && zone_of(hr, use, &zone) < 0)
        return 1; /* answered: 500 */
    if (!zone || !zone->impl)
        return 0;
    int purge = pc->npurge && pv_pcache_any(r, pc->purge, pc->npurge);
    if (!purge && !(pc->methods & pv_conf_method_bit(r->method)))
        return 0;
    c = pv_arena_alloc(r->arena, sizeof(*c));
    if (!c)
        return 0;
    /* zeroed but for the two path buffers (8 KiB a request), which are
     * strings: their first byte is enough */
    _Static_assert(offsetof(pv_pcache_t, ref) == 0 && offsetof(pv_fc_ref_t, path) + PATH_MAX == sizeof(pv_fc_ref_t),
                   "ref first, its path last");
    memset(&c->ref, 0, offsetof(pv_fc_ref_t, path));
    c->ref.path[0] = '\0';
    memset(&c->pc, 0, offsetof(pv_pcache_t, temp) - offsetof(pv_pcache_t, pc));
    c->temp[0] = '\0';
    c->fd = -1;
    pv_timer_init(&c->timer, wait_cb, hr);
    c->pc = pc;
    c->use = *use;
    c->zone = zone;
    r->pcache = c;
    r->cache_zone = zone;
    c->key = pv_pcache_key(r, pc);
    if (!c->key.p)
        return 0;
    uint8_t md5[16];
    pv_pcache_md5(c->key.p, c->key.len, NULL, 0, md5);
    if (purge) {
        purge_answer(hr, c, md5);
        return 1;
    }
    /* a request with credentials is not answered from, nor stored in, a
     * cache whose key does not tell the users apart */
    if (pv_request_header(r, "Authorization", 13) && !pc->key_auth) {
        r->cache_status = PV_CACHE_BYPASS;
        c->decided = 1;
        c->no_store = 1;
        return 0;
    }
    if (pv_pcache_any(r, pc->bypass, pc->nbypass)) {
        /* not taken from the cache; the response is still stored, in
         * place of a fresh entry too, as NGINX does */
        r->cache_status = PV_CACHE_BYPASS;
        lookup(hr, c, md5);
        if (!pv_fc_claim(&c->ref, pc->lock_age))
            c->no_store = 1;
        c->decided = 1;
        return 0;
    }
    lookup(hr, c, md5);
    return settle(hr, c);
}

/* What the lookup found decides the way on; a request that goes to the
 * upstream is set up for it: 0 then, 1 when the cache took it. */
static int settle(pv_hreq_t *hr, pv_pcache_t *c)
{
    pv_request_t *r = &hr->r;
    const pv_pcache_conf_t *pc = c->pc;
    if (act(hr, c))
        return 1;
    c->decided = 1;
    if (c->ref.scarce || !range_cacheable(r, pc)) {
        c->pass_client = 1;
        c->no_store = 1;
    }
    if ((r->flags & PV_REQ_F_HEAD) && pc->convert_head && c->ref.fill) {
        /* the whole response is fetched and stored; the client gets its head */
        r->upstream_method = (pv_str_t)PV_STR("GET");
        c->head_as_get = 1;
    }
    uint8_t v[16];
    if (c->ref.state == PV_FC_EXPIRED && c->ref.fill && pc->revalidate && read_validators(r, c, v) < 0)
        return to_secondary(hr, c, v);
    return 0;
}

/* The entry under the main key is another variant: the request's own
 * (v) has a key of its own, NGINX's secondary key, looked up instead. */
static int to_secondary(pv_hreq_t *hr, pv_pcache_t *c, const uint8_t v[16])
{
    pv_fc_filled(&c->ref, 0, 0, 0);
    memcpy(c->variant, v, 16);
    c->secondary = 1;
    c->serving = 0;
    c->decided = 0;
    c->bg = 0;
    uint8_t md5[16];
    pv_pcache_md5(c->key.p, c->key.len, v, 16, md5);
    lookup(hr, c, md5);
    return settle(hr, c);
}

/* The response's variant is not the one the request's secondary key was
 * made of (its Vary changed): it is stored under the main key, as
 * NGINX's. -1 when another request stores that one now. */
int pv_pcache_main_key(pv_pcache_t *c)
{
    pv_fc_filled(&c->ref, 0, 0, 0);
    uint8_t md5[16];
    pv_pcache_md5(c->key.p, c->key.len, NULL, 0, md5);
    pv_fc_lookup(c->zone->impl, md5, c->key, (int64_t)time(NULL), 0, 0, c->pc->lock_age, &c->ref);
    c->secondary = 0;
    memset(c->variant, 0, 16);
    return c->ref.fill || pv_fc_claim(&c->ref, c->pc->lock_age) ? 0 : -1;
}

/* ---- serving an entry --------------------------------------------------------- */

/* Fields of a stored head into the arena, for the answer; a stored
 * Accept-Ranges (of any value) sets *ranges and is left out, since the
 * range filter writes its own, as NGINX's hit. nf or -1. */
static int stored_head(pv_request_t *r, const pv_fc_entry_t *e, pv_resp_head_t *h, pv_header_t *fld, int max,
                       int *ranges)
{
    char *copy = pv_arena_strndup(r->arena, e->head.p, e->head.len);
    if (!copy)
        return -1;
    pv_str_t head = {copy, e->head.len}, n, v;
    size_t pos = 0;
    int nf = 0;
    while (pv_fc_head_walk(head, &pos, &n, &v) == 1) { /* checked as the entry was read */
        if (n.len == 0) {
            h->status = e->status;
            if (v.len > 4)
                h->reason = (pv_str_t){v.p + 4, v.len - 4};
        } else if (n.len == 12 && strncasecmp(n.p, "Content-Type", 12) == 0) {
            h->content_type = v;
        } else if (n.len == 13 && strncasecmp(n.p, "Accept-Ranges", 13) == 0) {
            *ranges = 1;
        } else if (n.len == 15 && strncasecmp(n.p, "X-Accel-Charset", 15) == 0) {
            int ign = r->pcache->use.ignore; /* as the upstream's own: the charset to recode into */
            if (ign == PV_UNSET || !(ign & PV_IGN_X_ACCEL_CHARSET))
                r->accel_charset = v;
        } else if (nf < max) {
            fld[nf++] = (pv_header_t){n, v};
        }
    }
    return nf;
}

static void entry_opened(pv_hreq_t *hr, pv_file_t *f);
static void serve_opened(pv_hreq_t *hr, pv_file_t *f, const char *bytes);

/* The entry could not be used: go to the upstream as a miss, not stored. */
static void entry_unusable(pv_hreq_t *hr, pv_pcache_t *c, int forget)
{
    if (forget)
        pv_fc_forget(&c->ref);
    pv_fc_filled(&c->ref, 0, 0, 0);
    pv_file_release(hr);
    hr->r.cache_status = PV_CACHE_MISS;
    c->no_store = 1;
    c->serving = 0;
    to_upstream(hr);
}

static void open_entry(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    pv_pcache_t *c = r->pcache;
    pv_file_t *f = pv_file_new(hr, &r->loc->conf.st);
    if (!f || !(f->buf = pv_buf_get())) {
        if (f)
            pv_file_release(hr);
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return;
    }
    f->symlinks = PV_SYMLINKS_ON;
    f->sym_from = 0;
    memcpy(f->path, c->ref.path, strlen(c->ref.path) + 1); /* both PATH_MAX */
    const char *kept;
    if (pv_fc_keep_lookup(&c->ref, &f->fd, &f->st, &kept, &f->pre_n)) {
        /* this worker has the file open: no open, no trip to the pool;
         * its pages were read lately, so the rest is read in place */
        f->in_place = 1;
        serve_opened(hr, f, kept);
        return;
    }
    if (pv_file_run(f, PV_FOP_OPEN, entry_opened))
        entry_opened(hr, f);
}

/* Serve the entry's file: the proxy's state (if any) leaves first. */
static void serve_entry(pv_hreq_t *hr)
{
    pv_pcache_t *c = hr->r.pcache;
    take_over(hr, c);
    open_entry(hr);
}

/* proxy_cache_background_update: the stale answer is out; the same
 * request now asks the upstream with nothing sent to the client (hr->bg:
 * the response calls feed the store's tee alone), and the update's end
 * ends the request. */
static void background_start(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    pv_pcache_t *c = r->pcache;
    c->serving = 0; /* the update holds the entry: cleanup releases it */
    c->decided = 1;
    if ((r->flags & PV_REQ_F_HEAD) && c->pc->convert_head) {
        r->upstream_method = (pv_str_t)PV_STR("GET");
        c->head_as_get = 1;
    }
    uint8_t v[16];
    if (c->pc->revalidate)
        read_validators(r, c, v); /* the entry just served: the request's variant */
    hr->handler = NULL;
    hr->handler_ctx = NULL;
    hr->handling = 0;
    c->use.resume(hr);
}

static void entry_opened(pv_hreq_t *hr, pv_file_t *f)
{
    pv_request_t *r = &hr->r;
    pv_pcache_t *c = r->pcache;
    if (f->fd < 0) {
        entry_unusable(hr, c, 1);
        return;
    }
    if (!f->pre_n && f->st.st_size > 0) {
        /* opened in place (aio off): read the header here */
        ssize_t n = pread(f->fd, f->buf->data, PV_MIN((size_t)f->buf->size, (size_t)f->st.st_size), 0);
        f->pre_n = n > 0 ? (int)n : 0;
    }
    serve_opened(hr, f, f->buf->data);
}

/* The entry's first f->pre_n bytes are bytes: f->buf's, or the ones this
 * worker keeps (in_place), which stay valid until the next keep call. */
static void serve_opened(pv_hreq_t *hr, pv_file_t *f, const char *bytes)
{
    pv_request_t *r = &hr->r;
    pv_pcache_t *c = r->pcache;
    pv_fc_entry_t e;
    int (*parse)(const char *, size_t, pv_fc_entry_t *) = f->in_place ? pv_fc_entry_parse_kept : pv_fc_entry_parse;
    if (parse(bytes, (size_t)f->pre_n, &e) != 0 || e.key.len != c->key.len ||
        memcmp(e.key.p, c->key.p, c->key.len) != 0 || f->st.st_size != (off_t)e.body_start + e.body_len) {
        pv_log(PV_LOG_CRIT, "cache file \"%s\" is invalid, client: %s", f->path, r->peer_text);
        entry_unusable(hr, c, 1);
        return;
    }
    if (e.vary.len) {
        uint8_t v[16];
        pv_pcache_variant(r, e.vary, v);
        if (memcmp(v, e.variant, 16) != 0) {
            /* another variant is stored here: this request's has a key of
             * its own (NGINX's secondary key) */
            if (c->secondary) {
                entry_unusable(hr, c, 0);
                return;
            }
            pv_file_release(hr);
            if (to_secondary(hr, c, v) == 0)
                to_upstream(hr);
            return;
        }
    }
    if (!f->in_place && e.body_start <= PV_FC_KEEP_BYTES)
        pv_fc_keep(&c->ref, f->fd, &f->st, bytes, f->pre_n);
    if (c->bg && !hr->bg) {
        /* the update runs once this answer is out */
        hr->bg_next = background_start;
    } else {
        /* the stale entry served while this request's update failed: the
         * update is given up */
        pv_fc_filled(&c->ref, 0, 0, 0);
    }
    pv_resp_head_t h = {.status = e.status, .content_length = e.body_len};
    int max = 64;
    pv_header_t *fld = pv_arena_alloc(r->arena, (size_t)(max + 2) * sizeof(*fld));
    /* NGINX's hit: ranges with *_force_ranges or a stored Accept-Ranges */
    int ranges = c->use.fastcgi ? r->loc->conf.fastcgi.force_ranges : r->loc->conf.proxy_force_ranges;
    int nf = fld ? stored_head(r, &e, &h, fld, max, &ranges) : -1;
    if (nf < 0) {
        entry_unusable(hr, c, 0);
        return;
    }
    pv_str_t etag = {pv_arena_strndup(r->arena, e.etag.p, e.etag.len), e.etag.len};
    /* the body follows the header: the bytes read ahead start there */
    f->base = e.body_start;
    f->size = e.body_len;
    int keep = PV_MIN(f->pre_n - (int)e.body_start, (int)f->buf->size);
    if (keep > 0)
        memmove(f->buf->data, bytes + e.body_start, (size_t)keep);
    f->pre_n = keep > 0 ? keep : 0;
    pv_static_answer(hr, f, &h, fld, nf, etag, e.last_modified > 0 ? (time_t)e.last_modified : -1, ranges,
                     1);
}

/* A stale entry answers instead of the upstream: the switch to the file
 * runs from a timer, once the proxy's call chain has returned. */
static void stale_cb(pv_timer_t *t)
{
    serve_entry(t->data);
}

/* The expired entry answers in place of the upstream's error, when
 * allowed. */
static int serve_stale(pv_proxy_t *px, int allowed)
{
    pv_hreq_t *hr = px->hr;
    pv_pcache_t *c = hr->r.pcache;
    if (!c || !allowed || !c->ref.exists || hr->r.cache_status != PV_CACHE_EXPIRED || px->sub_done ||
        c->serving || hr->bg)
        return 0;
    pv_pcache_serve_entry_later(px, PV_CACHE_STALE);
    return 1;
}

/* For a status: proxy_cache_use_stale alone (an entry's stale-if-error
 * does not cover the upstream's own error answers, as NGINX's since
 * 1.19.3). */
int pv_pcache_serve_stale(pv_proxy_t *px, int cond)
{
    const pv_pcache_t *c = px->hr->r.pcache;
    return serve_stale(px, c && (c->pc->use_stale & cond));
}

/* A background update ended without a body to store (revalidated): the
 * request ends once the proxy's call chain has returned. */
static void background_end_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = t->data;
    if (hr->handler) {
        hr->handler->cleanup(hr); /* the proxy's state leaves the request */
        hr->handler = NULL;
    }
    hr->handling = 0;
    pv_resp_finish(hr);
}

void pv_pcache_serve_entry_later(pv_proxy_t *px, int status)
{
    pv_hreq_t *hr = px->hr;
    pv_pcache_t *c = hr->r.pcache;
    if (hr->tee) {
        const pv_tee_t *t = hr->tee;
        hr->tee = NULL;
        t->done(hr, 0);
    }
    if (hr->bg) {
        hr->handling = 1;
        pv_timer_init(&c->timer, background_end_cb, hr);
        pv_timer_set(loop_of(hr), &c->timer, 0);
        return;
    }
    hr->r.cache_status = (uint8_t)status;
    c->serving = 1;
    hr->handling = 1;
    pv_timer_init(&c->timer, stale_cb, hr);
    pv_timer_set(loop_of(hr), &c->timer, 0);
}

int pv_pcache_failed(pv_proxy_t *px, int cond)
{
    const pv_pcache_t *c = px->hr->r.pcache;
    return serve_stale(px, c && ((c->pc->use_stale & cond) || c->stale_error));
}

void pv_pcache_cleanup(pv_hreq_t *hr)
{
    pv_pcache_t *c = hr->r.pcache;
    if (!c)
        return;
    if (pv_timer_armed(&c->timer))
        pv_timer_del(loop_of(hr), &c->timer);
    if (hr->tee) {
        const pv_tee_t *t = hr->tee;
        hr->tee = NULL;
        t->done(hr, 0);
    }
    if (!c->serving || c->bg)
        pv_fc_filled(&c->ref, 0, 0, 0);
}
