/* The response calls (each goes to the request's protocol), and their
 * HTTP/1.1 implementation with the one head writer: one forward pass of
 * memcpy into the caller's buffer, nothing formatted with printf. */
#include "response.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/cache.h"
#include "../core/loop.h"
#include "../core/log.h"
#include "../core/wr.h"
#include "../core/time.h"
#include "charset.h"
#include "bfilter.h"
#include "brange.h"
#include "compress.h"
#include "errpage.h"
#include "hfilter.h"
#include "notmod.h"
#include "redirect.h"
#include "server.h"
#include "static.h"
#include "subreq.h"
#include "vars.h"

static void put_field(pv_wr_t *w, const char *name, size_t nlen, pv_str_t value)
{
    pv_wr_put(w, name, nlen);
    pv_wr_str(w, value);
    PV_WR_LIT(w, "\r\n");
}

ssize_t pv_http_write_head(const pv_resp_head_t *h, pv_str_t date, int keepalive, char *buf, size_t cap)
{
    pv_wr_t w = {buf, buf + cap, 0};
    int st = h->status;
    char line[13] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', (char)('0' + (st / 100) % 10),
                     (char)('0' + (st / 10) % 10), (char)('0' + st % 10), ' '};

    pv_wr_put(&w, line, sizeof(line));
    if (h->reason.p) {
        pv_wr_str(&w, h->reason);
    } else {
        const char *rs = pv_http_reason(st);
        pv_wr_put(&w, rs, strlen(rs));
    }
    PV_WR_LIT(&w, "\r\n");
    if (!h->server.p)
        PV_WR_LIT(&w, "Server: " PV_NAME "\r\n");
    else if (h->server.len)
        put_field(&w, "Server: ", 8, h->server);
    if (!h->no_date)
        put_field(&w, "Date: ", 6, date);
    if (h->content_type.p)
        put_field(&w, "Content-Type: ", 14, h->content_type);
    if (h->content_length >= 0 && h->status != 204 && h->status >= 200) { /* RFC 9110 8.6, as NGINX */
        char num[24];
        PV_WR_LIT(&w, "Content-Length: ");
        pv_wr_put(&w, num, pv_u64_digits(num, (uint64_t)h->content_length));
        PV_WR_LIT(&w, "\r\n");
    }
    if (h->location.p)
        put_field(&w, "Location: ", 10, h->location);
    if (h->frame == PV_FRAME_CHUNKED)
        PV_WR_LIT(&w, "Transfer-Encoding: chunked\r\n");
    if (h->upgrade)
        PV_WR_LIT(&w, "Connection: upgrade\r\n");
    else if (keepalive) {
        PV_WR_LIT(&w, "Connection: keep-alive\r\n");
        if (h->keepalive_header > 0) {
            char num[24];
            PV_WR_LIT(&w, "Keep-Alive: timeout=");
            pv_wr_put(&w, num, pv_u64_digits(num, (uint64_t)h->keepalive_header));
            PV_WR_LIT(&w, "\r\n");
        }
    }
    else
        PV_WR_LIT(&w, "Connection: close\r\n");
    for (int i = 0; i < h->nfields; i++) {
        pv_wr_str(&w, h->fields[i].name);
        PV_WR_LIT(&w, ": ");
        pv_wr_str(&w, h->fields[i].value);
        PV_WR_LIT(&w, "\r\n");
    }
    pv_wr_str(&w, h->extra);
    PV_WR_LIT(&w, "\r\n");
    return w.over ? -1 : (ssize_t)(w.p - buf);
}

/* ---- the response calls, over HTTP/1 ---------------------------------- */

/* The end of a chunked body: the last chunk with the add_trailer fields
 * that apply (an upstream's trailers are not passed to HTTP/1.1 clients,
 * as NGINX does not pass them). */
static void h1_last_chunk(pv_hreq_t *hr)
{
    pv_hfilter_trailers(hr);
    pv_str_t t = hr->resp_trailers;
    size_t lines = 0;
    for (size_t i = 0; i < t.len; i++)
        lines += t.p[i] == '\n';
    char *s = t.len ? pv_arena_alloc(&hr->arena, 3 + t.len + lines + 2) : NULL;
    if (!s) {
        pv_outq_push_last_chunk(&hr->cq);
        return;
    }
    size_t n = 0;
    memcpy(s, "0\r\n", 3);
    n = 3;
    for (size_t i = 0; i < t.len; i++) {
        if (t.p[i] == '\n')
            s[n++] = '\r';
        s[n++] = t.p[i];
    }
    s[n++] = '\r';
    s[n++] = '\n';
    pv_outq_push(&hr->cq, s, n);
}

/* add_trailer: a response that carries trailers goes out chunked to an
 * HTTP/1.1 client (its Content-Length dropped), as NGINX's chunked filter
 * does when trailers are expected; to an HTTP/1.0 one they are dropped. */
static void h1_trailer_framing(pv_hreq_t *hr, pv_resp_head_t *h, const pv_loc_conf_t *lc)
{
    if (h->upgrade || (hr->r.flags & PV_REQ_F_HEAD) || h->status < 200 || h->status == 204 || h->status == 304 ||
        hr->r.http_minor != 1 || !lc->chunked_transfer_encoding || !pv_hfilter_trailers_expected(hr, h->status))
        return;
    h->frame = PV_FRAME_CHUNKED;
    h->content_length = -1;
}

/* The keepalive_disable browsers a User-Agent names, as NGINX tells them
 * (ngx_http_process_user_agent): MSIE 4, 5 and 6 without SV1 but not
 * Opera; Safari on Mac OS X unless MSIE, Opera, Gecko or Chrome. */
static int ua_browser(pv_str_t ua)
{
    const char *p = ua.p, *end = ua.p + ua.len;
    const char *msie = memmem(p, ua.len, "MSIE ", 5);
    int is_msie = 0, old = 0;
    if (msie && msie + 7 < end) {
        is_msie = 1;
        if (msie[6] == '.' && (msie[5] == '4' || msie[5] == '5'))
            old = 1;
        else if (msie[6] == '.' && msie[5] == '6')
            old = !memmem(msie + 8, (size_t)(end - msie - 8), "SV1", 3);
    }
    if (memmem(p, ua.len, "Opera", 5))
        return 0;
    if (is_msie)
        return old ? PV_KA_DISABLE_MSIE6 : 0;
    if (memmem(p, ua.len, "Gecko/", 6) || memmem(p, ua.len, "Chrome/", 7))
        return 0;
    if (memmem(p, ua.len, "Safari/", 7) && memmem(p, ua.len, "Mac OS X", 8))
        return PV_KA_DISABLE_SAFARI;
    return 0;
}

/* Whether the connection may carry another request after this one (NGINX's
 * checks at the location: keepalive_timeout, keepalive_requests,
 * keepalive_time, keepalive_disable; msie6 for POST requests only). */
static int want_keepalive(pv_hreq_t *hr)
{
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf;
    if (!(hr->r.flags & PV_REQ_F_KEEPALIVE) || hr->c->w->draining || (hr->c->flags & PV_HC_F_ORPHAN) ||
        lc->keepalive_timeout <= 0 || (int64_t)hr->c->nreq >= lc->keepalive_requests ||
        (int64_t)((pv_loop_time_ns() - hr->c->start_ns) / 1000000) > lc->keepalive_time)
        return 0;
    /* the browsers that matter here: Safari's always, MSIE 6's for a POST */
    int post = hr->r.method.len == 4 && memcmp(hr->r.method.p, "POST", 4) == 0;
    int which = lc->keepalive_disable & (PV_KA_DISABLE_SAFARI | (post ? PV_KA_DISABLE_MSIE6 : 0));
    if (which) {
        const pv_header_t *ua = pv_request_header(&hr->r, "user-agent", 10);
        if (ua && (ua_browser(ua->value) & which))
            return 0;
    }
    return 1;
}

pv_str_t pv_resp_local_type(const pv_hreq_t *hr)
{
    if (hr->r.accel_type.p)
        return hr->r.accel_type;
    return hr->r.loc ? pv_static_type(&hr->r.loc->conf.st, hr->r.uri) : PV_STR("text/plain");
}

static void h1_local(pv_hreq_t *hr, int status, const char *location, pv_str_t body)
{
    pv_hconn_t *c = hr->c;
    pv_timer_del(c->w->loop, &c->timer);
    if (!hr->handling && !hr->body_held) {
        pv_body_discard_buffered(hr);
        if (hr->body_error && status < 400) {
            status = hr->body_error; /* the body to skip is broken: its error answers */
            location = NULL;
            body = (pv_str_t){NULL, 0};
        }
    }
    /* a request body we have not read would be taken for the next request */
    if (!hr->body_done)
        hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
    /* the errors after which NGINX does not trust the connection */
    if (status == 408 || !pv_errpage_keepalive_ok(status))
        hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
    hr->keepalive = (uint8_t)want_keepalive(hr);
    if (!hr->out && !(hr->out = pv_buf_get())) {
        /* out of memory: this connection alone is closed */
        pv_cache_nomem("a response buffer", pv_log_client(&hr->r));
        pv_server_close(c);
        return;
    }
    pv_buf_t *o = hr->out;
    int head_only = (hr->r.flags & PV_REQ_F_HEAD) != 0;
    pv_resp_head_t h;
    char page[512];
    ssize_t plen = 0;
    if (body.p) {
        h = (pv_resp_head_t){.status = status, .content_type = pv_resp_local_type(hr),
                             .content_length = (int64_t)body.len};
    } else {
        plen = pv_errpage_page(status, pv_hfilter_token(hr), page, sizeof(page));
        pv_errpage_head(status, location, plen, &h);
        if (PV_LOCAL_TYPED(status))
            h.content_type = pv_resp_local_type(hr);
    }
    /* the page or text through the body filters, then compressed whole
     * when gzip or brotli says so */
    pv_str_t content = body.p ? body : (pv_str_t){plen > 0 ? page : NULL, plen > 0 ? (size_t)plen : 0};
    if (pv_bf_local(hr, &h, &content) != PV_OK || (content.p && pv_compress_local(hr, &h, &content) != PV_OK)) {
        pv_server_close(c);
        return;
    }
    int encoded = content.p && content.p != body.p && content.p != page;
    if (h.frame == PV_FRAME_CHUNKED && hr->r.http_minor != 1) {
        h.frame = PV_FRAME_CLOSE; /* HTTP/1.0: the body ends with the connection */
        hr->keepalive = 0;
    }
    h.extra = hr->acc.xhdr;
    pv_hfilter_apply(hr, &h);
    h1_trailer_framing(hr, &h, hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf);
    h.keepalive_header = (hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf)->keepalive_header / 1000;
    ssize_t n = pv_http_write_head(&h, pv_time_http_date(), hr->keepalive, o->data, o->size);
    if (n < 0)
        n = 0;
    hr->r.status = h.status;
    pv_server_queue_head(hr, o->data, (size_t)n);
    if (!head_only && h.frame == PV_FRAME_CHUNKED && content.p == page && (size_t)n + (size_t)plen <= o->size) {
        memcpy(o->data + n, page, (size_t)plen); /* the page outlives this call there */
        content.p = o->data + n;
    }
    if (!head_only && h.frame == PV_FRAME_CHUNKED) {
        if (content.len && content.p != page)
            pv_outq_push_chunk(&hr->cq, content.p, content.len);
        h1_last_chunk(hr);
    } else if (!head_only && encoded) {
        pv_outq_push(&hr->cq, content.p, content.len);
    } else if (!head_only && body.p) {
        pv_outq_push(&hr->cq, body.p, body.len);
    } else if (!head_only && plen > 0 && (size_t)n + (size_t)plen <= o->size) {
        memcpy(o->data + n, page, (size_t)plen);
        pv_outq_push(&hr->cq, o->data + n, (size_t)plen);
    }
    hr->resp_done = 1;
    int rc = pv_server_flush(hr);
    if (rc == PV_OK)
        pv_server_request_done(hr);
    else if (rc == PV_ERR)
        pv_server_close(c);
}

/* tcp_nodelay: the listener gives every connection TCP_NODELAY; a
 * location with it off clears it for its responses, one that has it on
 * sets it back (the switch costs a system call only when it changes). */
static void set_nodelay(pv_hconn_t *c, int on)
{
    int v = on;
    if (c->x.io.fd >= 0)
        setsockopt(c->x.io.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
    if (on)
        c->flags &= (uint16_t)~PV_HC_F_NODELAY_OFF;
    else
        c->flags |= PV_HC_F_NODELAY_OFF;
}

static int h1_send_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    if (h->upgrade) {
        /* a 101: the connection becomes a tunnel. The body stream carries
         * the client's bytes from the end of the request until it closes,
         * the response body goes out as it is, and the connection is
         * never reused */
        if (!(hr->r.flags & PV_REQ_F_UPGRADE) || !hr->body_done)
            return PV_ERR;
        hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
        h->frame = PV_FRAME_NONE;
        hr->body_frame = PV_FRAME_CLOSE;
        hr->body_done = 0;
    }
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf;
    if (h->frame == PV_FRAME_CHUNKED && (hr->r.http_minor != 1 || !lc->chunked_transfer_encoding)) {
        /* no chunked coding for HTTP/1.0 (or with chunked_transfer_encoding
         * off): the body ends with the connection */
        h->frame = PV_FRAME_CLOSE;
        hr->r.flags &= ~PV_REQ_F_KEEPALIVE;
    }
    if (!lc->tcp_nodelay != !!(hr->c->flags & PV_HC_F_NODELAY_OFF))
        set_nodelay(hr->c, lc->tcp_nodelay);
    hr->keepalive = (uint8_t)want_keepalive(hr);
    hr->resp_chunked = h->frame == PV_FRAME_CHUNKED;
    h->extra = hr->acc.xhdr;
    pv_hfilter_apply(hr, h);
    h1_trailer_framing(hr, h, lc);
    hr->resp_chunked = h->frame == PV_FRAME_CHUNKED;
    if (!hr->out && !(hr->out = pv_buf_get())) {
        pv_cache_nomem("a response buffer", pv_log_client(&hr->r));
        return PV_RESP_NOMEM;
    }
    h->keepalive_header = lc->keepalive_header / 1000;
    ssize_t n = pv_http_write_head(h, pv_time_http_date(), hr->keepalive, hr->out->data, hr->out->size);
    if (n < 0)
        return PV_ERR;
    hr->r.status = h->status;
    pv_server_queue_head(hr, hr->out->data, (size_t)n);
    return PV_OK;
}

static int h1_room(const pv_hreq_t *hr)
{
    const pv_outq_t *q = &hr->cq;
    /* room for the spans, their chunk framing and the last chunk */
    if (hr->resp_chunked)
        return PV_MIN((PV_OUTQ_IOV - q->first - q->n - 2) / 3, PV_OUTQ_HDR - q->nhdr);
    return PV_OUTQ_IOV - q->first - q->n - 1;
}

static void h1_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    for (int i = 0; i < n; i++) {
        if (hr->resp_chunked)
            pv_outq_push_chunk(&hr->cq, spans[i].p, spans[i].len);
        else
            pv_outq_push(&hr->cq, spans[i].p, spans[i].len);
    }
}

static int h1_flush(pv_hreq_t *hr)
{
    int rc = pv_server_flush(hr);
    if (rc == PV_ERR)
        pv_server_close(hr->c);
    return rc;
}

static void h1_finish(pv_hreq_t *hr)
{
    if (hr->resp_chunked)
        h1_last_chunk(hr);
    hr->resp_done = 1;
    if (h1_flush(hr) == PV_OK)
        pv_server_request_done(hr);
}

static void h1_abort(pv_hreq_t *hr)
{
    pv_server_close(hr->c);
}

static int h1_continue(pv_hreq_t *hr)
{
    pv_outq_push(&hr->cq, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return h1_flush(hr) == PV_ERR ? PV_ERR : PV_OK;
}

static void h1_error(pv_hreq_t *hr, int status)
{
    pv_outq_reset(&hr->cq);
    h1_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

const pv_resp_ops_t pv_h1_resp = {
    h1_send_head, h1_room, h1_send_body, h1_flush, h1_finish, h1_abort, h1_continue, h1_local, h1_error,
};

/* ---- limit_rate ------------------------------------------------------------ */

/* The delay of a request over its rate: a timer in the request's arena. */
typedef struct pv_rate_s {
    pv_timer_t timer;
    pv_hreq_t *hr;
} pv_rate_t;

/* A size from limit_rate or limit_rate_after: the number, or the value of
 * its variables parsed (an empty one is 0; an invalid one is 0, logged),
 * as NGINX's complex value sizes. */
static int64_t size_value(pv_request_t *r, const pv_size_cv_t *s)
{
    if (!s->cv)
        return s->n;
    char buf[64];
    size_t n = pv_cv_eval(s->cv, r, 0, buf, sizeof(buf));
    if (n == 0)
        return 0;
    int64_t v = n < sizeof(buf) ? pv_conf_parse_size((pv_str_t){buf, n}) : -1;
    if (v < 0) {
        pv_log(PV_LOG_ERR, "invalid size \"%.*s\", client: %s", (int)PV_MIN(n, sizeof(buf)), buf, r->peer_text);
        return 0;
    }
    return v;
}

/* The response starts: the rate its location gives, unless `set
 * $limit_rate` or the upstream's X-Accel-Limit-Rate gave one. */
static inline __attribute__((always_inline)) void rate_start(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    if (!r->loc && !r->srv)
        return;
    const pv_loc_conf_t *lc = r->loc ? &r->loc->conf : &r->srv->conf;
    if (!r->limit_rate_set) {
        r->limit_rate_set = 1;
        if (!lc->limit_rate.n && !lc->limit_rate.cv)
            return; /* the usual case: no limit */
        r->limit_rate = size_value(r, &lc->limit_rate);
    }
    if (r->limit_rate)
        r->limit_rate_after = size_value(r, &lc->limit_rate_after);
}

static void rate_cb(pv_timer_t *t)
{
    pv_hreq_t *hr = ((pv_rate_t *)t->data)->hr;
    if (!hr->rate_wait)
        return; /* nothing was held back: the wait after a write ended */
    hr->rate_wait = 0;
    if (hr->handling) {
        if (pv_resp_flush(hr) == PV_OK)
            hr->handler->proceed(hr);
    } else if (hr->proto->resp == &pv_h1_resp) {
        pv_server_write_rest(hr); /* the end of an answer its handler finished */
    }
}

static void rate_timer(pv_hreq_t *hr, uint64_t ms)
{
    if (!hr->rate) {
        hr->rate = pv_arena_alloc(&hr->arena, sizeof(*hr->rate));
        hr->rate->hr = hr;
        pv_timer_init(&hr->rate->timer, rate_cb, hr->rate);
    }
    pv_timer_set(hr->w->loop, &hr->rate->timer, ms);
}

size_t pv_resp_rate_allow(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    if (!hr->rate || !pv_timer_armed(&hr->rate->timer)) {
        /* whole seconds, as NGINX's ngx_time() - start_sec */
        uint64_t now_ms = pv_now_ns() / 1000000, start_s = r->start_ns / 1000000000;
        int64_t past = (int64_t)r->bytes_sent - r->limit_rate_after;
        int64_t limit = r->limit_rate * ((int64_t)(now_ms / 1000 - start_s) + 1) - past;
        if (limit > 0)
            return (size_t)limit;
        /* nothing until the second whose allowance passes what has left */
        uint64_t at_ms = (start_s + (uint64_t)(past / r->limit_rate)) * 1000;
        rate_timer(hr, at_ms > now_ms ? at_ms - now_ms + 1 : 1);
    }
    hr->rate_wait = 1;
    return 0;
}

int pv_resp_rate_wrote(pv_hreq_t *hr, uint64_t before, size_t max, int rc)
{
    uint64_t after = (uint64_t)PV_MAX(hr->r.limit_rate_after, 0);
    uint64_t wrote = hr->r.bytes_sent - before;
    uint64_t from = PV_MAX(before, after), to = PV_MAX(hr->r.bytes_sent, after);
    uint64_t ms = (to - from) * 1000 / (uint64_t)hr->r.limit_rate;
    if (rc == PV_OK && wrote + 2 * 4096 >= max)
        ms = 1; /* the allowance is used up and the socket takes more: look again soon */
    if (ms)
        rate_timer(hr, ms);
    if (rc != PV_OK || pv_outq_empty(&hr->cq))
        return rc;
    hr->rate_wait = 1; /* the rest waits for the timer */
    return PV_AGAIN;
}

void pv_resp_rate_end(pv_hreq_t *hr)
{
    if (hr->rate)
        pv_timer_del(hr->w->loop, &hr->rate->timer);
    hr->rate = NULL;
}

/* ---- the calls ---------------------------------------------------------- */

/* A body goes through the body filters (bfilter.h), when a module set
 * some up, then through the compression filter (compress.h), when it
 * encodes; each calls the next stage's entries itself. */
/* The tee, when one is set, sees the response first. */
static void tee_done(pv_hreq_t *hr, int complete)
{
    const pv_tee_t *t = hr->tee;
    if (!t)
        return;
    hr->tee = NULL;
    t->done(hr, complete);
}

/* ---- a background update (proxy_cache_background_update) -------------------- */

/* The answer is complete: the protocol ends it, unless a background
 * update is to run first (bg_next): then the request goes on with
 * nothing more for the client until that update ends. A subrequest's
 * part ends for its parent at once, the update going on as a background
 * request of the main one (NGINX's background subrequest). */
void pv_resp_done(pv_hreq_t *hr)
{
    if (hr->bg_next) {
        void (*next)(pv_hreq_t *) = hr->bg_next;
        hr->bg_next = NULL;
        hr->bg = 1;
        if (hr->sub)
            pv_subreq_background(hr);
        next(hr);
        return;
    }
    hr->proto->resp->finish(hr);
}

/* The update ended (stored or not): the client's answer ends now. */
static void bg_end(pv_hreq_t *hr, int complete)
{
    tee_done(hr, complete);
    hr->bg = 0;
    hr->proto->resp->finish(hr);
}

static int head_below_bf(pv_hreq_t *hr, pv_resp_head_t *h)
{
    /* a subrequest's body is part of its parent's: compressed there,
     * but a gzip part is decoded here (gunzip) */
    int rc = hr->sub ? pv_compress_sub_head(hr, h) : pv_compress_head(hr, h);
    if (rc != PV_OK)
        return rc;
    if (pv_unlikely(hr->r.allow_ranges)) { /* after compression, as NGINX's range header filter */
        rc = pv_brange_head(hr, h);
        if (rc == PV_RESP_RANGE_416)
            tee_done(hr, 0); /* the 416 answers instead: nothing is stored */
        if (rc != PV_OK)
            return rc;
    }
    return hr->proto->resp->send_head(hr, h);
}

int pv_resp_send_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    if (hr->tee)
        hr->tee->head(hr, h);
    if (hr->bg)
        return PV_OK;
    rate_start(hr);
    int rc = pv_notmod_filter(hr, h);
    if (rc == PV_RESP_PRECONDITION)
        tee_done(hr, 0); /* the 412 answers instead: nothing is stored */
    if (rc != PV_OK)
        return rc;
    if (hr->header_only) /* a 304: no body for the filters below */
        return hr->proto->resp->send_head(hr, h);
    rc = pv_bf_head(hr, h);
    if (rc != PV_OK)
        return rc;
    return head_below_bf(hr, h);
}

/* A text answer (`return` with text) whose head a body filter takes (SSI
 * on `return`, as NGINX's filters see every response): it goes out as a
 * response through the chain, typed by the URI's extension as NGINX's
 * ngx_http_send_response() types it. 1 when sent so. */
static int local_filtered(pv_hreq_t *hr, int status, pv_str_t body)
{
    const pv_location_t *loc = hr->r.loc;
    if (hr->bf || !loc || hr->bg)
        return 0;
    pv_resp_head_t h = {.status = status, .content_length = (int64_t)body.len,
                        .content_type = hr->r.accel_type.p ? hr->r.accel_type : pv_static_type(&loc->conf.st, hr->r.uri)};
    /* asked without side effects first: the modules' head() decide once
     * per request (charset), and the answer made here must see them */
    if (!pv_bf_changes(hr, &h) || pv_bf_head(hr, &h) != PV_OK || !hr->bf)
        return 0;
    if (head_below_bf(hr, &h) != PV_OK) {
        pv_resp_abort(hr);
        return 1;
    }
    pv_resp_send_body(hr, &body, 1);
    pv_resp_finish(hr);
    return 1;
}

/* Below the body filters: compression, or the protocol. */
int pv_resp_below_room(const pv_hreq_t *hr)
{
    return hr->zf ? pv_compress_room(hr) : hr->proto->resp->room(hr);
}

void pv_resp_below_send(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    if (hr->zf)
        pv_compress_send_body(hr, spans, n);
    else
        hr->proto->resp->send_body(hr, spans, n);
}

int pv_resp_below_flush(pv_hreq_t *hr)
{
    return hr->zf ? pv_compress_flush(hr) : hr->proto->resp->flush(hr);
}

void pv_resp_below_finish(pv_hreq_t *hr)
{
    if (hr->zf)
        pv_compress_finish(hr);
    else
        pv_resp_done(hr);
}

int pv_resp_room(const pv_hreq_t *hr)
{
    if (hr->bg)
        return 16;
    return hr->bf ? pv_bf_room(hr) : pv_resp_below_room(hr);
}

void pv_resp_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    if (hr->tee)
        hr->tee->body(hr, spans, n);
    if ((hr->r.flags & PV_REQ_F_HEAD) || hr->bg || hr->header_only)
        return; /* a HEAD's answer has no body (one asked for as GET is read for the cache), nor a 304's */
    hr->rate_queued = 1;
    if (hr->bf)
        pv_bf_send_body(hr, spans, n);
    else
        pv_resp_below_send(hr, spans, n);
}

static inline int flush_all(pv_hreq_t *hr)
{
    return hr->bf ? pv_bf_flush(hr) : pv_resp_below_flush(hr);
}

int pv_resp_flush(pv_hreq_t *hr)
{
    if (hr->bg)
        return PV_OK; /* the client's queue waits for the update's end */
    if (pv_unlikely(hr->r.limit_rate) && hr->proto->resp != &pv_h1_resp) {
        /* HTTP/2: the body queued since the last flush waits while the
         * rate allows nothing (HTTP/1 caps each write: pv_server_flush) */
        if (hr->rate_queued && !pv_resp_rate_allow(hr))
            return PV_AGAIN;
        int rc = flush_all(hr);
        if (rc == PV_OK)
            hr->rate_queued = 0;
        return rc;
    }
    return flush_all(hr);
}

int pv_resp_postpone(const pv_hreq_t *hr)
{
    if (hr->proto->resp != &pv_h1_resp || hr->r.limit_rate || hr->bg || hr->bf)
        return 0;
    const pv_request_t *r = &hr->r;
    const pv_loc_conf_t *lc = r->loc ? &r->loc->conf : r->srv ? &r->srv->conf : NULL;
    size_t n = pv_outq_bytes(&hr->cq) + (hr->zf ? pv_compress_pending(hr) : 0);
    return lc && n < (size_t)lc->st.postpone_output;
}

void pv_resp_finish(pv_hreq_t *hr)
{
    if (hr->bg) {
        bg_end(hr, 1);
        return;
    }
    tee_done(hr, 1);
    if (hr->bf && !(hr->r.flags & PV_REQ_F_HEAD))
        pv_bf_finish(hr);
    else
        pv_resp_below_finish(hr);
}

void pv_resp_abort(pv_hreq_t *hr)
{
    if (hr->bg) {
        bg_end(hr, 0); /* the client's answer is whole: it ends as usual (a gone client is seen then) */
        return;
    }
    tee_done(hr, 0);
    hr->proto->resp->abort(hr);
}

int pv_resp_continue(pv_hreq_t *hr)
{
    if (hr->bg)
        return PV_OK;
    return hr->proto->resp->send_continue(hr);
}

/* NGINX's 444: the connection is closed with no answer (logged as 444). */
static int closed_instead(pv_hreq_t *hr, int status)
{
    if (status != PV_HTTP_CLOSE)
        return 0;
    hr->bg_next = NULL;
    tee_done(hr, 0);
    hr->r.status = PV_HTTP_CLOSE;
    hr->proto->resp->abort(hr);
    return 1;
}

/* The not-modified filter on a local 200 (a `return`): it has no
 * validators, so If-Match and If-Unmodified-Since fail (412) and only
 * If-None-Match: * holds (304), as NGINX's filter answers. 1 when so. */
static int local_precondition(pv_hreq_t *hr)
{
    const pv_request_t *r = &hr->r;
    int pre = pv_notmod_test(r, r->loc->conf.st.if_modified_since, (pv_str_t){NULL, 0}, -1);
    if (pre == 412) {
        pv_resp_error(hr, 412);
        return 1;
    }
    if (pre != 304)
        return 0;
    pv_resp_head_t h = {.status = 304, .content_length = -1};
    hr->r.err_status = 0; /* the 304 is the answer, error_page's code or not */
    if (pv_resp_send_head(hr, &h) != PV_OK)
        pv_resp_abort(hr);
    else
        pv_resp_finish(hr);
    return 1;
}

void pv_resp_local(pv_hreq_t *hr, int status, const char *location, pv_str_t body)
{
    if (hr->bg) {
        bg_end(hr, 0);
        return;
    }
    if ((hr->r.err_status ? hr->r.err_status : status) == 200 && !hr->r.notmod_off && !hr->sub && hr->r.loc &&
        local_precondition(hr))
        return;
    if (closed_instead(hr, status))
        return;
    hr->bg_next = NULL; /* a local answer (304, 412...) starts no background update */
    tee_done(hr, 0);
    if (!body.p && status >= 300) {
        if (pv_error_page(hr, status)) {
            if (location)
                hr->r.err_location = (pv_str_t){location, strlen(location)};
            return;
        }
        hr->r.err_status = 0; /* a page made here is sent with its own code */
        hr->r.err_location = (pv_str_t){NULL, 0};
    }
    rate_start(hr);
    if (body.p && status < 300 && local_filtered(hr, status, body))
        return;
    hr->proto->resp->local(hr, status, location, body);
}

void pv_resp_error(pv_hreq_t *hr, int status)
{
    if (hr->bg) {
        bg_end(hr, 0);
        return;
    }
    if (closed_instead(hr, status))
        return;
    hr->bg_next = NULL;
    tee_done(hr, 0);
    if (pv_error_page(hr, status))
        return;
    hr->r.err_status = 0;
    hr->r.err_location = (pv_str_t){NULL, 0};
    rate_start(hr);
    hr->proto->resp->error(hr, status);
}
