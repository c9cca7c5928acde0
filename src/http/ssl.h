/* TLS on the HTTP side: SNI picks the server block's certificates, and
 * the post-read checks of a TLS address (plain HTTP, client
 * certificates) with NGINX's answers. */
#ifndef PV_HTTP_SSL_H
#define PV_HTTP_SSL_H

#include "../config/conf.h"
#include "../core/module.h"

struct pv_hconn_s;

/* The worker module: registers the SNI function and the post-read check. */
extern pv_module_t pv_http_ssl_module;
/* At accept: a connection to a TLS address gets the TLS transport.
 * PV_ERR when out of memory. */
int pv_http_ssl_accept(struct pv_hconn_s *c, const pv_listen_group_t *g);

#endif
