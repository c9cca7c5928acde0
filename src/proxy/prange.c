/* Which proxied (or FastCGI) responses the range filter (http/brange.h)
 * may answer a Range from, as NGINX's upstream module allows it: with
 * proxy_force_ranges (fastcgi_force_ranges) every response, and in a
 * proxy_cache (fastcgi_cache) location one the cache may store that
 * came with an Accept-Ranges field (of any value; the cache answers the
 * client's Range from the body while it stores the whole). The
 * upstream's Accept-Ranges then goes no further: the filter says
 * Accept-Ranges: bytes when it could have answered. A head the range or
 * the not-modified filter refuses is answered by 416 or 412 in its
 * place. */
#include <string.h>

#include "../http/brange.h"
#include "../http/notmod.h"
#include "../http/server.h"
#include "../http/static.h"
#include "../upstream/upstream.h"
#include "pcache.h"
#include "proxy.h"

void pv_proxy_ranges(pv_proxy_t *px, const pv_resp_head_t *h, int force)
{
    int accept = 0;
    for (int i = 0; i < h->nfields && !accept; i++)
        accept = PV_STR_IEQ(h->fields[i].name, "accept-ranges");
    if (force || (accept && px->r->pcache && px->r->pcache->head_cacheable))
        px->r->allow_ranges = 1;
}

int pv_proxy_answer_instead(pv_proxy_t *px, int rc, int64_t size)
{
    pv_upconn_t *u = px->u; /* the body is not read: the connection goes (a module may have let it go) */
    pv_proxy_release_server(px, PV_BAL_OK);
    px->u = NULL;
    if (u)
        pv_upstream_release(u, &(pv_upstream_done_t){.failed = 1});
    px->hr->handling = 0;
    if (rc == PV_RESP_PRECONDITION)
        pv_resp_error(px->hr, 412);
    else
        pv_static_416(px->hr, size);
    return -3;
}
