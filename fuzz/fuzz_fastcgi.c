/* libFuzzer target: the bytes a FastCGI responder sends back, read as
 * the fastcgi exchange reads them (src/proxy/fastcgi.c with fcgi_rx.c):
 * the first byte sets the head limit and the piece size, the rest is fed
 * in pieces, the output buffer taken whenever the parser stops on it,
 * STDERR and the head taken when ready. Checks: the head within its
 * limit and field count, every field inside the head's bytes, the body
 * within the buffer, no progress lost (each call takes bytes or stops
 * for a reason the caller acts on). Built by `make fuzz`. */
#include "../src/proxy/fcgi_rx.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 1)
        return 0;
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_buf_t *out = pv_buf_get();
    if (!out)
        return 0;
    size_t limit = 64 + (size_t)(d[0] & 0x0f) * 256, piece = 1 + (d[0] >> 4) * 97;
    d++;
    n--;
    pv_fcgi_rx_t rx;
    pv_fcgi_rx_init(&rx, &a, limit, out);
    size_t off = 0;
    while (off < n && !rx.ended) {
        size_t len = n - off < piece ? n - off : piece, used = 0;
        int rc = pv_fcgi_rx_feed(&rx, d + off, len, &used);
        assert(used <= len);
        assert(out->last <= out->size);
        if (rc != PV_FCGI_OK) {
            assert(rx.error);
            break;
        }
        off += used;
        if (rx.head_ready) {
            assert(rx.headlen <= limit);
            assert(rx.nfields <= PV_FCGI_MAX_FIELDS);
            assert(rx.status >= 100 && rx.status <= 999);
            for (int i = 0; i < rx.nfields; i++) {
                assert(rx.fields[i].name.p >= rx.head && rx.fields[i].name.p + rx.fields[i].name.len <= rx.head + rx.headlen);
                assert(rx.fields[i].value.len == 0 ||
                       (rx.fields[i].value.p >= rx.head && rx.fields[i].value.p + rx.fields[i].value.len <= rx.head + rx.headlen));
            }
            rx.head_ready = 0;
        }
        if (rx.err_ready) {
            assert(rx.errlen <= sizeof(rx.err));
            rx.err_ready = 0;
            rx.errlen = 0;
        }
        if (out->last == out->size)
            out->last = 0; /* the client took it */
        else if (!used && !rx.ended)
            assert(0 && "no progress");
    }
    pv_buf_put(out);
    pv_arena_free(&a);
    return 0;
}
