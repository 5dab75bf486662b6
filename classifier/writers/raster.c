/* raster.c -- NAME.probs.tif and NAME.masks.tif on the chip grid, the
 * optional one-file-per-label masks, and the QGIS .qml styles beside them.
 *
 * Each raster is assembled in a GDAL MEM dataset (values, band
 * descriptions, nodata, scale/offset, metadata, overviews), then copied
 * with GDALCreateCopy to the GTiff or COG driver under a hidden temporary
 * name. All files of one call are renamed into place together at the end,
 * so a failure leaves none of them behind.
 */
#define _POSIX_C_SOURCE 200809L
#include "writers/writers.h"
#include "base/gdal.h"
#include "scene/scene.h" /* cnp_gdal_init */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#define NODATA_BYTE 255   /* probs (Byte) and masks: not classified */
#define MAX_BLOCK 256     /* default tile edge; tiles are multiples of 16 */
#define COG_MIN_BLOCK 128 /* the COG driver's smallest BLOCKSIZE */
#define MAX_LEVELS 30

typedef enum { KIND_PROBS, KIND_MASKS } raster_kind;

/* ---- GDAL session: quiet errors, no PAM side files --------------------- */

typedef struct gdal_session {
    char *saved_pam;
    int had_pam;
} gdal_session;

static void session_begin(gdal_session *s)
{
    cnp_gdal_init();
    const char *v = CPLGetThreadLocalConfigOption("GDAL_PAM_ENABLED", NULL);
    s->had_pam = v != NULL;
    s->saved_pam = v ? strdup(v) : NULL;
    if (v && !s->saved_pam)
        s->had_pam = 0;
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
    cnp_gdal_quiet_begin();
}

static void session_end(gdal_session *s)
{
    cnp_gdal_quiet_end();
    CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", s->had_pam ? s->saved_pam : NULL);
    free(s->saved_pam);
    s->saved_pam = NULL;
}

/* ---- staged outputs: written under temporary names, committed together - */

typedef struct staged {
    char *tmp;
    char *final;
    int committed;
} staged;

typedef struct stage_list {
    staged *v;
    int n, cap;
} stage_list;

/* Reserves a temporary for `final`; *tmp receives it (owned by the list). */
static cnp_status stage_add(cnp_ctx *ctx, stage_list *s, const char *final, const char **tmp)
{
    char *t, *f;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        staged *v = cnp_calloc(ctx, (size_t)cap, sizeof *v, "the list of output files");
        if (!v)
            return CNP_ERR_NOMEM;
        if (s->n)
            memcpy(v, s->v, (size_t)s->n * sizeof *v);
        free(s->v);
        s->v = v;
        s->cap = cap;
    }
    t = cnp_atomic_begin(ctx, final);
    if (!t)
        return ctx ? ctx->status : CNP_ERR_IO;
    f = cnp_strdup(ctx, final);
    if (!f) {
        free(t);
        return CNP_ERR_NOMEM;
    }
    s->v[s->n].tmp = t;
    s->v[s->n].final = f;
    s->v[s->n].committed = 0;
    s->n++;
    *tmp = t;
    return CNP_OK;
}

/* Renames every staged file into place; if one fails, the ones already
 * renamed are removed again and the rest discarded. */
static cnp_status stage_commit(cnp_ctx *ctx, stage_list *s)
{
    int i, j;
    for (i = 0; i < s->n; i++) {
        if (cnp_atomic_commit(ctx, s->v[i].tmp, s->v[i].final) != CNP_OK) {
            for (j = 0; j < i; j++) {
                unlink(s->v[j].final);
                s->v[j].committed = 0;
            }
            s->v[i].committed = 1; /* commit removed its temporary */
            return ctx ? ctx->status : CNP_ERR_IO;
        }
        s->v[i].committed = 1;
    }
    return CNP_OK;
}

/* Frees the list, removing the temporaries of files not committed. */
static void stage_free(stage_list *s)
{
    int i;
    for (i = 0; i < s->n; i++) {
        if (!s->v[i].committed)
            cnp_atomic_discard(s->v[i].tmp);
        free(s->v[i].tmp);
        free(s->v[i].final);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

/* ---- checks ------------------------------------------------------------- */

cnp_status cnp_result_check(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                            const cnp_result *res)
{
    size_t cells, values;
    int i, j;

    if (!path || !*path)
        return cnp_error(ctx, CNP_ERR_USAGE, "no output path given to the writers");
    if (!grid || !res)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: no chip grid or results to write", path);
    if (grid->cols < 1 || grid->rows < 1)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the chip grid is %d x %d cells; a scene must "
                         "hold at least one chip", path, grid->cols, grid->rows);
    for (i = 0; i < 6; i++)
        if (!isfinite(grid->gt[i]))
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the grid's geotransform has a non-finite "
                             "term; check the scene's georeferencing", path);
    if (grid->gt[1] * grid->gt[5] - grid->gt[2] * grid->gt[4] == 0.0)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the grid's geotransform has zero pixel size; "
                         "check the scene's georeferencing", path);
    if (res->n_labels < 1 || res->n_labels > 65535)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: %d labels; a GeoTIFF holds 1 to 65535 bands",
                         path, res->n_labels);
    if (!res->labels || !res->thresholds || !res->probs)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: the results lack labels, thresholds or "
                         "probabilities", path);
    if (!cnp_mul_size((size_t)grid->cols, (size_t)grid->rows, &cells) || cells > INT_MAX ||
        !cnp_mul_size(cells, (size_t)res->n_labels, &values) ||
        !cnp_mul_size(values, sizeof(float), &values))
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: a %d x %d grid of %d labels is too large",
                         path, grid->cols, grid->rows, res->n_labels);
    for (i = 0; i < res->n_labels; i++) {
        const char *l = res->labels[i];
        if (!l || !*l)
            return cnp_error(ctx, CNP_ERR_USAGE, "%s: label %d has no name; fix the model's "
                             "label list", path, i + 1);
        if (!(res->thresholds[i] >= 0.0f && res->thresholds[i] <= 1.0f))
            return cnp_error(ctx, CNP_ERR_USAGE, "%s: label %s has threshold %g; thresholds "
                             "are probabilities in [0, 1]", path, l, (double)res->thresholds[i]);
        for (j = 0; j < i; j++)
            if (strcmp(res->labels[j], l) == 0)
                return cnp_error(ctx, CNP_ERR_USAGE, "%s: label %s appears twice; fix the "
                                 "model's label list", path, l);
    }
    return CNP_OK;
}

/* ---- values ------------------------------------------------------------- */

static unsigned char prob_byte(float p)
{
    double v;
    if (isnan(p))
        return NODATA_BYTE;
    v = floor((double)p * 255.0 + 0.5);
    if (!(v >= 0.0))
        v = 0.0;
    if (v > 254.0)
        v = 254.0;
    return (unsigned char)v;
}

static unsigned char mask_byte(float p, float threshold)
{
    if (isnan(p))
        return NODATA_BYTE;
    return p >= threshold ? 1 : 0;
}

static int first_marker(const cnp_result *res)
{
    int l;
    for (l = 0; res->is_marker && l < res->n_labels; l++)
        if (res->is_marker[l])
            return l;
    return 0;
}

/* Comma-joined labels (all, or only markers); caller frees. */
static char *join_labels(cnp_ctx *ctx, const cnp_result *res, int markers_only)
{
    size_t len = 1;
    char *s;
    int l;
    for (l = 0; l < res->n_labels; l++)
        len += strlen(res->labels[l]) + 1;
    s = cnp_calloc(ctx, len, 1, "the label list");
    if (!s)
        return NULL;
    for (l = 0; l < res->n_labels; l++) {
        if (markers_only && !(res->is_marker && res->is_marker[l]))
            continue;
        if (*s)
            strcat(s, ",");
        strcat(s, res->labels[l]);
    }
    return s;
}

/* ---- MEM datasets ------------------------------------------------------- */

static cnp_status mem_create(cnp_ctx *ctx, const char *path, const cnp_grid *grid, int bands,
                             GDALDataType type, GDALDatasetH *out)
{
    GDALDriverH drv = GDALGetDriverByName("MEM");
    GDALDatasetH ds;
    double gt[6];

    *out = NULL;
    if (!drv)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: GDAL has no MEM driver; check the GDAL "
                         "installation", path);
    cnp_gdal_reset();
    ds = GDALCreate(drv, "", grid->cols, grid->rows, bands, type, NULL);
    if (!ds)
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: cannot hold the %d x %d x %d grid in memory "
                         "(%s)", path, grid->cols, grid->rows, bands, cnp_gdal_msg());
    memcpy(gt, grid->gt, sizeof gt);
    cnp_gdal_reset();
    if (GDALSetGeoTransform(ds, gt) != CE_None) {
        GDALClose(ds);
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the grid's geotransform was refused (%s)",
                         path, cnp_gdal_msg());
    }
    if (grid->crs_wkt && *grid->crs_wkt) {
        cnp_gdal_reset();
        if (GDALSetProjection(ds, grid->crs_wkt) != CE_None) {
            GDALClose(ds);
            return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the scene's CRS is not valid WKT (%s); "
                             "check the scene's georeferencing", path, cnp_gdal_msg());
        }
    }
    *out = ds;
    return CNP_OK;
}

static cnp_status set_band(cnp_ctx *ctx, const char *path, GDALRasterBandH b, const void *data,
                           GDALDataType type, int cols, int rows)
{
    cnp_gdal_reset();
    if (GDALRasterIO(b, GF_Write, 0, 0, cols, rows, (void *)data, cols, rows, type, 0, 0)
        != CE_None)
        return cnp_error(ctx, CNP_ERR_IO, "%s: storing band values failed (%s)", path,
                         cnp_gdal_msg());
    return CNP_OK;
}

/* Description, nodata, metadata of band `l` (0-based label index). */
static cnp_status describe_band(cnp_ctx *ctx, const char *path, GDALRasterBandH b,
                                const cnp_result *res, int l, raster_kind kind, int float_probs,
                                int first)
{
    char thr[32];
    int ok = 1;
    cnp_gdal_reset();
    GDALSetDescription(b, res->labels[l]);
    snprintf(thr, sizeof thr, "%.9g", (double)res->thresholds[l]);
    ok &= GDALSetMetadataItem(b, "CANOPY_LABEL", res->labels[l], NULL) == CE_None;
    ok &= GDALSetMetadataItem(b, "CANOPY_THRESHOLD", thr, NULL) == CE_None;
    ok &= GDALSetMetadataItem(b, "CANOPY_MARKER",
                              res->is_marker && res->is_marker[l] ? "YES" : "NO", NULL) == CE_None;
    ok &= GDALSetRasterColorInterpretation(b, first ? GCI_GrayIndex : GCI_Undefined) == CE_None;
    if (kind == KIND_PROBS && float_probs) {
        ok &= GDALSetRasterNoDataValue(b, NAN) == CE_None;
    } else {
        ok &= GDALSetRasterNoDataValue(b, NODATA_BYTE) == CE_None;
    }
    if (kind == KIND_PROBS && !float_probs) {
        ok &= GDALSetRasterScale(b, 1.0 / 255.0) == CE_None;
        ok &= GDALSetRasterOffset(b, 0.0) == CE_None;
    }
    if (kind == KIND_MASKS)
        ok &= GDALSetMetadataItem(b, "CANOPY_VALUES", "0=below threshold,1=at or above "
                                  "threshold,255=not classified", NULL) == CE_None;
    if (!ok)
        return cnp_error(ctx, CNP_ERR_INTERNAL, "%s: setting band %d's metadata failed (%s)",
                         path, l + 1, cnp_gdal_msg());
    return CNP_OK;
}

static cnp_status describe_dataset(cnp_ctx *ctx, const char *path, GDALDatasetH ds,
                                   const cnp_result *res, raster_kind kind)
{
    cnp_status st = CNP_OK;
    char *labels = join_labels(ctx, res, 0);
    char *markers = labels ? join_labels(ctx, res, 1) : NULL;
    int ok = 1;
    if (!labels || !markers) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    cnp_gdal_reset();
    ok &= GDALSetMetadataItem(ds, "CANOPY_PRODUCT", kind == KIND_PROBS ? "probabilities"
                              : "masks", NULL) == CE_None;
    ok &= GDALSetMetadataItem(ds, "CANOPY_LABELS", labels, NULL) == CE_None;
    ok &= GDALSetMetadataItem(ds, "CANOPY_MARKERS", markers, NULL) == CE_None;
    if (!ok)
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: setting the dataset metadata failed (%s)",
                       path, cnp_gdal_msg());
cleanup:
    free(labels);
    free(markers);
    return st;
}

/* 1 a strong red on black; 0 and 255 are transparent where the format keeps
 * alpha (a TIFF colour map does not: the .qml beside the file makes 0
 * transparent in QGIS). */
static cnp_status set_mask_palette(cnp_ctx *ctx, const char *path, GDALRasterBandH b)
{
    GDALColorTableH ct = GDALCreateColorTable(GPI_RGB);
    GDALColorEntry none = { 0, 0, 0, 0 }, hit = { 227, 26, 28, 255 };
    cnp_status st = CNP_OK;
    int i;
    if (!ct)
        return cnp_error(ctx, CNP_ERR_NOMEM, "%s: out of memory for a colour table", path);
    for (i = 0; i < 256; i++)
        GDALSetColorEntry(ct, i, i == 1 ? &hit : &none);
    cnp_gdal_reset();
    if (GDALSetRasterColorTable(b, ct) != CE_None ||
        GDALSetRasterColorInterpretation(b, GCI_PaletteIndex) != CE_None)
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: setting the colour table failed (%s)", path,
                       cnp_gdal_msg());
    GDALDestroyColorTable(ct);
    return st;
}

/* ---- creation options and overviews ------------------------------------- */

static int round16(int n)
{
    return n <= 16 ? 16 : ((n + 15) / 16) * 16;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Sets key=value unless the user's list already names the key. */
static char **set_default(char **o, const char *key, const char *value)
{
    return CSLFetchNameValue(o, key) ? o : CSLSetNameValue(o, key, value);
}

/* Keys that make a GTiff/COG lose information, whatever their value's
 * detail: dropped from the masks' options under lossy_probs. */
static const char *const lossy_keys[] = {
    "COMPRESS", "QUALITY", "JPEG_QUALITY", "JPEGTABLESMODE", "WEBP_LEVEL", "WEBP_LOSSLESS",
    "MAX_Z_ERROR", "MAX_Z_ERROR_OVERVIEW", "JXL_LOSSLESS", "JXL_DISTANCE", "JXL_ALPHA_DISTANCE",
    "JXL_EFFORT", "NBITS", "DISCARD_LSB", "PHOTOMETRIC", NULL
};

static int is_value(char **o, const char *key, const char *value)
{
    const char *v = CSLFetchNameValue(o, key);
    return v && !strcasecmp(v, value);
}

/* What in the creation options o loses information (written into why),
 * or 0 when they are lossless. bits: the raster's sample size. */
static int lossy_reason(char **o, int bits, int cog, char *why, size_t n)
{
    const char *c = CSLFetchNameValue(o, "COMPRESS"), *v;

    why[0] = '\0';
    if (c && (!strcasecmp(c, "JPEG") || !strcasecmp(c, "JPEG2000")))
        snprintf(why, n, "COMPRESS=%s is lossy", c);
    else if (c && !strcasecmp(c, "WEBP") && !CPLTestBool(CSLFetchNameValueDef(o, "WEBP_LOSSLESS", "NO")) &&
             !(cog && is_value(o, "QUALITY", "100")))
        snprintf(why, n, "COMPRESS=WEBP without %s is lossy", cog ? "QUALITY=100" : "WEBP_LOSSLESS=YES");
    else if (c && !strcasecmp(c, "JXL") &&
             (!CPLTestBool(CSLFetchNameValueDef(o, "JXL_LOSSLESS", "YES")) ||
              ((v = CSLFetchNameValue(o, "JXL_DISTANCE")) && CPLAtof(v) > 0)))
        snprintf(why, n, "COMPRESS=JXL with JXL_LOSSLESS=NO or JXL_DISTANCE > 0 is lossy");
    else if (c && !strncasecmp(c, "LERC", 4) &&
             (((v = CSLFetchNameValue(o, "MAX_Z_ERROR")) && CPLAtof(v) != 0) ||
              ((v = CSLFetchNameValue(o, "MAX_Z_ERROR_OVERVIEW")) && CPLAtof(v) != 0)))
        snprintf(why, n, "COMPRESS=%s with MAX_Z_ERROR=%s is lossy", c, v);
    else if ((v = CSLFetchNameValue(o, "NBITS")) && atoi(v) < bits)
        snprintf(why, n, "NBITS=%s keeps fewer than the %d bits of each value", v, bits);
    else if ((v = CSLFetchNameValue(o, "DISCARD_LSB")))
        snprintf(why, n, "DISCARD_LSB=%s drops bits of each value", v);
    else if (is_value(o, "PHOTOMETRIC", "YCBCR"))
        snprintf(why, n, "PHOTOMETRIC=YCBCR is lossy");
    return why[0] != '\0';
}

/* Refuses lossy creation options: always for masks (they must agree with
 * the GeoJSON and the manifest), for probabilities unless opt->lossy_probs.
 * Under lossy_probs the masks' lossy keys are dropped from *o, so that they
 * get the lossless defaults. */
static cnp_status check_lossy(cnp_ctx *ctx, const char *path, raster_kind kind, GDALDataType type,
                              const cnp_raster_options *opt, char ***o)
{
    char why[160];
    int cog = opt && opt->format == CNP_FORMAT_COG;

    if (!lossy_reason(*o, type == GDT_Float32 ? 32 : 8, cog, why, sizeof why))
        return CNP_OK;
    if (kind == KIND_PROBS && opt && opt->lossy_probs)
        return CNP_OK;
    if (kind == KIND_MASKS && opt && opt->lossy_probs) {
        for (int i = 0; lossy_keys[i]; i++)
            *o = CSLSetNameValue(*o, lossy_keys[i], NULL);
        return CNP_OK;
    }
    if (kind == KIND_MASKS)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: -co %s: the masks would then disagree with "
                         "the GeoJSON and the manifest; use a lossless compression (e.g. "
                         "-co COMPRESS=DEFLATE, ZSTD or LZW)", path, why);
    return cnp_error(ctx, CNP_ERR_USAGE, "%s: -co %s; the probabilities would no longer be "
                     "the ones the masks and GeoJSON come from: add --lossy-probs to accept "
                     "that for the probabilities (the masks stay lossless), or use a lossless "
                     "compression", path, why);
}

/* The user's -co, then the format's defaults for what they leave out,
 * validated against the driver. *bx, *by receive the tile size of the
 * result (for overview levels). Caller frees the list with CSLDestroy. */
static cnp_status build_options(cnp_ctx *ctx, const char *path, GDALDriverH drv,
                                const cnp_grid *grid, int bands, GDALDataType type,
                                raster_kind kind, const cnp_raster_options *opt, char ***out,
                                int *bx, int *by)
{
    char **o = NULL;
    char num[32];
    int cog = opt && opt->format == CNP_FORMAT_COG;
    const char *v;
    cnp_status lossy;
    int i;

    *out = NULL;
    for (i = 0; opt && opt->creation_options && opt->creation_options[i]; i++) {
        const char *kv = opt->creation_options[i];
        char *key = NULL;
        const char *val = CPLParseNameValue(kv, &key);
        if (!key || !*key || !val) {
            CPLFree(key);
            CSLDestroy(o);
            return cnp_error(ctx, CNP_ERR_USAGE, "%s: creation option '%s' is not NAME=VALUE; "
                             "write it as -co NAME=VALUE", path, kv);
        }
        o = CSLSetNameValue(o, key, val);
        CPLFree(key);
    }
    if ((lossy = check_lossy(ctx, path, kind, type, opt, &o)) != CNP_OK) {
        CSLDestroy(o);
        return lossy;
    }
    if (cog) {
        int bs = round16(grid->cols > grid->rows ? grid->cols : grid->rows);
        bs = min_int(bs, MAX_BLOCK);
        if (bs < COG_MIN_BLOCK)
            bs = COG_MIN_BLOCK;
        snprintf(num, sizeof num, "%d", bs);
        o = set_default(o, "BLOCKSIZE", num);
        o = set_default(o, "COMPRESS", "DEFLATE");
        if (kind == KIND_PROBS)
            o = set_default(o, "PREDICTOR", "YES");
        o = set_default(o, "RESAMPLING", kind == KIND_PROBS ? "AVERAGE" : "NEAREST");
    } else {
        o = set_default(o, "TILED", "YES");
        if (CPLTestBool(CSLFetchNameValue(o, "TILED"))) {
            snprintf(num, sizeof num, "%d", min_int(round16(grid->cols), MAX_BLOCK));
            o = set_default(o, "BLOCKXSIZE", num);
            snprintf(num, sizeof num, "%d", min_int(round16(grid->rows), MAX_BLOCK));
            o = set_default(o, "BLOCKYSIZE", num);
        }
        o = set_default(o, "COMPRESS", "DEFLATE");
        if (kind == KIND_PROBS)
            o = set_default(o, "PREDICTOR", type == GDT_Float32 ? "3" : "2");
        if (bands > 1) {
            o = set_default(o, "INTERLEAVE", "BAND");
            o = set_default(o, "PHOTOMETRIC", "MINISBLACK");
        }
    }
    o = set_default(o, "BIGTIFF", "IF_SAFER");
    cnp_gdal_reset();
    if (!GDALValidateCreationOptions(drv, (CSLConstList)o)) {
        cnp_status st = cnp_error(ctx, CNP_ERR_USAGE, "%s: %s; see the %s driver's creation "
                                  "options (gdalinfo --format %s)", path, cnp_gdal_msg(),
                                  GDALGetDriverShortName(drv), GDALGetDriverShortName(drv));
        CSLDestroy(o);
        return st;
    }
    if (cog) {
        v = CSLFetchNameValue(o, "BLOCKSIZE");
        *bx = *by = v ? atoi(v) : 512;
    } else if (!CPLTestBool(CSLFetchNameValue(o, "TILED"))) {
        *bx = *by = MAX_BLOCK;
    } else {
        v = CSLFetchNameValue(o, "BLOCKXSIZE");
        *bx = v ? atoi(v) : MAX_BLOCK;
        v = CSLFetchNameValue(o, "BLOCKYSIZE");
        *by = v ? atoi(v) : *bx;
    }
    if (*bx < 1 || *by < 1 || (!cog && (*bx % 16 || *by % 16))) {
        CSLDestroy(o);
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: the tile size given with -co must be a "
                         "positive multiple of 16", path);
    }
    *out = o;
    return CNP_OK;
}

cnp_status cnp_raster_options_check(cnp_ctx *ctx, const cnp_raster_options *opt)
{
    int cog = opt && opt->format == CNP_FORMAT_COG, bx, by;
    GDALDriverH drv;
    cnp_grid grid;
    char **o = NULL;
    cnp_status st;

    cnp_gdal_init();
    drv = GDALGetDriverByName(cog ? "COG" : "GTiff");
    if (!drv)
        return CNP_OK; /* the writers say so, naming the file */
    memset(&grid, 0, sizeof grid);
    grid.cols = grid.rows = 256;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    st = build_options(ctx, "output rasters", drv, &grid, 2,
                       opt && opt->float_probs ? GDT_Float32 : GDT_Byte, KIND_PROBS, opt, &o,
                       &bx, &by);
    CSLDestroy(o);
    o = NULL;
    if (st == CNP_OK)
        st = build_options(ctx, "output rasters", drv, &grid, 2, GDT_Byte, KIND_MASKS, opt, &o,
                           &bx, &by);
    CSLDestroy(o);
    CPLPopErrorHandler();
    return st;
}

/* Overview factors 2, 4, ... until the smallest overview fits one tile. */
static int overview_levels(const cnp_grid *grid, int bx, int by, int levels[MAX_LEVELS])
{
    int n = 0, f = 1;
    while (n < MAX_LEVELS) {
        int w = (int)(((long long)grid->cols + f - 1) / f);
        int h = (int)(((long long)grid->rows + f - 1) / f);
        if (w <= bx && h <= by)
            break;
        f *= 2;
        levels[n++] = f;
    }
    return n;
}

/* Builds overviews on the MEM dataset and copies it to tmp with the
 * format's driver; the copy is closed and checked before returning. */
static cnp_status copy_out(cnp_ctx *ctx, const char *final, const char *tmp, GDALDatasetH mem,
                           const cnp_grid *grid, int bands, GDALDataType type, raster_kind kind,
                           const cnp_raster_options *opt)
{
    cnp_status st = CNP_OK;
    int cog = opt && opt->format == CNP_FORMAT_COG;
    GDALDriverH drv = GDALGetDriverByName(cog ? "COG" : "GTiff");
    GDALDatasetH out = NULL;
    char **o = NULL;
    int bx = 0, by = 0, levels[MAX_LEVELS], n;

    if (!drv) {
        st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: this GDAL has no %s driver; use -of %s",
                       final, cog ? "COG" : "GTiff", cog ? "GTiff" : "COG");
        goto cleanup;
    }
    st = build_options(ctx, final, drv, grid, bands, type, kind, opt, &o, &bx, &by);
    if (st != CNP_OK)
        goto cleanup;
    n = overview_levels(grid, bx, by, levels);
    if (n > 0) {
        cnp_gdal_reset();
        if (GDALBuildOverviews(mem, kind == KIND_PROBS ? "AVERAGE" : "NEAREST", n, levels, 0,
                               NULL, NULL, NULL) != CE_None) {
            st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: building overviews failed (%s)", final,
                           cnp_gdal_msg());
            goto cleanup;
        }
        if (!cog)
            o = CSLSetNameValue(o, "COPY_SRC_OVERVIEWS", "YES");
    }
    cnp_gdal_reset();
    errno = 0;
    out = GDALCreateCopy(drv, tmp, mem, FALSE, (CSLConstList)o, NULL, NULL);
    if (!out || CPLGetLastErrorType() == CE_Failure) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final, cnp_gdal_msg(),
                       cnp_write_advice(e));
        goto cleanup;
    }
    GDALFlushCache(out);
    if (CPLGetLastErrorType() == CE_Failure) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final, cnp_gdal_msg(),
                       cnp_write_advice(e));
        goto cleanup;
    }
cleanup:
    if (out) {
        errno = 0;
        GDALClose(out);
        if (st == CNP_OK && CPLGetLastErrorType() == CE_Failure) {
            int e = errno;
            st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", final, cnp_gdal_msg(),
                           cnp_write_advice(e));
        }
    }
    CSLDestroy(o);
    return st;
}

/* ---- QGIS styles -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one
 * (stray continuation byte, truncated or overlong sequence, surrogate,
 * beyond U+10FFFF): such bytes would make the XML ill-formed. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
          : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* Writes s as XML character data (attribute values included); in a comment
 * (in_comment) "--", which would end it early, becomes "- -". Control
 * characters are dropped and invalid UTF-8 bytes become '?'. Labels come
 * from model metadata: nothing in them may change the document. */
static void xml_out(FILE *f, const char *str, int in_comment)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        int n = utf8_len(s);
        if (n == 0) {
            fputc('?', f);
            s++;
            continue;
        }
        if (n > 1) {
            fwrite(s, 1, (size_t)n, f);
            s += n;
            continue;
        }
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '-': fputs(in_comment && s[1] == '-' ? "- " : "-", f); break;
        default:
            if (*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
        s++;
    }
}

static void xml_text(FILE *f, const char *s)
{
    xml_out(f, s, 0);
}

static void xml_comment(FILE *f, const char *s)
{
    xml_out(f, s, 1);
}

/* Viridis at five stops, in QGIS's "r,g,b,a" notation and as #rrggbb. */
static const struct { double at; int r, g, b; } ramp[] = {
    { 0.00, 68, 1, 84 }, { 0.25, 59, 82, 139 }, { 0.50, 33, 145, 140 },
    { 0.75, 94, 201, 98 }, { 1.00, 253, 231, 37 },
};
#define RAMP_N ((int)(sizeof ramp / sizeof ramp[0]))

static void qml_head(FILE *f)
{
    fputs("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
          "<qgis version=\"3.22.0\" styleCategories=\"AllStyleCategories\" "
          "hasScaleBasedVisibilityFlag=\"0\" minScale=\"1e+08\" maxScale=\"0\">\n"
          "  <pipe>\n"
          "    <provider>\n"
          "      <resampling enabled=\"false\" maxOversampling=\"2\" "
          "zoomedInResamplingMethod=\"nearestNeighbour\" "
          "zoomedOutResamplingMethod=\"nearestNeighbour\"/>\n"
          "    </provider>\n", f);
}

static void qml_minmax(FILE *f)
{
    fputs("      <rasterTransparency/>\n"
          "      <minMaxOrigin>\n"
          "        <limits>None</limits>\n"
          "        <extent>WholeRaster</extent>\n"
          "        <statAccuracy>Estimated</statAccuracy>\n"
          "        <cumulativeCutLower>0.02</cumulativeCutLower>\n"
          "        <cumulativeCutUpper>0.98</cumulativeCutUpper>\n"
          "        <stdDevFactor>2</stdDevFactor>\n"
          "      </minMaxOrigin>\n", f);
}

static void qml_tail(FILE *f)
{
    fputs("    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n"
          "    <huesaturation saturation=\"0\" grayscaleMode=\"0\" colorizeOn=\"0\" "
          "colorizeRed=\"255\" colorizeGreen=\"128\" colorizeBlue=\"128\" "
          "colorizeStrength=\"100\"/>\n"
          "    <rasterresampler maxOversampling=\"2\"/>\n"
          "    <resamplingStage>resamplingFilter</resamplingStage>\n"
          "  </pipe>\n"
          "  <blendMode>0</blendMode>\n"
          "</qgis>\n", f);
}

/* Probabilities: pseudocolour ramp 0..1 on the first marker band. QGIS
 * applies the band scale (1/255), so Byte and Float32 share the range. */
static void qml_probs(FILE *f, const cnp_result *res)
{
    int band = first_marker(res), i;
    char stops[256] = "";
    qml_head(f);
    fprintf(f, "    <!-- canopy: probability of ");
    xml_comment(f, res->labels[band]);
    fprintf(f, " (band %d); other labels are bands ", band + 1);
    fprintf(f, "1..%d -->\n", res->n_labels);
    fprintf(f, "    <rasterrenderer type=\"singlebandpseudocolor\" band=\"%d\" opacity=\"1\" "
            "alphaBand=\"-1\" classificationMin=\"0\" classificationMax=\"1\" "
            "nodataColor=\"\">\n", band + 1);
    qml_minmax(f);
    for (i = 1; i < RAMP_N - 1; i++) {
        size_t len = strlen(stops);
        snprintf(stops + len, sizeof stops - len, "%s%g;%d,%d,%d,255", i > 1 ? ":" : "",
                 ramp[i].at, ramp[i].r, ramp[i].g, ramp[i].b);
    }
    fprintf(f, "      <rastershader>\n"
            "        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" "
            "clip=\"0\" minimumValue=\"0\" maximumValue=\"1\" labelPrecision=\"2\">\n"
            "          <colorramp type=\"gradient\" name=\"[source]\">\n"
            "            <Option type=\"Map\">\n"
            "              <Option type=\"QString\" name=\"color1\" value=\"%d,%d,%d,255\"/>\n"
            "              <Option type=\"QString\" name=\"color2\" value=\"%d,%d,%d,255\"/>\n"
            "              <Option type=\"QString\" name=\"discrete\" value=\"0\"/>\n"
            "              <Option type=\"QString\" name=\"rampType\" value=\"gradient\"/>\n"
            "              <Option type=\"QString\" name=\"stops\" value=\"%s\"/>\n"
            "            </Option>\n"
            "            <prop k=\"color1\" v=\"%d,%d,%d,255\"/>\n"
            "            <prop k=\"color2\" v=\"%d,%d,%d,255\"/>\n"
            "            <prop k=\"discrete\" v=\"0\"/>\n"
            "            <prop k=\"rampType\" v=\"gradient\"/>\n"
            "            <prop k=\"stops\" v=\"%s\"/>\n"
            "          </colorramp>\n",
            ramp[0].r, ramp[0].g, ramp[0].b, ramp[RAMP_N - 1].r, ramp[RAMP_N - 1].g,
            ramp[RAMP_N - 1].b, stops, ramp[0].r, ramp[0].g, ramp[0].b, ramp[RAMP_N - 1].r,
            ramp[RAMP_N - 1].g, ramp[RAMP_N - 1].b, stops);
    for (i = 0; i < RAMP_N; i++)
        fprintf(f, "          <item alpha=\"255\" value=\"%g\" label=\"%.2f\" "
                "color=\"#%02x%02x%02x\"/>\n", ramp[i].at, ramp[i].at, ramp[i].r, ramp[i].g,
                ramp[i].b);
    fputs("        </colorrampshader>\n"
          "      </rastershader>\n"
          "    </rasterrenderer>\n", f);
    qml_tail(f);
}

/* Masks: paletted, 0 transparent, 1 strong red, on band `band` (1-based)
 * of `bands`, showing `label`. */
static void qml_masks(FILE *f, const char *label, int band, int bands)
{
    qml_head(f);
    fprintf(f, "    <!-- canopy: mask of ");
    xml_comment(f, label);
    if (bands > 1)
        fprintf(f, " (band %d); other labels are bands 1..%d", band, bands);
    fputs(" -->\n", f);
    fprintf(f, "    <rasterrenderer type=\"paletted\" band=\"%d\" opacity=\"1\" "
            "alphaBand=\"-1\" nodataColor=\"\">\n", band);
    qml_minmax(f);
    fputs("      <colorPalette>\n"
          "        <paletteEntry value=\"0\" color=\"#000000\" alpha=\"0\" label=\"", f);
    fputs("not ", f);
    xml_text(f, label);
    fputs("\"/>\n"
          "        <paletteEntry value=\"1\" color=\"#e31a1c\" alpha=\"255\" label=\"", f);
    xml_text(f, label);
    fputs("\"/>\n"
          "      </colorPalette>\n"
          "    </rasterrenderer>\n", f);
    qml_tail(f);
}

/* Stages NAME.qml beside `raster_final` and writes it: for probabilities
 * and all-label masks (label < 0) on the first marker band, for a
 * per-label mask file on its one band. */
static cnp_status stage_qml(cnp_ctx *ctx, stage_list *s, const char *raster_final,
                            const cnp_result *res, raster_kind kind, int label)
{
    cnp_status st = CNP_OK;
    char *qml = cnp_strdup(ctx, CPLResetExtension(raster_final, "qml"));
    const char *tmp = NULL;
    FILE *f = NULL;
    int bad;

    if (!qml)
        return CNP_ERR_NOMEM;
    st = stage_add(ctx, s, qml, &tmp);
    if (st != CNP_OK)
        goto cleanup;
    f = cnp_atomic_fopen(ctx, tmp, qml);
    if (!f) {
        st = ctx ? ctx->status : CNP_ERR_IO;
        goto cleanup;
    }
    if (kind == KIND_PROBS)
        qml_probs(f, res);
    else if (label >= 0)
        qml_masks(f, res->labels[label], 1, 1);
    else
        qml_masks(f, res->labels[first_marker(res)], first_marker(res) + 1, res->n_labels);
    bad = ferror(f);
    bad |= fclose(f) != 0;
    f = NULL;
    if (bad) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", qml, strerror(e),
                       cnp_write_advice(e));
    }
cleanup:
    if (f)
        fclose(f);
    free(qml);
    return st;
}

/* ---- probabilities ------------------------------------------------------ */

cnp_status cnp_write_probs(cnp_ctx *ctx, const char *path, const cnp_grid *grid,
                           const cnp_result *res, const cnp_raster_options *opt)
{
    cnp_status st;
    gdal_session gs;
    stage_list stages = { NULL, 0, 0 };
    GDALDatasetH mem = NULL;
    int fl = opt && opt->float_probs;
    GDALDataType type = fl ? GDT_Float32 : GDT_Byte;
    void *buf = NULL;
    const char *tmp = NULL;
    size_t cells, i;
    int l, nl;

    st = cnp_result_check(ctx, path, grid, res);
    if (st != CNP_OK)
        return st;
    session_begin(&gs);
    nl = res->n_labels;
    cells = (size_t)grid->cols * (size_t)grid->rows;
    buf = cnp_calloc(ctx, cells, fl ? sizeof(float) : 1, "a probabilities band");
    if (!buf) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    st = mem_create(ctx, path, grid, nl, type, &mem);
    if (st != CNP_OK)
        goto cleanup;
    for (l = 0; l < nl; l++) {
        GDALRasterBandH b = GDALGetRasterBand(mem, l + 1);
        if (fl) {
            float *v = buf;
            for (i = 0; i < cells; i++)
                v[i] = res->probs[i * (size_t)nl + (size_t)l];
        } else {
            unsigned char *v = buf;
            for (i = 0; i < cells; i++)
                v[i] = prob_byte(res->probs[i * (size_t)nl + (size_t)l]);
        }
        st = set_band(ctx, path, b, buf, type, grid->cols, grid->rows);
        if (st == CNP_OK)
            st = describe_band(ctx, path, b, res, l, KIND_PROBS, fl, l == 0);
        if (st != CNP_OK)
            goto cleanup;
    }
    st = describe_dataset(ctx, path, mem, res, KIND_PROBS);
    if (st == CNP_OK)
        st = stage_add(ctx, &stages, path, &tmp);
    if (st == CNP_OK)
        st = copy_out(ctx, path, tmp, mem, grid, nl, type, KIND_PROBS, opt);
    if (st == CNP_OK)
        st = stage_qml(ctx, &stages, path, res, KIND_PROBS, -1);
    if (st == CNP_OK)
        st = stage_commit(ctx, &stages);
cleanup:
    if (mem)
        GDALClose(mem);
    stage_free(&stages);
    free(buf);
    session_end(&gs);
    return st;
}

/* ---- masks -------------------------------------------------------------- */

/* A label as a file name: letters, digits, '-', '_' and '.' kept, anything
 * else (and a leading '.') becomes '_'. Caller frees. */
static char *safe_name(cnp_ctx *ctx, const char *label)
{
    char *s = cnp_strdup(ctx, label);
    char *p;
    if (!s)
        return NULL;
    for (p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (c == '.' && p != s);
        if (!ok)
            *p = '_';
    }
    return s;
}

char **cnp_split_names(cnp_ctx *ctx, const char *where, const char *const *labels, int n)
{
    char **names = cnp_calloc(ctx, (size_t)n + 1, sizeof *names, "per-label file names");
    int l, j;

    for (l = 0; names && l < n; l++) {
        if (!(names[l] = safe_name(ctx, labels[l]))) {
            CSLDestroy(names);
            return NULL;
        }
        for (j = 0; j < l; j++)
            if (strcmp(names[j], names[l]) == 0) {
                cnp_error(ctx, CNP_ERR_USAGE, "%s: labels '%s' and '%s' would both be written "
                          "as %s.tif; rename one in the model's label list", where, labels[j],
                          labels[l], names[l]);
                CSLDestroy(names);
                return NULL;
            }
    }
    return names;
}

/* mkdir -p; errors name the folder. */
static cnp_status make_dirs(cnp_ctx *ctx, const char *dir)
{
    cnp_status st = CNP_OK;
    char *d = cnp_strdup(ctx, dir);
    char *p;
    struct stat sb;

    if (!d)
        return CNP_ERR_NOMEM;
    for (p = d + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(d, 0777) != 0) {
                int e = errno;
                if (e != EEXIST || stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                    st = cnp_error(ctx, CNP_ERR_IO, "cannot create the folder %s for per-label "
                                   "masks: %s; choose another folder", d,
                                   e == EEXIST ? "a file of that name is in the way"
                                   : strerror(e));
                    break;
                }
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    free(d);
    return st;
}

static cnp_status stage_split(cnp_ctx *ctx, stage_list *stages, const char *split_dir,
                              const cnp_grid *grid, const cnp_result *res,
                              const unsigned char *masks, size_t cells,
                              const cnp_raster_options *opt)
{
    cnp_status st = CNP_OK;
    char **names = NULL;
    char *file = NULL;
    GDALDatasetH mem = NULL;
    int l, nl = res->n_labels;

    names = cnp_split_names(ctx, split_dir, res->labels, nl);
    if (!names)
        return ctx ? ctx->status : CNP_ERR_NOMEM;
    st = make_dirs(ctx, split_dir);
    if (st != CNP_OK)
        goto cleanup;
    for (l = 0; l < nl; l++) {
        size_t len = strlen(split_dir) + strlen(names[l]) + 8;
        const char *tmp = NULL;
        GDALRasterBandH b;
        file = malloc(len);
        if (!file) {
            st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory naming per-label masks");
            goto cleanup;
        }
        snprintf(file, len, "%s/%s.tif", split_dir, names[l]);
        st = mem_create(ctx, file, grid, 1, GDT_Byte, &mem);
        if (st != CNP_OK)
            goto cleanup;
        b = GDALGetRasterBand(mem, 1);
        st = set_band(ctx, file, b, masks + (size_t)l * cells, GDT_Byte, grid->cols, grid->rows);
        if (st == CNP_OK)
            st = describe_band(ctx, file, b, res, l, KIND_MASKS, 0, 1);
        if (st == CNP_OK)
            st = set_mask_palette(ctx, file, b);
        if (st == CNP_OK)
            st = describe_dataset(ctx, file, mem, res, KIND_MASKS);
        if (st == CNP_OK)
            st = stage_add(ctx, stages, file, &tmp);
        if (st == CNP_OK)
            st = copy_out(ctx, file, tmp, mem, grid, 1, GDT_Byte, KIND_MASKS, opt);
        if (st == CNP_OK)
            st = stage_qml(ctx, stages, file, res, KIND_MASKS, l);
        if (st != CNP_OK)
            goto cleanup;
        GDALClose(mem);
        mem = NULL;
        free(file);
        file = NULL;
    }
cleanup:
    if (mem)
        GDALClose(mem);
    free(file);
    CSLDestroy(names);
    return st;
}

cnp_status cnp_write_masks(cnp_ctx *ctx, const char *path, const char *split_dir,
                           const cnp_grid *grid, const cnp_result *res,
                           const cnp_raster_options *opt)
{
    cnp_status st;
    gdal_session gs;
    stage_list stages = { NULL, 0, 0 };
    GDALDatasetH mem = NULL;
    unsigned char *masks = NULL; /* (n_labels, rows * cols) */
    const char *tmp = NULL;
    size_t cells, i;
    int l, nl;

    st = cnp_result_check(ctx, path, grid, res);
    if (st != CNP_OK)
        return st;
    if (split_dir && !*split_dir)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: the per-label mask folder is empty; give a "
                         "folder name", path);
    session_begin(&gs);
    nl = res->n_labels;
    cells = (size_t)grid->cols * (size_t)grid->rows;
    masks = cnp_calloc(ctx, cells, (size_t)nl, "the masks");
    if (!masks) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (l = 0; l < nl; l++) {
        unsigned char *m = masks + (size_t)l * cells;
        for (i = 0; i < cells; i++)
            m[i] = mask_byte(res->probs[i * (size_t)nl + (size_t)l], res->thresholds[l]);
    }
    st = mem_create(ctx, path, grid, nl, GDT_Byte, &mem);
    if (st != CNP_OK)
        goto cleanup;
    for (l = 0; l < nl; l++) {
        GDALRasterBandH b = GDALGetRasterBand(mem, l + 1);
        st = set_band(ctx, path, b, masks + (size_t)l * cells, GDT_Byte, grid->cols, grid->rows);
        if (st == CNP_OK)
            st = describe_band(ctx, path, b, res, l, KIND_MASKS, 0, l == 0);
        if (st == CNP_OK && nl == 1)
            st = set_mask_palette(ctx, path, b);
        if (st != CNP_OK)
            goto cleanup;
    }
    st = describe_dataset(ctx, path, mem, res, KIND_MASKS);
    if (st == CNP_OK)
        st = stage_add(ctx, &stages, path, &tmp);
    if (st == CNP_OK)
        st = copy_out(ctx, path, tmp, mem, grid, nl, GDT_Byte, KIND_MASKS, opt);
    if (st == CNP_OK)
        st = stage_qml(ctx, &stages, path, res, KIND_MASKS, -1);
    if (st == CNP_OK && split_dir)
        st = stage_split(ctx, &stages, split_dir, grid, res, masks, cells, opt);
    if (st == CNP_OK)
        st = stage_commit(ctx, &stages);
cleanup:
    if (mem)
        GDALClose(mem);
    stage_free(&stages);
    free(masks);
    session_end(&gs);
    return st;
}
