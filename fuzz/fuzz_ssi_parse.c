/* libFuzzer target: the SSI command parser. The first byte picks the
 * piece size and ssi_value_length; the input is parsed in one piece and
 * in pieces, and both renderings (text, commands with their parameters,
 * malformed commands, what is held at the end) must be the same. Text
 * spans must lie inside the piece given or be a prefix of "<!--". Each
 * value is evaluated too (pv_ssi_eval()) and split as an if expr. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/http/ssi_parse.h"

#define OUT_CAP (1 << 20)

static char vbuf[2][(PV_SSI_PARAMS_MAX + 1) * 64];
static char out_a[OUT_CAP], out_b[OUT_CAP];

static int lookup(void *ctx, pv_str_t name, pv_str_t *val)
{
    (void)ctx;
    if (name.len % 3 == 0)
        return 0;
    *val = name; /* a variable's value is its name */
    return 1;
}

/* A value's evaluation: writing and measuring agree, the output stays
 * in bounds. */
static void eval(pv_str_t v)
{
    static char ev[128], ex[64];
    pv_ssi_if_t e;
    memcpy(ex, v.p, v.len);
    if (pv_ssi_if_split(ex, v.len, &e) == PV_OK &&
        (e.left.p != ex || e.left.len > v.len || e.right.len > v.len ||
         (e.right.len && (e.right.p < ex || e.right.p + e.right.len > ex + v.len))))
        abort();
    pv_str_t base = {"/d/p.html", 9};
    for (int flags = 0; flags <= PV_SSI_ADD_PREFIX; flags++) {
        ssize_t n = pv_ssi_eval(v, flags, base, lookup, NULL, ev, sizeof(ev));
        ssize_t m = pv_ssi_eval(v, flags, base, lookup, NULL, NULL, 0);
        if (n == PV_SSI_EVAL_LONG ? m <= (ssize_t)sizeof(ev) : n != m)
            abort();
    }
}

static void put(char *out, size_t *o, const char *p, size_t n)
{
    if (*o + n > OUT_CAP)
        abort(); /* the rendering of an input is bounded by 2x its size plus the commands' */
    memcpy(out + *o, p, n);
    *o += n;
}

static size_t render(const uint8_t *data, size_t size, size_t step, size_t value_len, char *out, int k)
{
    pv_ssi_parser_t p;
    pv_ssi_init(&p, value_len, vbuf[k]);
    size_t off = 0, o = 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        const char *in = (const char *)data + off;
        size_t done = 0;
        while (done < n) {
            pv_str_t text[2];
            int nt;
            size_t used;
            int rc = pv_ssi_parse(&p, in + done, n - done, &used, text, &nt);
            if (used > n - done || nt < 0 || nt > 2 || (rc == PV_SSI_AGAIN && used != n - done) ||
                (rc != PV_SSI_AGAIN && used == 0))
                abort();
            for (int i = 0; i < nt; i++) {
                int inside = text[i].p >= in + done && text[i].p + text[i].len <= in + done + used;
                if (!inside && (text[i].len > 4 || memcmp(text[i].p, "<!--", text[i].len) != 0))
                    abort();
                put(out, &o, text[i].p, text[i].len);
            }
            if (rc == PV_SSI_COMMAND) {
                if (p.cmdlen < 1 || p.cmdlen > PV_SSI_COMMAND_LEN || p.nparams > PV_SSI_PARAMS_MAX)
                    abort();
                put(out, &o, "\x01", 1);
                put(out, &o, p.cmd, p.cmdlen);
                for (int i = 0; i < p.nparams; i++) {
                    pv_str_t v = pv_ssi_value(&p, i);
                    if (v.len > value_len || p.params[i].nlen > PV_SSI_PARAM_LEN)
                        abort();
                    if (k == 0)
                        eval(v);
                    put(out, &o, "\x02", 1);
                    put(out, &o, p.params[i].name, p.params[i].nlen);
                    put(out, &o, "\x03", 1);
                    put(out, &o, v.p, v.len);
                }
            } else if (rc == PV_SSI_BAD) {
                put(out, &o, "\x04", 1);
            }
            done += used;
        }
        off += n;
    }
    if (pv_ssi_pending(&p))
        put(out, &o, "\x05", 1);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t step = (size_t)(data[0] % 13) + 1;
    size_t value_len = (size_t)(data[0] >> 4) * 4 + 1; /* 1 to 61 */
    data++;
    size--;
    size_t la = render(data, size, size ? size : 1, value_len, out_a, 0);
    size_t lb = render(data, size, step, value_len, out_b, 1);
    if (la != lb || memcmp(out_a, out_b, la) != 0)
        abort();
    return 0;
}
