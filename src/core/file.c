#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *pv_file_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "open() \"%s\" failed (%d: %s)", path, e, strerror(e));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    for (;;) {
        if (!buf || n == cap) {
            size_t ncap = buf ? cap * 2 : cap;
            char *nb = ncap <= max ? realloc(buf, ncap) : NULL;
            if (!nb) {
                snprintf(err, errlen, "\"%s\" is too large", path);
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            snprintf(err, errlen, "read() \"%s\" failed (%d: %s)", path, e, strerror(e));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

int pv_file_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
