/* libFuzzer target for the rewrite module and map: their directives
 * compiled from text (rewrite_conf.c, map_conf.c), then the scripts run on
 * a request (script.c) with the location search between them as the
 * rewrite phase does, and every user variable evaluated (uvars.c, map.c).
 *
 * Input: the request target on the first line ("/path?args"), then the
 * http-level text (maps), a line "%%", and the server-level text
 * (set, if, rewrite, return, locations). No file, network or DNS.
 * `build/fuzz/bin/fuzz_rewrite fuzz/corpus/rewrite` runs it alone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/conf.h"
#include "http/router.h"
#include "http/script.h"
#include "http/uvars.h"
#include "http/vars.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pv_http_vars_init();
    return 0;
}

/* Run the server's script, then up to 11 rounds of location and script. */
static void run(pv_request_t *r)
{
    pv_script_out_t out;
    if (pv_script_run(r, &r->srv->rw, &r->srv->conf, &out) == PV_SCRIPT_ANSWER)
        return;
    for (int round = 0; round <= 10; round++) {
        int redirect = 0;
        r->uri_changed = 0;
        r->loc = pv_router_find_location(r->srv, r->uri, &redirect);
        if (!r->loc)
            return;
        if (r->loc->rx && (r->loc->rx->ncaptures || r->loc->rx->nnames))
            pv_regex_exec(r, r->loc->rx, r->uri);
        if (pv_script_run(r, &r->loc->rw, &r->loc->conf, &out) == PV_SCRIPT_ANSWER)
            return;
        if (!r->uri_changed)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    if (!nl || nl == in || (size_t)(nl - in) > 1024)
        return 0;
    const char *rest = nl + 1;
    size_t rlen = size - (size_t)(rest - in);
    const char *sep = memmem(rest, rlen, "\n%%\n", 4);
    if (!sep)
        return 0;
    size_t hlen = (size_t)(sep - rest), slen = rlen - hlen - 4;
    size_t cap = hlen + slen + 128;
    char *text = malloc(cap);
    int n = snprintf(text, cap, "http {\n%.*s\nserver {\nlisten 127.0.0.1:1;\n%.*s\n}\n}\n", (int)hlen,
                     rest, (int)slen, sep + 4);
    char err[1024];
    pv_conf_t *c = pv_conf_load_text("/fuzz/portvakt.conf", text, (size_t)n,
                                     PV_CONF_F_NO_DNS | PV_CONF_F_NO_INCLUDE, err, sizeof(err));
    free(text);
    if (!c)
        return 0;
    if (!c->http || c->http->nservers == 0) { /* a quote in the http part can swallow the server */
        pv_conf_unref(c);
        return 0;
    }
    pv_arena_t arena;
    pv_arena_init(&arena, 1024);
    pv_request_t r = {0};
    r.arena = &arena;
    r.conf = c;
    r.srv = c->http->servers[0];
    char *target = pv_arena_strndup(&arena, in, (size_t)(nl - in));
    char *q = strchr(target, '?');
    r.request_uri = (pv_str_t){target, strlen(target)};
    r.uri = (pv_str_t){target, q ? (size_t)(q - target) : strlen(target)};
    r.args = q ? (pv_str_t){q + 1, strlen(q + 1)} : (pv_str_t){"", 0};
    r.has_args = q != NULL;
    r.host = (pv_str_t){"fuzz.test", 9};
    r.local_text = "127.0.0.1";
    r.local_port = 1;
    strcpy(r.peer_text, "127.0.0.1");
    run(&r);
    char scratch[128];
    for (int i = 0; i < c->http->nuvars; i++) {
        pv_cv_part_t part = {&pv_var_user, {c->http->uvar_names[i], strlen(c->http->uvar_names[i])}, i};
        pv_var_get(&r, &part, scratch, sizeof(scratch));
    }
    pv_arena_free(&arena);
    pv_conf_unref(c);
    return 0;
}
