/* How a failed exchange is told: the client's answer (the failure
 * table's status, or 503 with Retry-After while health checks hold every
 * server out) and the error log line, worded as NGINX's. */
#include "proxy.h"

#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/tls.h"
#include "../http/server.h"
#include "../http/stats.h"
#include "../upstream/discovery.h"
#include "../upstream/failure.h"
#include "../upstream/health.h"
#include "../upstream/upstream.h"
#include "../http/accesslog.h"
#include "pcache.h"

/* The one place a failed exchange becomes the client's answer: the
 * status comes from the failure table (502, 504; 400 and 413 for a bad
 * client body). */
void pv_proxy_answer_failure(pv_proxy_t *px, int f)
{
    pv_hreq_t *hr = px->hr;
    const pv_upfail_info_t *fi = pv_upfail_info(f);
    /* proxy_cache_use_stale: a stale entry answers instead */
    if (!px->sub_done && hr->r.pcache && !(fi->flags & PV_UPF_F_CLIENT) &&
        pv_pcache_failed(px, fi->next ? fi->next : PV_NEXT_F_ERROR))
        return;
    int status = pv_upfail_info(f)->status, wait = f == PV_UPF_NO_LIVE ? pv_health_retry_after(px->pool) : 0;
    hr->handling = 0;
    if (wait && !px->sub_done) {
        /* the health checks hold every server out: 503, come back later */
        pv_log_r(&hr->r, PV_LOG_ERR, "no healthy servers in upstream \"%s\" (health checks), client: %s",
               px->pool->cf->name, pv_log_client(&hr->r));
        const char *x = pv_arena_printf(hr->r.arena, "%.*sRetry-After: %d\r\n", (int)hr->acc.xhdr.len,
                                        hr->acc.xhdr.p ? hr->acc.xhdr.p : "", wait);
        hr->acc.xhdr = (pv_str_t){x, strlen(x)};
        status = 503;
        if (px->pool->ust)
            pv_ctr_add(&px->pool->ust->gated, 1);
    }
    if (!px->resp_head_done && px->r->pcache)
        pv_pcache_failed_status(px, status); /* proxy_cache_valid 502, 504 */
    if (px->sub_done) {
        px->sub_done(hr, px->r, px->resp_head_done ? 500 : status);
        return;
    }
    pv_resp_error(hr, status);
}

/* One error log line per failure, worded as NGINX's. */
void pv_proxy_log_failure(pv_proxy_t *px, int f, int err, const char *detail)
{
    const pv_upfail_info_t *fi = pv_upfail_info(f);
    const char *client = pv_log_client(&px->hr->r);
    char why[160] = "", text[64];
    if (!fi->text[0])
        return;
    if (err)
        snprintf(why, sizeof(why), " (%d: %s)", err, strerror(err));
    else if (detail)
        snprintf(why, sizeof(why), " (%s)", detail);
    if (f == PV_UPF_NO_LIVE) {
        pv_log_r(&px->hr->r, PV_LOG_ERR, "no live upstreams while connecting to upstream \"%s\", client: %s", px->pool->cf->name,
               client);
        return;
    }
    if (px->u && px->u->x.why) {
        /* the transport's own account (a TLS handshake), as NGINX words it */
        pv_log_r(&px->hr->r, PV_LOG_ERR, "%s, upstream: %s, client: %s", px->u->x.why, pv_upstream_server_text(px->pool, px->server, text, sizeof(text)),
               client);
        px->u->x.why = NULL;
        return;
    }
    const char *phase = !px->u || !px->u->connected ? "connecting to upstream"
                        : pv_tls_handshaking(&px->u->x) ? "SSL handshaking to upstream"
                        : !px->req_done && !px->resp_started ? "sending request to upstream"
                        : !px->resp_head_done ? "reading response header from upstream"
                                              : "reading upstream";
    pv_log_r(&px->hr->r, PV_LOG_ERR, "%s%s while %s, upstream: %s, client: %s", fi->text, why, phase,
           pv_upstream_server_text(px->pool, px->server, text, sizeof(text)), client);
}
