/* libFuzzer target for the config loader: lexer, parser, directive table,
 * compiled values and the merge pass, on text held in memory. Names are
 * never looked up and `include` is refused, so a run touches no network
 * and no file.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_conf.c src/config/{lexer,parser,directives,load,cv_compile,workers}.c \
 *     src/core/arena.c -lpcre2-8 -o build/fuzz_conf
 *   build/fuzz_conf fuzz/corpus/conf
 */
#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    pv_conf_t *c = pv_conf_load_text("/fuzz/portvakt.conf", (const char *)data, size,
                                     PV_CONF_F_NO_DNS | PV_CONF_F_NO_INCLUDE, err, sizeof(err));
    if (c)
        pv_conf_unref(c);
    return 0;
}
