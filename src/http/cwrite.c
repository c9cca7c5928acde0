/* Writing a client's HTTP/1 response: what is queued goes to the socket,
 * no more than limit_rate allows, with send_timeout armed while the
 * socket is full; a client that cannot be written to any more while its
 * response is being stored leaves the rest read on for the store. */
#include "server.h"

#include "../core/log.h"
#include "accesslog.h"
#include "response.h"

/* limit_rate: a write of at most what the rate allows, then its wait. */
static int rate_flush(pv_hreq_t *hr)
{
    size_t max = pv_resp_rate_allow(hr);
    if (!max)
        return PV_AGAIN;
    uint64_t before = hr->r.bytes_sent;
    int rc = pv_outq_flush_max(&hr->cq, &hr->c->x, &hr->r.bytes_sent, max);
    return pv_resp_rate_wrote(hr, before, max, rc);
}

/* A write to the client failed while its response is being stored (a
 * cache entry filling, proxy_store): as NGINX's event pipe does for a
 * cacheable or stored response, the upstream is read on to its end for
 * the store, nothing more going to the client, whose connection closes
 * when the request ends. 1 when so. */
static int client_gone(pv_hreq_t *hr)
{
    pv_hconn_t *c = hr->c;
    if (!(c->flags & PV_HC_F_GONE)) {
        if (!hr->handling || (!hr->tee && !hr->read_on) || hr->sub)
            return 0;
        pv_log_r(&hr->r, PV_LOG_INFO, "client gone while sending to client, the response is read on for its store, "
                 "client: %s", pv_log_client(&hr->r));
        c->flags |= PV_HC_F_GONE | PV_HC_F_EOF;
        hr->keepalive = 0;
        hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
        hr->bg = 1; /* the rest goes to the tee alone (response.c) */
        pv_loop_del(c->w->loop, &c->x.io);
        pv_timer_del(c->w->loop, &c->timer);
    }
    pv_outq_reset(&hr->cq);
    return 1;
}

int pv_server_flush(pv_hreq_t *hr)
{
    pv_hconn_t *c = hr->c;
    if (pv_outq_empty(&hr->cq))
        return PV_OK;
    if (pv_unlikely(c->flags & PV_HC_F_GONE) && client_gone(hr))
        return PV_OK;
    int rc = pv_unlikely(hr->r.limit_rate) ? rate_flush(hr) : pv_outq_flush(&hr->cq, &c->x, &hr->r.bytes_sent);
    if (pv_unlikely(rc == PV_ERR) && client_gone(hr))
        return PV_OK;
    if (rc == PV_AGAIN && !hr->rate_wait) {
        pv_timer_set(c->w->loop, &c->timer, (uint64_t)(hr->r.loc ? hr->r.loc->conf.send_timeout
                                                                 : hr->r.srv->conf.send_timeout));
    }
    return rc;
}
