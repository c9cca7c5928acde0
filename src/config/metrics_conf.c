/* The reporting directives (`portvakt_metrics`, `stub_status`,
 * `portvakt_status`, `portvakt_dashboard`, `metrics_name`) and, once the config is read, the
 * metrics slots: one per server block, metered location, upstream server
 * and zone, each with its label. The slots are fixed by the config, so
 * the number of series never depends on what requests carry. */
#include "conf_int.h"

#include <stdio.h>
#include <string.h>

/* portvakt_metrics; / stub_status; / portvakt_status; / portvakt_dashboard; in a location. */
static int set_report_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(base);
    if (cx->loc->report)
        return DUP(cx, nd);
    cx->loc->report = (int)(intptr_t)cmd->data;
    return PV_OK;
}

/* metrics_name NAME; */
static int set_metrics_name_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    if (cx->loc->metrics_name)
        return DUP(cx, nd);
    if (!nd->args[1].len)
        return pv_conf_error(cx, &nd->src, "empty \"metrics_name\"");
    cx->loc->metrics_name = pv_arena_strndup(cx->a, nd->args[1].p, nd->args[1].len);
    return PV_OK;
}

int pv_conf_report_check(pv_conf_ctx_t *cx, const pv_location_t *loc)
{
    static const char *const names[] = {"", "portvakt_metrics", "stub_status", "portvakt_status", "portvakt_dashboard"};
    if (!loc->report)
        return PV_OK;
    if (loc->proxy_pass)
        return pv_conf_error(cx, &loc->src, "\"%s\" and \"proxy_pass\" in one location", names[loc->report]);
    if (loc->probe)
        return pv_conf_error(cx, &loc->src, "\"%s\" and \"portvakt_%s\" in one location", names[loc->report],
                             loc->probe == PV_PROBE_LIVE ? "live" : "ready");
    return PV_OK;
}

/* The location as written: "/api/", "= /x", "~ re", "~* re", "^~ /p", "@name". */
static const char *loc_text(pv_conf_ctx_t *cx, const pv_location_t *l)
{
    static const char *const mods[] = {"", "= ", "^~ ", "~ ", "~* "};
    return pv_arena_printf(cx->a, "%s%.*s", l->named ? "" : mods[l->match], (int)l->name.len, l->name.p);
}

/* label, or label#2, label#3... when an earlier one in seen[0..n) has it */
static const char *unique(pv_conf_ctx_t *cx, const char *label, const char **seen, int n)
{
    const char *out = label;
    for (int k = 2;; k++) {
        int dup = 0;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(seen[i], out) == 0;
        if (!dup)
            return out;
        out = pv_arena_printf(cx->a, "%s#%d", label, k);
    }
}

void pv_conf_metrics_finish(pv_conf_ctx_t *cx)
{
    pv_http_conf_t *h = cx->http;
    const char **slabels = pv_arena_calloc(cx->a, sizeof(char *) * (size_t)(h->nservers + 1));
    int nloc = 0;
    for (int i = 0; i < h->nservers; i++)
        nloc += h->servers[i]->nlocations;
    h->mlocs = pv_arena_calloc(cx->a, sizeof(pv_location_t *) * (size_t)(nloc + 1));
    const char **llabels = pv_arena_calloc(cx->a, sizeof(char *) * (size_t)(nloc + 1));
    for (int i = 0; i < h->nservers; i++) {
        pv_server_t *s = h->servers[i];
        s->sid = i;
        const char *label = s->nnames && s->names[0].name.len ? pv_arena_strndup(cx->a, s->names[0].name.p, s->names[0].name.len)
                                                              : s->listens[0].text;
        s->mlabel = slabels[i] = unique(cx, label, slabels, i);
        int first = h->nmlocs;
        for (int j = 0; j < s->nlocations; j++) {
            pv_location_t *l = s->locations[j];
            const char *name = l->metrics_name ? l->metrics_name : loc_text(cx, l);
            l->metrics_name = llabels[h->nmlocs] = unique(cx, name, llabels + first, h->nmlocs - first);
            h->mlocs[h->nmlocs++] = l;
            l->mid = h->nmlocs;
            if (l->lmt)
                l->lmt->mid = l->mid;
        }
    }
    for (int i = 0; i < h->niflocs; i++) {
        pv_location_t *l = h->iflocs[i], *p = l->parent;
        while (p->parent)
            p = p->parent;
        l->mid = p->mid;
    }
    h->npeers = 0;
    for (int i = 0; i < h->nupstreams; i++) {
        h->upstreams[i]->peer_base = h->npeers;
        h->npeers += h->upstreams[i]->nservers;
    }
}

static const pv_conf_cmd_t metrics_cmds[] = {
    {"portvakt_metrics", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_report_cb, PV_BASE_NONE, 0, (void *)PV_REPORT_METRICS},
    {"stub_status", PV_CTX_LOCATION, PV_ARGS_NOARGS | PV_ARGS_TAKE1, set_report_cb, PV_BASE_NONE, 0, (void *)PV_REPORT_STUB},
    {"portvakt_status", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_report_cb, PV_BASE_NONE, 0, (void *)PV_REPORT_STATUS},
    {"portvakt_dashboard", PV_CTX_LOCATION, PV_ARGS_NOARGS, set_report_cb, PV_BASE_NONE, 0, (void *)PV_REPORT_DASHBOARD},
    {"metrics_name", PV_CTX_LOCATION, PV_ARGS_TAKE1, set_metrics_name_cb, PV_BASE_NONE, 0, NULL},
};

const pv_conf_module_t pv_conf_metrics_module = {"metrics", metrics_cmds, PV_NELEM(metrics_cmds)};
