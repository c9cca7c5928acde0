/* The proxy exchange's side of server selection: its start (hash key,
 * client address, tried set, proxy_next_upstream_tries), the release of
 * the server in use with a verdict, proxy_next_upstream_timeout, and the
 * TLS name a new connection to the chosen server sends. */
#include "proxy.h"

#include <string.h>
#include <strings.h>

#include "../core/counters.h"
#include "../core/log.h"
#include "../core/time.h"
#include "../core/tls.h"
#include "../http/accesslog.h"
#include "../http/server.h"
#include "../http/stats.h"
#include "../http/timing.h"
#include "../http/uvars.h"
#include "../http/vars.h"
#include "../proc/worker.h"
#include "../upstream/failure.h"
#include "../upstream/health.h"
#include "../upstream/queue.h"
#include "../upstream/upstream.h"

/* Start choosing servers for this exchange: the hash key, the client
 * address, the tried set (from the request arena past 64 servers). */
int pv_proxy_pick_init(pv_proxy_t *px)
{
    const pv_upstream_conf_t *cf = px->pool->cf;
    uint64_t *words = NULL;
    if (cf->nservers > 64 &&
        !(words = pv_arena_calloc(px->hr->r.arena, PV_UPSTREAM_SET_WORDS(cf->nservers) * sizeof(uint64_t))))
        return -1;
    pv_str_t key = {NULL, 0};
    if (cf->hash_key)
        key = pv_cv_eval_arena(cf->hash_key, px->r);
    pv_upstream_pick_init(px->pool, &px->pick, words, key.p, key.len, px->hr->r.peer,
                          px->loc->proxy_pass->grpc ? px->loc->conf.grpc.next_upstream_tries
                                                    : px->loc->conf.proxy_next_upstream_tries);
    px->picking = 1;
    return 0;
}

/* Release the server in use to the balancer: PV_BAL_FAILED counts a
 * failure against it, PV_BAL_OK is a success, PV_BAL_DROP neither (the
 * try is given back). Nothing when no server is held. */
void pv_proxy_release_server(pv_proxy_t *px, int verdict)
{
    pv_utry_mark(px->r, PV_UTRY_RESPONSE); /* the try is over */
    pv_stat_peer_t *st = px->pool->st && px->pick.held ? &px->pool->st[px->server] : NULL;
    if (st) {
        int cls = px->resp_started ? px->rp.status / 100 : 0;
        pv_ctr_add(&st->status[cls >= 1 && cls <= 5 ? cls : 0], 1);
        if (verdict == PV_BAL_OK && px->resp_done)
            pv_hist_add(&st->resp, (pv_now_ns() - px->try_ns) / 1000);
    }
    pv_upstream_free(px->pool, &px->pick, verdict, px->resp_started ? px->rp.status : 0, pv_loop_now(px->hr->w->loop));
}

void pv_proxy_stat_try(pv_proxy_t *px)
{
    px->try_ns = pv_now_ns();
    if (px->tries++ && px->pool->ust)
        pv_ctr_add(&px->pool->ust->retries, 1);
    if (px->pool->st)
        pv_ctr_add(&px->pool->st[px->server].requests, 1);
}

void pv_proxy_stat_connect(pv_proxy_t *px)
{
    pv_utry_mark(px->r, PV_UTRY_CONNECT); /* the try's record, then the server's histogram */
    if (px->pool->st)
        pv_hist_add(&px->pool->st[px->server].connect, (pv_now_ns() - px->try_ns) / 1000);
}

int pv_proxy_connect_done(pv_proxy_t *px, unsigned events, int *err)
{
    pv_upconn_t *u = px->u;
    if (u->connected)
        return 1;
    if (!(events & (PV_EV_WRITE | PV_EV_HUP)))
        return 0;
    if ((*err = pv_net_sock_error(u->x.io.fd)))
        return -1;
    u->connected = 1;
    /* the connect timeout is over; writes and reads arm their own */
    pv_timer_del(px->hr->w->loop, &u->timer);
    pv_proxy_stat_connect(px);
    return 1;
}

void pv_proxy_stat_header(pv_proxy_t *px)
{
    if (px->pool->st && px->pick.held)
        pv_hist_add(&px->pool->st[px->server].header, (pv_now_ns() - px->try_ns) / 1000);
}

void pv_proxy_stat_fail(pv_proxy_t *px, int f)
{
    if (!px->pool || !px->pool->ust)
        return;
    if (f == PV_UPF_NO_LIVE)
        pv_ctr_add(&px->pool->ust->no_live, 1);
    else if (px->pick.held)
        pv_ctr_add(&px->pool->st[px->server].fails[f], 1);
}

/* Whether proxy_next_upstream_timeout has passed since the exchange began. */
int pv_proxy_next_timed_out(pv_proxy_t *px)
{
    int64_t t = px->loc->proxy_pass->grpc ? px->loc->conf.grpc.next_upstream_timeout
                                          : px->loc->conf.proxy_next_upstream_timeout;
    return t > 0 && (int64_t)((pv_now_ns() - px->start_ns) / 1000000) >= t;
}

/* proxy_ssl_name with variables, for this request: a port it may carry
 * ($http_host, $proxy_host) is left out, as NGINX leaves it out. */
const char *pv_proxy_tls_name(pv_proxy_t *px)
{
    char buf[256];
    size_t n = pv_cv_eval(px->loc->proxy_pass->tls->name_cv, px->r, PV_ESCAPE_NONE, buf, sizeof(buf) - 1);
    if (n > sizeof(buf) - 1)
        n = 0; /* too long for a host name: none is sent */
    const char *from = buf, *e = buf + n;
    if (n && buf[0] == '[') {
        const char *b = memchr(buf, ']', n);
        from = b ? b : e;
    }
    const char *colon = memchr(from, ':', (size_t)(e - from));
    if (colon)
        n = (size_t)(colon - buf);
    char *name = pv_arena_alloc(px->r->arena, n + 1);
    if (!name)
        return "";
    memcpy(name, buf, n);
    name[n] = '\0';
    return name;
}

/* Add item to a ", "-separated list in dst (cut at cap), as NGINX's
 * $upstream_addr and $upstream_status. */
void pv_proxy_append_list(char *dst, size_t cap, const char *item)
{
    size_t l = strlen(dst), n = strlen(item);
    if (l && dst[l - 1] != ' ' && l + 2 < cap) { /* not after an internal redirect's " : " */
        memcpy(dst + l, ", ", 2);
        l += 2;
    }
    n = PV_MIN(n, cap - 1 - l);
    memcpy(dst + l, item, n);
    dst[l + n] = '\0';
}

void pv_proxy_append_status(pv_request_t *r, int status)
{
    char st[24];
    st[pv_u64_digits(st, (uint64_t)status)] = '\0';
    pv_proxy_append_list(r->upstream_status, sizeof(r->upstream_status), st);
}

/* No server came free within the queue's timeout: 502, as NGINX Plus. */
static void queue_expired(pv_upwait_t *w)
{
    pv_proxy_t *px = (pv_proxy_t *)((char *)w - offsetof(pv_proxy_t, qwait));
    pv_log_r(&px->hr->r, PV_LOG_ERR, "queue timed out in upstream \"%s\", client: %s", px->pool->cf->name,
             pv_log_client(&px->hr->r));
    pv_proxy_answer_failure(px, PV_UPF_NO_LIVE);
}

/* A server of the upstream may have come free: pick again. */
static void queue_retry(pv_upwait_t *w)
{
    pv_proxy_t *px = (pv_proxy_t *)((char *)w - offsetof(pv_proxy_t, qwait));
    px->picking = 0; /* a fresh selection, as for a request that just came */
    px->qagain(px);
}

int pv_proxy_queue_wait(pv_proxy_t *px, void (*again)(pv_proxy_t *px))
{
    pv_upool_t *pool = px->pool;
    if (px->qwait.queued)
        return 1;
    if (!pool->cf->queue || px->pick.picks > 0 || pv_health_retry_after(pool))
        return 0;
    px->qagain = again;
    px->qwait.retry = queue_retry;
    px->qwait.expired = queue_expired;
    if (pv_upqueue_join(pool, &px->qwait) < 0) {
        pv_log_r(&px->hr->r, PV_LOG_ERR, "queue is full in upstream \"%s\", client: %s", pool->cf->name,
                 pv_log_client(&px->hr->r));
        return 0;
    }
    return 1;
}

/* A file name of proxy_ssl_certificate / _key for this request: cv's
 * value (under the prefix when relative), else path. */
static const char *cert_file(pv_proxy_t *px, const pv_cv_t *cv, const char *path, const char *prefix)
{
    if (!cv)
        return path;
    char buf[4096];
    size_t n = pv_cv_eval(cv, px->r, PV_ESCAPE_NONE, buf, sizeof(buf) - 1);
    if (n > sizeof(buf) - 1)
        n = 0; /* too long a name: none, as an empty value */
    buf[n] = 0;
    if (n == 0)
        return "";
    return buf[0] == '/' ? pv_arena_strdup(px->r->arena, buf) : pv_arena_printf(px->r->arena, "%s/%s", prefix, buf);
}

const pv_tls_cert_files_t *pv_proxy_tls_certs(pv_proxy_t *px)
{
    const pv_upstream_tls_t *t = px->loc->proxy_pass->tls;
    if (!t || (!t->cert_cv && !t->key_cv))
        return NULL;
    pv_tls_cert_files_t *c = pv_arena_calloc(px->r->arena, sizeof(*c));
    if (!c)
        return NULL;
    c->cert = cert_file(px, t->cert_cv, t->cert_path, t->prefix);
    c->key = cert_file(px, t->key_cv, t->key_path, t->prefix);
    if (!c->cert || !c->key || !c->key[0])
        c->cert = ""; /* no certificate is sent */
    c->passwords = t->passwords;
    c->passwords_len = t->passwords_len;
    return c;
}
