/* Location lookup with NGINX's rules (ngx_http_core_find_location), on
 * the snapshot as it is. The router runs it for every request; the
 * residency check runs the same code on the URIs of internal redirects,
 * so both agree on where a URI lands. Regexes run with one pcre2
 * match-data block per thread, made on first use. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "locfind.h"

#include <pcre2.h>
#include <string.h>

static __thread pcre2_match_data *tls_md;

/* 1 if re matches subject; errors (match limits) count as no match. */
int pv_conf_re_match(void *re, pv_str_t subject)
{
    if (!re)
        return 0;
    if (!tls_md) {
        /* one ovector pair is enough: only whether it matched is used */
        tls_md = pcre2_match_data_create(1, NULL);
        if (!tls_md)
            return 0;
    }
    int rc = pcre2_match((const pcre2_code *)re, (PCRE2_SPTR)subject.p, subject.len, 0, 0, tls_md, NULL);
    return rc >= 0;
}

void pv_conf_locfind_thread_cleanup(void)
{
    pcre2_match_data_free(tls_md);
    tls_md = NULL;
}

static int is_static(const pv_location_t *l)
{
    return l->match == PV_LOC_PREFIX || l->match == PV_LOC_EXACT || l->match == PV_LOC_PREFIX_STOP;
}

/* One level of the search (a server's locations, or those nested in one
 * location), as ngx_http_core_find_location(): the static locations
 * (exact, longest prefix, the slash redirect), then the locations nested
 * in the longest prefix; unless an exact match or the slash redirect
 * ended it there, this level's regexes in order (skipped after a `^~`
 * prefix), whose match is searched into in turn. NULL when nothing at or
 * below this level matches. */
static pv_location_t *find_in(pv_location_t *const *locs, int n, const pv_location_t *outer, pv_str_t uri,
                              int *redirect, int *done)
{
    pv_location_t *longest = NULL;
    pv_location_t *rd_exact = NULL, *rd_incl = NULL;
    int nregex = 0;

    for (int i = 0; i < n; i++) {
        pv_location_t *l = locs[i];
        if (l->outer != outer || l->named)
            continue;
        if (!is_static(l)) {
            nregex++;
            continue;
        }
        size_t len = l->name.len;
        if (len == uri.len + 1 && l->name.p[len - 1] == '/' && memcmp(l->name.p, uri.p, uri.len) == 0) {
            /* a candidate for the auto redirect of uri to uri + "/" */
            if (l->match == PV_LOC_EXACT)
                rd_exact = rd_exact ? rd_exact : l;
            else
                rd_incl = rd_incl ? rd_incl : l;
            continue;
        }
        if (len > uri.len || memcmp(l->name.p, uri.p, len) != 0)
            continue;
        if (l->match == PV_LOC_EXACT) {
            if (len == uri.len) {
                *done = 1;
                return l;
            }
            continue;
        }
        if (!longest || len > longest->name.len)
            longest = l;
    }

    if (!longest || longest->name.len != uri.len) {
        /* NGINX joins an exact and a prefix location of one name into one
         * tree node whose auto_redirect is either's; the exact one serves */
        if ((rd_exact && rd_exact->auto_redirect) || (rd_incl && rd_incl->auto_redirect)) {
            *redirect = 1;
            *done = 1;
            return rd_exact ? rd_exact : rd_incl;
        }
    }
    pv_location_t *found = longest;
    if (longest && longest->nchildren) {
        pv_location_t *in = find_in(longest->children, longest->nchildren, longest, uri, redirect, done);
        if (*done)
            return in;
        if (in)
            found = in;
    }
    if (longest && longest->match == PV_LOC_PREFIX_STOP)
        return found;
    for (int i = 0; nregex && i < n; i++) {
        pv_location_t *l = locs[i];
        if (l->outer != outer || l->named || is_static(l) || !pv_conf_re_match(l->re, uri))
            continue;
        *done = 1;
        if (l->nchildren) {
            int d = 0;
            pv_location_t *in = find_in(l->children, l->nchildren, l, uri, redirect, &d);
            return in ? in : l;
        }
        return l;
    }
    return found;
}

pv_location_t *pv_conf_find_location(const pv_server_t *srv, pv_str_t uri, int *redirect)
{
    int done = 0;
    *redirect = 0;
    if (!srv)
        return NULL;
    return find_in(srv->locations, srv->nlocations, NULL, uri, redirect, &done);
}

