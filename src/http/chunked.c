#include "chunked.h"

#include "headers.h"

enum {
    S_SIZE = 0,   /* reading hex digits */
    S_EXT,        /* after size: extensions until CR */
    S_SIZE_LF,    /* CR seen after size line, need LF */
    S_DATA,       /* chunk data */
    S_DATA_CR,    /* CR after data */
    S_DATA_LF,    /* LF after data */
    S_TRAILER,    /* start of a trailer line (or the final CRLF) */
    S_TRAILER_LINE, /* inside a trailer field line */
    S_TRAILER_LF, /* CR seen in a trailer line */
    S_END_LF      /* CR of the final empty line seen */
};

void pv_chunked_init(pv_chunked_t *c)
{
    memset(c, 0, sizeof(*c));
}

/* A byte of a trailer line, into the caller's buffer while it fits. */
static void keep(pv_chunked_t *c, char ch)
{
    if (!c->tbuf || c->tover)
        return;
    if (c->tlen == c->tcap) {
        c->tover = 1;
        return;
    }
    c->tbuf[c->tlen++] = ch;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Chunk extensions, RFC 9112 section 7.1.1:
 *   *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
 * Returns 0 to go on, 1 when the CR ending the line is reached, -1 on a
 * syntax error. c->ext holds the sub-state. */
enum { E_START = 0, E_WS, E_SEMI, E_NAME, E_NAME_WS, E_EQ, E_TOKEN, E_QUOTED, E_QUOTED_ESC };

static int ext_byte(pv_chunked_t *c, unsigned char ch)
{
    int ws = ch == ' ' || ch == '\t';
    switch (c->ext) {
    case E_START:
    case E_WS:
        if (ws)
            c->ext = E_WS;
        else if (ch == ';')
            c->ext = E_SEMI;
        else if (ch == '\r' && c->ext == E_START)
            return 1;
        else
            return -1;
        return 0;
    case E_SEMI:
        if (ws)
            return 0;
        if (!pv_http_tchar[ch])
            return -1;
        c->ext = E_NAME;
        return 0;
    case E_NAME:
    case E_NAME_WS:
        if (ch == '\r' && c->ext == E_NAME)
            return 1;
        if (ws)
            c->ext = E_NAME_WS;
        else if (ch == '=')
            c->ext = E_EQ;
        else if (ch == ';')
            c->ext = E_SEMI;
        else if (!pv_http_tchar[ch] || c->ext == E_NAME_WS)
            return -1;
        return 0;
    case E_EQ:
        if (ws)
            return 0;
        if (ch == '"')
            c->ext = E_QUOTED;
        else if (pv_http_tchar[ch])
            c->ext = E_TOKEN;
        else
            return -1;
        return 0;
    case E_TOKEN:
        if (ch == '\r')
            return 1;
        if (ws)
            c->ext = E_WS;
        else if (ch == ';')
            c->ext = E_SEMI;
        else if (!pv_http_tchar[ch])
            return -1;
        return 0;
    case E_QUOTED:
        if (ch == '"')
            c->ext = E_START;
        else if (ch == '\\')
            c->ext = E_QUOTED_ESC;
        else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
        return 0;
    case E_QUOTED_ESC:
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
        c->ext = E_QUOTED;
        return 0;
    }
    return -1;
}

ssize_t pv_chunked_decode(pv_chunked_t *c, const char *in, size_t len, pv_str_t *spans, int *nspans,
                          int maxspans)
{
    size_t i = 0;
    int ns = 0;

    while (i < len && !c->done) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case S_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->remaining >> 56)
                    return -1; /* beyond 2^60 bytes: refuse rather than wrap */
                c->remaining = (c->remaining << 4) | (uint64_t)v;
                c->linelen++;
                i++;
                if (c->linelen > PV_CHUNKED_LINE_MAX)
                    return -1;
                break;
            }
            if (c->linelen == 0)
                return -1; /* no digits */
            if (ch == '\r') {
                c->state = S_SIZE_LF;
                i++;
                break;
            }
            if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = S_EXT;
                c->ext = E_START;
                break; /* reprocess in S_EXT */
            }
            return -1;
        }
        case S_EXT: {
            int rc = ext_byte(c, ch);
            if (rc < 0)
                return -1;
            i++;
            if (rc == 1) {
                c->state = S_SIZE_LF;
                break;
            }
            if (++c->linelen > PV_CHUNKED_LINE_MAX)
                return -1;
            break;
        }
        case S_SIZE_LF:
            if (ch != '\n')
                return -1;
            i++;
            c->linelen = 0;
            c->state = c->remaining ? S_DATA : S_TRAILER;
            break;
        case S_DATA: {
            if (ns == maxspans)
                goto out;
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            spans[ns].p = in + i;
            spans[ns].len = n;
            ns++;
            i += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = S_DATA_CR;
            break;
        }
        case S_DATA_CR:
            if (ch != '\r')
                return -1;
            c->state = S_DATA_LF;
            i++;
            break;
        case S_DATA_LF:
            if (ch != '\n')
                return -1;
            c->state = S_SIZE;
            i++;
            break;
        case S_TRAILER:
            if (ch == '\r') {
                c->state = S_END_LF;
                i++;
                break;
            }
            if (!pv_http_tchar[ch])
                return -1; /* obs-fold or garbage */
            c->state = S_TRAILER_LINE;
            c->linelen = 0;
            break;
        case S_TRAILER_LINE:
            if (ch == '\r') {
                c->state = S_TRAILER_LF;
            } else if (ch == '\n' || ch == 0 || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return -1;
            } else {
                keep(c, (char)ch);
            }
            if (++c->linelen > PV_CHUNKED_LINE_MAX)
                return -1;
            i++;
            break;
        case S_TRAILER_LF:
            if (ch != '\n')
                return -1;
            keep(c, '\n');
            c->state = S_TRAILER;
            i++;
            break;
        case S_END_LF:
            if (ch != '\n')
                return -1;
            c->done = 1;
            i++;
            break;
        }
    }
out:
    *nspans = ns;
    return (ssize_t)i;
}
