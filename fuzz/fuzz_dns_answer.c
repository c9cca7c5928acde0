/* libFuzzer target: pv_dns_answer_parse() (src/core/dns_answer.c), the
 * reading of a name server's answer that the resolver trusts for the
 * addresses, SRV records and CNAME target it goes on with.
 *
 * The first byte picks the question's type (A, AAAA or SRV); the rest is
 * the message, asked about its own question's name when that reads, so
 * the answer section is reached. Checks: an accepted answer keeps at most
 * PV_RESOLVED_MAX addresses and records, each address of the asked
 * family, every name NUL-terminated inside its buffer, SRV targets never
 * empty, and the TTL not negative unless no record was read. */
#include <ares.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[] = {PV_DNS_T_A, PV_DNS_T_AAAA, PV_DNS_T_SRV};
    if (size < 1)
        return 0;
    int qtype = types[data[0] % 3];
    const unsigned char *m = data + 1;
    size_t len = size - 1;
    char name[256] = "example.net";
    char *q;
    long enc;
    if (len > 12 && ares_expand_name(m + 12, m, (int)len, &q, &enc) == ARES_SUCCESS) {
        if (strlen(q) < sizeof(name))
            strcpy(name, q);
        ares_free_string(q);
    }
    pv_dns_answer_t *a = malloc(sizeof(*a));
    if (!a)
        return 0;
    const char *err;
    if (pv_dns_answer_parse(m, len, name, qtype, a, &err) == 0) {
        if (err || a->naddrs < 0 || a->naddrs > PV_RESOLVED_MAX || a->nsrv < 0 || a->nsrv > PV_RESOLVED_MAX)
            abort();
        int family = qtype == PV_DNS_T_AAAA ? AF_INET6 : AF_INET;
        if (a->naddrs && (qtype == PV_DNS_T_SRV || a->addrs[0].ss_family != family))
            abort();
        for (int i = 0; i < a->naddrs; i++)
            if (a->addrs[i].ss_family != family)
                abort();
        if (!memchr(a->cname, 0, sizeof(a->cname)))
            abort();
        for (int i = 0; i < a->nsrv; i++)
            if (!memchr(a->srv[i].target, 0, sizeof(a->srv[i].target)) || a->srv[i].target[0] == '\0')
                abort();
        if (a->ttl < -1 || (a->rcode == 0 && a->nan > 0 && a->ttl < 0))
            abort();
    } else if (!err) {
        abort();
    }
    free(a);
    return 0;
}
