/* The upstream's response head, once parsed: the next server for a
 * status proxy_next_upstream names, the cached entry in its place,
 * proxy_intercept_errors and X-Accel-Redirect, and else the client's
 * head with its framing. */
#include "proxy.h"

#include "../http/brange.h"
#include "../http/redirect.h"
#include "../http/response.h"
#include "../http/server.h"
#include "pcache.h"
#include "pstore.h"
#include "rewrite.h"

/* proxy_intercept_errors: a status of 300 and above for which the
 * location has an error_page is answered by that page, the upstream's
 * response dropped (a 401's WWW-Authenticate is kept, as NGINX does). */
static int intercept(pv_proxy_t *px, int status)
{
    pv_hreq_t *hr = px->hr;
    if (!px->loc->conf.proxy_intercept_errors || status < 300 || !pv_error_page_for(hr, status))
        return 0;
    for (int i = 0; status == 401 && i < px->rp.nfields; i++)
        if (PV_STR_IEQ(px->rp.fields[i].name, "www-authenticate"))
            pv_error_page_keep(hr, &px->rp.fields[i]);
    pv_pcache_intercepted(px, status, px->rp.fields, px->rp.nfields);
    pv_proxy_append_status(px->r, status);
    pv_proxy_drop_upstream(px);
    hr->handling = 0;
    pv_resp_error(hr, status);
    return 1;
}

/* The upstream's final head is parsed (px->rp): decide what to do with
 * it and queue the client head. 0, or -1 when it cannot be relayed. A
 * proxy_next_upstream status leaves resp_head_done clear. */
int pv_proxy_upstream_head(pv_proxy_t *px)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    const pv_uresp_t *rp = &px->rp;
    int status = rp->status;
    int64_t cl = rp->content_length;

    px->status = status;
    pv_proxy_stat_header(px);
    /* a switch before the whole request was written would leave the
     * rest of the body to be taken for the new protocol's bytes */
    if (status == 101 && !px->req_done)
        return -1;
    /* a final answer before the whole request was written (an early
     * 401/413): the connection must not be reused after it */
    if (!px->req_done)
        px->resp_early = 1;
    if (!px->sub_done && pv_proxy_next_on_status(px, status))
        return 0;
    /* NGINX's order: the next server, then the cached entry (stale on
     * this status, or revalidated), then the error page */
    if (!px->sub_done && r->pcache && pv_pcache_entry_answers(px, status, rp->fields, rp->nfields)) {
        pv_proxy_release_server(px, PV_BAL_OK);
        pv_proxy_drop_upstream(px);
        return -3;
    }
    if (!px->sub_done && (intercept(px, status) || pv_proxy_accel_redirect(px)))
        return -3;
    r->notmod_off = 1; /* unless the cache may store it (NGINX: !u->cacheable) */
    if (!px->sub_done && r->pcache)
        pv_pcache_response(px, status, rp->fields, rp->nfields);
    int head_req = (r->flags & PV_REQ_F_HEAD) != 0;
    px->resp_frame = rp->frame;
    if (!rp->keepalive)
        px->upstream_keep = 0;

    if (px->sub_done) {
        /* the subrequest's head is only looked at; the body is read and
         * dropped so the connection can be reused */
        pv_proxy_keep_fields(r, rp);
        px->resp_head_done = 1;
        if (r->pcache)
            pv_pcache_sub_head(px); /* stored as any request's, read whole */
        return 0;
    }
    if (pv_unlikely(pv_cv_upstream_fields))
        pv_proxy_keep_fields(r, rp);

    pv_pipe_head(px);
    /* framing toward the client */
    int frame;
    int64_t out_len = -1;
    if (px->resp_frame == PV_FRAME_LENGTH) {
        frame = PV_FRAME_LENGTH;
        out_len = cl;
    } else if (px->resp_frame == PV_FRAME_NONE) {
        frame = PV_FRAME_NONE;
        out_len = rp->has_cl && status != 101 ? cl : -1;
        if (!head_req && status != 204 && status != 304 && status != 101 && rp->has_cl)
            out_len = 0;
    } else {
        frame = PV_FRAME_CHUNKED; /* unknown length: the protocol side frames it */
    }
    if (head_req && r->upstream_method.len) { /* a HEAD asked for as GET: the head alone */
        frame = PV_FRAME_NONE;
        out_len = rp->has_cl ? cl : -1;
    }

    pv_upstream_response_t ur = {
        .status = status,
        .reason = rp->reason,
        .headers = rp->fields,
        .nheaders = rp->nfields,
        .r = r,
        .loc = r->loc,
    };
    int rframe = frame == PV_FRAME_CHUNKED ? PV_RESP_CHUNKED : PV_RESP_NONE;
    if (frame == PV_FRAME_LENGTH || (frame == PV_FRAME_NONE && out_len >= 0))
        rframe = PV_RESP_LENGTH;
    uint32_t tmax = hr->proto->trailers_max;
    if (px->resp_frame == PV_FRAME_CHUNKED && tmax && !head_req &&
        (px->rp.chunk.tbuf = pv_arena_alloc(r->arena, tmax)))
        px->rp.chunk.tcap = tmax; /* the upstream's trailer fields go on to the client */
    pv_header_t fields[PV_URESP_MAX_FIELDS];
    pv_resp_head_t h;
    pv_proxy_response_head(&ur, rframe, out_len, fields, &h);
    pv_proxy_ranges(px, &h, px->loc->conf.proxy_force_ranges);
    int rc = pv_resp_send_head(hr, &h);
    if (rc == PV_RESP_RANGE_416 || rc == PV_RESP_PRECONDITION)
        return pv_proxy_answer_instead(px, rc, h.content_length);
    if (rc != PV_OK)
        return rc == PV_RESP_NOMEM ? -2 : -1; /* -2: no memory for the head (logged) */
    px->resp_head_done = 1;
    pv_proxy_append_status(r, status);
    pv_pstore_start(px);
    return 0;
}
