/* Internal redirects and error_page. A redirect is decided where a
 * response would have been made (deep in a content handler's call chain,
 * or in a phase handler) but runs from the worker's loop once that chain
 * has returned: until then the request is parked under a handler of its
 * own, so the handler that was answering is never re-entered and is
 * cleaned up before the request starts over. */
#include "redirect.h"

#include <string.h>

#include "../core/log.h"
#include "errpage.h"
#include "phases.h"
#include "response.h"
#include "server.h"
#include "uvars.h"
#include "accesslog.h"

int pv_uri_change(pv_request_t *r)
{
    return ++r->uri_changes > PV_MAX_URI_CHANGES ? PV_ERR : PV_OK;
}

/* A redirect waiting for the loop. */
typedef struct pending_s {
    pv_hreq_t *hr;
    const pv_handler_t *old;    /* the handler that had the request, and its state */
    void *old_ctx;
    pv_location_t *named;       /* a named location's redirect: the location */
    struct pending_s *prev, *next;
    int linked;
} pending_t;

static __thread pending_t *pending_head;

static void unlink_pending(pending_t *p)
{
    if (!p->linked)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        pending_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->linked = 0;
}

static void parked_proceed(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
}

static void parked_abort(pv_hreq_t *hr)
{
    unlink_pending(hr->handler_ctx);
}

/* hr leaves the queue, and the handler it had before it was parked frees
 * its state. */
static void unpark(pv_hreq_t *hr, pending_t *p)
{
    unlink_pending(p);
    hr->handler = p->old;
    hr->handler_ctx = p->old_ctx;
    if (p->old && p->old->cleanup)
        p->old->cleanup(hr);
    hr->handler = NULL;
    hr->handler_ctx = NULL;
}

/* The request is freed while parked: the old handler's state goes too. */
static void parked_cleanup(pv_hreq_t *hr)
{
    unpark(hr, hr->handler_ctx);
}

static const pv_handler_t parked = {"internal redirect", parked_proceed, parked_proceed, parked_abort,
                                    parked_cleanup};

static void park(pv_hreq_t *hr, pv_location_t *named)
{
    pending_t *p = pv_arena_calloc(&hr->arena, sizeof(*p));
    p->hr = hr;
    p->old = hr->handler;
    p->old_ctx = hr->handler_ctx;
    p->named = named;
    p->next = pending_head;
    if (pending_head)
        pending_head->prev = p;
    pending_head = p;
    p->linked = 1;
    hr->handler = &parked;
    hr->handler_ctx = p;
    hr->handling = 1;
}

/* What every internal redirect resets: the location and what its search
 * and scripts left. */
static void reset(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    r->loc = NULL;
    r->uri_changed = 0;
    r->ncaptures = 0;
    r->flags &= ~(unsigned)(PV_REQ_F_LOC_INVALID | PV_REQ_F_ADD_URI_TO_ALIAS | PV_REQ_F_NO_UPSTREAM);
    r->flags |= PV_REQ_F_REWRITTEN;
    if (hr->acc.active)
        r->flags |= PV_REQ_F_ACCESS_DONE;
}

static void cycle(pv_hreq_t *hr, const char *what, pv_str_t to)
{
    pv_log_r(&hr->r, PV_LOG_ERR, "rewrite or internal redirection cycle while %s \"%.*s\", client: %s", what,
           (int)to.len, to.p, pv_log_client(&hr->r));
    hr->r.error_page = 1; /* the 500 is sent as it is */
    hr->r.err_status = 0;
    hr->r.err_location = (pv_str_t){NULL, 0};
    hr->proto->resp->local(hr, 500, NULL, (pv_str_t){NULL, 0});
}

void pv_internal_redirect(pv_hreq_t *hr, pv_str_t uri, pv_str_t args)
{
    pv_request_t *r = &hr->r;
    if (pv_uri_change(r) != PV_OK) {
        cycle(hr, "internally redirecting to", uri);
        return;
    }
    r->uri = (pv_str_t){pv_arena_strndup(r->arena, uri.p, uri.len), uri.len};
    r->args = args.len ? (pv_str_t){pv_arena_strndup(r->arena, args.p, args.len), args.len} : (pv_str_t){"", 0};
    r->has_args = args.len > 0;
    reset(hr);
    park(hr, NULL);
}

void pv_named_location(pv_hreq_t *hr, pv_str_t name)
{
    pv_request_t *r = &hr->r;
    pv_location_t *loc = NULL;
    for (int i = 0; r->srv && i < r->srv->nlocations && !loc; i++) {
        pv_location_t *l = r->srv->locations[i];
        if (l->named && l->name.len == name.len && memcmp(l->name.p, name.p, name.len) == 0)
            loc = l;
    }
    if (!loc) {
        pv_log_r(r, PV_LOG_ERR, "could not find named location \"%.*s\", client: %s", (int)name.len, name.p,
               pv_log_client(r));
        r->error_page = 1;
        r->err_status = 0;
        r->err_location = (pv_str_t){NULL, 0};
        hr->proto->resp->local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return;
    }
    if (pv_uri_change(r) != PV_OK) {
        cycle(hr, "redirect to named location", name);
        return;
    }
    reset(hr);
    park(hr, loc);
}

void pv_redirect_run(void)
{
    while (pending_head) {
        pending_t *p = pending_head;
        pv_hreq_t *hr = p->hr;
        pv_log_req_set(&hr->r);
        hr->handling = 0;
        unpark(hr, p);
        if (p->named) {
            hr->r.loc = p->named;
            if (p->named->conf.residency)
                pv_phases_res_enter(&hr->r, p->named);
            pv_phases_restart(hr, PV_PHASE_REWRITE);
        } else {
            pv_phases_restart(hr, PV_PHASE_SERVER_REWRITE);
        }
        pv_log_req_set(NULL);
    }
}

/* ---- error_page ------------------------------------------------------------- */

static const pv_loc_conf_t *lconf(const pv_hreq_t *hr)
{
    if (hr->r.loc)
        return &hr->r.loc->conf;
    return hr->r.srv ? &hr->r.srv->conf : NULL;
}

static const pv_error_page_t *find_page(const pv_hreq_t *hr, int status)
{
    const pv_loc_conf_t *lc = lconf(hr);
    for (int i = 0; lc && i < lc->nerror_pages; i++)
        if (lc->error_pages[i].status == status)
            return &lc->error_pages[i];
    return NULL;
}

int pv_error_page_for(const pv_hreq_t *hr, int status)
{
    return find_page(hr, status) != NULL;
}

static int is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

int pv_error_page(pv_hreq_t *hr, int status)
{
    pv_request_t *r = &hr->r;
    if (r->error_page || r->uri_changes >= PV_MAX_URI_CHANGES + 1)
        return 0;
    const pv_error_page_t *e = find_page(hr, status);
    if (!e)
        return 0;
    pv_str_t uri = pv_cv_eval_arena(&e->uri, r);
    int internal = uri.len && (uri.p[0] == '/' || uri.p[0] == '@');
    /* a request refused while its head was read goes to a URI only once
     * the head is whole (NGINX runs the page from the address's default
     * server, as here, also for a head it could not parse) */
    if (internal && hr->phase == PV_PHASE_POST_READ && !hr->head_in)
        return 0;
    const pv_loc_conf_t *lc = lconf(hr);
    if (!lc->recursive_error_pages)
        r->error_page = 1;
    r->err_status = e->overwrite >= 0 ? e->overwrite : status;
    if (internal) {
        /* the new request is a GET (a HEAD stays one) without the body */
        if (!(r->flags & PV_REQ_F_HEAD)) {
            r->method = PV_STR("GET");
            r->method_id = HTTP_GET;
        }
        r->flags |= PV_REQ_F_BODY_DROPPED;
        if (!hr->body_done)
            r->flags &= ~PV_REQ_F_KEEPALIVE;
        if (uri.p[0] == '@') {
            pv_named_location(hr, uri);
            return 1;
        }
        const char *q = memchr(uri.p, '?', uri.len);
        pv_str_t args = {NULL, 0};
        if (q) {
            args = (pv_str_t){q + 1, uri.len - (size_t)(q - uri.p) - 1};
            uri.len = (size_t)(q - uri.p);
        }
        pv_internal_redirect(hr, uri, args);
        return 1;
    }
    /* a URL: a redirect, 302 unless the code given is one */
    int code = is_redirect(e->overwrite) ? e->overwrite : 302;
    r->err_status = 0;
    r->err_location = (pv_str_t){NULL, 0};
    if (!pv_errpage_keepalive_ok(status))
        r->flags &= ~PV_REQ_F_KEEPALIVE; /* as after the page it replaces */
    hr->proto->resp->local(hr, code, pv_arena_strndup(r->arena, uri.p, uri.len), (pv_str_t){NULL, 0});
    return 1;
}

void pv_error_page_keep(pv_hreq_t *hr, const pv_header_t *f)
{
    pv_str_t x = hr->acc.xhdr;
    size_t n = x.len + f->name.len + f->value.len + 4;
    char *s = pv_arena_alloc(&hr->arena, n), *d = s;
    if (x.len)
        memcpy(d, x.p, x.len);
    d += x.len;
    memcpy(d, f->name.p, f->name.len);
    d += f->name.len;
    *d++ = ':', *d++ = ' ';
    memcpy(d, f->value.p, f->value.len);
    d += f->value.len;
    *d++ = '\r', *d++ = '\n';
    hr->acc.xhdr = (pv_str_t){s, n};
}
