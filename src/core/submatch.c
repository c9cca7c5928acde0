/* sub_filter's matcher (submatch.h). */
#include "submatch.h"

#include <string.h>

static inline uint8_t low(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

void pv_sub_tables_build(pv_sub_tables_t *t, const pv_str_t *in, int n, pv_str_t *pat, uint8_t *orig)
{
    size_t min = SIZE_MAX, max = 0;
    for (int i = 0; i < n; i++) {
        min = PV_MIN(min, in[i].len);
        max = PV_MAX(max, in[i].len);
    }
    /* a stable insertion sort on the byte at min-1, as ngx_sort() */
    for (int i = 0; i < n; i++) {
        int k = i;
        uint8_t c = (uint8_t)in[i].p[min - 1];
        while (k > 0 && (uint8_t)pat[k - 1].p[min - 1] > c) {
            pat[k] = pat[k - 1];
            orig[k] = orig[k - 1];
            k--;
        }
        pat[k] = in[i];
        orig[k] = (uint8_t)i;
    }
    t->pat = pat;
    t->orig = orig;
    t->n = n;
    t->min = min;
    t->max = max;
    for (int c = 0; c < 256; c++)
        t->shift[c] = min;
    int ch = 0;
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < min; j++) {
            uint8_t c = (uint8_t)pat[i].p[min - 1 - j];
            t->shift[c] = PV_MIN(t->shift[c], j);
        }
        int c = (uint8_t)pat[i].p[min - 1];
        while (ch <= c)
            t->index[ch++] = (uint8_t)i;
    }
    while (ch < 257)
        t->index[ch++] = (uint8_t)n;
}

void pv_sub_match_init(pv_sub_match_t *m, const pv_sub_tables_t *t, int once, char *hold, uint8_t *done)
{
    memset(m, 0, sizeof(*m));
    m->t = t;
    m->once = once;
    m->hold = hold;
    m->done = done;
    memset(done, 0, (size_t)t->n);
}

/* The text searched: the held bytes, then the input. */
typedef struct text_s {
    const char *h;
    size_t hlen;
    const char *p;
    size_t len; /* hlen + the input's */
} text_t;

static inline uint8_t at(const text_t *x, size_t k)
{
    return low((uint8_t)(k < x->hlen ? x->h[k] : x->p[k - x->hlen]));
}

/* pattern m at s: 1 it matches, 0 the text ends in it, -1 it does not */
static int cmp(const text_t *x, size_t s, pv_str_t m)
{
    for (size_t k = 0; k < m.len; k++) {
        if (s + k == x->len)
            return 0;
        if (at(x, s + k) != (uint8_t)m.p[k])
            return -1;
    }
    return 1;
}

/* whether some pattern still in play may start at s (the text ends in it) */
static int partial(const pv_sub_match_t *m, const text_t *x, size_t s)
{
    for (int i = 0; i < m->t->n; i++)
        if (!(m->once && m->done[i]) && cmp(x, s, m->t->pat[i]) == 0)
            return 1;
    return 0;
}

static int emit_range(const text_t *x, size_t from, size_t to, pv_sub_emit_pt emit, void *ctx)
{
    int rc = PV_OK;
    if (from < x->hlen && from < to)
        rc = emit(ctx, PV_SUB_HELD, x->h + from, PV_MIN(to, x->hlen) - from);
    from = PV_MAX(from, x->hlen);
    if (rc == PV_OK && from < to)
        rc = emit(ctx, PV_SUB_INPUT, x->p + (from - x->hlen), to - from);
    return rc;
}

/* hold the text from s on (fewer than t->max bytes) */
static void keep(pv_sub_match_t *m, const text_t *x, size_t s)
{
    if (s < x->hlen) {
        memmove(m->hold, m->hold + s, x->hlen - s);
        memcpy(m->hold + (x->hlen - s), x->p, x->len - x->hlen);
    } else {
        memmove(m->hold, x->p + (s - x->hlen), x->len - s);
    }
    m->hlen = x->len - s;
}

int pv_sub_feed(pv_sub_match_t *m, const char *p, size_t n, pv_sub_emit_pt emit, void *ctx)
{
    if (n == 0)
        return PV_OK;
    if (m->passing)
        return emit(ctx, PV_SUB_INPUT, p, n);
    const pv_sub_tables_t *t = m->t;
    text_t x = {m->hold, m->hlen, p, m->hlen + n};
    size_t s = 0, from = 0;
    int resume = m->resume, rc;
    while (s + t->min <= x.len) {
        uint8_t c = at(&x, s + t->min - 1);
        if (t->shift[c]) {
            s += t->shift[c];
            resume = 0;
            continue;
        }
        int i = PV_MAX(t->index[c], resume), j = t->index[c + 1], r = -1;
        for (; i < j; i++) {
            if (m->once && m->done[i])
                continue;
            if ((r = cmp(&x, s, t->pat[i])) >= 0)
                break;
        }
        if (i == j) {
            s++;
            resume = 0;
            continue;
        }
        if (r == 0) {
            resume = i; /* wait for more */
            goto hold;
        }
        if ((rc = emit_range(&x, from, s, emit, ctx)) != PV_OK ||
            (rc = emit(ctx, PV_SUB_REPLACE, NULL, t->orig[i])) != PV_OK)
            return rc;
        s += t->pat[i].len;
        from = s;
        resume = 0;
        if (m->once) {
            m->done[i] = 1;
            if (++m->applied == t->n) {
                m->passing = 1;
                m->hlen = 0;
                return emit_range(&x, from, x.len, emit, ctx);
            }
        }
    }
    /* the end: what no pattern can start at goes out now */
    resume = 0;
    while (s < x.len && !partial(m, &x, s))
        s++;
hold:
    if ((rc = emit_range(&x, from, s, emit, ctx)) != PV_OK)
        return rc;
    keep(m, &x, s);
    m->resume = resume;
    return PV_OK;
}

int pv_sub_end(pv_sub_match_t *m, pv_sub_emit_pt emit, void *ctx)
{
    size_t n = m->hlen;
    m->hlen = 0;
    return n ? emit(ctx, PV_SUB_HELD, m->hold, n) : PV_OK;
}
