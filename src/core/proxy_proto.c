/* The PROXY protocol header: see proxy_proto.h. The checks are NGINX's
 * (ngx_proxy_protocol.c): v1 addresses may hold only hex digits, ':' and
 * '.', ports are decimal up to 65535, the line ends in CRLF; a v2 header
 * is taken when its whole length is in. Unlike NGINX, a header that has
 * not all arrived yet is waited for rather than refused. */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

/* "broken header: "..."" with the bytes up to the first CR or LF, those
 * that are not printable escaped. */
static ssize_t broken(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    size_t o = (size_t)snprintf(err, errlen, "broken header: \"");
    for (size_t i = 0; i < len && buf[i] != '\r' && buf[i] != '\n' && o + 8 < errlen; i++) {
        if (buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '"' && buf[i] != '\\')
            err[o++] = (char)buf[i];
        else
            o += (size_t)snprintf(err + o, errlen - o, "\\x%02x", buf[i]);
    }
    snprintf(err + o, errlen - o, "\"");
    return -1;
}

/* An address up to the next space: NGX's characters only. */
static const uint8_t *v1_addr(const uint8_t *p, const uint8_t *last, char *out)
{
    const uint8_t *start = p;
    for (;; p++) {
        if (p == last)
            return NULL;
        uint8_t ch = *p;
        if (ch == ' ')
            break;
        if (ch != ':' && ch != '.' && !(ch >= 'a' && ch <= 'f') && !(ch >= 'A' && ch <= 'F') &&
            !(ch >= '0' && ch <= '9'))
            return NULL;
    }
    memcpy(out, start, (size_t)(p - start));
    out[p - start] = '\0';
    return p + 1;
}

/* Decimal digits up to sep, at most 65535. */
static const uint8_t *v1_port(const uint8_t *p, const uint8_t *last, uint16_t *port, uint8_t sep)
{
    unsigned n = 0;
    const uint8_t *start = p;
    for (; p < last && *p != sep; p++) {
        if (*p < '0' || *p > '9' || (n = n * 10 + (unsigned)(*p - '0')) > 65535)
            return NULL;
    }
    if (p == last || p == start)
        return NULL;
    *port = (uint16_t)n;
    return p + 1;
}

/* A whole v1 line, buf[0..last) ending in its LF. */
static ssize_t v1(const uint8_t *buf, const uint8_t *last, pv_pp_t *out, int *has, char *err, size_t errlen)
{
    const uint8_t *p = buf + 6;
    size_t len = (size_t)(last - p);
    if (len >= 7 && memcmp(p, "UNKNOWN", 7) == 0) {
        for (p += 7; p + 1 < last; p++)
            if (p[0] == '\r' && p[1] == '\n')
                return p + 2 - buf;
        return broken(buf, (size_t)(last - buf), err, errlen);
    }
    if (len < 5 || memcmp(p, "TCP", 3) != 0 || (p[3] != '4' && p[3] != '6') || p[4] != ' ')
        return broken(buf, (size_t)(last - buf), err, errlen);
    p += 5;
    if (!(p = v1_addr(p, last, out->src_addr)) || !(p = v1_addr(p, last, out->dst_addr)) ||
        !(p = v1_port(p, last, &out->src_port, ' ')) || !(p = v1_port(p, last, &out->dst_port, '\r')) ||
        p == last || *p++ != '\n')
        return broken(buf, (size_t)(last - buf), err, errlen);
    *has = 1;
    return p - buf;
}

static void v2_addr(int fam, const uint8_t *a, const uint8_t *port, char *text, uint16_t *out_port)
{
    inet_ntop(fam, a, text, PV_PP_V1_MAX + 1);
    *out_port = (uint16_t)(port[0] << 8 | port[1]);
}

/* A v2 header: the 16 bytes of its start are in. */
static ssize_t v2(const uint8_t *buf, size_t len, pv_pp_t *out, int *has, char *err, size_t errlen)
{
    unsigned version = buf[12] >> 4;
    if (version != 2) {
        snprintf(err, errlen, "unknown PROXY protocol version: %u", version);
        return -1;
    }
    size_t plen = (size_t)(buf[14] << 8 | buf[15]);
    if (16 + plen > PV_PP_MAX) {
        snprintf(err, errlen, "header is too large");
        return -1;
    }
    if (len < 16 + plen)
        return 0;
    ssize_t end = (ssize_t)(16 + plen);
    /* only the PROXY command over a stream carries addresses */
    if ((buf[12] & 0x0f) != 1 || (buf[13] & 0x0f) != 1)
        return end;
    const uint8_t *a = buf + 16;
    switch (buf[13] >> 4) {
    case 1: /* AF_INET: 4 + 4 + 2 + 2 */
        if (plen < 12)
            break;
        v2_addr(AF_INET, a, a + 8, out->src_addr, &out->src_port);
        v2_addr(AF_INET, a + 4, a + 10, out->dst_addr, &out->dst_port);
        *has = 1;
        return end;
    case 2: /* AF_INET6: 16 + 16 + 2 + 2 */
        if (plen < 36)
            break;
        v2_addr(AF_INET6, a, a + 32, out->src_addr, &out->src_port);
        v2_addr(AF_INET6, a + 16, a + 34, out->dst_addr, &out->dst_port);
        *has = 1;
        return end;
    default: /* AF_UNSPEC, AF_UNIX: no address NGINX takes */
        return end;
    }
    snprintf(err, errlen, "PROXY protocol v2 header too short for its addresses: %zu bytes", plen);
    return -1;
}

ssize_t pv_pp_parse(const uint8_t *buf, size_t len, pv_pp_t *out, int *has, char *err, size_t errlen)
{
    *has = 0;
    if (len > 0 && buf[0] == '\r') {
        size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
        if (memcmp(buf, v2_sig, n) != 0)
            return broken(buf, len, err, errlen);
        return len < 16 ? 0 : v2(buf, len, out, has, err, errlen);
    }
    size_t n = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", n) != 0)
        return broken(buf, len, err, errlen);
    const uint8_t *lf = memchr(buf, '\n', len < PV_PP_V1_MAX ? len : PV_PP_V1_MAX);
    if (!lf)
        return len >= PV_PP_V1_MAX ? broken(buf, len, err, errlen) : 0;
    if (lf - buf < 7) /* NGINX wants 8 bytes at least */
        return broken(buf, len, err, errlen);
    return v1(buf, lf + 1, out, has, err, errlen);
}
