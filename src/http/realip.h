/* The client address a trusted proxy reports (ngx_http_realip_module):
 * set_real_ip_from, real_ip_header, real_ip_recursive. The request's
 * address ($remote_addr, $remote_port, access checks, limits, log lines)
 * becomes the reported one; $realip_remote_addr / _port keep the
 * connection's. */
#ifndef PV_REALIP_H
#define PV_REALIP_H

#include "server.h"

/* What the request's address was before realip changed it. */
typedef struct pv_realip_s {
    struct sockaddr_in6 sa;     /* the new address (r->peer points here) */
    const struct sockaddr *orig; /* the connection's address */
    char orig_text[48];
    uint16_t orig_port;
} pv_realip_t;

/* The worker module: a post-read handler with the server's settings and
 * an access handler with the location's (before limits and checks). */
extern pv_module_t pv_http_realip_module;

/* Walk the request's c->header fields (last first) from the address in
 * *cur while it is trusted by c->from, as ngx_http_get_forwarded_addr()
 * does: PV_OK when *cur changed. The geo module's `proxy` uses it too. */
int pv_realip_fields(const pv_request_t *r, struct sockaddr_in6 *cur, const pv_realip_conf_t *c);

#endif
