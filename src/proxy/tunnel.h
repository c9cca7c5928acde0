/* The byte tunnel after a 101 Switching Protocols (WebSocket and other
 * upgrades), as NGINX's upgraded upstream handlers run it: bytes flow
 * both ways through one fixed buffer per direction, a side is read only
 * when what was read from it before has been written, and either side
 * closing (once its bytes are delivered) ends both; there is no
 * half-close. The client side is the request's body stream and response
 * calls, which after a 101 carry the connection's bytes as they are
 * (http/response.h), so the tunnel never sees the client's socket. */
#ifndef PV_TUNNEL_H
#define PV_TUNNEL_H

#include <stdint.h>

#include "../core/buf.h"
#include "../http/request.h"

struct pv_hreq_s;
struct pv_upconn_s;

/* How a tunnel runs. */
typedef struct pv_tunnel_conf_s {
    int64_t read_timeout;    /* proxy_read_timeout: the idle timeout, since the last bytes either way */
    int64_t send_timeout;    /* proxy_send_timeout: while the upstream takes nothing */
    const char *upstream;    /* the server's address, for log lines */
    uint64_t start_ns;       /* when the exchange began ($upstream_response_time at the end) */
} pv_tunnel_conf_t;

/* After the 101 head was queued to the client: relay between the client
 * and the upstream connection u, whose bytes after the 101 head are
 * b->pos..b->last. The tunnel takes over u and b and becomes the
 * request's handler; the handler it replaces gets its cleanup() once the
 * request is freed. The request ends with status 101 when the tunnel
 * closes; u is never pooled. */
void pv_tunnel_start(struct pv_hreq_s *hr, struct pv_upconn_s *u, pv_buf_t *b, const pv_tunnel_conf_t *cf);

#endif
