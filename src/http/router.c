/* Virtual-server and location lookup. Linear scans over the snapshot's
 * arrays: configs hold tens of names and locations, and a scan of short
 * memcmp()s beats building and chasing a tree at that size. */
#include "router.h"
#include <arpa/inet.h>
#include <stdio.h>
#include "../core/tls.h"
#include "uri.h"
#include "uvars.h"
#include "../config/locfind.h"

void pv_router_thread_cleanup(void)
{
    pv_conf_locfind_thread_cleanup();
}

/* The server named host, and through *via the regex name that chose it
 * (NULL for an exact or wildcard name). */
static pv_server_t *match_server(const pv_listen_group_t *g, pv_str_t host,
                                 const pv_server_name_t **via)
{
    *via = NULL;
    pv_server_t *head = NULL, *tail = NULL;
    size_t head_len = 0, tail_len = 0;

    for (int i = 0; i < g->nservers; i++) {
        pv_server_t *s = g->servers[i];
        for (int j = 0; j < s->nnames; j++) {
            const pv_server_name_t *sn = &s->names[j];
            pv_str_t n = sn->name;
            switch (sn->kind) {
            case PV_SN_EXACT:
                if (n.len == host.len && (n.len == 0 || memcmp(n.p, host.p, n.len) == 0))
                    return s;
                break;
            case PV_SN_WILD_HEAD:
                /* ".example.com": any depth of subdomain, not the bare name */
                if (n.len && n.p[0] == '*') {
                    n.p++;
                    n.len--;
                }
                if (host.len > n.len && n.len > head_len &&
                    memcmp(host.p + host.len - n.len, n.p, n.len) == 0) {
                    head = s;
                    head_len = n.len;
                }
                break;
            case PV_SN_WILD_TAIL:
                /* "www.example.": the star stands for one or more labels */
                if (n.len && n.p[n.len - 1] == '*')
                    n.len--;
                if (host.len > n.len && n.len > tail_len && memcmp(host.p, n.p, n.len) == 0) {
                    tail = s;
                    tail_len = n.len;
                }
                break;
            default:
                break;
            }
        }
    }
    if (head)
        return head;
    if (tail)
        return tail;
    if (host.len) {
        for (int i = 0; i < g->nservers; i++) {
            pv_server_t *s = g->servers[i];
            for (int j = 0; j < s->nnames; j++) {
                if (s->names[j].kind == PV_SN_REGEX && pv_conf_re_match(s->names[j].re, host)) {
                    *via = &s->names[j];
                    return s;
                }
            }
        }
    }
    return NULL;
}

pv_server_t *pv_router_match_server(const pv_listen_group_t *g, pv_str_t host)
{
    const pv_server_name_t *via;
    return match_server(g, host, &via);
}

pv_server_t *pv_router_find_server(const pv_listen_group_t *g, pv_str_t host)
{
    pv_server_t *s = pv_router_match_server(g, host);
    if (s)
        return s;
    return g->default_srv ? g->default_srv : (g->nservers ? g->servers[0] : NULL);
}

pv_server_t *pv_router_request_server(pv_request_t *r, const pv_listen_group_t *g, pv_str_t host)
{
    const pv_server_name_t *via;
    pv_server_t *s = match_server(g, host, &via);
    if (!s)
        return g->default_srv ? g->default_srv : (g->nservers ? g->servers[0] : NULL);
    if (via && via->rx && (via->rx->ncaptures || via->rx->nnames))
        pv_regex_exec(r, via->rx, host);
    return s;
}

pv_location_t *pv_router_find_location(const pv_server_t *srv, pv_str_t uri, int *redirect)
{
    return pv_conf_find_location(srv, uri, redirect);
}

pv_str_t pv_router_location_url(const pv_request_t *r, pv_str_t path, int escape, pv_str_t args)
{
    const pv_hdr_conf_t *hc = r->loc ? &r->loc->conf.hdr : r->srv ? &r->srv->conf.hdr : NULL;
    size_t elen = escape ? pv_uri_escape(NULL, path.p, path.len) : path.len;
    pv_str_t host = {NULL, 0};
    char port[8] = "", local[128];
    int absolute = path.len && path.p[0] == '/' && (!hc || hc->absolute_redirect);
    int tls = r->xprt && pv_tls_ssl(r->xprt);
    if (absolute) {
        if (hc && hc->server_name_in_redirect) {
            host = r->srv ? r->srv->first_name : (pv_str_t){"", 0};
        } else if (r->host.len) {
            host = r->host;
        } else {
            /* no Host: the address the connection arrived on */
            int v6 = strchr(r->local_text, ':') && strncmp(r->local_text, "unix:", 5) != 0;
            int n = snprintf(local, sizeof(local), v6 ? "[%s]" : "%s", r->local_text);
            host = (pv_str_t){local, n > 0 ? PV_MIN((size_t)n, sizeof(local) - 1) : 0};
        }
        /* a unix domain socket has no port to name */
        if ((!hc || hc->port_in_redirect) && r->local_port && r->local_port != (tls ? 443 : 80))
            snprintf(port, sizeof(port), ":%u", (unsigned)r->local_port);
    }
    size_t plen = strlen(port);
    size_t slen = absolute ? (tls ? 8 : 7) : 0;
    char *buf = pv_arena_alloc(r->arena, slen + host.len + plen + elen + (args.len ? 1 + args.len : 0) + 1);
    char *p = buf;
    if (absolute) {
        memcpy(p, tls ? "https://" : "http://", slen);
        p += slen;
        if (host.len)
            memcpy(p, host.p, host.len);
        p += host.len;
        memcpy(p, port, plen);
        p += plen;
    }
    if (escape) {
        p += pv_uri_escape(p, path.p, path.len);
    } else if (path.len) {
        memcpy(p, path.p, path.len);
        p += path.len;
    }
    if (args.len) {
        *p++ = '?';
        memcpy(p, args.p, args.len);
        p += args.len;
    }
    *p = '\0';
    return (pv_str_t){buf, (size_t)(p - buf)};
}
