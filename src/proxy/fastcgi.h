/* fastcgi_pass: requests to FastCGI responders, as ngx_http_fastcgi_module. */
#ifndef PV_FASTCGI_H
#define PV_FASTCGI_H

#include "../config/conf.h"
#include "proxy.h"

/* $fastcgi_script_name and $fastcgi_path_info (fastcgi_split_path_info,
 * fastcgi_index) of r in its location. */
void pv_fastcgi_split(pv_request_t *r, pv_str_t *script, pv_str_t *path_info);

/* The module: the content handler of fastcgi_pass locations. */
extern pv_module_t pv_fastcgi_module;

#endif
