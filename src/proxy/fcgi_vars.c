/* fastcgi_pass's variables: $fastcgi_script_name and $fastcgi_path_info,
 * the URI split by fastcgi_split_path_info, fastcgi_index added to a
 * script name ending in '/'. */
#include "fastcgi.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "../core/log.h"
#include "../http/accesslog.h"
#include "../http/vars.h"

void pv_fastcgi_split(pv_request_t *r, pv_str_t *script, pv_str_t *path_info)
{
    const pv_fastcgi_conf_t *fc = &r->loc->conf.fastcgi;
    *script = r->uri;
    *path_info = (pv_str_t){"", 0};
    if (fc->split) {
        pcre2_code *re = (pcre2_code *)fc->split->code;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int rc = md ? pcre2_match(re, (PCRE2_SPTR)(r->uri.p ? r->uri.p : ""), r->uri.len, 0, 0, md, NULL) : -1;
        if (rc >= 3) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            if (ov[2] != PCRE2_UNSET)
                *script = (pv_str_t){r->uri.p + ov[2], ov[3] - ov[2]};
            if (ov[4] != PCRE2_UNSET)
                *path_info = (pv_str_t){r->uri.p + ov[4], ov[5] - ov[4]};
        } else if (rc >= 0) {
            pv_log_r(r, PV_LOG_ERR, "number of captures in fastcgi_split_path_info \"%s\" is less than 2",
                     fc->split->src);
        }
        if (md)
            pcre2_match_data_free(md);
    }
    if (fc->index.len && script->p && script->len && script->p[script->len - 1] == '/') {
        char *p = pv_arena_alloc(r->arena, script->len + fc->index.len);
        memcpy(p, script->p, script->len);
        memcpy(p + script->len, fc->index.p, fc->index.len);
        *script = (pv_str_t){p, script->len + fc->index.len};
    }
}

static int script_name_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    PV_UNUSED(part);
    PV_UNUSED(o);
    pv_str_t info;
    if (!r->loc)
        return PV_VAL_MISSING;
    pv_fastcgi_split(r, v, &info);
    return PV_VAL_FOUND;
}

static int path_info_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    PV_UNUSED(part);
    PV_UNUSED(o);
    pv_str_t script;
    if (!r->loc)
        return PV_VAL_MISSING;
    pv_fastcgi_split(r, &script, v);
    return PV_VAL_FOUND;
}

const pv_var_t pv_vars_fastcgi[] = {
    PV_VAR("fastcgi_script_name", script_name_cb, 0),
    PV_VAR("fastcgi_path_info", path_info_cb, 0),
    PV_VAR_END,
};
