/* libFuzzer target: pv_pp_parse(), the PROXY protocol header (v1 and v2)
 * read before a `listen ... proxy_protocol` connection's own bytes.
 * Checks: every prefix shorter than a decided header answers "more"
 * (0) and never a different verdict; a header's length is within the
 * input and the header alone parses to the same result; addresses are
 * NUL-terminated text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pv_pp_t pp, pp2;
    int has, has2;
    char err[200];
    if (size > PV_PP_MAX + 64)
        size = PV_PP_MAX + 64;
    ssize_t n = pv_pp_parse(data, size, &pp, &has, err, sizeof(err));
    if (n > (ssize_t)size || n < -1)
        abort();
    if (n > 0) {
        if (pv_pp_parse(data, (size_t)n, &pp2, &has2, err, sizeof(err)) != n || has2 != has)
            abort();
        if (has && (memchr(pp.src_addr, 0, sizeof(pp.src_addr)) == NULL ||
                    memchr(pp.dst_addr, 0, sizeof(pp.dst_addr)) == NULL || strcmp(pp.src_addr, pp2.src_addr) ||
                    pp.src_port != pp2.src_port || pp.dst_port != pp2.dst_port))
            abort();
    } else if (n < 0 && strlen(err) == 0) {
        abort();
    }
    /* a shorter input is undecided, or refused when the whole one is */
    size_t stop = n > 0 ? (size_t)n : size;
    for (size_t k = 0; k < stop; k++) {
        ssize_t m = pv_pp_parse(data, k, &pp2, &has2, err, sizeof(err));
        if (m > 0 || (m < 0 && n >= 0))
            abort();
    }
    return 0;
}
