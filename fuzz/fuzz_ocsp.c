/* libFuzzer target for the text side of an OCSP fetch (src/core/ocsp.c):
 * the responder URL (from a certificate's AIA or ssl_stapling_responder),
 * the GET built from it, and the responder's answer (status line and
 * fields). The first byte picks the parser. Checks that a parsed URL has
 * a host, a port 1-65535 and a URI starting with '/', that the request
 * fits what it claims, and that an answer's body offset stays inside it.
 * Built by `make fuzz`; `build/fuzz/bin/fuzz_ocsp fuzz/corpus/ocsp` runs
 * it alone. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/common.h"
#include "../src/core/ocsp.h"

static void url(const uint8_t *data, size_t size)
{
    pv_ocsp_url_t u;
    const char *why = NULL;
    if (pv_ocsp_url_parse((const char *)data, size, &u, &why) != PV_OK) {
        if (!why)
            abort();
        return;
    }
    if (!u.name[0] || !u.host[0] || u.port < 1 || u.port > 65535 || u.uri[0] != '/')
        abort();
    char req[4096];
    static const unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0xfb};
    long n = pv_ocsp_request_text(&u, der, sizeof(der), req, sizeof(req));
    if (n >= 0 && ((size_t)n != strlen(req) || strncmp(req, "GET /", 5) != 0 ||
                   strstr(req, "\r\n\r\n") != req + n - 4))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        url(data + 1, size - 1);
        return 0;
    }
    pv_ocsp_http_t h;
    int rc = pv_ocsp_http_parse(data + 1, size - 1, &h);
    if (rc == PV_OK) {
        if (h.body > size - 1 || h.code < 0 || h.code > 999)
            abort();
        if (h.ctype && (h.ctype < (const char *)data + 1 || h.ctype + h.ctype_len > (const char *)data + size))
            abort();
    } else if (rc != PV_AGAIN && rc != PV_ERR) {
        abort();
    }
    return 0;
}
