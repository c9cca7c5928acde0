/* Built-in response pages and reason phrases. */
#include "errpage.h"
#include <stdio.h>
#include <string.h>
#include "../core/common.h"
#include "response.h"

const char *pv_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Time-out";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "";
    }
}

/* Page titles differ from status lines in a few places ("302 Found",
 * "401 Authorization Required"), as in NGINX. */
static const char *page_title(int status)
{
    switch (status) {
    case 301: return "301 Moved Permanently";
    case 302: return "302 Found";
    case 303: return "303 See Other";
    case 307: return "307 Temporary Redirect";
    case 308: return "308 Permanent Redirect";
    case 400: return "400 Bad Request";
    case 401: return "401 Authorization Required";
    case 402: return "402 Payment Required";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Not Allowed";
    case 406: return "406 Not Acceptable";
    case 408: return "408 Request Time-out";
    case 409: return "409 Conflict";
    case 410: return "410 Gone";
    case 411: return "411 Length Required";
    case 412: return "412 Precondition Failed";
    case 413: return "413 Request Entity Too Large";
    case 414: return "414 Request-URI Too Large";
    case 415: return "415 Unsupported Media Type";
    case 416: return "416 Requested Range Not Satisfiable";
    case 421: return "421 Misdirected Request";
    case 425: return "425 Too Early";
    case 429: return "429 Too Many Requests";
    case 431: return "431 Request Header Fields Too Large";
    case 500: return "500 Internal Server Error";
    case 501: return "501 Not Implemented";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Temporarily Unavailable";
    case 504: return "504 Gateway Time-out";
    case 505: return "505 HTTP Version Not Supported";
    case 507: return "507 Insufficient Storage";
    default: return NULL;
    }
}

/* NGINX's own codes for TLS errors and too many fields, answered as 400
 * with a line of their own on the page (ngx_http_special_response.c). */
static const char *tls_error_text(int status)
{
    switch (status) {
    case PV_HTTPS_CERT_ERROR: return "The SSL certificate error";
    case PV_HTTPS_NO_CERT: return "No required SSL certificate was sent";
    case PV_HTTP_TO_HTTPS: return "The plain HTTP request was sent to HTTPS port";
    case PV_HTTP_HEADER_TOO_LARGE: return "Request Header Or Cookie Too Large";
    default: return NULL;
    }
}

int pv_errpage_status(int status)
{
    return tls_error_text(status) ? 400 : status;
}

int pv_errpage_keepalive_ok(int status)
{
    switch (status) {
    case PV_HTTPS_CERT_ERROR:
    case PV_HTTPS_NO_CERT:
    case PV_HTTP_TO_HTTPS:
    case PV_HTTP_HEADER_TOO_LARGE:
    case 400:
    case 413:
    case 414:
    case 431:
    case 500:
    case 501:
        return 0;
    default:
        return 1;
    }
}

ssize_t pv_errpage_page(int status, const char *token, char *buf, size_t cap)
{
    if (!token)
        token = PV_NAME;
    const char *text = tls_error_text(status);
    if (text) {
        int n = snprintf(buf, cap,
                         "<html>\r\n<head><title>400 %s</title></head>\r\n<body>\r\n"
                         "<center><h1>400 Bad Request</h1></center>\r\n<center>%s</center>\r\n"
                         "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
                         text, text, token);
        return n < 0 || (size_t)n >= cap ? -1 : n;
    }
    const char *title = page_title(status);
    if (!title)
        return 0;
    int n = snprintf(buf, cap,
                     "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n"
                     "<center><h1>%s</h1></center>\r\n"
                     "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n",
                     title, title, token);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

void pv_errpage_head(int status, const char *location, ssize_t page_len, pv_resp_head_t *h)
{
    *h = (pv_resp_head_t){
        .status = pv_errpage_status(status),
        .content_type = page_len > 0 ? PV_STR("text/html") : (pv_str_t){NULL, 0},
        .content_length = page_len,
        .location = location ? (pv_str_t){location, strlen(location)} : (pv_str_t){NULL, 0},
    };
}

ssize_t pv_errpage_build(int status, int keepalive, const char *date, const char *location, int head_only,
                         char *buf, size_t cap)
{
    char body[512];
    ssize_t blen = pv_errpage_page(status, NULL, body, sizeof(body));
    if (blen < 0)
        return -1;
    pv_resp_head_t h;
    pv_errpage_head(status, location, blen, &h);
    pv_str_t d = {date ? date : "", strnlen(date ? date : "", 64)};
    h.keepalive_header = 0;
    ssize_t n = pv_http_write_head(&h, d, keepalive, buf, cap);
    if (n < 0)
        return -1;
    if (!head_only && blen) {
        if ((size_t)n + (size_t)blen > cap)
            return -1;
        memcpy(buf + n, body, (size_t)blen);
        n += blen;
    }
    return n;
}
