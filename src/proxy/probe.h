/* portvakt_live and portvakt_ready: the gateway's liveness and readiness
 * (see probe.c). */
#ifndef PV_PROBE_H
#define PV_PROBE_H

#include "../core/module.h"

extern pv_module_t pv_probe_module;

#endif
