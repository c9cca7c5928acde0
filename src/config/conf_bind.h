/* proxy_bind's setting (pv_loc_conf_t.proxy_bind): a local address, or
 * one made per request from variables. */
#ifndef PV_CONF_BIND_H
#define PV_CONF_BIND_H

#include "../core/net.h"
#include "cv.h"

typedef struct pv_bind_conf_s {
    pv_net_bind_t addr;
    pv_cv_t *cv; /* with variables (addr then unused) */
} pv_bind_conf_t;

#endif
