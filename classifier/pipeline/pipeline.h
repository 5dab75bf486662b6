/* pipeline.h -- the scene pipeline's internals (public API: canopy/classify.h):
 * options.c (options, argv), scenes.c (scene lists, output folder),
 * model.c (the prepared model), outputs.c (a scene's output files),
 * classify.c (the scene flow, step by step), result.c (result objects). */
#ifndef CNP_PIPELINE_H
#define CNP_PIPELINE_H

#include "base/base.h"
#include "canopy/classify.h"
#include "engine/engine.h"
#include "pipeline/batcher.h"

/* Most chips per forward pass (and per strip segment). */
#define CNP_CLASSIFY_MAX_BATCH 32

cnp_classify_options *cnp_classify_options_defaults(cnp_ctx *ctx);

/* The cnp_model_prepare() flags for precision p: CNP_PREPARE_BF16 where
 * the CPU runs it and no_bf16 is 0; CNP_PREPARE_INT8 when no_int8 is 0 (the
 * engine falls back to fp32 on a CPU without VNNI, and refuses a model
 * without canopy.int8 on any CPU); else none (fp32). */
unsigned cnp_precision_flags(cnp_precision p, int no_bf16, int no_int8);

struct cnp_classify_model {
    const cnp_classify_options *o;
    cnp_model *model;
    cnp_model_meta *meta;          /* the model's, overrides applied */
    char sha256[65];
    double offset, scale;          /* raw value v -> (v - offset) * scale */
    int bands[CNP_CLASSIFY_MAX_CHANNELS];
    int threads;                   /* resolved (>= 1) */
    cnp_batcher batcher;           /* the model in passes of CNP_CLASSIFY_MAX_BATCH */
    float *batch_probs;            /* (CNP_CLASSIFY_MAX_BATCH, n_labels) */
    char **names;                  /* CSL: scene names classified so far */
    char **name_paths;             /* CSL: their paths, same order */
};

/* Every output a scene may have: the final files and the split folder, in
 * the output folder dir (or, staged, in the scene's private folder). */
typedef struct cnp_scene_outputs {
    char *probs, *probs_qml, *masks, *masks_qml, *markers, *manifest, *split_dir;
    char *quicklook, *quicklook_pgw, *quicklook_aux, *stac, *alerts;
    char *dir;
} cnp_scene_outputs;

cnp_status cnp_scene_outputs_init(cnp_ctx *ctx, const char *dir, const char *name,
                                  cnp_scene_outputs *w);
void cnp_scene_outputs_free(cnp_scene_outputs *w);

/* CNP_ERR_IO when the split folder (NAME.masks) is a link or not a folder:
 * canopy never writes through it. */
cnp_status cnp_scene_outputs_check_split(cnp_ctx *ctx, const cnp_scene_outputs *w);

/* Removes the outputs the scene's manifest lists (only the scene's own
 * output names, regular files, no link followed), except the relative
 * names in keep; with keep NULL also the manifest, last (a failed scene
 * leaves none of its outputs). */
void cnp_scene_outputs_remove_listed(const cnp_scene_outputs *w, const char *const *keep);

/* Moves a finished scene into place: staged (NULL-terminated paths in the
 * scene's private folder `stage`, the manifest last) renamed onto w's
 * names, after the previous run's outputs that are not replaced are
 * removed; the folder synced. On failure the files already moved are
 * removed again and ctx says why. */
cnp_status cnp_scene_outputs_commit(cnp_ctx *ctx, const cnp_scene_outputs *w,
                                    const char *stage, const char *const *staged);

/* The files in the split folder (sorted, full paths) appended to *list (CSL). */
void cnp_scene_outputs_list_split(const char *dir, char ***list);

/* Appends the entries of a list file (an @LIST argument: one path a line;
 * blank lines, lines starting with '#', surrounding blanks, CR and a UTF-8
 * byte order mark ignored) to *out (CSL), *n of them. Errors name the file
 * and `what` ("scenes", "chips"). */
cnp_status cnp_list_file_read(cnp_ctx *ctx, const char *list, const char *what, char ***out,
                              int *n);

/* A new result for path (status CNP_OK, nothing counted), or NULL. */
cnp_classify_result *cnp_classify_result_new(const char *path);
/* Appends an output (copies); 0 when out of memory. */
int cnp_classify_result_add_output(cnp_classify_result *r, const char *kind, const char *path);

#endif
