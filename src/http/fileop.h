/* The blocking file operations of static serving, as one request's state
 * (pv_file_t): each runs on the thread pool (core/tpool.h) when the
 * location has `aio threads` (the default), else in place; a request
 * that goes away while one runs leaves it to free itself when done. */
#ifndef PV_FILEOP_H
#define PV_FILEOP_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "../config/conf.h"
#include "../core/buf.h"
#include "../core/tpool.h"
#include "range.h"

struct pv_hreq_s;

#define PV_FILE_MAX_RANGES 64 /* parts of one multipart answer at most; more: the whole file */
#define PV_FILE_MAX_CAND 16   /* index files or try_files paths tried in one operation */
#define PV_FILE_BIG_BUF 65536 /* the read buffer of a file larger than a standard buffer */

enum { PV_FOP_NONE = 0, PV_FOP_OPEN, PV_FOP_INDEX, PV_FOP_TRY, PV_FOP_READ, PV_FOP_DIR };

/* One entry of a directory listing. */
typedef struct pv_dirent_s {
    char *name;
    size_t len;
    int dir, other;
    time_t mtime;
    int64_t size;
} pv_dirent_t;

typedef struct pv_file_s pv_file_t;
typedef void (*pv_file_cb)(struct pv_hreq_s *hr, pv_file_t *f);

struct pv_file_s {
    pv_task_t task;
    struct pv_hreq_s *hr;     /* NULL once the request is gone: done frees */
    int op;                   /* PV_FOP_* running */
    pv_file_cb then;          /* what follows on the loop */
    int symlinks;             /* PV_SYMLINKS_* */
    size_t sym_from;          /* disable_symlinks from=: bytes of path not checked */
    /* open, index, try_files */
    char *cand[PV_FILE_MAX_CAND]; /* index / try_files: full paths (malloc) */
    uint8_t cand_dir[PV_FILE_MAX_CAND]; /* try_files: must be a directory */
    uint8_t cand_arg[PV_FILE_MAX_CAND]; /* try_files: the argument it comes from */
    uint16_t cand_from[PV_FILE_MAX_CAND]; /* try_files: where disable_symlinks' checks start */
    int ncand;
    int found;                /* the candidate that matched, -1 for none */
    int fd;                   /* open file, -1 when none */
    struct stat st;
    int err;                  /* errno of the operation, 0 when it succeeded */
    uint8_t gz;               /* gzip_static: path is the .gz file (1), served (2) */
    uint8_t gz_ok;            /* gzip_static: the client may have it */
    uint8_t in_place;         /* reads run on the loop (a kept cache entry: its pages are likely cached) */
    /* sending */
    int64_t base;             /* offset of the body in the file (a cache entry's header before it) */
    int64_t size;
    int nranges;
    int cur;                  /* range being sent */
    int64_t pos;              /* next byte of it */
    int part_head_sent;       /* multipart: the part's head is queued (2: the tail) */
    pv_str_t boundary_head;   /* multipart: CRLF "--B" CRLF Content-Type... "bytes " */
    pv_str_t tail;            /* multipart: CRLF "--B--" CRLF */
    pv_str_t prefix;          /* flv: bytes before the file's (positions below its length are in it) */
    char part[96];            /* the current part's "S-E/T" CRLF CRLF */
    uint8_t sendfile;         /* the bytes go with sendfile(2) (plain TCP, HTTP/1.x, nothing filters them) */
    uint8_t corked;           /* tcp_nopush: TCP_CORK is set until the answer ends */
    int64_t chunk_max;        /* sendfile_max_chunk (0: no limit) */
    int64_t read_max;         /* output_buffers' size: the most one read takes (0: the buffer's size) */
    pv_timer_t yield;         /* after a whole chunk: the next one on the loop's next turn */
    pv_buf_t *buf;            /* file bytes on their way out */
    size_t have;              /* bytes read into buf and not yet queued */
    int read_n;               /* the last read's result */
    int pre_n;                /* bytes from offset 0 the open read ahead into buf */
    /* autoindex */
    pv_dirent_t *ents;        /* malloc */
    int nents;
    /* Large, and not cleared by pv_file_new(): path is set before use,
     * ranges[i] for i < nranges. */
    char path[PATH_MAX];      /* the file (index: the directory) */
    pv_range_t ranges[PV_FILE_MAX_RANGES];
};

/* The worker's port to the thread pool (the static module's worker
 * hooks). */
int pv_file_worker_init(pv_loop_t *loop);
void pv_file_worker_exit(void);
/* A new state for hr, its handler set (cleanup frees it). NULL when
 * memory ran out. */
pv_file_t *pv_file_new(struct pv_hreq_s *hr, const pv_static_conf_t *s);
/* Drop hr's file state now (before an internal redirect or another
 * handler): the handler is unset. */
void pv_file_release(struct pv_hreq_s *hr);
/* Run op: 1 when it is done (results in f), 0 when it runs on the pool
 * and then() follows on the loop (the request is parked meanwhile). */
int pv_file_run(pv_file_t *f, int op, pv_file_cb then);
/* Open path as disable_symlinks says and fstat it. fd or -1 (errno). */
int pv_file_open(int symlinks, size_t from, const char *path, struct stat *st);
/* The request's handler while a file is sent or an operation runs. */
extern const struct pv_handler_s pv_file_handler;
/* Send more of the file (the handler's proceed). */
void pv_file_send(struct pv_hreq_s *hr);
/* Whether the answer's bytes may go with sendfile(2), as NGINX's
 * `sendfile` (its head is queued): plain TCP, HTTP/1.x, no filter, tee,
 * chunked coding or limit_rate; sets f->sendfile. */
void pv_file_sendfile_check(struct pv_hreq_s *hr, pv_file_t *f);

#endif
