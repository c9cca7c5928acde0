#include "grpc_rx.h"

#include <string.h>

/* Room for n more bytes of the head or trailers: 0, or -1 past the limit. */
static int count(pv_grpc_rx_t *rx, size_t n)
{
    rx->hbytes += n;
    if (rx->hbytes > rx->limit) {
        rx->too_big = 1;
        return -1;
    }
    return 0;
}

static int trailer(pv_grpc_rx_t *rx, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    if (nlen && name[0] == ':')
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* no pseudo-field in trailers */
    if (count(rx, nlen + vlen) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t need = rx->tlen + nlen + vlen + 3;
    if (need > rx->tcap) {
        size_t cap = need * 2;
        char *t = pv_arena_alloc(rx->arena, cap);
        if (rx->tlen)
            memcpy(t, rx->trailers, rx->tlen);
        rx->trailers = t;
        rx->tcap = cap;
    }
    char *p = rx->trailers + rx->tlen;
    memcpy(p, name, nlen);
    p[nlen] = ':';
    p[nlen + 1] = ' ';
    memcpy(p + nlen + 2, value, vlen);
    p[nlen + 2 + vlen] = '\n';
    rx->tlen = need;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *data)
{
    (void)s;
    (void)flags;
    pv_grpc_rx_t *rx = data;
    if (fr->hd.stream_id != rx->sid)
        return 0;
    if (rx->in_trailers)
        return trailer(rx, name, nlen, value, vlen);
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        /* nghttp2 checked it: three digits */
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        rx->status = st;
        return 0;
    }
    if (rx->nfields >= PV_GRPC_MAX_FIELDS || count(rx, nlen + vlen) < 0) {
        rx->too_big = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (!rx->fields)
        rx->fields = pv_arena_alloc(rx->arena, PV_GRPC_MAX_FIELDS * sizeof(*rx->fields));
    rx->fields[rx->nfields++] = (pv_header_t){{pv_arena_strndup(rx->arena, (const char *)name, nlen), nlen},
                                              {pv_arena_strndup(rx->arena, (const char *)value, vlen), vlen}};
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *data)
{
    (void)s;
    pv_grpc_rx_t *rx = data;
    if (fr->hd.stream_id != rx->sid || fr->hd.type != NGHTTP2_HEADERS || rx->in_trailers)
        return 0;
    rx->hbytes = 0;
    if (rx->status >= 100 && rx->status < 200) {
        rx->nfields = 0; /* an interim head: the final one follows */
        return 0;
    }
    rx->head_ready = 1;
    rx->in_trailers = 1;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *d, size_t len, void *data)
{
    (void)s;
    (void)flags;
    pv_grpc_rx_t *rx = data;
    if (sid != rx->sid)
        return 0;
    pv_buf_t *b = rx->out;
    if (!b || b->size - b->last < len)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* never: input is bounded by the room left */
    memcpy(b->data + b->last, d, len);
    b->last += (uint32_t)len;
    return 0;
}

static int on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *data)
{
    (void)s;
    pv_grpc_rx_t *rx = data;
    if (sid == rx->sid) {
        rx->ended = 1;
        rx->rst = code;
    }
    return 0;
}

void pv_grpc_rx_callbacks(nghttp2_session_callbacks *cb)
{
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
}
