#include "phases.h"

#include <string.h>

#include "../config/residency.h"
#include "../core/log.h"
#include "router.h"
#include "script.h"
#include "server.h"
#include "uvars.h"
#include "vars.h"
#include "accesslog.h"

/* Every handler before the content phase in phase order, then those of
 * the log phase; and the content handlers. Written at start-up only. A
 * request walks the first list by index (NGINX's phase engine). */
#define PV_PHASE_MAX 32
typedef struct {
    uint8_t phase;          /* PV_PHASE_* */
    pv_phase_handler_t h;   /* the handler */
} engine_t;
static engine_t engine[PV_PHASE_MAX];
static int nengine;         /* handlers before content */
static pv_phase_handler_t loggers[PV_PHASE_MAX];
static int nloggers;
static const pv_content_t *contents[PV_PHASE_MAX];
static int ncontents;

void pv_phases_register(int phase, pv_phase_handler_t h)
{
    if (phase < 0 || phase >= PV_PHASE__COUNT || phase == PV_PHASE_CONTENT) {
        pv_log(PV_LOG_EMERG, "phase handler not registered: phase %d", phase);
        return;
    }
    if (phase == PV_PHASE_LOG) {
        for (int i = 0; i < nloggers; i++)
            if (loggers[i] == h)
                return;
        if (nloggers < PV_PHASE_MAX)
            loggers[nloggers++] = h;
        return;
    }
    /* registering twice (a harness re-initialising) is harmless */
    for (int i = 0; i < nengine; i++)
        if (engine[i].h == h)
            return;
    if (nengine == PV_PHASE_MAX)
        return;
    /* keep phase order: after the last handler of the same or an earlier phase */
    int at = nengine;
    while (at > 0 && engine[at - 1].phase > phase) {
        engine[at] = engine[at - 1];
        at--;
    }
    engine[at] = (engine_t){(uint8_t)phase, h};
    nengine++;
}

void pv_phases_content(const pv_content_t *c)
{
    for (int i = 0; i < ncontents; i++)
        if (contents[i] == c)
            return;
    if (ncontents < PV_PHASE_MAX)
        contents[ncontents++] = c;
}

void pv_phases_res_enter(pv_request_t *r, const pv_location_t *loc)
{
    const pv_loc_conf_t *lc = &loc->conf;
    if (pv_residency_anon(lc))
        r->flags |= PV_REQ_F_RES_ANON;
    if (!pv_residency_active(lc) || lc->residency == r->res_scope)
        return;
    const pv_jurset_t *s = &lc->residency->allow;
    if (r->res_allow && memcmp(r->res_allow, s, sizeof(*s)) != 0) {
        /* a second scope: the request may go where both allow */
        pv_jurset_t *both = pv_arena_alloc(r->arena, sizeof(*both));
        if (!both) {
            r->res_allow = &pv_jurset_none; /* nowhere: refused, never let out */
            r->res_scope = lc->residency;
            return;
        }
        for (size_t i = 0; i < sizeof(both->bits); i++)
            both->bits[i] = r->res_allow->bits[i] & s->bits[i];
        if (memcmp(both, s, sizeof(*s)) != 0)
            s = both;
    }
    r->res_scope = lc->residency;
    r->res_allow = s;
}

int pv_phases_subrequest(pv_hreq_t *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done)
{
    if (loc->conf.residency)
        pv_phases_res_enter(sr, loc);
    for (int i = 0; i < ncontents; i++) {
        if (contents[i]->claims(loc) && contents[i]->subrequest) {
            contents[i]->subrequest(hr, sr, loc, done);
            return PV_OK;
        }
    }
    return PV_ERR;
}

/* The content phase: the first handler that claims the location and does
 * not decline it, or 404 when none does. */
static void run_content(pv_hreq_t *hr)
{
    const pv_location_t *loc = hr->r.loc;
    if (hr->r.flags & PV_REQ_F_NO_UPSTREAM) {
        pv_log_r(&hr->r, PV_LOG_ERR, "no upstream configuration, client: %s", pv_log_client(&hr->r));
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return;
    }
    for (int i = 0; i < ncontents; i++)
        if (contents[i]->claims(loc) && contents[i]->handler(hr) != PV_PHASE_NEXT)
            return;
    pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
}

/* Run handlers from hr->phase_step on until one answers or parks; the
 * content phase runs once, after the last, and ends the walk. */
static void run_from(pv_hreq_t *hr)
{
    while (hr->phase_step < nengine) {
        const engine_t *e = &engine[hr->phase_step++];
        hr->phase = e->phase;
        if (e->h(hr) != PV_PHASE_NEXT)
            return;
    }
    if (hr->phase != PV_PHASE_LOG) {
        hr->phase = PV_PHASE_LOG;
        run_content(hr);
    }
}

void pv_phases_run(pv_hreq_t *hr)
{
    hr->phase = PV_PHASE_POST_READ;
    hr->phase_step = 0;
    run_from(hr);
}

void pv_phases_goto(pv_hreq_t *hr, int phase)
{
    for (int i = 0; i < nengine; i++) {
        if (engine[i].phase == phase) {
            hr->phase_step = i;
            return;
        }
    }
}

void pv_phases_restart(pv_hreq_t *hr, int phase)
{
    pv_phases_goto(hr, phase);
    hr->phase = (uint8_t)phase;
    run_from(hr);
}

void pv_phases_resume(pv_hreq_t *hr)
{
    run_from(hr);
}

void pv_phases_log(pv_hreq_t *hr)
{
    for (int i = 0; i < nloggers; i++)
        loggers[i](hr);
}

/* A request whose connection closes before it ended (the client went
 * away, a write failed, a timeout) is logged all the same, as NGINX logs
 * every request it read: with 499 ("client closed request") when no byte
 * of an answer left, else with the status sent. One the head of which
 * was not read whole is not logged. */
void pv_phases_log_closed(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    if (!hr->metered)
        return;
    if (!r->status || (!r->bytes_sent && r->status != PV_HTTP_CLOSE))
        r->status = PV_HTTP_CLIENT_CLOSED;
    r->body_bytes_sent = r->bytes_sent > hr->resp_head_bytes ? r->bytes_sent - hr->resp_head_bytes : 0;
    if (hr->out && hr->resp_head_bytes && !r->resp_headers)
        r->sent_head = (pv_str_t){hr->out->data, hr->resp_head_bytes};
    pv_phases_log(hr);
}

/* ---- the core's handlers ------------------------------------------------ */

/* The location, then what NGINX checks once it is known: the body size
 * limit, the slash redirect, `internal`. */
static int find_config(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    int redirect = 0;
    r->uri_changed = 0;
    r->flags &= ~(unsigned)PV_REQ_F_NO_UPSTREAM; /* a new location, a new content handler */
    pv_location_t *loc = pv_router_find_location(r->srv, r->uri, &redirect);
    if (!loc && r->srv)
        loc = r->srv->self_loc; /* no location: the server's own settings, as NGINX */
    r->loc = loc;
    if (loc && loc->conf.residency)
        pv_phases_res_enter(r, loc);
    /* a regex location's groups are $1..$9 and its named ones variables
     * (for a location nested in a regex one, the outer regex's) */
    const pv_location_t *rl = loc;
    while (rl && !rl->rx)
        rl = rl->outer;
    if (rl && (rl->rx->ncaptures || rl->rx->nnames))
        pv_regex_exec(r, rl->rx, r->uri);
    if (!loc) {
        pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    int64_t max = loc->conf.client_max_body_size;
    if (max > 0 && r->content_length > max) {
        pv_log_r(r, PV_LOG_ERR, "client intended to send too large body: %lld bytes, client: %s",
               (long long)r->content_length, pv_log_client(r));
        pv_resp_local(hr, 413, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (redirect) {
        /* NGINX's auto redirect: "/api/auth" -> "/api/auth/" with the args */
        pv_str_t url = pv_router_location_url(r, loc->name, 1, r->args);
        pv_resp_local(hr, 301, url.p, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (loc->internal && !(r->flags & PV_REQ_F_REWRITTEN)) {
        pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    /* limit_except: the other methods run under its block's configuration */
    if (loc->lmt && !(pv_conf_method_bit(r->method) & loc->lmt_methods))
        r->loc = loc->lmt;
    return PV_PHASE_NEXT;
}

void pv_phases_core_init(void)
{
    pv_phases_register(PV_PHASE_FIND_CONFIG, find_config);
    pv_script_init();
}
