/* libFuzzer target for the geo module: the input is the body of a geo
 * block (geo_conf.c parses it into core/geo.c's tree and range table);
 * when it loads, addresses made from the input and fixed ones are looked
 * up (http/map.c) and the range table is checked to be sorted and
 * disjoint in each /16 block. No file, network or DNS.
 * `build/fuzz/bin/fuzz_geo fuzz/corpus/geo` runs it alone. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "http/map.h"
#include "http/vars.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pv_http_vars_init();
    return 0;
}

static void check_ranges(const pv_geo_ranges_t *rs)
{
    if (!rs->blocks)
        return;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const pv_geo_block_t *b = rs->blocks[h];
        for (uint32_t i = 0; b && i < b->n; i++) {
            if (b->p[i].start > b->p[i].end || (i && b->p[i].start <= b->p[i - 1].end))
                abort();
        }
    }
}

static void look(pv_conf_t *c, const void *addr, size_t alen, int fam)
{
    pv_arena_t a;
    pv_arena_init(&a, 1024);
    pv_request_t r;
    memset(&r, 0, sizeof(r));
    r.arena = &a;
    r.conf = c;
    r.srv = c->http->servers[0];
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = (sa_family_t)fam;
    if (fam == AF_INET)
        memcpy(&((struct sockaddr_in *)&sa)->sin_addr, addr, alen);
    else if (fam == AF_INET6)
        memcpy(&sa.sin6_addr, addr, alen);
    r.peer = (const struct sockaddr *)&sa;
    pv_header_t hd = {{"X-Forwarded-For", 15}, {"192.0.2.1, ::1", 14}};
    r.headers = &hd;
    r.nheaders = 1;
    pv_str_t v = pv_map_eval(&r, c->http->uvar_maps[0]);
    if (v.len && !v.p)
        abort();
    pv_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    static const char pre[] = "http {\n geo $g {\n", post[] = "\n }\n server { listen 127.0.0.1:8080; }\n}\n";
    char *text = malloc(sizeof(pre) + size + sizeof(post));
    memcpy(text, pre, sizeof(pre) - 1);
    memcpy(text + sizeof(pre) - 1, data, size);
    memcpy(text + sizeof(pre) - 1 + size, post, sizeof(post));
    char err[512];
    pv_conf_t *c = pv_conf_load_text("/f/f.conf", text, strlen(text), PV_CONF_F_NO_DNS, err, sizeof(err));
    free(text);
    if (!c)
        return 0;
    /* a "}" in the input may have closed the block early */
    const pv_http_conf_t *h = c->http;
    const pv_map_t *m = h && h->nservers && h->nuvars ? h->uvar_maps[0] : NULL;
    if (m && m->geo) {
        check_ranges(&m->geo->rs);
        uint8_t a4[4] = {127, 0, 0, 1}, a6[16] = {0};
        a6[15] = 1;
        look(c, a4, 4, AF_INET);
        look(c, a6, 16, AF_INET6);
        look(c, NULL, 0, AF_UNIX);
        if (size >= 16) {
            look(c, data, 4, AF_INET);
            look(c, data, 16, AF_INET6);
        }
    }
    pv_conf_unref(c);
    return 0;
}
