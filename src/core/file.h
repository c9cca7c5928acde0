/* Whole small files (key and password files) read at config load. */
#ifndef PV_FILE_H
#define PV_FILE_H

#include <stddef.h>

/* Read path into a malloc'd buffer (*len bytes, not NUL-terminated).
 * NULL with an NGINX-style message in err when it cannot be opened or
 * read, or when it is larger than max bytes. */
char *pv_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* Write all n bytes of p to fd (a blocking file), retrying after EINTR
 * and short writes. 0, or -1 with errno set (0 after a write of 0). */
int pv_file_write_all(int fd, const char *p, size_t n);

#endif
