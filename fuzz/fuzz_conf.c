/* libFuzzer target for the config loader: lexer, parser, directive table,
 * compiled values and the merge pass, on text held in memory. Names are
 * never looked up and `include` is refused, so a run touches no network
 * and no file. The residency check runs inside the load; a config that
 * loads is walked again as `portvakt residency` walks it for the map,
 * and the map made as `--json` and the status document make it.
 * The variables are registered once, as main() does. Built
 * by `make fuzz` (see the Makefile); `build/fuzz/bin/fuzz_conf
 * fuzz/corpus/conf` runs it alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/conf.h"
#include "config/residency.h"
#include "http/vars.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pv_http_vars_init();
    return 0;
}

/* What the map reads of each reach. */
static int visit(void *arg, const pv_res_reach_t *r)
{
    size_t *n = arg;
    *n += strlen(r->route) + strlen(r->why) + (size_t)r->allowed + (size_t)r->plain_untrusted;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    pv_conf_t *c = pv_conf_load_text("/fuzz/portvakt.conf", (const char *)data, size,
                                     PV_CONF_F_NO_DNS | PV_CONF_F_NO_INCLUDE, err, sizeof(err));
    if (c) {
        pv_arena_t a;
        size_t n = 0;
        pv_arena_init(&a, 4096);
        pv_residency_walk(c, &a, visit, &n);
        json_t *map = pv_residency_map(c, &a);
        if (map) {
            char *text = json_dumps(map, JSON_COMPACT);
            free(text);
            json_decref(map);
        }
        pv_arena_free(&a);
        pv_conf_unref(c);
    }
    return 0;
}
