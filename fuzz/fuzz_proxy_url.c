/* libFuzzer target for the parsing of a proxy_pass URL with variables
 * once evaluated (src/proxy/target.c's parse_url(), which takes what a
 * client can put in $host, $arg_* or a header): scheme, host (bracketed
 * IPv6 too), port and URI part, or unix:PATH[:URI]. Checks that the
 * parts stay inside the input, a host fits its buffer, a port is
 * 1-65535 and a unix path fits a sockaddr_un. Built by `make
 * fuzz`; `build/fuzz/bin/fuzz_proxy_url fuzz/corpus/proxy_url` runs it
 * alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/proxy/target.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    url_t u;
    const char *why = NULL;
    pv_str_t v = {(const char *)data, size};
    if (parse_url(v, &u, &why) < 0) {
        if (!why)
            abort();
        return 0;
    }
    const char *end = (const char *)data + size;
    if (u.hostport.p < (const char *)data || u.hostport.p + u.hostport.len > end)
        abort();
    if (u.uri.len && (u.uri.p < (const char *)data || u.uri.p + u.uri.len != end))
        abort();
    if (strlen(u.host) == 0 || strlen(u.host) >= sizeof(u.host))
        abort();
    if (u.port < 0 || u.port > 65535)
        abort();
    if (u.unix_len && ((size_t)u.unix_len >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
                       strlen(u.host) != (size_t)u.unix_len || u.port))
        abort();
    return 0;
}
