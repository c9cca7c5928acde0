/* libFuzzer target: pv_status_api_select(), the NGINX Plus API path
 * below a portvakt_status location. The input is the path. Checks: the
 * answer is 200 or 404; a 404 is NGINX Plus's error object; a 200 is the
 * document, a list of names, or a member of the document. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/proxy/report.h"

static json_t *doc_new(void)
{
    return json_pack("{s:{s:s},s:{s:i},s:{s:{s:i},s:{s:{s:[{s:s}]}},s:{s:{s:i}}}}", "nginx", "version", "0.1.0",
                     "ssl", "handshakes", 1, "http", "requests", "total", 3, "upstreams", "app", "peers", "server",
                     "127.0.0.1:8080", "server_zones", "api.test", "requests", 3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = doc_new();
    if (!doc)
        return 0;
    json_t *keep = json_incref(doc);
    int status = 0;
    json_t *out = pv_status_api_select(doc, (const char *)data, size, &status);
    if (status == 404) {
        json_t *err = json_object_get(out, "error");
        if (!err || json_integer_value(json_object_get(err, "status")) != 404)
            abort();
    } else if (status != 200 || !out) {
        abort();
    } else if (size == 0 && out != keep) {
        abort();
    } else if (size && !json_is_array(out) && !json_is_object(out) && !json_is_integer(out) && !json_is_string(out)) {
        abort();
    }
    json_decref(out);
    json_decref(keep);
    return 0;
}
