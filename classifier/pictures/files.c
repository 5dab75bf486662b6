/* files.c -- atomic outputs of the pictures module: a hidden temporary made
 * with O_EXCL|O_NOFOLLOW beside the final name, written, synced, renamed. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/pictures.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

cnp_status cnp_atomic_open(cnp_ctx *ctx, const char *final, char **tmp, int *fd)
{
    const char *slash = strrchr(final, '/');
    size_t dlen = slash ? (size_t)(slash - final) + 1 : 0, n;
    unsigned long seed = (unsigned long)getpid() * 2654435761UL ^ (unsigned long)time(NULL);
    struct timespec ts;
    int attempt;

    *tmp = NULL;
    *fd = -1;
    if (!*final || final[strlen(final) - 1] == '/')
        return cnp_error(ctx, CNP_ERR_USAGE, "output path '%s' names no file; give a file name",
                         final);
    n = strlen(final) + 48;
    *tmp = malloc(n);
    if (!*tmp)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", final);
    clock_gettime(CLOCK_REALTIME, &ts);
    seed ^= (unsigned long)ts.tv_nsec;
    for (attempt = 0; attempt < 16; attempt++) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        snprintf(*tmp, n, "%.*s.%s.tmp-%ld-%06lx", (int)dlen, final, final + dlen, (long)getpid(),
                 (seed >> 20) & 0xffffffUL);
        *fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (*fd >= 0)
            return CNP_OK;
        if (errno != EEXIST)
            break;
    }
    {
        int e = errno;
        free(*tmp);
        *tmp = NULL;
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; choose a writable output folder "
                         "with free space", final, strerror(e));
    }
}

cnp_status cnp_atomic_write_all(cnp_ctx *ctx, const char *final, const char *tmp, int fd,
                                const void *buf, size_t n)
{
    const char *p = buf;
    int e = 0;

    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e) {
        unlink(tmp);
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; check free space in its folder",
                         final, strerror(e));
    }
    return CNP_OK;
}

cnp_status cnp_atomic_commit(cnp_ctx *ctx, const char *tmp, const char *final)
{
    if (rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        return cnp_error(ctx, CNP_ERR_IO, "cannot write %s: renaming the finished temporary file "
                         "into place failed (%s); check the folder's permissions", final,
                         strerror(e));
    }
    return CNP_OK;
}

cnp_status cnp_atomic_write_file(cnp_ctx *ctx, const char *final, const void *buf, size_t n)
{
    char *tmp = NULL;
    int fd;
    cnp_status st;

    if ((st = cnp_atomic_open(ctx, final, &tmp, &fd)) != CNP_OK)
        return st;
    if ((st = cnp_atomic_write_all(ctx, final, tmp, fd, buf, n)) == CNP_OK)
        st = cnp_atomic_commit(ctx, tmp, final);
    free(tmp);
    return st;
}
