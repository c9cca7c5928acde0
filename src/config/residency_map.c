/* The residency map of a loaded config as one JSON document: every
 * server a location in a residency scope can reach, with the route and
 * why it is allowed, and the locations where `residency off` lifts a
 * scope. `portvakt residency --json` prints it; the status document of
 * `portvakt_status` carries it for the dashboard. */
#include "residency.h"

#include <jansson.h>

static const char *loc_name(const pv_location_t *l)
{
    return l->name.len ? l->name.p : "(no location)";
}

static json_t *src_json(const pv_conf_src_t *s)
{
    return json_sprintf("%s:%d", s->file ? s->file : "?", s->line);
}

static int add_reach(void *arg, const pv_res_reach_t *r)
{
    char cc[3];
    json_t *o = json_pack("{s:s,s:o,s:s,s:o,s:s?,s:s?,s:s?,s:b,s:b,s:b,s:b,s:s?,s:s?}",
                          "scope", r->scope->text, "scope_src", src_json(&r->scope->src),
                          "location", loc_name(r->from), "location_src", src_json(&r->from->src),
                          "upstream", r->ups ? r->ups->name : NULL, "server", r->us ? r->us->text : NULL,
                          "jurisdiction", r->us ? pv_jur_text(r->us->jur, cc) : NULL, "backup",
                          r->us && r->us->backup, "tls", r->pp && r->pp->ssl, "plain_untrusted",
                          r->plain_untrusted, "allowed", r->allowed, "why", r->why, "route", r->route);
    if (o && r->us)
        json_object_set_new(o, "server_src", src_json(&r->us->src));
    if (o)
        json_object_set_new(o, "mirror", json_boolean(r->mirror));
    return o ? json_array_append_new(arg, o) : -1;
}

json_t *pv_residency_map(const pv_conf_t *c, pv_arena_t *a)
{
    if (!c->http || !c->http->res)
        return NULL;
    char cc[3];
    json_t *reaches = json_array(), *lifted = json_array();
    json_t *doc = json_pack("{s:s,s:s,s:o,s:o}", "gateway", pv_jur_text(c->http->res->gateway_jur, cc),
                            "groups_date", pv_res_groups_date, "reaches", reaches, "lifted", lifted);
    if (!doc || pv_residency_walk(c, a, add_reach, reaches) != 0) {
        json_decref(doc);
        return NULL;
    }
    for (int i = 0; i < c->http->nservers; i++) {
        const pv_server_t *s = c->http->servers[i];
        for (int j = 0; j < s->nlocations; j++) {
            const pv_location_t *l = s->locations[j];
            const pv_residency_t *res = l->conf.residency;
            if (res && res->off)
                json_array_append_new(lifted, json_pack("{s:s,s:o,s:o}", "location", loc_name(l), "src",
                                                        src_json(&l->src), "off", src_json(&res->src)));
        }
    }
    return doc;
}
