/* User variables (set, map, named captures) and regex captures of a
 * request, as NGINX's ngx_http_variables.c keeps them: a value set in the
 * request wins; a map's variable is looked up on first use and cached
 * unless the map is volatile; a `set` variable read before it is set is
 * empty, with a warning under uninitialized_variable_warn. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "uvars.h"

#include <pcre2.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "map.h"
#include "vars.h"
#include "accesslog.h"

static __thread pcre2_match_data *tls_md;
static __thread uint32_t tls_md_pairs;

void pv_uvars_thread_cleanup(void)
{
    pcre2_match_data_free(tls_md);
    tls_md = NULL;
    tls_md_pairs = 0;
}

static pv_uval_t *slot_of(pv_request_t *r, int slot)
{
    const pv_http_conf_t *h = r->conf ? r->conf->http : NULL;
    if (!h || slot < 0 || slot >= h->nuvars || !r->arena)
        return NULL;
    if (!r->uvals)
        r->uvals = pv_arena_calloc(r->arena, (size_t)h->nuvars * sizeof(pv_uval_t));
    return &r->uvals[slot];
}

void pv_uvar_set(pv_request_t *r, int slot, const char *p, size_t len)
{
    pv_uval_t *u = slot_of(r, slot);
    if (!u)
        return;
    u->p = p ? p : "";
    u->len = (uint32_t)len;
    u->state = PV_UVAL_SET;
}

pv_str_t pv_cv_eval_arena(const pv_cv_t *cv, pv_request_t *r)
{
    if (cv->is_const && cv->nparts > 0)
        return cv->parts[0].text;
    char small[256];
    size_t need = pv_cv_eval(cv, r, PV_ESCAPE_NONE, small, sizeof(small));
    char *p = pv_arena_alloc(r->arena, need + 1);
    if (need < sizeof(small))
        memcpy(p, small, need);
    else
        pv_cv_eval(cv, r, PV_ESCAPE_NONE, p, need + 1);
    p[need] = '\0';
    return (pv_str_t){p, need};
}

/* rx on subject, with match data for pairs pairs at least: the pairs
 * set (all the data holds when there are more), 0 when it does not
 * match, -1 on an error (logged). */
static int run(const pv_regex_t *rx, pv_str_t subject, uint32_t pairs)
{
    if (!tls_md || tls_md_pairs < pairs) {
        pcre2_match_data_free(tls_md);
        tls_md_pairs = pairs < 16 ? 16 : pairs;
        tls_md = pcre2_match_data_create(tls_md_pairs, NULL);
        if (!tls_md) {
            tls_md_pairs = 0;
            return -1;
        }
    }
    int rc = pcre2_match((const pcre2_code *)rx->code, (PCRE2_SPTR)(subject.p ? subject.p : ""),
                         subject.len, 0, 0, tls_md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        pv_log(PV_LOG_ERR, "pcre2_match() failed: %d on \"%.*s\" using \"%s\"", rc,
               (int)PV_MIN(subject.len, 256), subject.p, rx->src);
        return -1;
    }
    return rc == 0 ? (int)tls_md_pairs : rc;
}

int pv_regex_test(const pv_regex_t *rx, pv_str_t subject)
{
    int rc = run(rx, subject, 1);
    return rc > 0 ? 1 : rc;
}

int pv_regex_exec(pv_request_t *r, const pv_regex_t *rx, pv_str_t subject)
{
    uint32_t pairs = (uint32_t)rx->ncaptures + 1;
    int rc = run(rx, subject, pairs);
    if (rc <= 0)
        return rc;
    if (!rx->ncaptures && !rx->nnames)
        return 1;
    /* the subject may be a scratch buffer: keep a copy for the captures */
    char *data = pv_arena_strndup(r->arena, subject.p ? subject.p : "", subject.len);
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(tls_md);
    if (rx->ncaptures) {
        if (!r->captures || r->ncaptures < 2 * rc)
            r->captures = pv_arena_alloc(r->arena, (size_t)(2 * pairs) * sizeof(size_t));
        for (int i = 0; i < 2 * rc; i += 2) {
            int unset = ov[i] == PCRE2_UNSET;
            r->captures[i] = unset ? 0 : ov[i];
            r->captures[i + 1] = unset ? 0 : ov[i + 1];
        }
        r->ncaptures = 2 * rc;
        r->captures_data = data;
    }
    for (int i = 0; i < rx->nnames; i++) {
        int g = rx->name_group[i];
        if (g < rc && ov[2 * g] != PCRE2_UNSET)
            pv_uvar_set(r, rx->name_slot[i], data + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        else
            pv_uvar_set(r, rx->name_slot[i], "", 0);
    }
    return 1;
}

/* ---- getters ---- */

/* $1..$9: the group of the last match, empty when it has none. */
static int capture_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    int n = 2 * part->index;
    if (n + 1 < r->ncaptures && r->captures_data)
        *v = (pv_str_t){r->captures_data + r->captures[n], r->captures[n + 1] - r->captures[n]};
    else
        *v = (pv_str_t){"", 0};
    return PV_VAL_FOUND;
}

/* auth_request_set stores its values by name, after the rewrite phases. */
static int auth_value(const pv_request_t *r, const pv_cv_part_t *part, pv_str_t *v)
{
    for (int i = r->nuvars - 1; i >= 0; i--) {
        if (r->uvars[i].name.len == part->text.len &&
            strncasecmp(r->uvars[i].name.p, part->text.p, part->text.len) == 0) {
            *v = pv_var_hdr_value(&r->uvars[i]);
            return 1;
        }
    }
    return 0;
}

static int uninitialized(pv_request_t *r, const pv_cv_part_t *part, pv_str_t *v)
{
    const pv_http_conf_t *h = r->conf->http;
    if (!h->uvar_is_set || !h->uvar_is_set[part->index])
        return PV_VAL_MISSING;
    const pv_loc_conf_t *lc = r->loc ? &r->loc->conf : r->srv ? &r->srv->conf : NULL;
    if (lc && lc->uninitialized_variable_warn == 1)
        pv_log_r(r, PV_LOG_WARN, "using uninitialized \"%.*s\" variable, client: %s", (int)part->text.len,
               part->text.p, pv_log_client(r));
    *v = (pv_str_t){"", 0};
    return PV_VAL_FOUND;
}

static int user_cb(pv_request_t *r, const pv_cv_part_t *part, pv_var_out_t *o, pv_str_t *v)
{
    if (r->nuvars && auth_value(r, part, v))
        return PV_VAL_FOUND;
    pv_uval_t *u = slot_of(r, part->index);
    if (!u)
        return PV_VAL_MISSING;
    if (u->state == PV_UVAL_SET) {
        *v = (pv_str_t){u->p, u->len};
        return PV_VAL_FOUND;
    }
    const pv_map_t *m = r->conf->http->uvar_maps[part->index];
    if (!m)
        return uninitialized(r, part, v);
    if (u->state == PV_UVAL_BUSY) {
        pv_log_r(r, PV_LOG_ERR, "cycle while evaluating variable \"%.*s\", client: %s",
               (int)part->text.len, part->text.p, pv_log_client(r));
        *v = (pv_str_t){"", 0};
        return PV_VAL_FOUND;
    }
    u->state = PV_UVAL_BUSY;
    *v = pv_map_eval(r, m);
    u = slot_of(r, part->index); /* the map may have set other slots */
    u->state = PV_UVAL_NONE;
    if (!m->is_volatile)
        pv_uvar_set(r, part->index, v->p, v->len);
    return PV_VAL_FOUND;
}

const pv_var_t pv_var_user = PV_VAR("", user_cb, 0);
const pv_var_t pv_var_capture = PV_VAR("", capture_cb, 0);
