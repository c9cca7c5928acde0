/* X-Accel-Redirect: the upstream (proxy_pass, fastcgi_pass) names a URI
 * or a named location that answers the request instead of its response,
 * as NGINX's upstream module does (unless *_ignore_headers names the
 * field). The redirect is the
 * one of redirect.c, counted with every other URI change of the request. */
#include <string.h>

#include "../core/log.h"
#include "../http/accesslog.h"
#include "../http/body.h"
#include "../http/redirect.h"
#include "../http/server.h"
#include "../http/timing.h"
#include "../upstream/upstream.h"
#include "pcache.h"
#include "proxy.h"

/* Fields of the redirecting response that go on with the request, as
 * NGINX's upstream table marks them (its `redirect` column); its
 * Content-Type stays the type of the response unless that has its own,
 * as NGINX keeps it in the response it is building. */
static int kept(pv_str_t n)
{
    return PV_STR_IEQ(n, "set-cookie") || PV_STR_IEQ(n, "content-disposition") ||
           PV_STR_IEQ(n, "cache-control") || PV_STR_IEQ(n, "expires") || PV_STR_IEQ(n, "accept-ranges");
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* Decode the %XX escapes of src (n bytes) into dst (room for n); returns
 * the length. Other bytes are copied as they are. */
static size_t unescape(const char *src, size_t n, char *dst)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int h = i + 2 < n ? hexval(src[i + 1]) : -1, l = i + 2 < n ? hexval(src[i + 2]) : -1;
        if (src[i] == '%' && h >= 0 && l >= 0) {
            dst[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            dst[k++] = src[i];
        }
    }
    return k;
}

/* Whether the path p (without its arguments) climbs out with a ".."
 * segment or holds a NUL byte (NGINX's ngx_http_parse_unsafe_uri). */
static int unsafe_path(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\0')
            return 1;
        int seg_start = i == 0 || p[i - 1] == '/';
        if (seg_start && p[i] == '.' && i + 1 < n && p[i + 1] == '.' && (i + 2 == n || p[i + 2] == '/'))
            return 1;
    }
    return 0;
}

/* Split v into the URI, its %XX escapes decoded into the arena, and its
 * arguments (as written); 0 when the URI is unsafe as written or once
 * decoded. */
static int split_uri(pv_arena_t *a, pv_str_t v, pv_str_t *uri, pv_str_t *args)
{
    const char *q = memchr(v.p, '?', v.len);
    *uri = (pv_str_t){v.p, q ? (size_t)(q - v.p) : v.len};
    *args = q ? (pv_str_t){q + 1, v.len - uri->len - 1} : (pv_str_t){NULL, 0};
    if (!uri->len || unsafe_path(uri->p, uri->len))
        return 0;
    if (!memchr(uri->p, '%', uri->len))
        return 1;
    char *d = pv_arena_alloc(a, uri->len);
    *uri = (pv_str_t){d, unescape(uri->p, uri->len, d)};
    return !unsafe_path(uri->p, uri->len);
}

void pv_proxy_keep_fields(pv_request_t *r, const pv_uresp_t *rp)
{
    pv_proxy_keep_head(r, rp->fields, rp->nfields);
}

void pv_proxy_keep_head(pv_request_t *r, const pv_header_t *f, int n)
{
    pv_header_t *hs = pv_arena_alloc(r->arena, sizeof(*hs) * (size_t)(n ? n : 1));
    if (!hs) {
        r->nupstream_headers = 0;
        return;
    }
    for (int i = 0; i < n; i++) {
        hs[i].name = (pv_str_t){pv_arena_strndup(r->arena, f[i].name.p, f[i].name.len), f[i].name.len};
        hs[i].value = (pv_str_t){pv_arena_strndup(r->arena, f[i].value.p, f[i].value.len), f[i].value.len};
    }
    r->upstream_headers = hs;
    r->nupstream_headers = n;
}

/* The upstream connection is done with: back to the pool when the
 * response (no body, or an empty one) is complete, else closed. */
static void release(pv_proxy_t *px)
{
    pv_upconn_t *u = px->u;
    if (!u)
        return;
    pv_upstream_done_t d = {
        .resp_complete = px->rp.body_done,
        .req_complete = px->req_done,
        .early_response = px->resp_early,
        .keep = px->upstream_keep && px->rp.keepalive,
        .leftover = px->uin->pos != px->uin->last,
        .failed = !px->rp.body_done,
    };
    pv_proxy_release_server(px, PV_BAL_OK);
    px->u = NULL;
    pv_upstream_release(u, &d);
}

int pv_proxy_accel_redirect(pv_proxy_t *px)
{
    const pv_loc_conf_t *lc = &px->loc->conf;
    pv_accel_t a = {px->rp.fields, px->rp.nfields, lc->hdr.ignore == PV_UNSET ? 0 : lc->hdr.ignore,
                    &lc->proxy_pipe, release};
    return pv_accel_redirect(px, &a);
}

int pv_accel_redirect(pv_proxy_t *px, const pv_accel_t *a)
{
    pv_hreq_t *hr = px->hr;
    pv_request_t *r = px->r;
    const pv_header_t *to = NULL;
    if (a->ignore & PV_IGN_X_ACCEL_REDIRECT)
        return 0;
    for (int i = 0; i < a->nfields && !to; i++)
        if (a->fields[i].name.len == 16 && PV_STR_IEQ(a->fields[i].name, "x-accel-redirect"))
            to = &a->fields[i];
    if (!to)
        return 0;

    /* what NGINX takes from the response before it goes: the rate
     * (X-Accel-Limit-Rate) and the fields of kept() */
    pv_pipe_start(px, a->pipe, a->ignore, a->fields, a->nfields);
    for (int i = 0; i < a->nfields; i++) {
        const pv_header_t *f = &a->fields[i];
        if (kept(f->name))
            pv_error_page_keep(hr, f);
        else if (f->name.len == 12 && PV_STR_IEQ(f->name, "content-type"))
            r->accel_type = (pv_str_t){pv_arena_strndup(r->arena, f->value.p, f->value.len), f->value.len};
    }
    pv_str_t v = {pv_arena_strndup(r->arena, to->value.p, to->value.len), to->value.len};
    pv_proxy_keep_head(r, a->fields, a->nfields); /* NGINX keeps them until another upstream answers */
    pv_proxy_append_status(r, px->status);
    pv_utry_mark(r, PV_UTRY_RESPONSE);
    a->release(px);
    pv_pcache_cleanup(hr); /* a cached location's entry is not filled by this response */
    r->pcache = NULL;

    /* a named location gets the body again when it can be sent again;
     * a URI is asked for with GET, without it (as error_page's) */
    int named = v.len && v.p[0] == '@';
    if (!named || pv_body_rewind(hr) != 0) {
        r->flags |= PV_REQ_F_BODY_DROPPED;
        if (!hr->body_done)
            r->flags &= ~PV_REQ_F_KEEPALIVE;
    }
    if (named) {
        pv_named_location(hr, v);
        return 1;
    }
    pv_str_t uri, args;
    if (!split_uri(r->arena, v, &uri, &args)) {
        pv_log_r(r, PV_LOG_ERR, "unsafe URI \"%.*s\" was detected, client: %s", (int)v.len, v.p, pv_log_client(r));
        hr->handling = 0;
        pv_resp_error(hr, 404);
        return 1;
    }
    if (!(r->flags & PV_REQ_F_HEAD)) {
        r->method = PV_STR("GET");
        r->method_id = HTTP_GET;
    }
    pv_internal_redirect(hr, uri, args);
    return 1;
}
