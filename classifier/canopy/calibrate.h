/* canopy/calibrate.h -- int8 calibration (`canopy calibrate`): a model run
 * in fp32 over sample chips while the range of every activation a
 * convolution reads is recorded; a copy of the model is then written with
 * those ranges in its canopy.int8 metadata (every other byte unchanged),
 * which `--precision int8` quantises with. GDAL-utility style:
 *
 *   o = cnp_calibrate_options_new(argc, argv, &ctx);   (or set fields)
 *   cnp_calibrate(o, progress, user, &r);   r->n chips, r->int8_json
 *   cnp_calibrate_result_free(r); cnp_calibrate_options_free(o);
 */
#ifndef CNP_CALIBRATE_H
#define CNP_CALIBRATE_H

#include "canopy/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CNP_CALIBRATE_DEFAULT_BATCH 16
#define CNP_CALIBRATE_MAX_BATCH 4096

/* Owned by the options (malloc'd; lists NULL-terminated). */
typedef struct cnp_calibrate_options {
    char *model;               /* MODEL.onnx: the first argument, or -m */
    char *write_model;         /* --write-model OUT.onnx (required; not the model) */
    char **inputs;             /* chip files and @LIST files (one path a line) */
    int threads;               /* --threads (<= 0: all cores) */
    int batch;                 /* --batch (16) */
    long max_chips;            /* --max-chips: at most this many chips, spread evenly
                                  over the list in its order (0: all) */
    int quiet;                 /* -q (the program's business) */
    int help;                  /* -h/--help given: nothing else parsed */
} cnp_calibrate_options;

/* Defaults, then argv as `canopy calibrate` parses it (options, the model,
 * the chips). NULL with CNP_ERR_USAGE in ctx on a bad option, no model, no
 * --write-model or no chip; the caller frees the options with
 * cnp_calibrate_options_free(). */
CNP_API cnp_calibrate_options *cnp_calibrate_options_new(int argc, char **argv, cnp_ctx *ctx);
CNP_API void cnp_calibrate_options_free(cnp_calibrate_options *o);

/* What cnp_calibrate() did; the caller frees it with
 * cnp_calibrate_result_free(). */
typedef struct cnp_calibrate_result {
    cnp_status status;         /* CNP_OK when the model was written (chips may have
                                  failed: n_failed) */
    char *message;             /* the error when status is not CNP_OK, else "" (also
                                  "" when no chip was listed because every @LIST
                                  failed: `errors` says why) */
    long listed;               /* chips listed (arguments, @LISTs read) */
    long selected;             /* of those, run (all, or --max-chips of them) */
    long n;                    /* chips observed: the canopy.int8 "chips" */
    long n_failed;             /* chips or lists that could not be read */
    char **errors;             /* (n_failed) their messages, in order */
    int n_conv;                /* convolutions of the model (after fusion) */
    int n_tensors;             /* activations with a range (several convolutions
                                  may read one) */
    char *int8_json;           /* the canopy.int8 value written, or NULL */
    double seconds;            /* the whole call */
} cnp_calibrate_result;

CNP_API void cnp_calibrate_result_free(cnp_calibrate_result *r);

/* Checks that write_model is not the model and that its folder is
 * writable, loads the model, reads the chips (batches read in parallel, as
 * cnp_predict() reads them), runs them in fp32 observing every
 * convolution's input, and writes the copy of the model (atomically: the
 * old file, if any, stays whole until the new one is complete). progress
 * gets 0 with "calibrating on N chips with MODEL" first, then the share of
 * chips done after each batch with "N of M chips"; 0 cancels
 * (CNP_ERR_CANCELLED, nothing written). CNP_ERR_USAGE when write_model is
 * the model itself; CNP_ERR_IO when no chip could be read. *out is always
 * set (NULL only when out of memory). */
CNP_API cnp_status cnp_calibrate(const cnp_calibrate_options *o, cnp_progress_fn progress,
                                 void *user, cnp_calibrate_result **out);

#ifdef __cplusplus
}
#endif

#endif
