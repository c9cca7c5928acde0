/* libFuzzer target: pv_net_parse_addr() (src/core/net.c), the local
 * address of proxy_bind, parsed from a variable's value per request.
 *
 * Checks: an accepted value is an IPv4 or IPv6 address of its family's
 * length, and its text (address, with the port when one was given)
 * parses back to the same address and port. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv_net_bind_t a, b;
    if (pv_net_parse_addr((const char *)data, size, &a) != 0)
        return 0;
    const struct sockaddr *sa = (const struct sockaddr *)&a.ss;
    if (!((sa->sa_family == AF_INET && a.len == sizeof(struct sockaddr_in)) ||
          (sa->sa_family == AF_INET6 && a.len == sizeof(struct sockaddr_in6))))
        abort();
    char host[64], text[80];
    uint16_t port = pv_net_addr_text(sa, host, sizeof(host));
    int n = sa->sa_family == AF_INET6 ? snprintf(text, sizeof(text), "[%s]:%u", host, port)
                                      : snprintf(text, sizeof(text), "%s:%u", host, port);
    if (!port)
        n = sa->sa_family == AF_INET6 ? snprintf(text, sizeof(text), "[%s]", host) : snprintf(text, sizeof(text), "%s", host);
    if (pv_net_parse_addr(text, (size_t)n, &b) != 0 || b.len != a.len || memcmp(&a.ss, &b.ss, a.len) != 0)
        abort();
    return 0;
}
