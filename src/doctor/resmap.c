/* `portvakt residency -c FILE [--json | --dot]`: the residency map of a
 * config. Every scope, the locations in it, each server they can reach
 * with its jurisdiction, the route and why it is allowed (the check at
 * load has already refused anything else), and where `residency off`
 * lifts a scope. Text for people, JSON for tools, DOT for Graphviz. */
#include "resmap.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../config/residency.h"

enum { OUT_TEXT = 0, OUT_JSON, OUT_DOT };

typedef struct collect_s {
    pv_arena_t *a;
    pv_res_reach_t *r;
    int n, cap;
} collect_t;

static int collect(void *arg, const pv_res_reach_t *r)
{
    collect_t *c = arg;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        pv_res_reach_t *nr = pv_arena_alloc(c->a, (size_t)cap * sizeof(*nr));
        if (c->n)
            memcpy(nr, c->r, (size_t)c->n * sizeof(*nr));
        c->r = nr;
        c->cap = cap;
    }
    c->r[c->n++] = *r;
    return 0;
}

/* A DOT string, quoted (labels use \n for their own line breaks). */
static void dstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || (*s == '\\' && s[1] != 'n'))
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char *loc_name(const pv_location_t *l)
{
    return l->name.len ? l->name.p : "(no location)";
}

/* Locations where `residency off` is what they inherit or set. */
static void each_lifted(const pv_conf_t *c, void (*fn)(void *, const pv_location_t *), void *arg)
{
    for (int i = 0; i < c->http->nservers; i++) {
        const pv_server_t *s = c->http->servers[i];
        for (int j = 0; j < s->nlocations; j++) {
            const pv_loc_conf_t *lc = &s->locations[j]->conf;
            if (lc->residency && lc->residency->off)
                fn(arg, s->locations[j]);
        }
    }
}

static void text_lifted(void *arg, const pv_location_t *l)
{
    const pv_residency_t *r = l->conf.residency;
    printf("lifted: location \"%s\" (%s:%d): residency off (%s:%d)\n", loc_name(l), l->src.file, l->src.line,
           r->src.file, r->src.line);
}

static void print_text(const pv_conf_t *c, const collect_t *k)
{
    const pv_res_http_t *rh = c->http->res;
    char cc[3];
    printf("gateway: %s", pv_jur_text(rh->gateway_jur, cc));
    if (rh->gateway_src.line)
        printf(" (%s:%d)", rh->gateway_src.file, rh->gateway_src.line);
    printf("\n");
    for (int i = 0; i < k->n; i++) {
        const pv_res_reach_t *r = &k->r[i];
        int new_scope = i == 0 || r->scope != k->r[i - 1].scope;
        if (new_scope)
            printf("scope \"residency %s\" (%s:%d)\n", r->scope->text, r->scope->src.file, r->scope->src.line);
        if (new_scope || r->from != k->r[i - 1].from)
            printf("  location \"%s\" (%s:%d)\n", loc_name(r->from), r->from->src.file, r->from->src.line);
        printf("    %s %s%s upstream \"%s\" (%s:%d): %s%s%s\n      route: %s\n", r->us->text,
               pv_jur_text(r->us->jur, cc), r->us->backup ? " backup" : "", r->ups->name, r->us->src.file,
               r->us->src.line, r->why, r->plain_untrusted ? "; plain HTTP outside trusted_network" : "",
               r->mirror ? "; a mirror's copy of the request" : "", r->route);
    }
    if (k->n == 0)
        printf("no residency scope\n");
    each_lifted(c, text_lifted, NULL);
}

/* The same map as the status document carries (residency_map.c). */
static int print_json(const pv_conf_t *c, pv_arena_t *a)
{
    json_t *doc = pv_residency_map(c, a);
    if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) != 0) {
        json_decref(doc);
        fprintf(stderr, "portvakt: out of memory\n");
        return 1;
    }
    json_decref(doc);
    putchar('\n');
    return 0;
}

static void dot_lifted(void *arg, const pv_location_t *l)
{
    static int n;
    printf("  \"off%d\" [label=", n);
    char *t = pv_arena_printf(arg, "location %s\\nresidency off", loc_name(l));
    dstr(stdout, t);
    printf(", style=dashed];\n  gateway -> \"off%d\" [style=dashed];\n", n++);
}

static void print_dot(const pv_conf_t *c, const collect_t *k, pv_arena_t *a)
{
    char cc[3];
    printf("digraph residency {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\", fontsize=11];\n"
           "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    printf("  gateway [label=\"gateway\\n%s\", shape=ellipse];\n", pv_jur_text(c->http->res->gateway_jur, cc));
    /* the servers, one cluster per jurisdiction */
    for (int j = -1; j < PV_JUR_COUNT; j++) {
        int opened = 0;
        for (int i = 0; i < k->n; i++) {
            const pv_res_reach_t *r = &k->r[i];
            int seen = 0;
            for (int p = 0; p < i && !seen; p++)
                seen = k->r[p].us == r->us;
            if (r->us->jur != j || seen)
                continue;
            if (!opened)
                printf("  subgraph \"cluster_%s\" {\n    label=\"%s\";\n", pv_jur_text(j, cc), cc);
            opened = 1;
            printf("    \"u%d_%d\" [label=", r->ups->index, (int)(r->us - r->ups->servers));
            dstr(stdout, pv_arena_printf(a, "%s\\nupstream %s%s", r->us->text, r->ups->name,
                                         r->us->backup ? " (backup)" : ""));
            printf("];\n");
        }
        if (opened)
            printf("  }\n");
    }
    for (int i = 0; i < k->n; i++) {
        const pv_res_reach_t *r = &k->r[i];
        int seen = 0;
        for (int p = 0; p < i && !seen; p++)
            seen = k->r[p].from == r->from;
        if (!seen) {
            printf("  \"l%d\" [label=", i);
            dstr(stdout, pv_arena_printf(a, "location %s\\nresidency %s", loc_name(r->from), r->scope->text));
            printf("];\n  gateway -> \"l%d\";\n", i);
        }
        const char *how = r->to == r->from ? "proxy_pass"
                                             : pv_arena_printf(a, "%svia location %s", r->mirror ? "mirror " : "",
                                                               loc_name(r->to));
        int first = 0;
        while (k->r[first].from != r->from)
            first++;
        printf("  \"l%d\" -> \"u%d_%d\" [label=", first, r->ups->index, (int)(r->us - r->ups->servers));
        dstr(stdout, how);
        printf("%s];\n", r->plain_untrusted ? ", style=dashed" : "");
    }
    each_lifted(c, dot_lifted, a);
    printf("}\n");
}

int pv_residency_main(int argc, char **argv)
{
    const char *path = NULL;
    int out = OUT_TEXT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            out = OUT_JSON;
        else if (strcmp(argv[i], "--dot") == 0)
            out = OUT_DOT;
        else {
            fprintf(stderr, "usage: portvakt residency -c FILE [--json | --dot]\n");
            return 3;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: portvakt residency -c FILE [--json | --dot]\n");
        return 3;
    }
    char err[1024];
    pv_conf_t *c = pv_conf_load(path, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "portvakt: [emerg] %s\n", err);
        return 1;
    }
    if (!c->http) {
        fprintf(stderr, "portvakt: no http block in %s\n", path);
        pv_conf_unref(c);
        return 1;
    }
    pv_arena_t a;
    pv_arena_init(&a, 16384);
    collect_t k = {.a = &a};
    int rc = 0;
    pv_residency_walk(c, &a, collect, &k);
    if (out == OUT_JSON)
        rc = print_json(c, &a);
    else if (out == OUT_DOT)
        print_dot(c, &k, &a);
    else
        print_text(c, &k);
    pv_arena_free(&a);
    pv_conf_unref(c);
    return rc;
}
