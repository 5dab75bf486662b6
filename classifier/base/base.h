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
#include <stdio.h>

/* cnp_status, cnp_ctx, cnp_ctx_clear, cnp_status_name, cnp_status_code,
 * cnp_progress_fn, cnp_version: the public part (canopy/status.h). */
#include "canopy/status.h"

/* Records an error (printf-style message) unless one is already recorded,
 * and returns `st` so that `return cnp_error(ctx, CNP_ERR_IO, ...)` reads
 * naturally. ctx may be NULL. */
cnp_status cnp_error(cnp_ctx *ctx, cnp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
cnp_status cnp_verror(cnp_ctx *ctx, cnp_status st, const char *fmt, va_list ap);

/* a * b into *out; returns 0 on overflow (then *out is unspecified). */
int cnp_mul_size(size_t a, size_t b, size_t *out);

/* calloc(n, size) with overflow check; on failure records CNP_ERR_NOMEM
 * naming `what` and returns NULL. The caller frees the result with free(). */
void *cnp_calloc(cnp_ctx *ctx, size_t n, size_t size, const char *what);

/* 64-byte aligned, zeroed allocation of n * size bytes, overflow-checked;
 * the caller owns it and frees it with cnp_aligned_free() only (never
 * free(): a header sits in front of the block). Blocks of 1 MiB or more are
 * fresh anonymous mappings advised for transparent huge pages, zero without
 * a memset and faulted in on first touch. NULL (and CNP_ERR_NOMEM; ctx may
 * be NULL) on failure. */
void *cnp_aligned_alloc(cnp_ctx *ctx, size_t n, size_t size, const char *what);
void cnp_aligned_free(void *p);

/* On a function whose loops the compiler vectorises by itself (omp simd):
 * compile it for AVX-512, AVX2 + FMA and the x86-64 baseline, the best one
 * the CPU has chosen when the library loads (GNU ifunc, glibc). The
 * baseline alone runs such loops 128 bits wide. Empty where clones are not
 * available. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__) && defined(__GLIBC__)
#define CNP_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CNP_VECTOR_CLONES
#endif

/* strdup that records CNP_ERR_NOMEM; caller frees. */
char *cnp_strdup(cnp_ctx *ctx, const char *s);

/* An option's string value: *field (freed) replaced by a copy of v. 1, or
 * 0 with CNP_ERR_NOMEM in ctx (then *field is unchanged). */
int cnp_str_replace(cnp_ctx *ctx, char **field, const char *v);

/* The shortest decimal text (%g style, 1 to 9 significant digits) that
 * reads back as exactly v; buf holds at least 32 bytes. Returns buf. (The
 * numbers canopy writes into model metadata: thresholds, int8 ranges.) */
char *cnp_float_text(char *buf, size_t size, float v);

/* ---- files (files.c): the one atomic writer, the one reader ------------
 *
 * Every file canopy creates goes through cnp_atomic_*: it is written in a
 * private folder made with mkdtemp() in its destination folder (0700, an
 * unpredictable name, private.c), then renamed onto its final name
 * with renameat() and the folder fsync'd. A link planted at the final name
 * is replaced, never followed; nothing can be planted in the private
 * folder.
 *
 *   tmp = cnp_atomic_begin(ctx, "out/a.probs.tif");    the private folder
 *   fd = cnp_atomic_open(ctx, tmp, final)   or   GDALCreate(drv, tmp, ...)
 *   ... write, close ...
 *   cnp_atomic_commit(ctx, tmp, final)      or   cnp_atomic_discard(tmp)
 *   free(tmp);
 */

/* Makes the private folder beside final_path and returns the temporary
 * path of the file in it (caller frees; then commit or discard). NULL with
 * CNP_ERR_IO ("cannot write FINAL: why; choose a writable output folder")
 * when the folder takes no new entry, CNP_ERR_USAGE when final_path names
 * no file. */
char *cnp_atomic_begin(cnp_ctx *ctx, const char *final_path);

/* Creates tmp_path (O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0666 &
 * ~umask). The descriptor, or -1 with the error naming final_path. The
 * stdio twin returns a FILE the caller fcloses. */
int cnp_atomic_open(cnp_ctx *ctx, const char *tmp_path, const char *final_path);
FILE *cnp_atomic_fopen(cnp_ctx *ctx, const char *tmp_path, const char *final_path);

/* fsync(tmp_path), renameat onto final_path, fsync of its folder; removes
 * the private folder and anything else left in it (a GDAL driver's side
 * files) whether it succeeds or not. */
cnp_status cnp_atomic_commit(cnp_ctx *ctx, const char *tmp_path, const char *final_path);

/* What to do about a failed write, from its errno (0 when unknown, e.g. a
 * GDAL driver refusing a value): free space only for ENOSPC/EDQUOT, a
 * shorter name for ENAMETOOLONG, a writable folder for EACCES/EPERM/EROFS,
 * else the creation options and the output folder. A static string. */
const char *cnp_write_advice(int err);

/* fsync(fd); 0 or errno. A folder (is_dir) on a file system that cannot
 * sync folders (EINVAL, EROFS) counts as synced. */
int cnp_sync_fd(int fd, int is_dir);

/* Removes the private folder of tmp_path and all in it. NULL: no-op. */
void cnp_atomic_discard(const char *tmp_path);

/* The whole of data[size] as final_path, atomically. */
cnp_status cnp_atomic_write(cnp_ctx *ctx, const char *final_path, const void *data, size_t size);

/* Whether the folder of `path` lets us create files, checked before a long
 * run rather than after it: CNP_OK, or CNP_ERR_IO ("PATH: cannot write WHAT
 * there (why); choose a writable folder"). */
cnp_status cnp_check_writable(cnp_ctx *ctx, const char *what, const char *path);

/* ---- private folders (private.c) ----------------------------------------
 *
 * A private folder is made by mkdtemp() inside an output folder (mode 0700,
 * ".canopy-HOSTBOOT-PID-START-XXXXXX": its name records the process that
 * made it), so that a later run can prove it is canopy's and that its maker
 * is gone. */

/* Makes a private folder in dir; the path (caller frees) or NULL with the
 * error in ctx ("cannot write WHAT: why; advice"). */
char *cnp_private_dir_new(cnp_ctx *ctx, const char *dir, const char *what);

/* Removes a private folder and all in it (folders a few levels deep),
 * never following a link. A path whose last part is not a private
 * folder's name is left alone. NULL: no-op. */
void cnp_private_dir_remove(const char *path);

/* Removes the private folders in dir whose makers are gone (killed, the
 * machine restarted; another host's after a week); the number removed.
 * Folders that are not provably canopy's (another owner, other modes, a
 * name not of that form, a link) are left alone. */
int cnp_private_dirs_clean(const char *dir);

/* Reads a whole file (at most max_size bytes, else CNP_ERR_FORMAT) into a
 * malloc'd, NUL-terminated buffer the caller frees; *size excludes the NUL.
 * Errors name the file. CNP_FILE_MAX: what canopy reads whole at most
 * (ONNX files are limited to 2 GB by protobuf). */
#define CNP_FILE_MAX ((size_t)2 << 30)
cnp_status cnp_file_read(cnp_ctx *ctx, const char *path, size_t max_size, char **data,
                         size_t *size);

/* Monotonic clock in seconds. */
double cnp_now(void);

/* Command-line numbers: s as a whole number in [lo, hi] (cnp_parse_int) or
 * a finite number in [lo, hi] (cnp_parse_double) into *out. 1 on success;
 * 0 with CNP_ERR_USAGE in ctx naming the option `opt` otherwise (then *out
 * is unchanged). */
int cnp_parse_int(cnp_ctx *ctx, const char *opt, const char *s, int lo, int hi, int *out);
int cnp_parse_double(cnp_ctx *ctx, const char *opt, const char *s, double lo, double hi,
                     double *out);
/* --precision's value (cnp_precision_parse), with the same contract. */
int cnp_parse_precision(cnp_ctx *ctx, const char *s, cnp_precision *out);

#endif
