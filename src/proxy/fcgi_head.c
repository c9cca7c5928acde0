/* The response head's field rules of fastcgi_pass: which fields stay
 * out of the client's head (fastcgi_hide_header, fastcgi_pass_header and
 * NGINX's default set). */
#include "fastcgi.h"

#include <string.h>

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
