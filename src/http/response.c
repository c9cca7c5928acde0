/* The HTTP/1.1 response head writer: one forward pass of memcpy into the
 * caller's buffer, nothing formatted with printf. */
#include "response.h"

#include <string.h>
#include "errpage.h"

/* Bounded writer: the first overflow marks it and later writes are no-ops. */
typedef struct wr_s {
    char *p;   /* next byte */
    char *end; /* one past the buffer */
    int over;  /* the buffer was too small */
} wr_t;

static inline void put(wr_t *w, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL then (no extra lines) */
    if (pv_unlikely(w->over || (size_t)(w->end - w->p) < n)) {
        w->over = 1;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static inline void put_str(wr_t *w, pv_str_t s)
{
    put(w, s.p, s.len);
}

static void put_field(wr_t *w, const char *name, size_t nlen, pv_str_t value)
{
    put(w, name, nlen);
    put_str(w, value);
    PUT_LIT(w, "\r\n");
}

ssize_t pv_http_write_head(const pv_resp_head_t *h, pv_str_t date, int keepalive, char *buf, size_t cap)
{
    wr_t w = {buf, buf + cap, 0};
    int st = h->status;
    char line[13] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', (char)('0' + (st / 100) % 10),
                     (char)('0' + (st / 10) % 10), (char)('0' + st % 10), ' '};

    put(&w, line, sizeof(line));
    if (h->reason.p) {
        put_str(&w, h->reason);
    } else {
        const char *rs = pv_http_reason(st);
        put(&w, rs, strlen(rs));
    }
    PUT_LIT(&w, "\r\nServer: " PV_NAME "\r\nDate: ");
    put_str(&w, date);
    PUT_LIT(&w, "\r\n");
    if (h->content_type.p)
        put_field(&w, "Content-Type: ", 14, h->content_type);
    if (h->content_length >= 0) {
        char num[24];
        PUT_LIT(&w, "Content-Length: ");
        put(&w, num, pv_u64_digits(num, (uint64_t)h->content_length));
        PUT_LIT(&w, "\r\n");
    }
    if (h->location.p)
        put_field(&w, "Location: ", 10, h->location);
    if (h->frame == PV_FRAME_CHUNKED)
        PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    if (h->upgrade)
        PUT_LIT(&w, "Connection: upgrade\r\n");
    else if (keepalive)
        PUT_LIT(&w, "Connection: keep-alive\r\n");
    else
        PUT_LIT(&w, "Connection: close\r\n");
    for (int i = 0; i < h->nfields; i++) {
        put_str(&w, h->fields[i].name);
        PUT_LIT(&w, ": ");
        put_str(&w, h->fields[i].value);
        PUT_LIT(&w, "\r\n");
    }
    put_str(&w, h->extra);
    PUT_LIT(&w, "\r\n");
    return w.over ? -1 : (ssize_t)(w.p - buf);
}
