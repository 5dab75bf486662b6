/* files.c -- atomic output files (hidden temporary, fsync, rename) and
 * SHA-256 checksums of files (libcrypto EVP, streamed). */
#define _POSIX_C_SOURCE 200809L
#include "writers/writers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cpl_vsi.h>
#include <openssl/evp.h>

/* Side files GDAL may leave beside a dataset: PAM metadata, external
 * overviews and masks, and the COG driver's temporary overviews. */
static const char *const side_suffixes[] = {
    ".aux.xml", ".ovr", ".msk", ".ovr.tmp", ".msk.ovr.tmp", NULL
};

/* Splits path into its folder ("." when there is none) and base name; both
 * malloc'd, NULL on allocation failure. */
static int split_path(const char *path, char **dir, char **base)
{
    const char *slash = strrchr(path, '/');
    *dir = NULL;
    *base = NULL;
    if (!slash) {
        *dir = strdup(".");
        *base = strdup(path);
    } else if (slash == path) {
        *dir = strdup("/");
        *base = strdup(slash + 1);
    } else {
        *dir = strndup(path, (size_t)(slash - path));
        *base = strdup(slash + 1);
    }
    if (!*dir || !*base) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return 0;
    }
    return 1;
}

char *cnp_tmp_path(cnp_ctx *ctx, const char *final_path)
{
    char *dir = NULL, *base = NULL, *out = NULL;
    size_t len;

    if (!final_path || !*final_path || final_path[strlen(final_path) - 1] == '/') {
        cnp_error(ctx, CNP_ERR_USAGE, "output path '%s' names no file; give a file name",
                  final_path ? final_path : "");
        return NULL;
    }
    if (!split_path(final_path, &dir, &base)) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary name for %s", final_path);
        return NULL;
    }
    /* "DIR/." + base + ".tmp-" + pid (at most 20 digits) + NUL */
    len = strlen(dir) + strlen(base) + 32;
    out = malloc(len);
    if (!out) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory making a temporary name for %s", final_path);
    } else if (strchr(final_path, '/')) {
        snprintf(out, len, "%s%s.%s.tmp-%ld", dir, strcmp(dir, "/") ? "/" : "", base,
                 (long)getpid());
    } else {
        snprintf(out, len, ".%s.tmp-%ld", base, (long)getpid());
    }
    free(dir);
    free(base);
    return out;
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

char *cnp_tmp_prepare(cnp_ctx *ctx, const char *final_path)
{
    char *tmp = cnp_tmp_path(ctx, final_path);
    int fd;

    if (!tmp)
        return NULL;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        int e = errno;
        cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final_path, strerror(e),
                  cnp_write_advice(e));
        free(tmp);
        return NULL;
    }
    close(fd);
    unlink(tmp);
    return tmp;
}

/* fsync of a file or folder by path; 0 on success, else errno. Folders on
 * file systems that cannot sync them (EINVAL) count as synced. */
static int sync_path(const char *path, int is_dir)
{
    int fd = open(path, is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    int rc = 0;
    if (fd < 0)
        return errno;
    if (fsync(fd) != 0 && !(is_dir && (errno == EINVAL || errno == EROFS)))
        rc = errno;
    close(fd);
    return rc;
}

static void remove_side_files(const char *path)
{
    size_t n = strlen(path);
    int i;
    for (i = 0; side_suffixes[i]; i++) {
        size_t m = n + strlen(side_suffixes[i]) + 1;
        char *p = malloc(m);
        if (!p)
            continue;
        snprintf(p, m, "%s%s", path, side_suffixes[i]);
        unlink(p);
        free(p);
    }
}

cnp_status cnp_commit_file(cnp_ctx *ctx, const char *tmp_path, const char *final_path)
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
    if (rename(tmp_path, final_path) != 0) {
        e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: renaming the finished temporary file "
                       "into place failed (%s); check the output folder's permissions",
                       final_path, strerror(e));
        goto cleanup;
    }
    remove_side_files(tmp_path);
    if (split_path(final_path, &dir, &base)) {
        e = sync_path(dir, 1);
        if (e) {
            unlink(final_path);
            st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: syncing its folder failed (%s); "
                           "check the output folder", final_path, strerror(e));
        }
    }
cleanup:
    if (st != CNP_OK)
        cnp_discard_file(tmp_path);
    free(dir);
    free(base);
    return st;
}

void cnp_discard_file(const char *tmp_path)
{
    if (!tmp_path)
        return;
    unlink(tmp_path);
    remove_side_files(tmp_path);
}

#define SHA_BLOCK ((size_t)1 << 20)

cnp_status cnp_sha256_file(cnp_ctx *ctx, const char *path, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    cnp_status st = CNP_OK;
    VSILFILE *f = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *buf = NULL;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0, i;
    size_t got;

    hex[0] = '\0';
    errno = 0;
    f = VSIFOpenL(path, "rb");
    if (!f) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot open %s to checksum it: %s; check the path, its "
                       "permissions and that it is reachable", path,
                       e ? strerror(e) : "not found");
        goto cleanup;
    }
    buf = malloc(SHA_BLOCK);
    md = EVP_MD_CTX_new();
    if (!buf || !md) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory checksumming %s", path);
        goto cleanup;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: libcrypto could not start a SHA-256 digest; "
                       "check the OpenSSL installation", path);
        goto cleanup;
    }
    while ((got = VSIFReadL(buf, 1, SHA_BLOCK, f)) > 0) {
        if (EVP_DigestUpdate(md, buf, got) != 1) {
            st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: libcrypto SHA-256 update failed", path);
            goto cleanup;
        }
    }
    if (!VSIFEofL(f)) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "reading %s to checksum it failed: %s; check that it is "
                       "complete and reachable (a failing disk or a broken mount?)", path,
                       e ? strerror(e) : "read error");
        goto cleanup;
    }
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: libcrypto SHA-256 finalisation failed", path);
        goto cleanup;
    }
    for (i = 0; i < dlen; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
cleanup:
    if (f)
        VSIFCloseL(f);
    EVP_MD_CTX_free(md);
    free(buf);
    return st;
}
