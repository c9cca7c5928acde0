/* The proxied response body's way to the client (NGINX's event pipe, as
 * proxy_buffering asks for it). While the client takes everything at
 * once, the body goes from the upstream read buffer straight into the
 * client's queue and nothing here costs anything. Once the client is
 * slow (a flush answers PV_AGAIN) and buffering is on for the response,
 * the pipe holds what the client has not taken: decoded bytes in memory
 * up to proxy_buffers (N buffers of SIZE), then in an unlinked temp file
 * under proxy_temp_path up to proxy_max_temp_file_size, so the upstream
 * is read to its end and its connection released while the client is
 * still taking the response. When all that was held has been taken the
 * body goes straight through again.
 *
 * Every decoded body span passes through deliver() in pipe.c once, in
 * order, whichever way it then goes: that is the seam for a body filter
 * that must see the upstream's bytes (proxy_store's writer, pstore.h). */
#ifndef PV_PROXY_PIPE_H
#define PV_PROXY_PIPE_H

#include <stdint.h>

#include "../core/buf.h"
#include "../core/common.h"

struct pv_proxy_s;
struct pv_pipe_conf_s;
struct pv_header_s;

typedef struct pv_pipe_s {
    const struct pv_pipe_conf_s *cf; /* the module's buffering settings (set by pv_pipe_start()) */
    pv_buf_t *head, *tail;  /* memory part, oldest first (linked by next): data in [pos, last) */
    int nbufs;              /* buffers in it (at most proxy_buffers' N) */
    int fd;                 /* temp file, -1 when none */
    char *path;             /* its name (request arena), for the log */
    uint64_t rd, wr;        /* file offsets: next byte to give, next to write */
    pv_buf_t *held;         /* the read buffer the client queue pointed into when holding began */
    pv_buf_t *chunk;        /* file bytes read back for the client */
    uint64_t out;           /* bytes handed to the client, not yet written */
    uint8_t out_file;       /* they came from the file (the chunk) */
    uint8_t on;             /* holding: the client is behind */
    uint8_t upstream_done;  /* the upstream's part is over (connection released) */
    uint8_t cut;            /* it failed: the response is cut once what is held is written */
    uint8_t buffering;      /* proxy_buffering (or X-Accel-Buffering) for this response */
    uint8_t used;           /* held something once: pv_pipe_free() has work to do */
    uint8_t delayed;        /* proxy_limit_rate: the upstream connection's timer is the rate's wait */
    int64_t rate;           /* proxy_limit_rate for this response (0 unless buffering) */
    uint64_t start_s;       /* the wall-clock second the response head came (the rate's reckoning) */
    uint64_t read_len;      /* bytes read from the upstream since */
    struct pv_pstore_s *store; /* proxy_store's file being written (pstore.h); NULL: none */
} pv_pipe_t;

/* pv_pipe_body() results */
enum {
    PV_PIPE_READ = 0,  /* the read buffer is empty: read the upstream on */
    PV_PIPE_WAIT,      /* wait for the client (or the request has ended: touch nothing) */
    PV_PIPE_DONE,      /* the upstream response is complete */
    PV_PIPE_BAD,       /* the body's framing is broken */
    PV_PIPE_ENDED      /* pv_pipe_push(): the request has ended: touch nothing */
};

/* The upstream head is parsed and about to be sent: X-Accel-Buffering and
 * X-Accel-Limit-Rate (unless proxy_ignore_headers names them) decide
 * buffering and the rate for this response. */
void pv_pipe_head(struct pv_proxy_s *px);
/* The same for any module: its settings cf (kept for the response),
 * the PV_IGN_* mask of fields it ignores, the head's fields. */
void pv_pipe_start(struct pv_proxy_s *px, const struct pv_pipe_conf_s *cf, int ign, const struct pv_header_s *fields,
                   int nfields);
/* For a module that decodes the upstream's body itself (fastcgi.c): the
 * bytes [pos, last) of *bp go to the client, or are held for it once it
 * fell behind (*bp is then replaced by a new buffer, the old one staying
 * with the client's queue). PV_PIPE_READ: *bp is empty, read the upstream
 * on. PV_PIPE_WAIT: wait for the client (pv_pipe_proceed()): without
 * buffering the queue still points into *bp, holding *bp is empty but
 * nothing more fits. PV_PIPE_ENDED: the request has ended. */
int pv_pipe_push(struct pv_proxy_s *px, pv_buf_t **bp);
/* proxy_limit_rate: 1 when the upstream must not be read now (its
 * connection's timer is set to the end of the wait, and `delayed`);
 * else 0 and *max is cut to what may be read, as NGINX's event pipe
 * reckons: rate x (seconds since the head + 1), less what was read. */
int pv_pipe_rate_wait(struct pv_proxy_s *px, size_t *max);
/* Relay what the upstream read buffer holds behind the head. */
int pv_pipe_body(struct pv_proxy_s *px);
/* The client took everything queued: hand it more of what is held.
 * Returns 1 when the upstream should be read on, 0 when not (or the
 * request has ended). */
int pv_pipe_proceed(struct pv_proxy_s *px);
/* The upstream response is complete and its connection released: 1 when
 * the pipe still holds bytes for the client (it ends the response once
 * they are taken), 0 when the caller ends it now. */
int pv_pipe_upstream_done(struct pv_proxy_s *px);
/* The upstream failed after the response head: the response is cut. As
 * NGINX, what is held and queued goes to the client first when the
 * upstream failed (a 502 or 504 after the head: rest 1), not when its
 * body was invalid (rest 0). 1 while that waits for the client, 0 when
 * the request has ended. */
int pv_pipe_upstream_cut(struct pv_proxy_s *px, int rest);
/* Give back memory and the file (the request's end), leaving the state
 * cleared for the next request; nothing to do unless it held anything. */
void pv_pipe_free(pv_pipe_t *p);
static inline void pv_pipe_end(pv_pipe_t *p)
{
    if (p->used)
        pv_pipe_free(p);
}

#endif
