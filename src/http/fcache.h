/* The response cache's store (NGINX's ngx_http_file_cache): entries are
 * files under a proxy_cache_path directory, named by the MD5 of their key
 * in `levels` directories; the keys zone, an index of every entry shared
 * by all workers under one lock, says which exist, until when they are
 * fresh, how often they were asked for and which one is being filled.
 * A zone is kept across reloads while a config names the same path with
 * the same levels. One thread per zone first indexes the files already on
 * disk (the loader) and then, every second, removes entries not asked for
 * within `inactive` and the least recently used beyond `max_size` (the
 * manager). The entry file format is in fcache_entry.c. */
#ifndef PV_HTTP_FCACHE_H
#define PV_HTTP_FCACHE_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "../config/conf.h"
#include "../core/common.h"

/* ---- the entry file ------------------------------------------------------ */

#define PV_FC_MAGIC "PVCACHE2"
#define PV_FC_FIXED 96          /* bytes of the fixed part of an entry header */
#define PV_FC_OFF_VALID 40      /* where valid_sec is: rewritten when the entry is revalidated */
#define PV_FC_OFF_STALE 88      /* where updating_sec and error_sec are (two uint32) */
#define PV_FC_VARY_MAX 128      /* a stored Vary value at most (NGINX's); longer: not stored */
#define PV_FC_HEAD_MAX 12288    /* an entry's header (key, head, vary) at most: it is read in one go */

/* What an entry file's header says (fcache_entry.c). */
typedef struct pv_fc_entry_s {
    uint8_t md5[16];            /* the key's MD5: the file name */
    uint8_t variant[16];        /* MD5 of the request fields its Vary names (zero: no Vary) */
    int64_t valid_sec;          /* fresh until then */
    uint32_t updating_sec;      /* stale-while-revalidate: seconds past valid_sec it may answer while updated */
    uint32_t error_sec;         /* stale-if-error: seconds past valid_sec it may answer for an error */
    int64_t date;               /* when it was stored */
    int64_t last_modified;      /* its Last-Modified, -1 none */
    int64_t body_len;           /* body bytes after the header */
    uint32_t body_start;        /* offset of the body */
    int status;
    pv_str_t key;               /* the key text */
    pv_str_t etag;              /* its ETag, may be empty */
    pv_str_t vary;              /* its Vary value, may be empty */
    pv_str_t head;              /* the stored head: "Name: value\r\n" lines, the first "NNN reason\r\n" */
} pv_fc_entry_t;

/* Write e's header for e->key, e->etag, e->vary and e->head into buf
 * (body_start is set): its length, or -1 when it does not fit cap or
 * PV_FC_HEAD_MAX. */
ssize_t pv_fc_entry_write(pv_fc_entry_t *e, char *buf, size_t cap);
/* Read an entry header from the first len bytes of a file: 0 with e's
 * strings pointing into buf, or -1 when it is not a whole, valid one. */
int pv_fc_entry_parse(const char *buf, size_t len, pv_fc_entry_t *e);
/* The same for bytes this worker kept with the entry's descriptor
 * (pv_fc_keep(), only after pv_fc_entry_parse() accepted them; a copy
 * that no write changes): the head's lines are not checked again. */
int pv_fc_entry_parse_kept(const char *buf, size_t len, pv_fc_entry_t *e);
/* The next field of a stored head from *pos: 1 with name and value, 0 at
 * the end, -1 when malformed. The status line comes first: its name is
 * empty and its value "NNN reason". */
int pv_fc_head_next(pv_str_t head, size_t *pos, pv_str_t *name, pv_str_t *value);
/* The same over a head pv_fc_entry_parse() accepted (every line checked
 * there): its lines split without looking at each byte again. */
int pv_fc_head_walk(pv_str_t head, size_t *pos, pv_str_t *name, pv_str_t *value);

/* ---- the zone --------------------------------------------------------- */

typedef struct pv_fcache_s pv_fcache_t;

/* Where a lookup left a request (pv_fc_lookup()). */
enum {
    PV_FC_MISS = 0,    /* no entry: fill it when `fill` says so */
    PV_FC_HIT,         /* fresh: serve the file */
    PV_FC_EXPIRED,     /* stale: this request updates it (`fill`) */
    PV_FC_UPDATING,    /* stale and another request updates it */
    PV_FC_LOCKED,      /* no entry yet and another request fills it (proxy_cache_lock): wait */
};

/* One request's view of an entry. */
typedef struct pv_fc_ref_s {
    pv_fcache_t *fc;
    uint8_t md5[16];
    int state;                  /* PV_FC_* */
    uint8_t fill;               /* this request stores the response (holds the entry's update) */
    uint8_t exists;             /* a file exists for it (HIT, EXPIRED, UPDATING) */
    uint8_t scarce;             /* MISS: fewer uses than min_uses so far */
    int64_t valid_sec;
    /* the entry's stale-while-revalidate and stale-if-error seconds (past
     * valid_sec): the looked-up file's; the filler sets them for the file
     * it stores before pv_fc_filled() or pv_fc_refresh() */
    uint32_t updating_sec, error_sec;
    int error;                  /* HIT: an error status stored (pv_fc_error()) answers, not a file */
    uint64_t gen;               /* the file in place (exists): unique in the process */
    char path[PATH_MAX];        /* the entry's file */
} pv_fc_ref_t;

/* The zone for cp (a new one, or the last snapshot's with the same name,
 * path and levels); the config's hooks (pv_conf_cache_hooks()). */
void *pv_fcache_acquire(const pv_cache_path_t *cp);
void pv_fcache_release(void *impl);
/* Register them with the config loader (main, tests and fuzzers that load
 * configs with proxy_cache_path). */
void pv_fcache_init(void);
/* Start the loader/manager threads of the zones not started yet: after
 * the config is loaded to run, never for -t. 0, or -1 with err. */
int pv_fcache_start(const pv_conf_t *conf, char *err, size_t errlen);
/* Stop every zone's thread (exit). */
void pv_fcache_stop_all(void);

/* The entry for md5 (the MD5 of key) in fc, for a request at now (seconds): fills ref.
 * min_uses: uses before an entry is stored; lock: proxy_cache_lock, with
 * lock_age (ms) after which another request may fill it. */
void pv_fc_lookup(pv_fcache_t *fc, const uint8_t md5[16], pv_str_t key, int64_t now, int64_t min_uses, int lock,
                  int64_t lock_age, pv_fc_ref_t *ref);
/* proxy_cache_purge: remove the entry for md5 (its file unlinked): 1, or
 * 0 when there was none. */
int pv_fc_purge(pv_fcache_t *fc, const uint8_t md5[16]);
/* A wildcard purge: every entry stored until now whose key starts with
 * prefix is gone (lookups check at once; the zone's thread removes the
 * files). 0, or -1 when too many are pending or memory ran out. */
int pv_fc_purge_prefix(pv_fcache_t *fc, pv_str_t prefix);
/* A waiting request looks again: 1 when the entry's filler is done (or
 * gone, or older than lock_age: then ref may fill it), 0 to go on waiting. */
int pv_fc_relook(pv_fc_ref_t *ref, int64_t now, int64_t lock_age);
/* A request that bypassed the cache stores its response in the entry
 * however fresh it is, unless another request is storing it now: 1 when
 * ref now holds the entry's update (fill). */
int pv_fc_claim(pv_fc_ref_t *ref, int64_t lock_age);
/* The filler is done: the file is in place (stored, with its size, fresh
 * until valid_sec) or not (failed). */
void pv_fc_filled(pv_fc_ref_t *ref, int stored, int64_t fs_size, int64_t valid_sec);
/* The filler got an error status that is answered from the zone until
 * valid_sec (an intercepted error with a time, as NGINX's node error);
 * a file in place stays, and a file stored later ends it. */
void pv_fc_error(pv_fc_ref_t *ref, int status, int64_t valid_sec);
/* A revalidated entry (304 from the upstream) is fresh until valid_sec. */
void pv_fc_refresh(pv_fc_ref_t *ref, int64_t valid_sec);
/* The entry's file could not be read: forget it. */
void pv_fc_forget(pv_fc_ref_t *ref);
/* The temp file path for a new entry of ref (temp_dir: proxy_temp_path's,
 * used with use_temp_path on). */
void pv_fc_temp_path(const pv_fc_ref_t *ref, const char *temp_dir, char *out, size_t cap);
/* Rename a complete temp file into the entry's place, making its level
 * directories. 0, or -1 (errno). */
int pv_fc_commit(const pv_fc_ref_t *ref, const char *temp);
/* The room a file of size bytes takes, counted against max_size: whole
 * 4 KiB blocks (the same at store and at load, whatever the file system
 * reports while its blocks are still being allocated). */
#define PV_FC_FS_SIZE(size) (((int64_t)(size) + 4095) & ~(int64_t)4095)
/* The zone's name (logs). */
const char *pv_fc_name(const pv_fcache_t *fc);
/* The bytes the zone's files take on disk now (counted against max_size). */
int64_t pv_fc_size(pv_fcache_t *fc);

/* ---- a worker's open entries (fcache_fd.c) ------------------------------- */

#define PV_FC_KEEP_MAX 64       /* entries whose descriptor a worker keeps */
#define PV_FC_KEEP_BYTES 4096   /* of each, the first bytes kept (header, start of the body) */
#define PV_FC_KEEP_MS 10000     /* one not used this long is closed */

/* A descriptor this worker keeps for ref's file (ref->gen): 1 with *fd (a
 * dup the caller owns), *st and the file's first bytes (*bytes, *n: valid
 * until the next pv_fc_keep*() call); 0 when the file must be opened.
 * Loop thread only. */
int pv_fc_keep_lookup(const pv_fc_ref_t *ref, int *fd, struct stat *st, const char **bytes, int *n);
/* Keep a dup of fd, the file of ref->gen, with its first n bytes. */
void pv_fc_keep(const pv_fc_ref_t *ref, int fd, const struct stat *st, const char *buf, int n);
/* Close and free the worker's kept entries (worker exit). */
void pv_fc_keep_clear(void);

#endif
