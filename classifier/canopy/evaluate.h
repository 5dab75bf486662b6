/* canopy/evaluate.h -- a model on labelled chips (the Kaggle train_v2.csv
 * layout) -> sample-averaged F2, per-label precision, recall and F2,
 * optionally with test-time augmentation and per-label thresholds optimised
 * on (part of) the chips, written into a copy of the model (`canopy
 * evaluate`), GDAL-utility style:
 *
 *   o = cnp_evaluate_options_new(argc, argv, &ctx);    (or set fields)
 *   cnp_evaluate(o, progress, user, &r);   r->f2, r->scores[l].recall, ...
 *   cnp_evaluate_result_free(r); cnp_evaluate_options_free(o);
 */
#ifndef CNP_EVALUATE_H
#define CNP_EVALUATE_H

#include "canopy/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Owned by the options (malloc'd strings). */
typedef struct cnp_evaluate_options {
    char *model;               /* -m (NULL: the caller picks) */
    char *labels;              /* --labels CSV */
    char *images;              /* --images DIR: DIR/NAME.EXT per row */
    char *ext;                 /* --ext ("jpg") */
    char *write_model;         /* --write-model OUT.onnx (needs optimize) */
    char *report;              /* --report REPORT.json */
    double split;              /* --split F: held-out fraction (0: none) */
    unsigned long long seed;   /* --seed */
    int tta;                   /* --tta */
    int optimize;              /* --optimize-thresholds */
    int threads;               /* --threads (<= 0: all cores) */
    int batch;                 /* --batch (16) */
    cnp_precision precision;   /* --precision (fp32) */
    int no_bf16, no_int8;      /* run fp32 even where bf16 (int8) could run (the CLI:
                                  the environment's CANOPY_NO_BF16, CANOPY_NO_INT8,
                                  for tests) */
    int quiet;                 /* -q (the program's business) */
    int help;                  /* -h/--help given: nothing else parsed */
} cnp_evaluate_options;

/* Defaults, then argv as `canopy evaluate` parses it (options only). NULL
 * with CNP_ERR_USAGE in ctx on a bad option or a missing --labels/--images.
 * The caller frees the options with cnp_evaluate_options_free(). */
CNP_API cnp_evaluate_options *cnp_evaluate_options_new(int argc, char **argv, cnp_ctx *ctx);
CNP_API void cnp_evaluate_options_free(cnp_evaluate_options *o);

/* Scores of one label (scikit-learn's average=None, zero_division 0). */
typedef struct cnp_label_score {
    int support, predicted, tp;
    double precision, recall, f2;
} cnp_label_score;

/* What cnp_evaluate() did; the caller frees it with
 * cnp_evaluate_result_free(). Arrays are (n_labels). */
typedef struct cnp_evaluate_result {
    cnp_status status;
    char *message;             /* the error ("" when ok) */
    char *model_name, *model_version;
    const char *precision;     /* "fp32", "bf16" or "int8": what ran (static) */
    int thresholds_defaulted;  /* the model file gives no thresholds (0.2) */
    int n_labels;
    char **labels;
    float *thresholds;         /* the model's */
    /* the label file */
    int rows, records, duplicates, duplicates_conflicting, duplicate_line;
    long unknown_tags;
    int unknown_rows, n_unknown_names;
    char **unknown_names;      /* (n_unknown_names) */
    long *unknown_counts;      /* (n_unknown_names) */
    /* the chips */
    long listed, missing, unreadable, n;
    char *first_missing;       /* the first name without an image, or NULL */
    /* scores at the model's thresholds */
    double f2, precision_samples, recall_samples;
    cnp_label_score *scores;
    double f2_tta, precision_samples_tta, recall_samples_tta;  /* with tta */
    cnp_label_score *scores_tta;                                /* with tta */
    /* with optimize */
    int passes, n_fit, n_heldout;
    double f2_before, f2_after, f2_heldout_before, f2_heldout_after;
    float *thresholds_after;
    cnp_label_score *scores_after; /* on the held-out chips, or the fitted ones */
    char *thresholds_json;     /* canopy.thresholds as written with write_model */
    double seconds;
} cnp_evaluate_result;

CNP_API void cnp_evaluate_result_free(cnp_evaluate_result *r);

/* Reads the labels, finds the images, runs the model over them (batches
 * read in parallel), scores, optimises, writes --write-model and --report
 * (atomically). messages (may be NULL) receives the warnings meant for
 * people as they arise (repeated names, unknown tags, missing images, a
 * chip that cannot be read); progress gets the share of chips done after
 * each batch with msg "N of M chips" (first with 0 and "scoring M chips
 * with MODEL"); 0 cancels. *out is always set (NULL only when out of
 * memory). */
typedef void (*cnp_message_fn)(const char *message, void *user);

CNP_API cnp_status cnp_evaluate(const cnp_evaluate_options *o, cnp_progress_fn progress,
                                cnp_message_fn messages, void *user, cnp_evaluate_result **out);

#ifdef __cplusplus
}
#endif

#endif
