/* The response cache on the proxy's side (NGINX's proxy_cache, and
 * fastcgi_cache through fcgi_cache.c with pv_pcache_use_t): the
 * lookup before an upstream is asked (bypass, methods, min_uses, the lock
 * and its wait), a hit or a stale entry served through the static file
 * path (http/static.h: validators, ranges, the thread pool), and the
 * decision to store a response (Cache-Control, Expires, X-Accel-Expires,
 * Set-Cookie, Vary, proxy_cache_valid, proxy_no_cache) with a tee on the
 * response calls that writes it to a temp file renamed into place when
 * it is complete. The keys zone and the files are http/fcache.h's. */
#ifndef PV_PROXY_PCACHE_H
#define PV_PROXY_PCACHE_H

#include <limits.h>
#include <stdint.h>

#include "../core/loop.h"
#include "../http/fcache.h"
#include "../http/response.h"
#include "proxy.h"

/* What the handler in front of the cache (proxy_pass, fastcgi_pass)
 * gives it for a request: its *_cache_* settings and the rest the cache
 * reads of its module's. */
typedef struct pv_pcache_use_s {
    const pv_pcache_conf_t *pc;       /* proxy_cache_* or fastcgi_cache_* */
    int ignore;                       /* *_ignore_headers: PV_IGN_* bits */
    const pv_temp_path_t *temp;       /* *_temp_path entries are written under; NULL: the cache's directory */
    uint8_t fastcgi;                  /* fastcgi_cache: fastcgi_cache_path's zones, and a HEAD's
                                         answer carries the body (the responder writes one): stored */
    void (*resume)(struct pv_hreq_s *hr); /* the handler takes the request back to ask its upstream */
} pv_pcache_use_t;

typedef struct pv_pcache_s {
    pv_fc_ref_t ref;            /* the entry */
    const pv_pcache_conf_t *pc;
    pv_pcache_use_t use;        /* the handler's (use.pc is pc) */
    const pv_cache_path_t *zone; /* proxy_cache's zone for this request */
    pv_str_t key;               /* the key text (request arena) */
    uint8_t variant[16];        /* the request's Vary variant, once a stored entry named a Vary */
    uint8_t secondary;          /* ref is the variant's own entry */
    uint8_t decided;            /* the lookup is done: proxy_start() goes on */
    uint8_t no_store;           /* never store this response (bypass without fill, Authorization) */
    uint8_t pass_client;        /* not cacheable (min_uses not reached, a range past
                                   proxy_cache_max_range_offset): the client's Range and
                                   preconditions go upstream, as without a cache */
    uint8_t serving;            /* the answer comes from the file (hit, stale) */
    uint8_t bg;                 /* proxy_cache_background_update: the stale answer, then the update */
    pv_str_t vary;              /* the response's Vary value, stored with it */
    uint8_t head_as_get;        /* proxy_cache_convert_head: a HEAD asked for as GET */
    uint8_t revalidating;       /* proxy_cache_revalidate: the upstream is asked with the entry's validators */
    int reval_status;           /* the expired entry's status */
    pv_str_t reval_etag;        /* its ETag (If-None-Match) */
    pv_str_t reval_lm;          /* its Last-Modified (If-Modified-Since) */
    pv_header_t *reval_fields;  /* its stored fields (its time when the 304 gives none) */
    int reval_nfields;
    uint8_t stale_error;        /* the entry looked up may answer for an error (stale-if-error) */
    pv_timer_t timer;           /* the lock wait's poll, or the deferred switch to the file */
    uint64_t wait_start;        /* ms the wait began */
    /* storing */
    int fd;                     /* temp file, -1 none */
    int64_t written;            /* body bytes written */
    int64_t expect;             /* Content-Length of the response, -1 unknown */
    int64_t valid_sec;          /* fresh until */
    uint8_t head_cacheable;     /* the response may be stored as far as its head tells (NGINX's
                                   u->cacheable once the head is parsed: before its status,
                                   proxy_cache_valid and proxy_no_cache are asked) */
    uint32_t updating_sec;      /* then stale-while-revalidate for so long */
    uint32_t error_sec;         /* and stale-if-error */
    pv_request_t *req;          /* an auth subrequest's request (pcache_sub.c); NULL: hr's own */
    pv_sub_done_cb sub_done;    /* and its caller, told once the entry is let go */
    char temp[PATH_MAX];
} pv_pcache_t;

/* Before the handler asks an upstream for hr (its location has
 * proxy_cache or fastcgi_cache): 0 to go on now; 1 when the cache took
 * the request (a hit served, or waiting for the lock), calling
 * use->resume later when it must go upstream after all. */
int pv_pcache_start(struct pv_hreq_s *hr, const pv_pcache_use_t *use);
/* The upstream's final head is parsed. First: whether the cached entry
 * answers in its place, the stale one for a status proxy_cache_use_stale
 * names or the revalidated one for a 304: 1 then (the proxy drops the
 * upstream and stops), else 0. This comes before proxy_intercept_errors,
 * as NGINX's upstream tests it. */
int pv_pcache_entry_answers(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields);
/* Then, for a response that goes on to the client: decide whether to
 * store it (a tee on the response calls). */
void pv_pcache_response(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields);
/* The response goes to the client unbuffered (proxy_buffering off,
 * X-Accel-Buffering: no): it is not stored, as NGINX frees the cache's
 * part of a request then. */
void pv_pcache_unbuffered(struct pv_hreq_s *hr);
/* proxy_intercept_errors answers status by its error_page: the status is
 * stored for the response's time (its fields, else proxy_cache_valid),
 * answered so until then, as NGINX's. */
void pv_pcache_intercepted(pv_proxy_t *px, int status, const pv_header_t *fields, int nfields);
/* The exchange failed with a PV_NEXT_F_* condition: 1 when the stale
 * entry is served instead (proxy_cache_use_stale). */
int pv_pcache_failed(pv_proxy_t *px, int cond);
/* The failed exchange is answered with status: a 502 or 504 that
 * proxy_cache_valid gives a time is stored for it, as NGINX's. */
void pv_pcache_failed_status(pv_proxy_t *px, int status);
/* The validators the upstream request carries while an expired entry
 * is revalidated (rewrite.c): If-Modified-Since and If-None-Match. */
void pv_pcache_validators(const pv_request_t *r, pv_str_t *etag, pv_str_t *lm);
/* The request is freed (or the proxy leaves it): the tee abandoned, the
 * entry's fill released, the timer stopped. */
void pv_pcache_cleanup(struct pv_hreq_s *hr);

/* Answer with the entry's file (from a timer, once the proxy's call
 * chain has returned), $upstream_cache_status set to status. */
void pv_pcache_serve_entry_later(pv_proxy_t *px, int status);

/* An auth_request subrequest sr to a location with proxy_cache (as
 * NGINX's, an ordinary subrequest that wants the head alone;
 * pcache_sub.c): 1 when the cache answered, done called with the stored
 * status and sr->upstream_headers set to the stored fields, the upstream
 * not asked; 0 to ask it. With sr->pcache set then, px->sub_done is to
 * be pv_pcache_sub_done, which calls done. */
int pv_pcache_sub_start(struct pv_hreq_s *hr, pv_request_t *sr, const pv_pcache_use_t *use, pv_sub_done_cb done);
/* px->sub_done for a cached location: the entry is stored when the
 * response was read whole (px->resp_done), else let go; then the caller. */
void pv_pcache_sub_done(struct pv_hreq_s *hr, pv_request_t *sr, int status);
/* The subrequest's head is parsed (px->rp): store its response? */
void pv_pcache_sub_head(pv_proxy_t *px);
/* The request is freed with a subrequest's entry held: it is let go. */
void pv_pcache_sub_cleanup(struct pv_hreq_s *hr, pv_request_t *sr);

/* For pcache*.c: the MD5 of a then b (an entry's name: the key, and the
 * key with the variant for NGINX's secondary key); whether any of the
 * values is neither empty nor "0" (proxy_cache_bypass, proxy_no_cache);
 * the request's variant for the field names a stored Vary lists. */
void pv_pcache_md5(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[16]);
/* The request's key (its arena; p NULL when memory ran out): without
 * proxy_cache_key, NGINX's own, the proxy_pass scheme and host and the URI
 * sent upstream (for a subrequest its own URI, not the client's), else
 * (and for a proxy_pass with variables) the key as written. */
pv_str_t pv_pcache_key(pv_request_t *r, const pv_pcache_conf_t *pc);
/* proxy_cache with variables, evaluated for r (hr's request or one of its
 * subrequests): 0 with *zone (NULL for an empty value or "off"), -1 for a
 * name no proxy_cache_path has (logged). */
/* Whether an entry another request renews may answer meanwhile
 * (proxy_cache_use_stale updating, or its stale-while-revalidate); also
 * notes whether its stale-if-error still holds. */
int pv_pcache_stale_updating(pv_pcache_t *c);
int pv_pcache_zone(struct pv_hreq_s *hr, pv_request_t *r, const pv_pcache_use_t *use, const pv_cache_path_t **zone);
int pv_pcache_any(pv_request_t *r, const pv_cv_t *cvs, int n);
void pv_pcache_variant(const pv_request_t *r, pv_str_t vary, uint8_t out[16]);

/* proxy.c: the cache gives the request back to the proxy. */
void pv_proxy_resume(struct pv_hreq_s *hr);

#endif
