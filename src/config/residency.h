/* Data residency: where upstream servers are (`jurisdiction`), where the
 * requests of a scope may go (`residency`), and the check that no route
 * of the config takes a request of a scope anywhere else. The codes are
 * ISO 3166-1 alpha-2, kept as an index 0..675 ("AA".."ZZ"); the built-in
 * groups and the table of places are data (residency_data.c). */
#ifndef PV_RESIDENCY_H
#define PV_RESIDENCY_H

#include <stdint.h>

#include "conf.h"

#define PV_JUR_NONE (-1)
#define PV_JUR_COUNT (26 * 26)

/* residency_log_addr */
enum { PV_RES_LOG_ANON = 0, PV_RES_LOG_FULL };

/* A set of jurisdictions. */
typedef struct pv_jurset_s {
    uint8_t bits[(PV_JUR_COUNT + 7) / 8];
} pv_jurset_t;

static inline int pv_jurset_has(const pv_jurset_t *s, int j)
{
    return j >= 0 && j < PV_JUR_COUNT && (s->bits[j / 8] >> (j % 8)) & 1;
}

static inline void pv_jurset_add(pv_jurset_t *s, int j)
{
    if (j >= 0 && j < PV_JUR_COUNT)
        s->bits[j / 8] |= (uint8_t)(1u << (j % 8));
}

/* The empty set. */
extern const pv_jurset_t pv_jurset_none;

/* `residency CODE|GROUP ...` or `residency off`, resolved into allow once
 * every residency_group is known. */
typedef struct pv_residency_s {
    int off;                   /* `residency off`: lifts an outer scope */
    const char **names;        /* codes and group names as written */
    int nnames;
    pv_jurset_t allow;         /* resolved: the jurisdictions requests may reach */
    const char *text;          /* "NO EEA", for messages and the map */
    pv_conf_src_t src;
} pv_residency_t;

/* `residency_targets UPSTREAM ...`: the upstreams a proxy_pass with
 * variables may name. */
typedef struct pv_res_targets_s {
    const char **names;
    pv_upstream_conf_t **ups;  /* resolved after the walk */
    int n;
    pv_conf_src_t src;
} pv_res_targets_t;

/* `residency_group NAME CODE ...` */
typedef struct pv_res_group_s {
    const char *name;
    pv_jurset_t set;
    pv_conf_src_t src;
} pv_res_group_t;

/* The http block's residency settings. */
typedef struct pv_res_http_s {
    pv_res_group_t *groups;    /* residency_group, in order */
    int ngroups;
    int gateway_jur;           /* gateway_jurisdiction; PV_JUR_NONE */
    pv_conf_src_t gateway_src;
    pv_cidr_t *trusted;        /* trusted_network */
    int ntrusted;
    int require_tls;           /* residency_require_tls; default off */
    int used;                  /* some location has a residency scope */
} pv_res_http_t;

/* ---- codes and data (residency_data.c) ---- */

/* The index of an assigned ISO 3166-1 alpha-2 code (upper case, or lower
 * case accepted), or PV_JUR_NONE. */
int pv_jur_code(const char *s);
/* The two letters of index j, NUL-terminated, into out[3] ("--" for none). */
const char *pv_jur_text(int j, char out[3]);
/* A built-in group ("EEA", "EU"): its codes separated by spaces, or NULL. */
const char *pv_res_builtin_group(const char *name);
/* When the built-in groups were last checked against their sources. */
extern const char pv_res_groups_date[];
/* A rough place for a jurisdiction: the centre of its area and the
 * distance within which most of it lies. */
typedef struct pv_jur_place_s {
    char cc[3];
    double lat, lon;  /* degrees */
    int radius_km;
} pv_jur_place_t;
/* The place of j, or NULL when the table has none. */
const pv_jur_place_t *pv_jur_place(int j);
/* Great-circle distance between two places, km. */
double pv_jur_distance_km(const pv_jur_place_t *a, const pv_jur_place_t *b);
/* Where the table's numbers come from. */
extern const char pv_jur_places_source[];

/* ---- the routes of a config (residency.c) ---- */

/* One server a request of a scope can reach, and how. */
typedef struct pv_res_reach_s {
    const pv_server_t *srv;          /* the server block */
    const pv_location_t *from;       /* the location the request is in */
    const pv_residency_t *scope;     /* its residency */
    const char *route;               /* the hops, as text */
    const pv_location_t *to;         /* the location that proxies */
    const pv_proxy_pass_t *pp;       /* its proxy_pass */
    const pv_upstream_conf_t *ups;   /* NULL: a proxy_pass with variables and no residency_targets */
    const pv_upstream_server_t *us;  /* the server (NULL with ups NULL) */
    int allowed;                     /* jurisdiction declared and in the scope */
    const char *why;                 /* why it is allowed, or why not */
    int plain_untrusted;             /* reached without TLS, outside trusted_network */
    int mirror;                      /* by a mirror subrequest (a copy of the request) */
} pv_res_reach_t;

/* Called for each reach in turn; non-zero stops the walk. */
typedef int (*pv_res_visit_cb)(void *arg, const pv_res_reach_t *r);

/* Walk every location in a residency scope of c and call cb for every
 * server it can reach; scratch allocations from a. Returns what the last
 * cb returned (0 when the walk went through). */
int pv_residency_walk(const pv_conf_t *c, pv_arena_t *a, pv_res_visit_cb cb, void *arg);
/* The map of c's residency scopes as JSON (residency_map.c):
 * {"gateway", "groups_date", "reaches": [...], "lifted": [...]}, one
 * reach per server a scope's location can reach. A new reference, or
 * NULL without an http block or on allocation failure; scratch from a. */
struct json_t *pv_residency_map(const pv_conf_t *c, pv_arena_t *a);
/* Whether the scope of a merged location is active (residency and not off). */
static inline int pv_residency_active(const pv_loc_conf_t *lc)
{
    return lc->residency && !lc->residency->off;
}
/* Whether a request in this location's scope has its client address
 * anonymised in logs (residency_log_addr anon, the default). */
static inline int pv_residency_anon(const pv_loc_conf_t *lc)
{
    return pv_residency_active(lc) && lc->residency_log_addr != PV_RES_LOG_FULL;
}
/* Whether addr (a sockaddr) lies in one of the networks. */
int pv_res_trusted(const pv_cidr_t *nets, int n, const struct sockaddr *sa);

#endif
