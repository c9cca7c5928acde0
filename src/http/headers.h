/* Header-field helpers shared by the server side and the proxy: syntax
 * checks (RFC 9110 §5), Content-Length parsing, Connection-header tokens,
 * hop-by-hop names and the IMF-fixdate formatter. pv_request_header() is
 * declared in request.h and defined in headers.c. */
#ifndef PV_HEADERS_H
#define PV_HEADERS_H

#include <stdint.h>
#include <time.h>
#include "../core/common.h"
#include "request.h"

/* r's Cookie fields, which HTTP/2 sends one per crumb, joined into the
 * first as NGINX does ("a=1; b=2"), the others dropped; from a. */
void pv_headers_join_cookies(pv_request_t *r, pv_arena_t *a);

/* Length of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). */
#define PV_HTTP_DATE_LEN 29

/* 1 for the bytes of an RFC 9110 token (tchar), else 0. */
extern const uint8_t pv_http_tchar[256];
/* 1 if name is a non-empty RFC 9110 token. */
int pv_header_name_valid(pv_str_t name);
/* 1 if value holds only field-vchar, SP, HTAB or obs-text (no CR, LF, NUL). */
int pv_header_value_valid(pv_str_t value);
/* Strict Content-Length: one or more digits, nothing else, no overflow.
 * Returns 0 and sets *out, or -1. */
int pv_http_parse_content_length(pv_str_t v, int64_t *out);
/* Next comma-separated token of a Connection-style list: skips empty
 * elements and OWS. Returns 1 and sets *tok, or 0 at the end; *rest moves on. */
int pv_conn_next_token(pv_str_t *rest, pv_str_t *tok);
/* 1 if the list value holds tok (case-insensitive), e.g. "close". */
int pv_conn_has_token(pv_str_t value, const char *tok);
/* 1 if name is listed in any Connection field among hs[0..n). */
int pv_conn_lists_name(const pv_header_t *hs, int n, pv_str_t name);
/* 1 if name is a hop-by-hop field of RFC 9110 §7.6.1 (Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade). */
int pv_header_is_hop_by_hop(pv_str_t name);
/* Write t as IMF-fixdate into out (NUL-terminated); returns 29. */
size_t pv_http_date(time_t t, char out[30]);
/* Where pv_http_head_crlf() is in one head, kept across the reads that
 * bring it. Offsets count from the head's first byte. */
typedef struct pv_crlf_s {
    uint32_t off;    /* next byte to look at */
    uint32_t added;  /* CRs inserted into this head */
    uint8_t started; /* the first line (request or status line) has begun */
    uint8_t cr;      /* the byte before off is a CR */
    uint8_t blank;   /* the line being read holds nothing but CRs so far */
    uint8_t done;    /* the blank line that ends the head has been seen */
} pv_crlf_t;

/* Start st for a head whose first byte is at offset off. */
void pv_http_crlf_init(pv_crlf_t *st, uint32_t off);
/* Turn each bare LF of the head in p[st->off, *last) into CRLF, in place
 * (RFC 9112 2.2: a recipient may take LF alone as a line terminator), so
 * that llhttp sees CRLF heads only. The head ends at its first empty line
 * after the first line (empty lines before it are skipped, as NGINX skips
 * them, and made CRLF like the others). Bytes after the head's end are
 * moved behind the inserted CRs as one block, unchanged. A CR ending one
 * call's bytes and an LF starting the next make CRLF. Returns 0 when done
 * (*last and st->added grown by the CRs inserted), or the number of CRs
 * to insert when *last plus that exceeds cap: nothing is changed then,
 * and a call with more room does the work. */
size_t pv_http_head_crlf(char *p, size_t *last, size_t cap, pv_crlf_t *st);
/* Every line of a head of len bytes ends in CRLF: no bare LF, no bare CR,
 * no obs-fold (RFC 9112 2.2, 5.2). llhttp outside strict mode tolerates
 * some forms of each, and a CR that ends the head early hides a second
 * message. Heads pass pv_http_head_crlf() first, so a bare LF here is
 * one it left alone (a leading empty line), and bare CRs and obs-fold are
 * what this refuses. */
int pv_http_head_line_endings_ok(const char *p, size_t len);
/* v without the spaces and tabs around it (OWS). */
pv_str_t pv_http_trim_ows(pv_str_t v);

#endif
