/* The PROXY protocol header (HAProxy's, versions 1 and 2) a load balancer
 * sends before a connection's own bytes, read as NGINX's
 * ngx_proxy_protocol_read() reads it: v1 "PROXY TCP4|TCP6 SRC DST SPORT
 * DPORT\r\n" or "PROXY UNKNOWN ...\r\n", v2 the binary header with the
 * PROXY command over TCP/IPv4 or TCP/IPv6. A LOCAL command, UNKNOWN, or
 * another family or transport is a valid header that carries no
 * addresses. TLVs are skipped. Pure functions: no I/O. */
#ifndef PV_PROXY_PROTO_H
#define PV_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PV_PP_V1_MAX 107   /* the longest v1 line, CRLF included */
#define PV_PP_MAX 4096     /* the longest header taken (v2 with its TLVs) */

/* What a header with addresses says. v1 addresses are kept as sent (NGINX
 * checks only their characters); v2 ones are written as text. */
typedef struct pv_pp_s {
    char src_addr[PV_PP_V1_MAX + 1];
    char dst_addr[PV_PP_V1_MAX + 1];
    uint16_t src_port, dst_port;
} pv_pp_t;

/* Parse the header at the start of buf[0..len). Returns its length (> 0),
 * with *has set to 1 and *out filled when it carries addresses, else 0;
 * 0 when the bytes so far are the start of a header that needs more; -1
 * when they are not a valid header, with err (at least 160 bytes) saying
 * why in NGINX's words. */
ssize_t pv_pp_parse(const uint8_t *buf, size_t len, pv_pp_t *out, int *has, char *err, size_t errlen);

#endif
