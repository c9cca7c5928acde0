#include "ssi_parse.h"

#include <string.h>

/* NGINX's states, in its order. */
enum {
    S_TEXT = 0,      /* outside any command */
    S_TAG,           /* "<" */
    S_COMMENT0,      /* "<!" */
    S_COMMENT1,      /* "<!-" */
    S_SHARP,         /* "<!--" */
    S_PRECOMMAND,    /* "<!--#", blanks before the name */
    S_COMMAND,       /* the command name */
    S_PREPARAM,      /* blanks before a parameter */
    S_PARAM,         /* a parameter name */
    S_PREEQUAL,      /* blanks after the name */
    S_PREVALUE,      /* after "=" */
    S_DQ_VALUE,      /* inside "..." */
    S_Q_VALUE,       /* inside '...' */
    S_QUOTED_SYMBOL, /* after a backslash in a value */
    S_POSTPARAM,     /* after the closing quote */
    S_END0,          /* "-" */
    S_END1,          /* "--" */
    S_ERROR,         /* a malformed command: skip to "-->" */
    S_ERROR_END0,
    S_ERROR_END1
};

static const char lt_prefix[] = "<!--";

void pv_ssi_init(pv_ssi_parser_t *p, size_t value_len, char *vbuf)
{
    memset(p, 0, sizeof(*p));
    p->value_len = value_len;
    p->vbuf = vbuf;
}

size_t pv_ssi_vbuf_size(size_t value_len)
{
    return (PV_SSI_PARAMS_MAX + 1) * value_len;
}

pv_str_t pv_ssi_value(const pv_ssi_parser_t *p, int i)
{
    pv_str_t v = {p->vbuf + (size_t)i * p->value_len, p->params[i].vlen};
    return v;
}

int pv_ssi_pending(const pv_ssi_parser_t *p)
{
    return p->state != S_TEXT;
}

static int blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A new parameter whose name starts with ch. Past PV_SSI_PARAMS_MAX the
 * spare slot takes each further one, so the command is still read to
 * its end as NGINX reads it, and refused there. */
static void param_start(pv_ssi_parser_t *p, char ch)
{
    if (p->nparams == PV_SSI_PARAMS_MAX)
        p->too_many = 1;
    else
        p->nparams++;
    pv_ssi_param_t *pa = &p->params[p->too_many ? PV_SSI_PARAMS_MAX : p->nparams - 1];
    pa->name[0] = ch;
    pa->name[1] = '\0';
    pa->nlen = 1;
    pa->vlen = 0;
}

static pv_ssi_param_t *cur(pv_ssi_parser_t *p)
{
    return &p->params[p->too_many ? PV_SSI_PARAMS_MAX : p->nparams - 1];
}

/* Add ch to the current value; the next state (S_ERROR when too long). */
static int value_add(pv_ssi_parser_t *p, char ch, int next)
{
    pv_ssi_param_t *pa = cur(p);
    if (pa->vlen == p->value_len)
        return S_ERROR;
    size_t slot = (size_t)(pa - p->params);
    p->vbuf[slot * p->value_len + pa->vlen++] = ch;
    return next;
}

/* One byte inside a command (from "<!--#" on). */
static int command_byte(pv_ssi_parser_t *p, int state, char ch)
{
    switch (state) {
    case S_PRECOMMAND:
        if (blank(ch))
            return state;
        p->cmd[0] = ch;
        p->cmd[1] = '\0';
        p->cmdlen = 1;
        p->nparams = 0;
        p->too_many = 0;
        return S_COMMAND;
    case S_COMMAND:
        if (blank(ch))
            return S_PREPARAM;
        if (ch == '-')
            return S_END0;
        if (p->cmdlen == PV_SSI_COMMAND_LEN)
            return S_ERROR;
        p->cmd[p->cmdlen++] = ch;
        p->cmd[p->cmdlen] = '\0';
        return state;
    case S_PREPARAM:
        if (blank(ch))
            return state;
        if (ch == '-')
            return S_END0;
        param_start(p, ch);
        return S_PARAM;
    case S_PARAM:
        if (blank(ch))
            return S_PREEQUAL;
        if (ch == '=')
            return S_PREVALUE;
        if (ch == '-')
            return S_ERROR_END0;
        if (cur(p)->nlen == PV_SSI_PARAM_LEN)
            return S_ERROR;
        cur(p)->name[cur(p)->nlen++] = ch;
        cur(p)->name[cur(p)->nlen] = '\0';
        return state;
    case S_PREEQUAL:
        if (blank(ch))
            return state;
        if (ch == '=')
            return S_PREVALUE;
        return ch == '-' ? S_ERROR_END0 : S_ERROR;
    case S_PREVALUE:
        if (blank(ch))
            return state;
        if (ch == '"')
            return S_DQ_VALUE;
        if (ch == '\'')
            return S_Q_VALUE;
        return ch == '-' ? S_ERROR_END0 : S_ERROR;
    case S_DQ_VALUE:
    case S_Q_VALUE:
        if (ch == (state == S_DQ_VALUE ? '"' : '\''))
            return S_POSTPARAM;
        if (ch == '\\') {
            /* the backslash is kept: the value's evaluation reads it */
            p->saved_state = (uint8_t)state;
            return value_add(p, ch, S_QUOTED_SYMBOL);
        }
        return value_add(p, ch, state);
    case S_QUOTED_SYMBOL:
        return value_add(p, ch, p->saved_state);
    case S_POSTPARAM:
        if (blank(ch))
            return S_PREPARAM;
        return ch == '-' ? S_END0 : S_ERROR;
    case S_END0:
        return ch == '-' ? S_END1 : S_ERROR;
    case S_ERROR:
        return ch == '-' ? S_ERROR_END0 : S_ERROR;
    case S_ERROR_END0:
        return ch == '-' ? S_ERROR_END1 : S_ERROR;
    default:
        return S_ERROR;
    }
}

/* The tag states: the next state after ch, and looked updated. A failed
 * tag's bytes are text; a '<' starts a tag again. */
static int tag_byte(pv_ssi_parser_t *p, int state, char ch)
{
    static const char want[] = {0, '!', '-', '-', '#'}; /* by state S_TAG..S_SHARP */
    if (ch == want[state]) {
        p->looked = state < S_SHARP ? (uint8_t)(state + 1) : 0;
        return state < S_SHARP ? state + 1 : S_PRECOMMAND;
    }
    p->looked = ch == '<' ? 1 : 0;
    return ch == '<' ? S_TAG : S_TEXT;
}

int pv_ssi_parse(pv_ssi_parser_t *p, const char *in, size_t len, size_t *used, pv_str_t text[2], int *ntext)
{
    int state = p->state;
    /* unreported text of the input starts here; none inside a command */
    const char *tstart = state > S_SHARP ? NULL : in;
    const char *tag = NULL; /* the '<' of a tag begun in this input */
    uint8_t held = p->held; /* bytes of a tag begun in an earlier piece */
    int rc = PV_SSI_AGAIN;
    size_t i = 0;
    *ntext = 0;
    for (; i < len; i++) {
        char ch = in[i];
        if (state == S_TEXT) {
            const char *lt = memchr(in + i, '<', len - i);
            if (!lt) {
                i = len;
                break;
            }
            i = (size_t)(lt - in);
            tag = lt;
            state = S_TAG;
            p->looked = 1;
            continue;
        }
        if (state <= S_SHARP) {
            state = tag_byte(p, state, ch);
            if (state == S_PRECOMMAND) {
                /* a command: its "<!--" is not text */
                if (tag && tag > tstart)
                    text[(*ntext)++] = (pv_str_t){tstart, (size_t)(tag - tstart)};
                tstart = NULL;
                held = 0;
            } else if (state == S_TEXT || (state == S_TAG && ch == '<')) {
                /* the tag failed: its bytes are text, those held from an
                 * earlier piece first */
                if (held)
                    text[(*ntext)++] = (pv_str_t){lt_prefix, held};
                held = 0;
                tag = state == S_TAG ? in + i : NULL;
            }
            continue;
        }
        if (state == S_END1 || state == S_ERROR_END1) {
            if (ch == '>') {
                rc = state == S_END1 && !p->too_many ? PV_SSI_COMMAND : PV_SSI_BAD;
                state = S_TEXT;
                i++;
                break;
            }
            state = S_ERROR;
            continue;
        }
        state = command_byte(p, state, ch);
    }
    if (tstart) {
        const char *tend = in + i;
        if (state >= S_TAG && state <= S_SHARP)
            tend = tag ? tag : in; /* the tag's bytes are held */
        if (tend > tstart)
            text[(*ntext)++] = (pv_str_t){tstart, (size_t)(tend - tstart)};
    }
    p->held = state >= S_TAG && state <= S_SHARP ? p->looked : 0;
    p->state = (uint8_t)state;
    *used = i;
    return rc;
}

/* The evaluation's output: bytes counted always, written while they fit. */
typedef struct {
    char *out;
    size_t cap, len;
    int first; /* the first byte put, -1 before */
} ev_out_t;

static void ev_put(ev_out_t *o, const char *p, size_t n)
{
    if (n && o->first < 0)
        o->first = (unsigned char)p[0];
    if (o->out && o->len + n <= o->cap)
        memcpy(o->out + o->len, p, n);
    o->len += n;
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* A literal part from text[*i], up to an unescaped '$' (when vars is set;
 * a value without variables takes every '$' as it is). */
static void ev_literal(pv_str_t text, size_t *i, int vars, ev_out_t *o)
{
    int quoted = 0;
    for (; *i < text.len; (*i)++) {
        char ch = text.p[*i];
        if (!quoted) {
            if (ch == '\\') {
                quoted = 1;
                continue;
            }
            if (ch == '$' && vars)
                return;
        } else {
            quoted = 0;
            if (ch != '\\' && ch != '\'' && ch != '"' && ch != '$')
                ev_put(o, "\\", 1);
        }
        ev_put(o, &ch, 1);
    }
}

/* A variable at text[*i] ('$'): its value into o. */
static int ev_variable(pv_str_t text, size_t *i, pv_ssi_lookup_cb lookup, void *ctx, ev_out_t *o)
{
    if (++*i == text.len)
        return PV_SSI_EVAL_BAD;
    int bracket = text.p[*i] == '{';
    if (bracket && ++*i == text.len)
        return PV_SSI_EVAL_BAD;
    pv_str_t name = {text.p + *i, 0};
    for (; *i < text.len; (*i)++, name.len++) {
        char ch = text.p[*i];
        if (ch == '}' && bracket) {
            (*i)++;
            bracket = 0;
            break;
        }
        if (!name_char(ch))
            break;
    }
    if (bracket || name.len == 0)
        return PV_SSI_EVAL_BAD;
    pv_str_t val;
    if (lookup(ctx, name, &val))
        ev_put(o, val.p, val.len);
    return 0;
}

ssize_t pv_ssi_eval(pv_str_t text, int flags, pv_str_t base, pv_ssi_lookup_cb lookup, void *ctx, char *out,
                    size_t cap)
{
    int vars = text.len && memchr(text.p, '$', text.len) != NULL;
    ev_out_t o = {out, cap, 0, -1};
    size_t prefix = 0, i = 0;
    if (flags & PV_SSI_ADD_PREFIX)
        for (prefix = base.len; prefix && base.p[prefix - 1] != '/'; prefix--)
            ;
    if (!vars) {
        /* the text's own first byte decides, as NGINX looks at it */
        if (prefix && (text.len == 0 || text.p[0] != '/'))
            ev_put(&o, base.p, prefix);
        ev_literal(text, &i, 0, &o);
    } else {
        while (i < text.len) {
            int rc = 0;
            if (text.p[i] == '$')
                rc = ev_variable(text, &i, lookup, ctx, &o);
            else
                ev_literal(text, &i, 1, &o);
            if (rc < 0)
                return rc;
        }
        /* the prefix goes before the first part that is not empty, when
         * that does not start with '/' */
        if (prefix && o.len && o.first != '/') {
            if (out && o.len + prefix <= cap) {
                memmove(out + prefix, out, o.len);
                memcpy(out, base.p, prefix);
            }
            o.len += prefix;
        }
    }
    if (out && o.len > cap)
        return PV_SSI_EVAL_LONG;
    return (ssize_t)o.len;
}

int pv_ssi_if_split(char *expr, size_t len, pv_ssi_if_t *out)
{
    char *p = expr, *last = expr + len;
    for (; p < last; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p | 0x20);
            continue;
        }
        if (!name_char(*p) && *p != '$' && *p != '{' && *p != '}' && *p != '"' && *p != '\'')
            break;
    }
    memset(out, 0, sizeof(*out));
    out->left = (pv_str_t){expr, (size_t)(p - expr)};
    while (p < last && *p == ' ')
        p++;
    if (p == last) {
        out->op = PV_SSI_IF_TEST;
        return PV_OK;
    }
    if (*p == '=') {
        out->op = PV_SSI_IF_EQ;
        p++;
    } else if (p + 1 < last && p[0] == '!' && p[1] == '=') {
        out->op = PV_SSI_IF_NE;
        p += 2;
    } else {
        return PV_ERR;
    }
    while (p < last && *p == ' ')
        p++;
    if (p < last - 1 && *p == '/') {
        if (last[-1] != '/')
            return PV_ERR;
        out->regex = 1;
        last--;
        p++;
    } else if (p < last - 1 && p[0] == '\\' && p[1] == '/') {
        p++;
    }
    out->right = (pv_str_t){p, (size_t)(last - p)};
    return PV_OK;
}
