/* products.c -- identifying and opening products (see product.h).
 *
 * Sentinel-2: the product's metadata file (MTD_MSIL2A.xml / MTD_MSIL1C.xml
 * in a .SAFE folder, directly or inside a .zip through /vsizip/) is opened
 * with GDAL's SENTINEL2 driver; its subdatasets (one per resolution and UTM
 * zone) are tried finest first and the first that holds every band the
 * model asks for is read. The driver reads a missing band file as zeros
 * with only a warning, so each band's JP2 must be among the subdataset's
 * files (GDALGetFileList). PlanetScope: scene files named
 * <id>_3B_<asset>[_clip].tif (Planet's PSScene asset names). */
#define _GNU_SOURCE
#include "scene/product_int.h"
#include "base/gdal.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <json.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const KIND_NAMES[] = {"raster", "sentinel2-l1c", "sentinel2-l2a",
                                         "planetscope-sr", "planetscope-analytic",
                                         "planetscope-visual"};

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int is_dir(const char *path)
{
    VSIStatBufL sb;
    return VSIStatL(path, &sb) == 0 && VSI_ISDIR(sb.st_mode);
}

static int exists(const char *path)
{
    VSIStatBufL sb;
    return VSIStatL(path, &sb) == 0;
}

/* The product metadata file in folder dir (a .SAFE), or NULL. Caller frees. */
static char *mtd_in(const char *dir)
{
    static const char *const names[] = {"MTD_MSIL2A.xml", "MTD_MSIL1C.xml", NULL};
    int i;
    for (i = 0; names[i]; i++) {
        const char *f = CPLFormFilename(dir, names[i], NULL);
        if (exists(f))
            return CPLStrdup(f);
    }
    return NULL;
}

/* The metadata file inside a zip: <zip>/<X>.SAFE/MTD_MSIL*.xml, whatever
 * the zip is called. Caller frees (CPLFree), NULL when there is none. */
static char *mtd_in_zip(const char *zip)
{
    char *root = CPLStrdup(CPLSPrintf("/vsizip/%s", zip)), *hit = NULL;
    char **ls = VSIReadDir(root);
    int i;
    for (i = 0; ls && ls[i] && !hit; i++)
        if (has_suffix(ls[i], ".SAFE"))
            hit = mtd_in(CPLFormFilename(root, ls[i], NULL));
    CSLDestroy(ls);
    CPLFree(root);
    return hit;
}

int cnp_product_is_safe_dir(const char *path)
{
    char *m;
    if (!is_dir(path))
        return 0;
    m = mtd_in(path);
    CPLFree(m);
    return m != NULL;
}

int cnp_product_is_side_file(const char *name)
{
    return has_suffix(name, "_udm2.tif") || has_suffix(name, "_udm2_clip.tif") ||
           has_suffix(name, "_udm.tif") || has_suffix(name, "_udm_clip.tif") ||
           has_suffix(name, "_DN_udm.tif");
}

/* A name from a product's metadata: letters, digits, '.', '_' and '-' kept, anything else
 * (separators included) becomes '_'; never empty or hidden. */
static char *sanitise(cnp_ctx *ctx, const char *s)
{
    char *o = cnp_strdup(ctx, s && *s ? s : "scene"), *q;
    if (!o)
        return NULL;
    for (q = o; *q; q++)
        if (!(isalnum((unsigned char)*q) || *q == '.' || *q == '_' || *q == '-'))
            *q = '_';
    if (o[0] == '.')
        o[0] = '_';
    return o;
}

static int is_mtd_name(const char *base)
{
    return has_suffix(base, ".xml") && (strstr(base, "MTD_MSIL") || strstr(base, "MTD_SAFL"));
}

char *cnp_product_name(const char *path)
{
    char *copy = CPLStrdup(path), *out;
    char buf[1024];
    size_t n = strlen(copy);

    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    snprintf(buf, sizeof buf, "%s", CPLGetFilename(copy));
    if (is_mtd_name(buf) && has_suffix(CPLGetFilename(CPLGetPath(copy)), ".SAFE")) {
        snprintf(buf, sizeof buf, "%s", CPLGetFilename(CPLGetPath(copy)));
    } else if (!has_suffix(buf, ".zip") && !has_suffix(buf, ".SAFE")) {
        snprintf(buf, sizeof buf, "%s", CPLGetBasename(copy)); /* any other scene */
    }
    if (has_suffix(buf, ".zip"))
        buf[strlen(buf) - 4] = '\0';
    if (has_suffix(buf, ".SAFE"))
        buf[strlen(buf) - 5] = '\0';
    out = strdup(buf[0] ? buf : "scene");
    CPLFree(copy);
    return out;
}

/* A Sentinel-2 product's name: from its path (cnp_product_name), or, for
 * an MTD_MSIL*.xml outside a .SAFE folder, its PRODUCT_URI (content:
 * sanitised). */
static char *s2_name(cnp_ctx *ctx, const char *path, GDALDatasetH ds)
{
    const char *uri = ds ? GDALGetMetadataItem(ds, "PRODUCT_URI", NULL) : NULL;
    char buf[1024], *name;

    if (!is_mtd_name(CPLGetFilename(path)) ||
        has_suffix(CPLGetFilename(CPLGetPath(path)), ".SAFE") || !uri || !*uri) {
        if (!(name = cnp_product_name(path)))
            cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        return name;
    }
    snprintf(buf, sizeof buf, "%s", uri);
    if (has_suffix(buf, ".SAFE"))
        buf[strlen(buf) - 5] = '\0';
    return sanitise(ctx, buf);
}

/* The kind of a scene file by its name (PlanetScope assets), else RASTER. */
static cnp_product_kind file_kind(const char *path)
{
    const char *b = CPLGetFilename(path);
    if (!strstr(b, "_3B_"))
        return CNP_PRODUCT_RASTER;
    if (strstr(b, "_AnalyticMS_SR"))
        return CNP_PRODUCT_PS_SR;
    if (strstr(b, "_AnalyticMS"))
        return CNP_PRODUCT_PS_ANALYTIC;
    if (strstr(b, "_Visual"))
        return CNP_PRODUCT_PS_VISUAL;
    return CNP_PRODUCT_RASTER;
}

static GDALDatasetH open_quiet(const char *name)
{
    GDALDatasetH ds;
    cnp_gdal_quiet_begin();
    ds = GDALOpenEx(name, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, NULL, NULL,
                    NULL);
    cnp_gdal_quiet_end();
    return ds;
}

/* Every band read has its JP2 among the dataset's files (the driver reads
 * a missing one as zeros). */
static cnp_status check_band_files(cnp_ctx *ctx, cnp_product *pr, GDALDatasetH ds)
{
    char **files = GDALGetFileList(ds);
    cnp_status st = CNP_OK;
    int c, i;
    for (c = 0; c < pr->n_channels && st == CNP_OK; c++) {
        const char *name = GDALGetMetadataItem(GDALGetRasterBand(ds, pr->bands[c]), "BANDNAME",
                                               NULL);
        char code[8], want[32];
        if (!name || strlen(name) > 3)
            continue;
        /* B4 -> B04, B8A stays */
        if (strlen(name) == 2)
            snprintf(code, sizeof code, "B0%c", name[1]);
        else
            snprintf(code, sizeof code, "%s", name);
        if (pr->kind == CNP_PRODUCT_S2_L2A)
            snprintf(want, sizeof want, "_%s_%s.jp2", code, pr->resolution);
        else
            snprintf(want, sizeof want, "_%s.jp2", code);
        for (i = 0; files && files[i]; i++)
            if (has_suffix(files[i], want))
                break;
        if (!files || !files[i])
            st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: band %s is missing (no IMG_DATA/%s*%s in "
                           "the product); the product is incomplete: download it again", pr->path,
                           code, pr->kind == CNP_PRODUCT_S2_L2A ? CPLSPrintf("R%s/", pr->resolution)
                                                                : "",
                           want);
    }
    CSLDestroy(files);
    return st;
}

/* Opens subdataset `name` and resolves the channels there; *ds NULL when
 * the bands are not all in it (ctx untouched). */
static cnp_status try_subdataset(cnp_ctx *ctx, cnp_product *pr, const cnp_product_params *p,
                                 const char *name, GDALDatasetH *ds)
{
    cnp_ctx tmp;
    char **labels = NULL;
    int c;

    *ds = open_quiet(name);
    if (!*ds)
        return CNP_OK;
    cnp_ctx_clear(&tmp);
    if (p->names && !p->bands_given) {
        if (cnp_bands_resolve(&tmp, pr->path, *ds, pr->kind, p->n_channels, p->names,
                              pr->bands, &labels) != CNP_OK) {
            CSLDestroy(labels);
            GDALClose(*ds);
            *ds = NULL;
            return CNP_OK;
        }
    } else {
        char d[64];
        for (c = 0; c < p->n_channels; c++) {
            pr->bands[c] = p->bands[c];
            if (p->bands[c] >= 1 && p->bands[c] <= GDALGetRasterCount(*ds))
                labels = CSLAddString(labels, cnp_band_describe(*ds, pr->kind, p->bands[c], d,
                                                                sizeof d));
        }
    }
    CSLDestroy(pr->band_names);
    pr->band_names = labels;
    (void)ctx;
    return CNP_OK;
}

/* Sentinel-2: opens the metadata file, picks the subdataset. */
static cnp_status open_s2(cnp_ctx *ctx, cnp_product *pr, const char *mtd,
                          const cnp_product_params *p, GDALDatasetH *out)
{
    GDALDatasetH top = open_quiet(mtd), ds = NULL;
    char **subs, zones[8][32];
    const char *level, *bl;
    cnp_status st = CNP_OK;
    int i, n_zones = 0;

    *out = NULL;
    if (!top)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: GDAL's SENTINEL2 driver cannot open its "
                         "metadata %s (%s); the product is incomplete or not a Sentinel-2 "
                         "L1C/L2A product", pr->path, mtd, cnp_gdal_msg());
    level = GDALGetMetadataItem(top, "PROCESSING_LEVEL", NULL);
    pr->kind = (level && strstr(level, "2A")) || strstr(mtd, "MSIL2A") ? CNP_PRODUCT_S2_L2A
                                                                       : CNP_PRODUCT_S2_L1C;
    bl = GDALGetMetadataItem(top, "PROCESSING_BASELINE", NULL);
    pr->baseline = cnp_strdup(ctx, bl ? bl : "");
    pr->name = s2_name(ctx, pr->path, top);
    if (!pr->baseline || !pr->name) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    subs = GDALGetMetadata(top, "SUBDATASETS");
    for (i = 0; subs && subs[i] && !ds; i++) {
        const char *eq = strchr(subs[i], '='), *res;
        if (!eq || !strstr(subs[i], "_NAME="))
            continue;
        res = strstr(eq, ":10m:") ? "10m" : strstr(eq, ":20m:") ? "20m"
              : strstr(eq, ":60m:") ? "60m" : NULL;
        if (!res)
            continue; /* TCI, PREVIEW */
        {   /* distinct UTM zones (the EPSG_n at the end) */
            const char *z = strrchr(eq, ':') + 1;
            int k;
            for (k = 0; k < n_zones && strcmp(zones[k], z) != 0; k++)
                ;
            if (k == n_zones && n_zones < 8)
                snprintf(zones[n_zones++], sizeof zones[0], "%s", z);
        }
        if ((st = try_subdataset(ctx, pr, p, eq + 1, &ds)) != CNP_OK)
            goto cleanup;
        if (ds) {
            pr->dataset = cnp_strdup(ctx, eq + 1);
            pr->resolution = cnp_strdup(ctx, res);
            if (!pr->dataset || !pr->resolution)
                st = CNP_ERR_NOMEM;
        }
    }
    if (st == CNP_OK && !ds) {
        /* Say which name is missing, against the 10 m set. */
        GDALDatasetH d10 = subs ? open_quiet(CPLParseNameValue(subs[0], NULL)) : NULL;
        if (d10 && p->names)
            cnp_bands_resolve(ctx, pr->path, d10, pr->kind, p->n_channels, p->names, pr->bands,
                              NULL);
        if (d10)
            GDALClose(d10);
        st = cnp_error(ctx, CNP_ERR_SHAPE, "%s: no resolution of this product holds every band "
                       "the model asks for; give them with --bands", pr->path);
        goto cleanup;
    }
    if (st == CNP_OK && n_zones > 1)
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: the product spans several UTM zones; canopy classifies the first (%s)",
            pr->path, zones[0]));
    if (st == CNP_OK)
        st = check_band_files(ctx, pr, ds);
cleanup:
    GDALClose(top);
    if (st != CNP_OK && ds) {
        GDALClose(ds);
        ds = NULL;
    }
    *out = ds;
    return st;
}

/* Any other raster, PlanetScope scenes included. */
static cnp_status open_file(cnp_ctx *ctx, cnp_product *pr, const cnp_product_params *p,
                            GDALDatasetH *out)
{
    GDALDatasetH ds = open_quiet(pr->path);
    cnp_status st = CNP_OK;
    int c, nb;

    *out = NULL;
    if (!ds)
        return cnp_error(ctx, CNP_ERR_IO, "%s: cannot open as a raster (%s); check that the file "
                         "exists, is complete and is an image GDAL reads", pr->path,
                         cnp_gdal_msg());
    pr->dataset = cnp_strdup(ctx, pr->path);
    pr->name = cnp_product_name(pr->path); /* the base name, as for any scene */
    if (!pr->dataset || !pr->name) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    nb = GDALGetRasterCount(ds);
    if (p->names && !p->bands_given) {
        st = cnp_bands_resolve(ctx, pr->path, ds, pr->kind, p->n_channels, p->names, pr->bands,
                               &pr->band_names);
    } else {
        char d[64];
        for (c = 0; c < p->n_channels; c++) {
            pr->bands[c] = p->bands[c];
            if (p->bands[c] >= 1 && p->bands[c] <= nb)
                pr->band_names = CSLAddString(pr->band_names, cnp_band_describe(
                                                  ds, pr->kind, p->bands[c], d, sizeof d));
        }
    }
cleanup:
    if (st != CNP_OK) {
        GDALClose(ds);
        ds = NULL;
    }
    *out = ds;
    return st;
}

/* A numeric mapping whose first three channels (the model's red, green,
 * blue: the order of the ImageNet statistics and of the RGB chips the
 * models are trained on) read bands the product or GDAL's colour
 * interpretation says are something else: a warning naming the --bands to
 * give. */
static void check_numeric(cnp_product *pr, GDALDatasetH ds, const cnp_product_params *p)
{
    static const char *const want[3] = {"red", "green", "blue"};
    int c, b, nb = GDALGetRasterCount(ds), fix[3] = {0, 0, 0}, wrong = 0;
    char said[256] = "";
    size_t len = 0;

    if (p->bands_given || (p->names && !p->bands_given) || pr->n_channels < 3)
        return;
    for (c = 0; c < 3; c++) {
        const char *role = pr->bands[c] >= 1 && pr->bands[c] <= nb
                               ? cnp_band_role(ds, pr->kind, pr->bands[c]) : NULL;
        if (role && strcmp(role, want[c]) != 0) {
            wrong = 1;
            len += (size_t)snprintf(said + len, len < sizeof said ? sizeof said - len : 0,
                                    "%sband %d is %s", len ? ", " : "", pr->bands[c], role);
        }
        for (b = 1; b <= nb; b++) {
            const char *r = cnp_band_role(ds, pr->kind, b);
            if (r && !strcmp(r, want[c]))
                fix[c] = b;
        }
    }
    if (!wrong)
        return;
    if (fix[0] && fix[1] && fix[2]) {
        char extra[128] = "";
        size_t el = 0;
        for (c = 3; c < pr->n_channels && el < sizeof extra; c++)
            el += (size_t)snprintf(extra + el, sizeof extra - el, ",%d", pr->bands[c]);
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: %s, but the model's channels 1-3 are red, green, blue; give --bands %d,%d,%d%s "
            "(or name the model's bands: canopy.bands [\"red\",\"green\",\"blue\"])", pr->path,
            said, fix[0], fix[1], fix[2], extra));
    } else {
        pr->warnings = CSLAddString(pr->warnings, CPLSPrintf(
            "%s: %s, but the model's channels 1-3 are red, green, blue; choose the bands with "
            "--bands", pr->path, said));
    }
}

cnp_status cnp_product_open(cnp_ctx *ctx, const char *path, const cnp_product_params *p,
                            cnp_product **out)
{
    cnp_status st = CNP_OK;
    cnp_product *pr;
    GDALDatasetH ds = NULL;
    char *mtd = NULL;
    size_t C = p ? (size_t)p->n_channels : 0;

    *out = NULL;
    if (!p || p->n_channels < 1 || !p->bands)
        return cnp_error(ctx, CNP_ERR_USAGE, "%s: invalid product parameters", path);
    cnp_gdal_init();
    pr = cnp_calloc(ctx, 1, sizeof *pr, "the product");
    if (!pr)
        return CNP_ERR_NOMEM;
    pr->n_channels = p->n_channels;
    pr->path = cnp_strdup(ctx, path);
    pr->bands = cnp_calloc(ctx, C, sizeof(int), "bands");
    pr->rad_add = cnp_calloc(ctx, C, sizeof(double), "radiometry");
    pr->rad_gain = cnp_calloc(ctx, C, sizeof(double), "radiometry");
    if (!pr->path || !pr->bands || !pr->rad_add || !pr->rad_gain) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    if (is_dir(path))
        mtd = mtd_in(path);
    else if (has_suffix(path, ".zip"))
        mtd = mtd_in_zip(path);
    else if (has_suffix(path, ".xml") && (strstr(CPLGetFilename(path), "MTD_MSIL") ||
                                          strstr(CPLGetFilename(path), "MTD_SAFL")))
        mtd = CPLStrdup(path);
    if (mtd) {
        st = open_s2(ctx, pr, mtd, p, &ds);
        pr->have_nodata = 1; /* SPECIAL_VALUE_NODATA, 0 in every baseline */
        pr->nodata = 0.0;
    } else if (is_dir(path)) {
        st = cnp_error(ctx, CNP_ERR_USAGE, "%s: a folder that is not a Sentinel-2 product (no "
                       "MTD_MSIL2A.xml or MTD_MSIL1C.xml in it)", path);
    } else {
        pr->kind = file_kind(path);
        st = open_file(ctx, pr, p, &ds);
    }
    pr->kind_name = KIND_NAMES[pr->kind];
    if (st != CNP_OK || (st = cnp_product_radiometry(ctx, pr, ds, p)) != CNP_OK ||
        (st = cnp_product_find_qmask(ctx, pr, ds, p)) != CNP_OK)
        goto cleanup;
    check_numeric(pr, ds, p);
    *out = pr;
    pr = NULL;
cleanup:
    if (ds)
        GDALClose(ds);
    CPLFree(mtd);
    cnp_product_free(pr);
    return st;
}

void cnp_product_free(cnp_product *pr)
{
    if (!pr)
        return;
    free(pr->path);
    free(pr->dataset);
    free(pr->name);
    free(pr->resolution);
    free(pr->baseline);
    free(pr->bands);
    CSLDestroy(pr->band_names);
    free(pr->rad_add);
    free(pr->rad_gain);
    free(pr->radiometry);
    free(pr->qmask_path);
    free(pr->qmask_rule);
    if (pr->qmask_tmp) {
        VSIUnlink(pr->qmask_tmp);
        free(pr->qmask_tmp);
    }
    CSLDestroy(pr->warnings);
    free(pr);
}

char *cnp_product_json(const cnp_product *pr)
{
    json_object *o = json_object_new_object(), *bands = json_object_new_array();
    char *s = NULL;
    int c;

    if (!o || !bands)
        goto cleanup;
    json_object_object_add(o, "kind", json_object_new_string(pr->kind_name));
    json_object_object_add(o, "dataset", json_object_new_string(pr->dataset));
    if (pr->resolution)
        json_object_object_add(o, "resolution", json_object_new_string(pr->resolution));
    if (pr->baseline && *pr->baseline)
        json_object_object_add(o, "processing_baseline", json_object_new_string(pr->baseline));
    for (c = 0; c < pr->n_channels; c++) {
        json_object *b = json_object_new_object();
        json_object_object_add(b, "band", json_object_new_int(pr->bands[c]));
        if (pr->band_names && c < CSLCount(pr->band_names))
            json_object_object_add(b, "is", json_object_new_string(pr->band_names[c]));
        json_object_object_add(b, "add", json_object_new_double(pr->rad_add[c]));
        json_object_object_add(b, "gain", json_object_new_double(pr->rad_gain[c]));
        json_object_array_add(bands, b);
    }
    json_object_object_add(o, "bands", bands);
    bands = NULL;
    json_object_object_add(o, "radiometry", json_object_new_string(pr->radiometry));
    if (pr->has_qmask) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "kind", json_object_new_string(pr->qmask.kind));
        json_object_object_add(m, "path", json_object_new_string(pr->qmask_path));
        json_object_object_add(m, "rule", json_object_new_string(pr->qmask_rule));
        json_object_object_add(o, "quality_mask", m);
    } else {
        json_object_object_add(o, "quality_mask", NULL);
    }
    s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
cleanup:
    json_object_put(bands);
    json_object_put(o);
    return s;
}
