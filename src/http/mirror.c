/* The mirror module (mirror.h): the precontent handler, the request body
 * read first when mirror_request_body is on, the subrequests started and
 * dropped, and the request's end held while they run. */
#include "mirror.h"

#include "../core/log.h"
#include "accesslog.h"
#include "reqbody.h"
#include "server.h"
#include "subreq.h"

/* A request's mirrors (request arena): every one started, in order, and
 * how many still run. */
typedef struct pv_mirror_s {
    pv_subreq_t **subs;
    int n, cap;
    int live;
    pv_hreq_t *hr;
    void (*end)(pv_hreq_t *hr); /* the request's end, held until live is 0 */
    pv_timer_t timer;           /* done mirrors are freed, and the end resumed, from the loop */
} pv_mirror_t;

static void reap(pv_mirror_t *m)
{
    for (int i = 0; i < m->n; i++)
        if (m->subs[i]->done && m->subs[i]->hr)
            pv_subreq_free(m->subs[i]);
}

static void timer_cb(pv_timer_t *t)
{
    pv_mirror_t *m = t->data;
    pv_hreq_t *hr = m->hr;
    reap(m);
    if (m->live > 0 || !m->end)
        return;
    void (*end)(pv_hreq_t *) = m->end;
    m->end = NULL;
    pv_log_req_set(&hr->r);
    end(hr);
    pv_log_req_set(NULL);
}

/* A mirror ended (answered, failed or aborted): whatever it answered is
 * no business of the client's. Called from inside its handler: the rest
 * is done from the loop. */
static void notify(pv_subreq_t *s)
{
    pv_mirror_t *m = s->data;
    if (!s->done || s->notify == NULL)
        return;
    s->notify = NULL; /* told once */
    m->live--;
    pv_timer_set(m->hr->w->loop, &m->timer, 0);
}

static pv_mirror_t *mirror_state(pv_hreq_t *hr)
{
    if (hr->mirror)
        return hr->mirror;
    pv_mirror_t *m = pv_arena_calloc(&hr->arena, sizeof(*m));
    if (!m)
        return NULL;
    m->hr = hr;
    pv_timer_init(&m->timer, timer_cb, m);
    hr->mirror = m;
    return m;
}

static int remember(pv_hreq_t *hr, pv_mirror_t *m, pv_subreq_t *s)
{
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 4;
        pv_subreq_t **subs = pv_arena_alloc(&hr->arena, (size_t)cap * sizeof(*subs));
        if (!subs)
            return PV_ERR;
        for (int i = 0; i < m->n; i++)
            subs[i] = m->subs[i];
        m->subs = subs;
        m->cap = cap;
    }
    m->subs[m->n++] = s;
    m->live++;
    return PV_OK;
}

/* The subrequest's model beyond a GET: the request's method, and its
 * body when it was read whole (NGINX's subrequests share the main
 * request's body). */
static int as_parent(pv_subreq_t *s, pv_hreq_t *hr)
{
    pv_request_t *sr = &s->hr->r;
    sr->method = hr->r.method;
    sr->method_id = hr->r.method_id;
    sr->flags |= hr->r.flags & PV_REQ_F_HEAD;
    if (!hr->rb || !hr->rb->complete)
        return PV_OK;
    sr->content_length = (int64_t)pv_reqbody_len(hr);
    sr->flags |= PV_REQ_F_HAS_CL;
    sr->request_body = hr->r.request_body;
    sr->request_body_file = hr->r.request_body_file;
    return pv_reqbody_share(s->hr, hr);
}

/* One subrequest per URI, as NGINX's ngx_http_mirror_handler_internal:
 * 500 when one cannot be made. */
static int start_all(pv_hreq_t *hr)
{
    const pv_mirror_conf_t *mc = &hr->r.loc->conf.mirror;
    pv_mirror_t *m = mirror_state(hr);
    if (!m)
        return PV_ERR;
    for (int i = 0; i < mc->n; i++) {
        pv_subreq_t *s = pv_subreq_start(hr, mc->uris[i], hr->r.args, PV_SUB_DISCARD, notify, m);
        if (!s)
            return PV_ERR;
        if (as_parent(s, hr) != PV_OK || remember(hr, m, s) != PV_OK) {
            pv_subreq_free(s); /* not started yet: it runs from the loop */
            return PV_ERR;
        }
    }
    return PV_OK;
}

static int go(pv_hreq_t *hr)
{
    if (start_all(hr) == PV_OK)
        return PV_PHASE_NEXT;
    pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
    return PV_PHASE_DONE;
}

/* ---- mirror_request_body on: the body read whole first -------------------- */

static void reader_readable(pv_hreq_t *hr);

static void reader_idle(pv_hreq_t *hr)
{
    PV_UNUSED(hr);
}

static const pv_handler_t body_reader = {"mirror", reader_idle, reader_readable, reader_idle, NULL};

/* PV_OK once whole, PV_AGAIN while it comes, PV_ERR after answering. */
static int read_body(pv_hreq_t *hr)
{
    int status, rc = pv_reqbody_read(hr, &status);
    if (rc != PV_ERR)
        return rc;
    hr->handling = 0;
    hr->handler = NULL;
    if (status)
        pv_resp_error(hr, status);
    else
        pv_resp_abort(hr);
    return PV_ERR;
}

static void reader_readable(pv_hreq_t *hr)
{
    if (read_body(hr) != PV_OK)
        return;
    hr->handling = 0;
    hr->handler = NULL;
    if (go(hr) == PV_PHASE_NEXT)
        pv_phases_resume(hr);
}

static int mirror_handler(pv_hreq_t *hr)
{
    if (hr->sub || !hr->r.loc || hr->r.loc->conf.mirror.n == 0)
        return PV_PHASE_NEXT;
    if (!hr->r.loc->conf.mirror.request_body || (pv_body_done(hr) && !hr->rb))
        return go(hr); /* no body to wait for, or mirrors without it */
    pv_body_hold(hr);
    pv_request_t *r = &hr->r;
    if ((r->flags & PV_REQ_F_EXPECT_CONTINUE) && r->http_major == 1 && r->http_minor == 1) {
        /* answered as the body is first read, and once (NGINX's expect_tested) */
        r->flags &= ~(unsigned)PV_REQ_F_EXPECT_CONTINUE;
        if (pv_resp_continue(hr) == PV_ERR)
            return PV_PHASE_DONE;
    }
    int rc = read_body(hr);
    if (rc == PV_ERR)
        return PV_PHASE_DONE;
    if (rc == PV_OK)
        return go(hr);
    hr->handler = &body_reader;
    hr->handling = 1;
    return PV_PHASE_PARKED;
}

int pv_mirror_adopt(pv_hreq_t *hr, pv_subreq_t *s)
{
    pv_mirror_t *m = mirror_state(hr);
    if (!m || remember(hr, m, s) != PV_OK)
        return PV_ERR;
    s->notify = notify;
    s->data = m;
    return PV_OK;
}

int pv_mirror_hold(pv_hreq_t *hr, void (*end)(pv_hreq_t *hr))
{
    pv_mirror_t *m = hr->mirror;
    if (!m)
        return 0;
    reap(m);
    if (m->live == 0)
        return 0;
    m->end = end;
    return 1;
}

void pv_mirror_free(pv_hreq_t *hr)
{
    pv_mirror_t *m = hr->mirror;
    if (!m)
        return;
    hr->mirror = NULL;
    pv_timer_del(hr->w->loop, &m->timer);
    for (int i = 0; i < m->n; i++) {
        if (m->subs[i]->hr && !m->subs[i]->done)
            pv_log_r(&hr->r, PV_LOG_INFO, "background subrequest \"%.*s\" aborted: the request ended, client: %s",
                     (int)m->subs[i]->hr->r.uri.len, m->subs[i]->hr->r.uri.p, pv_log_client(&hr->r));
        pv_subreq_free(m->subs[i]);
    }
}

static int mod_init(void)
{
    pv_phases_register(PV_PHASE_PRECONTENT, mirror_handler);
    return PV_OK;
}

pv_module_t pv_mirror_module = {
    .name = "mirror",
    .init = mod_init,
};
