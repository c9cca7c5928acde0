/* realip: the client address from a trusted proxy's header, as NGINX's
 * realip module finds it. Post-read uses the server block's settings; a
 * request it did not change is looked at again at the start of the access
 * phase with its location's (NGINX's preaccess), before limits and
 * checks key on the address. */
#include "realip.h"

#include <arpa/inet.h>
#include <string.h>

#include "../config/conf.h"
#include "../core/net.h"
#include "../core/proxy_proto.h"
#include "../core/xprt.h"
#include "phases.h"

static int cidr_match(const struct sockaddr *sa, const pv_cidr_t *from, int n)
{
    const uint8_t *a = NULL;
    int fam = sa ? sa->sa_family : AF_UNSPEC;
    if (fam == AF_INET)
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    else if (fam == AF_INET6)
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    for (int i = 0; i < n; i++) {
        const pv_cidr_t *c = &from[i];
        if (c->family != fam)
            continue;
        if (fam == AF_UNIX)
            return 1;
        if (!a)
            continue;
        int bits = c->bits, k = 0;
        for (; bits >= 8; bits -= 8, k++)
            if (a[k] != c->addr[k])
                break;
        if (bits >= 8)
            continue;
        if (bits == 0 || ((a[k] ^ c->addr[k]) & (uint8_t)(0xff << (8 - bits))) == 0)
            return 1;
    }
    return 0;
}

/* "ADDR", "ADDR:PORT", "[ADDR6]" or "[ADDR6]:PORT" (ngx_parse_addr_port). */
static int parse_addr(const char *p, size_t n, struct sockaddr_in6 *out)
{
    char buf[64];
    unsigned port = 0;
    const char *addr = p;
    size_t alen = n;
    if (n && p[0] == '[') {
        const char *e = memchr(p, ']', n);
        if (!e)
            return -1;
        addr = p + 1;
        alen = (size_t)(e - addr);
        const char *rest = e + 1;
        size_t rlen = n - (size_t)(rest - p);
        if (rlen && (rest[0] != ':' || rlen < 2))
            return -1;
        for (size_t i = 1; i < rlen; i++) {
            if (rest[i] < '0' || rest[i] > '9' || (port = port * 10 + (unsigned)(rest[i] - '0')) > 65535)
                return -1;
        }
    } else {
        const char *c = memchr(p, ':', n);
        if (c && !memchr(c + 1, ':', n - (size_t)(c + 1 - p))) { /* one colon: IPv4 with a port */
            alen = (size_t)(c - p);
            if (c + 1 == p + n)
                return -1;
            for (const char *q = c + 1; q < p + n; q++) {
                if (*q < '0' || *q > '9' || (port = port * 10 + (unsigned)(*q - '0')) > 65535)
                    return -1;
            }
        }
    }
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, addr, alen);
    buf[alen] = '\0';
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &out->sin6_addr) == 1) {
        out->sin6_family = AF_INET6;
        out->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

enum { FWD_DECLINED = 0, FWD_DONE };

/* One header's list, right to left (ngx_http_get_forwarded_addr_internal):
 * while the address in *cur is trusted, the next one to the left takes
 * its place (only the first without real_ip_recursive). */
static int forwarded(pv_str_t v, struct sockaddr_in6 *cur, const pv_realip_conf_t *c)
{
    int found = 0;
    size_t len = v.len;
    const char *s = v.p;
    do {
        if (!cidr_match((const struct sockaddr *)cur, c->from, c->nfrom))
            return found ? FWD_DONE : FWD_DECLINED;
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == ','))
            len--;
        size_t start = len;
        while (start > 0 && s[start - 1] != ' ' && s[start - 1] != ',')
            start--;
        struct sockaddr_in6 next;
        if (parse_addr(s + start, len - start, &next) < 0)
            return found ? FWD_DONE : FWD_DECLINED;
        *cur = next;
        found = 1;
        len = start;
    } while (c->recursive && len > 0);
    return FWD_DONE;
}

static int header_is(const pv_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name.len == n && strncasecmp(h->name.p, name, n) == 0;
}

int pv_realip_fields(const pv_request_t *r, struct sockaddr_in6 *cur, const pv_realip_conf_t *c)
{
    int changed = 0;
    /* the last field of that name first; more than one only with recursion */
    for (int i = r->nheaders - 1; i >= 0; i--) {
        if (!header_is(&r->headers[i], c->header))
            continue;
        int rc = forwarded(r->headers[i].value, cur, c);
        changed |= rc == FWD_DONE;
        if (!c->recursive || rc != FWD_DONE || c->header_kind != PV_REALIP_XFF)
            break;
    }
    return changed ? PV_OK : PV_ERR;
}

/* Apply c to the request: PV_OK when the address changed. */
static int realip(pv_hreq_t *hr, const pv_realip_conf_t *c)
{
    pv_request_t *r = &hr->r;
    if (c->nfrom == 0 || !r->peer)
        return PV_ERR;
    struct sockaddr_in6 cur;
    memset(&cur, 0, sizeof(cur));
    memcpy(&cur, r->peer, r->peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                          : r->peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(sa_family_t));
    int changed = 0;
    if (c->header_kind == PV_REALIP_PROXY) {
        /* the PROXY protocol header's source address and port, when the
         * connection's address is trusted */
        const pv_pp_t *pp = r->xprt ? r->xprt->pp : NULL;
        if (!pp || forwarded((pv_str_t){pp->src_addr, strlen(pp->src_addr)}, &cur, c) != FWD_DONE)
            return PV_ERR;
        ((struct sockaddr_in *)&cur)->sin_port = htons(pp->src_port); /* same place in sin6 */
        changed = 1;
    }
    if (!changed)
        changed = pv_realip_fields(r, &cur, c) == PV_OK;
    if (!changed)
        return PV_ERR;
    pv_realip_t *ri = pv_arena_alloc(r->arena, sizeof(*ri));
    if (!ri)
        return PV_ERR;
    ri->sa = cur;
    ri->orig = r->peer;
    memcpy(ri->orig_text, r->peer_text, sizeof(ri->orig_text));
    ri->orig_port = r->peer_port;
    r->realip = ri;
    r->peer = (const struct sockaddr *)&ri->sa;
    r->peer_port = pv_net_addr_text(r->peer, r->peer_text, sizeof(r->peer_text));
    return PV_OK;
}

static int post_read(pv_hreq_t *hr)
{
    if (hr->r.srv)
        realip(hr, &hr->r.srv->conf.realip);
    return PV_PHASE_NEXT;
}

static int preaccess(pv_hreq_t *hr)
{
    if (!hr->r.realip && hr->r.loc && !hr->sub)
        realip(hr, &hr->r.loc->conf.realip);
    return PV_PHASE_NEXT;
}

static int mod_init(void)
{
    pv_phases_register(PV_PHASE_POST_READ, post_read);
    pv_phases_register(PV_PHASE_ACCESS, preaccess);
    return PV_OK;
}

pv_module_t pv_http_realip_module = {
    .name = "http_realip",
    .init = mod_init,
};
