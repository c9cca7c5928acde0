/* The header filters: expires, add_header, the Server token.
 * Each looks at the merged settings of the answering location; nothing
 * is allocated unless a field is added or replaced. */
#include "hfilter.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/time.h"
#include "server.h"
#include "timing.h"
#include "trace.h"
#include "uvars.h"

static const pv_loc_conf_t *lconf(const pv_hreq_t *hr)
{
    if (hr->r.loc)
        return &hr->r.loc->conf;
    return hr->r.srv ? &hr->r.srv->conf : NULL;
}

const char *pv_hfilter_token(const pv_hreq_t *hr)
{
    const pv_loc_conf_t *lc = lconf(hr);
    if (lc && lc->hdr.server_tokens == PV_TOKENS_OFF)
        return PV_NAME;
    return PV_NAME "/" PV_VERSION; /* on, and build: portvakt has no build name */
}

/* The statuses add_header (without always) and expires apply to. */
static int safe_status(int st)
{
    switch (st) {
    case 200: case 201: case 204: case 206: case 301: case 302: case 303: case 304: case 307: case 308:
        return 1;
    default:
        return 0;
    }
}

/* ---- expires -------------------------------------------------------------- */

static void http_date(int64_t t, char *out)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The next local time of day at `when` seconds after midnight, as
 * ngx_next_time(). */
static int64_t next_time(int64_t now, int64_t when)
{
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_hour = (int)(when / 3600);
    when %= 3600;
    tm.tm_min = (int)(when / 60);
    tm.tm_sec = (int)(when % 60);
    tm.tm_isdst = -1;
    time_t next = mktime(&tm);
    if (next == (time_t)-1)
        return -1;
    if (next - (time_t)now > 0)
        return next;
    tm.tm_mday++;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

void pv_hfilter_expires(int kind, int64_t t, int64_t now, int64_t lm, char *date, char *cc)
{
    if (kind == PV_EXPIRES_EPOCH) {
        strcpy(date, "Thu, 01 Jan 1970 00:00:01 GMT");
        strcpy(cc, "no-cache");
        return;
    }
    if (kind == PV_EXPIRES_MAX) {
        strcpy(date, "Thu, 31 Dec 2037 23:55:55 GMT");
        strcpy(cc, "max-age=315360000");
        return;
    }
    if (t == 0 && kind != PV_EXPIRES_DAILY) {
        http_date(now, date);
        strcpy(cc, "max-age=0");
        return;
    }
    int64_t at, max_age;
    if (kind == PV_EXPIRES_DAILY) {
        at = next_time(now, t);
        max_age = at - now;
    } else if (kind == PV_EXPIRES_ACCESS || lm == -1) {
        max_age = t;
        at = now + t;
    } else {
        at = lm + t;
        max_age = at - now;
    }
    http_date(at, date);
    if (t < 0 || max_age < 0)
        strcpy(cc, "no-cache");
    else
        snprintf(cc, 32, "max-age=%lld", (long long)max_age);
}

/* An IMF-fixdate (the form upstreams send) as seconds; -1 otherwise. */
static int64_t parse_http_date(pv_str_t v)
{
    char buf[40];
    if (v.len < 29 || v.len >= sizeof(buf))
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    return (int64_t)timegm(&tm);
}

/* ---- the field list ------------------------------------------------------- */

typedef struct {
    pv_header_t *f;
    int n;
} flist_t;

static int find(const flist_t *l, pv_str_t name)
{
    for (int i = 0; i < l->n; i++)
        if (l->f[i].name.len == name.len && pv_str_ieq(l->f[i].name, name.p, name.len))
            return i;
    return -1;
}

static void drop(flist_t *l, int i)
{
    memmove(&l->f[i], &l->f[i + 1], sizeof(*l->f) * (size_t)(l->n - i - 1));
    l->n--;
}

/* Set name to value: the first field of that name takes it, the others
 * go (NGINX's headers_out.expires and cache_control); else appended. */
static void set_one(flist_t *l, pv_str_t name, pv_str_t value)
{
    int i = find(l, name);
    if (i < 0) {
        l->f[l->n++] = (pv_header_t){name, value};
        return;
    }
    l->f[i].value = value;
    for (int j = l->n - 1; j > i; j--)
        if (l->f[j].name.len == name.len && pv_str_ieq(l->f[j].name, name.p, name.len))
            drop(l, j);
}

static void apply_expires(pv_request_t *r, const pv_hdr_conf_t *hc, flist_t *l)
{
    int64_t lm = -1;
    int i = find(l, PV_STR("Last-Modified"));
    if (i >= 0)
        lm = parse_http_date(l->f[i].value);
    int kind = hc->expires;
    int64_t t = hc->expires_time;
    if (hc->expires_value) {
        const char *err;
        pv_str_t v = pv_cv_eval_arena(hc->expires_value, r);
        if (pv_conf_parse_expires(v, kind == PV_EXPIRES_MODIFIED, &kind, &t, &err) != PV_OK ||
            kind == PV_EXPIRES_OFF)
            return;
    }
    char *date = pv_arena_alloc(r->arena, 40), *cc = pv_arena_alloc(r->arena, 32);
    pv_hfilter_expires(kind, t, pv_time_ms() / 1000, lm, date, cc);
    set_one(l, PV_STR("Expires"), (pv_str_t){date, strlen(date)});
    set_one(l, PV_STR("Cache-Control"), (pv_str_t){cc, strlen(cc)});
}

static void apply_add_header(pv_request_t *r, const pv_add_header_t *a, flist_t *l)
{
    pv_str_t v = pv_cv_eval_arena(&a->value, r);
    if (v.len && (memchr(v.p, '\r', v.len) || memchr(v.p, '\n', v.len) || memchr(v.p, '\0', v.len))) {
        char *s = pv_arena_alloc(r->arena, v.len);
        for (size_t k = 0; k < v.len; k++)
            s[k] = v.p[k] == '\r' || v.p[k] == '\n' || v.p[k] == '\0' ? ' ' : v.p[k];
        v.p = s;
    }
    if (a->replace) {
        int i = find(l, a->name);
        if (i >= 0 && !v.len) {
            drop(l, i);
            return;
        }
        if (i >= 0) {
            l->f[i] = (pv_header_t){a->name, v};
            return;
        }
    }
    if (v.len)
        l->f[l->n++] = (pv_header_t){a->name, v};
}

void pv_hfilter_apply(pv_hreq_t *hr, pv_resp_head_t *h)
{
    /* error_page's code, whatever the page's own response says */
    if (hr->r.err_status && h->status != hr->r.err_status && !h->upgrade) {
        h->status = hr->r.err_status;
        h->reason = (pv_str_t){NULL, 0};
    }
    /* the Location of the redirect an error_page URI answers stays, as in
     * NGINX, unless the page's response has its own */
    if (hr->r.err_location.p && !h->location.p)
        h->location = hr->r.err_location;
    if (!h->server.p)
        h->server = (pv_str_t){pv_hfilter_token(hr), strlen(pv_hfilter_token(hr))};
    const pv_loc_conf_t *lc = lconf(hr);
    if (!lc)
        return;
    const pv_hdr_conf_t *hc = &lc->hdr;
    pv_request_t *r = &hr->r;
    int safe = safe_status(h->status);
    const pv_trace_conf_t *tc = &lc->trace;
    if (!(hc->expires != PV_EXPIRES_OFF && safe) && !hc->nadd && !tc->response)
        return;
    flist_t l = {pv_arena_alloc(r->arena, sizeof(pv_header_t) * (size_t)(h->nfields + hc->nadd + 4)), 0};
    if (h->nfields)
        memcpy(l.f, h->fields, sizeof(pv_header_t) * (size_t)h->nfields);
    l.n = h->nfields;
    if (hc->expires != PV_EXPIRES_OFF && safe)
        apply_expires(r, hc, &l);
    /* $sent_http_NAME in a value sees the fields made before it, as in
     * NGINX, where each add_header joins headers_out once made */
    pv_header_t *sent = r->resp_headers;
    int nsent = r->nresp_headers;
    for (int i = 0; i < hc->nadd; i++) {
        r->resp_headers = l.f;
        r->nresp_headers = l.n;
        if (safe || hc->add[i].always)
            apply_add_header(r, &hc->add[i], &l);
    }
    r->resp_headers = sent;
    r->nresp_headers = nsent;
    /* request_id_header and server_timing: on every response, errors too */
    if (tc->rid_header_len)
        set_one(&l, (pv_str_t){tc->rid_header, tc->rid_header_len}, pv_request_id(r));
    if (tc->server_timing)
        l.f[l.n++] = (pv_header_t){PV_STR("Server-Timing"), pv_timing_server_timing(r)};
    h->fields = l.f;
    h->nfields = l.n;
}

int pv_hfilter_replaced(pv_hreq_t *hr, int status, const char *name, size_t len, pv_str_t *v)
{
    const pv_loc_conf_t *lc = lconf(hr);
    int found = 0;
    for (int i = 0; lc && i < lc->hdr.nadd; i++) {
        const pv_add_header_t *a = &lc->hdr.add[i];
        if (!a->replace || (!a->always && !safe_status(status)) || !pv_str_ieq(a->name, name, len))
            continue;
        *v = pv_cv_eval_arena(&a->value, &hr->r);
        found = 1;
    }
    return found;
}

/* ---- add_trailer ---------------------------------------------------------- */

/* As NGINX's headers filter sets expect_trailers: an add_trailer applies
 * to a response of this status. */
int pv_hfilter_trailers_expected(const pv_hreq_t *hr, int status)
{
    const pv_loc_conf_t *lc = lconf(hr);
    if (!lc)
        return 0;
    int safe = safe_status(status);
    for (int i = 0; i < lc->hdr.ntrailers; i++)
        if (safe || lc->hdr.trailers[i].always)
            return 1;
    return 0;
}

/* Each add_trailer in order, appended to what is there (the upstream's,
 * HTTP/2); $sent_trailer_NAME in a value sees the trailers before it, as
 * in NGINX, where each one joins the list once made. */
void pv_hfilter_trailers(pv_hreq_t *hr)
{
    const pv_loc_conf_t *lc = lconf(hr);
    if (!lc || !lc->hdr.ntrailers)
        return;
    pv_request_t *r = &hr->r;
    int safe = safe_status(r->status);
    r->sent_trailers = hr->resp_trailers;
    for (int i = 0; i < lc->hdr.ntrailers; i++) {
        const pv_add_header_t *a = &lc->hdr.trailers[i];
        if (!safe && !a->always)
            continue;
        pv_str_t v = pv_cv_eval_arena(&a->value, r);
        if (!v.len)
            continue;
        pv_str_t old = r->sent_trailers;
        size_t len = old.len + a->name.len + 2 + v.len + 1;
        char *s = pv_arena_alloc(r->arena, len), *o = s;
        if (old.len)
            memcpy(o, old.p, old.len);
        o += old.len;
        memcpy(o, a->name.p, a->name.len);
        o += a->name.len;
        *o++ = ':';
        *o++ = ' ';
        for (size_t k = 0; k < v.len; k++) /* no line breaks into the trailer section */
            *o++ = v.p[k] == '\r' || v.p[k] == '\n' || v.p[k] == '\0' ? ' ' : v.p[k];
        *o++ = '\n';
        r->sent_trailers = (pv_str_t){s, len};
    }
    hr->resp_trailers = r->sent_trailers;
}
