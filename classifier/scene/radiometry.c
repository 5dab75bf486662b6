/* radiometry.c -- product values to reflectance, before the model's own
 * scaling:
 *  - Sentinel-2 (ESA's Products Specification Document, and ESA's note on
 *    processing baseline 04.00, January 2022): L1C TOA reflectance =
 *    (DN + RADIO_ADD_OFFSET[band]) / QUANTIFICATION_VALUE, L2A BOA
 *    reflectance = (DN + BOA_ADD_OFFSET[band]) / BOA_QUANTIFICATION_VALUE.
 *    The offsets exist from baseline 04.00 on (-1000 so far), per band_id
 *    0..12 = B1..B8, B8A, B9..B12; before, the offset is 0. GDAL 3.6's
 *    SENTINEL2 driver exposes the quantification values as metadata but not
 *    the offsets: those are read from the product XML it exposes in its
 *    xml:SENTINEL2 metadata domain (CPLParseXMLString, GDAL's XML reader).
 *  - PlanetScope AnalyticMS_SR (Planet's product documentation): surface
 *    reflectance x 10000.
 * Also the check that a model trained on 8-bit display images is not fed
 * reflectance without --scale-range. */
#include "scene/product_int.h"

#include <gdal.h>
#include <cpl_conv.h>
#include <cpl_minixml.h>
#include <cpl_string.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* band_id of each physical band (PSD: B1..B8, B8A, B9..B12). */
static const char *const BAND_IDS[13] = {"B1", "B2", "B3", "B4", "B5", "B6", "B7",
                                         "B8", "B8A", "B9", "B10", "B11", "B12"};

/* First element named `name` (namespace prefix ignored) under node, depth
 * first. */
static CPLXMLNode *find_node(CPLXMLNode *node, const char *name)
{
    for (; node; node = node->psNext) {
        const char *n, *colon;
        CPLXMLNode *hit;
        if (node->eType != CXT_Element)
            continue;
        colon = strchr(node->pszValue, ':');
        n = colon ? colon + 1 : node->pszValue;
        if (!strcmp(n, name))
            return node;
        if ((hit = find_node(node->psChild, name)) != NULL)
            return hit;
    }
    return NULL;
}

/* The offsets of list (children `item` with attribute band_id) into
 * off[13]; returns how many were found. */
static int read_offsets(CPLXMLNode *list, const char *item, double off[13])
{
    CPLXMLNode *c;
    int found = 0;
    for (c = list ? list->psChild : NULL; c; c = c->psNext) {
        const char *id, *v;
        int k;
        if (c->eType != CXT_Element || strcmp(c->pszValue, item) != 0)
            continue;
        id = CPLGetXMLValue(c, "band_id", NULL);
        v = CPLGetXMLValue(c, NULL, NULL);
        k = id ? atoi(id) : -1;
        if (k < 0 || k > 12 || !v)
            continue;
        off[k] = CPLAtof(v);
        found++;
    }
    return found;
}

/* Sentinel-2: per-channel add/gain from the dataset's metadata. */
static cnp_status s2_radiometry(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds)
{
    int l2a = pr->kind == CNP_PRODUCT_S2_L2A, c, k, n_off = 0;
    const char *qkey = l2a ? "BOA_QUANTIFICATION_VALUE" : "QUANTIFICATION_VALUE";
    const char *okey = l2a ? "BOA_ADD_OFFSET" : "RADIO_ADD_OFFSET";
    const char *q = GDALGetMetadataItem(ds, qkey, NULL);
    char **xml = GDALGetMetadata(ds, "xml:SENTINEL2");
    double quant = q ? CPLAtof(q) : 0, off[13] = {0};
    int new_baseline = pr->baseline && CPLAtof(pr->baseline) >= 4.0 - 1e-9;
    CPLXMLNode *root = NULL;
    cnp_status st = CNP_OK;
    char buf[256];

    if (!(quant > 0)) {
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the product metadata gives no %s, so its "
                         "values cannot be turned into reflectance; the MTD_MSIL%s.xml is "
                         "incomplete: download the product again", pr->path, qkey,
                         l2a ? "2A" : "1C");
    }
    if (xml && xml[0])
        root = CPLParseXMLString(xml[0]);
    if (root)
        n_off = read_offsets(find_node(root, l2a ? "BOA_ADD_OFFSET_VALUES_LIST"
                                                 : "Radiometric_Offset_List"), okey, off);
    if (new_baseline && n_off == 0) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: processing baseline %s products carry %s "
                       "values (reflectance = (DN + offset) / %g) but its metadata has none; "
                       "the MTD_MSIL%s.xml is incomplete or altered: download the product "
                       "again", pr->path, pr->baseline, okey, quant, l2a ? "2A" : "1C");
        goto cleanup;
    }
    for (c = 0; c < pr->n_channels; c++) {
        GDALRasterBandH b = GDALGetRasterBand(ds, pr->bands[c]);
        const char *name = b ? GDALGetMetadataItem(b, "BANDNAME", NULL) : NULL;
        pr->rad_gain[c] = 1.0 / quant;
        pr->rad_add[c] = 0.0;
        for (k = 0; name && k < 13; k++)
            if (!strcasecmp(name, BAND_IDS[k]))
                pr->rad_add[c] = off[k];
    }
    pr->has_radiometry = 1;
    snprintf(buf, sizeof buf, "Sentinel-2 %s reflectance = (DN + %s) / %s = %g, baseline %s%s",
             l2a ? "L2A BOA" : "L1C TOA", okey, qkey, quant, pr->baseline ? pr->baseline : "?",
             n_off ? "" : " (no offsets before 04.00)");
    pr->radiometry = cnp_strdup(ctx, buf);
    if (!pr->radiometry)
        st = CNP_ERR_NOMEM;
cleanup:
    if (root)
        CPLDestroyXMLNode(root);
    return st;
}

/* Warnings about the model's input range: a model trained on 8-bit display
 * images (canopy.trained_on naming a visual/JPEG product) fed reflectance
 * without --scale-range, or a --scale-range in digital numbers on a
 * product canopy already turned into reflectance. */
static void range_warnings(cnp_product *pr, const cnp_product_params *p)
{
    const char *tr = p->trained_on;
    int visual_model = tr && (strstr(tr, "visual") || strstr(tr, "jpeg") || strstr(tr, "jpg") ||
                              strstr(tr, "8bit") || strstr(tr, "8-bit"));
    if (!pr->has_radiometry)
        return;
    if (!visual_model && !p->scale_range_given && p->model_scale > 0 && p->model_scale < 0.05)
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: the model %s scales its input by %.6g (8-bit values, 0..255) but canopy reads "
            "this %s as reflectance (0..1, %s); give --scale-range 0,0.3 to stretch it as the "
            "model expects", pr->path, p->model_name ? p->model_name : "", p->model_scale,
            pr->kind_name, pr->radiometry));
    if (visual_model && !p->scale_range_given)
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: the model %s was trained on %s (8-bit display images) but this scene is %s, "
            "reflectance mostly between 0 and 0.3; give --scale-range 0,0.3 to stretch it "
            "as the model expects", pr->path, p->model_name ? p->model_name : "", tr,
            pr->kind_name));
    if (p->scale_range_given && p->scale_range_hi > 2.0)
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: --scale-range ends at %g, but canopy reads this %s as reflectance (0..1, "
            "%s); give the range in reflectance, e.g. --scale-range 0,0.3", pr->path,
            p->scale_range_hi, pr->kind_name, pr->radiometry));
}

cnp_status cnp_product_radiometry(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds,
                                  const cnp_product_params *p)
{
    cnp_status st = CNP_OK;
    int c;
    for (c = 0; c < pr->n_channels; c++) {
        pr->rad_add[c] = 0.0;
        pr->rad_gain[c] = 1.0;
    }
    switch (pr->kind) {
    case CNP_PRODUCT_S2_L1C:
    case CNP_PRODUCT_S2_L2A:
        st = s2_radiometry(ctx, pr, ds);
        break;
    case CNP_PRODUCT_PS_SR:
        for (c = 0; c < pr->n_channels; c++)
            pr->rad_gain[c] = 1.0 / 10000.0;
        pr->has_radiometry = 1;
        pr->radiometry = cnp_strdup(ctx, "PlanetScope surface reflectance = DN / 10000");
        break;
    default:
        pr->radiometry = cnp_strdup(ctx, "none (values as read)");
        break;
    }
    if (st == CNP_OK && !pr->radiometry)
        st = CNP_ERR_NOMEM;
    if (st == CNP_OK)
        range_warnings(pr, p);
    return st;
}
