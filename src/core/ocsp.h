/* The text side of an OCSP fetch (ssl_stapling): the responder's URL
 * (`ssl_stapling_responder` or the certificate's AIA), the HTTP/1.0 GET
 * that carries the DER request, and the responder's answer up to its
 * body. Pure functions on bytes; the fetch itself is core/stapling.c. */
#ifndef PV_OCSP_H
#define PV_OCSP_H

#include <stddef.h>

#define PV_OCSP_HOST_MAX 256
#define PV_OCSP_URI_MAX 1024
#define PV_OCSP_RESPONSE_MAX 16384 /* the responder's whole answer, head and body */

/* A responder URL: "http://HOST[:PORT][/URI]". */
typedef struct pv_ocsp_url_s {
    char host[PV_OCSP_HOST_MAX];  /* as written, IPv6 in brackets (the Host field) */
    char name[PV_OCSP_HOST_MAX];  /* the host to connect to or resolve, without brackets */
    int port;                     /* 80 when none is given */
    char uri[PV_OCSP_URI_MAX];    /* "/" when none is given */
} pv_ocsp_url_t;

/* Parse url[0..len). PV_OK, or PV_ERR with *why: "invalid URL prefix"
 * (not http://), "no host", "invalid host", "invalid port", "invalid
 * URI", as NGINX words them after "ssl_stapling" ignored. */
int pv_ocsp_url_parse(const char *url, size_t len, pv_ocsp_url_t *u, const char **why);

/* The GET request for the DER OCSP request der[0..len) (base64, then
 * escaped as a URI component, after the URI and a '/'), as NGINX sends
 * it: HTTP/1.0 and a Host field. Written to out[0..cap) with a NUL;
 * its length, or -1 when it does not fit. */
long pv_ocsp_request_text(const pv_ocsp_url_t *u, const unsigned char *der, size_t len, char *out, size_t cap);

/* The responder's answer, read to its end. */
typedef struct pv_ocsp_http_s {
    int code;                  /* the status code */
    size_t body;               /* offset of the body */
    const char *ctype;         /* a Content-Type other than application/ocsp-response (for the message) */
    size_t ctype_len;
} pv_ocsp_http_t;

/* Parse buf[0..len), the whole answer. PV_OK: status line and fields
 * read (h->ctype set when the Content-Type is wrong: the caller refuses
 * it). PV_AGAIN: the head is not complete (the responder closed early).
 * PV_ERR: not an HTTP answer ("OCSP responder sent invalid response"). */
int pv_ocsp_http_parse(const unsigned char *buf, size_t len, pv_ocsp_http_t *h);

#endif
