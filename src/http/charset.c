/* The charset module (charset.h): NGINX's charset header filter, made
 * once per response, and the recoding body filter. */
#include "charset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/arena.h"
#include "../core/log.h"
#include "../core/recode.h"
#include "server.h"
#include "uvars.h"
#include "vars.h"

enum { CS_FAIL = -1, CS_NONE = 0, CS_BYTES, CS_TO_UTF8, CS_FROM_UTF8 };

typedef struct pv_charset_ctx_s {
    uint8_t mode;          /* CS_*: what the body filter does */
    uint8_t failed;        /* a charset variable was not found: the response goes no further */
    const uint8_t *table;  /* CS_BYTES: 256 bytes; CS_TO_UTF8: 256 x 4 */
    uint8_t *const *pages; /* CS_FROM_UTF8 */
} pv_charset_ctx_t;

typedef struct {
    pv_bfilter_t f;
    pv_charset_ctx_t *cx;
    pv_recode_t st;        /* a UTF-8 sequence cut between spans */
    uint8_t *buf;          /* the recoded bytes of the spans taken last */
    size_t cap;
} cs_filter_t;

/* The type part of a Content-Type and the charset it names, as NGINX
 * reads an upstream's (content_type_len, charset): "; charset=" after
 * any ';' (spaces before it), the rest of the value, without quotes. */
static pv_str_t split_type(pv_str_t ct, pv_str_t *cs)
{
    *cs = (pv_str_t){NULL, 0};
    for (size_t i = 0; i < ct.len; i++) {
        if (ct.p[i] != ';')
            continue;
        size_t k = i + 1;
        while (k < ct.len && ct.p[k] == ' ')
            k++;
        if (ct.len - k < 8 || strncasecmp(ct.p + k, "charset=", 8) != 0)
            continue;
        k += 8;
        size_t end = ct.len;
        if (k < end && ct.p[k] == '"')
            k++;
        if (end > k && ct.p[end - 1] == '"')
            end--;
        *cs = (pv_str_t){ct.p + k, end - k};
        return (pv_str_t){ct.p, i};
    }
    return ct;
}

static int type_listed(const pv_charset_conf_t *c, pv_str_t type)
{
    if (c->ntypes < 0)
        return 1;
    for (int i = 0; i < c->ntypes; i++)
        if (c->types[i].len == type.len && strncasecmp(c->types[i].p, type.p, type.len) == 0)
            return 1;
    return 0;
}

/* A name by index, or a variable's value (then looked up); CS_FAIL
 * when the variable is not found, which NGINX's filter takes for an
 * error. */
static int charset_of(pv_hreq_t *hr, const pv_charsets_t *cs, int idx, const pv_cv_t *var, pv_str_t *name)
{
    if (idx != PV_CHARSET_VAR) {
        *name = cs->names[idx];
        return idx;
    }
    if (var->nparts == 1 && var->parts[0].var) {
        char scratch[64];
        pv_str_t v = pv_var_get(&hr->r, &var->parts[0], scratch, sizeof(scratch));
        if (!v.p) {
            pv_log(PV_LOG_ERR, "the charset variable is not found, the request is cut");
            return CS_FAIL;
        }
    }
    *name = pv_cv_eval_arena(var, &hr->r);
    return pv_charset_find(cs, *name);
}

static int has_encoding(const pv_resp_head_t *h)
{
    for (int i = 0; i < h->nfields; i++)
        if (h->fields[i].name.len == 16 && strncasecmp(h->fields[i].name.p, "Content-Encoding", 16) == 0 &&
            h->fields[i].value.len)
            return 1;
    return 0;
}

/* The Content-Type with "; charset=NAME" (NGINX's set_charset): none on
 * 301 and 302; cut: the response's own charset parameter goes. A
 * response that keeps its own parameter keeps its field as it is. */
static void set_charset(pv_hreq_t *hr, pv_resp_head_t *h, pv_str_t type, pv_str_t own, pv_str_t name, int cut)
{
    if (own.len && !cut)
        return;
    if (h->status == 301 || h->status == 302)
        name.len = 0;
    if (!name.len) {
        h->content_type = type;
        return;
    }
    size_t len = type.len + 10 + name.len;
    char *s = pv_arena_alloc(&hr->arena, len);
    if (!s)
        return;
    memcpy(s, type.p, type.len);
    memcpy(s + type.len, "; charset=", 10);
    memcpy(s + type.len + 10, name.p, name.len);
    h->content_type = (pv_str_t){s, len};
}

static void no_map(pv_str_t src, pv_str_t dst)
{
    pv_log(PV_LOG_ERR, "no \"charset_map\" between the charsets \"%.*s\" and \"%.*s\"", (int)src.len, src.p,
           (int)dst.len, dst.p);
}

/* NGINX's charset header filter on h; the recoding chosen, or CS_NONE
 * (with *m NULL). */
static int decide(pv_hreq_t *hr, pv_resp_head_t *h, const pv_charset_map_t **m, int *fwd)
{
    *m = NULL;
    /* the answering location's settings, else its server's (a `return` there) */
    const pv_loc_conf_t *lc = hr->r.loc ? &hr->r.loc->conf : hr->r.srv ? &hr->r.srv->conf : NULL;
    if (!lc || !hr->r.conf || !hr->r.conf->http || !h->content_type.p || !h->content_type.len)
        return CS_NONE;
    const pv_charset_conf_t *c = &lc->hdr.cs;
    const pv_charsets_t *cs = &hr->r.conf->http->charsets;
    pv_str_t own, type = split_type(h->content_type, &own), dname, sname;
    int dst, src;
    if (hr->r.accel_charset.len) {
        dname = hr->r.accel_charset;
        if ((dst = pv_charset_find(cs, dname)) == PV_CHARSET_NONE) {
            pv_log(PV_LOG_ERR, "unknown charset \"%.*s\" to override", (int)dname.len, dname.p);
            return CS_NONE;
        }
    } else {
        if (c->charset == PV_CHARSET_OFF || (own.len ? !c->override : !type_listed(c, type)))
            return CS_NONE;
        if ((dst = charset_of(hr, cs, c->charset, c->charset_var, &dname)) == CS_FAIL)
            return CS_FAIL;
    }
    if (own.len) {
        sname = own;
        src = pv_charset_find(cs, own);
    } else if (c->source == PV_CHARSET_OFF) {
        set_charset(hr, h, type, own, dname, 0);
        return CS_NONE;
    } else if ((src = charset_of(hr, cs, c->source, c->source_var, &sname)) == CS_FAIL) {
        return CS_FAIL;
    }
    if (dst == PV_CHARSET_NONE || src == PV_CHARSET_NONE) {
        /* names no directive gave: only the same one twice is no recoding */
        if (src != dst || sname.len < dname.len || strncasecmp(dname.p, sname.p, dname.len) != 0) {
            no_map(sname, dname);
            return CS_NONE;
        }
        set_charset(hr, h, type, own, dname, 0);
        return CS_NONE;
    }
    if (src == dst) {
        set_charset(hr, h, type, own, dname, 1);
        return CS_NONE;
    }
    if (has_encoding(h))
        return CS_NONE; /* an encoded body cannot be recoded: left as it is */
    int dir;
    if (!(*m = pv_charset_map_find(cs, src, dst, &dir))) {
        no_map(sname, dname);
        return CS_NONE;
    }
    set_charset(hr, h, type, own, dname, 1);
    *fwd = (*m)->from == src;
    return dir > 0 ? CS_TO_UTF8 : dir < 0 ? CS_FROM_UTF8 : CS_BYTES;
}

/* Clear the length of a body recoded to or from UTF-8 (NGINX's
 * clear_content_length): it goes chunked, a HEAD's answer without it. */
static void unknown_length(pv_hreq_t *hr, pv_resp_head_t *h)
{
    h->content_length = -1;
    if (h->frame != PV_FRAME_CLOSE)
        h->frame = (hr->r.flags & PV_REQ_F_HEAD) ? PV_FRAME_NONE : PV_FRAME_CHUNKED;
}

int pv_charset_prepare(pv_hreq_t *hr, pv_resp_head_t *h)
{
    if (hr->cs)
        return hr->cs->mode == CS_TO_UTF8 || hr->cs->mode == CS_FROM_UTF8;
    pv_charset_ctx_t *cx = pv_arena_calloc(&hr->arena, sizeof(*cx));
    if (!cx)
        return 0;
    hr->cs = cx;
    const pv_charset_map_t *m;
    int fwd = 1, mode = decide(hr, h, &m, &fwd);
    cx->failed = mode == CS_FAIL;
    cx->mode = (uint8_t)(mode == CS_FAIL ? CS_NONE : mode);
    if (cx->mode == CS_BYTES)
        cx->table = fwd ? m->fwd : m->back;
    else if (cx->mode == CS_TO_UTF8)
        cx->table = m->u8;
    else if (cx->mode == CS_FROM_UTF8)
        cx->pages = m->pages;
    if (cx->mode != CS_TO_UTF8 && cx->mode != CS_FROM_UTF8)
        return 0;
    unknown_length(hr, h);
    return 1;
}

int pv_charset_utf8(const pv_resp_head_t *h)
{
    pv_str_t own;
    split_type(h->content_type, &own);
    return own.len == 5 && strncasecmp(own.p, "utf-8", 5) == 0;
}

/* ---- the body filter ------------------------------------------------------ */

static int needs(cs_filter_t *cf, const uint8_t *p, size_t n)
{
    switch (cf->cx->mode) {
    case CS_BYTES:
        return pv_recode_bytes_needed(cf->cx->table, p, n);
    case CS_TO_UTF8:
        return pv_recode_to_utf8_needed(cf->cx->table, p, n);
    default:
        return pv_recode_from_utf8_needed(&cf->st, p, n);
    }
}

static size_t recode(cs_filter_t *cf, const uint8_t *p, size_t n, uint8_t *out)
{
    switch (cf->cx->mode) {
    case CS_BYTES:
        return pv_recode_bytes(cf->cx->table, p, n, out);
    case CS_TO_UTF8:
        return pv_recode_to_utf8(cf->cx->table, p, n, out);
    default:
        return pv_recode_from_utf8(&cf->st, cf->cx->pages, p, n, out);
    }
}

/* Spans with nothing to change go on as they are; the others are
 * recoded into the filter's buffer, which the next spans reuse once
 * these are written (it grows to what the largest take needs). */
static void cs_body(pv_hreq_t *hr, pv_bfilter_t *f, const pv_str_t *spans, int n)
{
    cs_filter_t *cf = (cs_filter_t *)f;
    size_t need = 0;
    for (int i = 0; i < n; i++)
        need += PV_RECODE_MAX(spans[i].len);
    if (need > cf->cap) {
        uint8_t *b = realloc(cf->buf, need);
        if (!b) {
            f->failed = 1;
            return;
        }
        cf->buf = b;
        cf->cap = need;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)spans[i].p;
        if (!needs(cf, p, spans[i].len)) {
            if (pv_bf_out(hr, f, spans[i]) != PV_OK)
                return;
            continue;
        }
        size_t k = recode(cf, p, spans[i].len, cf->buf + off);
        if (pv_bf_out(hr, f, (pv_str_t){(char *)cf->buf + off, k}) != PV_OK)
            return;
        off += k;
    }
}

static void cs_end(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    PV_UNUSED(f); /* a UTF-8 sequence cut at the end is dropped, as in NGINX */
}

static void cs_free(pv_hreq_t *hr, pv_bfilter_t *f)
{
    PV_UNUSED(hr);
    cs_filter_t *cf = (cs_filter_t *)f;
    free(cf->buf);
    cf->buf = NULL;
    cf->cap = 0;
}

static const pv_bfilter_ops_t cs_ops = {"charset", cs_body, cs_end, NULL, NULL, cs_free};

static int cs_head(pv_hreq_t *hr, pv_resp_head_t *h)
{
    pv_charset_prepare(hr, h);
    if (hr->cs && hr->cs->failed)
        return PV_RESP_NOMEM; /* logged: nothing is answered */
    if (!hr->cs || hr->cs->mode == CS_NONE || (hr->r.flags & PV_REQ_F_HEAD))
        return PV_OK;
    cs_filter_t *cf = (cs_filter_t *)pv_bf_add(hr, &cs_ops, sizeof(*cf));
    if (!cf)
        return PV_RESP_NOMEM;
    cf->cx = hr->cs;
    return PV_OK;
}

const pv_bfilter_module_t pv_charset_bfilter = {"charset", cs_head, NULL};
