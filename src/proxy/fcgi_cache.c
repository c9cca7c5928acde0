/* fastcgi_cache (ngx_http_fastcgi_module's cache) on the proxy's response
 * cache (pcache.h): the lookup before a responder is asked, with the
 * fastcgi_cache_* settings, fastcgi_ignore_headers and fastcgi_temp_path;
 * and NGINX's cache params: with a cache, the client's preconditions and
 * ranges are not passed as HTTP_* params (the cache answers them; the
 * responder sends the whole response to store), and an expired entry's
 * validators go as HTTP_IF_MODIFIED_SINCE and HTTP_IF_NONE_MATCH while
 * fastcgi_cache_revalidate checks it. A fastcgi_param line naming one of
 * these params wins over both. */
#include "fastcgi.h"
#include "pcache.h"

#include <string.h>

#include "../http/server.h"

int pv_fcgi_cache_start(pv_hreq_t *hr)
{
    const pv_loc_conf_t *lc = &hr->r.loc->conf;
    if (!PV_PCACHE_ON(&lc->fpc))
        return 0;
    pv_pcache_use_t use = {&lc->fpc, lc->fastcgi.ignore, lc->other_temp_paths[0], 1, pv_fastcgi_resume};
    return pv_pcache_start(hr, &use);
}

/* NGINX's ngx_http_fastcgi_cache_headers, as HTTP_* param names. */
static const pv_str_t cache_params[] = {PV_STR("HTTP_IF_MODIFIED_SINCE"), PV_STR("HTTP_IF_UNMODIFIED_SINCE"),
                                        PV_STR("HTTP_IF_NONE_MATCH"),     PV_STR("HTTP_IF_MATCH"),
                                        PV_STR("HTTP_RANGE"),             PV_STR("HTTP_IF_RANGE")};

int pv_fcgi_cache_drops(const pv_request_t *r, pv_str_t name)
{
    const pv_pcache_conf_t *pc = &r->loc->conf.fpc;
    if (!PV_PCACHE_ON(pc) || (r->pcache && r->pcache->pass_client))
        return 0;
    for (size_t i = 0; i < PV_NELEM(cache_params); i++)
        if (cache_params[i].len == name.len && memcmp(cache_params[i].p, name.p, name.len) == 0)
            return 1;
    return 0;
}

static int named(const pv_fastcgi_conf_t *fc, pv_str_t n)
{
    for (int i = 0; i < fc->nparams; i++)
        if (fc->params[i].name.len == n.len && memcmp(fc->params[i].name.p, n.p, n.len) == 0)
            return 1;
    return 0;
}

int pv_fcgi_cache_validators(const pv_request_t *r, pv_str_t *nv)
{
    const pv_fastcgi_conf_t *fc = &r->loc->conf.fastcgi;
    pv_str_t etag, lm;
    int n = 0;
    pv_pcache_validators(r, &etag, &lm);
    if (lm.len && !named(fc, cache_params[0])) {
        nv[2 * n] = cache_params[0];
        nv[2 * n + 1] = lm;
        n++;
    }
    if (etag.len && !named(fc, cache_params[2])) {
        nv[2 * n] = cache_params[2];
        nv[2 * n + 1] = etag;
        n++;
    }
    return n;
}
