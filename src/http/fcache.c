/* The response cache's keys zone and its files (fcache.h): a hash table
 * of nodes by MD5 under one mutex per zone, with a list from most to
 * least recently used; the registry that keeps zones across reloads; the
 * loader and manager thread of each zone. */
#include "fcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"

typedef struct node_s {
    uint8_t md5[16];
    struct node_s *hnext;       /* hash chain */
    struct node_s *prev, *next; /* recency list, most recent first */
    int64_t valid_sec;          /* fresh until */
    uint32_t updating_sec;      /* then stale-while-revalidate for so long */
    uint32_t error_sec;         /* and stale-if-error */
    int64_t accessed;           /* last asked for (seconds, monotonic) */
    int64_t fs_size;            /* bytes on disk */
    int64_t lock_ms;            /* when the filler took it (monotonic ms) */
    uint64_t gen;               /* which file is in place: new for each one stored or loaded */
    uint32_t uses;
    uint16_t error;             /* an error status answers until valid_sec (no file needed) */
    uint8_t exists;             /* a file is in place */
    uint8_t updating;           /* a request fills it */
} node_t;

/* A wildcard purge: the entries stored before `when` whose key starts
 * with prefix are gone; the manager walks the files once, lookups check
 * meanwhile. */
typedef struct purge_s {
    char *prefix;
    size_t len;
    uint64_t gen;               /* the last file generation when it was made: files up to it are gone */
} purge_t;

#define MAX_PURGES 32

struct pv_fcache_s {
    char name[64];
    char path[PATH_MAX];
    size_t path_len;
    int levels[3], nlevels;
    int64_t inactive_s, max_size, min_free;
    size_t max_nodes;
    pthread_mutex_t lock;
    node_t **table;
    size_t nbuckets, nnodes;
    node_t *head, *tail;
    int64_t total;              /* bytes of every file in place */
    uint64_t seq;               /* temp file names */
    int refs;                   /* snapshots naming it */
    int started, stop;
    pthread_t thread;
    struct pv_fcache_s *next;   /* registry */
    purge_t purges[MAX_PURGES]; /* wildcard purges not walked yet */
    int npurges;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pv_fcache_t *zones;

/* File generations, unique in the process (a worker's kept descriptor
 * is used only for the generation it was opened for). */
static uint64_t gens;

static uint64_t next_gen(void)
{
    return __atomic_add_fetch(&gens, 1, __ATOMIC_RELAXED);
}

static int64_t mono_s(void)
{
    return (int64_t)(pv_now_ms() / 1000);
}

/* ---- the registry ----------------------------------------------------------- */

static void zone_settings(pv_fcache_t *fc, const pv_cache_path_t *cp)
{
    fc->inactive_s = cp->inactive / 1000;
    fc->max_size = cp->max_size;
    fc->min_free = cp->min_free;
    /* NGINX keeps about 8000 keys per megabyte */
    fc->max_nodes = (size_t)(cp->size / 128);
}

void *pv_fcache_acquire(const pv_cache_path_t *cp)
{
    pthread_mutex_lock(&reg_lock);
    pv_fcache_t *fc = zones;
    for (; fc; fc = fc->next)
        if (strcmp(fc->name, cp->name) == 0 && strcmp(fc->path, cp->path) == 0 && fc->nlevels == cp->nlevels &&
            memcmp(fc->levels, cp->levels, sizeof(fc->levels)) == 0)
            break;
    if (fc) {
        fc->refs++;
        pthread_mutex_lock(&fc->lock);
        zone_settings(fc, cp);
        pthread_mutex_unlock(&fc->lock);
        pthread_mutex_unlock(&reg_lock);
        return fc;
    }
    fc = calloc(1, sizeof(*fc));
    if (fc) {
        snprintf(fc->name, sizeof(fc->name), "%s", cp->name);
        snprintf(fc->path, sizeof(fc->path), "%s", cp->path);
        fc->path_len = strlen(fc->path);
        memcpy(fc->levels, cp->levels, sizeof(fc->levels));
        fc->nlevels = cp->nlevels;
        zone_settings(fc, cp);
        fc->nbuckets = 1024;
        while (fc->nbuckets < fc->max_nodes && fc->nbuckets < (1u << 22))
            fc->nbuckets <<= 1;
        fc->table = calloc(fc->nbuckets, sizeof(*fc->table));
        if (!fc->table) {
            free(fc);
            fc = NULL;
        } else {
            pthread_mutex_init(&fc->lock, NULL);
            fc->refs = 1;
            fc->next = zones;
            zones = fc;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return fc;
}

static void zone_free(pv_fcache_t *fc)
{
    if (fc->started) {
        __atomic_store_n(&fc->stop, 1, __ATOMIC_RELEASE);
        pthread_join(fc->thread, NULL);
    }
    for (node_t *n = fc->head, *nx; n; n = nx) {
        nx = n->next;
        free(n);
    }
    for (int i = 0; i < fc->npurges; i++)
        free(fc->purges[i].prefix);
    free(fc->table);
    pthread_mutex_destroy(&fc->lock);
    free(fc);
}

void pv_fcache_release(void *impl)
{
    pv_fcache_t *fc = impl;
    pthread_mutex_lock(&reg_lock);
    if (--fc->refs > 0) {
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    for (pv_fcache_t **pp = &zones; *pp; pp = &(*pp)->next)
        if (*pp == fc) {
            *pp = fc->next;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    zone_free(fc);
}

void pv_fcache_init(void)
{
    pv_conf_cache_hooks(pv_fcache_acquire, pv_fcache_release);
}

const char *pv_fc_name(const pv_fcache_t *fc)
{
    return fc->name;
}

int64_t pv_fc_size(pv_fcache_t *fc)
{
    pthread_mutex_lock(&fc->lock);
    int64_t n = fc->total;
    pthread_mutex_unlock(&fc->lock);
    return n;
}

/* ---- nodes (the zone's lock held) ----------------------------------------------- */

static size_t bucket(const pv_fcache_t *fc, const uint8_t md5[16])
{
    uint64_t h;
    memcpy(&h, md5, 8);
    return (size_t)(h & (fc->nbuckets - 1));
}

static node_t *find(pv_fcache_t *fc, const uint8_t md5[16])
{
    for (node_t *n = fc->table[bucket(fc, md5)]; n; n = n->hnext)
        if (memcmp(n->md5, md5, 16) == 0)
            return n;
    return NULL;
}

static void unlink_lru(pv_fcache_t *fc, node_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        fc->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        fc->tail = n->prev;
    n->prev = n->next = NULL;
}

static void link_head(pv_fcache_t *fc, node_t *n)
{
    n->prev = NULL;
    n->next = fc->head;
    if (fc->head)
        fc->head->prev = n;
    fc->head = n;
    if (!fc->tail)
        fc->tail = n;
}

static void touch(pv_fcache_t *fc, node_t *n, int64_t now)
{
    n->accessed = now;
    if (fc->head == n)
        return;
    unlink_lru(fc, n);
    link_head(fc, n);
}

static void remove_node(pv_fcache_t *fc, node_t *n)
{
    for (node_t **pp = &fc->table[bucket(fc, n->md5)]; *pp; pp = &(*pp)->hnext)
        if (*pp == n) {
            *pp = n->hnext;
            break;
        }
    unlink_lru(fc, n);
    if (n->exists)
        fc->total -= n->fs_size;
    fc->nnodes--;
    free(n);
}

static node_t *add_node(pv_fcache_t *fc, const uint8_t md5[16], int64_t now)
{
    if (fc->nnodes >= fc->max_nodes) {
        /* the zone is full: the least recently used idle entry goes (its
         * file stays until the manager or the loader sees it) */
        node_t *old = fc->tail;
        while (old && old->updating)
            old = old->prev;
        if (!old)
            return NULL;
        remove_node(fc, old);
    }
    node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    memcpy(n->md5, md5, 16);
    size_t b = bucket(fc, md5);
    n->hnext = fc->table[b];
    fc->table[b] = n;
    fc->nnodes++;
    n->accessed = now;
    link_head(fc, n);
    return n;
}

/* ---- lookups ------------------------------------------------------------------ */

/* "00" to "ff": a byte's two hex digits in one copy */
#define HEX_ROW(h) #h "0" #h "1" #h "2" #h "3" #h "4" #h "5" #h "6" #h "7" #h "8" #h "9" #h "a" #h "b" #h "c" #h "d" #h "e" #h "f"
static const char hex_pairs[] = HEX_ROW(0) HEX_ROW(1) HEX_ROW(2) HEX_ROW(3) HEX_ROW(4) HEX_ROW(5) HEX_ROW(6)
    HEX_ROW(7) HEX_ROW(8) HEX_ROW(9) HEX_ROW(a) HEX_ROW(b) HEX_ROW(c) HEX_ROW(d) HEX_ROW(e) HEX_ROW(f);
_Static_assert(sizeof(hex_pairs) == 2 * 256 + 1, "two digits a byte");

static void entry_path(const pv_fcache_t *fc, const uint8_t md5[16], char *out, size_t cap)
{
    char name[33];
    for (int i = 0; i < 16; i++)
        memcpy(name + 2 * i, hex_pairs + 2 * md5[i], 2);
    name[32] = '\0';
    size_t n = fc->path_len;
    if (n + 1 + 3 * (size_t)fc->nlevels + sizeof(name) > cap) {
        out[0] = '\0'; /* too long for a path: no file by that name (open and rename fail) */
        return;
    }
    memcpy(out, fc->path, n); /* once per lookup: no formatting */
    out[n++] = '/';
    int end = 32;
    for (int l = 0; l < fc->nlevels && n + 4 < cap; l++) {
        end -= fc->levels[l];
        memcpy(out + n, name + end, (size_t)fc->levels[l]);
        n += (size_t)fc->levels[l];
        out[n++] = '/';
    }
    memcpy(out + n, name, sizeof(name));
}

/* Whether a wildcard purge removed n, whose key is key (the lock held). */
static int purged(const pv_fcache_t *fc, const node_t *n, pv_str_t key)
{
    for (int i = 0; i < fc->npurges; i++) {
        const purge_t *p = &fc->purges[i];
        if (n->gen <= p->gen && key.len >= p->len && memcmp(key.p, p->prefix, p->len) == 0)
            return 1;
    }
    return 0;
}

/* The file (or the stored error) of n is gone (purged): forgotten, and the node too unless a
 * request fills it. The caller unlinks the file. */
static void drop_file(pv_fcache_t *fc, node_t *n)
{
    if (n->exists)
        fc->total -= n->fs_size;
    n->exists = 0;
    n->error = 0;
    n->gen = 0;
    if (!n->updating)
        remove_node(fc, n);
}

/* What ref learns of n's file (the lock held). */
static void entry_times(pv_fc_ref_t *ref, const node_t *n)
{
    ref->exists = 1;
    ref->gen = n->gen;
    ref->valid_sec = n->valid_sec;
    ref->updating_sec = n->updating_sec;
    ref->error_sec = n->error_sec;
}

void pv_fc_lookup(pv_fcache_t *fc, const uint8_t md5[16], pv_str_t key, int64_t now, int64_t min_uses, int lock,
                  int64_t lock_age, pv_fc_ref_t *ref)
{
    memset(ref, 0, offsetof(pv_fc_ref_t, path));
    ref->fc = fc;
    memcpy(ref->md5, md5, 16);
    entry_path(fc, md5, ref->path, sizeof(ref->path));
    int64_t ms = (int64_t)pv_now_ms(), mono = mono_s();
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, md5);
    int gone = n && (n->exists || n->error) && fc->npurges && purged(fc, n, key);
    if (gone)
        drop_file(fc, n);
    n = gone ? find(fc, md5) : n;
    if (!n)
        n = add_node(fc, md5, mono);
    if (!n) {
        pthread_mutex_unlock(&fc->lock);
        ref->state = PV_FC_MISS; /* no room: proxied, not stored */
        return;
    }
    touch(fc, n, mono);
    if (n->uses < UINT32_MAX)
        n->uses++;
    int held = n->updating && ms - n->lock_ms < lock_age;
    if (n->error && n->valid_sec < now)
        n->error = 0; /* its time is over: the entry is looked up as it is */
    if (n->error) {
        ref->state = PV_FC_HIT;
        ref->error = n->error;
    } else if (n->exists) {
        entry_times(ref, n);
        if (n->valid_sec >= now) { /* fresh through its last second, as NGINX's */
            ref->state = PV_FC_HIT;
        } else if (held) {
            ref->state = PV_FC_UPDATING;
        } else {
            ref->state = PV_FC_EXPIRED;
            ref->fill = 1;
        }
    } else if (held && lock) {
        ref->state = PV_FC_LOCKED;
    } else {
        ref->state = PV_FC_MISS;
        ref->scarce = n->uses < (uint64_t)min_uses;
        /* without the lock every miss stores its response (the last one stays), as NGINX's */
        ref->fill = !ref->scarce && (!held || !lock);
    }
    if (ref->fill) {
        n->updating = 1;
        n->lock_ms = ms;
    }
    pthread_mutex_unlock(&fc->lock);
    if (gone)
        unlink(ref->path);
}

int pv_fc_claim(pv_fc_ref_t *ref, int64_t lock_age)
{
    pv_fcache_t *fc = ref->fc;
    int64_t ms = (int64_t)pv_now_ms();
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n && !ref->fill && !(n->updating && ms - n->lock_ms < lock_age)) {
        n->updating = 1;
        n->lock_ms = ms;
        ref->fill = 1;
    }
    pthread_mutex_unlock(&fc->lock);
    return ref->fill;
}

int pv_fc_relook(pv_fc_ref_t *ref, int64_t now, int64_t lock_age)
{
    pv_fcache_t *fc = ref->fc;
    int64_t ms = (int64_t)pv_now_ms();
    int done = 1;
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n && n->error && n->valid_sec >= now) {
        ref->state = PV_FC_HIT;
        ref->error = n->error;
    } else if (n && n->exists) {
        entry_times(ref, n);
        ref->state = n->valid_sec >= now ? PV_FC_HIT : PV_FC_EXPIRED;
    } else if (n && n->updating && ms - n->lock_ms < lock_age) {
        done = 0;
    } else {
        /* the filler gave up, or its lock is older than lock_age: fill it */
        ref->state = PV_FC_MISS;
        if (n) {
            n->updating = 1;
            n->lock_ms = ms;
            ref->fill = 1;
        }
    }
    if (done && ref->state == PV_FC_EXPIRED && n && !n->updating) {
        n->updating = 1;
        n->lock_ms = ms;
        ref->fill = 1;
    }
    pthread_mutex_unlock(&fc->lock);
    return done;
}

void pv_fc_filled(pv_fc_ref_t *ref, int stored, int64_t fs_size, int64_t valid_sec)
{
    pv_fcache_t *fc = ref->fc;
    if (!ref->fill)
        return;
    ref->fill = 0;
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n) {
        n->updating = 0;
        if (stored) {
            if (n->exists)
                fc->total -= n->fs_size;
            n->exists = 1;
            n->gen = next_gen();
            n->fs_size = fs_size;
            n->valid_sec = valid_sec;
            n->updating_sec = ref->updating_sec;
            n->error_sec = ref->error_sec;
            n->error = 0;
            fc->total += fs_size;
        }
    }
    pthread_mutex_unlock(&fc->lock);
}

void pv_fc_error(pv_fc_ref_t *ref, int status, int64_t valid_sec)
{
    pv_fcache_t *fc = ref->fc;
    if (!ref->fill)
        return;
    ref->fill = 0;
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n) {
        n->updating = 0;
        n->error = (uint16_t)status;
        n->valid_sec = valid_sec;
        n->gen = next_gen(); /* a wildcard purge made before it does not cover it */
    }
    pthread_mutex_unlock(&fc->lock);
}

void pv_fc_refresh(pv_fc_ref_t *ref, int64_t valid_sec)
{
    pv_fcache_t *fc = ref->fc;
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n) {
        n->valid_sec = valid_sec;
        n->updating_sec = ref->updating_sec;
        n->error_sec = ref->error_sec;
        if (ref->fill)
            n->updating = 0;
    }
    ref->fill = 0;
    pthread_mutex_unlock(&fc->lock);
}

void pv_fc_forget(pv_fc_ref_t *ref)
{
    pv_fcache_t *fc = ref->fc;
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, ref->md5);
    if (n && n->exists) {
        fc->total -= n->fs_size;
        n->exists = 0;
    }
    pthread_mutex_unlock(&fc->lock);
}

void pv_fc_temp_path(const pv_fc_ref_t *ref, const char *temp_dir, char *out, size_t cap)
{
    pv_fcache_t *fc = ref->fc;
    uint64_t seq = __atomic_add_fetch(&fc->seq, 1, __ATOMIC_RELAXED);
    snprintf(out, cap, "%s/%010llu.%d.tmp", temp_dir ? temp_dir : fc->path, (unsigned long long)seq, (int)getpid());
}

int pv_fc_commit(const pv_fc_ref_t *ref, const char *temp)
{
    if (rename(temp, ref->path) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* make the level directories, then again */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", ref->path);
    size_t base = strlen(ref->fc->path);
    for (char *p = dir + base + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return rename(temp, ref->path);
}

/* ---- purges ------------------------------------------------------------------- */

int pv_fc_purge(pv_fcache_t *fc, const uint8_t md5[16])
{
    char path[PATH_MAX];
    entry_path(fc, md5, path, sizeof(path));
    pthread_mutex_lock(&fc->lock);
    node_t *n = find(fc, md5);
    int found = n && (n->exists || n->error);
    if (found)
        drop_file(fc, n);
    pthread_mutex_unlock(&fc->lock);
    if (found)
        unlink(path);
    return found;
}

int pv_fc_purge_prefix(pv_fcache_t *fc, pv_str_t prefix)
{
    char *p = malloc(prefix.len + 1);
    if (!p)
        return -1;
    memcpy(p, prefix.p, prefix.len);
    p[prefix.len] = '\0';
    pthread_mutex_lock(&fc->lock);
    int ok = fc->npurges < MAX_PURGES;
    if (ok)
        fc->purges[fc->npurges++] = (purge_t){p, prefix.len, __atomic_load_n(&gens, __ATOMIC_RELAXED)};
    pthread_mutex_unlock(&fc->lock);
    if (!ok)
        free(p);
    return ok ? 0 : -1;
}

/* The manager's walk for the oldest wildcard purge: every file stored
 * before it is read, those whose key matches removed; then the purge is
 * done (lookups no longer need to check it): 1, or 0 when there was
 * none or it must be tried again. */
static int walk_purge(pv_fcache_t *fc)
{
    typedef struct { uint8_t md5[16]; uint64_t gen; } cand_t;
    pthread_mutex_lock(&fc->lock);
    if (!fc->npurges) {
        pthread_mutex_unlock(&fc->lock);
        return 0;
    }
    purge_t pg = fc->purges[0];
    cand_t *cands = malloc((fc->nnodes + 1) * sizeof(*cands));
    size_t nc = 0;
    for (node_t *n = fc->head; cands && n; n = n->next)
        if (n->exists && n->gen <= pg.gen) {
            memcpy(cands[nc].md5, n->md5, 16);
            cands[nc++].gen = n->gen;
        }
    pthread_mutex_unlock(&fc->lock);
    if (!cands)
        return 0; /* again on the next pass */
    char *buf = malloc(PV_FC_HEAD_MAX);
    for (size_t i = 0; buf && i < nc && !__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE); i++) {
        char path[PATH_MAX];
        entry_path(fc, cands[i].md5, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t len = fd >= 0 ? pread(fd, buf, PV_FC_HEAD_MAX, 0) : -1;
        if (fd >= 0)
            close(fd);
        pv_fc_entry_t e;
        if (len <= 0 || pv_fc_entry_parse(buf, (size_t)len, &e) != 0 || e.key.len < pg.len ||
            memcmp(e.key.p, pg.prefix, pg.len) != 0)
            continue;
        pthread_mutex_lock(&fc->lock);
        node_t *n = find(fc, cands[i].md5);
        int same = n && n->exists && n->gen == cands[i].gen;
        if (same)
            drop_file(fc, n);
        pthread_mutex_unlock(&fc->lock);
        if (same)
            unlink(path);
    }
    int finished = buf != NULL && !__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE);
    free(buf);
    free(cands);
    if (!finished)
        return 0;
    pthread_mutex_lock(&fc->lock);
    free(fc->purges[0].prefix);
    memmove(&fc->purges[0], &fc->purges[1], (size_t)(fc->npurges - 1) * sizeof(purge_t));
    fc->npurges--;
    pthread_mutex_unlock(&fc->lock);
    return 1;
}

/* ---- the loader and the manager ------------------------------------------------ */

static int hex_name(const char *s, uint8_t md5[16])
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        if (i % 2 == 0)
            md5[i / 2] = (uint8_t)(v << 4);
        else
            md5[i / 2] |= (uint8_t)v;
    }
    return 1;
}

/* Index one file found on disk: a valid entry becomes a node; anything
 * else in a level directory is removed, as NGINX's loader does. */
static void load_file(pv_fcache_t *fc, const char *path, const char *name)
{
    uint8_t md5[16];
    char buf[PV_FC_HEAD_MAX];
    pv_fc_entry_t e;
    struct stat st;
    int ok = 0;
    if (hex_name(name, md5)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = pread(fd, buf, sizeof(buf), 0);
            ok = n > 0 && fstat(fd, &st) == 0 && pv_fc_entry_parse(buf, (size_t)n, &e) == 0 &&
                 memcmp(e.md5, md5, 16) == 0 && st.st_size == (off_t)e.body_start + e.body_len;
            close(fd);
        }
    }
    if (!ok) {
        unlink(path);
        return;
    }
    pthread_mutex_lock(&fc->lock);
    node_t *nd = find(fc, md5);
    if (!nd && (nd = add_node(fc, md5, mono_s()))) {
        nd->exists = 1;
        nd->gen = next_gen();
        nd->uses = 1;
        nd->valid_sec = e.valid_sec;
        nd->updating_sec = e.updating_sec;
        nd->error_sec = e.error_sec;
        nd->fs_size = PV_FC_FS_SIZE(st.st_size);
        fc->total += nd->fs_size;
    }
    pthread_mutex_unlock(&fc->lock);
}

static void load_dir(pv_fcache_t *fc, const char *dir, int depth, time_t started)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while (!__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE) && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        size_t nl = strlen(de->d_name);
        if (depth == 0 && S_ISREG(st.st_mode) && nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
            if (st.st_ctime < started)
                unlink(path); /* a temp file a stopped process left */
            continue;
        }
        if (depth < fc->nlevels && S_ISDIR(st.st_mode) && nl == (size_t)fc->levels[depth])
            load_dir(fc, path, depth + 1, started);
        else if (depth == fc->nlevels && S_ISREG(st.st_mode))
            load_file(fc, path, de->d_name);
    }
    closedir(d);
}

/* min_free: the bytes to remove for the file system holding the cache
 * to have that much free (0: enough, or no min_free). */
static int64_t short_of_free(const pv_fcache_t *fc)
{
    struct statvfs sv;
    if (!fc->min_free || statvfs(fc->path, &sv) != 0)
        return 0;
    int64_t avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
    return avail < fc->min_free ? fc->min_free - avail : 0;
}

/* One pass of the manager: the entries not asked for within inactive,
 * then the least recently used while the files take more than max_size
 * or the file system has less than min_free left. The files are removed
 * outside the lock. */
static void manage(pv_fcache_t *fc)
{
    char (*paths)[PATH_MAX] = NULL;
    int np = 0, cap = 0;
    int64_t now = mono_s(), short_by = short_of_free(fc);
    pthread_mutex_lock(&fc->lock);
    for (node_t *n = fc->tail, *pv; n && np < 256; n = pv) {
        pv = n->prev;
        int old = now - n->accessed >= fc->inactive_s;
        int over = (fc->max_size && fc->total > fc->max_size) || short_by > 0;
        if (!old && !over)
            break;
        if (n->updating)
            continue;
        if (n->exists) {
            if (np == cap) {
                cap = cap ? cap * 2 : 16;
                void *p = realloc(paths, (size_t)cap * PATH_MAX);
                if (!p)
                    break;
                paths = p;
            }
            entry_path(fc, n->md5, paths[np++], PATH_MAX);
            short_by -= n->fs_size;
        }
        remove_node(fc, n);
    }
    pthread_mutex_unlock(&fc->lock);
    for (int i = 0; i < np; i++)
        unlink(paths[i]);
    free(paths);
}

static void *zone_thread(void *arg)
{
    pv_fcache_t *fc = arg;
    load_dir(fc, fc->path, 0, time(NULL));
    while (!__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE)) {
        manage(fc);
        for (int k = 0; k < MAX_PURGES && walk_purge(fc); k++)
            ;
        for (int i = 0; i < 10 && !__atomic_load_n(&fc->stop, __ATOMIC_ACQUIRE); i++)
            usleep(100000);
    }
    return NULL;
}

int pv_fcache_start(const pv_conf_t *conf, char *err, size_t errlen)
{
    const pv_http_conf_t *h = conf->http;
    for (int i = 0; h && i < h->ncaches; i++) {
        pv_fcache_t *fc = h->caches[i]->impl;
        if (!fc || fc->started)
            continue;
        if (mkdir(fc->path, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "mkdir() \"%s\" failed (%d: %s)", fc->path, errno, strerror(errno));
            return -1;
        }
        if (pthread_create(&fc->thread, NULL, zone_thread, fc) != 0) {
            snprintf(err, errlen, "cache manager of \"%s\" could not start", fc->name);
            return -1;
        }
        fc->started = 1;
    }
    return 0;
}

void pv_fcache_stop_all(void)
{
    pthread_mutex_lock(&reg_lock);
    for (pv_fcache_t *fc = zones; fc; fc = fc->next)
        if (fc->started) {
            __atomic_store_n(&fc->stop, 1, __ATOMIC_RELEASE);
            pthread_join(fc->thread, NULL);
            fc->started = 0;
        }
    pthread_mutex_unlock(&reg_lock);
}
