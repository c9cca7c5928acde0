/* The gateway's own probes, content handlers for a location:
 * `portvakt_live;` answers 200 while the process serves, and
 * `portvakt_ready;` 200 only when every upstream with a mandatory health
 * check has a server its checks let in, else 503 with a JSON reason
 * naming the upstreams that have none: a container's readiness and
 * liveness, as Compose healthchecks and Kubernetes probes ask them. */
#include "probe.h"

#include <stdio.h>
#include <string.h>

#include "../http/phases.h"
#include "../http/response.h"
#include "../http/server.h"
#include "../upstream/upstream.h"

static int claims(const pv_location_t *loc)
{
    return loc->probe != PV_PROBE_NONE;
}

/* Whether some server of pool p is let in by its health checks. */
static int has_healthy(pv_upool_t *p)
{
    int ok = 0;
    pthread_mutex_lock(&p->peers[0]->group->lock);
    for (int i = 0; i < p->cf->nservers && !ok; i++)
        ok = !p->cf->servers[i].down && !p->peers[i]->bal.hc_down;
    pthread_mutex_unlock(&p->peers[0]->group->lock);
    return ok;
}

/* The readiness answer's body into the request arena; its status in *status. */
static pv_str_t ready_body(pv_hreq_t *hr, int *status)
{
    const pv_http_conf_t *h = hr->gen->conf->http;
    size_t cap = 64, len = 0;
    for (int i = 0; i < h->nupstreams; i++)
        cap += strlen(h->upstreams[i]->name) * 6 + 4;
    char *b = pv_arena_alloc(hr->r.arena, cap);
    int missing = 0;
    for (int i = 0; i < h->nupstreams; i++) {
        const pv_upstream_conf_t *u = h->upstreams[i];
        if (!u->health || !u->health->mandatory || has_healthy(pv_upstream_pool(hr->gen, i)))
            continue;
        len += (size_t)snprintf(b + len, cap - len, missing++ ? ",\"" : "{\"status\":\"not ready\",\"reason\":\"no healthy server\",\"upstreams\":[\"");
        for (const char *p = u->name; *p && len + 8 < cap; p++) /* names are config words: escape " and \ */
            len += (size_t)snprintf(b + len, cap - len, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        len += (size_t)snprintf(b + len, cap - len, "\"");
    }
    if (missing)
        len += (size_t)snprintf(b + len, cap - len, "]}\n");
    else
        len = (size_t)snprintf(b, cap, "{\"status\":\"ready\"}\n");
    *status = missing ? 503 : 200;
    return (pv_str_t){b, len};
}

static int content(pv_hreq_t *hr)
{
    int status = 200;
    pv_str_t body = hr->r.loc->probe == PV_PROBE_LIVE ? PV_STR("{\"status\":\"live\"}\n") : ready_body(hr, &status);
    pv_resp_head_t head = {
        .status = status,
        .content_type = PV_STR("application/json"),
        .content_length = (int64_t)body.len,
    };
    int rc = pv_resp_send_head(hr, &head);
    if (rc == PV_RESP_PRECONDITION) {
        pv_resp_error(hr, 412); /* the not-modified filter */
        return PV_PHASE_DONE;
    }
    if (rc != PV_OK) {
        pv_resp_abort(hr);
        return PV_PHASE_DONE;
    }
    pv_resp_send_body(hr, &body, 1);
    pv_resp_finish(hr);
    return PV_PHASE_DONE;
}

static const pv_content_t probe_content = {"probe", claims, content, NULL};

static int mod_init(void)
{
    pv_phases_content(&probe_content);
    return PV_OK;
}

pv_module_t pv_probe_module = {
    .name = "probe",
    .init = mod_init,
};
