/* product.h -- satellite products as scenes: Sentinel-2 L1C/L2A (.SAFE
 * folder, its .zip, or its MTD_MSIL*.xml, opened through GDAL's SENTINEL2
 * driver) and PlanetScope scene files (AnalyticMS_SR, AnalyticMS, Visual),
 * or any other raster GDAL reads.
 *
 * Opening a product decides what the tiler reads (scene.h):
 *  - the GDAL dataset: for Sentinel-2 the driver's subdataset at the finest
 *    resolution that holds every band the model asks for (10 m for
 *    B2/B3/B4/B8), for anything else the file itself;
 *  - the bands: by name or role (bands.c) or by number;
 *  - the radiometry (radiometry.c): Sentinel-2 reflectance
 *    (DN + BOA_ADD_OFFSET | RADIO_ADD_OFFSET) / QUANTIFICATION_VALUE per band,
 *    offsets from processing baseline 04.00 on; PlanetScope surface
 *    reflectance DN / 10000; none for other rasters;
 *  - the quality mask (qmask.c): SCL (L2A), MSK_CLASSI (L1C, baseline >=
 *    04.00) or MSK_CLOUDS_B00.gml (L1C before, rasterised by GDAL), the
 *    scene's UDM2 (PlanetScope), or --mask FILE;
 *  - the output name: the product's name (S2B_MSIL2A_..._T33UUP_...), the
 *    scene file's base name otherwise.
 * canopy reads no JPEG 2000 and no band file itself: GDAL does.
 */
#ifndef CNP_PRODUCT_H
#define CNP_PRODUCT_H

#include "scene/scene.h"

typedef enum {
    CNP_PRODUCT_RASTER = 0,   /* any other raster */
    CNP_PRODUCT_S2_L1C,
    CNP_PRODUCT_S2_L2A,
    CNP_PRODUCT_PS_SR,        /* PlanetScope AnalyticMS_SR (4 or 8 bands) */
    CNP_PRODUCT_PS_ANALYTIC,  /* PlanetScope AnalyticMS (radiance) */
    CNP_PRODUCT_PS_VISUAL     /* PlanetScope Visual (8-bit RGB) */
} cnp_product_kind;

/* How the quality mask is chosen (cnp_product_params.mask_mode). */
typedef enum {
    CNP_MASK_AUTO = 0,   /* the product's own: SCL, MSK_CLASSI, UDM2 beside it */
    CNP_MASK_FILE = 1,   /* mask_file: a UDM2 (8 bands) or a 1-band mask, 0 = unusable */
    CNP_MASK_NONE = 2    /* none */
} cnp_mask_mode;

#define CNP_SCL_CLASSES 12

/* What the model and the user ask for. Borrowed. */
typedef struct cnp_product_params {
    int n_channels;
    const int *bands;          /* (n_channels) 1-based band numbers */
    const char *const *names;  /* (n_channels) roles ("red", "nir") or band names
                                  ("B04"), or NULL: use bands */
    int bands_given;           /* bands come from the user (--bands): they win over
                                  names and are not second-guessed */
    cnp_mask_mode mask_mode;
    const char *mask_file;     /* CNP_MASK_FILE */
    const unsigned char *scl_unusable; /* (CNP_SCL_CLASSES) 1 = unusable, or NULL for
                                  the default: 0, 1, 3, 8, 9, 10 */
    const char *trained_on;    /* the model's canopy.trained_on, or NULL */
    const char *model_name;    /* for messages */
    double model_scale;        /* the model's canopy.scale (0: unknown): a scale
                                  far below 1 (1/255) expects 8-bit values */
    int scale_range_given;     /* --scale-range A,B given */
    double scale_range_hi;     /* its B */
} cnp_product_params;

/* An opened product: what to read and how. Owned by the caller, freed with
 * cnp_product_free(); every pointer inside is owned by it. */
typedef struct cnp_product {
    cnp_product_kind kind;
    const char *kind_name;     /* static: "sentinel2-l2a", "planetscope-sr", "raster"... */
    char *path;                /* as given */
    char *dataset;             /* the GDAL dataset the tiler opens */
    char *name;                /* output NAME (from the path, or the sanitised PRODUCT_URI) */
    char *resolution;          /* Sentinel-2: "10m", "20m" or "60m"; else NULL */
    char *baseline;            /* Sentinel-2 processing baseline ("05.09"); else NULL */
    int n_channels;
    int *bands;                /* (n_channels) 1-based bands of dataset */
    char **band_names;         /* (n_channels) what each band is ("B4 red") */
    double *rad_add;           /* (n_channels) reflectance = (DN + rad_add) * rad_gain */
    double *rad_gain;          /* (n_channels) */
    int has_radiometry;        /* 0: values go to the model as read */
    char *radiometry;          /* how, in words, for messages and the manifest */
    int have_nodata;           /* a nodata value for bands that declare none */
    double nodata;
    int has_qmask;
    cnp_qmask_spec qmask;      /* qmask.path points into this object */
    char *qmask_path;
    char *qmask_rule;          /* the mask's rule in words ("SCL classes 0,1,3,8,9,10 unusable") */
    char *qmask_tmp;           /* a /vsimem/ raster made for the mask (L1C GML cloud
                                  masks rasterised), removed by cnp_product_free */
    char **warnings;           /* NULL-terminated, or NULL: things the user should know */
} cnp_product;

/* Identifies and opens a product (or plain raster) and resolves what to
 * read for the model. Errors name the product, what is missing (a band's
 * file, its metadata, a mask) and what to do. On success *out is new; the
 * caller frees it with cnp_product_free(). */
cnp_status cnp_product_open(cnp_ctx *ctx, const char *path, const cnp_product_params *p,
                            cnp_product **out);

void cnp_product_free(cnp_product *pr);

/* The product's description as a JSON object text (kind, dataset,
 * resolution, baseline, bands, radiometry, mask) for the run manifest.
 * Caller frees. NULL on allocation failure. */
char *cnp_product_json(const cnp_product *pr);

/* The output name of a scene from its path alone: X.SAFE (folder) -> X,
 * X.zip / X.SAFE.zip -> X, X.SAFE/MTD_MSIL2A.xml -> X, any other file its
 * base name without extension ("scene" when empty). Caller frees (free());
 * NULL when out of memory. */
char *cnp_product_name(const char *path);

/* 1 when path is a folder that is one Sentinel-2 product (a .SAFE folder
 * holding an MTD_MSIL*.xml): folder expansion takes it as one scene. */
int cnp_product_is_safe_dir(const char *path);

/* 1 when a file beside scenes is a product's side file and not a scene of
 * its own (PlanetScope _udm2.tif, _udm.tif, _DN_udm.tif). */
int cnp_product_is_side_file(const char *name);

/* ---- bands.c ---------------------------------------------------------- */

/* Resolves the model's channel names (roles or band names) to 1-based
 * bands of ds (kind tells what the product's bands are), writing bands
 * (n) and appending what each is to *labels (CSL). A name that matches no
 * band: CNP_ERR_SHAPE naming it and the bands there are. `what` names the
 * dataset in messages. */
cnp_status cnp_bands_resolve(cnp_ctx *ctx, const char *what, void *ds, cnp_product_kind kind,
                             int n, const char *const *names, int *bands, char ***labels);

/* What band b (1-based) of ds is: a role ("red") or band name, "" when
 * unknown. Writes into buf (size n); returns buf. */
const char *cnp_band_describe(void *ds, cnp_product_kind kind, int b, char *buf, size_t n);

/* The role ("red", "green", "blue", "nir", ...) of band b, or NULL. Static. */
const char *cnp_band_role(void *ds, cnp_product_kind kind, int b);

#endif
