/* FastCGI records from an upstream (FastCGI 1.0, section 3.3 and 5):
 * each an 8-byte header (version, type, request id, content length,
 * padding length), its content and padding. STDOUT content is a CGI
 * response: header lines (LF or CRLF ends, as NGINX takes them) up to a
 * blank line, then the body. Status: gives the status, else Location:
 * makes it 302, else 200 (RFC 3875 6.3). */
#include "fcgi_rx.h"

#include <string.h>

void pv_fcgi_rx_init(pv_fcgi_rx_t *rx, pv_arena_t *a, size_t limit, pv_buf_t *out)
{
    memset(rx, 0, offsetof(pv_fcgi_rx_t, err));
    rx->errlen = 0;
    rx->err_ready = rx->head_ready = rx->head_done = rx->ended = rx->too_big = 0;
    rx->error = NULL;
    rx->arena = a;
    rx->limit = limit;
    rx->out = out;
}

size_t pv_fcgi_nv(uint8_t *dst, pv_str_t name, pv_str_t value)
{
    size_t n = (name.len > 127 ? 4 : 1) + (value.len > 127 ? 4 : 1) + name.len + value.len;
    if (!dst)
        return n;
    const pv_str_t *s[2] = {&name, &value};
    for (int i = 0; i < 2; i++) {
        size_t l = s[i]->len;
        if (l > 127) {
            *dst++ = (uint8_t)(((l >> 24) & 0x7f) | 0x80);
            *dst++ = (uint8_t)(l >> 16);
            *dst++ = (uint8_t)(l >> 8);
        }
        *dst++ = (uint8_t)l;
    }
    if (name.len)
        memcpy(dst, name.p, name.len);
    if (value.len)
        memcpy(dst + name.len, value.p, value.len);
    return n;
}

void pv_fcgi_header(uint8_t *dst, int type, size_t n, size_t pad)
{
    dst[0] = PV_FCGI_VERSION;
    dst[1] = (uint8_t)type;
    dst[2] = 0;
    dst[3] = PV_FCGI_REQUEST_ID;
    dst[4] = (uint8_t)(n >> 8);
    dst[5] = (uint8_t)n;
    dst[6] = (uint8_t)pad;
    dst[7] = 0;
}

static int is_tchar(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int three_digits(const char *p, size_t n)
{
    if (n < 3 || p[0] < '1' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
        (n > 3 && p[3] != ' '))
        return -1;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

static pv_str_t trim(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (pv_str_t){p, (size_t)(e - p)};
}

/* The head's lines, up to the blank line at its end: the fields and the
 * status. PV_FCGI_OK or PV_FCGI_ERR. */
static int parse_head(pv_fcgi_rx_t *rx, const char *p, const char *end)
{
    rx->fields = pv_arena_alloc(rx->arena, PV_FCGI_MAX_FIELDS * sizeof(*rx->fields));
    if (!rx->fields) {
        rx->error = "out of memory";
        return PV_FCGI_ERR;
    }
    int loc = 0;
    rx->status = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        if (le == p)
            break; /* the blank line */
        const char *c = memchr(p, ':', (size_t)(le - p));
        if (!c || c == p || rx->nfields == PV_FCGI_MAX_FIELDS || memchr(p, '\r', (size_t)(le - p)))
            goto invalid;
        for (const char *q = p; q < c; q++)
            if (!is_tchar((unsigned char)*q))
                goto invalid;
        pv_header_t *f = &rx->fields[rx->nfields++];
        f->name = (pv_str_t){p, (size_t)(c - p)};
        f->value = trim(c + 1, le);
        if (PV_STR_IEQ(f->name, "status")) {
            int s = three_digits(f->value.p, f->value.len);
            if (s < 0) {
                rx->error = "upstream sent invalid status";
                return PV_FCGI_ERR;
            }
            rx->status = s;
            rx->status_line = f->value;
        } else if (PV_STR_IEQ(f->name, "location")) {
            loc = 1;
        }
        p = nl + 1;
    }
    if (!rx->status)
        rx->status = loc ? 302 : 200;
    return PV_FCGI_OK;
invalid:
    rx->error = "upstream sent invalid header";
    return PV_FCGI_ERR;
}

/* STDOUT content before the head's end: kept until a blank line; the
 * bytes after it are body. Returns the bytes taken, or -1. */
static ssize_t head_bytes(pv_fcgi_rx_t *rx, const uint8_t *p, size_t n)
{
    if (!rx->head && !(rx->head = pv_arena_alloc(rx->arena, rx->limit + 1))) {
        rx->error = "out of memory";
        return -1;
    }
    size_t old = rx->headlen, k = PV_MIN(n, rx->limit - old);
    memcpy(rx->head + old, p, k);
    rx->headlen += k;
    if (old < 2 && rx->headlen >= 1 && (rx->head[0] == '\n' || (rx->headlen >= 2 && rx->head[0] == '\r' && rx->head[1] == '\n'))) {
        /* an empty head: the body starts at once */
        size_t j = rx->head[0] == '\n' ? 1 : 2;
        rx->status = 200;
        rx->nfields = 0;
        rx->head_done = rx->head_ready = 1;
        return (ssize_t)(j - old);
    }
    /* look for LF [CR] LF from where a new one could start */
    size_t from = old > 2 ? old - 2 : 0;
    for (size_t i = from; i < rx->headlen; i++) {
        if (rx->head[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < rx->headlen && rx->head[j] == '\r')
            j++;
        if (j < rx->headlen && rx->head[j] == '\n') {
            if (parse_head(rx, rx->head, rx->head + i + 1) != PV_FCGI_OK)
                return -1;
            rx->head_done = rx->head_ready = 1;
            return (ssize_t)(j + 1 - old);
        }
    }
    if (rx->headlen == rx->limit) {
        rx->too_big = 1;
        rx->error = "upstream sent too big header";
        return -1;
    }
    return (ssize_t)k;
}

static int record_start(pv_fcgi_rx_t *rx)
{
    const uint8_t *h = rx->hdr;
    if (h[0] != PV_FCGI_VERSION) {
        rx->error = "upstream sent unsupported FastCGI protocol version";
        return PV_FCGI_ERR;
    }
    if (h[2] != 0 || h[3] != PV_FCGI_REQUEST_ID) {
        rx->error = "upstream sent unexpected FastCGI request id";
        return PV_FCGI_ERR;
    }
    rx->type = h[1];
    rx->left = (uint16_t)(h[4] << 8 | h[5]);
    rx->pad = h[6];
    if (rx->type != PV_FCGI_STDOUT && rx->type != PV_FCGI_STDERR && rx->type != PV_FCGI_END_REQUEST) {
        rx->error = "upstream sent unexpected FastCGI record";
        return PV_FCGI_ERR;
    }
    if (rx->type == PV_FCGI_STDERR)
        rx->errlen = 0;
    return PV_FCGI_OK;
}

/* The end of a record's content: STDERR text is ready to log. */
static void record_end(pv_fcgi_rx_t *rx)
{
    if (rx->type == PV_FCGI_STDERR && rx->errlen)
        rx->err_ready = 1;
}

int pv_fcgi_rx_feed(pv_fcgi_rx_t *rx, const uint8_t *p, size_t len, size_t *used)
{
    size_t i = 0;
    while (i < len && !rx->ended && !rx->head_ready && !rx->err_ready) {
        if (rx->hlen < 8) {
            rx->hdr[rx->hlen++] = p[i++];
            if (rx->hlen == 8 && record_start(rx) != PV_FCGI_OK)
                break;
            if (rx->hlen == 8 && !rx->left && !rx->pad)
                goto next_record;
            continue;
        }
        if (rx->left) {
            size_t n = PV_MIN(len - i, (size_t)rx->left);
            if (rx->type == PV_FCGI_STDERR) {
                size_t k = PV_MIN(n, sizeof(rx->err) - rx->errlen);
                memcpy(rx->err + rx->errlen, p + i, k);
                rx->errlen += k;
            } else if (rx->type == PV_FCGI_END_REQUEST) {
                /* appStatus and protocolStatus: nothing acts on them */
            } else if (!rx->head_done) {
                ssize_t k = head_bytes(rx, p + i, n);
                if (k < 0)
                    break;
                n = (size_t)k;
            } else {
                n = PV_MIN(n, rx->out->size - rx->out->last);
                if (!n)
                    break; /* out is full: the caller takes it first */
                memcpy(rx->out->data + rx->out->last, p + i, n);
                rx->out->last += (uint32_t)n;
            }
            i += n;
            rx->left -= (uint16_t)n;
            if (rx->left)
                continue;
            record_end(rx);
            if (!rx->pad)
                goto next_record;
            continue;
        }
        {
            size_t n = PV_MIN(len - i, (size_t)rx->pad);
            i += n;
            rx->pad -= (uint8_t)n;
            if (rx->pad)
                continue;
        }
    next_record:
        if (rx->type == PV_FCGI_END_REQUEST)
            rx->ended = 1;
        rx->hlen = 0;
    }
    *used = i;
    return rx->error ? PV_FCGI_ERR : PV_FCGI_OK;
}
