/* eval.h -- what `canopy evaluate` needs besides the engine: the Kaggle
 * label file (train_v2.csv: image_name,tags), multi-label metrics
 * (sample-averaged F2, per-label precision/recall/F2), per-label threshold
 * optimisation, a seeded train/held-out split, and the rewrite of an ONNX
 * file's canopy.thresholds metadata at the protobuf wire level.
 *
 * Knows nothing of GDAL and does not run models: callers hand in truth
 * (0/1 bytes) and probabilities (floats) as (n, n_labels) row-major arrays.
 *
 * Decision rule: a label is predicted when prob >= threshold (as the mask
 * writer does).
 *
 * Zero-division convention (the one of scikit-learn 1.2, Debian bookworm,
 * with fbeta_score's default zero_division="warn", which scores 0):
 *   - a chip's F2 is 0 when it has no true positive, including a chip with
 *     no true and no predicted label;
 *   - a label's precision is 0 when it is never predicted, its recall 0 when
 *     it never occurs, and its F2 0 when precision and recall are both 0.
 * Sample-averaged F2 is the mean of the chips' F2 (sklearn's
 * fbeta_score(beta=2, average="samples")).
 */
#ifndef CNP_EVAL_H
#define CNP_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

/* ---- the label file ---------------------------------------------------- */

/* A Kaggle label file read against a model's label list. Rows keep the
 * file's order. Owned by the caller: free with cnp_label_table_free(). */
typedef struct cnp_label_table {
    int n_labels;           /* the model's labels (copied) */
    char **labels;          /* (n_labels) */
    int n_rows;             /* rows kept: one per distinct image name */
    char **names;           /* (n_rows) image names */
    int *lines;             /* (n_rows) 1-based line of each row in the file */
    unsigned char *truth;   /* (n_rows, n_labels) 1 where the row has the tag */

    /* What was read but not used (reported, not fatal): */
    int n_records;          /* data records in the file (header excluded) */
    int n_duplicates;       /* records naming an image seen earlier: dropped */
    int n_duplicates_conflicting; /* of those, with a different tag set */
    int duplicate_line;     /* line of the first dropped duplicate, or 0 */
    int n_unknown_rows;     /* rows with a tag not among the labels */
    long n_unknown_tags;    /* such tag occurrences (ignored) */
    int n_unknown_names;    /* distinct unknown tags, first-seen order */
    char **unknown_names;   /* (n_unknown_names) */
    long *unknown_counts;   /* (n_unknown_names) occurrences of each */
} cnp_label_table;

/* Reads a label file in the Kaggle layout: a header `image_name,tags`, then
 * one record per image, tags separated by spaces. Tolerates a UTF-8 BOM,
 * CRLF or CR line ends, blank lines, no final newline, RFC 4180 quoted
 * fields ("a ""b""", commas and line breaks inside quotes), spaces around
 * unquoted fields and repeated spaces between tags. Tags are matched
 * exactly against labels[0..n_labels-1]; unknown tags are counted and
 * ignored; a repeated image name keeps the first record.
 *
 * A malformed file (no header, a record without exactly two fields, an
 * empty image name, an unterminated quote, a NUL byte, no data records) is
 * CNP_ERR_FORMAT with "PATH:LINE: what is wrong" in ctx. On success *out is
 * a new table the caller frees with cnp_label_table_free(); on failure NULL. */
cnp_status cnp_label_table_read(cnp_ctx *ctx, const char *path, const char *const *labels,
                                int n_labels, cnp_label_table **out);

/* Same from bytes in memory (the fuzz target and tests); `name` is used in
 * messages. The bytes are not kept. */
cnp_status cnp_label_table_parse(cnp_ctx *ctx, const char *data, size_t size, const char *name,
                                 const char *const *labels, int n_labels, cnp_label_table **out);

void cnp_label_table_free(cnp_label_table *t);

/* ---- metrics ----------------------------------------------------------- */

/* Everywhere below: truth (n, n_labels) 0/1, probs (n, n_labels),
 * thresholds (n_labels), and `rows` selects which of the n samples count
 * (n_rows indices, each in 0..n-1); rows == NULL means samples 0..n_rows-1. */

/* Sample-averaged scores (sklearn average="samples"): the mean over the
 * selected chips of each chip's precision, recall and F2. */
typedef struct cnp_sample_scores {
    double f2;
    double precision;
    double recall;
} cnp_sample_scores;

/* Scores of one label over the selected chips (sklearn average=None). */
typedef struct cnp_label_metrics {
    int support;        /* chips that have the label */
    int predicted;      /* chips predicted positive */
    int tp;             /* both */
    double precision;   /* tp / predicted, 0 when never predicted */
    double recall;      /* tp / support, 0 when support is 0 */
    double f2;          /* 5 p r / (4 p + r), 0 when p = r = 0 */
} cnp_label_metrics;

/* F2 of one chip from its counts (0 when tp == 0). */
double cnp_f2_counts(int tp, int fp, int fn);

/* Sample-averaged scores; all 0 when n_rows == 0. */
cnp_sample_scores cnp_scores_samples(const unsigned char *truth, const float *probs, int n_labels,
                                     const float *thresholds, const int *rows, int n_rows);

/* Per-label scores into out (n_labels), owned by the caller. */
void cnp_scores_labels(const unsigned char *truth, const float *probs, int n_labels,
                       const float *thresholds, const int *rows, int n_rows,
                       cnp_label_metrics *out);

/* ---- threshold optimisation -------------------------------------------- */

/* The candidate thresholds lo, lo+step, ..., <= hi (at most 100000 of them),
 * coordinate ascent for at most max_passes passes over the labels. */
typedef struct cnp_threshold_grid {
    double lo, hi, step;
    int max_passes;
} cnp_threshold_grid;

/* 0.01 .. 0.99 step 0.01, up to 10 passes. */
#define CNP_THRESHOLD_GRID_DEFAULT { 0.01, 0.99, 0.01, 10 }

/* The chips thresholds are fitted on (arrays as above, the caller's). */
typedef struct cnp_threshold_data {
    const unsigned char *truth;  /* (n, n_labels) */
    const float *probs;          /* (n, n_labels) */
    int n_labels;
    const int *rows;             /* (n_rows) selected samples, or NULL: 0..n_rows-1 */
    int n_rows;
} cnp_threshold_data;

/* What an optimisation did. */
typedef struct cnp_threshold_result {
    double f2_before;            /* sample-averaged F2 at the starting thresholds */
    double f2_after;             /* ... at the result */
    int n_passes;                /* passes over the labels */
} cnp_threshold_result;

/* Per-label thresholds that maximise the sample-averaged F2 of the selected
 * chips: for each label in turn, every grid value is tried with the other
 * labels' thresholds fixed, and the best one is kept only if it scores
 * strictly higher than the current threshold (the earliest, i.e. lowest,
 * grid value wins ties); passes repeat until one changes nothing. The F2
 * therefore never decreases. thresholds (n_labels) is read as the starting
 * point and receives the result. res may be NULL. Needs n_rows >= 1;
 * CNP_ERR_USAGE for a bad grid, CNP_ERR_NOMEM. */
cnp_status cnp_thresholds_optimize(cnp_ctx *ctx, const cnp_threshold_data *data,
                                   const cnp_threshold_grid *grid, float *thresholds,
                                   cnp_threshold_result *res);

/* ---- seeded split ------------------------------------------------------ */

/* Splits samples 0..n-1 into a fitting set and a held-out set of
 * round(fraction * n) samples (at least 1 each), chosen by a Fisher-Yates
 * shuffle driven by a SplitMix64 generator seeded with `seed`, so the same
 * (n, fraction, seed) always gives the same split on every machine. Both
 * lists come back in ascending order, as new arrays the caller frees with
 * free(). CNP_ERR_USAGE when n < 2 or fraction is not in (0, 1). */
cnp_status cnp_split_rows(cnp_ctx *ctx, int n, double fraction, uint64_t seed,
                          int **fit, int *n_fit, int **held, int *n_held);

/* ---- model metadata ---------------------------------------------------- */

/* (cnp_float_text, the shortest text of a float that reads back exactly,
 * is in base/base.h.) */

/* The canopy.thresholds value for thresholds (n): a JSON array with each
 * value in the shortest form that reads back as the same float
 * ("[0.2,0.15,0.07]"). New string, caller frees with free(). */
char *cnp_thresholds_json(cnp_ctx *ctx, const float *thresholds, int n);

/* cnp_onnx_set_metadata_buffer() (onnx/onnx.h) from the file in_path to
 * the file out_path (which may be the same path): written to a temporary
 * file beside out_path, flushed to disk and renamed into place, so
 * out_path is either untouched or complete. */
cnp_status cnp_onnx_set_metadata(cnp_ctx *ctx, const char *in_path, const char *out_path,
                                 const char *key, const char *value);

#endif
