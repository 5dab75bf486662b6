/* batcher.h -- the one chip batcher: chips through the model in passes of
 * at most max_batch, for classify (strips of a scene), predict and evaluate
 * (chip files read in parallel). Not part of the installed API. */
#ifndef CNP_BATCHER_H
#define CNP_BATCHER_H

#include "base/base.h"
#include "engine/engine.h"
#include "scene/scene.h"

/* A model prepared for max_batch chips (and CNP_PREPARE_TTA when tta is
 * used). Borrowed. */
typedef struct cnp_batcher {
    cnp_model *model;
    int max_batch;
    int n_labels;
    double infer_s;            /* seconds in forward passes so far */
} cnp_batcher;

void cnp_batcher_init(cnp_batcher *b, cnp_model *model, int max_batch);

/* The chip-reading spec a model asks for: its bands, input size, scale,
 * mean and std (borrowed from meta; valid while the model lives). */
void cnp_batcher_chip_spec(cnp_chip_spec *spec, const cnp_model_meta *meta);

/* n chips of input (n, C, S, S), any n >= 0, in passes of at most
 * max_batch: probabilities (n, n_labels) into probs (plain, or the D4 TTA
 * mean with tta = 1). */
cnp_status cnp_batcher_forward(cnp_ctx *ctx, cnp_batcher *b, const float *input, int n,
                               float *probs, int tta);

/* Chip files through the model. paths[i] NULL: not there (skipped, not
 * counted). Each batch of up to max_batch paths is read by `threads`
 * threads at once (cnp_chip_read, spec), then classified; on_chip is then
 * called for each chip of the batch, in order, with its probabilities
 * (plain when want_plain, TTA when want_tta; the other NULL), or with
 * probs NULL and the read error in err. progress (may be NULL) gets the
 * share of paths done after each batch; 0 cancels (CNP_ERR_CANCELLED). */
typedef void (*cnp_chip_fn)(void *user, long i, const float *probs, const float *probs_tta,
                            const cnp_ctx *err);

typedef struct cnp_chip_job {
    const cnp_chip_spec *spec;
    const char *const *paths;  /* (n) */
    long n;
    int threads;
    int want_plain, want_tta;
    cnp_chip_fn on_chip;
    void *user;
    cnp_progress_fn progress;
    void *progress_user;
} cnp_chip_job;

cnp_status cnp_batcher_chips(cnp_ctx *ctx, cnp_batcher *b, const cnp_chip_job *job);

/* The chip files that command-line inputs name, as predict and calibrate
 * take them: each input a chip file, or @LIST (one path a line, read by
 * cnp_list_file_read). Paths are appended to *paths (CSL) in order; the
 * message of each list that cannot be read to *errors (CSL), counted in
 * *n_failed. */
void cnp_chip_inputs_expand(char *const *inputs, char ***paths, char ***errors, long *n_failed);

#endif
