/* The routes of a config, as the residency check sees them: from every
 * location in a residency scope, every way a request can travel inside
 * the gateway (an `if` or `limit_except` block, `auth_request`,
 * `mirror`, `add_before_body`, `add_after_body`, `error_page`, `try_files`,
 * `index`, `rewrite ... last`) and out of it
 * (`proxy_pass` to every server of its upstream, backups included, or to
 * every upstream `residency_targets` allows). URIs are looked up with the
 * router's own code (locfind.c). Where the target of a route is known
 * only at run time (a value with variables or captures, a server-level
 * rewrite that may change the URI), every location of the server counts
 * as reachable, and the route says so. */
#include "conf_int.h"
#include "residency.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "locfind.h"

/* One location reached, and how: via the hop from hops[prev]. */
typedef struct hop_s {
    const pv_location_t *loc;
    int prev;        /* -1 for the scope's own location */
    const char *via; /* the route's words for the hop */
    int mirror;      /* a mirror subrequest is on the way to it */
} hop_t;

typedef struct walk_s {
    const pv_conf_t *c;
    pv_arena_t *a;
    pv_res_visit_cb cb;
    void *arg;
    const pv_server_t *srv;
    hop_t *hops;
    int nhops;
    int mirroring;   /* the hops being added are a mirror's */
} walk_t;

static const char *src_text(pv_arena_t *a, const pv_conf_src_t *s)
{
    return pv_arena_printf(a, "%s:%d", s->file ? s->file : "?", s->line);
}

static const char *loc_text(pv_arena_t *a, const pv_location_t *l)
{
    if (l->parent)
        return pv_arena_printf(a, "block in location \"%s\" (%s)", l->parent->name.p, src_text(a, &l->src));
    if (!l->name.len)
        return pv_arena_printf(a, "no location (server %s)", src_text(a, &l->src));
    return pv_arena_printf(a, "location \"%s\" (%s)", l->name.p, src_text(a, &l->src));
}

static void add_hop(walk_t *w, int from, const pv_location_t *l, const char *via)
{
    if (!l)
        return;
    for (int i = 0; i < w->nhops; i++)
        if (w->hops[i].loc == l)
            return;
    hop_t *h = pv_conf_push(w->a, &w->hops, &w->nhops, sizeof(*h));
    h->loc = l;
    h->prev = from;
    h->via = via;
    h->mirror = w->mirroring || (from >= 0 && w->hops[from].mirror);
}

/* Every location of the server: a target known only at run time. */
static void reach_all(walk_t *w, int from, const char *via)
{
    const char *v = pv_arena_printf(w->a, "%s, known only at run time: any location", via);
    for (int i = 0; i < w->srv->nlocations; i++)
        add_hop(w, from, w->srv->locations[i], v);
    add_hop(w, from, w->srv->self_loc, v);
}

static void reach_named(walk_t *w, int from, const char *via, const char *name, size_t len)
{
    for (int i = 0; i < w->srv->nlocations; i++) {
        const pv_location_t *l = w->srv->locations[i];
        if (l->named && l->name.len == len && memcmp(l->name.p, name, len) == 0)
            add_hop(w, from, l, via);
    }
}

/* An internal redirect to uri (args dropped): from the server rewrite
 * phase on, as the runtime restarts it; a server-level rewrite whose
 * regex matches makes the target unknown. */
static void reach_uri(walk_t *w, int from, const char *via, const char *uri, size_t len, int server_rw)
{
    const char *q = memchr(uri, '?', len);
    pv_str_t u = {uri, q ? (size_t)(q - uri) : len};
    for (int i = 0; server_rw && i < w->srv->rw.nops; i++) {
        const pv_rw_op_t *op = &w->srv->rw.ops[i];
        if (op->op == PV_RW_REWRITE && op->re && pv_conf_re_match(op->re->code, u)) {
            reach_all(w, from, pv_arena_printf(w->a, "%s, then the server's rewrite (%s) may change it", via,
                                               src_text(w->a, &op->src)));
            return;
        }
    }
    int redirect = 0;
    const pv_location_t *l = pv_conf_find_location(w->srv, u, &redirect);
    if (redirect)
        return; /* a 301 to the client */
    add_hop(w, from, l ? l : w->srv->self_loc, via);
}

/* A compiled value's text when it has no variables, else NULL. */
static const char *const_text(pv_arena_t *a, const pv_cv_t *cv, size_t *len)
{
    if (!cv->is_const)
        return NULL;
    if (cv->nparts == 0) {
        *len = 0;
        return "";
    }
    *len = cv->parts[0].text.len;
    return pv_arena_strndup(a, cv->parts[0].text.p, cv->parts[0].text.len);
}

/* A route to a URI, "@name", a URL (the client's, not a route) or a
 * value known only at run time. */
static void reach_value(walk_t *w, int from, const char *via, const pv_cv_t *cv, int server_rw)
{
    size_t len;
    const char *t = const_text(w->a, cv, &len);
    if (!t)
        reach_all(w, from, via);
    else if (len && t[0] == '@')
        reach_named(w, from, via, t, len);
    else if (len && t[0] == '/')
        reach_uri(w, from, via, t, len, server_rw);
}

/* index: the URI X/ + an index file, where X/ landed in l. A static
 * location longer than l's name that is X/ plus the start of an index
 * name, or any regex location, may match it. */
static void reach_index(walk_t *w, int from, const pv_location_t *l)
{
    const pv_static_conf_t *st = &l->conf.st;
    const char *via = pv_arena_printf(w->a, "index of %s", loc_text(w->a, l));
    for (int i = 0; i < w->srv->nlocations; i++) {
        const pv_location_t *t = w->srv->locations[i];
        if (t->named || t == l)
            continue;
        if (t->match == PV_LOC_REGEX || t->match == PV_LOC_REGEX_ICASE) {
            add_hop(w, from, t, pv_arena_printf(w->a, "%s (a regex location may match the index file's URI)", via));
            continue;
        }
        int under = l->match == PV_LOC_REGEX || l->match == PV_LOC_REGEX_ICASE || l->named ||
                    (t->name.len > l->name.len && memcmp(t->name.p, l->name.p, l->name.len) == 0);
        const char *slash = strrchr(t->name.p, '/');
        const char *tail = slash ? slash + 1 : t->name.p;
        size_t tl = strlen(tail);
        for (int k = 0; under && tl && k < st->nindex; k++) {
            size_t len;
            const char *f = const_text(w->a, &st->index[k], &len);
            if (!f || (tl <= len && memcmp(f, tail, tl) == 0)) {
                add_hop(w, from, t, via);
                break;
            }
        }
    }
}

/* The routes inside the gateway out of hops[i]'s location. */
static void inner_routes(walk_t *w, int i)
{
    const pv_location_t *l = w->hops[i].loc;
    const pv_loc_conf_t *lc = &l->conf;
    pv_arena_t *a = w->a;
    if (l->lmt)
        add_hop(w, i, l->lmt, pv_arena_printf(a, "limit_except (%s)", src_text(a, &l->lmt->src)));
    for (int k = 0; k < l->rw.nops; k++) {
        const pv_rw_op_t *op = &l->rw.ops[k];
        if (op->op == PV_RW_IF && op->ifloc)
            add_hop(w, i, op->ifloc, pv_arena_printf(a, "if (%s)", src_text(a, &op->src)));
        if (op->op == PV_RW_REWRITE && (op->flag == PV_RWF_LAST || op->flag == PV_RWF_NONE)) {
            size_t len;
            const char *t = const_text(a, &op->value, &len);
            reach_value(w, i,
                        pv_arena_printf(a, "rewrite \"%s\" \"%s\"%s (%s)", op->re ? op->re->src : "",
                                        t ? t : "(with captures or variables)",
                                        op->flag == PV_RWF_LAST ? " last" : "", src_text(a, &op->src)),
                        &op->value, 0);
        }
    }
    if (lc->policy.auth_request && lc->policy.auth_request[0]) {
        const char *u = lc->policy.auth_request;
        reach_uri(w, i, pv_arena_printf(a, "auth_request \"%s\" (%s)", u, src_text(a, &lc->policy.auth_request_src)),
                  u, strlen(u), 1);
    }
    for (int k = 0; k < lc->mirror.n; k++) {
        /* a subrequest, run from the server rewrite phase as a redirect is */
        const pv_str_t *u = &lc->mirror.uris[k];
        w->mirroring = 1;
        reach_uri(w, i, pv_arena_printf(a, "mirror \"%s\" (%s)", u->p, src_text(a, &lc->mirror.srcs[k])), u->p,
                  u->len, 1);
        w->mirroring = 0;
    }
    const pv_str_t *adds[2] = {&lc->add.before, &lc->add.after};
    const pv_conf_src_t *add_srcs[2] = {&lc->add.before_src, &lc->add.after_src};
    for (int k = 0; k < 2; k++) /* a subrequest, as a mirror's */
        if (adds[k]->len)
            reach_uri(w, i, pv_arena_printf(a, "%s \"%s\" (%s)", k ? "add_after_body" : "add_before_body",
                                            adds[k]->p, src_text(a, add_srcs[k])),
                      adds[k]->p, adds[k]->len, 1);
    for (int k = 0; k < lc->nerror_pages; k++) {
        const pv_error_page_t *e = &lc->error_pages[k];
        size_t len;
        const char *t = const_text(a, &e->uri, &len);
        reach_value(w, i,
                    pv_arena_printf(a, "error_page %d \"%s\" (%s)", e->status, t ? t : "(with variables)",
                                    src_text(a, &e->src)),
                    &e->uri, 1);
    }
    if (lc->st.try_last.len) {
        const char *via = pv_arena_printf(a, "try_files \"%.*s\" (%s)", (int)lc->st.try_last.len, lc->st.try_last.p,
                                          src_text(a, &lc->st.try_src));
        if (lc->st.try_kind == PV_TRY_NAMED)
            reach_named(w, i, via, lc->st.try_last.p, lc->st.try_last.len);
        else if (lc->st.try_kind == PV_TRY_URI)
            reach_value(w, i, via, &lc->st.try_uri, 1);
    }
    if (!l->proxy_pass && !l->probe && lc->st.nindex > 0)
        reach_index(w, i, l);
}

/* The hops that led to hops[i], as text. */
static const char *route_text(walk_t *w, int i, const char *tail)
{
    const char *s = tail;
    for (; i >= 0; i = w->hops[i].prev) {
        const hop_t *h = &w->hops[i];
        s = pv_arena_printf(w->a, "%s -> %s", loc_text(w->a, h->loc), s);
        if (h->via)
            s = pv_arena_printf(w->a, "%s -> %s", h->via, s);
    }
    return s;
}

/* Why scope allows j (the code named, or a group holding it). */
static const char *why_allowed(walk_t *w, const pv_residency_t *scope, int j)
{
    char cc[3];
    pv_jur_text(j, cc);
    const pv_res_http_t *rh = w->c->http->res;
    int n = scope->nnames < 0 ? -scope->nnames : scope->nnames;
    for (int i = 0; i < n; i++) {
        const char *name = scope->names[i];
        if (strcmp(name, cc) == 0)
            return pv_arena_printf(w->a, "%s is named by residency (%s)", cc, src_text(w->a, &scope->src));
        for (int g = 0; g < rh->ngroups; g++)
            if (strcmp(rh->groups[g].name, name) == 0 && pv_jurset_has(&rh->groups[g].set, j))
                return pv_arena_printf(w->a, "%s is in residency_group %s (%s)", cc, name,
                                       src_text(w->a, &rh->groups[g].src));
        const char *b = pv_res_builtin_group(name);
        int user = 0;
        for (int g = 0; g < rh->ngroups; g++)
            user |= strcmp(rh->groups[g].name, name) == 0;
        if (b && !user && strstr(b, cc))
            return pv_arena_printf(w->a, "%s is in the built-in group %s (as of %s)", cc, name, pv_res_groups_date);
    }
    return cc[0] ? pv_arena_strdup(w->a, cc) : "";
}

static int visit_upstream(walk_t *w, int i, const pv_residency_t *scope, const pv_upstream_conf_t *u,
                          const char *how)
{
    const pv_location_t *l = w->hops[i].loc;
    const pv_proxy_pass_t *pp = l->proxy_pass;
    const pv_res_http_t *rh = w->c->http->res;
    for (int k = 0; k < u->nservers; k++) {
        const pv_upstream_server_t *us = &u->servers[k];
        if (us->resolve_host && k > 0 && u->servers[k - 1].name == us->name)
            continue; /* a `resolve` line's other slots: the same line, the same jurisdiction */
        char cc[3];
        pv_res_reach_t r = {.srv = w->srv, .from = w->hops[0].loc, .scope = scope, .to = l, .pp = pp,
                            .ups = u, .us = us, .mirror = w->hops[i].mirror};
        r.route = route_text(w, i, pv_arena_printf(w->a, "%s -> server %s%s", how, us->text,
                                                   us->backup ? " (backup)" : ""));
        r.allowed = us->jur != PV_JUR_NONE && pv_jurset_has(&scope->allow, us->jur);
        if (r.allowed)
            r.why = why_allowed(w, scope, us->jur);
        else if (us->jur == PV_JUR_NONE)
            r.why = "the server declares no jurisdiction (jurisdiction=CC on its line, or jurisdiction in its "
                    "upstream block)";
        else
            r.why = pv_arena_printf(w->a, "%s is not in %s", pv_jur_text(us->jur, cc), scope->text);
        r.plain_untrusted = !pp->ssl && !pv_res_trusted(rh->trusted, rh->ntrusted, (const struct sockaddr *)&us->addr);
        int rc = w->cb(w->arg, &r);
        if (rc)
            return rc;
    }
    return 0;
}

/* The routes out of the gateway from hops[i]'s location. */
static int outer_routes(walk_t *w, int i, const pv_residency_t *scope)
{
    const pv_location_t *l = w->hops[i].loc;
    const pv_proxy_pass_t *pp = l->proxy_pass;
    if (!pp)
        return 0;
    const char *at = src_text(w->a, &pp->src);
    if (pp->upstream)
        return visit_upstream(w, i, scope, pp->upstream, pv_arena_printf(w->a, "proxy_pass %s (%s)", pp->url.p, at));
    const pv_res_targets_t *t = l->conf.res_targets;
    if (!t) {
        pv_res_reach_t r = {.srv = w->srv, .from = w->hops[0].loc, .scope = scope, .to = l, .pp = pp,
                            .mirror = w->hops[i].mirror};
        r.route = route_text(w, i, pv_arena_printf(w->a, "proxy_pass %s (%s)", pp->url.p, at));
        r.why = "proxy_pass with variables and no residency_targets";
        return w->cb(w->arg, &r);
    }
    for (int k = 0; k < t->n; k++) {
        int rc = visit_upstream(w, i, scope, t->ups[k],
                                pv_arena_printf(w->a, "proxy_pass %s (%s) limited by residency_targets (%s) to \"%s\"",
                                                pp->url.p, at, src_text(w->a, &t->src), t->names[k]));
        if (rc)
            return rc;
    }
    return 0;
}

static int walk_scope(walk_t *w, const pv_location_t *start)
{
    const pv_residency_t *scope = start->conf.residency;
    w->hops = NULL;
    w->nhops = 0;
    add_hop(w, -1, start, NULL);
    for (int i = 0; i < w->nhops; i++) {
        inner_routes(w, i);
        int rc = outer_routes(w, i, scope);
        if (rc)
            return rc;
    }
    return 0;
}

int pv_residency_walk(const pv_conf_t *c, pv_arena_t *a, pv_res_visit_cb cb, void *arg)
{
    if (!c->http)
        return 0;
    walk_t w = {.c = c, .a = a, .cb = cb, .arg = arg};
    for (int i = 0; i < c->http->nservers; i++) {
        w.srv = c->http->servers[i];
        for (int j = 0; j <= w.srv->nlocations; j++) {
            const pv_location_t *l = j < w.srv->nlocations ? w.srv->locations[j] : w.srv->self_loc;
            if (!pv_residency_active(&l->conf))
                continue;
            int rc = walk_scope(&w, l);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int pv_res_trusted(const pv_cidr_t *nets, int n, const struct sockaddr *sa)
{
    const uint8_t *b;
    int family = sa->sa_family;
    if (family == AF_INET)
        b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (family == AF_INET6)
        b = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return 0;
    for (int i = 0; i < n; i++) {
        if (nets[i].family != family)
            continue;
        int bits = nets[i].bits, k = 0, ok = 1;
        for (; bits >= 8 && ok; k++, bits -= 8)
            ok = b[k] == nets[i].addr[k];
        if (ok && bits > 0)
            ok = ((b[k] ^ nets[i].addr[k]) & (uint8_t)(0xff << (8 - bits))) == 0;
        if (ok)
            return 1;
    }
    return 0;
}
