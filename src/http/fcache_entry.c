/* The header of a cache entry file: a fixed part (magic, the key's MD5,
 * the Vary variant's MD5, fresh-until, stored-at, Last-Modified, body
 * length and offset, status, the lengths that follow, the seconds it may
 * answer stale past fresh-until while updated and for an error), then
 * the key, the ETag, the Vary value and the response head as "Name:
 * value" CRLF lines after a "NNN reason" line; the body follows. Numbers are in the host's
 * order: the files belong to the machine that wrote them. The parser
 * takes any bytes (a file on disk may be cut or foreign) and is fuzzed by
 * fuzz/fuzz_cache_entry.c. No I/O here. */
#include "fcache.h"

#include <string.h>
#include <sys/types.h>

enum {
    OFF_MAGIC = 0, OFF_MD5 = 8, OFF_VARIANT = 24, OFF_VALID = PV_FC_OFF_VALID, OFF_DATE = 48, OFF_LM = 56,
    OFF_BODY_LEN = 64, OFF_BODY_START = 72, OFF_STATUS = 76, OFF_KEY = 78, OFF_ETAG = 80,
    OFF_VARY = 82, OFF_HEAD = 84, OFF_UPDATING = PV_FC_OFF_STALE, OFF_ERROR = PV_FC_OFF_STALE + 4,
};

static void put(char *buf, size_t off, const void *v, size_t n)
{
    memcpy(buf + off, v, n);
}

ssize_t pv_fc_entry_write(pv_fc_entry_t *e, char *buf, size_t cap)
{
    size_t total = PV_FC_FIXED + e->key.len + e->etag.len + e->vary.len + e->head.len;
    if (total > cap || total > PV_FC_HEAD_MAX || e->key.len > 0xffff || e->etag.len > 0xffff ||
        e->vary.len > 0xffff)
        return -1;
    e->body_start = (uint32_t)total;
    uint16_t status = (uint16_t)e->status, kl = (uint16_t)e->key.len, el = (uint16_t)e->etag.len,
             vl = (uint16_t)e->vary.len;
    uint32_t hl = (uint32_t)e->head.len;
    put(buf, OFF_MAGIC, PV_FC_MAGIC, 8);
    put(buf, OFF_MD5, e->md5, 16);
    put(buf, OFF_VARIANT, e->variant, 16);
    put(buf, OFF_VALID, &e->valid_sec, 8);
    put(buf, OFF_DATE, &e->date, 8);
    put(buf, OFF_LM, &e->last_modified, 8);
    put(buf, OFF_BODY_LEN, &e->body_len, 8);
    put(buf, OFF_BODY_START, &e->body_start, 4);
    put(buf, OFF_STATUS, &status, 2);
    put(buf, OFF_KEY, &kl, 2);
    put(buf, OFF_ETAG, &el, 2);
    put(buf, OFF_VARY, &vl, 2);
    put(buf, OFF_HEAD, &hl, 4);
    put(buf, OFF_UPDATING, &e->updating_sec, 4);
    put(buf, OFF_ERROR, &e->error_sec, 4);
    char *p = buf + PV_FC_FIXED;
    const pv_str_t *parts[4] = {&e->key, &e->etag, &e->vary, &e->head};
    for (int i = 0; i < 4; i++) {
        if (parts[i]->len)
            memcpy(p, parts[i]->p, parts[i]->len);
        p += parts[i]->len;
    }
    return (ssize_t)total;
}

static int token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ':';
}

/* The head line at *pos, without its line end; *pos moves past it. 0 at
 * the end of the head; -1 for a line no LF ends, an empty one, or (strict)
 * one whose LF has no CR before it. */
static int head_line(pv_str_t head, size_t *pos, int strict, const char **line, size_t *llen)
{
    size_t i = *pos;
    if (i >= head.len)
        return 0;
    const char *s = head.p + i;
    const char *end = memchr(s, '\n', head.len - i);
    if (!end || end == s || (strict && end[-1] != '\r'))
        return -1;
    *line = s;
    *llen = (size_t)(end - s) - 1;
    *pos = i + *llen + 2;
    return 1;
}

int pv_fc_head_next(pv_str_t head, size_t *pos, pv_str_t *name, pv_str_t *value)
{
    const char *s;
    size_t llen;
    int r = head_line(head, pos, 1, &s, &llen);
    if (r != 1)
        return r;
    if (s == head.p) {
        /* the status line: three digits, a space, the reason */
        if (llen < 4 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
            s[3] != ' ')
            return -1;
        for (size_t k = 4; k < llen; k++)
            if ((unsigned char)s[k] < 0x20 && s[k] != '\t')
                return -1;
        *name = (pv_str_t){(char *)s, 0};
        *value = (pv_str_t){(char *)s, llen};
        return 1;
    }
    size_t n = 0;
    while (n < llen && token_char((unsigned char)s[n]))
        n++;
    if (n == 0 || n >= llen || s[n] != ':')
        return -1;
    size_t v = n + 1;
    while (v < llen && s[v] == ' ')
        v++;
    for (size_t k = v; k < llen; k++)
        if (((unsigned char)s[k] < 0x20 && s[k] != '\t') || s[k] == 0x7f)
            return -1;
    *name = (pv_str_t){(char *)s, n};
    *value = (pv_str_t){(char *)s + v, llen - v};
    return 1;
}

int pv_fc_head_walk(pv_str_t head, size_t *pos, pv_str_t *name, pv_str_t *value)
{
    const char *s;
    size_t llen;
    int r = head_line(head, pos, 0, &s, &llen);
    if (r != 1)
        return r;
    if (s == head.p) {
        *name = (pv_str_t){(char *)s, 0};
        *value = (pv_str_t){(char *)s, llen};
        return 1;
    }
    const char *colon = memchr(s, ':', llen);
    if (!colon)
        return -1;
    size_t n = (size_t)(colon - s), v = n + 1;
    while (v < llen && s[v] == ' ')
        v++;
    *name = (pv_str_t){(char *)s, n};
    *value = (pv_str_t){(char *)s + v, llen - v};
    return 1;
}

static int entry_parse(const char *buf, size_t len, pv_fc_entry_t *e, int check_head)
{
    if (len < PV_FC_FIXED || memcmp(buf, PV_FC_MAGIC, 8) != 0)
        return -1;
    uint16_t status, kl, el, vl;
    uint32_t hl;
    memcpy(e->md5, buf + OFF_MD5, 16);
    memcpy(e->variant, buf + OFF_VARIANT, 16);
    memcpy(&e->valid_sec, buf + OFF_VALID, 8);
    memcpy(&e->date, buf + OFF_DATE, 8);
    memcpy(&e->last_modified, buf + OFF_LM, 8);
    memcpy(&e->body_len, buf + OFF_BODY_LEN, 8);
    memcpy(&e->body_start, buf + OFF_BODY_START, 4);
    memcpy(&status, buf + OFF_STATUS, 2);
    memcpy(&kl, buf + OFF_KEY, 2);
    memcpy(&el, buf + OFF_ETAG, 2);
    memcpy(&vl, buf + OFF_VARY, 2);
    memcpy(&hl, buf + OFF_HEAD, 4);
    memcpy(&e->updating_sec, buf + OFF_UPDATING, 4);
    memcpy(&e->error_sec, buf + OFF_ERROR, 4);
    uint64_t total = (uint64_t)PV_FC_FIXED + kl + el + vl + hl;
    if (total != e->body_start || total > len || total > PV_FC_HEAD_MAX || e->body_len < 0 || status < 100 ||
        status > 599 || kl == 0 || hl < 4)
        return -1;
    e->status = status;
    const char *p = buf + PV_FC_FIXED;
    e->key = (pv_str_t){(char *)p, kl};
    e->etag = (pv_str_t){(char *)p + kl, el};
    e->vary = (pv_str_t){(char *)p + kl + el, vl};
    e->head = (pv_str_t){(char *)p + kl + el + vl, hl};
    /* the head must read whole, starting with its status */
    size_t pos = 0;
    pv_str_t n, v;
    int rc, lines = 0;
    while (check_head && (rc = pv_fc_head_next(e->head, &pos, &n, &v)) == 1)
        lines++;
    if (check_head && (rc < 0 || lines == 0))
        return -1;
    if ((e->head.p[0] - '0') * 100 + (e->head.p[1] - '0') * 10 + (e->head.p[2] - '0') != status)
        return -1;
    return 0;
}

int pv_fc_entry_parse(const char *buf, size_t len, pv_fc_entry_t *e)
{
    return entry_parse(buf, len, e, 1);
}

int pv_fc_entry_parse_kept(const char *buf, size_t len, pv_fc_entry_t *e)
{
    return entry_parse(buf, len, e, 0);
}
