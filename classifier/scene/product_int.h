/* product_int.h -- steps of cnp_product_open shared between products.c,
 * radiometry.c and qmask.c; not part of the scene module's interface. */
#ifndef CNP_PRODUCT_INT_H
#define CNP_PRODUCT_INT_H

#include "scene/product.h"

#include <gdal.h>

/* Fills pr->rad_add/rad_gain/radiometry for the product's kind (bands
 * already resolved on ds, the dataset the tiler reads) and adds warnings
 * about the model's input range. */
cnp_status cnp_product_radiometry(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds,
                                  const cnp_product_params *p);

/* Chooses the quality mask (pr->qmask, qmask_path, qmask_rule) from the
 * product, the UDM2 beside a PlanetScope scene, or p->mask_file; a
 * missing product mask is an error naming it, an absent UDM2 a warning. */
cnp_status cnp_product_find_qmask(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds,
                                  const cnp_product_params *p);

#endif
