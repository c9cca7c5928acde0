/* The response head's field rules of fastcgi_pass: which fields stay
 * out of the client's head (fastcgi_hide_header, fastcgi_pass_header and
 * NGINX's default set), and the CGI head's fields as the client's head. */
#include "fastcgi.h"
#include "fcgi_rx.h"

#include <string.h>

#include "../http/headers.h"
#include "../http/router.h"
#include "../http/server.h"

/* Whether a response field stays out of the client's head: NGINX's
 * default set (Status, X-Accel-*) unless fastcgi_pass_header names it,
 * and the fastcgi_hide_header names. */
int pv_fcgi_hidden(const pv_fastcgi_conf_t *fc, pv_str_t n)
{
    static const pv_str_t dflt[] = {PV_STR("status"), PV_STR("x-accel-expires"), PV_STR("x-accel-redirect"),
                                    PV_STR("x-accel-limit-rate"), PV_STR("x-accel-buffering"),
                                    PV_STR("x-accel-charset")};
    if (pv_str_in_ilist(n, fc->hide, fc->nhide))
        return 1;
    return pv_str_in_ilist(n, dflt, (int)PV_NELEM(dflt)) && !pv_str_in_ilist(n, fc->pass, fc->npass);
}

void pv_fcgi_head_fields(pv_request_t *r, const pv_fastcgi_conf_t *fc, const pv_fcgi_rx_t *rx, pv_resp_head_t *h,
                         pv_header_t *out, int64_t *clen)
{
    for (int i = 0; i < rx->nfields; i++) {
        const pv_header_t *f = &rx->fields[i];
        if (PV_STR_IEQ(f->name, "content-type")) {
            h->content_type = f->value;
        } else if (PV_STR_IEQ(f->name, "content-length")) {
            int64_t cl;
            if (pv_http_parse_content_length(f->value, &cl) != 0)
                cl = -1;
            *clen = cl;
            if (cl >= 0 && !(r->flags & PV_REQ_F_HEAD)) {
                h->content_length = cl;
                h->frame = PV_FRAME_NONE;
            }
        } else if (PV_STR_IEQ(f->name, "location") && !pv_fcgi_hidden(fc, f->name)) {
            h->location = f->value.len && f->value.p[0] == '/'
                              ? pv_router_location_url(r, f->value, 0, (pv_str_t){"", 0})
                              : f->value;
        } else if (!pv_fcgi_hidden(fc, f->name) && !pv_header_is_hop_by_hop(f->name)) {
            out[h->nfields++] = *f;
            if (PV_STR_IEQ(f->name, "server"))
                h->server = (pv_str_t){"", 0};
            else if (PV_STR_IEQ(f->name, "date"))
                h->no_date = 1;
        }
        if (f->name.len == 15 && !(fc->ignore & PV_IGN_X_ACCEL_CHARSET) && PV_STR_IEQ(f->name, "x-accel-charset"))
            r->accel_charset = f->value; /* the charset to recode into, as the proxy's */
    }
}
