/* Password files read per request, kept per worker while unchanged (see
 * userfile.h). */
#include "userfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USERFILES 16 /* paths a worker keeps; the one used longest ago goes first */

typedef struct {
    char *path;             /* malloc'd; NULL: a free slot */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    pv_htpasswd_t *h;
    uint64_t gen;
    uint64_t used;          /* last use, in calls */
} userfile_t;

static __thread userfile_t files[USERFILES];
static __thread uint64_t calls;
static uint64_t next_gen; /* shared: a generation is never reused by any worker */

static int same(const userfile_t *f, const struct stat *st)
{
    return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
           f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void drop(userfile_t *f)
{
    free(f->path);
    pv_htpasswd_free(f->h);
    memset(f, 0, sizeof(*f));
}

/* The slot of path, or the one to reuse for it. */
static userfile_t *slot(const char *path)
{
    userfile_t *old = &files[0];
    for (int i = 0; i < USERFILES; i++) {
        if (files[i].path && strcmp(files[i].path, path) == 0)
            return &files[i];
        if (!files[i].path || (old->path && files[i].used < old->used))
            old = &files[i];
    }
    drop(old);
    return old;
}

int pv_userfile_get(const char *path, pv_htpasswd_t **h, uint64_t *gen, int *err, char *msg, size_t cap)
{
    struct stat st;
    *err = 0;
    if (stat(path, &st) != 0) {
        *err = errno;
        snprintf(msg, cap, "open() \"%s\" failed (%d: %s)", path, errno, strerror(errno));
        return PV_ERR;
    }
    userfile_t *f = slot(path);
    f->used = ++calls;
    if (f->path && f->h && same(f, &st)) {
        *h = f->h;
        *gen = f->gen;
        return PV_OK;
    }
    /* new or changed: read it again (the stat is taken before the read,
     * so a change during the read is seen at the next request) */
    pv_htpasswd_t *nh = pv_htpasswd_load_lenient(path, msg, cap);
    if (!nh) {
        *err = access(path, R_OK) != 0 ? errno : 0; /* 0: read, but not a password file */
        if (f->path) /* a broken file is read again at the next request */
            drop(f);
        return PV_ERR;
    }
    if (!f->path && !(f->path = strdup(path))) {
        pv_htpasswd_free(nh);
        snprintf(msg, cap, "out of memory reading \"%s\"", path);
        return PV_ERR;
    }
    pv_htpasswd_free(f->h);
    f->h = nh;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtime = st.st_mtim;
    f->ctime = st.st_ctim;
    f->gen = __atomic_add_fetch(&next_gen, 1, __ATOMIC_RELAXED);
    *h = nh;
    *gen = f->gen;
    return PV_OK;
}

void pv_userfile_clear(void)
{
    for (int i = 0; i < USERFILES; i++)
        if (files[i].path)
            drop(&files[i]);
}
