/* The rewrite module's script engine (ngx_http_rewrite_handler() and the
 * codes of ngx_http_script.c): the server's script runs in the server
 * rewrite phase, the location's in the rewrite phase; then, as NGINX's
 * post-rewrite phase does, a changed URI sends the request back to the
 * location search, at most 10 times. */
#include "script.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/log.h"
#include "phases.h"
#include "redirect.h"
#include "router.h"
#include "server.h"
#include "static.h"
#include "uvars.h"
#include "vars.h"
#include "accesslog.h"


/* ---- escaping (ngx_escape_uri NGX_ESCAPE_ARGS, ngx_unescape_uri REDIRECT) ---- */

/* " ", "#", "%", "&", "+", ";", "?", controls and bytes >= 0x7f */
static int args_escaped(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '#' || c == '%' || c == '&' || c == '+' || c == ';' ||
           c == '?';
}

/* Append n bytes at *k to buf[0..cap) (buf NULL: count only); what does
 * not fit is counted, not written. */
static void put(char *buf, size_t cap, size_t *k, const char *p, size_t n)
{
    if (buf && *k < cap)
        memcpy(buf + *k, p, PV_MIN(n, cap - *k));
    *k += n;
}

/* Append src escaped as NGX_ESCAPE_ARGS does. */
static void put_escaped(char *buf, size_t cap, size_t *k, const char *src, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (args_escaped(c)) {
            char e[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            put(buf, cap, k, e, 3);
        } else {
            put(buf, cap, k, src + i, 1);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A redirect's text before its '?': "%XX" of a printable byte above '%'
 * is decoded, others stay as written. In place; returns the new length. */
static size_t unescape_redirect(char *p, size_t n)
{
    size_t d = 0, i = 0;
    while (i < n && p[i] != '?') {
        int h, l;
        if (p[i] == '%' && i + 2 < n + 0 && (h = hexval(p[i + 1])) >= 0 &&
            (l = hexval(p[i + 2])) >= 0) {
            int ch = (h << 4) | l;
            if (ch > '%' && ch < 0x7f) {
                p[d++] = (char)ch;
                i += 3;
                continue;
            }
        }
        p[d++] = p[i++];
    }
    memmove(p + d, p + i, n - i);
    return d + (n - i);
}

/* ---- the replacement of a rewrite ---- */

/* Whether the client's path had escapes or '+' (quoted_uri, plus_in_uri):
 * then captures copied into arguments or a redirect are escaped again. */
static int uri_quoted(const pv_request_t *r)
{
    for (size_t i = 0; i < r->request_uri.len; i++) {
        char c = r->request_uri.p[i];
        if (c == '%' || c == '+')
            return 1;
        if (c == '?' || c == '#')
            return 0;
    }
    return 0;
}

/* Write the replacement of o into buf[0..cap) (buf NULL: count); returns
 * the length it needs, which may differ between calls when a volatile map
 * moves the captures, so nothing past cap is written. *args_at gets the
 * offset where the arguments start (after the first literal '?' of an
 * internal rewrite), or -1. */
static size_t replacement(pv_request_t *r, const pv_rw_op_t *o, char *buf, size_t cap,
                          ptrdiff_t *args_at)
{
    int redirect = o->code != 0, quoted = uri_quoted(r), in_args = 0;
    size_t k = 0;
    *args_at = -1;
    for (int i = 0; i < o->value.nparts; i++) {
        const pv_cv_part_t *part = &o->value.parts[i];
        pv_str_t v;
        if (!part->var) {
            v = part->text;
            const char *q = redirect || in_args ? NULL : memchr(v.p, '?', v.len);
            if (q) {
                size_t before = (size_t)(q - v.p);
                put(buf, cap, &k, v.p, before);
                *args_at = (ptrdiff_t)PV_MIN(k, cap);
                in_args = 1;
                v = (pv_str_t){q + 1, v.len - before - 1};
            }
            put(buf, cap, &k, v.p, v.len);
            continue;
        }
        char scratch[128];
        v = pv_var_get(r, part, scratch, sizeof(scratch));
        if (!v.p)
            continue;
        if (part->var == &pv_var_capture && (in_args || redirect) && quoted)
            put_escaped(buf, cap, &k, v.p, v.len);
        else
            put(buf, cap, &k, v.p, v.len);
    }
    return k;
}

/* ---- outcomes ---- */

static int is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

/* The script answers: code, with a redirect's URL or a body. */
static int answer(pv_script_out_t *out, int code, const char *url, pv_str_t body, int has_text)
{
    *out = (pv_script_out_t){code, url, body, has_text};
    return PV_SCRIPT_ANSWER;
}

/* `return CODE [TEXT|URL]`: a redirect code takes a URL, any other code a
 * body; without text a code of 400 and above is the error page. */
static int do_return(pv_request_t *r, const pv_rw_op_t *o, pv_script_out_t *out)
{
    if (!o->has_text)
        return answer(out, o->code, NULL, (pv_str_t){NULL, 0}, 0);
    pv_str_t t = pv_cv_eval_arena(&o->value, r);
    return answer(out, o->code, is_redirect(o->code) ? t.p : NULL, t, 1);
}

static int fail(pv_script_out_t *out)
{
    return answer(out, 500, NULL, (pv_str_t){NULL, 0}, 0);
}

/* ---- the codes ---- */

/* A rewrite whose regex matched: change the URI and args, or redirect. */
static int do_rewrite(pv_request_t *r, const pv_rw_op_t *o, int log, pv_script_out_t *out)
{
    ptrdiff_t args_at;
    size_t need = replacement(r, o, NULL, 0, &args_at);
    size_t extra = o->add_args && r->args.len ? r->args.len + 1 : 0;
    char *buf = pv_arena_alloc(r->arena, need + extra + 1);
    size_t len = PV_MIN(replacement(r, o, buf, need, &args_at), need);
    if (o->code) {
        len = unescape_redirect(buf, len);
        if (extra) {
            buf[len++] = o->has_args ? '&' : '?';
            memcpy(buf + len, r->args.p, r->args.len);
            len += r->args.len;
        }
        buf[len] = '\0';
        if (log)
            pv_log_r(r, PV_LOG_NOTICE, "rewritten redirect: \"%s\", client: %s", buf, pv_log_client(r));
        return answer(out, o->code, buf, (pv_str_t){NULL, 0}, 1);
    }
    pv_str_t uri = {buf, len};
    if (args_at >= 0) {
        uri.len = (size_t)args_at;
        if (extra) {
            buf[len++] = '&';
            memcpy(buf + len, r->args.p, r->args.len);
            len += r->args.len;
        }
        r->args = (pv_str_t){buf + args_at, len - (size_t)args_at};
        r->has_args = 1;
    } else if (!o->add_args) {
        r->args = (pv_str_t){"", 0};
        r->has_args = 0;
    }
    buf[len] = '\0';
    if (log)
        pv_log_r(r, PV_LOG_NOTICE, "rewritten data: \"%.*s\", args: \"%.*s\", client: %s", (int)uri.len,
               uri.p, (int)r->args.len, r->args.p, pv_log_client(r));
    if (uri.len == 0) {
        pv_log_r(r, PV_LOG_ERR, "the rewritten URI has a zero length, client: %s", pv_log_client(r));
        return fail(out);
    }
    r->uri = uri;
    r->flags |= PV_REQ_F_REWRITTEN;
    return PV_SCRIPT_NEXT;
}

/* -f -d -e -x and their negations, on the filesystem. */
static int file_test(pv_request_t *r, const pv_rw_op_t *o, pv_str_t path)
{
    struct stat st;
    int ok;
    if (pv_static_stat(r, path.p, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG)
            pv_log_r(r, PV_LOG_CRIT, "stat() \"%s\" failed (%d: %s), client: %s", path.p, errno,
                   strerror(errno), pv_log_client(r));
        return o->negate;
    }
    switch (o->file_op) {
    case 'f':
        ok = S_ISREG(st.st_mode);
        break;
    case 'd':
        ok = S_ISDIR(st.st_mode);
        break;
    case 'e':
        ok = S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode);
        break;
    default:
        ok = (st.st_mode & S_IXUSR) != 0;
        break;
    }
    return o->negate ? !ok : ok;
}

/* An if condition: 1 true, 0 false, -1 an error (500). */
static int condition(pv_request_t *r, const pv_rw_op_t *o, int log)
{
    if (o->cond == PV_IF_FILE)
        return file_test(r, o, pv_cv_eval_arena(&o->arg, r));
    char scratch[128];
    pv_str_t v = pv_var_get(r, &o->value.parts[0], scratch, sizeof(scratch));
    if (!v.p)
        v = (pv_str_t){"", 0};
    switch (o->cond) {
    case PV_IF_VAR:
        return v.len && !(v.len == 1 && v.p[0] == '0');
    case PV_IF_EQ:
    case PV_IF_NE: {
        if (v.p == scratch)
            v.p = pv_arena_strndup(r->arena, v.p, v.len);
        pv_str_t w = pv_cv_eval_arena(&o->arg, r);
        int eq = v.len == w.len && memcmp(v.p, w.p, v.len) == 0;
        return o->cond == PV_IF_EQ ? eq : !eq;
    }
    default: {
        int rc = pv_regex_exec(r, o->re, v);
        if (rc < 0)
            return -1;
        if (log)
            pv_log_r(r, PV_LOG_NOTICE, "\"%s\" %s \"%.*s\", client: %s", o->re->src,
                   rc ? "matches" : "does not match", (int)v.len, v.p, pv_log_client(r));
        if (!rc)
            r->ncaptures = 0; /* a failed match clears $1..$9, as NGINX's does */
        return o->negate ? !rc : rc;
    }
    }
}

/* `set $limit_rate VALUE`: the request's rate from now on, whatever its
 * location says; an invalid value changes nothing (NGINX's message). */
static void set_limit_rate(pv_request_t *r, pv_str_t v);

void pv_script_set_builtin(pv_request_t *r, int slot, pv_str_t v)
{
    if (slot == PV_RW_SLOT_LIMIT_RATE) {
        set_limit_rate(r, v);
    } else {
        r->args = v;
        r->has_args = v.len > 0;
        r->flags |= PV_REQ_F_ARGS_SET;
    }
}

static void set_limit_rate(pv_request_t *r, pv_str_t v)
{
    int64_t n = pv_conf_parse_size(v);
    if (n < 0) {
        pv_log(PV_LOG_ERR, "invalid $limit_rate \"%.*s\", client: %s", (int)v.len, v.p, r->peer_text);
        return;
    }
    r->limit_rate = n;
    r->limit_rate_set = 1;
}

int pv_script_run(pv_request_t *r, const pv_script_t *s, const pv_loc_conf_t *lc,
                  pv_script_out_t *out)
{
    int log = lc->rewrite_log == 1;
    int ip = 0;
    while (ip < s->nops) {
        const pv_rw_op_t *o = &s->ops[ip];
        switch (o->op) {
        case PV_RW_SET: {
            pv_str_t v = pv_cv_eval_arena(&o->value, r);
            if (o->slot >= 0)
                pv_uvar_set(r, o->slot, v.p, v.len);
            else
                pv_script_set_builtin(r, o->slot, v);
            ip++;
            break;
        }
        case PV_RW_IF: {
            int t = condition(r, o, log);
            if (t < 0)
                return fail(out);
            if (t && o->ifloc) {
                /* an earlier `if` had proxy_pass, this one none: NGINX
                 * keeps the proxy handler, which finds no upstream (500) */
                if (r->loc && r->loc->proxy_pass && !o->ifloc->proxy_pass)
                    r->flags |= PV_REQ_F_NO_UPSTREAM;
                r->loc = o->ifloc;
                log = o->ifloc->conf.rewrite_log == 1;
            }
            ip = t ? ip + 1 : o->next;
            break;
        }
        case PV_RW_RETURN:
            return do_return(r, o, out);
        case PV_RW_BREAK:
            if (r->uri_changed) {
                r->flags |= PV_REQ_F_LOC_INVALID;
                r->uri_changed = 0;
            }
            return PV_SCRIPT_NEXT;
        default: {
            int rc = pv_regex_exec(r, o->re, r->uri);
            if (rc < 0)
                return fail(out);
            if (log)
                pv_log_r(r, PV_LOG_NOTICE, "\"%s\" %s \"%.*s\", client: %s", o->re->src,
                       rc ? "matches" : "does not match", (int)r->uri.len, r->uri.p, pv_log_client(r));
            if (!rc) {
                r->ncaptures = 0;
                ip++;
                break;
            }
            if (!o->code) {
                if (o->flag == PV_RWF_BREAK)
                    r->flags |= PV_REQ_F_LOC_INVALID;
                r->uri_changed = o->flag != PV_RWF_BREAK;
            }
            if (do_rewrite(r, o, log, out) == PV_SCRIPT_ANSWER)
                return PV_SCRIPT_ANSWER;
            if (o->flag == PV_RWF_LAST || o->flag == PV_RWF_BREAK)
                return PV_SCRIPT_NEXT;
            ip++;
            break;
        }
        }
    }
    return PV_SCRIPT_NEXT;
}

/* ---- phase handlers ---- */

/* Send the script's answer: a relative redirect is made absolute, as
 * NGINX's header filter does. */
static int respond(pv_hreq_t *hr, const pv_script_out_t *out)
{
    pv_request_t *r = &hr->r;
    const char *url = out->url;
    if (!out->has_text) {
        pv_resp_local(hr, out->code, NULL, (pv_str_t){NULL, 0});
    } else if (url) {
        if (url[0] == '/')
            url = pv_router_location_url(r, (pv_str_t){url, strlen(url)}, 0, (pv_str_t){NULL, 0}).p;
        pv_resp_local(hr, out->code, url, (pv_str_t){NULL, 0});
    } else {
        pv_resp_local(hr, out->code, NULL, out->body);
    }
    return PV_PHASE_DONE;
}

static int server_rewrite(pv_hreq_t *hr)
{
    const pv_server_t *srv = hr->r.srv;
    pv_script_out_t out;
    if (!srv || !srv->rw.nops)
        return PV_PHASE_NEXT;
    if (pv_script_run(&hr->r, &srv->rw, &srv->conf, &out) == PV_SCRIPT_ANSWER)
        return respond(hr, &out);
    return PV_PHASE_NEXT;
}

/* The location's script, then NGINX's post-rewrite: a changed URI is
 * looked up again. */
static int location_rewrite(pv_hreq_t *hr)
{
    pv_request_t *r = &hr->r;
    const pv_location_t *loc = r->loc;
    pv_script_out_t out;
    if (loc && loc->rw.nops && pv_script_run(r, &loc->rw, &loc->conf, &out) == PV_SCRIPT_ANSWER)
        return respond(hr, &out);
    if (!r->uri_changed)
        return PV_PHASE_NEXT;
    if (pv_uri_change(r) != PV_OK) {
        pv_log_r(r, PV_LOG_ERR, "rewrite or internal redirection cycle while processing \"%.*s\", client: %s",
               (int)r->uri.len, r->uri.p, pv_log_client(r));
        pv_resp_local(hr, 500, NULL, (pv_str_t){NULL, 0});
        return PV_PHASE_DONE;
    }
    pv_phases_goto(hr, PV_PHASE_FIND_CONFIG);
    return PV_PHASE_NEXT;
}

int pv_script_subrequest(pv_request_t *sr, pv_script_out_t *out)
{
    sr->loc = NULL;
    if (sr->srv && sr->srv->rw.nops &&
        pv_script_run(sr, &sr->srv->rw, &sr->srv->conf, out) == PV_SCRIPT_ANSWER)
        return PV_SCRIPT_ANSWER;
    for (int changes = 0;; changes++) {
        int redirect = 0;
        sr->uri_changed = 0;
        sr->loc = pv_router_find_location(sr->srv, sr->uri, &redirect);
        if (!sr->loc)
            return PV_SCRIPT_NEXT;
        if (sr->loc->rx && (sr->loc->rx->ncaptures || sr->loc->rx->nnames))
            pv_regex_exec(sr, sr->loc->rx, sr->uri);
        const pv_location_t *loc = sr->loc;
        if (loc->rw.nops && pv_script_run(sr, &loc->rw, &loc->conf, out) == PV_SCRIPT_ANSWER)
            return PV_SCRIPT_ANSWER;
        if (!sr->uri_changed)
            return PV_SCRIPT_NEXT;
        if (changes == PV_MAX_URI_CHANGES) {
            pv_log_r(sr, PV_LOG_ERR, "rewrite or internal redirection cycle while processing \"%.*s\", "
                   "client: %s", (int)sr->uri.len, sr->uri.p, pv_log_client(sr));
            return fail(out);
        }
    }
}

void pv_script_init(void)
{
    pv_phases_register(PV_PHASE_SERVER_REWRITE, server_rewrite);
    pv_phases_register(PV_PHASE_REWRITE, location_rewrite);
}
