/* files.c -- the one atomic writer and the one whole-file reader of canopy.
 *
 * Every file canopy creates is first written in a private folder made with
 * mkdtemp() inside its destination folder (mode 0700, unpredictable name;
 * private.c),
 * opened there with O_CREAT|O_EXCL|O_NOFOLLOW (or written there by a GDAL
 * driver, by path), flushed with fsync, renamed onto its final name with
 * renameat() (which replaces a symlink planted at the final name instead of
 * following it), and the destination folder is fsync'd. The private folder
 * and anything a driver left in it (.aux.xml, .ovr, temporary overviews)
 * is removed. Nobody else can plant anything inside the private folder, so
 * nothing is ever written through a link. */
#define _GNU_SOURCE
#include "config.h"
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Splits path into its folder ("." when there is none) and base name; both
 * malloc'd; 0 on allocation failure. */
static int split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    *dir = !slash ? strdup(".") : slash == path ? strdup("/")
                                                : strndup(path, (size_t)(slash - path));
    *base = strdup(slash ? slash + 1 : path);
    if (!*dir || !*base) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return 0;
    }
    return 1;
}

char *cnp_atomic_begin(cnp_ctx *ctx, const char *final_path)
{
    char *dir = NULL, *base = NULL, *priv = NULL, *tmp = NULL;

    if (!final_path || !*final_path || final_path[strlen(final_path) - 1] == '/') {
        cnp_error(ctx, CNP_ERR_USAGE, "output path '%s' names no file; give a file name",
                  final_path ? final_path : "");
        return NULL;
    }
    if (!split_path(final_path, &dir, &base)) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary name for %s", final_path);
        return NULL;
    }
    priv = cnp_private_dir_new(ctx, dir, final_path);
    if (priv && asprintf(&tmp, "%s/%s", priv, base) < 0) {
        tmp = NULL;
        cnp_private_dir_remove(priv);
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary name for %s", final_path);
    }
    free(priv);
    free(dir);
    free(base);
    return tmp;
}

const char *cnp_write_advice(int err)
{
    switch (err) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return "free space (or quota) in the output folder (-o) ran out; make room or choose "
               "another folder";
    case ENAMETOOLONG:
        return "the file name is longer than the file system allows (usually 255 bytes a "
               "name); rename the scene to a shorter name or use a shorter -o path";
    case EACCES:
    case EPERM:
    case EROFS:
        return "choose a writable output folder (-o)";
    case ENOENT:
    case ENOTDIR:
        return "the output folder (-o) is missing or is not a folder";
    default:
        return "check the creation options (-co) and the output folder (-o)";
    }
}

int cnp_atomic_open(cnp_ctx *ctx, const char *tmp_path, const char *final_path)
{
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final_path, strerror(e),
                  cnp_write_advice(e));
    }
    return fd;
}

FILE *cnp_atomic_fopen(cnp_ctx *ctx, const char *tmp_path, const char *final_path)
{
    int fd = cnp_atomic_open(ctx, tmp_path, final_path);
    FILE *f;
    if (fd < 0)
        return NULL;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory opening %s", final_path);
    }
    return f;
}

/* fsync of a file (no link followed) or folder; 0 or errno. Folders on file
 * systems that cannot sync them (EINVAL, EROFS) count as synced. */
int cnp_sync_fd(int fd, int is_dir)
{
    if (fsync(fd) != 0 && !(is_dir && (errno == EINVAL || errno == EROFS)))
        return errno;
    return 0;
}

static int sync_path(const char *path, int is_dir)
{
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NOFOLLOW) | O_CLOEXEC);
    int rc;
    if (fd < 0)
        return errno;
    rc = cnp_sync_fd(fd, is_dir);
    close(fd);
    return rc;
}

void cnp_atomic_discard(const char *tmp_path)
{
    char *dir = NULL, *base = NULL;

    if (!tmp_path || !split_path(tmp_path, &dir, &base))
        return;
    cnp_private_dir_remove(dir); /* only a folder named like ours */
    free(dir);
    free(base);
}

cnp_status cnp_atomic_commit(cnp_ctx *ctx, const char *tmp_path, const char *final_path)
{
    cnp_status st = CNP_OK;
    char *dir = NULL, *base = NULL;
    int e;

    e = sync_path(tmp_path, 0);
    if (e) {
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: flushing it to disk failed (%s); %s",
                       final_path, strerror(e), cnp_write_advice(e));
        goto cleanup;
    }
    if (renameat(AT_FDCWD, tmp_path, AT_FDCWD, final_path) != 0) {
        e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: renaming the finished temporary file "
                       "into place failed (%s); check the output folder's permissions",
                       final_path, strerror(e));
        goto cleanup;
    }
    if (!split_path(final_path, &dir, &base)) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    e = sync_path(dir, 1);
    if (e) {
        unlink(final_path);
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: syncing its folder failed (%s); check "
                       "the output folder", final_path, strerror(e));
    }
cleanup:
    cnp_atomic_discard(tmp_path); /* the private folder and what is left in it */
    free(dir);
    free(base);
    return st;
}

cnp_status cnp_atomic_write(cnp_ctx *ctx, const char *final_path, const void *data, size_t size)
{
    const unsigned char *p = data;
    char *tmp = cnp_atomic_begin(ctx, final_path);
    cnp_status st = CNP_OK;
    int fd = -1;

    if (!tmp)
        return ctx && ctx->status ? ctx->status : CNP_ERR_IO;
    if ((fd = cnp_atomic_open(ctx, tmp, final_path)) < 0) {
        st = CNP_ERR_IO;
        goto cleanup;
    }
    while (size > 0) {
        ssize_t w = write(fd, p, size > (1u << 30) ? (1u << 30) : size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final_path, strerror(e),
                           cnp_write_advice(e));
            goto cleanup;
        }
        p += w;
        size -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        fd = -1;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final_path, strerror(e),
                       cnp_write_advice(e));
        goto cleanup;
    }
    fd = -1;
    st = cnp_atomic_commit(ctx, tmp, final_path);
    free(tmp);
    return st;
cleanup:
    if (fd >= 0)
        close(fd);
    cnp_atomic_discard(tmp);
    free(tmp);
    return st;
}

cnp_status cnp_file_read(cnp_ctx *ctx, const char *path, size_t max_size, char **data,
                         size_t *size)
{
    cnp_status st = CNP_OK;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd;

    *data = NULL;
    *size = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open (%s); check the path", path,
                         strerror(errno));
    for (;;) {
        ssize_t got;
        if (cap - len < 2) {
            size_t nc = cap ? 2 * cap : 1 << 16;
            char *nb;
            if (nc > max_size + 2)
                nc = max_size + 2;
            if (nc <= cap) {
                st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: larger than %zu bytes; this is not a "
                               "file canopy reads whole", path, max_size);
                goto cleanup;
            }
            if (!(nb = realloc(buf, nc))) {
                st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory reading %zu bytes", path,
                               nc);
                goto cleanup;
            }
            buf = nb;
            cap = nc;
        }
        got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: read error after %zu bytes (%s)", path, len,
                           strerror(errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    buf = buf ? buf : malloc(1);
    if (!buf) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    buf = NULL;
cleanup:
    close(fd);
    free(buf);
    return st;
}

cnp_status cnp_check_writable(cnp_ctx *ctx, const char *what, const char *path)
{
    char *copy = strdup(path);
    int ok;
    if (!copy)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    ok = access(dirname(copy), W_OK | X_OK) == 0;
    free(copy);
    if (!ok)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot write %s there (%s); choose a writable "
                         "folder", path, what, strerror(errno));
    return CNP_OK;
}
