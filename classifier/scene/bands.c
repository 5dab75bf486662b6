/* bands.c -- the model's channels by name: roles (STAC "eo" common names:
 * coastal, blue, green, red, rededge, nir, nir08, nir09, cirrus, swir16,
 * swir22; PlanetScope's coastal_blue, green_i, yellow) or band names
 * ("B04", "B8A"), resolved from what a product's bands are:
 *  - Sentinel-2: the SENTINEL2 driver's BANDNAME item (B1..B12, B8A);
 *  - PlanetScope: Planet's documented band order (4-band blue, green, red,
 *    NIR; 8-band coastal_blue, blue, green_i, green, yellow, red, rededge,
 *    NIR; Visual red, green, blue), or the band descriptions Planet sets;
 *  - any raster: GDAL's colour interpretation, then band descriptions.
 * Names compare without case and with band numbers' leading zeros dropped
 * ("B04" = "b4"). */
#include "scene/product.h"

#include <gdal.h>
#include <cpl_string.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Sentinel-2 band -> common name (STAC eo extension's table for MSI). */
static const char *const S2_ROLES[][2] = {
    {"B1", "coastal"}, {"B2", "blue"}, {"B3", "green"}, {"B4", "red"}, {"B5", "rededge"},
    {"B6", "rededge2"}, {"B7", "rededge3"}, {"B8", "nir"}, {"B8A", "nir08"}, {"B9", "nir09"},
    {"B10", "cirrus"}, {"B11", "swir16"}, {"B12", "swir22"}, {NULL, NULL}};

static const char *const PS4[] = {"blue", "green", "red", "nir"};
static const char *const PS8[] = {"coastal_blue", "blue", "green_i", "green", "yellow",
                                  "red", "rededge", "nir"};
static const char *const VISUAL[] = {"red", "green", "blue", "alpha"};

/* Canonical form: lower case, "b04" -> "b4", "near-infrared"/"nir" kept. */
static void canon(const char *s, char *out, size_t n)
{
    size_t i = 0;
    while (*s == ' ')
        s++;
    if ((s[0] == 'B' || s[0] == 'b') && s[1] == '0' && isdigit((unsigned char)s[2]))
        s += 2, out[i++] = 'b';
    for (; *s && i + 1 < n; s++)
        out[i++] = (char)tolower((unsigned char)*s);
    while (i > 0 && out[i - 1] == ' ')
        i--;
    out[i] = '\0';
}

const char *cnp_band_role(void *ds, cnp_product_kind kind, int b)
{
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    int n = GDALGetRasterCount(ds), k;

    if (!band)
        return NULL;
    switch (kind) {
    case CNP_PRODUCT_S2_L1C:
    case CNP_PRODUCT_S2_L2A: {
        const char *name = GDALGetMetadataItem(band, "BANDNAME", NULL);
        for (k = 0; name && S2_ROLES[k][0]; k++)
            if (!strcasecmp(name, S2_ROLES[k][0]))
                return S2_ROLES[k][1];
        return NULL;
    }
    case CNP_PRODUCT_PS_SR:
    case CNP_PRODUCT_PS_ANALYTIC:
        if (n == 4 || n == 5)
            return b <= 4 ? PS4[b - 1] : NULL;
        if (n == 8 || n == 9)
            return b <= 8 ? PS8[b - 1] : NULL;
        break;
    case CNP_PRODUCT_PS_VISUAL:
        if (b <= 4)
            return VISUAL[b - 1];
        break;
    default:
        break;
    }
    switch (GDALGetRasterColorInterpretation(band)) {
    case GCI_RedBand:
        return "red";
    case GCI_GreenBand:
        return "green";
    case GCI_BlueBand:
        return "blue";
    case GCI_AlphaBand:
        return "alpha";
    default:
        break;
    }
    {   /* a description naming a role ("nir", "Red") */
        static const char *const known[] = {"coastal", "coastal_blue", "blue", "green", "green_i",
                                            "yellow", "red", "rededge", "nir", "swir16",
                                            "swir22", NULL};
        char d[64];
        canon(GDALGetDescription(band), d, sizeof d);
        for (k = 0; known[k]; k++)
            if (!strcmp(d, known[k]))
                return known[k];
    }
    return NULL;
}

const char *cnp_band_describe(void *ds, cnp_product_kind kind, int b, char *buf, size_t n)
{
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    const char *role = cnp_band_role(ds, kind, b);
    const char *name = band ? GDALGetMetadataItem(band, "BANDNAME", NULL) : NULL;
    const char *desc = band ? GDALGetDescription(band) : "";

    if (name && role)
        snprintf(buf, n, "%s %s", name, role);
    else if (name)
        snprintf(buf, n, "%s", name);
    else if (role)
        snprintf(buf, n, "%s", role);
    else if (desc && *desc)
        snprintf(buf, n, "%s", desc);
    else
        snprintf(buf, n, "band %d", b);
    return buf;
}

/* 1 when band b of ds answers to the canonical name want. */
static int band_matches(void *ds, cnp_product_kind kind, int b, const char *want)
{
    GDALRasterBandH band = GDALGetRasterBand(ds, b);
    const char *role = cnp_band_role(ds, kind, b);
    const char *name = GDALGetMetadataItem(band, "BANDNAME", NULL);
    char c[64];

    if (role && !strcmp(role, want))
        return 1;
    /* Sentinel-2 "rededge" means B5; "rededge1" too. */
    if (role && !strcmp(role, "rededge") && !strcmp(want, "rededge1"))
        return 1;
    if (name) {
        canon(name, c, sizeof c);
        if (!strcmp(c, want))
            return 1;
    }
    canon(GDALGetDescription(band), c, sizeof c);
    if (*c && !strcmp(c, want))
        return 1;
    /* A description starting with the band name ("B4, central wavelength
     * 665 nm", as the SENTINEL2 driver writes them). */
    if (!name && *c && !strncmp(c, want, strlen(want)) && c[strlen(want)] == ',')
        return 1;
    return 0;
}

cnp_status cnp_bands_resolve(cnp_ctx *ctx, const char *what, void *ds, cnp_product_kind kind,
                             int n, const char *const *names, int *bands, char ***labels)
{
    int nb = GDALGetRasterCount(ds), c, b;

    for (c = 0; c < n; c++) {
        char want[64], desc[64];
        canon(names[c], want, sizeof want);
        bands[c] = 0;
        for (b = 1; b <= nb && !bands[c]; b++)
            if (band_matches(ds, kind, b, want))
                bands[c] = b;
        if (!bands[c]) {
            char list[512];
            size_t len = 0;
            list[0] = '\0';
            for (b = 1; b <= nb && len + 1 < sizeof list; b++) {
                int w = snprintf(list + len, sizeof list - len, "%s%d %s", b > 1 ? ", " : "", b,
                                 cnp_band_describe(ds, kind, b, desc, sizeof desc));
                if (w < 0)
                    break;
                len += (size_t)w < sizeof list - len ? (size_t)w : sizeof list - len - 1;
            }
            return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the model's channel %d is '%s', which "
                             "none of its bands is (%s); give the bands with --bands, e.g. "
                             "--bands %s", what, c + 1, names[c], list,
                             nb >= 3 ? "3,2,1" : "1");
        }
        if (labels)
            *labels = CSLAddString(*labels, cnp_band_describe(ds, kind, bands[c], desc,
                                                              sizeof desc));
    }
    return CNP_OK;
}
