/* RFC 8441, WebSocket over an HTTP/2 stream: the gateway announces
 * SETTINGS_ENABLE_CONNECT_PROTOCOL (h2.c); an extended CONNECT with
 * `:protocol websocket` becomes the request model of an HTTP/1.1
 * WebSocket handshake (GET, `Upgrade: websocket`, a Sec-WebSocket-Key of
 * our own, since an HTTP/2 client sends none), so the proxy and the
 * tunnel (proxy/tunnel.c) run it as any upgrade; the upstream's 101 goes
 * to the client as a 200 and the stream carries the tunnel's bytes both
 * ways (RFC 8441 section 5). */
#include "h2.h"

#include <string.h>
#include <sys/random.h>

#include "request.h"

static void b64_16(const unsigned char in[16], char out[24])
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (int i = 0; i < 15; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    unsigned v = (unsigned)in[15] << 16;
    out[o++] = a[v >> 18 & 63];
    out[o++] = a[v >> 12 & 63];
    out[o++] = '=';
    out[o] = '=';
}

int pv_h2_ws_head(pv_hreq_t *hr, pv_h2_stream_t *st)
{
    pv_request_t *r = &hr->r;
    if (!st->protocol.p || !st->path.p)
        return 400; /* a plain CONNECT: a tunnel to anywhere, which a gateway serves none of */
    if (!PV_STR_IEQ(st->protocol, "websocket"))
        return 501; /* another protocol over extended CONNECT */
    st->websocket = 1;
    r->flags |= PV_REQ_F_UPGRADE;
    r->upstream_method = PV_STR("GET");
    int has_key = 0;
    for (int i = 0; i < r->nheaders; i++)
        has_key |= PV_STR_IEQ(r->headers[i].name, "sec-websocket-key");
    r->headers[r->nheaders++] = (pv_header_t){PV_STR("upgrade"), PV_STR("websocket")};
    if (!has_key) {
        unsigned char raw[16];
        char *key = pv_arena_alloc(&hr->arena, 24);
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
            return 500;
        b64_16(raw, key);
        r->headers[r->nheaders++] = (pv_header_t){PV_STR("sec-websocket-key"), (pv_str_t){key, 24}};
    }
    /* nothing is sent upstream before the 101: the stream's bytes are the tunnel's */
    hr->body_done = 1;
    return 0;
}

int pv_h2_ws_response(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_h2_stream_t *st = hr->h2s;
    if (!st->websocket)
        return PV_ERR;
    h->status = 200;
    h->reason = (pv_str_t){NULL, 0};
    h->content_length = -1;
    /* Sec-WebSocket-Accept answers the key we made up, not the client */
    pv_header_t *f = pv_arena_alloc(&hr->arena, sizeof(*f) * (size_t)(h->nfields ? h->nfields : 1));
    int n = 0;
    for (int i = 0; i < h->nfields; i++)
        if (!PV_STR_IEQ(h->fields[i].name, "sec-websocket-accept"))
            f[n++] = h->fields[i];
    h->fields = f;
    h->nfields = n;
    /* the body stream now carries what the client sends on the stream */
    hr->body_done = st->end_stream && (!st->bin || st->bin->pos == st->bin->last);
    return PV_OK;
}
