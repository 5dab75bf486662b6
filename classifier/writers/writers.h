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
} cnp_raster_options;

/* NAME.probs.tif: band per label (description = label), Byte 0..254 with
 * scale 1/255 offset 0 and nodata 255 (or Float32 with NaN nodata), tiled,
 * DEFLATE, internal overviews; a .qml style beside it. */
cnp_status cnp_write_probs(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                           const cnp_result *res, const cnp_raster_options *opt);

/* NAME.masks.tif: band per label, 1 where prob >= threshold, 0 where not,
 * nodata 255 where not classified; .qml style beside it. When split_dir is
 * not NULL also writes split_dir/LABEL.tif, one file per label. */
cnp_status cnp_write_masks(cnp_ctx *ctx, const char *path, const char *split_dir,
                           const cnp_grid *grid, const cnp_result *res,
                           const cnp_raster_options *opt);

/* Properties written on every marker feature. Borrowed. */
typedef struct cnp_markers_info {
    const char *scene;      /* scene id (file base name) */
    const char *model;      /* model name */
    const char *run_utc;    /* ISO 8601 UTC time of the run */
} cnp_markers_info;

/* NAME.markers.geojson: RFC 7946 FeatureCollection in EPSG:4326 (lon, lat),
 * through OGR's GeoJSON driver. For each marker label, each 8-connected
 * region of positive chips (GDALPolygonize of the mask) is one polygon,
 * reprojected with OSR/PROJ; properties label, max_prob, mean_prob, chips,
 * area_m2, scene, model, run_utc. An empty collection when nothing is found.
 * *n_features (may be NULL) receives the number of features written. */
cnp_status cnp_write_markers(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                             const cnp_result *res, const cnp_markers_info *info,
                             int *n_features);

/* SHA-256 of a file as 64 lowercase hex digits + NUL into hex[65]. */
cnp_status cnp_sha256_file(cnp_ctx *ctx, const char *path, char hex[65]);

/* Atomic output: cnp_tmp_path() gives "DIR/.NAME.tmp-PID" for a final path
 * (caller frees); cnp_commit_file() renames tmp onto final (fsync first),
 * cnp_discard_file() removes tmp (and its .aux.xml/.ovr side files). */
char *cnp_tmp_path(cnp_ctx *ctx, const char *final_path);
cnp_status cnp_commit_file(cnp_ctx *ctx, const char *tmp_path, const char *final_path);
void cnp_discard_file(const char *tmp_path);

#endif
