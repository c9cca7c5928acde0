/* `proxy_pass URL`: http:// or https:// to an upstream block, a host and
 * port (an implicit upstream, resolved at load), a Unix-domain socket
 * (http://unix:/path[:/uri]), or a URL with variables, evaluated per
 * request (proxy/target.c). The URI part's rules are checked here; the
 * target is found once the whole file is read (load.c). */
#include "conf_int.h"
#include "conf_bind.h"

#include <string.h>
#include <strings.h>

/* Whether the literal url[0..lit) and the scheme agree where both have
 * characters: the evaluated URL may still begin with the scheme. */
static int prefix_fits(const char *url, size_t lit, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(url, scheme, lit < n ? lit : n) == 0;
}

/* proxy_pass with variables: the URL is evaluated per request, and its
 * host looked up among the upstream blocks, else resolved (the proxy's
 * target.c). The scheme, when written out, decides the TLS settings. */
static int proxy_pass_vars(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_location_t *loc, const char *url)
{
    pv_proxy_pass_t *pp = pv_arena_calloc(cx->a, sizeof(*pp));
    pp->ssl = strncasecmp(url, "https://", 8) == 0;
    /* the text before the first variable must be able to begin one of
     * the schemes ("http:/$uri" can); the whole URL is checked per request */
    size_t lit = strcspn(url, "$");
    if (!prefix_fits(url, lit, "http://") && !prefix_fits(url, lit, "https://"))
        return pv_conf_error(cx, &nd->src, "invalid URL prefix in \"%s\"", url);
    pp->cv = pv_arena_calloc(cx->a, sizeof(*pp->cv));
    if (pv_conf_compile(cx, nd, pp->cv, url, nd->args[1].len) != PV_OK)
        return PV_ERR;
    pp->url = (pv_str_t){pv_arena_strdup(cx->a, url), nd->args[1].len};
    pp->host = "";
    pp->src = nd->src;
    loc->proxy_pass = pp;
    return PV_OK;
}

/* proxy_pass http://unix:/path[:/uri]: an implicit upstream named
 * "unix:/path"; the Host sent is "localhost", as NGINX sends. */
static int proxy_pass_unix(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, pv_proxy_pass_t *pp,
                           const char *hp, const char *uri, const pv_conf_addr_t *un)
{
    const char *end = *uri ? uri - 1 : uri;
    pp->proxy_host = PV_STR("localhost");
    pp->url = (pv_str_t){pv_arena_strdup(cx->a, ARG(nd, 1)), nd->args[1].len};
    pp->host = pv_arena_strndup(cx->a, hp, (size_t)(end - hp));
    pp->src = nd->src;
    cx->loc->proxy_pass = pp;
    pv_conf_pass_ref_t *r = pv_conf_push(cx->tmp, &cx->passes, &cx->npasses, sizeof(*r));
    r->pp = pp;
    r->host = (char *)pp->host;
    r->src = nd->src;
    r->un = *un;
    return PV_OK;
}

void pv_conf_pass_target(pv_conf_ctx_t *cx, pv_location_t *loc, pv_proxy_pass_t *pp, const pv_conf_node_t *nd,
                         const char *url, char *host, int port)
{
    pp->url = (pv_str_t){pv_arena_strdup(cx->a, url), nd->args[1].len};
    pp->host = host;
    pp->src = nd->src;
    loc->proxy_pass = pp;
    pv_conf_pass_ref_t *r = pv_conf_push(cx->tmp, &cx->passes, &cx->npasses, sizeof(*r));
    r->pp = pp;
    r->host = host;
    r->port = port;
    r->src = nd->src;
}

int pv_conf_set_proxy_pass(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_location_t *loc = cx->loc;
    const char *url = ARG(nd, 1);
    if (loc->proxy_pass)
        return DUP(cx, nd);
    if (strchr(url, '$'))
        return proxy_pass_vars(cx, nd, loc, url);
    int tls = strncasecmp(url, "https://", 8) == 0;
    if (!tls && strncasecmp(url, "http://", 7) != 0)
        return pv_conf_error(cx, &nd->src, "invalid URL prefix");
    const char *hp = url + (tls ? 8 : 7), *uri = hp + strcspn(hp, "/?");
    pv_conf_addr_t un = {.len = 0};
    if (strncasecmp(hp, "unix:", 5) == 0) {
        /* http://unix:/path[:/uri]: the path ends at the next ':' */
        const char *colon = strchr(hp + 5, ':');
        uri = colon ? colon + 1 : hp + strlen(hp);
        const char *err = pv_conf_unix_addr(hp + 5, (size_t)((colon ? colon : uri) - hp - 5), &un);
        if (err)
            return pv_conf_error(cx, &nd->src, "%s in upstream \"%s\"", err, hp);
    }
    pv_proxy_pass_t *pp = pv_arena_calloc(cx->a, sizeof(*pp));
    pp->ssl = tls;
    if (*uri) {
        if (loc->match == PV_LOC_REGEX || loc->match == PV_LOC_REGEX_ICASE || loc->parent || loc->named)
            return pv_conf_error(cx, &nd->src,
                                 "\"proxy_pass\" cannot have URI part in location given by regular "
                                 "expression, or inside named location, or inside \"if\" "
                                 "statement, or inside \"limit_except\" block");
        pp->has_uri = 1;
        pp->uri = (pv_str_t){pv_arena_strdup(cx->a, uri), strlen(uri)};
    }
    if (un.len)
        return proxy_pass_unix(cx, nd, pp, hp, uri, &un);
    char *host;
    int port;
    if (pv_conf_split_hostport(cx->a, hp, (size_t)(uri - hp), &host, &port) != 0)
        return pv_conf_error(cx, &nd->src, "invalid port in upstream \"%s\"", hp);
    if (!*host)
        return pv_conf_error(cx, &nd->src, "no host in upstream \"%s\"", hp);
    size_t hlen = (size_t)(uri - hp);
    /* $proxy_host leaves out the scheme's own port */
    const char *dport = tls ? ":443" : ":80";
    size_t dlen = strlen(dport);
    if (port == (tls ? 443 : 80) && hlen > dlen && memcmp(hp + hlen - dlen, dport, dlen) == 0)
        hlen -= dlen;
    pp->proxy_host = (pv_str_t){pv_arena_strndup(cx->a, hp, hlen), hlen};
    pv_conf_pass_target(cx, loc, pp, nd, url, host, port);
    return PV_OK;
}

/* proxy_bind ADDR [transparent] | off, as NGINX's upstream bind slot: an
 * address with variables is parsed per request. */
int pv_conf_bind(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const pv_bind_conf_t **out)
{
    *out = NULL;
    if (nd->nargs == 2 && strcmp(ARG(nd, 1), "off") == 0)
        return PV_OK;
    pv_bind_conf_t *b = pv_arena_calloc(cx->a, sizeof(*b));
    pv_cv_t *cv = pv_arena_calloc(cx->a, sizeof(*cv));
    if (pv_conf_compile(cx, nd, cv, ARG(nd, 1), nd->args[1].len) != PV_OK)
        return PV_ERR;
    if (!cv->is_const)
        b->cv = cv;
    else if (pv_net_parse_addr(ARG(nd, 1), nd->args[1].len, &b->addr) != 0)
        return pv_conf_error(cx, &nd->src, "invalid address \"%s\"", ARG(nd, 1));
    if (nd->nargs == 3) {
        if (strcmp(ARG(nd, 2), "transparent") != 0)
            return pv_conf_error(cx, &nd->src, "invalid parameter \"%s\"", ARG(nd, 2));
        b->addr.transparent = 1;
    }
    *out = b;
    return PV_OK;
}

int pv_conf_set_proxy_bind(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_loc_conf_t *lc = cx->lc;
    if (lc->proxy_bind_set)
        return DUP(cx, nd);
    lc->proxy_bind_set = 1;
    return pv_conf_bind(cx, nd, &lc->proxy_bind);
}
