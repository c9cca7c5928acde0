/* Accepting client connections and the PROXY protocol header that may
 * come before a connection's own bytes. */
#ifndef PV_ACCEPT_H
#define PV_ACCEPT_H

#include "server.h"

/* Accept handler for listening sockets. */
void pv_server_accept_cb(pv_io_t *io, unsigned events);
/* The io callback of a connection on a `listen ... proxy_protocol`
 * address until its header is read; pv_server_conn_begin() follows. */
void pv_http_pp_io_cb(pv_io_t *io, unsigned events);

#endif
