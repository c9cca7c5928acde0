/* Lingering close: a connection closed after its answer while the client
 * may still be sending (a body not read, the rest of a refused head) is
 * first half-closed and drained, so that the unread bytes do not make
 * the kernel reset it and destroy the answer in flight (NGINX's
 * lingering_close, lingering_time, lingering_timeout). */
#ifndef PV_HTTP_LINGER_H
#define PV_HTTP_LINGER_H

#include "server.h"

/* Whether connection c, about to be closed after a request that ran under
 * lc, lingers first: `always`, or `on` when the client has sent or may
 * still send bytes not read (body_unread: the request body was not read
 * whole). Never while the worker drains or once the client has closed. */
int pv_linger_wanted(const pv_hconn_t *c, const pv_loc_conf_t *lc, int body_unread);

/* Half-close c (its answer is all written) and read and drop what comes,
 * until the client closes, `timeout` ms pass without a byte
 * (lingering_timeout), or `time` ms pass in all (lingering_time); then
 * close it. c holds no request. */
void pv_linger_start(pv_hconn_t *c, int64_t time, int64_t timeout);

#endif
