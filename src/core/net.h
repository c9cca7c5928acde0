/* Socket helpers: listeners, non-blocking connects, address text. */
#ifndef PV_NET_H
#define PV_NET_H

#include <sys/socket.h>
#include <stdint.h>

/* Open a non-blocking listening socket on addr with SO_REUSEPORT (one per
 * worker shares the port) and the given backlog. Returns fd or -1 with an
 * explanation in err. */
int pv_net_listen(const struct sockaddr *addr, socklen_t len, int backlog, char *err, size_t errlen);
/* Start a non-blocking connect. Returns fd (connection may still be in
 * progress) or -1 with errno set. */
int pv_net_connect(const struct sockaddr *addr, socklen_t len);
/* Format the address part ("127.0.0.1", "::1") and return the port. */
uint16_t pv_net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);
/* Pending socket error (SO_ERROR), 0 if none. */
int pv_net_sock_error(int fd);

#endif
