/* canopy/status.h -- status codes, the error context, the progress callback
 * and the library version: what every libcanopy call shares.
 *
 * Every fallible function returns a cnp_status and leaves a human-readable
 * message (file, what is wrong, what to do) in a cnp_ctx owned by the
 * caller. The library never prints and never exits.
 */
#ifndef CNP_STATUS_H
#define CNP_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the installed library: only what carries CNP_API is exported. */
#if defined(CNP_BUILDING_LIBRARY) && defined(__GNUC__)
#define CNP_API __attribute__((visibility("default")))
#else
#define CNP_API
#endif

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

CNP_API void cnp_ctx_clear(cnp_ctx *ctx);

/* Name of a status for people ("format error", ...). Static string. */
CNP_API const char *cnp_status_name(cnp_status st);

/* Short code of a status for programs, as in the JSONL events: "ok", "usage",
 * "io", "format", "unsupported", "shape", "nomem", "cancelled", "internal".
 * Static string. */
CNP_API const char *cnp_status_code(cnp_status st);

/* Progress callback, GDAL's shape (GDALProgressFunc-compatible): `done` in
 * [0,1]; `msg` may be NULL; returns 0 to cancel. Called from the thread
 * that called the library function, never from a worker. */
typedef int (*cnp_progress_fn)(double done, const char *msg, void *user);

/* What the convolutions compute in (--precision). Each falls back to fp32
 * where the CPU lacks its instructions; the result objects say what ran. */
typedef enum cnp_precision {
    CNP_PRECISION_FP32 = 0,
    CNP_PRECISION_BF16 = 1,   /* AVX512_BF16: bf16 operands, fp32 sums */
    CNP_PRECISION_INT8 = 2    /* AVX512_VNNI: int8 weights, u8 activations with the
                                 ranges `canopy calibrate` wrote into the model */
} cnp_precision;

/* Parses "fp32", "bf16" or "int8"; 0 when s is none of them. */
CNP_API int cnp_precision_parse(const char *s, cnp_precision *out);
/* "fp32", "bf16" or "int8". Static string. */
CNP_API const char *cnp_precision_name(cnp_precision p);

/* The library's version, e.g. "0.1.0". Static string. */
CNP_API const char *cnp_version(void);

#ifdef __cplusplus
}
#endif

#endif
