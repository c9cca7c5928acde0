/* The request body read whole (NGINX's request body buffering, as
 * proxy_request_buffering asks): into memory up to
 * client_body_buffer_size, else into a temporary file under
 * client_body_temp_path (client_body_in_file_only: always the file).
 * Once complete, the body stream calls (body.h) read from this copy, so a
 * handler sends it as any body, with its length known, and can rewind it
 * for a retry. */
#ifndef PV_REQBODY_H
#define PV_REQBODY_H

#include <stdint.h>

#include "../core/buf.h"
#include "../core/common.h"

struct pv_hreq_s;

typedef struct pv_reqbody_s {
    pv_buf_t *mem;      /* the body in memory (NULL once in the file) */
    int fd;             /* the temp file, -1 when none */
    char *path;         /* its name (request arena) */
    uint64_t len;       /* body bytes kept */
    uint64_t off;       /* bytes taken by the handler so far */
    pv_buf_t *chunk;    /* a file's bytes read for the handler */
    uint8_t handed;     /* chunk handed out, not yet written by the handler */
    uint8_t complete;   /* the whole body is kept */
    uint8_t keep_file;  /* client_body_in_file_only on: the file outlives the request */
    uint8_t held;       /* held whole when first read (pv_reqbody_arrived): memory only */
    uint64_t held_len;  /* its length */
    uint8_t shared;     /* another request's copy, read with a cursor of its own (a mirror): not released */
} pv_reqbody_t;

/* Read the rest of the body into the copy. PV_OK when complete, PV_AGAIN
 * while waiting for the client (its next event says when to call again),
 * PV_ERR with *status 400/413 (a broken body), 500 (the temp file
 * failed: logged) or 0 (the client went away: logged). */
int pv_reqbody_read(struct pv_hreq_s *hr, int *status);
/* proxy_request_buffering off: NGINX first reads what the client has
 * sent already, without waiting; a body that is then whole within its
 * first buffers (body.h: client_body_buffer_size, a quarter more for a
 * Content-Length body, and HTTP/1's head buffer) is kept as a buffered
 * one (in memory, whatever client_body_in_file_only says, as NGINX's
 * unbuffered reading never writes a file), so $request_body has it and it
 * goes on with its length. 1 when kept, 0 when the body streams, PV_ERR
 * as pv_reqbody_read(). */
int pv_reqbody_arrived(struct pv_hreq_s *hr, int *status);
/* Give to (a mirror subrequest) a reading of from's complete copy:
 * the same memory or file, its own offset, as NGINX's subrequests share
 * the main request's body. from must outlive to. PV_OK, or PV_ERR when
 * memory ran out. */
int pv_reqbody_share(struct pv_hreq_s *to, const struct pv_hreq_s *from);
/* The body's length once complete. */
uint64_t pv_reqbody_len(const struct pv_hreq_s *hr);
/* Release the copy at the request's end (the file is removed unless
 * client_body_in_file_only on). */
void pv_reqbody_free(struct pv_hreq_s *hr);

/* A new temp file under t (its level directories made as needed), named
 * as NGINX names them; *path gets its name in the request arena. The fd,
 * or -1 (logged). Shared with the proxy's response buffering. */
struct pv_temp_path_s;
int pv_temp_file_open(struct pv_hreq_s *hr, const struct pv_temp_path_s *t, char **path);

/* The body stream's calls over a complete copy (body.c dispatches). */
int pv_reqbody_take(struct pv_hreq_s *hr, pv_str_t *spans, int max);
size_t pv_reqbody_buffered(const struct pv_hreq_s *hr);
int pv_reqbody_done(const struct pv_hreq_s *hr);
int pv_reqbody_next(struct pv_hreq_s *hr);
void pv_reqbody_rewind(struct pv_hreq_s *hr);

#endif
