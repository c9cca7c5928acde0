/* HTTP/2 streams: each is one request (pv_hreq_t) whose protocol is
 * pv_h2_proto. The request head comes from HEADERS (checked beyond what
 * nghttp2 checks, then built by reqhead.c's shared parts), the body from
 * DATA frames into a window-sized buffer given back to the client's window
 * as the handler takes it, and the response goes out as HEADERS and DATA
 * frames whose payload points at the handler's spans. */
#include "h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "../core/cache.h"
#include "../core/counters.h"
#include "../core/fault.h"
#include "../core/log.h"
#include "../core/time.h"
#include "bfilter.h"
#include "charset.h"
#include "compress.h"
#include "errpage.h"
#include "headers.h"
#include "hfilter.h"
#include "reqhead.h"
#include "accesslog.h"

static __thread pv_cache_t stream_cache = {.name = "h2 stream", .size = sizeof(pv_h2_stream_t), .max = 256};

static void stream_timer_cb(pv_timer_t *t);

static pv_h2_stream_t *stream_of(nghttp2_session *s, int32_t id)
{
    return nghttp2_session_get_stream_user_data(s, id);
}

static const pv_loc_conf_t *lconf(const pv_hreq_t *hr)
{
    return hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf;
}

/* ---- receiving the head ----------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    pv_h2conn_t *hc = ud;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    pv_h2_stream_t *st = pv_fault_alloc(PV_FAULT_OTHER) ? NULL : pv_cache_get(&stream_cache);
    if (!st && !(st = malloc(sizeof(*st))))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memset(st, 0, sizeof(*st));
    pv_hreq_t *hr = pv_server_req_new(hc->w, hc->group, &hc->peer, hc->id, hc->nreq + 1);
    pv_count(PV_CTR_H2_STREAMS);
    if (!hr) {
        pv_cache_nomem("a request", NULL);
        if (pv_cache_put(&stream_cache, st) < 0)
            free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    hc->nreq++;
    hr->r.conn_start_ns = hc->start_ns;
    st->hc = hc;
    st->hr = hr;
    st->id = frame->hd.stream_id;
    hr->proto = &pv_h2_proto;
    hr->h2s = st;
    hr->r.xprt = &hc->x;
    st->next = hc->streams;
    if (hc->streams)
        hc->streams->prev = st;
    hc->streams = st;
    hc->nstreams++;
    nghttp2_session_set_stream_user_data(s, st->id, st);
    pv_timer_init(&st->timer, stream_timer_cb, st);
    /* the head must be complete within client_header_timeout */
    pv_timer_set(hc->w->loop, &st->timer, (uint64_t)hr->r.srv->client_header_timeout);
    pv_timer_del(hc->w->loop, &hc->timer);
    /* keepalive_requests, keepalive_time: this is the last stream */
    if ((int64_t)hc->nreq >= hc->max_requests ||
        (int64_t)((pv_loop_time_ns() - hc->start_ns) / 1000000) > hc->max_time)
        pv_h2_goaway(hc);
    return 0;
}

static pv_str_t arena_str(pv_hreq_t *hr, const uint8_t *p, size_t n)
{
    char *d = pv_arena_alloc(&hr->arena, n + 1);
    memcpy(d, p, n);
    d[n] = '\0';
    return (pv_str_t){d, n};
}

/* One field of a request head (trailers are dropped). The size limits are
 * large_client_header_buffers', as for HTTP/1.1: a field over one buffer,
 * or a head over all of them, is answered with 431, and a head far over
 * them (an HPACK bomb) resets the stream without decoding more into it. */
static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    PV_UNUSED(flags);
    PV_UNUSED(ud);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    pv_h2_stream_t *st = stream_of(s, frame->hd.stream_id);
    if (!st || st->started)
        return 0;
    pv_hreq_t *hr = st->hr;
    const pv_server_t *srv = hr->r.srv;
    uint64_t limit = (uint64_t)srv->large_header_buffers_num * (uint64_t)srv->large_header_buffers_size;
    st->hdr_bytes += (uint32_t)(namelen + valuelen + 4);
    if (st->hdr_bytes > 4 * limit + 65536) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent too large http2 header list, client: %s", pv_log_client(&hr->r));
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (namelen + valuelen + 4 > (uint64_t)srv->large_header_buffers_size || st->hdr_bytes > limit) {
        if (!st->hdr_status)
            pv_log_r(&hr->r, PV_LOG_INFO, "client sent too large request header, client: %s", pv_log_client(&hr->r));
        st->hdr_status = 431;
    }
    if (st->hdr_status)
        return 0;
    if (namelen && name[0] == ':') {
        pv_str_t v = arena_str(hr, value, valuelen);
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            st->method = v;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            st->path = v;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            st->scheme = v;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            st->authority = v;
        else if (namelen == 9 && memcmp(name, ":protocol", 9) == 0)
            st->protocol = v;
        return 0;
    }
    pv_str_t fname = {(const char *)name, namelen};
    if (!PV_STR_IEQ(fname, "cookie") && !pv_reqhead_field_ignored(&hr->r, fname) &&
        ++st->nkept > srv->max_headers) { /* the connection's server's, as NGINX's */
        st->hdr_status = (uint16_t)pv_reqhead_too_many(&hr->r); /* stored no further */
        return 0;
    }
    if (st->nfields == st->fcap) {
        int cap = st->fcap ? 2 * st->fcap : 16;
        pv_header_t *n = pv_arena_alloc(&hr->arena, sizeof(*n) * (size_t)cap);
        if (st->nfields)
            memcpy(n, st->fields, sizeof(*n) * (size_t)st->nfields);
        st->fields = n;
        st->fcap = cap;
    }
    st->fields[st->nfields++] = (pv_header_t){arena_str(hr, name, namelen), arena_str(hr, value, valuelen)};
    return 0;
}

/* client_max_body_size of the request's location, once it has one (DATA
 * that came before the phases chose it is counted when it is taken). */
static void body_limit(pv_h2_stream_t *st)
{
    pv_hreq_t *hr = st->hr;
    int64_t max = hr->r.loc ? hr->r.loc->conf.client_max_body_size : 0;
    if (max > 0 && st->body_received > (uint64_t)max && !hr->body_error) {
        pv_log_r(&hr->r, PV_LOG_ERR, "client intended to send too large body: %llu+ bytes, client: %s",
               (unsigned long long)st->body_received, pv_log_client(&hr->r));
        hr->body_error = 413;
    }
}

/* ---- receiving the body ------------------------------------------------------ */

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *ud)
{
    PV_UNUSED(flags);
    pv_h2conn_t *hc = ud;
    pv_h2_stream_t *st = stream_of(s, id);
    if (!st || st->closed) {
        nghttp2_session_consume_connection(s, len);
        return 0;
    }
    pv_hreq_t *hr = st->hr;
    if (!st->bin && !(st->bin = pv_buf_get_size(hc->window))) {
        pv_cache_nomem("a body buffer", pv_log_client(&hr->r));
        nghttp2_session_consume(s, id, len);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    pv_buf_t *b = st->bin;
    if (b->size - b->last < len) {
        /* more than the window allowed: nghttp2 counts the window, so this
         * is a client ignoring it */
        nghttp2_session_consume(s, id, len);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    memcpy(b->data + b->last, data, len);
    b->last += (uint32_t)len;
    st->body_received += len;
    st->unconsumed += len;
    body_limit(st);
    pv_h2_event(st, PV_H2_EV_READABLE);
    return 0;
}

/* Frames the client should send few of (SETTINGS, PING, PRIORITY,
 * RST_STREAM, empty DATA) spend its tokens; with none left the connection
 * ends with ENHANCE_YOUR_CALM. */
static int flood_frame(const nghttp2_frame *frame)
{
    switch (frame->hd.type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        return !(frame->hd.flags & NGHTTP2_FLAG_ACK);
    case NGHTTP2_PRIORITY:
    case NGHTTP2_RST_STREAM:
        return 1;
    case NGHTTP2_DATA:
        return frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    case NGHTTP2_HEADERS:
        return frame->headers.cat == NGHTTP2_HCAT_HEADERS && frame->hd.length == 0;
    default:
        return 0;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    pv_h2conn_t *hc = ud;
    if (flood_frame(frame) && !pv_h2_flood_spend(hc)) {
        pv_log(PV_LOG_INFO, "client sent too many http2 control frames, client connection %llu",
               (unsigned long long)hc->id);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    pv_h2_stream_t *st = stream_of(s, frame->hd.stream_id);
    if (!st)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        st->end_stream = 1;
        pv_h2_event(st, PV_H2_EV_READABLE);
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        pv_h2_event(st, PV_H2_EV_START);
    return 0;
}

/* Our END_STREAM went out before the client's: it need not send the rest
 * of its body (RFC 9113 8.1). */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    PV_UNUSED(ud);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        pv_h2_stream_t *st = stream_of(s, frame->hd.stream_id);
        if (st && !st->end_stream)
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    PV_UNUSED(ud);
    pv_h2_stream_t *st = stream_of(s, id);
    if (!st)
        return 0;
    st->closed = 1;
    st->rst_code = error_code;
    if (error_code != NGHTTP2_NO_ERROR)
        pv_count(PV_CTR_H2_RESETS);
    nghttp2_session_set_stream_user_data(s, id, NULL);
    pv_h2_event(st, PV_H2_EV_CLOSE);
    return 0;
}

void pv_h2_stream_callbacks(nghttp2_session_callbacks *cb)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
}

/* ---- the request model ------------------------------------------------------- */

static int method_number(pv_str_t m)
{
#define PV_H2_METHOD(num, name, string)                                                                     \
    if (m.len == sizeof(#string) - 1 && memcmp(m.p, #string, m.len) == 0)                                \
        return num;
    HTTP_METHOD_MAP(PV_H2_METHOD)
#undef PV_H2_METHOD
    return -1;
}

/* RFC 9113 8.3 beyond nghttp2's checks: no userinfo in :authority, and a
 * Host field, when sent beside it, naming the same authority. 0, or -1
 * for a malformed request (reset with PROTOCOL_ERROR). */
static int check_authority(const pv_h2_stream_t *st, const pv_header_t *host)
{
    if (st->authority.p && memchr(st->authority.p, '@', st->authority.len))
        return -1;
    if (host && st->authority.p &&
        (host->value.len != st->authority.len || !pv_str_ieq(host->value, st->authority.p, st->authority.len)))
        return -1;
    return 0;
}

/* Post-read over HTTP/2: the pseudo-header fields and the fields become
 * the request model. */
static int h2_head(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    pv_request_t *r = &hr->r;
    r->http_major = 2;
    r->http_minor = 0;
    r->method = st->method;
    r->method_id = method_number(st->method);
    if (r->method_id == HTTP_HEAD)
        r->flags |= PV_REQ_F_HEAD;
    if (!st->path.p && r->method_id != HTTP_CONNECT)
        return 400;
    size_t ll = st->method.len + st->path.len + 16;
    char *line = pv_arena_alloc(&hr->arena, ll);
    int n = snprintf(line, ll, "%.*s %.*s HTTP/2.0", (int)st->method.len, st->method.p, (int)st->path.len,
                     st->path.p);
    r->request_line = (pv_str_t){line, (size_t)n};

    pv_reqfields_t f = {.limit = INT_MAX}; /* max_headers was held to as the fields came */
    r->headers = pv_arena_alloc(&hr->arena, sizeof(pv_header_t) * (size_t)(st->nfields + 3));
    r->nheaders = 0;
    uint32_t head = (uint32_t)n + 2;
    for (int i = 0; i < st->nfields; i++) {
        r->headers[r->nheaders] = st->fields[i];
        head += (uint32_t)(st->fields[i].name.len + st->fields[i].value.len + 4);
        int rc = pv_reqhead_field(r, &f, &r->headers[r->nheaders]);
        if (rc > 0)
            return rc;
        if (rc == 0)
            r->nheaders++;
    }
    hr->head_len = head; /* what an HTTP/1.1 head of the same would take */
    r->request_length = head;
    const pv_header_t *host = NULL, *cl = NULL;
    for (int i = 0; i < r->nheaders; i++) {
        if (PV_STR_IEQ(r->headers[i].name, "host"))
            host = &r->headers[i];
        else if (PV_STR_IEQ(r->headers[i].name, "content-length"))
            cl = &r->headers[i];
    }
    if (st->authority.p && !host)
        r->headers[r->nheaders++] = (pv_header_t){PV_STR("host"), st->authority};
    pv_headers_join_cookies(&hr->r, &hr->arena);
    if (cl) {
        if (pv_http_parse_content_length(cl->value, &r->content_length) != 0)
            return 400;
        r->flags |= PV_REQ_F_HAS_CL;
    } else if (st->end_stream && st->body_received) {
        /* the whole body came with the head: its length is known, as
         * NGINX's preread buffer makes it */
        r->content_length = (int64_t)st->body_received;
        r->flags |= PV_REQ_F_HAS_CL;
    } else if (!st->end_stream) {
        r->flags |= PV_REQ_F_CHUNKED; /* length unknown, as NGINX marks it */
    }
    const pv_header_t *expect = f.single[3];
    if (expect && PV_STR_IEQ(expect->value, "100-continue"))
        r->flags |= PV_REQ_F_EXPECT_CONTINUE;
    hr->body_done = st->end_stream && (!st->bin || st->bin->pos == st->bin->last);
    int ws = r->method_id == HTTP_CONNECT ? pv_h2_ws_head(hr, st) : 0;
    if (ws)
        return ws;
    return pv_reqhead_target(r, st->path, st->authority.p ? &st->authority : host ? &host->value : NULL);
}

/* ---- events ------------------------------------------------------------------ */

static void stream_start(pv_h2_stream_t *st)
{
    pv_hreq_t *hr = st->hr;
    pv_timer_del(st->hc->w->loop, &st->timer);
    const pv_header_t *host = NULL;
    for (int i = 0; i < st->nfields; i++)
        if (PV_STR_IEQ(st->fields[i].name, "host"))
            host = &st->fields[i];
    if (check_authority(st, host) < 0) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client sent invalid :authority, client: %s", pv_log_client(&hr->r));
        nghttp2_submit_rst_stream(st->hc->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
        return;
    }
    st->started = 1;
    if (st->hdr_status) {
        pv_resp_local(hr, st->hdr_status, NULL, (pv_str_t){NULL, 0});
        return;
    }
    pv_phases_run(hr);
}

/* The stream closed (ended, or reset by either side): its request ends;
 * it is freed once nothing of it waits in the output. */
static void stream_end(pv_h2_stream_t *st)
{
    pv_h2conn_t *hc = st->hc;
    pv_hreq_t *hr = st->hr;
    if (st->prev)
        st->prev->next = st->next;
    else
        hc->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    hc->nstreams--;
    pv_timer_del(hc->w->loop, &st->timer);
    if (st->unconsumed) {
        nghttp2_session_consume_connection(hc->s, st->unconsumed);
        st->unconsumed = 0;
    }
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    pv_access_end(hr); /* a parked access step is not resumed on a closed stream */
    if (st->started) {
        if (!hr->r.status)
            hr->r.status = PV_HTTP_CLIENT_CLOSED; /* the client reset the stream before an answer */
        hr->r.body_bytes_sent = st->body_sent;
        pv_phases_log(hr);
    }
    st->next = hc->dead;
    hc->dead = st;
}

void pv_h2_stream_events(pv_h2_stream_t *st)
{
    uint8_t ev = st->ev;
    st->ev = 0;
    pv_hreq_t *hr = st->hr;
    pv_log_req_set(&hr->r);
    /* the phases run as the head completes, as NGINX runs them; a body
     * of unknown length then streams like a chunked one */
    if ((ev & PV_H2_EV_START) && !(ev & PV_H2_EV_CLOSE))
        stream_start(st);
    if ((ev & PV_H2_EV_READABLE) && !st->closed && st->started) {
        if (st->end_stream && (!st->bin || st->bin->pos == st->bin->last))
            hr->body_done = 1;
        if (hr->handling)
            hr->handler->readable(hr);
    }
    if (ev & PV_H2_EV_CLOSE)
        stream_end(st);
}

void pv_h2_stream_proceed(pv_h2_stream_t *st)
{
    pv_hreq_t *hr = st->hr;
    pv_log_req_set(&hr->r);
    st->want_proceed = 0;
    pv_timer_del(st->hc->w->loop, &st->timer);
    if (hr->handling)
        hr->handler->proceed(hr);
}

void pv_h2_stream_kill(pv_h2_stream_t *st)
{
    pv_h2conn_t *hc = st->hc;
    pv_hreq_t *hr = st->hr;
    hc->streams = st->next;
    if (st->next)
        st->next->prev = NULL;
    hc->nstreams--;
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    if (st->started) {
        if (!hr->r.status)
            hr->r.status = PV_HTTP_CLIENT_CLOSED;
        hr->r.body_bytes_sent = st->body_sent;
        pv_phases_log(hr);
    }
    pv_h2_stream_free(st);
}

void pv_h2_stream_free(pv_h2_stream_t *st)
{
    pv_hreq_t *hr = st->hr;
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    pv_timer_del(st->hc->w->loop, &st->timer);
    pv_buf_put(st->bin);
    pv_server_req_free(st->hr);
    if (pv_cache_put(&stream_cache, st) < 0)
        free(st);
}

/* A stream that timed out: the head not complete in time, the body not
 * sent (408 while nothing was answered), or its response not taken
 * (send_timeout, a zero window included): it is reset. */
static void stream_timeout(pv_h2_stream_t *st);

static void stream_timer_cb(pv_timer_t *t)
{
    pv_h2_stream_t *st = t->data;
    pv_log_req_set(&st->hr->r);
    stream_timeout(st);
    pv_log_req_set(NULL);
}

static void stream_timeout(pv_h2_stream_t *st)
{
    pv_hreq_t *hr = st->hr;
    pv_log_r(&hr->r, PV_LOG_INFO, "client timed out, client: %s", pv_log_client(&hr->r));
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    if (!st->head_sent && !hr->r.status)
        hr->r.status = 408; /* logged; no answer goes out */
    /* PROTOCOL_ERROR, as NGINX resets a stream that timed out */
    nghttp2_submit_rst_stream(st->hc->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
    pv_h2_dirty(st->hc);
}

/* ---- the response ---------------------------------------------------------- */

/* Fields that mean something only to one HTTP/1 connection (RFC 9113 8.2.2). */
static int connection_specific(pv_str_t n)
{
    return PV_STR_IEQ(n, "connection") || PV_STR_IEQ(n, "keep-alive") || PV_STR_IEQ(n, "transfer-encoding") ||
           PV_STR_IEQ(n, "upgrade") || PV_STR_IEQ(n, "proxy-connection");
}

typedef struct {
    nghttp2_nv *nv;
    pv_header_t *sent; /* the same, for $sent_http_NAME */
    int n;
} nvlist_t;

static void nv_add(pv_hreq_t *hr, nvlist_t *l, pv_str_t name, pv_str_t value)
{
    char *lname = pv_arena_alloc(&hr->arena, name.len + 1);
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.p[i];
        lname[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    l->nv[l->n] = (nghttp2_nv){(uint8_t *)lname, (uint8_t *)(uintptr_t)value.p, name.len, value.len,
                               NGHTTP2_NV_FLAG_NONE};
    l->sent[l->n] = (pv_header_t){(pv_str_t){lname, name.len}, value};
    l->n++;
}

/* h as HEADERS fields: :status, then what pv_http_write_head() writes, in
 * its order, lowercased and without the connection-specific fields. */
static void build_nv(pv_hreq_t *hr, const pv_resp_head_t *h, nvlist_t *l)
{
    int max = 8 + h->nfields;
    for (size_t i = 0; i < h->extra.len; i++)
        max += h->extra.p[i] == '\n';
    l->nv = pv_arena_alloc(&hr->arena, sizeof(nghttp2_nv) * (size_t)max);
    l->sent = pv_arena_alloc(&hr->arena, sizeof(pv_header_t) * (size_t)max);
    l->n = 0;
    char *st = pv_arena_alloc(&hr->arena, 4);
    st[0] = (char)('0' + (h->status / 100) % 10);
    st[1] = (char)('0' + (h->status / 10) % 10);
    st[2] = (char)('0' + h->status % 10);
    st[3] = '\0';
    nv_add(hr, l, PV_STR(":status"), (pv_str_t){st, 3});
    if (!h->server.p)
        nv_add(hr, l, PV_STR("server"), PV_STR(PV_NAME));
    else if (h->server.len)
        nv_add(hr, l, PV_STR("server"), h->server);
    if (!h->no_date)
        nv_add(hr, l, PV_STR("date"), pv_time_http_date());
    if (h->content_type.p)
        nv_add(hr, l, PV_STR("content-type"), h->content_type);
    if (h->content_length >= 0) {
        char *num = pv_arena_alloc(&hr->arena, 24);
        size_t nl = pv_u64_digits(num, (uint64_t)h->content_length);
        nv_add(hr, l, PV_STR("content-length"), (pv_str_t){num, nl});
    }
    if (h->location.p)
        nv_add(hr, l, PV_STR("location"), h->location);
    for (int i = 0; i < h->nfields; i++)
        if (!connection_specific(h->fields[i].name))
            nv_add(hr, l, h->fields[i].name, h->fields[i].value);
    const char *p = h->extra.p, *end = p ? p + h->extra.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon) {
            pv_str_t v = pv_http_trim_ows((pv_str_t){colon + 1, (size_t)(le - colon - 1)});
            if (v.len && v.p[v.len - 1] == '\r')
                v.len--;
            pv_str_t name = {p, (size_t)(colon - p)};
            if (!connection_specific(name))
                nv_add(hr, l, name, v);
        }
        p = eol ? eol + 1 : end;
    }
}

/* The response's trailer fields as a HEADERS frame ending the stream;
 * connection-specific and pseudo-header names are left out. */
static void submit_trailers(pv_h2_stream_t *st, uint32_t *data_flags)
{
    pv_hreq_t *hr = st->hr;
    nghttp2_nv nv[64];
    size_t n = 0;
    const char *p = hr->resp_trailers.p, *end = p + hr->resp_trailers.len;
    while (p < end && n < PV_NELEM(nv)) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon > p && p[0] != ':') {
            pv_str_t name = {p, (size_t)(colon - p)};
            pv_str_t v = pv_http_trim_ows((pv_str_t){colon + 1, (size_t)(le - colon - 1)});
            char *low = pv_arena_alloc(hr->r.arena, name.len);
            if (low && pv_header_name_valid(name) && pv_header_value_valid(v) && !connection_specific(name)) {
                for (size_t i = 0; i < name.len; i++)
                    low[i] = (char)(name.p[i] >= 'A' && name.p[i] <= 'Z' ? name.p[i] + 32 : name.p[i]);
                nv[n++] = (nghttp2_nv){(uint8_t *)low, (uint8_t *)v.p, name.len, v.len, NGHTTP2_NV_FLAG_NONE};
            }
        }
        p = eol ? eol + 1 : end;
    }
    if (n && nghttp2_submit_trailer(st->hc->s, st->id, nv, n) == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
}

static ssize_t data_read_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *src, void *ud)
{
    PV_UNUSED(s);
    PV_UNUSED(id);
    PV_UNUSED(buf);
    PV_UNUSED(ud);
    pv_h2_stream_t *st = src->ptr;
    size_t avail = 0;
    for (int i = 0; i < st->sn; i++)
        avail += st->spans[st->sfirst + i].len;
    avail -= st->soff;
    if (avail == 0) {
        if (st->resp_done) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            if (st->hr->resp_trailers.len)
                submit_trailers(st, data_flags);
            return 0;
        }
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t chunk = (size_t)lconf(st->hr)->http2_chunk_size;
    size_t n = PV_MIN(PV_MIN(length, avail), chunk ? chunk : length);
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && st->resp_done) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->hr->resp_trailers.len)
            submit_trailers(st, data_flags);
    }
    return (ssize_t)n;
}

int pv_h2_stream_send_data(pv_h2_stream_t *st, const uint8_t *framehd, size_t length)
{
    pv_h2conn_t *hc = st->hc;
    /* room for the frame header and every span the payload touches */
    int need = 1;
    size_t left = length, off = st->soff;
    for (int i = 0; left && i < st->sn; i++) {
        size_t l = st->spans[st->sfirst + i].len - off;
        left -= PV_MIN(l, left);
        off = 0;
        need++;
    }
    if (!pv_h2_out_room(hc, need) || pv_h2_out_copy(hc, framehd, 9) < 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    left = length;
    while (left) {
        pv_str_t *sp = &st->spans[st->sfirst];
        size_t l = PV_MIN(sp->len - st->soff, left);
        pv_outq_push(&hc->q, sp->p + st->soff, l);
        left -= l;
        st->soff += l;
        if (st->soff == sp->len) {
            st->sfirst++;
            st->sn--;
            st->soff = 0;
        }
    }
    if (st->sn == 0)
        st->sfirst = 0;
    st->body_sent += length;
    st->hr->r.bytes_sent += length + 9;
    return 0;
}

static int h2_send_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_h2_stream_t *st = hr->h2s;
    if (h->upgrade && pv_h2_ws_response(hr, h) != PV_OK)
        return PV_ERR;
    h->extra = hr->acc.xhdr;
    pv_hfilter_apply(hr, h);
    hr->r.status = h->status;
    if (st->closed || st->head_sent)
        return PV_OK; /* reset meanwhile: the close event ends the handler */
    nvlist_t l;
    build_nv(hr, h, &l);
    hr->r.resp_headers = l.sent + 1;
    hr->r.nresp_headers = l.n - 1;
    st->has_data = !(hr->r.flags & PV_REQ_F_HEAD) && h->status >= 200 && h->status != 204 && h->status != 304 &&
                   h->content_length != 0;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = data_read_cb};
    int rc = nghttp2_submit_response(st->hc->s, st->id, l.nv, (size_t)l.n, st->has_data ? &prd : NULL);
    if (rc != 0)
        return PV_ERR;
    st->head_sent = 1;
    for (int i = 0; i < l.n; i++)
        hr->r.bytes_sent += l.nv[i].namelen + l.nv[i].valuelen + 4; /* as its HTTP/1.1 lines would count */
    return PV_OK;
}

static int h2_room(const pv_hreq_t *hr)
{
    const pv_h2_stream_t *st = hr->h2s;
    return PV_H2_SPANS - st->sfirst - st->sn;
}

static void h2_send_body(pv_hreq_t *hr, const pv_str_t *spans, int n)
{
    pv_h2_stream_t *st = hr->h2s;
    if (!st->has_data || st->closed)
        return;
    for (int i = 0; i < n; i++)
        if (spans[i].len && st->sfirst + st->sn < PV_H2_SPANS)
            st->spans[st->sfirst + st->sn++] = spans[i];
    if (st->deferred && st->sn) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->hc->s, st->id);
    }
}

static int h2_flush(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    pv_h2conn_t *hc = st->hc;
    if (pv_h2_send(hc) == PV_ERR)
        return PV_ERR;
    if (st->sn == 0 && pv_outq_empty(&hc->q))
        return PV_OK;
    st->want_proceed = 1;
    pv_timer_set(hc->w->loop, &st->timer, (uint64_t)lconf(hr)->send_timeout);
    return PV_AGAIN;
}

static void h2_finish(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    if (st->has_data && !st->resp_done)
        pv_hfilter_trailers(hr); /* add_trailer's after the upstream's */
    st->resp_done = 1;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->hc->s, st->id);
    }
    pv_h2_dirty(st->hc);
    pv_h2_send(st->hc);
}

static void h2_abort(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    if (hr->handling) {
        hr->handling = 0;
        hr->handler->abort(hr);
    }
    if (!st->closed)
        nghttp2_submit_rst_stream(st->hc->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    pv_h2_dirty(st->hc);
}

static int h2_continue(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE};
    if (!st->closed)
        nghttp2_submit_headers(st->hc->s, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
    return pv_h2_send(st->hc) == PV_ERR ? PV_ERR : PV_OK;
}

static void h2_local(pv_hreq_t *hr, int status, const char *location, pv_str_t body)
{
    pv_h2_stream_t *st = hr->h2s;
    pv_timer_del(st->hc->w->loop, &st->timer);
    if (!hr->handling && !hr->body_held)
        pv_body_discard_buffered(hr);
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
        if (plen > 0) {
            char *copy = pv_arena_alloc(&hr->arena, (size_t)plen);
            memcpy(copy, page, (size_t)plen);
            body = (pv_str_t){copy, (size_t)plen};
        }
    }
    /* the page or text through the body filters, then compressed whole
     * when gzip or brotli says so */
    if (pv_bf_local(hr, &h, &body) != PV_OK || (body.p && pv_compress_local(hr, &h, &body) != PV_OK)) {
        h2_abort(hr);
        return;
    }
    if (h2_send_head(hr, &h) != PV_OK) {
        h2_abort(hr);
        return;
    }
    if (body.p)
        h2_send_body(hr, &body, 1);
    h2_finish(hr);
}

static void h2_error(pv_hreq_t *hr, int status)
{
    pv_h2_stream_t *st = hr->h2s;
    st->sfirst = st->sn = 0;
    st->soff = 0;
    if (st->head_sent) {
        h2_abort(hr);
        return;
    }
    h2_local(hr, status, NULL, (pv_str_t){NULL, 0});
}

static const pv_resp_ops_t h2_resp = {
    h2_send_head, h2_room, h2_send_body, h2_flush, h2_finish, h2_abort, h2_continue, h2_local, h2_error,
};

/* ---- the request body ---------------------------------------------------------- */

static size_t h2_buffered(const pv_hreq_t *hr)
{
    const pv_buf_t *b = hr->h2s->bin;
    return b ? b->last - b->pos : 0;
}

static int h2_take(pv_hreq_t *hr, pv_str_t *spans, int max)
{
    pv_h2_stream_t *st = hr->h2s;
    body_limit(st);
    if (hr->body_error)
        return PV_ERR;
    size_t n = h2_buffered(hr);
    if (hr->body_done || max <= 0)
        return 0;
    if (n == 0) {
        hr->body_done = st->end_stream;
        return 0;
    }
    pv_buf_t *b = st->bin;
    spans[0] = (pv_str_t){b->data + b->pos, n};
    b->pos = b->last;
    hr->r.request_length += n;
    hr->body_done = st->end_stream;
    return 1;
}

/* The bytes taken (and written out) go back to the client's windows. */
static void release_taken(pv_h2_stream_t *st)
{
    pv_buf_t *b = st->bin;
    if (!b || b->pos == 0)
        return;
    size_t n = b->pos;
    pv_buf_compact(b);
    st->body_released = 1;
    st->unconsumed -= n;
    if (!st->closed)
        nghttp2_session_consume(st->hc->s, st->id, n);
    else
        nghttp2_session_consume_connection(st->hc->s, n);
    pv_h2_dirty(st->hc);
}

static int h2_read(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    release_taken(st);
    if (h2_buffered(hr))
        return PV_OK;
    if (st->end_stream) {
        hr->body_done = 1;
        return PV_OK;
    }
    if (st->closed || st->hc->closing) {
        pv_log_r(&hr->r, PV_LOG_INFO, "client prematurely closed stream while sending request body, client: %s",
               pv_log_client(&hr->r));
        return PV_ERR;
    }
    if (!st->websocket) /* a tunnel has its own idle timer (proxy_read_timeout) */
        pv_timer_set(st->hc->w->loop, &st->timer, (uint64_t)lconf(hr)->client_body_timeout);
    return PV_AGAIN;
}

/* The stream's DATA land in its buffer as nghttp2 hands them over: the
 * body is held whole once END_STREAM came with nothing taken yet. */
static int h2_arrived(pv_hreq_t *hr, size_t limit, size_t *len)
{
    pv_h2_stream_t *st = hr->h2s;
    size_t held = h2_buffered(hr);
    if (!st->end_stream || hr->body_done || st->body_released || held > limit)
        return 0;
    *len = held;
    return 1;
}

static int h2_rewindable(const pv_hreq_t *hr)
{
    return !hr->h2s->body_released;
}

static int h2_rewind(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    if (st->body_released)
        return -1;
    if (st->bin)
        st->bin->pos = 0;
    hr->r.request_length = hr->head_len;
    hr->body_done = st->end_stream && h2_buffered(hr) == 0;
    return 0;
}

static void h2_discard_buffered(pv_hreq_t *hr)
{
    pv_h2_stream_t *st = hr->h2s;
    if (!st->end_stream)
        return;
    if (st->bin)
        st->bin->pos = st->bin->last;
    hr->body_done = 1;
}

static int h2_client_closed(pv_hreq_t *hr)
{
    return hr->h2s->closed || hr->h2s->hc->closing;
}

static const pv_body_ops_t h2_body = {
    h2_take, h2_buffered, h2_read, h2_arrived, h2_rewind, h2_rewindable, h2_discard_buffered, h2_client_closed,
};

const pv_proto_t pv_h2_proto = {"HTTP/2.0", &h2_resp, &h2_body, h2_head, 4096};
