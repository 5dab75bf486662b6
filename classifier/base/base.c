/* base.c -- error context, checked allocation, clock. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cnp_ctx_clear(cnp_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->status = CNP_OK;
    ctx->msg[0] = '\0';
}

cnp_status cnp_verror(cnp_ctx *ctx, cnp_status st, const char *fmt, va_list ap)
{
    if (!ctx || ctx->status != CNP_OK)
        return st;
    ctx->status = st;
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    return st;
}

cnp_status cnp_error(cnp_ctx *ctx, cnp_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnp_verror(ctx, st, fmt, ap);
    va_end(ap);
    return st;
}

const char *cnp_status_name(cnp_status st)
{
    switch (st) {
    case CNP_OK: return "ok";
    case CNP_ERR_USAGE: return "usage error";
    case CNP_ERR_IO: return "I/O error";
    case CNP_ERR_FORMAT: return "format error";
    case CNP_ERR_UNSUPPORTED: return "unsupported";
    case CNP_ERR_SHAPE: return "shape error";
    case CNP_ERR_NOMEM: return "out of memory";
    case CNP_ERR_CANCELLED: return "cancelled";
    case CNP_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

const char *cnp_status_code(cnp_status st)
{
    switch (st) {
    case CNP_OK: return "ok";
    case CNP_ERR_USAGE: return "usage";
    case CNP_ERR_IO: return "io";
    case CNP_ERR_FORMAT: return "format";
    case CNP_ERR_UNSUPPORTED: return "unsupported";
    case CNP_ERR_SHAPE: return "shape";
    case CNP_ERR_NOMEM: return "nomem";
    case CNP_ERR_CANCELLED: return "cancelled";
    case CNP_ERR_INTERNAL: return "internal";
    }
    return "internal";
}

const char *cnp_version(void)
{
    return PACKAGE_VERSION;
}

int cnp_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

void *cnp_calloc(cnp_ctx *ctx, size_t n, size_t size, const char *what)
{
    size_t bytes;
    void *p = NULL;
    if (cnp_mul_size(n, size, &bytes))
        p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory allocating %s (%zu x %zu bytes)",
                  what, n, size);
    return p;
}

void *cnp_aligned_alloc(cnp_ctx *ctx, size_t n, size_t size, const char *what)
{
    size_t bytes;
    void *p = NULL;
    if (cnp_mul_size(n, size, &bytes)) {
        bytes = (bytes + 63) & ~(size_t)63;
        if (bytes == 0)
            bytes = 64;
        if (posix_memalign(&p, 64, bytes) != 0)
            p = NULL;
        else
            memset(p, 0, bytes);
    }
    if (!p)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory allocating %s (%zu x %zu bytes)",
                  what, n, size);
    return p;
}

void cnp_aligned_free(void *p)
{
    free(p);
}

char *cnp_strdup(cnp_ctx *ctx, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory copying a string");
    return d;
}

double cnp_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
