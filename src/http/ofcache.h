/* open_file_cache (ofcache.c): per worker, the descriptors, stat results
 * and (with open_file_cache_errors) open errors of the files static
 * answers open, as NGINX keeps them. Loop thread only. */
#ifndef PV_OFCACHE_H
#define PV_OFCACHE_H

#include <stddef.h>
#include <sys/stat.h>

#include "../config/conf.h"

/* A usable entry for path (opened under symlinks and from): 1 with *fd
 * (a dup the caller owns; -1 with *err for a cached error) and *st; 0
 * when the file must be opened. */
int pv_ofc_lookup(const pv_static_conf_t *s, const char *path, int symlinks, size_t from, int *fd, int *err,
                  struct stat *st);
/* Record the result of opening path (fd, or -1 and err). */
void pv_ofc_store(const pv_static_conf_t *s, const char *path, int symlinks, size_t from, int fd, int err,
                  const struct stat *st);
/* Close and free the worker's entries (worker exit). */
void pv_ofc_clear(void);

#endif
