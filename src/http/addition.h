/* The addition module (NGINX's ngx_http_addition_filter_module): a body
 * filter that puts the body of a subrequest for add_before_body's URI
 * before a main response of addition_types, and add_after_body's after
 * it, on the subrequest seam (subreq.h). */
#ifndef PV_HTTP_ADDITION_H
#define PV_HTTP_ADDITION_H

#include "bfilter.h"

extern const pv_bfilter_module_t pv_addition_bfilter;

#endif
