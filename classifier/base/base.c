/* base.c -- error context, checked allocation, clock. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE             /* MAP_ANONYMOUS, madvise */
#include "config.h"
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
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

static const char *const precision_names[] = {"fp32", "bf16", "int8"}; /* enum order */

int cnp_precision_parse(const char *s, cnp_precision *out)
{
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, precision_names[i])) {
            *out = (cnp_precision)i;
            return 1;
        }
    return 0;
}

const char *cnp_precision_name(cnp_precision p)
{
    return (unsigned)p < 3 ? precision_names[p] : "fp32";
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

/* Aligned blocks carry a 64-byte header in front of them saying how they
 * were obtained, so cnp_aligned_free() can return them the same way. */
typedef struct {
    void *base;                 /* what malloc or mmap returned */
    size_t map_len;             /* 0: from posix_memalign */
} aligned_head;

#define HEAD_BYTES ((size_t)64)
#define HUGE_PAGE ((size_t)2 << 20)
/* From this size on, blocks come straight from mmap: fresh anonymous pages
 * are already zero, so the memset (which faulted every page in up front,
 * the first batch's largest cost in a whole `canopy predict`) goes, and on
 * Linux the block is advised for transparent huge pages, so a 100 MB
 * activation slab takes ~50 page faults instead of ~25,000. */
#define MAP_MIN ((size_t)1 << 20)

static void *aligned_map(size_t bytes)
{
    size_t len = bytes + HEAD_BYTES + HUGE_PAGE;
    unsigned char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                               -1, 0);
    unsigned char *p;
    if (base == MAP_FAILED)
        return NULL;
    /* The block starts on a huge-page boundary, its header just before. */
    p = (unsigned char *)(((uintptr_t)base + HEAD_BYTES + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);   /* advice only: fine if refused */
#endif
    ((aligned_head *)(void *)(p - HEAD_BYTES))->base = base;
    ((aligned_head *)(void *)(p - HEAD_BYTES))->map_len = len;
    return p;
}

void *cnp_aligned_alloc(cnp_ctx *ctx, size_t n, size_t size, const char *what)
{
    size_t bytes;
    unsigned char *p = NULL;
    if (cnp_mul_size(n, size, &bytes) && bytes <= SIZE_MAX - HEAD_BYTES - HUGE_PAGE - 63) {
        bytes = (bytes + 63) & ~(size_t)63;
        if (bytes == 0)
            bytes = 64;
        if (bytes >= MAP_MIN) {
            p = aligned_map(bytes);
        } else {
            void *base = NULL;
            if (posix_memalign(&base, 64, bytes + HEAD_BYTES) == 0) {
                p = (unsigned char *)base + HEAD_BYTES;
                memset(p, 0, bytes);
                ((aligned_head *)base)->base = base;
                ((aligned_head *)base)->map_len = 0;
            }
        }
    }
    if (!p)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory allocating %s (%zu x %zu bytes)",
                  what, n, size);
    return p;
}

void cnp_aligned_free(void *p)
{
    aligned_head h;
    if (!p)
        return;
    h = *(aligned_head *)(void *)((unsigned char *)p - HEAD_BYTES);
    if (h.map_len)
        munmap(h.base, h.map_len);
    else
        free(h.base);
}

char *cnp_strdup(cnp_ctx *ctx, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory copying a string");
    return d;
}

int cnp_str_replace(cnp_ctx *ctx, char **field, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return !cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    free(*field);
    *field = d;
    return 1;
}

char *cnp_float_text(char *buf, size_t size, float v)
{
    int prec;
    for (prec = 1; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return buf;
}

double cnp_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
