/* files.c -- SHA-256 checksums of files (libcrypto EVP, streamed). The
 * writers create their files with base's atomic writer (base.h,
 * cnp_atomic_*). */
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
