/* libFuzzer target: request-target parsing and normalisation, Host
 * normalisation, URI escaping and the upstream request head.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_uri.c src/http/uri.c src/http/headers.c src/http/errpage.c \
 *     src/proxy/rewrite.c src/core/arena.c -o fuzz_uri
 *   ./fuzz_uri fuzz/corpus/uri
 *
 * Input: byte 0 holds flags, then the target up to the first '\n', then
 * "Name: value" lines taken as request fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "http/headers.h"
#include "http/uri.h"
#include "proxy/rewrite.h"

/* Only constant values are compiled here; the real evaluator replaces
 * this one when src/http/vars.c is linked in. */
__attribute__((weak)) size_t pv_cv_eval(const pv_cv_t *cv, struct pv_request_s *r, int escape, char *out,
                                        size_t cap)
{
    (void)r, (void)escape;
    pv_str_t v = cv->nparts ? cv->parts[0].text : (pv_str_t){"", 0};
    if (v.len <= cap)
        memcpy(out, v.p, v.len);
    return v.len;
}

/* Invariants of a normalised path: rooted, no empty, "." or ".." segment. */
static void check_normal(const char *u, size_t n)
{
    if (n == 0 || u[0] != '/')
        abort();
    for (size_t i = 0; i + 1 < n; i++) {
        if (u[i] == '/' && u[i + 1] == '/')
            abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (u[i] != '/')
            continue;
        size_t j = i + 1;
        while (j < n && u[j] != '/')
            j++;
        size_t seg = j - i - 1;
        if ((seg == 1 && u[i + 1] == '.') || (seg == 2 && u[i + 1] == '.' && u[i + 2] == '.'))
            abort();
    }
}

static void check_escape(const char *s, size_t n)
{
    size_t need = pv_uri_escape(NULL, s, n);
    char *e = malloc(need + 1);
    if (pv_uri_escape(e, s, n) != need)
        abort();
    for (size_t i = 0; i < need; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '"')
            abort();
    }
    free(e);
}

static void check_request(pv_arena_t *a, const pv_uri_target_t *t, pv_header_t *hs, int nh, int flags)
{
    static pv_set_header_t sets[2];
    static pv_cv_part_t parts[2] = {{NULL, {"v", 1}}, {NULL, {"", 0}}};
    sets[0] = (pv_set_header_t){PV_STR("X-Set"), {&parts[0], 1, 1}};
    sets[1] = (pv_set_header_t){PV_STR("Connection"), {&parts[1], 1, 1}};
    pv_proxy_pass_t pp = {0};
    pp.proxy_host = PV_STR("backend");
    if (flags & 1) {
        pp.uri = PV_STR("/u/");
        pp.has_uri = 1;
    }
    pv_location_t loc = {0};
    loc.match = (flags & 2) ? PV_LOC_EXACT : PV_LOC_PREFIX;
    loc.name = (flags & 4) ? PV_STR("/a/") : PV_STR("/");
    loc.proxy_pass = &pp;
    loc.conf.proxy_http_version = (flags & 8) ? 11 : 10;
    loc.conf.set_headers = sets;
    loc.conf.nset_headers = (flags & 16) ? 2 : 0;

    pv_request_t r = {0};
    r.arena = a;
    r.method = PV_STR("GET");
    r.request_uri = t->request_uri;
    r.uri = t->uri;
    r.args = t->args;
    r.has_args = t->has_args;
    r.headers = hs;
    r.nheaders = nh;
    r.proxy_host = pp.proxy_host;
    int mode = (flags >> 5) % 3;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    ssize_t n = pv_proxy_build_request(&r, &loc, mode, 12345, buf, cap);
    if (n < 0)
        abort();
    if (n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
        abort();
    /* exactly enough room works, one byte less is refused */
    char *exact = malloc((size_t)n);
    if (pv_proxy_build_request(&r, &loc, mode, 12345, exact, (size_t)n) != n ||
        memcmp(exact, buf, (size_t)n) != 0)
        abort();
    if (pv_proxy_build_request(&r, &loc, mode, 12345, exact, (size_t)n - 1) != -1)
        abort();
    free(exact);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int flags = data[0];
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(p, '\n', len);
    size_t tlen = nl ? (size_t)(nl - p) : len;

    char *out = malloc(tlen + 1);
    size_t olen;
    pv_str_t args;
    int has_args;
    if (pv_uri_normalize(p, tlen, out, &olen, &args, &has_args) == 0) {
        if (olen > tlen + 1)
            abort();
        check_normal(out, olen);
        if (has_args && (args.p < p || args.p + args.len > p + tlen))
            abort();
    }
    free(out);

    char *host = malloc(tlen + 1);
    size_t hlen;
    if (pv_uri_host_normalize(p, tlen, host, &hlen) == 0) {
        if (hlen == 0 || hlen > tlen)
            abort();
        for (size_t i = 0; i < hlen; i++) {
            if (host[i] >= 'A' && host[i] <= 'Z')
                abort();
        }
    }
    free(host);
    check_escape(p, tlen);

    pv_arena_t a;
    pv_arena_init(&a, 4096);
    pv_uri_target_t t;
    if (pv_uri_parse_target(&a, (pv_str_t){p, tlen}, flags & 128, &t) == 0 && !t.asterisk) {
        check_normal(t.uri.p, t.uri.len);
        pv_header_t hs[16];
        int nh = 0;
        const char *q = nl ? nl + 1 : p + len, *end = p + len;
        while (q < end && nh < 16) {
            const char *e = memchr(q, '\n', (size_t)(end - q));
            if (!e)
                e = end;
            const char *c = memchr(q, ':', (size_t)(e - q));
            if (c) {
                pv_str_t name = {q, (size_t)(c - q)}, value = {c + 1, (size_t)(e - c - 1)};
                if (pv_header_name_valid(name) && pv_header_value_valid(value))
                    hs[nh++] = (pv_header_t){name, value};
            }
            q = e + 1;
        }
        check_request(&a, &t, hs, nh, flags);
    }
    pv_arena_free(&a);
    return 0;
}
