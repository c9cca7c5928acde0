#include "dns_answer.h"

#include <ares.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define HDR_LEN 12
#define RR_FIXED 10 /* type, class, TTL, data length */

static unsigned be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The name at p expanded into out (size outlen); its length in the
 * message in *enc. -1 when it is malformed or too long. */
static int name_at(const unsigned char *p, const unsigned char *m, size_t len, char *out, size_t outlen, long *enc)
{
    char *s;
    if (p >= m + len || ares_expand_name(p, m, (int)len, &s, enc) != ARES_SUCCESS)
        return -1;
    size_t l = strlen(s);
    int rc = l < outlen ? 0 : -1;
    if (rc == 0)
        memcpy(out, s, l + 1);
    ares_free_string(s);
    return rc;
}

static void add_addr(pv_dns_answer_t *a, const unsigned char *rd, int family)
{
    if (a->naddrs >= PV_RESOLVED_MAX)
        return;
    struct sockaddr_storage *ss = &a->addrs[a->naddrs];
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, rd, 4);
        a->lens[a->naddrs++] = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, rd, 16);
        a->lens[a->naddrs++] = sizeof(*s6);
    }
}

/* One record of the answer section: type, its data rd (rdlen bytes). */
static const char *record(pv_dns_answer_t *a, const unsigned char *m, size_t len, int qtype, unsigned type,
                          const unsigned char *rd, unsigned rdlen)
{
    long enc;
    switch (type) {
    case PV_DNS_T_A:
    case PV_DNS_T_AAAA: {
        unsigned want = type == PV_DNS_T_A ? 4 : 16;
        if ((int)type != qtype)
            return type == PV_DNS_T_A ? "unexpected A record in DNS response" : "unexpected AAAA record in DNS response";
        if (rdlen != want)
            return type == PV_DNS_T_A ? "invalid A record in DNS response" : "invalid AAAA record in DNS response";
        add_addr(a, rd, type == PV_DNS_T_A ? AF_INET : AF_INET6);
        return NULL;
    }
    case PV_DNS_T_CNAME:
        if (name_at(rd, m, len, a->cname, sizeof(a->cname), &enc) < 0 || a->cname[0] == '\0')
            return "invalid CNAME record in DNS response";
        return NULL;
    case PV_DNS_T_SRV: {
        if (qtype != PV_DNS_T_SRV)
            return "unexpected SRV record in DNS response";
        if (rdlen < 7)
            return "invalid SRV record in DNS response";
        if (a->nsrv >= PV_RESOLVED_MAX)
            return NULL;
        pv_srv_t *s = &a->srv[a->nsrv];
        if (name_at(rd + 6, m, len, s->target, sizeof(s->target), &enc) < 0 || (size_t)enc + 6 > rdlen)
            return "invalid SRV record in DNS response";
        if (s->target[0] == '\0')
            return NULL; /* "." says the service is not there (RFC 2782) */
        s->priority = (uint16_t)be16(rd);
        s->weight = (uint16_t)be16(rd + 2);
        s->port = (uint16_t)be16(rd + 4);
        a->nsrv++;
        return NULL;
    }
    default:
        return NULL; /* DNAME and the like: their CNAME carries the answer */
    }
}

int pv_dns_answer_parse(const unsigned char *m, size_t len, const char *name, int qtype, pv_dns_answer_t *a,
                        const char **err)
{
    memset(a, 0, sizeof(*a));
    a->ttl = -1;
    *err = "short DNS response";
    if (len < HDR_LEN || len > 65535)
        return -1;
    a->rcode = m[3] & 0x0f;
    unsigned qd = be16(m + 4), an = be16(m + 6);
    a->nan = (int)an;
    const unsigned char *p = m + HDR_LEN, *end = m + len;
    char owner[256];
    long enc;
    if (qd != 1) {
        *err = "invalid number of questions in DNS response";
        return -1;
    }
    if (name_at(p, m, len, owner, sizeof(owner), &enc) < 0 || enc > end - p - 4)
        return -1;
    p += enc;
    if (strcasecmp(owner, name) != 0 || (int)be16(p) != qtype) {
        *err = "unexpected DNS response for the name";
        return -1;
    }
    p += 4;
    if (a->rcode != 0) {
        *err = NULL;
        return 0;
    }
    for (unsigned i = 0; i < an; i++) {
        if (name_at(p, m, len, owner, sizeof(owner), &enc) < 0 || enc > end - p || end - p - enc < RR_FIXED)
            return -1;
        p += enc;
        unsigned type = be16(p), class = be16(p + 2), rdlen = be16(p + 8);
        int64_t ttl = (int32_t)((uint32_t)be16(p + 4) << 16 | be16(p + 6));
        p += RR_FIXED;
        if (rdlen > (size_t)(end - p))
            return -1;
        if (class != 1) {
            *err = "unexpected RR class in DNS response";
            return -1;
        }
        if (ttl < 0)
            ttl = 0;
        if (a->ttl < 0 || ttl < a->ttl)
            a->ttl = ttl;
        const char *e = record(a, m, len, qtype, type, p, rdlen);
        if (e) {
            *err = e;
            return -1;
        }
        p += rdlen;
    }
    *err = NULL;
    return 0;
}
