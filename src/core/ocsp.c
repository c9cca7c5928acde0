#include "ocsp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>

#include "common.h"

static int bad_byte(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f;
}

static int parse_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* "HOST[:PORT]" or "[V6][:PORT]" into u. */
static int parse_hostport(const char *p, size_t n, pv_ocsp_url_t *u, const char **why)
{
    const char *name = p, *colon;
    size_t namelen;
    if (n && p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb) {
            *why = "invalid host";
            return PV_ERR;
        }
        name = p + 1;
        namelen = (size_t)(rb - name);
        colon = rb + 1 < p + n ? rb + 1 : NULL;
        if (colon && *colon != ':') {
            *why = "invalid host";
            return PV_ERR;
        }
    } else {
        colon = memchr(p, ':', n);
        namelen = colon ? (size_t)(colon - p) : n;
    }
    if (namelen == 0) {
        *why = "no host";
        return PV_ERR;
    }
    size_t hostlen = colon ? (size_t)(colon - p) : n;
    if (namelen >= PV_OCSP_HOST_MAX || hostlen >= PV_OCSP_HOST_MAX) {
        *why = "invalid host";
        return PV_ERR;
    }
    for (size_t i = 0; i < namelen; i++) {
        if (bad_byte((unsigned char)name[i]) || name[i] == '[' || name[i] == ']' ||
            (name[i] == ':' && p[0] != '[')) {
            *why = "invalid host";
            return PV_ERR;
        }
    }
    u->port = 80;
    if (colon && (u->port = parse_port(colon + 1, (size_t)(p + n - colon - 1))) < 0) {
        *why = "invalid port";
        return PV_ERR;
    }
    memcpy(u->name, name, namelen);
    u->name[namelen] = '\0';
    memcpy(u->host, p, hostlen);
    u->host[hostlen] = '\0';
    return PV_OK;
}

int pv_ocsp_url_parse(const char *url, size_t len, pv_ocsp_url_t *u, const char **why)
{
    memset(u, 0, sizeof(*u));
    if (len <= 7 || strncasecmp(url, "http://", 7) != 0) {
        *why = "invalid URL prefix";
        return PV_ERR;
    }
    const char *p = url + 7, *end = url + len;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end;
    if (parse_hostport(p, (size_t)(hend - p), u, why) != PV_OK)
        return PV_ERR;
    size_t ulen = (size_t)(end - hend);
    if (ulen == 0) {
        memcpy(u->uri, "/", 2);
        return PV_OK;
    }
    if (ulen >= PV_OCSP_URI_MAX) {
        *why = "invalid URI";
        return PV_ERR;
    }
    for (size_t i = 0; i < ulen; i++) {
        if (bad_byte((unsigned char)hend[i])) {
            *why = "invalid URI";
            return PV_ERR;
        }
    }
    memcpy(u->uri, hend, ulen);
    u->uri[ulen] = '\0';
    return PV_OK;
}

long pv_ocsp_request_text(const pv_ocsp_url_t *u, const unsigned char *der, size_t len, char *out, size_t cap)
{
    if (len > 8192)
        return -1;
    unsigned char b64[8192 / 3 * 4 + 8];
    int n = EVP_EncodeBlock(b64, der, (int)len);
    size_t ulen = strlen(u->uri);
    int w = snprintf(out, cap, "GET %s%s", u->uri, ulen && u->uri[ulen - 1] == '/' ? "" : "/");
    if (w < 0 || (size_t)w >= cap)
        return -1;
    size_t at = (size_t)w;
    for (int i = 0; i < n; i++) {
        /* '+', '/' and '=' are escaped in a URI component */
        char c = (char)b64[i];
        int esc = c == '+' || c == '/' || c == '=';
        if (at + 4 >= cap)
            return -1;
        if (esc)
            at += (size_t)snprintf(out + at, cap - at, "%%%02X", (unsigned char)c);
        else
            out[at++] = c;
    }
    w = snprintf(out + at, cap - at, " HTTP/1.0\r\nHost: %s\r\n\r\n", u->host);
    if (w < 0 || (size_t)w >= cap - at)
        return -1;
    return (long)(at + (size_t)w);
}

/* "HTTP/D+.D+ DDD[ .text]" up to its LF: PV_OK with the code and *at
 * past the line, PV_AGAIN, or PV_ERR. */
static int status_line(const unsigned char *b, size_t len, size_t *at, int *code)
{
    size_t i = 0;
    if (len < 5)
        return memcmp(b, "HTTP/", len) == 0 ? PV_AGAIN : PV_ERR;
    if (memcmp(b, "HTTP/", 5) != 0)
        return PV_ERR;
    i = 5;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && b[i] >= '0' && b[i] <= '9')
            i++;
        if (i == len)
            return PV_AGAIN;
        if (i == start || (part == 0 && b[start] == '0') || b[i] != (part == 0 ? '.' : ' '))
            return PV_ERR;
        i++;
    }
    while (i < len && b[i] == ' ')
        i++;
    int c = 0;
    for (int k = 0; k < 3; k++, i++) {
        if (i == len)
            return PV_AGAIN;
        if (b[i] < '0' || b[i] > '9')
            return PV_ERR;
        c = c * 10 + (b[i] - '0');
    }
    if (i == len)
        return PV_AGAIN;
    if (b[i] != ' ' && b[i] != '.' && b[i] != '\r' && b[i] != '\n')
        return PV_ERR;
    const unsigned char *lf = memchr(b + i, '\n', len - i);
    if (!lf)
        return PV_AGAIN;
    const unsigned char *cr = memchr(b + i, '\r', (size_t)(lf - b) - i);
    if (cr && cr + 1 != lf)
        return PV_ERR;
    *code = c;
    *at = (size_t)(lf - b) + 1;
    return PV_OK;
}

static int name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* One field line from b[*at]: PV_OK (a field, checked), PV_DONE-like 1
 * at the empty line, PV_AGAIN, PV_ERR. */
static int field_line(const unsigned char *b, size_t len, size_t *at, pv_ocsp_http_t *h)
{
    const unsigned char *p = b + *at, *end = b + len;
    const unsigned char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return PV_AGAIN;
    const unsigned char *eol = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
    if (memchr(p, '\r', (size_t)(eol - p)))
        return PV_ERR;
    *at = (size_t)(lf - b) + 1;
    if (eol == p)
        return 1;
    const unsigned char *q = p;
    while (q < eol && name_byte(*q))
        q++;
    if (q == p || p[0] == '-')
        return PV_ERR;
    if (q == eol)
        return PV_OK; /* a name alone, as NGINX takes it */
    if (*q != ':')
        return PV_ERR;
    const unsigned char *v = q + 1, *ve = eol;
    while (v < ve && *v == ' ')
        v++;
    while (ve > v && ve[-1] == ' ')
        ve--;
    static const char ct[] = "application/ocsp-response";
    if (q - p == 12 && strncasecmp((const char *)p, "Content-Type", 12) == 0 &&
        ((size_t)(ve - v) != sizeof(ct) - 1 || strncasecmp((const char *)v, ct, sizeof(ct) - 1) != 0)) {
        h->ctype = (const char *)v;
        h->ctype_len = (size_t)(ve - v);
    }
    return PV_OK;
}

int pv_ocsp_http_parse(const unsigned char *buf, size_t len, pv_ocsp_http_t *h)
{
    memset(h, 0, sizeof(*h));
    size_t at = 0;
    int rc = status_line(buf, len, &at, &h->code);
    if (rc != PV_OK)
        return rc;
    for (;;) {
        rc = field_line(buf, len, &at, h);
        if (rc == 1) {
            h->body = at;
            return PV_OK;
        }
        if (rc != PV_OK)
            return rc;
    }
}
