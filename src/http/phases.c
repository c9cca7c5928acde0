#include "phases.h"

#include "../core/log.h"
#include "router.h"
#include "server.h"
#include "vars.h"

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

int pv_phases_subrequest(pv_hreq_t *hr, pv_request_t *sr, pv_location_t *loc, pv_sub_done_cb done)
{
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

void pv_phases_resume(pv_hreq_t *hr)
{
    run_from(hr);
}

void pv_phases_log(pv_hreq_t *hr)
{
    for (int i = 0; i < nloggers; i++)
        loggers[i](hr);
}

/* ---- the core's handlers ------------------------------------------------ */

/* `return CODE [TEXT|URL]`: a redirect code takes a URL (a relative one is
 * made absolute, as NGINX's header filter does), any other code a body. */
static int do_return(pv_hreq_t *hr, int code, int has_text, const pv_cv_t *text)
{
    pv_request_t *r = &hr->r;
    if (!has_text) {
        pv_resp_local(hr, code, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    size_t need = pv_cv_eval(text, r, PV_ESCAPE_NONE, NULL, 0);
    char *txt = pv_arena_alloc(&hr->arena, need + 1);
    pv_cv_eval(text, r, PV_ESCAPE_NONE, txt, need + 1);
    txt[need] = '\0';
    if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
        if (txt[0] == '/') {
            size_t cap = need + 128 + r->host.len;
            char *abs = pv_arena_alloc(&hr->arena, cap);
            if (pv_router_absolute_url(r, (pv_str_t){txt, need}, 0, (pv_str_t){NULL, 0}, abs, cap) >= 0)
                txt = abs;
        }
        pv_resp_local(hr, code, txt, (pv_str_t){NULL, 0});
    } else {
        pv_resp_local(hr, code, NULL, (pv_str_t){txt, need});
    }
    return PV_PHASE_DONE;
}

/* A server-level `return` runs before any location is chosen. */
static int server_rewrite(pv_hreq_t *hr)
{
    const pv_server_t *srv = hr->r.srv;
    if (!srv->return_code)
        return PV_PHASE_NEXT;
    return do_return(hr, srv->return_code, srv->has_return_text, &srv->return_text);
}

/* The location, then what NGINX checks once it is known: the body size
 * limit, the slash redirect, `internal`. */
static int find_config(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    int redirect = 0;
    pv_location_t *loc = pv_router_find_location(r->srv, r->uri, &redirect);
    r->loc = loc;
    if (!loc) {
        pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    int64_t max = loc->conf.client_max_body_size;
    if (max > 0 && r->content_length > max) {
        pv_log(PV_LOG_ERR, "client intended to send too large body: %lld bytes, client: %s",
               (long long)r->content_length, r->peer_text);
        pv_resp_local(hr, 413, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (redirect) {
        /* NGINX's auto redirect: "/api/auth" -> "/api/auth/" with the args */
        char url[4096];
        if (pv_router_redirect_url(r, loc, url, sizeof(url)) < 0) {
            pv_resp_local(hr, 414, NULL, (pv_str_t){NULL, 0});
            return PV_PHASE_DONE;
        }
        pv_resp_local(hr, 301, url, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    if (loc->internal) {
        pv_resp_local(hr, 404, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    return PV_PHASE_NEXT;
}

/* A location-level `return`. */
static int rewrite(pv_hreq_t *hr)
{
    const pv_location_t *loc = hr->r.loc;
    if (!loc->return_code)
        return PV_PHASE_NEXT;
    return do_return(hr, loc->return_code, loc->has_return_text, &loc->return_text);
}

void pv_phases_core_init(void)
{
    pv_phases_register(PV_PHASE_SERVER_REWRITE, server_rewrite);
    pv_phases_register(PV_PHASE_FIND_CONFIG, find_config);
    pv_phases_register(PV_PHASE_REWRITE, rewrite);
}
