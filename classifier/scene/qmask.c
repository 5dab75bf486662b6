/* qmask.c -- which pixels of a product are usable (cloud and quality
 * masks), as a cnp_qmask_spec the tiler reads beside the bands:
 *  - Sentinel-2 L2A: the scene classification (SCL, 20 m, through the
 *    SENTINEL2 driver's 20 m subdataset). Default unusable classes (ESA's
 *    Level-2A algorithm description): 0 no data, 1 saturated or defective,
 *    3 cloud shadow, 8 cloud medium probability, 9 cloud high probability,
 *    10 thin cirrus; configurable.
 *  - Sentinel-2 L1C from baseline 04.00: QI_DATA/MSK_CLASSI_B00.jp2 (60 m;
 *    band 1 opaque clouds, band 2 cirrus, band 3 snow): unusable where
 *    band 1 or 2 is set. Earlier baselines deliver the cloud mask as GML
 *    polygons (QI_DATA/MSK_CLOUDS_B00.gml, opaque and cirrus MaskFeatures):
 *    read with OGR's GML driver and rasterised at 60 m by GDALRasterizeLayers
 *    into a /vsimem/ raster; unusable inside any polygon.
 *  - PlanetScope: the scene's UDM2 (Planet's UDM2 specification: band 1
 *    clear, 2 snow, 3 shadow, 4 light haze, 5 heavy haze, 6 cloud, 7
 *    confidence, 8 legacy UDM), found beside the scene by name
 *    (<id>_3B_udm2.tif, <id>_3B_udm2_clip.tif): usable only where band 1
 *    (clear) is 1.
 *  - --mask FILE: a UDM2 (8 bands) or a 1-band mask, 0 = unusable. */
#define _GNU_SOURCE
#include "scene/product_int.h"
#include "base/gdal.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal_alg.h>

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const unsigned char SCL_DEFAULT_UNUSABLE[CNP_SCL_CLASSES] = {1, 1, 0, 1, 0, 0,
                                                                    0, 0, 1, 1, 1, 0};

static int file_exists(const char *path)
{
    VSIStatBufL sb;
    return VSIStatL(path, &sb) == 0;
}

static cnp_status set_path(cnp_ctx *ctx, cnp_product *pr, const char *path, const char *kind,
                           const char *rule)
{
    pr->qmask_path = cnp_strdup(ctx, path);
    pr->qmask_rule = cnp_strdup(ctx, rule);
    if (!pr->qmask_path || !pr->qmask_rule)
        return CNP_ERR_NOMEM;
    pr->qmask.path = pr->qmask_path;
    pr->qmask.kind = kind;
    pr->has_qmask = 1;
    return CNP_OK;
}

/* Starts pr->qmask afresh: rule ALL over n_bands consecutive bands from
 * `band` (1-based), no value usable yet. */
static void qmask_reset(cnp_product *pr, int n_bands, int band)
{
    int b;
    memset(&pr->qmask, 0, sizeof pr->qmask);
    pr->qmask.rule = CNP_QMASK_ALL;
    pr->qmask.n_bands = n_bands;
    for (b = 0; b < n_bands; b++)
        pr->qmask.bands[b] = band + b;
}

/* UDM2: usable only where band 1 (clear) is 1. */
static cnp_status use_udm2(cnp_ctx *ctx, cnp_product *pr, const char *path)
{
    qmask_reset(pr, 1, 1);
    pr->qmask.usable[0][1] = 1;
    return set_path(ctx, pr, path, "udm2", "UDM2: usable where band 1 (clear) is 1");
}

/* A 1-band mask: usable where non-zero; an 8-band file is a UDM2. */
static cnp_status use_file(cnp_ctx *ctx, cnp_product *pr, const char *path)
{
    GDALDatasetH ds;
    int n;
    cnp_gdal_quiet_begin();
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    cnp_gdal_quiet_end();
    if (!ds)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open the mask given with --mask (%s); "
                         "give a UDM2 or a 1-band raster, 0 = unusable", path,
                         cnp_gdal_msg());
    n = GDALGetRasterCount(ds);
    GDALClose(ds);
    if (n >= 8)
        return use_udm2(ctx, pr, path);
    if (n != 1)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: a mask given with --mask has %d bands; give "
                         "a PlanetScope UDM2 (8 bands) or a 1-band raster, 0 = unusable", path, n);
    qmask_reset(pr, 1, 1);
    memset(pr->qmask.usable[0], 1, 256);
    pr->qmask.usable[0][0] = 0;
    return set_path(ctx, pr, path, "mask", "--mask: usable where non-zero");
}

/* L2A: the SCL band of the 20 m subdataset of the same UTM zone. */
static cnp_status use_scl(cnp_ctx *ctx, cnp_product *pr, const cnp_product_params *p)
{
    const unsigned char *bad = p->scl_unusable ? p->scl_unusable : SCL_DEFAULT_UNUSABLE;
    char *sub = cnp_strdup(ctx, pr->dataset), *res, rule[160], **files = NULL;
    GDALDatasetH ds = NULL;
    cnp_status st = CNP_OK;
    size_t len;
    int b, n, found = 0, i;

    if (!sub)
        return CNP_ERR_NOMEM;
    res = pr->resolution ? strstr(sub, CPLSPrintf(":%s:", pr->resolution)) : NULL;
    if (!res) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: cannot name the 20 m subdataset", pr->path);
        goto cleanup;
    }
    memcpy(res + 1, "20m", 3); /* "10m"/"60m" -> "20m": same length */
    cnp_gdal_quiet_begin();
    ds = GDALOpenEx(sub, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    cnp_gdal_quiet_end();
    n = ds ? GDALGetRasterCount(ds) : 0;
    for (b = 1; b <= n && !found; b++) {
        const char *name = GDALGetMetadataItem(GDALGetRasterBand(ds, b), "BANDNAME", NULL);
        if (name && !strcmp(name, "SCL"))
            found = b;
    }
    /* The driver reads a missing JP2 as zeros ("no data" everywhere): the
     * SCL file must be among the dataset's files. */
    files = ds ? GDALGetFileList(ds) : NULL;
    for (i = 0; found && files && files[i]; i++)
        if ((len = strlen(files[i])) > 12 && !strcasecmp(files[i] + len - 12, "_SCL_20m.jp2"))
            break;
    if (!found || !files || !files[i]) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: its scene classification (SCL, "
                       "IMG_DATA/R20m/*_SCL_20m.jp2) is missing, so clouds cannot be masked; "
                       "download the product again, or give --mask none to classify it "
                       "without a cloud mask", pr->path);
        goto cleanup;
    }
    qmask_reset(pr, 1, found); /* classes above 11 do not exist: unusable */
    len = (size_t)snprintf(rule, sizeof rule, "SCL: classes");
    for (i = 0; i < CNP_SCL_CLASSES; i++) {
        pr->qmask.usable[0][i] = !bad[i];
        if (bad[i] && len < sizeof rule)
            len += (size_t)snprintf(rule + len, sizeof rule - len, " %d", i);
    }
    if (len < sizeof rule)
        snprintf(rule + len, sizeof rule - len, " unusable");
    st = set_path(ctx, pr, sub, "scl", rule);
cleanup:
    CSLDestroy(files);
    if (ds)
        GDALClose(ds);
    free(sub);
    return st;
}

/* The cloud mask GRANULE/<g>/QI_DATA/<file> beside the granule's
 * MTD_TL.xml (caller frees), or NULL when it is missing, with the error in
 * ctx; `when` says which processing baselines deliver it ("before" or
 * "from" 04.00). */
static char *qi_file(cnp_ctx *ctx, const cnp_product *pr, GDALDatasetH ds, const char *file,
                     const char *when)
{
    char **files = GDALGetFileList(ds), *out = NULL;
    int i;
    for (i = 0; files && files[i] && !out; i++)
        if (!strcmp(CPLGetFilename(files[i]), "MTD_TL.xml"))
            out = strdup(CPLFormFilename(CPLFormFilename(CPLGetPath(files[i]), "QI_DATA", NULL),
                                         file, NULL));
    CSLDestroy(files);
    if (out && file_exists(out))
        return out;
    free(out);
    cnp_error(ctx, CNP_ERR_FORMAT, "%s: its cloud mask (GRANULE/*/QI_DATA/%s, delivered %s "
              "processing baseline 04.00) is missing; download the product again, or give "
              "--mask none to classify it without a cloud mask", pr->path, file, when);
    return NULL;
}

/* L1C before baseline 04.00: the GML cloud polygons rasterised at 60 m
 * over the dataset into a /vsimem/ GeoTIFF (1 = cloud). */
static cnp_status use_clouds_gml(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds)
{
    char *gml = qi_file(ctx, pr, ds, "MSK_CLOUDS_B00.gml", "before");
    GDALDatasetH vds = NULL, mds = NULL;
    GDALDriverH gtiff = GDALGetDriverByName("GTiff");
    OGRLayerH layers[16];
    double gt[6], mgt[6], burn[16];
    int band = 1, n = 0, i, w, h;
    cnp_status st = CNP_OK;

    if (!gml)
        return CNP_ERR_FORMAT;
    cnp_gdal_quiet_begin();
    vds = GDALOpenEx(gml, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    cnp_gdal_quiet_end();
    if (!vds) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: its cloud mask %s cannot be read as GML (%s); "
                       "give --mask none to classify it without a cloud mask", pr->path, gml,
                       cnp_gdal_msg());
        goto cleanup;
    }
    for (i = 0; i < GDALDatasetGetLayerCount(vds) && n < 16; i++, n++) {
        layers[n] = GDALDatasetGetLayer(vds, i);
        burn[n] = 1.0;
    }
    GDALGetGeoTransform(ds, gt);
    w = (int)ceil(GDALGetRasterXSize(ds) * gt[1] / 60.0 - 1e-9);
    h = (int)ceil(GDALGetRasterYSize(ds) * -gt[5] / 60.0 - 1e-9);
    memcpy(mgt, gt, sizeof mgt);
    mgt[1] = 60.0;
    mgt[5] = -60.0;
    pr->qmask_tmp = strdup(CPLSPrintf("/vsimem/canopy-msk-clouds-%p.tif", (void *)pr));
    mds = pr->qmask_tmp && gtiff ? GDALCreate(gtiff, pr->qmask_tmp, w, h, 1, GDT_Byte, NULL)
                                 : NULL;
    if (!mds || GDALSetGeoTransform(mds, mgt) != CE_None ||
        GDALSetProjection(mds, GDALGetProjectionRef(ds)) != CE_None ||
        (n > 0 && GDALRasterizeLayers(mds, 1, &band, n, layers, NULL, NULL, burn, NULL, NULL,
                                      NULL) != CE_None)) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "%s: rasterising its cloud mask %s failed (%s)",
                       pr->path, gml, cnp_gdal_msg());
        goto cleanup;
    }
    GDALClose(mds);
    mds = NULL;
    qmask_reset(pr, 1, 1);
    pr->qmask.usable[0][0] = 1;
    st = set_path(ctx, pr, pr->qmask_tmp, "msk_clouds",
                  "MSK_CLOUDS_B00.gml: unusable inside the opaque and cirrus cloud polygons "
                  "(rasterised at 60 m)");
cleanup:
    if (mds)
        GDALClose(mds);
    if (vds)
        GDALClose(vds);
    free(gml);
    return st;
}

/* L1C: QI_DATA/MSK_CLASSI_B00.jp2 beside the granule's MTD_TL.xml. */
static cnp_status use_classi(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds)
{
    char *mask = qi_file(ctx, pr, ds, "MSK_CLASSI_B00.jp2", "from");
    cnp_status st;

    if (!mask)
        return CNP_ERR_FORMAT;
    qmask_reset(pr, 2, 1); /* band 1 opaque clouds, band 2 cirrus */
    pr->qmask.usable[0][0] = pr->qmask.usable[1][0] = 1;
    st = set_path(ctx, pr, mask, "msk_classi",
                  "MSK_CLASSI: unusable where band 1 (opaque clouds) or 2 (cirrus) is set");
    free(mask);
    return st;
}

/* PlanetScope: <prefix>_3B_udm2[_clip].tif beside the scene. */
static cnp_status find_udm2(cnp_ctx *ctx, cnp_product *pr)
{
    const char *base = CPLGetFilename(pr->path), *b3 = strstr(base, "_3B_");
    char *prefix = b3 ? CPLStrdup(base) : NULL, *dir = CPLStrdup(CPLGetPath(pr->path));
    int clip = strstr(base, "_clip") != NULL, k;
    cnp_status st = CNP_OK;

    if (prefix) {
        prefix[b3 - base] = '\0';
        for (k = clip ? 0 : 1; k < 2; k++) {
            const char *f = CPLFormFilename(dir, CPLSPrintf("%s_3B_udm2%s", prefix,
                                                            k == 0 ? "_clip" : ""), "tif");
            if (file_exists(f)) {
                st = use_udm2(ctx, pr, f);
                goto cleanup;
            }
        }
    }
    pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
        "%s: no UDM2 beside it (%s_3B_udm2.tif); clouds and haze are not masked: give its "
        "usable-data mask with --mask FILE", pr->path, prefix ? prefix : "..."));
cleanup:
    CPLFree(prefix);
    CPLFree(dir);
    return st;
}

cnp_status cnp_product_find_qmask(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds,
                                  const cnp_product_params *p)
{
    if (p->mask_mode == CNP_MASK_NONE)
        return CNP_OK;
    if (p->mask_mode == CNP_MASK_FILE)
        return use_file(ctx, pr, p->mask_file);
    switch (pr->kind) {
    case CNP_PRODUCT_S2_L2A:
        return use_scl(ctx, pr, p);
    case CNP_PRODUCT_S2_L1C:
        if (pr->baseline && CPLAtof(pr->baseline) >= 4.0 - 1e-9)
            return use_classi(ctx, pr, ds);
        return use_clouds_gml(ctx, pr, ds);
    case CNP_PRODUCT_PS_SR:
    case CNP_PRODUCT_PS_ANALYTIC:
    case CNP_PRODUCT_PS_VISUAL:
        return find_udm2(ctx, pr);
    default:
        return CNP_OK;
    }
}
