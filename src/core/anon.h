/* Client addresses made less identifying, for logs and for any module
 * that must not keep a whole address (data residency): an IPv4 address
 * keeps its /24 (the last byte becomes 0), an IPv6 address its /48 (the
 * last 80 bits become 0). An IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is treated as the IPv4 address it carries. No allocation; usable from
 * any thread. */
#ifndef PV_ANON_H
#define PV_ANON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest text pv_anon_addr_text() writes (an IPv6 text, NUL included). */
#define PV_ANON_TEXT_MAX 46

/* Zero the host part of a binary address in place: 4 bytes (IPv4) or 16
 * (IPv6). Returns 0, or -1 when len is neither. */
int pv_anon_addr_bin(uint8_t *addr, size_t len);

/* The anonymised text of sa (AF_INET or AF_INET6) into out (at least
 * PV_ANON_TEXT_MAX bytes), NUL-terminated; returns its length, or 0 for
 * another family. */
size_t pv_anon_addr_sa(const struct sockaddr *sa, char *out, size_t cap);

/* The anonymised text of an address given as text ("192.0.2.7",
 * "2001:db8::1"), NUL-terminated into out (at least PV_ANON_TEXT_MAX
 * bytes); returns its length, or 0 when text[0..len) is not an address. */
size_t pv_anon_addr_text(const char *text, size_t len, char *out, size_t cap);

#endif
