/* auth_basic_user_file read per request, as NGINX reads it, but cheaply:
 * each worker keeps the parsed file of the paths it was asked for and
 * stats the file on every request, reading and parsing it again only when
 * its inode, size, modification or change time moved. The read happens on
 * the worker's loop: password files are small (a few KiB for hundreds of
 * users; PV_HTPASSWD_FILE_MAX at most) and read only when they change, so
 * it costs about what the stat does, not a thread-pool round trip. */
#ifndef PV_USERFILE_H
#define PV_USERFILE_H

#include <stddef.h>
#include <stdint.h>

#include "htpasswd.h"

/* The parsed file at path. PV_OK: *h (valid until the next call on this
 * thread) and *gen, a number that changes whenever a file is read again
 * (for caches of verified credentials). PV_ERR: *err is the errno of the
 * stat or open that failed (ENOENT: the file is missing), or 0 for a
 * file that does not parse; msg holds the message to log. */
int pv_userfile_get(const char *path, pv_htpasswd_t **h, uint64_t *gen, int *err, char *msg, size_t cap);

/* Free this thread's files (the worker ends). */
void pv_userfile_clear(void);

#endif
