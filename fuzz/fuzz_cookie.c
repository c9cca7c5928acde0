/* libFuzzer target: pv_var_cookie() and pv_var_set_cookie(), the readers
 * of $cookie_NAME and $upstream_cookie_NAME. The input's first line is the
 * cookie name, the rest one field value each for Cookie and Set-Cookie.
 * Checks: a value found lies inside the field it was read from and holds
 * no ';' (the pair ends there). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/http/request.h"
#include "../src/http/vars.h"

static void check(const pv_header_t *h, int rc, pv_str_t v)
{
    if (rc != PV_VAL_FOUND)
        return;
    if (v.p < h->value.p || v.p + v.len > h->value.p + h->value.len || memchr(v.p, ';', v.len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *nl = memchr(p, '\n', size);
    if (!nl)
        return 0;
    pv_str_t name = {(char *)p, (size_t)(nl - p)};
    char *value = malloc(size - name.len); /* an exact copy: reads past it are caught */
    if (!value)
        return 0;
    memcpy(value, nl + 1, size - name.len - 1);
    pv_header_t h[2] = {{PV_STR("Cookie"), {value, size - name.len - 1}},
                        {PV_STR("Set-Cookie"), {value, size - name.len - 1}}};
    pv_str_t v = {0};
    check(&h[0], pv_var_cookie(h, 1, name, &v), v);
    check(&h[1], pv_var_set_cookie(h + 1, 1, name, &v), v);
    free(value);
    return 0;
}
