/* Whole small files (key and password files) read at config load. */
#ifndef PV_FILE_H
#define PV_FILE_H

#include <stddef.h>

/* Read path into a malloc'd buffer (*len bytes, not NUL-terminated).
 * NULL with an NGINX-style message in err when it cannot be opened or
 * read, or when it is larger than max bytes. */
char *pv_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
