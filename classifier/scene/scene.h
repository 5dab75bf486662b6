/* scene.h -- reading imagery with GDAL: image chips for predict/evaluate,
 * and (scene pipeline) the chip grid over a georeferenced scene, band
 * mapping, scaling, validity masks and strip reading. Knows nothing of ONNX.
 */
#ifndef CNP_SCENE_H
#define CNP_SCENE_H

#include "base/base.h"

#include <gdal.h>

/* How raw pixels become model input: channel c is source band bands[c]
 * (1-based), value v -> ((v - offset) * scale - mean[c]) / std[c]. */
typedef struct cnp_chip_spec {
    int n_channels;
    const int *bands;      /* (n_channels) */
    int size;              /* output is size x size */
    double offset;         /* subtracted from raw values first (0 usually) */
    double scale;
    const float *mean;     /* (n_channels) */
    const float *std;      /* (n_channels) */
} cnp_chip_spec;

/* Registers GDAL's drivers once (thread-safe). */
void cnp_gdal_init(void);

/* Reads a whole image file (any GDAL raster: JPEG, PNG, TIFF) as one chip,
 * resampled to spec->size x spec->size with GDAL's bilinear resampling when
 * its size differs, into out (n_channels, size, size), owned by the caller.
 * Errors name the file: unreadable, too few bands for spec->bands. */
cnp_status cnp_chip_read(cnp_ctx *ctx, const char *path, const cnp_chip_spec *spec, float *out);

/* ------------------------------------------------------------------------
 * Chip resampling (resample.c): a chip resized as an image of its own with
 * GDAL's bilinear resampling -- what GDAL gives for the chip's whole pixels
 * as a MEM dataset read at S x S (a fractional window [off, off + size)
 * inside them) -- computed without GDAL, in float; within 1e-5 of GDAL's
 * double-precision result for values of order 1 (tests/scene). */

/* One axis: output pixel i is the sum over k < used of w[i * taps + k] x
 * source pixel start[i] + k. */
typedef struct cnp_resample_axis {
    int n_out;
    int taps;        /* capacity per output pixel (cnp_resample_taps) */
    int used;        /* taps in use for the current window, <= taps */
    int *start;      /* (n_out) */
    float *w;        /* (n_out, taps) */
    double *wd;      /* (taps): one output pixel's weights as worked out */
    /* Outputs [u0, u1) share the weights of output u0, non-zero at taps
     * [k0, k1), and read from start[u0] + (i - u0) * step: the interior,
     * computed as vectors. u0 = u1 when there is no such run of 8. */
    int u0, u1, step, k0, k1;
} cnp_resample_axis;

/* Source pixels an output pixel may need when `size` source pixels become
 * n_out (GDAL widens the kernel by the ratio when shrinking). */
int cnp_resample_taps(double size, int n_out);

/* Allocates an axis of n_out outputs and `taps` capacity; free with
 * cnp_resample_axis_free() (also after a failure). */
cnp_status cnp_resample_axis_init(cnp_ctx *ctx, cnp_resample_axis *a, int n_out, int taps);
void cnp_resample_axis_free(cnp_resample_axis *a);

/* GDAL's weights for the window [off, off + size) of a chip n_src pixels
 * long (0 <= off < 1; n_src = ceil(off + size); size fits a->taps). */
void cnp_resample_axis_set(cnp_resample_axis *a, double off, double size, int n_src);

typedef struct cnp_resample_shape {
    int C;                          /* channels */
    int w;                          /* chip width in source pixels */
    int ld;                         /* source row stride, floats */
    size_t plane;                   /* source channel stride, floats */
    const cnp_resample_axis *x, *y; /* set for this chip */
} cnp_resample_shape;

/* dst (C, y->n_out, x->n_out) <- src, the chip's top-left source pixel of
 * channel 0; tmp: scratch of y->n_out x w floats. */
void cnp_resample_chip(float *dst, const float *src, float *tmp, const cnp_resample_shape *sh);

/* The naive twin, in double and in GDAL's order (columns, then rows), with
 * the weights worked out per pixel: the tests' reference. */
typedef struct cnp_resample_ref_shape {
    int C, S;                       /* channels, output side */
    int w, h;                       /* chip in source pixels */
    int ld;
    size_t plane;
    double off[2], size[2];         /* the window along x, y */
} cnp_resample_ref_shape;
void cnp_resample_chip_ref(float *dst, const float *src, const cnp_resample_ref_shape *sh);

/* ------------------------------------------------------------------------
 * Scene pipeline (tiler.c): the chip grid over a georeferenced scene.
 *
 * Geometry. The scene's pixel size is converted to metres (projected CRS:
 * its linear unit; geographic CRS: degrees to metres on the CRS's ellipsoid
 * at the scene's centre latitude, separately along x and y). With a target
 * GSD g (the model's canopy.gsd_m or --gsd M), a chip of `chip` model pixels
 * covers chip * g / pixel_m scene pixels along each axis (a fractional
 * window, read with GDAL's resampling); without one (--gsd native) it covers
 * `chip` scene pixels. Chips sit on a regular grid anchored at the scene's
 * top-left pixel, `stride` model pixels apart; the grid has
 * ceil(W / stride_px) columns and ceil(H / stride_py) rows, so the last
 * row/column may run past the scene (partial chips). Grid cell (row, col)
 * has the geotransform origin of the scene and a pixel size of stride_px x
 * the scene's pixel size.
 *
 * Validity. A scene pixel is valid when it lies inside the scene, every
 * band read is non-zero in its GDAL mask band (nodata, alpha and dataset
 * masks; GDALGetMaskFlags/GDALGetMaskBand) and its values are finite. A
 * chip's valid fraction is the share of the scene pixels under its window
 * (pixel centres) that are valid. Chips with a valid fraction below
 * min_valid (or with no valid pixel) are not classified; the others are,
 * with invalid and outside pixels replaced by the per-channel mean (0 after
 * normalisation) -- "partial" chips when the fraction is below 1.
 *
 * Reading. The grid is read in strips: a strip is one row of chips, cut
 * into segments of at most `strip_chips` chips so that memory does not grow
 * with the scene. Segments are read in rounds of `readers` (the caller's
 * thread count), one per thread of the caller's OpenMP team, each reader
 * with its own GDAL dataset handle, when the caller asks for a segment and
 * the round's segments are used up: reading runs on the cores the engine
 * leaves idle between its batches, never beside the engine's threads
 * (a reader thread preempting one of them held its partner at the next
 * barrier). Reading is CPU work on local files, so nothing is lost by not
 * overlapping it; a scene on a slow network share is read without overlap.
 * Each segment's source pixels are read once, all bands in one GDAL call
 * (8- and 16-bit bands as such, others as Float32: the union of its chip
 * windows), normalised into a Float32 buffer, and each chip is copied out
 * when it is already S x S, or else resized as an image of its own with
 * GDAL's bilinear resampling computed by resample.c -- what GDAL gives for
 * the chip's whole pixels as a MEM dataset read at S x S (a fractional
 * window when the chip does not cover whole pixels), which is what canopy
 * predict does with the chip cut out by gdal_translate -srcwin, and what
 * the training scripts do with chips. A chip's input thus never depends on
 * its neighbours.
 * ---------------------------------------------------------------------- */

/* How a target GSD was chosen (cnp_tiler_params.gsd_mode). */
typedef enum {
    CNP_GSD_MODEL = 0,  /* the model's gsd_m (native when the model has none) */
    CNP_GSD_USER = 1,   /* gsd_m given by the caller (--gsd M) */
    CNP_GSD_NATIVE = 2  /* read at the scene's own resolution (--gsd native) */
} cnp_gsd_mode;

/* A quality mask read beside the scene's bands (products.c finds it: the
 * SCL layer of a Sentinel-2 L2A product, the MSK_CLASSI cloud mask of an
 * L1C, a PlanetScope UDM2, or --mask FILE). The mask is a raster in the
 * scene's CRS covering the scene, at its own resolution: each scene pixel
 * takes the mask pixel under its centre (nearest neighbour, never
 * averaged, so class values stay classes). A pixel is usable when
 *   rule ALL: for every listed band b, usable[b][value] is 1;
 *   rule ANY: for at least one listed band b, usable[b][value] is 1.
 * Values above 255 read as 255. */
#define CNP_QMASK_MAX_BANDS 8
enum { CNP_QMASK_ALL = 0, CNP_QMASK_ANY = 1 };
typedef struct cnp_qmask_spec {
    const char *path;                  /* GDAL dataset name (file, subdataset) */
    const char *kind;                  /* "scl", "msk_classi", "udm2", "mask" */
    int rule;                          /* CNP_QMASK_ALL or CNP_QMASK_ANY */
    int n_bands;
    int bands[CNP_QMASK_MAX_BANDS];    /* 1-based bands of the mask */
    unsigned char usable[CNP_QMASK_MAX_BANDS][256];
} cnp_qmask_spec;

/* Tiling parameters. Borrowed: the tiler copies what it keeps. */
typedef struct cnp_tiler_params {
    cnp_chip_spec spec;   /* bands, model input size, offset/scale, mean/std */
    int chip;             /* chip side in pixels of the target GSD (>= 1) */
    int stride;           /* grid step in the same pixels, 1..chip */
    cnp_gsd_mode gsd_mode;
    double gsd_m;         /* target GSD in metres (model's or user's); 0 = none */
    double max_gsd_ratio; /* refuse scenes whose GSD differs more (e.g. 4) */
    double min_valid;     /* 0..1: chips with a smaller valid fraction are skipped */
    int strip_chips;      /* most chips per strip segment (<= 0: 32) */
    int readers;          /* segments read at once (<= 0: 2; at most 8), each by
                             a thread of the caller's OpenMP team with its own
                             dataset handle: the caller's thread count */
    /* Product radiometry, applied before spec's offset/scale/mean/std:
     * v -> (v + rad_add[c]) * rad_gain[c] (e.g. Sentinel-2 L2A reflectance
     * (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE). NULL: none. */
    const double *rad_add;   /* (n_channels) or NULL */
    const double *rad_gain;  /* (n_channels) or NULL */
    /* A nodata value for bands that declare none (Sentinel-2's 0 through
     * GDAL's SENTINEL2 driver, which sets no nodata). */
    int have_nodata;
    double nodata;
    /* A quality mask: usable pixels; NULL: none. */
    const cnp_qmask_spec *qmask;
    /* > 0: also make a preview of the scene, longest side this many pixels,
     * from the pixels read (cnp_tiler_preview); 0: none. */
    int preview_size;
} cnp_tiler_params;

/* The georeferenced chip grid and what the tiler decided. Owned by the
 * tiler; valid until cnp_tiler_close(). */
typedef struct cnp_tiler_info {
    const char *path;          /* the scene as given */
    int width, height;         /* scene size in pixels */
    int n_bands;               /* bands in the scene */
    double scene_gt[6];        /* the scene's geotransform */
    const char *crs_wkt;       /* the scene's CRS as WKT */
    const char *const *files;  /* NULL-terminated files making up the scene
                                  (GDALGetFileList: TIFF, VRT + sources, ...) */
    double pixel_m[2];         /* scene pixel size in metres along x, y */
    double gsd_m;              /* target GSD in metres, 0 = native */
    double chip_px[2];         /* chip size in scene pixels along x, y */
    double stride_px[2];       /* grid step in scene pixels along x, y */
    int input_size;            /* side of each model input chip */
    const char *resampling;    /* "none" or "bilinear" */
    const char *mask_kind;     /* "none", "nodata", "alpha", "mask" or combos */
    int rows, cols;            /* grid size */
    double grid_gt[6];         /* the grid's geotransform */
    int n_strips;              /* strip segments to be read (progress) */
    const char *qmask_kind;    /* the quality mask's kind, NULL without one */
} cnp_tiler_info;

/* One strip segment: chips of grid row `row`, columns col0 .. col0+n_cols-1.
 * Owned by the tiler; valid until the next cnp_tiler_next_strip() or
 * cnp_tiler_close(). */
typedef struct cnp_strip {
    int index;                 /* 0 .. n_strips-1, in reading order */
    int row, col0, n_cols;
    const float *valid;        /* (n_cols) valid fraction of each chip */
    const float *usable;       /* (n_cols) usable fraction: valid and not masked
                                  by the quality mask (= valid without one) */
    const unsigned char *obscured; /* (n_cols) 1: enough valid pixels, too few
                                  usable ones (clouds, shadow...): not classified */
    int n_chips;               /* chips to classify in this segment */
    const int *cols;           /* (n_chips) grid column of each chip */
    const unsigned char *partial; /* (n_chips) 1 when the valid fraction < 1 */
    const float *input;        /* (n_chips, C, S, S) normalised model input */
} cnp_strip;

/* Time spent reading and by the caller waiting for it. */
typedef struct cnp_tiler_stats {
    double read_s;             /* the readers' busy time, summed over threads:
                                  GDAL reads, masks, normalisation, resampling */
    double read_cpu_s;         /* CPU time of the same work, summed: what the
                                  reading takes from the classification on a
                                  machine whose cores are all busy */
    double wait_s;             /* cnp_tiler_next_strip() waited for a round */
    long chips;                /* chips handed out for classification */
    long partial;              /* of which partial */
    long skipped;              /* grid cells not classified (min_valid) */
    long obscured;             /* of which obscured (the quality mask) */
} cnp_tiler_stats;

typedef struct cnp_tiler cnp_tiler;

/* Validity with a quality mask: a pixel is valid as above, and usable when
 * valid and usable in the mask. A chip whose valid fraction is below
 * min_valid (or 0) is "nodata"; one with enough valid pixels but a usable
 * fraction below min_valid (or no usable pixel) is "obscured"; neither is
 * classified. In classified chips, pixels that are not usable are set to
 * the channel mean, like invalid ones, and the chip is partial. */

/* Opens a scene and lays out its chip grid. Checks, each with a message
 * naming the file and what to do: the scene opens as a raster, has a
 * geotransform and a CRS, is not rotated, has the bands asked for, and its
 * GSD is within max_gsd_ratio of the target. On success *out is a new tiler
 * the caller closes with cnp_tiler_close(); nothing is read yet. */
cnp_status cnp_tiler_open(cnp_ctx *ctx, const char *path, const cnp_tiler_params *params,
                          cnp_tiler **out);

/* Grid, geometry and scene facts; owned by the tiler. */
const cnp_tiler_info *cnp_tiler_info_get(const cnp_tiler *t);

/* Hands out the next strip segment in order, reading the next round of
 * segments first when the last one is used up (a parallel region of up to
 * `readers` threads; call it outside any). *out is NULL after the last one.
 * A read error (e.g. a corrupt block) is returned here, at the segment it
 * hit, and at every later call, with the reader's message. The strip is
 * owned by the tiler; valid until the next call. Call from one thread
 * only. */
cnp_status cnp_tiler_next_strip(cnp_ctx *ctx, cnp_tiler *t, const cnp_strip **out);

/* Reading statistics so far. */
void cnp_tiler_stats_get(const cnp_tiler *t, cnp_tiler_stats *stats);

/* Closes the scene, frees everything. NULL is a no-op. */
void cnp_tiler_close(cnp_tiler *t);

/* ------------------------------------------------------------------------
 * Preview (preview.c): the scene small, made by the tiler from the pixels
 * it reads anyway, so that a quick-look need not decode the scene again.
 * Canvas pixel (i, j) of a cw x ch canvas over a W x H scene covers the
 * scene pixels whose centres fall in [i W / cw, (i + 1) W / cw) x
 * [j H / ch, (j + 1) H / ch); its value is the mean of the valid ones (a
 * box filter: GDAL's AVERAGE for whole-pixel footprints), and it is
 * invalid when none is. Values are the bands as stored (no scaling). */
typedef struct cnp_preview {
    int width, height;         /* the canvas */
    int n_planes;              /* 3: the first three bands read (red, green,
                                  blue); 1: the first band */
    float *planes;             /* (n_planes, height, width) */
    unsigned char *valid;      /* (height, width) 1: a valid pixel under it */
} cnp_preview;

/* The canvas of a w x h scene: longest side `size`, the other in
 * proportion (rounded, at least 1). */
void cnp_preview_canvas(int w, int h, int size, int *cw, int *ch);

/* The overview of band b (w pixels wide) that a read cw pixels wide
 * should use: the smallest at least cw wide, 1-based; 0 for the full
 * resolution. *factor = its width / cw. The quick-look reads it, and the
 * tiler makes no preview when there is one. */
int cnp_overview_for(GDALRasterBandH b, int w, int cw, double *factor);

/* Frees a preview and what it holds (its arrays are not free()-able on
 * their own). NULL is a no-op. */
void cnp_preview_free(cnp_preview *p);

/* The preview asked for with params->preview_size, once every strip has
 * been handed out: *out is a new preview the caller frees with
 * cnp_preview_free(). *out is NULL (and CNP_OK) when none was asked for,
 * when strips remain, when it was taken already (it is handed out once), or
 * when the tiler declined: the scene is smaller than the canvas along a
 * side (a box filter cannot enlarge), or it has an overview at least as
 * large as the canvas (a reader of the preview reads that instead, for
 * less). Fails only when out of memory. */
cnp_status cnp_tiler_preview(cnp_ctx *ctx, cnp_tiler *t, cnp_preview **out);

#endif
