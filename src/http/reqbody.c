/* The request body read whole before a content handler sends it on
 * (NGINX's request body buffering): into memory up to
 * client_body_buffer_size, past that into a temporary file under
 * client_body_temp_path that then holds the whole body. Once complete the
 * body stream calls (body.h) read from this copy, so a handler sends it
 * as it sends a streamed body, knowing its length, and may send it again
 * for a retry. */
#include "reqbody.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/file.h"
#include "../core/cache.h"
#include "../core/log.h"
#include "body.h"
#include "server.h"
#include "accesslog.h"

/* NGINX's temp file names: ten digits, unique within the process. */
static atomic_uint_fast32_t temp_number;

static const pv_loc_conf_t *lconf(const pv_hreq_t *hr)
{
    return hr->r.loc ? &hr->r.loc->conf : &hr->r.srv->conf;
}

/* Make dir (and nothing above it) when missing. */
static int make_dir(const char *dir)
{
    return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Create a new temp file under t, its level directories made as needed:
 * NAME is ten digits, level i a slice of its last digits (NGINX's
 * layout, e.g. levels 1 2: 3/12/0000000123). Returns the fd, -1 logged. */
int pv_temp_file_open(pv_hreq_t *hr, const pv_temp_path_t *t, char **pathp)
{
    if (!atomic_load(&temp_number))
        atomic_store(&temp_number, (uint32_t)(time(NULL) ^ (getpid() << 8)) % 1000000000u + 1);
    size_t plen = strlen(t->path);
    char *path = pv_arena_alloc(&hr->arena, plen + 64);
    for (int attempt = 0; attempt < 64; attempt++) {
        uint32_t n = (uint32_t)(atomic_fetch_add(&temp_number, 1) % 10000000000ull);
        char name[16];
        snprintf(name, sizeof(name), "%010u", n);
        memcpy(path, t->path, plen);
        size_t at = plen, used = 0;
        if (make_dir(t->path) < 0)
            goto fail;
        for (int l = 0; l < 3 && t->levels[l]; l++) {
            used += (size_t)t->levels[l];
            path[at++] = '/';
            memcpy(path + at, name + 10 - used, (size_t)t->levels[l]);
            at += (size_t)t->levels[l];
            path[at] = '\0';
            if (make_dir(path) < 0)
                goto fail;
        }
        snprintf(path + at, 64 - (at - plen), "/%s", name);
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *pathp = path;
            return fd;
        }
        if (errno != EEXIST)
            goto fail;
    }
    errno = EEXIST;
fail:
    pv_log_r(&hr->r, PV_LOG_CRIT, "open() \"%s\" failed (%d: %s), client: %s", path, errno, strerror(errno),
           pv_log_client(&hr->r));
    return -1;
}

/* Keep n more body bytes in memory (at most size bytes in all). */
static int keep_mem(pv_hreq_t *hr, pv_reqbody_t *rb, const char *p, size_t n, size_t size)
{
    if (!rb->mem && !(rb->mem = pv_buf_get_size(size))) {
        pv_cache_nomem("a request body buffer", pv_log_client(&hr->r));
        return -1;
    }
    memcpy(rb->mem->data + rb->len, p, n);
    rb->len += n;
    return 0;
}

/* Keep n more body bytes: in memory while they fit, else in the file
 * (the bytes in memory moved there first); a body held whole at once
 * only in memory. -1 on a failure (logged). */
static int keep(pv_hreq_t *hr, pv_reqbody_t *rb, const char *p, size_t n)
{
    const pv_loc_conf_t *lc = lconf(hr);
    if (rb->held) {
        if (rb->len + n <= rb->held_len)
            return keep_mem(hr, rb, p, n, (size_t)rb->held_len);
        pv_log_r(&hr->r, PV_LOG_ALERT, "request body longer than held, client: %s", pv_log_client(&hr->r));
        return -1;
    }
    if (rb->fd < 0 && !lc->client_body_in_file_only && rb->len + n <= (uint64_t)lc->client_body_buffer_size)
        return keep_mem(hr, rb, p, n, (size_t)lc->client_body_buffer_size);
    if (rb->fd < 0) {
        rb->fd = pv_temp_file_open(hr, lc->client_body_temp_path, &rb->path);
        if (rb->fd < 0)
            return -1;
        rb->keep_file = lc->client_body_in_file_only == PV_BODY_FILE_ON;
        if (!lc->client_body_in_file_only)
            pv_log_r(&hr->r, PV_LOG_WARN, "a client request body is buffered to a temporary file %s, client: %s", rb->path,
                   pv_log_client(&hr->r));
        if (rb->len && pv_file_write_all(rb->fd, rb->mem->data, (size_t)rb->len) < 0)
            goto fail;
        pv_buf_put(rb->mem);
        rb->mem = NULL;
    }
    if (pv_file_write_all(rb->fd, p, n) < 0)
        goto fail;
    rb->len += n;
    return 0;
fail:
    pv_log_r(&hr->r, PV_LOG_CRIT, "write() \"%s\" failed (%d: %s), client: %s", rb->path, errno, strerror(errno),
           pv_log_client(&hr->r));
    return -1;
}

int pv_reqbody_read(pv_hreq_t *hr, int *status)
{
    pv_reqbody_t *rb = hr->rb;
    *status = 0;
    if (!rb) {
        rb = hr->rb = pv_arena_calloc(&hr->arena, sizeof(*rb));
        rb->fd = -1;
    }
    if (rb->complete)
        return PV_OK;
    for (;;) {
        pv_str_t spans[16];
        while (!pv_body_done(hr) && pv_body_buffered(hr)) {
            int ns = pv_body_take(hr, spans, 16);
            if (ns < 0) {
                *status = pv_body_error(hr);
                return PV_ERR;
            }
            for (int i = 0; i < ns; i++) {
                if (keep(hr, rb, spans[i].p, spans[i].len) < 0) {
                    *status = 500;
                    return PV_ERR;
                }
            }
            if (ns == 0)
                break;
        }
        if (pv_body_done(hr))
            break;
        int rc = pv_body_read(hr);
        if (rc != PV_OK)
            return rc;
    }
    rb->complete = 1;
    if (rb->mem)
        hr->r.request_body = (pv_str_t){rb->mem->data, (size_t)rb->len};
    else if (rb->fd < 0)
        hr->r.request_body = (pv_str_t){"", 0};
    hr->r.request_body_file = rb->path;
    return PV_OK;
}

int pv_reqbody_arrived(pv_hreq_t *hr, int *status)
{
    /* NGINX's body buffer: client_body_buffer_size, or the rest of a
     * Content-Length body when that is less than a quarter more */
    int64_t cbbs = lconf(hr)->client_body_buffer_size;
    int64_t limit = hr->r.content_length >= 0 ? cbbs + cbbs / 4 - 1 : cbbs;
    size_t len;
    *status = 0;
    int rc = pv_body_arrived(hr, (size_t)limit, &len);
    if (rc != 1)
        return rc;
    pv_reqbody_t *rb = hr->rb = pv_arena_calloc(&hr->arena, sizeof(*rb));
    rb->fd = -1;
    rb->held = 1;
    rb->held_len = len;
    rc = pv_reqbody_read(hr, status);
    if (rc == PV_AGAIN) {
        /* cannot be: every byte was here */
        pv_log_r(&hr->r, PV_LOG_ALERT, "request body held whole was not complete, client: %s",
               pv_log_client(&hr->r));
        *status = 500;
        return PV_ERR;
    }
    return rc == PV_OK ? 1 : rc;
}

uint64_t pv_reqbody_len(const pv_hreq_t *hr)
{
    return hr->rb ? hr->rb->len : 0;
}

int pv_reqbody_share(pv_hreq_t *to, const pv_hreq_t *from)
{
    const pv_reqbody_t *src = from->rb;
    pv_reqbody_t *rb = pv_arena_calloc(&to->arena, sizeof(*rb));
    if (!rb)
        return PV_ERR;
    rb->mem = src->mem;
    rb->fd = src->fd;
    rb->path = src->path;
    rb->len = src->len;
    rb->complete = 1;
    rb->shared = 1;
    to->rb = rb;
    return PV_OK;
}

void pv_reqbody_free(pv_hreq_t *hr)
{
    pv_reqbody_t *rb = hr->rb;
    hr->rb = NULL;
    pv_buf_put(rb->chunk);
    if (rb->shared)
        return;
    pv_buf_put(rb->mem);
    if (rb->fd >= 0) {
        close(rb->fd);
        if (!rb->keep_file && unlink(rb->path) < 0)
            pv_log(PV_LOG_CRIT, "unlink() \"%s\" failed (%d: %s)", rb->path, errno, strerror(errno));
    }
}

/* ---- the body stream over the copy ---- */

int pv_reqbody_take(pv_hreq_t *hr, pv_str_t *spans, int max)
{
    pv_reqbody_t *rb = hr->rb;
    if (max <= 0 || rb->handed || rb->off == rb->len)
        return 0;
    if (rb->mem) {
        spans[0] = (pv_str_t){rb->mem->data + rb->off, (size_t)(rb->len - rb->off)};
        rb->off = rb->len;
        return 1;
    }
    if (!rb->chunk && !(rb->chunk = pv_buf_get())) {
        pv_cache_nomem("a request body buffer", pv_log_client(&hr->r));
        return PV_ERR;
    }
    size_t want = (size_t)PV_MIN((uint64_t)rb->chunk->size, rb->len - rb->off);
    ssize_t n = pread(rb->fd, rb->chunk->data, want, (off_t)rb->off);
    if (n <= 0) {
        pv_log_r(&hr->r, PV_LOG_CRIT, "pread() \"%s\" failed (%d: %s), client: %s", rb->path, n < 0 ? errno : 0,
               n < 0 ? strerror(errno) : "short file", pv_log_client(&hr->r));
        return PV_ERR;
    }
    spans[0] = (pv_str_t){rb->chunk->data, (size_t)n};
    rb->off += (uint64_t)n;
    rb->handed = 1;
    return 1;
}

size_t pv_reqbody_buffered(const pv_hreq_t *hr)
{
    const pv_reqbody_t *rb = hr->rb;
    return rb->handed ? 0 : (size_t)PV_MIN(rb->len - rb->off, (uint64_t)SIZE_MAX);
}

int pv_reqbody_done(const pv_hreq_t *hr)
{
    return hr->rb->off == hr->rb->len;
}

int pv_reqbody_next(pv_hreq_t *hr)
{
    hr->rb->handed = 0; /* the chunk was written out: it may be refilled */
    return PV_OK;
}

void pv_reqbody_rewind(pv_hreq_t *hr)
{
    hr->rb->off = 0;
    hr->rb->handed = 0;
}
