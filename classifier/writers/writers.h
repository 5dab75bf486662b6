/* writers.h -- what `canopy classify` writes for a scene: the probabilities
 * and mask GeoTIFFs on the chip grid (with QGIS styles), the markers GeoJSON
 * and the run manifest. Every file is written under a temporary name in the
 * output folder and renamed into place only when complete.
 *
 * The chip grid of a scene is small (a 40000 x 40000 scene at 256 px chips
 * is 157 x 157 cells), so results are handed over whole.
 */
#ifndef CNP_WRITERS_H
#define CNP_WRITERS_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

/* The chip grid, georeferenced: cell (row, col) covers the scene pixels of
 * chip (row, col) at the stride; gt is the grid's GDAL geotransform (origin
 * = scene origin, pixel size = stride x scene pixel size, GSD-adjusted). */
typedef struct cnp_grid {
    int cols, rows;
    double gt[6];
    const char *crs_wkt;       /* WKT of the scene's CRS (borrowed) */
    int has_clip;              /* 1: marker polygons are clipped to clip[] */
    double clip[4];            /* minx, miny, maxx, maxy in the grid's CRS: the
                                  scene's footprint, which the last row and
                                  column of (partial) cells run past */
} cnp_grid;

/* Per-chip results on the grid. Borrowed by the writers. */
typedef struct cnp_result {
    int n_labels;
    const char *const *labels;        /* (n_labels) */
    const float *thresholds;          /* (n_labels) */
    const unsigned char *is_marker;   /* (n_labels) labels written to GeoJSON */
    const float *probs;               /* (rows, cols, n_labels); NaN = not classified */
} cnp_result;

typedef enum { CNP_FORMAT_GTIFF = 0, CNP_FORMAT_COG = 1 } cnp_raster_format;

typedef struct cnp_raster_options {
    cnp_raster_format format;         /* -of GTiff | COG */
    int float_probs;                  /* --probs-type Float32 (else Byte, scale 1/255) */
    const char *const *creation_options; /* NULL-terminated NAME=VALUE list (-co), or NULL */
    int lossy_probs;                  /* --lossy-probs: lossy -co allowed for the
                                         probabilities (masks keep lossless defaults) */
} cnp_raster_options;

/* Lossy creation options (COMPRESS=JPEG, WEBP without lossless, JXL lossy,
 * LERC with MAX_Z_ERROR > 0, NBITS below the sample size, DISCARD_LSB,
 * PHOTOMETRIC=YCBCR) are refused by the writers: always for masks (they
 * must agree with the GeoJSON and the manifest), for probabilities unless
 * opt->lossy_probs. This checks opt's list the same way before any work,
 * and against the driver (unknown names and values, tile sizes that are not
 * multiples of 16): CNP_ERR_USAGE naming the option and what to do. opt is
 * borrowed. */
cnp_status cnp_raster_options_check(cnp_ctx *ctx, const cnp_raster_options *opt);

/* NAME.probs.tif: band per label (description = label), Byte 0..254 with
 * scale 1/255 offset 0 and nodata 255 (or Float32 with NaN nodata), tiled,
 * DEFLATE, internal overviews; a .qml style beside it.
 *
 * Details shared by the rasters: tiles of min(256, grid size rounded up to
 * 16) per axis (COG: one BLOCKSIZE of at least 128, the COG driver's
 * minimum), band interleave, PREDICTOR 2 for Byte and 3 for Float32
 * probabilities; AVERAGE overviews (NEAREST for masks) at 2, 4, ... until
 * the smallest fits one tile. opt may be NULL (GTiff, Byte); its -co list is
 * applied over these defaults and validated against the driver (a bad
 * option is CNP_ERR_USAGE naming it). Metadata: CANOPY_PRODUCT,
 * CANOPY_LABELS and CANOPY_MARKERS (comma-separated) on the dataset,
 * CANOPY_LABEL, CANOPY_THRESHOLD and CANOPY_MARKER per band. The styles use
 * the first marker band. No .aux.xml is written (PAM off). Output path,
 * style and any per-label files are committed together: on failure none of
 * them appears. */
cnp_status cnp_write_probs(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                           const cnp_result *res, const cnp_raster_options *opt);

/* The per-label mask file names (without .tif) of n labels: letters,
 * digits, '-', '_' and '.' (not first) kept, anything else '_'. A
 * NULL-terminated list the caller frees with CSLDestroy(), or NULL with
 * the error in ctx: out of memory, or two labels that become the same name
 * (CNP_ERR_USAGE, naming both and `where`). */
char **cnp_split_names(cnp_ctx *ctx, const char *where, const char *const *labels, int n);

/* NAME.masks.tif: band per label, 1 where prob >= threshold, 0 where not,
 * nodata 255 where not classified; .qml style beside it. When split_dir is
 * not NULL also writes split_dir/LABEL.tif, one file per label, each with a
 * colour table (1 red) and its own LABEL.qml; split_dir is created if
 * missing; characters of a label other than letters, digits, '-', '_' and
 * '.' become '_' in its file name. */
cnp_status cnp_write_masks(cnp_ctx *ctx, const char *path, const char *split_dir,
                           const cnp_grid *grid, const cnp_result *res,
                           const cnp_raster_options *opt);

/* Properties written on every marker feature. Borrowed. */
typedef struct cnp_markers_info {
    const char *scene;      /* scene id (file base name) */
    const char *model;      /* model name */
    const char *run_utc;    /* ISO 8601 UTC time of the run */
    long *n_dropped;        /* out (may be NULL): marker chips left out of the
                               GeoJSON because a corner has no lon/lat */
} cnp_markers_info;

/* NAME.markers.geojson: RFC 7946 FeatureCollection in EPSG:4326 (lon, lat),
 * through OGR's GeoJSON driver. For each marker label, each 8-connected
 * region of positive chips (GDALPolygonize of the mask) is one polygon,
 * reprojected with OSR/PROJ; properties label, max_prob, mean_prob, chips,
 * area_m2, scene, model, run_utc. An empty collection when nothing is found.
 * *n_features (may be NULL) receives the number of features written.
 *
 * A region whose parts meet only diagonally is one MultiPolygon feature;
 * regions across the antimeridian are split there, regions over a pole are
 * closed along it. Outline edges are densified in the scene CRS until
 * their lon/lat chords stay within 1 cm of the true edge. area_m2 is geodesic on WGS 84 (PROJ's geod_polygonarea),
 * max_prob/mean_prob are rounded to 1e-6, coordinates to 1e-7 degree.
 * Chips with a corner that cannot be transformed to EPSG:4326 (off the globe
 * in a geostationary view, outside a CRS's domain) and regions whose edges
 * cannot are left out, the rest written; their count goes to
 * *info->n_dropped for the caller's warning. info
 * and its members may be NULL (null properties). The grid needs a CRS. */
cnp_status cnp_write_markers(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                             const cnp_result *res, const cnp_markers_info *info,
                             int *n_features);

/* SHA-256 of a file (a local path or any GDAL virtual file: /vsizip/,
 * /vsicurl/, ...) as 64 lowercase hex digits + NUL into hex[65], which the
 * caller provides. */
cnp_status cnp_sha256_file(cnp_ctx *ctx, const char *path, char hex[65]);

/* Checks a grid and a result before writing `path` (named in messages):
 * sizes that fit GDAL and memory, a usable geotransform, labels present,
 * thresholds in [0, 1]. Every writer above calls it first. */
cnp_status cnp_result_check(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                            const cnp_result *res);

/* ==== Run manifest (manifest.c) ===========================================
 * This section belongs to the scene pipeline (`canopy classify`); the
 * writers above do not use it.
 *
 * NAME.manifest.json records one run over one scene: its identity -- every
 * input file (path, size, mtime, SHA-256), the model's SHA-256 and every
 * parameter that changes the outputs -- and what came out: grid, chip
 * counts, positive chips per label, output files (size, SHA-256), timings,
 * canopy and GDAL versions. A later run with the same identity finds the
 * manifest and every listed output intact, and skips the scene.
 */

/* Parameters of a run, as resolved (model defaults and command-line
 * overrides applied). All borrowed. */
typedef struct cnp_run_params {
    const char *model_path;
    const char *model_sha256;  /* hex digest (cnp_sha256_file), hashed once per batch */
    int chip, stride;          /* chip side and grid step, model-GSD pixels */
    int input_size;            /* model input side */
    int n_channels;
    const int *bands;          /* (n_channels) 1-based scene bands */
    double offset, scale;      /* raw value v -> (v - offset) * scale */
    const float *mean, *std;   /* (n_channels) */
    const char *gsd_mode;      /* "model", "user" or "native" */
    double gsd_m;              /* target GSD in metres, 0 = native */
    double min_valid;
    int n_labels;
    const char *const *labels;        /* (n_labels) */
    const float *thresholds;          /* (n_labels) */
    const unsigned char *is_marker;   /* (n_labels) */
    int tta;
    const char *precision;     /* "fp32" or "bf16": what ran (cnp_model_precision) */
    int float_probs;
    int split_masks;
    int lossy_probs;           /* --lossy-probs: lossy -co accepted for the probabilities */
    const char *format;                  /* "GTiff" or "COG" */
    const char *const *creation_options; /* NULL-terminated NAME=VALUE, or NULL */
    const char *const *config;           /* NULL-terminated KEY=VALUE, or NULL */
    const char *product_json;  /* the product read (cnp_product_json), or NULL for a
                                  plain raster: recorded as parameters.product */
} cnp_run_params;

/* What a run produced. All borrowed. */
typedef struct cnp_run_results {
    const char *scene_id;      /* scene base name without extension */
    const char *model_name, *model_version;
    const char *run_utc;       /* ISO 8601 UTC */
    int rows, cols;
    const double *grid_gt;     /* (6) */
    const double *pixel_m;     /* (2) scene pixel size in metres, x and y */
    const double *chip_px;     /* (2) chip size in scene pixels */
    const double *stride_px;   /* (2) grid step in scene pixels */
    const char *resampling;    /* "none" or "bilinear" */
    const char *mask_kind;     /* "none", "nodata", "alpha", "mask", ... */
    long classified, partial, skipped;
    long obscured;             /* of the skipped: obscured (quality mask); the rest
                                  are nodata */
    const int *partial_cells;  /* (partial, 2) row, col of each partial chip */
    const long *positives;     /* (n_labels) chips with p >= threshold */
    int marker_features;
    const char *const *outputs; /* NULL-terminated paths of the files written */
    const char *date;          /* acquisition date YYYY-MM-DD, or NULL */
    const char *date_source;   /* where it came from ("metadata", "filename", ...), or NULL */
    const char *alerts_summary;/* monitoring: the scene's alerts line, or NULL */
    const char *alerts_state;  /* monitoring: the alert state folder, or NULL */
    const char *none_classified; /* no chip classified: why ("all nodata",
                                    "smaller than one chip"), or NULL */
    int threads;
    double open_s, hash_s, read_s, read_cpu_s, wait_s, infer_s, write_s, total_s;
} cnp_run_results;

typedef struct cnp_manifest cnp_manifest;

/* Builds a run's identity: stats and hashes every input (local paths and
 * GDAL /vsi paths alike), records the model's hash and the parameters.
 * Errors name the file. On success *out is a new manifest the caller frees
 * with cnp_manifest_free(). */
cnp_status cnp_manifest_new(cnp_ctx *ctx, const char *const *inputs, const cnp_run_params *p,
                            cnp_manifest **out);

void cnp_manifest_free(cnp_manifest *m);

/* *up_to_date = 1 when `manifest_path` exists, holds the same identity and
 * every output it lists still has the recorded size and SHA-256; else 0 (a
 * missing, older or unreadable manifest is not an error). */
cnp_status cnp_manifest_up_to_date(cnp_ctx *ctx, const cnp_manifest *m,
                                   const char *manifest_path, int *up_to_date);

/* Writes identity + results to `manifest_path` (temporary name, renamed
 * when complete). Output paths are recorded relative to the manifest's
 * folder when they lie in it. */
cnp_status cnp_manifest_write(cnp_ctx *ctx, const cnp_manifest *m, const cnp_run_results *r,
                              const char *manifest_path);

/* ==== end of run manifest ================================================ */

#endif
