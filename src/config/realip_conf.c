/* The realip directives (ngx_http_realip_module's): set_real_ip_from,
 * real_ip_header, real_ip_recursive, merged from http to server to
 * location like the other location settings. */
#include "conf_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void pv_conf_realip_init(pv_realip_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->header_kind = PV_UNSET;
    c->recursive = PV_UNSET;
}

static pv_realip_conf_t *rconf(void *base)
{
    return &((pv_loc_conf_t *)base)->realip;
}

int pv_conf_parse_cidr(const char *text, pv_cidr_t *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof(addr))
        return PV_ERR;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    int max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return PV_ERR;
    }
    int bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || b > max)
            return PV_ERR;
        bits = (int)b;
    }
    out->bits = (uint8_t)bits;
    /* NGINX warns of bits set beyond the mask and clears them */
    int nbytes = out->family == AF_INET ? 4 : 16;
    for (int i = 0; i < nbytes; i++) {
        int keep = bits - i * 8;
        uint8_t m = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
        out->addr[i] &= m;
    }
    return PV_OK;
}

static int set_from_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_realip_conf_t *c = rconf(base);
    pv_cidr_t *k = pv_conf_push(cx->a, &c->from, &c->nfrom, sizeof(*k));
    const char *v = ARG(nd, 1);
    if (strcmp(v, "unix:") == 0) {
        k->family = AF_UNIX;
        return PV_OK;
    }
    if (strcmp(v, "all") != 0 && pv_conf_parse_cidr(v, k) == PV_OK)
        return PV_OK;
    /* a host name: each of its addresses, whole (NGINX resolves it once, here) */
    c->nfrom--;
    pv_conf_addr_t addrs[16];
    int n = strcmp(v, "*") == 0 ? 0 : pv_conf_resolve(cx, v, 0, addrs, (int)PV_NELEM(addrs));
    if (n == 0)
        return pv_conf_error(cx, &nd->src, "host not found in set_real_ip_from \"%s\"", v);
    for (int i = 0; i < n; i++) {
        k = pv_conf_push(cx->a, &c->from, &c->nfrom, sizeof(*k));
        memset(k, 0, sizeof(*k));
        const struct sockaddr *sa = (const struct sockaddr *)&addrs[i].ss;
        k->family = (uint8_t)sa->sa_family;
        k->bits = sa->sa_family == AF_INET ? 32 : 128;
        memcpy(k->addr, sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                                 : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
               sa->sa_family == AF_INET ? 4 : 16);
    }
    return PV_OK;
}

static int set_header_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    pv_realip_conf_t *c = rconf(base);
    if (c->header_kind != PV_UNSET)
        return DUP(cx, nd);
    const char *v = ARG(nd, 1);
    if (strcasecmp(v, "X-Real-IP") == 0) {
        c->header_kind = PV_REALIP_XREALIP;
    } else if (strcasecmp(v, "X-Forwarded-For") == 0) {
        c->header_kind = PV_REALIP_XFF;
    } else if (strcmp(v, "proxy_protocol") == 0) {
        c->header_kind = PV_REALIP_PROXY; /* the PROXY protocol header's source */
    } else {
        c->header_kind = PV_REALIP_OTHER;
    }
    c->header = pv_arena_strdup(cx->a, v);
    return PV_OK;
}

static int set_recursive_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd, void *base)
{
    return pv_conf_flag(cx, nd, &rconf(base)->recursive);
}

#define NONE PV_BASE_LOC, 0

static const pv_conf_cmd_t realip_cmds[] = {
    {"set_real_ip_from", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_from_cb, NONE, NULL},
    {"real_ip_header", PV_CTX_ANY_LOC, PV_ARGS_TAKE1, set_header_cb, NONE, NULL},
    {"real_ip_recursive", PV_CTX_ANY_LOC, PV_ARGS_FLAG, set_recursive_cb, NONE, NULL},
};

const pv_conf_module_t pv_conf_realip_module = {"realip", realip_cmds, PV_NELEM(realip_cmds)};

void pv_conf_realip_merge(pv_realip_conf_t *c, const pv_realip_conf_t *p)
{
    if (c->nfrom == 0 && p) {
        c->from = p->from;
        c->nfrom = p->nfrom;
    }
    if (c->header_kind == PV_UNSET) {
        c->header_kind = p && p->header_kind != PV_UNSET ? p->header_kind : PV_REALIP_XREALIP;
        c->header = p && p->header ? p->header : "X-Real-IP";
    }
    if (c->recursive == PV_UNSET)
        c->recursive = p && p->recursive != PV_UNSET ? p->recursive : 0;
}
