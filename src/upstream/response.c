/* Upstream response heads: llhttp finds the structure, then the head is
 * checked as a whole before anything of it is believed. */
#include "response.h"

#include <string.h>

#include "../core/buf.h"

#include "../http/headers.h"

static __thread llhttp_settings_t settings;
static __thread int settings_ready;

static int on_status_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_uresp_t *rp = p->data;
    if (rp->reason.p)
        rp->reason.len += len;
    else
        rp->reason = (pv_str_t){at, len};
    return 0;
}

static int on_field_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_uresp_t *rp = p->data;
    if (rp->last_cb != 1) {
        if (rp->nfields == PV_URESP_MAX_FIELDS)
            return -1;
        rp->fields[rp->nfields].name = (pv_str_t){at, len};
        rp->fields[rp->nfields].value = (pv_str_t){at, 0};
        rp->nfields++;
    } else {
        rp->fields[rp->nfields - 1].name.len += len;
    }
    rp->last_cb = 1;
    return 0;
}

static int on_value_cb(llhttp_t *p, const char *at, size_t len)
{
    pv_uresp_t *rp = p->data;
    pv_header_t *h = &rp->fields[rp->nfields - 1];
    if (rp->last_cb != 2)
        h->value = (pv_str_t){at, len};
    else
        h->value.len += len;
    rp->last_cb = 2;
    return 0;
}

static int on_headers_complete_cb(llhttp_t *p)
{
    PV_UNUSED(p);
    return HPE_PAUSED;
}

/* Ready for the next head (the first, or the one after an interim). */
static void head_reset(pv_uresp_t *rp)
{
    if (!settings_ready) {
        llhttp_settings_init(&settings);
        settings.on_status = on_status_cb;
        settings.on_header_field = on_field_cb;
        settings.on_header_value = on_value_cb;
        settings.on_headers_complete = on_headers_complete_cb;
        settings_ready = 1;
    }
    llhttp_init(&rp->p, HTTP_RESPONSE, &settings);
    rp->p.data = rp;
    rp->head_start = NULL;
    rp->last_cb = 0;
    rp->nfields = 0;
    rp->reason = (pv_str_t){NULL, 0};
}

void pv_uresp_init(pv_uresp_t *rp, int no_body)
{
    memset(rp, 0, offsetof(pv_uresp_t, fields));
    rp->no_body = (uint8_t)(no_body != 0);
    rp->content_length = -1;
    head_reset(rp);
}

/* Check the head that ends at end and decide its framing. 0 or -1. */
static int head_check(pv_uresp_t *rp, const char *end)
{
    int status = rp->p.status_code;
    int64_t cl = -1;
    int ncl = 0, has_te = 0, conn_close = 0, conn_ka = 0, has_upgrade = 0;

    if (status < 100 || status > 999)
        return -1;
    if (status == 101 && !rp->upgrade_asked) {
        rp->error = "101 Switching Protocols to a request that asked for no upgrade";
        return -1;
    }
    if (!pv_http_head_line_endings_ok(rp->head_start, (size_t)(end - rp->head_start)))
        return -1;
    for (int i = 0; i < rp->nfields; i++) {
        pv_header_t *h = &rp->fields[i];
        while (h->value.len && (h->value.p[h->value.len - 1] == ' ' || h->value.p[h->value.len - 1] == '\t'))
            h->value.len--;
        if (!pv_header_name_valid(h->name) || !pv_header_value_valid(h->value))
            return -1;
        if (PV_STR_IEQ(h->name, "content-length")) {
            int64_t v;
            if (pv_http_parse_content_length(h->value, &v) != 0 || (ncl++ && v != cl))
                return -1;
            cl = v;
        } else if (PV_STR_IEQ(h->name, "transfer-encoding")) {
            /* one field naming exactly "chunked": any other coding would
             * reach the client undecoded once the hop-by-hop field is gone */
            pv_str_t rest = h->value, tok;
            int n = 0;
            while (pv_conn_next_token(&rest, &tok))
                n += tok.len ? (PV_STR_IEQ(tok, "chunked") ? 1 : 100) : 0;
            if (has_te++ || n != 1)
                return -1;
        } else if (PV_STR_IEQ(h->name, "connection")) {
            conn_close |= pv_conn_has_token(h->value, "close");
            conn_ka |= pv_conn_has_token(h->value, "keep-alive");
        } else if (PV_STR_IEQ(h->name, "upgrade")) {
            has_upgrade = 1;
        } else if (h->name.len - 17 <= 1) {
            /* the proxy looks for X-Accel-Buffering / -Limit-Rate only then */
            rp->accel |= PV_STR_IEQ(h->name, "x-accel-buffering") || PV_STR_IEQ(h->name, "x-accel-limit-rate");
        }
    }
    if (has_te && ncl)
        return -1;
    if (status == 101 && !has_upgrade) {
        /* the client could not know which protocol follows (RFC 9110 15.2.2) */
        rp->error = "101 Switching Protocols without Upgrade";
        return -1;
    }

    rp->status = status;
    rp->http_minor = rp->p.http_minor;
    rp->has_cl = ncl > 0;
    rp->content_length = cl;
    if (rp->no_body || status < 200 || status == 204 || status == 304)
        rp->frame = PV_FRAME_NONE;
    else if (has_te)
        rp->frame = PV_FRAME_CHUNKED;
    else if (ncl)
        rp->frame = cl > 0 ? PV_FRAME_LENGTH : PV_FRAME_NONE;
    else
        rp->frame = PV_FRAME_CLOSE;
    rp->body_left = cl > 0 ? (uint64_t)cl : 0;
    rp->body_done = rp->frame == PV_FRAME_NONE;
    if (rp->frame == PV_FRAME_CHUNKED)
        pv_chunked_init(&rp->chunk);
    int v11 = rp->p.http_major == 1 && rp->p.http_minor == 1;
    rp->keepalive = !(conn_close || (!v11 && !conn_ka) || rp->frame == PV_FRAME_CLOSE || status == 101);
    return 0;
}

int pv_uresp_parse(pv_uresp_t *rp, char *p, size_t *len, size_t room, size_t *used)
{
    char *at = p;
    for (;;) {
        if (!rp->head_start) {
            rp->head_start = at;
            pv_http_crlf_init(&rp->crlf, 0);
        }
        /* bare LFs of the head become CRLF before llhttp sees them; the
         * offsets count from the head's start, which stays in place */
        char *hs = rp->head_start;
        size_t last = (size_t)(p + *len - hs);
        if (pv_http_head_crlf(hs, &last, (size_t)(p + room - hs), &rp->crlf))
            return PV_URESP_FULL;
        *len = (size_t)(hs + last - p);
        char *end = p + *len;
        llhttp_errno_t e = llhttp_execute(&rp->p, at, (size_t)(end - at));
        if (e == HPE_OK)
            return PV_URESP_AGAIN;
        if (e != HPE_PAUSED) {
            rp->error = llhttp_get_error_reason(&rp->p);
            return PV_URESP_ERR;
        }
        char *hend = (char *)llhttp_get_error_pos(&rp->p);
        rp->error = NULL;
        if (head_check(rp, hend) < 0)
            return PV_URESP_ERR;
        at = hend;
        if (rp->status >= 200 || rp->status == 101) {
            *used = (size_t)(at - p);
            return PV_URESP_DONE;
        }
        /* interim response (100 Continue, 103): dropped; the next head follows */
        rp->ninterim++;
        head_reset(rp);
    }
}

ssize_t pv_uresp_body(pv_uresp_t *rp, const char *p, size_t len, pv_str_t *spans, int *nspans, int max)
{
    *nspans = 0;
    if (rp->body_done || len == 0 || max <= 0)
        return 0;
    if (rp->frame == PV_FRAME_CHUNKED) {
        ssize_t used = pv_chunked_decode(&rp->chunk, p, len, spans, nspans, max);
        if (used >= 0 && rp->chunk.done)
            rp->body_done = 1;
        return used;
    }
    size_t n = len;
    if (rp->frame == PV_FRAME_LENGTH) {
        if (n > rp->body_left)
            n = (size_t)rp->body_left;
        rp->body_left -= n;
        rp->body_done = rp->body_left == 0;
    }
    spans[0] = (pv_str_t){p, n};
    *nspans = 1;
    return (ssize_t)n;
}

int pv_uresp_read_head(pv_uresp_t *rp, pv_buf_t *b, size_t limit)
{
    size_t used = 0, len = b->last - b->pos;
    int rc = pv_uresp_parse(rp, b->data + b->pos, &len, b->size - b->pos, &used);
    b->last = b->pos + (uint32_t)len;
    if (rc == PV_URESP_FULL || rc == PV_URESP_ERR)
        return rc;
    if (rc == PV_URESP_AGAIN || used > limit) {
        /* the head must fit in proxy_buffer_size, as in NGINX */
        if (b->last > limit)
            return PV_URESP_FULL;
        b->pos = b->last; /* incomplete: the parsed bytes stay in place */
        return PV_URESP_AGAIN;
    }
    b->pos += (uint32_t)used;
    return PV_URESP_DONE;
}
