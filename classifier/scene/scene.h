/* scene.h -- reading imagery with GDAL: image chips for predict/evaluate,
 * and (scene pipeline) the chip grid over a georeferenced scene, band
 * mapping, scaling, validity masks and strip reading. Knows nothing of ONNX.
 */
#ifndef CNP_SCENE_H
#define CNP_SCENE_H

#include "base/base.h"

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

#endif
