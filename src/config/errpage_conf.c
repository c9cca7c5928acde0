/* error_page, recursive_error_pages and proxy_intercept_errors, with
 * NGINX's syntax and messages (ngx_http_core_error_page). The pages are
 * served by internal redirects (http/redirect.c). */
#include "conf_int.h"

#include <string.h>
#include <strings.h>

static int set_error_page_cb(pv_conf_ctx_t *cx, const pv_conf_cmd_t *cmd, const pv_conf_node_t *nd,
                             void *base)
{
    PV_UNUSED(cmd);
    PV_UNUSED(base);
    pv_loc_conf_t *lc = cx->lc;
    int last = nd->nargs - 1, ncodes = last - 1, overwrite = -1;
    const char *eq = ARG(nd, last - 1);
    if (eq[0] == '=') {
        if (last - 1 == 1)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", eq);
        if (eq[1]) {
            int64_t v = pv_conf_parse_num((pv_str_t){eq + 1, nd->args[last - 1].len - 1});
            if (v < 0 || v > 999)
                return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", eq);
            overwrite = (int)v;
        } else {
            overwrite = 0;
        }
        ncodes--;
    }
    pv_cv_t uri;
    if (pv_conf_compile(cx, nd, &uri, ARG(nd, last), nd->args[last].len) != PV_OK)
        return PV_ERR;
    for (int i = 1; i <= ncodes; i++) {
        int64_t st = pv_conf_parse_num(nd->args[i]);
        if (st < 0 || st == 499)
            return pv_conf_error(cx, &nd->src, "invalid value \"%s\"", ARG(nd, i));
        if (st < 300 || st > 599)
            return pv_conf_error(cx, &nd->src, "value \"%s\" must be between 300 and 599", ARG(nd, i));
        pv_error_page_t *e = pv_conf_push(cx->a, &lc->error_pages, &lc->nerror_pages, sizeof(*e));
        e->status = (int)st;
        e->overwrite = overwrite;
        e->src = nd->src;
        /* NGINX's own codes for TLS errors and too large headers answer 400 */
        if (overwrite == -1 && (st == 494 || st == 495 || st == 496 || st == 497))
            e->overwrite = 400;
        e->uri = uri;
    }
    return PV_OK;
}

#define LOC(f) PV_BASE_LOC, offsetof(pv_loc_conf_t, f)
#define NONE PV_BASE_NONE, 0

static const pv_conf_cmd_t errpage_cmds[] = {
    {"error_page", PV_CTX_ANY_LOC | PV_CTX_LIF, PV_ARGS_2MORE, set_error_page_cb, NONE, NULL},
    {"recursive_error_pages", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOC(recursive_error_pages), NULL},
    {"proxy_intercept_errors", PV_CTX_ANY_LOC, PV_ARGS_FLAG, pv_conf_flag_slot, LOC(proxy_intercept_errors), NULL},
};

const pv_conf_module_t pv_conf_errpage_module = {"error_page", errpage_cmds, PV_NELEM(errpage_cmds)};
