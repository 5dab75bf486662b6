/* onnx_meta.c -- `canopy evaluate --write-model`: a model file with one
 * metadata_props entry set (the bytes from onnx/write.c), written
 * atomically.
 */
#define _GNU_SOURCE
#include "eval/eval.h"
#include "onnx/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cnp_status cnp_eval_write_atomic(cnp_ctx *ctx, const char *path, const void *data, size_t size)
{
    static int counter;
    cnp_status st = CNP_OK;
    const char *slash = strrchr(path, '/');
    char *tmp = NULL, *dir = NULL;
    const unsigned char *p = data;
    size_t left = size;
    int fd = -1, n;

    if (slash) {
        dir = strndup(path, (size_t)(slash - path) + 1);
        n = asprintf(&tmp, "%s.%s.tmp-%ld-%d", dir ? dir : "", slash + 1, (long)getpid(),
                     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    } else {
        n = asprintf(&tmp, ".%s.tmp-%ld-%d", path, (long)getpid(),
                     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    }
    if (n < 0 || (slash && !dir)) {
        tmp = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot create a file in its folder (%s); check "
                       "that the folder exists and is writable", path, strerror(errno));
        goto cleanup;
    }
    while (left > 0) {
        ssize_t w = write(fd, p, left > (1u << 30) ? (1u << 30) : left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            st = cnp_error(ctx, CNP_ERR_IO, "%s: write failed (%s); is the disk full?", path,
                           strerror(errno));
            goto cleanup;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: fsync failed (%s)", path, strerror(errno));
        goto cleanup;
    }
    n = close(fd);
    fd = -1;
    if (n != 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: close failed (%s); is the disk full?", path,
                       strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot rename the finished file into place (%s)",
                       path, strerror(errno));
        goto cleanup;
    }
    free(tmp);
    tmp = NULL;
    /* make the rename durable; failure here loses nothing already written */
    fd = open(dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    fd = -1;
cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    return st;
}

cnp_status cnp_onnx_set_metadata(cnp_ctx *ctx, const char *in_path, const char *out_path,
                                 const char *key, const char *value)
{
    cnp_status st;
    char *data = NULL;
    void *out = NULL;
    size_t size = 0, out_size = 0;

    st = cnp_eval_read_file(ctx, in_path, &data, &size);
    if (st == CNP_OK)
        st = cnp_onnx_set_metadata_buffer(ctx, data, size, in_path, key, value, &out, &out_size);
    if (st == CNP_OK)
        st = cnp_eval_write_atomic(ctx, out_path, out, out_size);
    free(data);
    free(out);
    return st;
}
