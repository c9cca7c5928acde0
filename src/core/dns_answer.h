/* A DNS answer to one question (A, AAAA or SRV), read as NGINX's
 * resolver reads it: the header's code, the records of the asked type
 * in the answer section, the last CNAME there (followed when no record
 * of the type came with it) and the least TTL of the section. Pure:
 * no I/O, no state; hostile input gives an error text, never a read
 * past the message. */
#ifndef PV_DNS_ANSWER_H
#define PV_DNS_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "resolver.h"

#define PV_DNS_T_A 1
#define PV_DNS_T_CNAME 5
#define PV_DNS_T_AAAA 28
#define PV_DNS_T_SRV 33

typedef struct pv_dns_answer_s {
    int rcode;             /* the header's RCODE (0: no error, 3: no such name, ...) */
    int nan;               /* records in the answer section */
    int naddrs;            /* A or AAAA records kept (port 0), PV_RESOLVED_MAX at most */
    struct sockaddr_storage addrs[PV_RESOLVED_MAX];
    socklen_t lens[PV_RESOLVED_MAX];
    int nsrv;              /* SRV records kept ("." targets left out) */
    pv_srv_t srv[PV_RESOLVED_MAX];
    char cname[256];       /* the last CNAME's target, "" when none */
    int64_t ttl;           /* least TTL of the answer's records (s), -1 when none */
} pv_dns_answer_t;

/* Read message m (len bytes), the answer to a question for name of type
 * qtype. 0, or -1 with *err saying what is wrong ("short DNS response",
 * "unexpected DNS response for the name", ...). */
int pv_dns_answer_parse(const unsigned char *m, size_t len, const char *name, int qtype, pv_dns_answer_t *a,
                        const char **err);

#endif
