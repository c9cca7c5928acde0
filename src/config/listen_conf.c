/* The socket parameters of `listen` (NGINX's ngx_http_core_listen):
 * backlog=, rcvbuf=, sndbuf=, deferred, bind, ipv6only=, so_keepalive=,
 * fastopen=. Messages are NGINX's. */
#include "conf_int.h"

#include <string.h>

/* so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt], times in seconds */
static int keepalive(const char *v, pv_net_lopts_t *o)
{
    if (strcmp(v, "on") == 0) {
        o->keepalive = 1;
        return PV_OK;
    }
    if (strcmp(v, "off") == 0) {
        o->keepalive = -1;
        return PV_OK;
    }
    /* each part may be empty, and the colons after the last one absent */
    int *dst[3] = {&o->keepidle, &o->keepintvl, &o->keepcnt};
    const char *p = v, *end = v + strlen(v);
    for (int i = 0; i < 3 && p < end; i++) {
        const char *colon = i < 2 ? memchr(p, ':', (size_t)(end - p)) : NULL;
        size_t len = (size_t)((colon ? colon : end) - p);
        if (len) {
            pv_str_t s = {p, len};
            int64_t n = i < 2 ? pv_conf_parse_msec(s) : pv_conf_parse_num(s);
            if (n < 0 || (i < 2 && memmem(p, len, "ms", 2)))
                return PV_ERR;
            n = i < 2 ? n / 1000 : n;
            if (n > 0x7fffffff)
                return PV_ERR;
            *dst[i] = (int)n;
        }
        p += len + (colon != NULL);
    }
    if (!o->keepidle && !o->keepintvl && !o->keepcnt)
        return PV_ERR;
    o->keepalive = 1;
    return PV_OK;
}

int pv_conf_listen_option(pv_conf_ctx_t *cx, const pv_conf_node_t *nd, const char *p, pv_listen_t *l)
{
    pv_net_lopts_t *o = &l->sock;
    const char *v;
    if ((v = pv_conf_param(p, "backlog"))) {
        int64_t n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n <= 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid backlog \"%s\"", p);
        o->backlog = (int)n;
    } else if ((v = pv_conf_param(p, "rcvbuf")) || (v = pv_conf_param(p, "sndbuf"))) {
        int64_t n = pv_conf_parse_size((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid %.6s \"%s\"", p, p);
        *(p[0] == 'r' ? &o->rcvbuf : &o->sndbuf) = (int)n;
    } else if (strcmp(p, "deferred") == 0) {
        o->deferred = 1;
    } else if (strcmp(p, "bind") == 0) {
        /* every address is bound on its own anyway */
    } else if (strcmp(p, "ipv6only=on") == 0 || strcmp(p, "ipv6only=off") == 0) {
        o->ipv6only = p[10] == 'n';
    } else if ((v = pv_conf_param(p, "so_keepalive"))) {
        if (keepalive(v, o) != PV_OK)
            return pv_conf_error(cx, &nd->src, "invalid so_keepalive value: \"%s\"", v);
    } else if ((v = pv_conf_param(p, "fastopen"))) {
        int64_t n = pv_conf_parse_num((pv_str_t){v, strlen(v)});
        if (n < 0 || n > 0x7fffffff)
            return pv_conf_error(cx, &nd->src, "invalid fastopen \"%s\"", p);
        o->fastopen = (int)n;
    } else {
        return PV_AGAIN;
    }
    l->sock_set = 1;
    return PV_OK;
}
