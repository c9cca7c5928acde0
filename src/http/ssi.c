/* The SSI body filter (ssi.h): its head, the input it holds while a
 * subrequest it waits for runs, the output queue, and `include`.
 *
 * Input spans are parsed as they come; text goes into the queue as spans
 * into the input, each include as a subrequest started at once, so
 * includes run in parallel. The queue goes out in order: text, then a
 * subrequest's body as it comes, the queue waiting at a subrequest until
 * it has ended. While the queue is not empty pull() answers PV_AGAIN, so
 * the handler keeps its input buffers until their text has gone out;
 * the queue holds pointers, not copies, and a subrequest whose turn has
 * not come waits with what it has (subreq.h). */
#include "ssi.h"

#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "accesslog.h"
#include "server.h"

static pv_ssi_shared_t *shared(pv_hreq_t *hr)
{
    pv_hreq_t *m = pv_subreq_main(hr);
    if (!m->ssi)
        m->ssi = pv_arena_calloc(&m->arena, sizeof(pv_ssi_shared_t));
    return m->ssi;
}

/* ---- the queue -------------------------------------------------------------- */

static pv_ssi_item_t *item_new(pv_ssi_t *s, int kind)
{
    pv_ssi_item_t *it = s->spare;
    if (it)
        s->spare = it->next;
    else if (!(it = pv_arena_alloc(&s->hr->arena, sizeof(*it))))
        return NULL;
    memset(it, 0, sizeof(*it));
    it->kind = (uint8_t)kind;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    return it;
}

static void item_pop(pv_ssi_t *s)
{
    pv_ssi_item_t *it = s->head;
    s->head = it->next;
    if (!s->head)
        s->tail = NULL;
    it->next = s->spare;
    s->spare = it;
}

static int queue_text(pv_ssi_t *s, pv_str_t t)
{
    if (!t.len)
        return PV_OK;
    pv_ssi_item_t *l = s->tail;
    if (l && l->kind == PV_SSI_IT_TEXT && l->text.p + l->text.len == t.p) {
        l->text.len += t.len;
        return PV_OK;
    }
    pv_ssi_item_t *it = item_new(s, PV_SSI_IT_TEXT);
    if (!it)
        return PV_ERR;
    it->text = t;
    return PV_OK;
}

/* Text into the block being defined: copied, as the block outlives the
 * input (the main request's arena). */
static int block_text(pv_ssi_t *s, pv_str_t t)
{
    pv_ssi_block_t *b = s->m->last_block;
    if (!t.len || !b)
        return PV_OK;
    pv_arena_t *a = &pv_subreq_main(s->hr)->arena;
    pv_ssi_chunk_t *c = pv_arena_alloc(a, sizeof(*c));
    char *p = pv_arena_alloc(a, t.len);
    if (!c || !p)
        return PV_ERR;
    memcpy(p, t.p, t.len);
    c->text = (pv_str_t){p, t.len};
    c->next = NULL;
    if (b->last)
        b->last->next = c;
    else
        b->first = c;
    b->last = c;
    return PV_OK;
}

int pv_ssi_text(pv_ssi_t *s, pv_str_t t)
{
    if (s->output)
        return queue_text(s, t);
    return s->block ? block_text(s, t) : PV_OK;
}

int pv_ssi_error_out(pv_ssi_t *s)
{
    if (s->conf->silent_errors)
        return PV_OK;
    return queue_text(s, s->errmsg);
}

/* ---- subrequests -------------------------------------------------------------- */

static void sub_notify(pv_subreq_t *sub)
{
    pv_bf_wake(sub->parent);
}

/* The waited subrequest ended: set= takes its body; parsing goes on. */
static int wait_done(pv_ssi_t *s)
{
    pv_subreq_t *w = s->wait;
    if (!w || !w->done)
        return 0;
    if (s->wait_var) {
        *s->wait_var = (pv_str_t){w->mem ? w->mem : "", w->mem_len};
        s->wait_var = NULL;
        pv_subreq_free(w);
    }
    s->wait = NULL;
    return 1;
}

/* Put out what the head subrequest has; 1 when it ended and was taken
 * off the queue, 0 while it goes on. */
static int emit_sub(pv_ssi_t *s, pv_ssi_item_t *it)
{
    pv_subreq_t *sub = it->sub;
    const pv_str_t *sp;
    int n = pv_subreq_spans(sub, &sp);
    if (n) {
        for (int i = 0; i < n; i++)
            pv_bf_out(s->hr, &s->f, sp[i]);
        s->handed = 1;
        return 0;
    }
    if (!sub->done)
        return 0;
    pv_ssi_block_t *stub = it->stub;
    int use_stub = stub && !sub->failed && sub->body_bytes == 0; /* an empty answer */
    pv_subreq_free(sub);
    item_pop(s);
    if (use_stub) {
        for (const pv_ssi_chunk_t *c = stub->first; c; c = c->next)
            pv_bf_out(s->hr, &s->f, c->text);
    }
    return 1;
}

/* Move the queue into the filter's output, up to a subrequest that has
 * not ended. */
static void emit(pv_ssi_t *s)
{
    while (s->head && !s->handed && !s->f.failed) {
        pv_ssi_item_t *it = s->head;
        if (it->kind == PV_SSI_IT_TEXT) {
            pv_bf_out(s->hr, &s->f, it->text);
            item_pop(s);
        } else if (!emit_sub(s, it)) {
            break;
        }
    }
}

/* Start an included subrequest; set= keeps its body instead. */
static int start_sub(pv_ssi_t *s, pv_str_t uri, pv_str_t args, int wait, pv_str_t *var, pv_ssi_block_t *stub)
{
    pv_subreq_t *sub = pv_subreq_start(s->hr, uri, args, var != NULL, sub_notify, s);
    if (!sub)
        return -1;
    if (var) {
        s->wait = sub;
        s->wait_var = var;
        return 1;
    }
    pv_ssi_item_t *it = item_new(s, PV_SSI_IT_SUB);
    if (!it) {
        pv_subreq_free(sub);
        return -1;
    }
    it->sub = sub;
    it->stub = stub;
    if (stub) {
        int n = 0;
        for (const pv_ssi_chunk_t *c = stub->first; c; c = c->next)
            n++;
        pv_str_t *parts = n ? pv_arena_alloc(&s->hr->arena, sizeof(*parts) * (size_t)n) : NULL;
        n = 0;
        for (const pv_ssi_chunk_t *c = stub->first; parts && c; c = c->next)
            parts[n++] = c->text;
        sub->stub = parts;
        sub->nstub = parts ? n : 0;
        sub->stub_type = s->content_type;
    }
    if (wait) {
        s->wait = sub;
        return 1;
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* NGINX's ngx_http_parse_unsafe_uri(): the arguments split off at the
 * first '?', the path's %XX decoded in place, and a path that could
 * leave the root (a "." or ".." segment, a NUL) refused. 0 or -1. */
static int unsafe_uri(pv_str_t *uri, pv_str_t *args)
{
    char *p = (char *)uri->p;
    size_t len = uri->len;
    *args = (pv_str_t){NULL, 0};
    char *q = memchr(p, '?', len);
    if (q) {
        *args = (pv_str_t){q + 1, len - (size_t)(q - p) - 1};
        len = (size_t)(q - p);
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '%' && i + 2 < len && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        }
        if (c == '\0')
            return -1;
        p[n++] = c;
    }
    uri->len = n;
    if (n && p[0] == '.')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/' && p[i] != '\\')
            continue;
        size_t k = i + 1;
        if (k < n && p[k] == '.')
            k++;
        if (k < n && p[k] == '.' && k == i + 2)
            k++;
        if (k > i + 1 && (k == n || p[k] == '/' || p[k] == '\\'))
            return -1;
    }
    return 0;
}

static pv_ssi_block_t *find_block(pv_ssi_t *s, pv_str_t name)
{
    for (pv_ssi_block_t *b = s->m->blocks; b; b = b->next)
        if (b->name.len == name.len && memcmp(b->name.p, name.p, name.len) == 0)
            return b;
    return NULL;
}

enum { INC_VIRTUAL, INC_FILE, INC_WAIT, INC_SET, INC_STUB };

int pv_ssi_include(pv_ssi_t *s, const pv_str_t *const *params)
{
    pv_request_t *r = &s->hr->r;
    const pv_str_t *uri = params[INC_VIRTUAL], *file = params[INC_FILE], *wait = params[INC_WAIT];
    const pv_str_t *set = params[INC_SET], *stub = params[INC_STUB];
    if (uri && file) {
        pv_log_r(r, PV_LOG_ERR, "inclusion may be either virtual=\"%.*s\" or file=\"%.*s\"", (int)uri->len,
                 uri->p, (int)file->len, file->p);
        return -1;
    }
    if (!uri && !file) {
        pv_log_r(r, PV_LOG_ERR, "no parameter in \"include\" SSI command");
        return -1;
    }
    if (set && stub) {
        pv_log_r(r, PV_LOG_ERR, "\"set\" and \"stub\" cannot be used together in \"include\" SSI command");
        return -1;
    }
    int waited = 0;
    if (wait) {
        if (!uri) {
            pv_log_r(r, PV_LOG_ERR, "\"wait\" cannot be used with file=\"%.*s\"", (int)file->len, file->p);
            return -1;
        }
        if (wait->len == 3 && strncasecmp(wait->p, "yes", 3) == 0) {
            waited = 1;
        } else if (!(wait->len == 2 && strncasecmp(wait->p, "no", 2) == 0)) {
            pv_log_r(r, PV_LOG_ERR, "invalid value \"%.*s\" in the \"wait\" parameter", (int)wait->len, wait->p);
            return -1;
        }
    }
    if (!uri) {
        uri = file;
        waited = 1; /* NGINX waits for file= includes */
    }
    pv_str_t u, args;
    if (pv_ssi_evaluate(s, *uri, PV_SSI_ADD_PREFIX, &u) != PV_OK)
        return -1;
    if (unsafe_uri(&u, &args) != 0) {
        pv_log_r(r, PV_LOG_ERR, "unsafe URI \"%.*s\" was detected", (int)u.len, u.p);
        return -1;
    }
    pv_ssi_block_t *bl = NULL;
    if (stub && !(bl = find_block(s, *stub))) {
        pv_log_r(r, PV_LOG_ERR, "\"stub\"=\"%.*s\" for \"include\" not found", (int)stub->len, stub->p);
        return -1;
    }
    pv_str_t *var = NULL;
    if (set) {
        char low[PV_SSI_PARAM_LEN + 256];
        size_t n = PV_MIN(set->len, sizeof(low));
        for (size_t i = 0; i < n; i++)
            low[i] = (char)(set->p[i] >= 'A' && set->p[i] <= 'Z' ? set->p[i] | 0x20 : set->p[i]);
        var = pv_ssi_var(s, (pv_str_t){low, n}, 1);
        if (!var)
            return -1;
    }
    if (s->wait && (waited || var)) {
        pv_log_r(r, PV_LOG_ERR, "can only wait for one subrequest at a time");
        waited = 0;
    }
    int rc = start_sub(s, u, args, waited, var, bl);
    return rc < 0 ? -1 : rc;
}

/* ---- parsing -------------------------------------------------------------- */

/* Parse the input held until it is used up or a subrequest is waited for. */
static void run(pv_ssi_t *s)
{
    while (!s->wait && s->in_i < s->nin && !s->f.failed) {
        pv_str_t sp = s->in[s->in_i];
        size_t used = 0;
        pv_str_t text[2];
        int nt = 0;
        int rc = pv_ssi_parse(&s->p, sp.p + s->in_off, sp.len - s->in_off, &used, text, &nt);
        s->in_off += used;
        if (s->in_off >= sp.len) {
            s->in_i++;
            s->in_off = 0;
        }
        for (int i = 0; i < nt; i++)
            if (pv_ssi_text(s, text[i]) != PV_OK)
                s->f.failed = 1;
        if (rc == PV_SSI_COMMAND)
            pv_ssi_command(s);
        else if (rc == PV_SSI_BAD && pv_ssi_error_out(s) != PV_OK) /* as NGINX: in any branch */
            s->f.failed = 1;
    }
    if (s->in_i == s->nin)
        s->nin = s->in_i = 0;
}

/* ---- the filter ------------------------------------------------------------- */

/* Parse on (past a waited subrequest that has ended) and put out what
 * can go. */
static void step(pv_ssi_t *s)
{
    wait_done(s);
    run(s);
    emit(s);
}

static void ssi_body(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    pv_ssi_t *s = (pv_ssi_t *)f;
    if (s->nin + n > s->incap) {
        int cap = PV_MAX(s->incap * 2, s->nin + n + 16);
        pv_str_t *in = pv_arena_alloc(&hr->arena, (size_t)cap * sizeof(*in));
        if (!in) {
            f->failed = 1;
            return;
        }
        if (s->nin)
            memcpy(in, s->in, (size_t)s->nin * sizeof(*in));
        s->in = in;
        s->incap = cap;
    }
    for (int i = 0; i < n; i++)
        if (spans[i].len)
            s->in[s->nin++] = spans[i];
    step(s);
}

static void ssi_end(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    step((pv_ssi_t *)f);
}

static void ssi_written(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    pv_ssi_t *s = (pv_ssi_t *)f;
    if (s->handed && s->head) {
        s->handed = 0;
        pv_subreq_consumed(s->head->sub);
    }
}

static int ssi_pull(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    pv_ssi_t *s = (pv_ssi_t *)f;
    step(s);
    if (f->failed)
        return PV_ERR;
    if (f->nout || (!s->head && !s->wait && s->in_i == s->nin))
        return PV_OK;
    return PV_AGAIN; /* a subrequest's turn: pv_bf_wake() when it has more */
}

static void ssi_free(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    pv_ssi_t *s = (pv_ssi_t *)f;
    for (pv_ssi_item_t *it = s->head; it; it = it->next)
        if (it->kind == PV_SSI_IT_SUB)
            pv_subreq_free(it->sub);
    if (s->wait_var && s->wait)
        pv_subreq_free(s->wait);
    s->head = s->tail = NULL;
    s->wait = NULL;
}

static const pv_bfilter_ops_t ssi_ops = {"ssi", ssi_body, ssi_end, ssi_written, ssi_pull, ssi_free};

/* ---- the head ------------------------------------------------------------------ */

/* NGINX's head changes for the main request: no Content-Length or
 * Accept-Ranges; no Last-Modified and ETag, or (ssi_last_modified) a
 * weak ETag. */
static int rewrite_head(pv_hreq_t *hr, pv_resp_head_t *h, int last_modified)
{
    if (pv_bf_head_fields(hr, h, !last_modified) != PV_OK)
        return PV_RESP_NOMEM;
    h->content_length = -1;
    h->frame = (hr->r.flags & PV_REQ_F_HEAD) ? PV_FRAME_NONE : PV_FRAME_CHUNKED;
    return PV_OK;
}

/* Whether the SSI filter takes a response with head h. */
static int ssi_changes(const pv_hreq_t *hr, const pv_resp_head_t *h)
{
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : NULL;
    return lc && lc->ssi.enable && h->content_length != 0 && !h->upgrade && h->content_type.p &&
           pv_bf_type_listed(lc->ssi.types, h->content_type);
}

static int ssi_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : NULL;
    if (!ssi_changes(hr, h))
        return PV_OK;
    if (!hr->sub && rewrite_head(hr, h, lc->ssi.last_modified) != PV_OK)
        return PV_RESP_NOMEM;
    if (hr->r.flags & PV_REQ_F_HEAD)
        return PV_OK;
    size_t vlen = (size_t)PV_MAX(lc->ssi.value_len, 1);
    char *vbuf = pv_arena_alloc(&hr->arena, pv_ssi_vbuf_size(vlen));
    pv_ssi_shared_t *m = shared(hr);
    pv_ssi_t *s = vbuf && m ? (pv_ssi_t *)pv_bf_add(hr, &ssi_ops, sizeof(pv_ssi_t)) : NULL;
    if (!s)
        return PV_RESP_NOMEM;
    s->hr = hr;
    s->conf = &lc->ssi;
    s->content_type = (pv_str_t){pv_arena_strndup(&hr->arena, h->content_type.p, h->content_type.len),
                                 h->content_type.len};
    s->m = m;
    pv_ssi_init(&s->p, vlen, vbuf);
    s->output = 1;
    s->encoding = PV_SSI_ENC_ENTITY;
    s->errmsg = PV_STR("[an error occurred while processing the directive]");
    s->timefmt = PV_STR("%A, %d-%b-%Y %H:%M:%S %Z");
    return PV_OK;
}

const pv_bfilter_module_t pv_ssi_bfilter = {"ssi", ssi_head, ssi_changes};
