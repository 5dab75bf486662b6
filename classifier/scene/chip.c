/* chip.c -- one image file as one model input chip. */
#include "scene/scene.h"
#include "base/gdal.h"

#include <gdal.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t gdal_once = PTHREAD_ONCE_INIT;

static void register_all(void)
{
    GDALAllRegister();
}

void cnp_gdal_init(void)
{
    pthread_once(&gdal_once, register_all);
}

cnp_status cnp_chip_read(cnp_ctx *ctx, const char *path, const cnp_chip_spec *spec, float *out)
{
    cnp_status st = CNP_OK;
    GDALDatasetH ds = NULL;
    GDALRasterIOExtraArg extra;
    size_t plane = (size_t)spec->size * (size_t)spec->size;
    int nb, c;

    cnp_gdal_init();
    cnp_gdal_quiet_begin();
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    cnp_gdal_quiet_end();
    if (!ds) {
        st = cnp_error(ctx, CNP_ERR_IO, "%s: cannot open as an image (%s); check the path and "
                       "that it is a raster GDAL reads", path, cnp_gdal_msg());
        goto cleanup;
    }
    nb = GDALGetRasterCount(ds);
    for (c = 0; c < spec->n_channels; c++) {
        if (spec->bands[c] < 1 || spec->bands[c] > nb) {
            st = cnp_error(ctx, CNP_ERR_SHAPE, "%s: the model reads band %d but the image has %d "
                           "band%s; use a model for %d-band chips or other images", path,
                           spec->bands[c], nb, nb == 1 ? "" : "s", nb);
            goto cleanup;
        }
    }
    INIT_RASTERIO_EXTRA_ARG(extra);
    extra.eResampleAlg = GRIORA_Bilinear;
    for (c = 0; c < spec->n_channels; c++) {
        GDALRasterBandH b = GDALGetRasterBand(ds, spec->bands[c]);
        float *dst = out + (size_t)c * plane;
        double sc = spec->scale / spec->std[c];
        double sh = spec->mean[c] / spec->std[c];
        size_t i;
        cnp_gdal_quiet_begin();
        CPLErr e = GDALRasterIOEx(b, GF_Read, 0, 0, GDALGetRasterXSize(ds), GDALGetRasterYSize(ds),
                                  dst, spec->size, spec->size, GDT_Float32, 0, 0, &extra);
        cnp_gdal_quiet_end();
        if (e != CE_None) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: reading band %d failed (%s); the file may be "
                           "truncated or corrupt", path, spec->bands[c], cnp_gdal_msg());
            goto cleanup;
        }
        for (i = 0; i < plane; i++)
            dst[i] = (float)(((double)dst[i] - spec->offset) * sc - sh);
    }
cleanup:
    if (ds)
        GDALClose(ds);
    return st;
}
