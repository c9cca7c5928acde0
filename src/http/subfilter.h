/* NGINX's sub_filter (ngx_http_sub_filter_module) as a body filter
 * module (bfilter.h): the strings of sub_filter replaced in the bodies
 * of the types sub_filter_types names. */
#ifndef PV_HTTP_SUBFILTER_H
#define PV_HTTP_SUBFILTER_H

#include "bfilter.h"

extern const pv_bfilter_module_t pv_sub_filter_module;

#endif
