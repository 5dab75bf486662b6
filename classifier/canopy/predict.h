/* canopy/predict.h -- image chips (any raster GDAL reads) -> per-label
 * probabilities and tags (`canopy predict`), GDAL-utility style:
 *
 *   o = cnp_predict_options_new(argc, argv, &ctx);   (or set fields)
 *   cnp_predict(o, progress, user, &r);
 *   for (i = 0; i < r->n; i++) r->names[i], r->probs + i * r->n_labels
 *   cnp_predict_result_free(r); cnp_predict_options_free(o);
 */
#ifndef CNP_PREDICT_H
#define CNP_PREDICT_H

#include "canopy/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CNP_PREDICT_DEFAULT_BATCH 16
#define CNP_PREDICT_MAX_BATCH 4096

/* Owned by the options (malloc'd; lists NULL-terminated). */
typedef struct cnp_predict_options {
    char *model;               /* -m (NULL: the caller picks) */
    char **inputs;             /* chip files and @LIST files (one path a line) */
    int probs;                 /* --probs: the CLI prints probabilities, not tags */
    int tta;                   /* --tta */
    int threads;               /* --threads (<= 0: all cores) */
    int batch;                 /* --batch (16) */
    cnp_precision precision;   /* --precision (fp32) */
    int no_bf16, no_int8;      /* run fp32 even where bf16 (int8) could run (the CLI:
                                  the environment's CANOPY_NO_BF16, CANOPY_NO_INT8,
                                  for tests) */
    int help;                  /* -h/--help given: nothing else parsed */
} cnp_predict_options;

/* Defaults, then argv as `canopy predict` parses it (options and inputs
 * only). NULL with CNP_ERR_USAGE in ctx on a bad option or no input; the
 * caller frees the options with cnp_predict_options_free(). */
CNP_API cnp_predict_options *cnp_predict_options_new(int argc, char **argv, cnp_ctx *ctx);
CNP_API void cnp_predict_options_free(cnp_predict_options *o);

/* What cnp_predict() did; the caller frees it with cnp_predict_result_free(). */
typedef struct cnp_predict_result {
    cnp_status status;         /* CNP_OK when the model ran (chips may have failed) */
    char *message;             /* the error when status is not CNP_OK, else "" (also
                                  "" when no chip was listed because every @LIST
                                  failed: `errors` says why) */
    int n_labels;
    char **labels;             /* (n_labels) */
    float *thresholds;         /* (n_labels) the model's */
    const char *precision;     /* "fp32", "bf16" or "int8": what ran (static) */
    long n;                    /* chips classified, in input order */
    char **names;              /* (n) image name: base name without extension */
    float *probs;              /* (n, n_labels) */
    long n_failed;             /* chips or lists that could not be read */
    char **errors;             /* (n_failed) their messages, in order */
} cnp_predict_result;

CNP_API void cnp_predict_result_free(cnp_predict_result *r);

/* Reads the chips (batches read in parallel), classifies them; progress
 * gets the share done after each batch, 0 cancels (CNP_ERR_CANCELLED).
 * *out is always set (NULL only when out of memory). */
CNP_API cnp_status cnp_predict(const cnp_predict_options *o, cnp_progress_fn progress,
                               void *user, cnp_predict_result **out);

#ifdef __cplusplus
}
#endif

#endif
