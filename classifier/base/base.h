/* base.h -- status codes, error context, checked allocation, progress.
 *
 * Every fallible function in libcanopy returns a cnp_status and leaves
 * a human-readable message (file, what is wrong, what to do) in a cnp_ctx
 * owned by the caller. The library never prints and never exits.
 */
#ifndef CNP_BASE_H
#define CNP_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CNP_OK = 0,
    CNP_ERR_USAGE,       /* bad argument or parameter from the caller */
    CNP_ERR_IO,          /* a file could not be opened, read or written */
    CNP_ERR_FORMAT,      /* a file is malformed, truncated or inconsistent */
    CNP_ERR_UNSUPPORTED, /* well-formed, but canopy does not handle it */
    CNP_ERR_SHAPE,       /* tensor or raster dimensions that do not fit */
    CNP_ERR_NOMEM,       /* allocation failed or a size overflowed */
    CNP_ERR_CANCELLED,   /* the progress callback asked to stop */
    CNP_ERR_INTERNAL     /* a check of canopy's own (e.g. BLAS self-test) */
} cnp_status;

#define CNP_MSG_MAX 2048

/* Error context: the first error wins until cnp_ctx_clear(). Caller-owned,
 * usually on the stack; one per thread. */
typedef struct cnp_ctx {
    cnp_status status;
    char msg[CNP_MSG_MAX];
} cnp_ctx;

void cnp_ctx_clear(cnp_ctx *ctx);

/* Records an error (printf-style message) unless one is already recorded,
 * and returns `st` so that `return cnp_error(ctx, CNP_ERR_IO, ...)` reads
 * naturally. ctx may be NULL. */
cnp_status cnp_error(cnp_ctx *ctx, cnp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
cnp_status cnp_verror(cnp_ctx *ctx, cnp_status st, const char *fmt, va_list ap);

/* Name of a status ("format error", ...). Static string. */
const char *cnp_status_name(cnp_status st);

/* a * b into *out; returns 0 on overflow (then *out is unspecified). */
int cnp_mul_size(size_t a, size_t b, size_t *out);

/* calloc(n, size) with overflow check; on failure records CNP_ERR_NOMEM
 * naming `what` and returns NULL. The caller frees the result with free(). */
void *cnp_calloc(cnp_ctx *ctx, size_t n, size_t size, const char *what);

/* 64-byte aligned, zeroed allocation of n * size bytes, overflow-checked;
 * free with cnp_aligned_free(). NULL (and CNP_ERR_NOMEM) on failure. */
void *cnp_aligned_alloc(cnp_ctx *ctx, size_t n, size_t size, const char *what);
void cnp_aligned_free(void *p);

/* strdup that records CNP_ERR_NOMEM; caller frees. */
char *cnp_strdup(cnp_ctx *ctx, const char *s);

/* Progress callback, GDAL's shape (GDALProgressFunc-compatible): `done` in
 * [0,1]; returns 0 to cancel. Called from one thread only. */
typedef int (*cnp_progress_fn)(double done, const char *msg, void *user);

/* Monotonic clock in seconds. */
double cnp_now(void);

#endif
