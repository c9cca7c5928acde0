#include "anon.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int pv_anon_addr_bin(uint8_t *addr, size_t len)
{
    if (len == 4) {
        addr[3] = 0;
        return 0;
    }
    if (len != 16)
        return -1;
    if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0)
        addr[15] = 0; /* the IPv4 address inside: its /24 */
    else
        memset(addr + 6, 0, 10);
    return 0;
}

/* Text of the anonymised binary address of family af. */
static size_t anon_text(int af, uint8_t *addr, char *out, size_t cap)
{
    if (cap < PV_ANON_TEXT_MAX)
        return 0;
    pv_anon_addr_bin(addr, af == AF_INET ? 4 : 16);
    if (!inet_ntop(af, addr, out, (socklen_t)cap))
        return 0;
    return strlen(out);
}

size_t pv_anon_addr_sa(const struct sockaddr *sa, char *out, size_t cap)
{
    uint8_t a[16];
    if (sa && sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return anon_text(AF_INET, a, out, cap);
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return anon_text(AF_INET6, a, out, cap);
    }
    return 0;
}

size_t pv_anon_addr_text(const char *text, size_t len, char *out, size_t cap)
{
    char buf[PV_ANON_TEXT_MAX];
    uint8_t a[16];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, a) == 1)
        return anon_text(AF_INET, a, out, cap);
    if (inet_pton(AF_INET6, buf, a) == 1)
        return anon_text(AF_INET6, a, out, cap);
    return 0;
}
