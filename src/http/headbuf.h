/* The buffer an HTTP/1 request head is read into: its first size
 * (client_header_buffer_size), its growth up to
 * large_client_header_buffers, and the status for a head over the limit
 * (headbuf.c). */
#ifndef PV_HEADBUF_H
#define PV_HEADBUF_H

#include "server.h"

/* Grow c->in for need more bytes, crs of them CRs to insert before bare
 * LFs. 0, -1 at the limit, -2 when out of memory. */
int pv_head_grow(pv_hconn_t *c, size_t need, size_t crs);
/* Room to read more of a head into c->in, within the limit. */
size_t pv_head_room(const pv_hconn_t *c);
/* 414 or 431 for a head over the limit. */
int pv_head_too_big(const pv_hconn_t *c);
/* The first buffer for a head on c. */
pv_buf_t *pv_head_buf(pv_hconn_t *c);
/* The room NGINX's head buffer leaves behind hr's head: the body bytes
 * it reads with the head. */
size_t pv_head_body_room(const pv_hreq_t *hr);

#endif
