/* canopy/classify.h -- whole georeferenced scenes -> chip-grid probabilities,
 * masks, GeoJSON markers and a run manifest, in the style of GDAL's
 * utilities (GDALTranslateOptionsNew + GDALTranslate):
 *
 *   cnp_ctx ctx;  cnp_classify_options *o;  cnp_classify_model *m;
 *   cnp_classify_result *r;
 *   o = cnp_classify_options_new(argc, argv, &ctx);     (or set fields)
 *   cnp_classify_model_load(&ctx, o, &m);
 *   cnp_classify_outdir_make(&ctx, o);
 *   cnp_classify_scene(o, m, "scene.tif", progress, user, &r);
 *   ... r->status, r->chips_classified, cnp_classify_result_output(r, "masks")
 *   cnp_classify_result_free(r); cnp_classify_model_free(m);
 *   cnp_classify_options_free(o);
 *
 * Outputs of a scene NAME (its file name without extension) in outdir:
 * NAME.probs.tif, NAME.masks.tif (+ .qml styles, NAME.masks/ with split
 * masks), NAME.markers.geojson, NAME.manifest.json. Each is written under
 * a temporary name and renamed into place when complete; a scene that fails
 * or is cancelled leaves none of them. A scene whose manifest records the
 * same inputs, model and parameters is skipped ("up to date").
 */
#ifndef CNP_CLASSIFY_H
#define CNP_CLASSIFY_H

#include "canopy/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CNP_CLASSIFY_MAX_CHANNELS 64

/* cnp_classify_options.gsd_mode */
enum {
    CNP_CLASSIFY_GSD_MODEL = 0,  /* the model's canopy.gsd_m (native without one) */
    CNP_CLASSIFY_GSD_USER = 1,   /* gsd_m below (--gsd M) */
    CNP_CLASSIFY_GSD_NATIVE = 2  /* the scene's own resolution (--gsd native) */
};

/* cnp_classify_options.format */
enum { CNP_CLASSIFY_GTIFF = 0, CNP_CLASSIFY_COG = 1 };

/* cnp_classify_options.mask_mode: the quality mask of a scene */
enum {
    CNP_CLASSIFY_MASK_AUTO = 0,  /* the product's own (Sentinel-2 SCL or cloud mask, the
                                    PlanetScope UDM2 beside the scene) */
    CNP_CLASSIFY_MASK_FILE = 1,  /* mask_file: a UDM2 or a 1-band raster, 0 = unusable */
    CNP_CLASSIFY_MASK_NONE = 2   /* none */
};
#define CNP_CLASSIFY_SCL_CLASSES 12

/* cnp_classify_options.progress (used by the canopy program only) */
enum { CNP_PROGRESS_AUTO = 0, CNP_PROGRESS_TERM = 1, CNP_PROGRESS_JSONL = 2 };

/* Options of a classify run. Made by cnp_classify_options_new() (defaults,
 * or parsed from canopy classify's command-line arguments) and freed with
 * cnp_classify_options_free(); fields may be set directly afterwards.
 * Strings and lists are owned by the options (malloc'd; lists are
 * NULL-terminated arrays of malloc'd strings, as GDAL's CSL). */
typedef struct cnp_classify_options {
    char *model;               /* -m: ONNX model path (NULL: the caller picks) */
    char *outdir;              /* -o: output folder */
    int chip;                  /* --chip: side in pixels at the model GSD (256) */
    int stride;                /* --stride: grid step (0: = chip) */
    int n_bands;               /* --bands: 0 = the model's canopy.bands */
    int bands[CNP_CLASSIFY_MAX_CHANNELS];
    int have_range;            /* --scale-range given: */
    double range_lo, range_hi; /*   v -> (v - lo) / (hi - lo) */
    int gsd_mode;              /* CNP_CLASSIFY_GSD_* */
    double gsd_m;              /* with CNP_CLASSIFY_GSD_USER */
    double min_valid;          /* --min-valid (0.5) */
    char **thresholds;         /* --threshold LABEL=P, or NULL */
    char *markers;             /* --markers: comma list, "none", NULL = the model's */
    int tta;                   /* --tta */
    int threads;               /* --threads (<= 0: all cores) */
    cnp_precision precision;   /* --precision (fp32) */
    int no_bf16, no_int8;      /* run fp32 even where bf16 (int8) could run (the CLI:
                                  the environment's CANOPY_NO_BF16, CANOPY_NO_INT8,
                                  for tests) */
    int float_probs;           /* --probs-type Float32 */
    int split_masks;           /* --split-masks */
    int format;                /* -of: CNP_CLASSIFY_GTIFF or CNP_CLASSIFY_COG */
    char **creation_options;   /* -co NAME=VALUE, or NULL; lossy ones are refused
                                  (cnp_classify_options_new) unless: */
    int lossy_probs;           /* --lossy-probs: lossy -co for the probabilities
                                  only (masks stay lossless); in the manifest */
    char **config;             /* --config KEY=VALUE: recorded in the manifest; the
                                  caller applies them (CPLSetConfigOption) */
    char **inputs;             /* scenes, folders, @lists (cnp_scene_list_new) */
    int no_quicklook;          /* --no-quicklook: no NAME.quicklook.png, NAME.stac.json */
    int record_failures;       /* --record-failures: NAME.failed.json for a failed scene */

    /* Products and quality masks: chips with less than min_valid usable
     * pixels are obscured (chips_obscured). */
    int mask_mode;             /* --mask FILE|none: CNP_CLASSIFY_MASK_* */
    char *mask_file;           /* with CNP_CLASSIFY_MASK_FILE */
    int have_scl_unusable;     /* --scl-unusable given: */
    unsigned char scl_unusable[CNP_CLASSIFY_SCL_CLASSES]; /* 1 = SCL class unusable */

    /* For the canopy program (the library ignores them). */
    int quiet;                 /* -q */
    int progress;              /* --progress / --progress=jsonl: CNP_PROGRESS_* */
    int list_only;             /* --list: expand the inputs, classify nothing */
    int help;                  /* -h / --help was given: nothing else was parsed */

    /* Monitoring (alerts over time; off while alerts_dir is NULL): after
     * its outputs, each scene is added to the alert state folder at its
     * acquisition date (see README, "Monitoring"). Parameters 0 keep the
     * state's values (defaults for a new state: 2, 0.9, 2). */
    char *alerts_dir;          /* --alerts DIR */
    char *alerts_grid;         /* --alerts-grid REF.tif: grid of a new state */
    int alerts_baseline;       /* --alerts-baseline N */
    double alerts_high;        /* --alerts-high P */
    int alerts_dismiss;        /* --alerts-dismiss M */
    char *date;                /* --date YYYY-MM-DD: for scenes whose metadata and
                                  file name give no acquisition date */

    /* Extension points: steps to come add their options here, each with a
     * default of 0/NULL meaning "off", parsed in options.c (parse_one) and
     * recorded by the step in cnp_classify_scene's flow (classify.c):
     *   quick-look + STAC:    int quicklook, int stac
     */
} cnp_classify_options;

/* Default options, then argv parsed as `canopy classify` parses it (argv
 * holds the options and inputs only, not the program or command name;
 * argc may be 0). "-h"/"--help" sets help and stops parsing. Returns new
 * options the caller frees with cnp_classify_options_free(), or NULL with
 * CNP_ERR_USAGE (or CNP_ERR_NOMEM) and a message naming the option in ctx.
 * With argc > 0, checks that -o and at least one input are given (unless
 * help is set) and resolves stride 0 to the chip; argc = 0 gives the
 * defaults, to be set field by field. */
CNP_API cnp_classify_options *cnp_classify_options_new(int argc, char **argv, cnp_ctx *ctx);
CNP_API void cnp_classify_options_free(cnp_classify_options *o);

/* Setters for the strings and lists (copies; CNP_ERR_NOMEM on failure). */
CNP_API cnp_status cnp_classify_options_set_model(cnp_ctx *ctx, cnp_classify_options *o,
                                                  const char *path);
CNP_API cnp_status cnp_classify_options_set_outdir(cnp_ctx *ctx, cnp_classify_options *o,
                                                   const char *dir);
CNP_API cnp_status cnp_classify_options_add_input(cnp_ctx *ctx, cnp_classify_options *o,
                                                  const char *input);

/* ------------------------------------------------------------ the model */

/* A model prepared for classifying scenes with given options: loaded,
 * overrides applied (--bands, --scale-range, --threshold, --markers),
 * planned for the batch size, precision and threads, hashed. It also
 * remembers the names of the scenes classified with it, so that a second
 * scene whose outputs would replace the first one's is refused. Used by
 * one thread at a time. */
typedef struct cnp_classify_model cnp_classify_model;

/* Loads o->model and prepares it. Bad overrides are CNP_ERR_USAGE. On
 * success *out is a new object the caller frees with
 * cnp_classify_model_free(); the options must outlive it. */
CNP_API cnp_status cnp_classify_model_load(cnp_ctx *ctx, const cnp_classify_options *o,
                                           cnp_classify_model **out);
CNP_API void cnp_classify_model_free(cnp_classify_model *m);

/* "fp32", "bf16" or "int8": what the prepared model runs. Static string. */
CNP_API const char *cnp_classify_model_precision(const cnp_classify_model *m);

/* Creates o->outdir (and its parents) when missing and checks that a file
 * can be created in it; removes the private folders (".canopy-...") that
 * canopy runs killed while writing there left behind, when they are
 * provably canopy's and their process is gone. */
CNP_API cnp_status cnp_classify_outdir_make(cnp_ctx *ctx, const cnp_classify_options *o);

/* -------------------------------------------------------- scene lists */

/* The inputs expanded as a run expands them: a folder gives the rasters in
 * it (sorted; canopy's own outputs and side files left out; GDAL identify
 * or a raster extension), @LIST the lines of a text file ('#' comments,
 * blank lines ignored), anything else is a scene. A folder or list that
 * cannot be read is an error entry of its own (the rest are still listed).
 * All fields owned by the list. */
typedef struct cnp_scene_list {
    int n;                     /* scenes */
    char **paths;              /* (n) as given or joined to their folder */
    char **names;              /* (n) output names (base name, no extension) */
    int n_errors;              /* inputs that could not be expanded */
    char **error_inputs;       /* (n_errors) the input as given */
    cnp_status *error_status;  /* (n_errors) */
    char **error_messages;     /* (n_errors) */
} cnp_scene_list;

/* inputs: NULL-terminated. *out is a new list (cnp_scene_list_free). Only
 * CNP_ERR_NOMEM fails. */
CNP_API cnp_status cnp_scene_list_new(cnp_ctx *ctx, const char *const *inputs,
                                      cnp_scene_list **out);
CNP_API void cnp_scene_list_free(cnp_scene_list *l);

/* The output name of a scene path: its base name without extension
 * ("scene" when empty). Caller frees; NULL when out of memory. */
CNP_API char *cnp_classify_scene_name(const char *path);

/* ------------------------------------------------------------ a scene */

/* One output of a scene: kind ("probs", "masks", "markers", "manifest",
 * "split_masks" ...) and its final path. */
typedef struct cnp_output {
    char *kind;
    char *path;
} cnp_output;

/* What cnp_classify_scene() did. Owned by the caller after the call;
 * free with cnp_classify_result_free(). Counts and timings are 0 for a
 * scene that failed. */
typedef struct cnp_classify_result {
    cnp_status status;         /* CNP_OK also for a skipped scene */
    char *message;             /* the error's message ("" when ok) */
    int skipped;               /* 1: up to date, nothing written */
    const char *reason;        /* "up to date" when skipped, else NULL (static) */
    char *scene;               /* the path as given */
    char *name;                /* output name */
    char *date;                /* acquisition date YYYY-MM-DD, NULL when unknown */
    const char *date_source;   /* "metadata", "planet-metadata", "filename", "given"
                                  (static), NULL when unknown */
    /* With monitoring on (options alerts_dir): what this scene changed in
     * the alert state (alerts = 1). */
    int alerts;
    int alerts_new, alerts_confirmed, alerts_dismissed;  /* alert regions */
    char **alerts_labels_new;  /* NULL-terminated labels of the new alerts */
    double alerts_area_m2;     /* geodesic area of the new alerts */
    char *alerts_summary;      /* "2 new alerts (road, slash_burn), 1 confirmed, ..." */
    char *alerts_state;        /* the state folder */
    int n_outputs;
    cnp_output *outputs;       /* (n_outputs): written, or of the up-to-date run */
    long chips_total;          /* grid cells */
    long chips_classified;
    long chips_nodata;         /* below --min-valid */
    long chips_obscured;       /* enough valid pixels, too few usable ones (cloud and
                                  quality masks): not classified, not nodata */
    long chips_partial;        /* classified from part of their pixels */
    int marker_features;       /* GeoJSON features */
    int n_labels;
    char **labels;             /* (n_labels) */
    long *positives;           /* (n_labels) chips with p >= threshold */
    double open_s, hash_s, read_s, wait_s, infer_s, write_s, total_s;
    char *summary;             /* one line for people, as canopy prints it */
    char **warnings;           /* NULL-terminated, or NULL: about how the scene is read
                                  (bands that contradict the model, no UDM2 found, a
                                  model expecting 8-bit values fed reflectance...) */
    long marker_chips_dropped; /* marker chips left out of the GeoJSON: a corner
                                  has no lon/lat (off the globe, ...) */
    char *warning;             /* one line for people about that, or NULL */
} cnp_classify_result;

CNP_API void cnp_classify_result_free(cnp_classify_result *r);

/* Path of an output kind, or NULL. Owned by the result. */
CNP_API const char *cnp_classify_result_output(const cnp_classify_result *r, const char *kind);

/* Classifies one scene with a prepared model. progress (may be NULL) is
 * called with done in [0,1] as strips are classified (first with 0 when
 * the chips start, after the up-to-date check) and before each output is
 * written; returning 0 cancels: CNP_ERR_CANCELLED, and none of the scene's
 * outputs is left. Returns the status also found in (*out)->status; *out
 * is always set (NULL only when even the result could not be allocated). */
CNP_API cnp_status cnp_classify_scene(const cnp_classify_options *o, cnp_classify_model *m,
                                      const char *path, cnp_progress_fn progress, void *user,
                                      cnp_classify_result **out);

#ifdef __cplusplus
}
#endif

#endif
