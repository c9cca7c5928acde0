/* grpc_pass: gRPC (HTTP/2) to gRPC upstreams, as ngx_http_grpc_module. */
#ifndef PV_GRPC_H
#define PV_GRPC_H

#include "../config/conf.h"
#include "proxy.h"

/* Whether a response field stays out of the client's head: NGINX's
 * default set (Date, Server, X-Accel-*) unless grpc_pass_header names
 * it, and the grpc_hide_header names. */
int pv_grpc_hidden(const pv_grpc_conf_t *gc, pv_str_t name);

/* The module: the content handler of grpc_pass locations. */
extern pv_module_t pv_grpc_module;

#endif
