/* libFuzzer target: the bytes a gRPC upstream sends on an HTTP/2
 * connection, read as the grpc exchange reads them (src/proxy/grpc_rx.c):
 * after the client's preface and one request, the input goes to nghttp2
 * in pieces no larger than the output buffer's room, the buffer taken
 * whenever it is full, and the record checked after each piece: the head
 * and trailers within their limits, the DATA within the buffer. Built by
 * `make fuzz` (see the Makefile). */
#include "../src/proxy/grpc_rx.h"

#include <assert.h>
#include <string.h>

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}

static void drain(nghttp2_session *s)
{
    const uint8_t *p;
    while (nghttp2_session_mem_send(s, &p) > 0)
        ;
}

static void check(const pv_grpc_rx_t *rx)
{
    assert(rx->nfields <= PV_GRPC_MAX_FIELDS);
    assert(rx->tlen <= rx->tcap);
    assert(rx->out->last <= rx->out->size);
    size_t t = 0;
    for (int i = 0; i < rx->nfields; i++)
        t += rx->fields[i].name.len + rx->fields[i].value.len;
    assert(t <= rx->limit);
    assert(rx->tlen == 0 || rx->trailers[rx->tlen - 1] == '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_buf_t *out = pv_buf_get();
    if (!out)
        return 0;
    pv_grpc_rx_t rx = {.arena = &a, .limit = 4096, .out = out};
    nghttp2_session_callbacks *cb;
    nghttp2_session *s;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return 0;
    pv_grpc_rx_callbacks(cb);
    int rc = nghttp2_session_client_new(&s, cb, &rx);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return 0;
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/svc/Call"),
                       NV(":authority", "up"), NV("te", "trailers")};
    rx.sid = nghttp2_submit_request(s, NULL, nv, sizeof(nv) / sizeof(nv[0]), NULL, NULL);
    drain(s);
    size_t off = 0;
    while (off < n && !rx.ended) {
        size_t room = out->size - out->last;
        if (!room) {
            out->last = 0; /* the client took it */
            continue;
        }
        size_t k = n - off < room ? n - off : room;
        ssize_t r = nghttp2_session_mem_recv(s, d + off, k);
        if (r <= 0)
            break;
        off += (size_t)r;
        check(&rx);
        rx.head_ready = 0; /* sent */
        drain(s);
    }
    nghttp2_session_del(s);
    pv_buf_put(out);
    pv_arena_free(&a);
    return 0;
}
