/* draw.c -- what cairo draws on a quick-look: marker and alert outlines
 * (OGR reads the GeoJSON, OSR/PROJ reprojects it), the title, the legend
 * and a geodesic scale bar. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/internal.h"
#include "base/gdal.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <geodesic.h>
#include <ogr_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 64

/* ------------------------------------------------------------- palette */

/* Paul Tol's "muted" scheme. */
static const unsigned char muted[9][3] = {
    {0x33, 0x22, 0x88}, /* indigo */
    {0x88, 0xCC, 0xEE}, /* cyan */
    {0x44, 0xAA, 0x99}, /* teal */
    {0x11, 0x77, 0x33}, /* green */
    {0x99, 0x99, 0x33}, /* olive */
    {0xDD, 0xCC, 0x77}, /* sand */
    {0xCC, 0x66, 0x77}, /* rose */
    {0x88, 0x22, 0x55}, /* wine */
    {0xAA, 0x44, 0x99}, /* purple */
};

/* The default marker labels: fixed colour (index into muted) and dash. */
static const struct { const char *label; int colour, dashed; } fixed[] = {
    {"agriculture", 5, 0},       {"artisinal_mine", 7, 0}, {"bare_ground", 4, 0},
    {"blow_down", 2, 1},         {"conventional_mine", 8, 0}, {"cultivation", 3, 0},
    {"habitation", 0, 0},        {"road", 1, 0},           {"selective_logging", 2, 0},
    {"slash_burn", 6, 0},
};

void cnp_label_style(const char *label, int index, unsigned char rgb[3], int *dashed)
{
    size_t i;
    int c = index < 0 ? 0 : index % 9;
    *dashed = index >= 9;
    for (i = 0; label && i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!strcmp(label, fixed[i].label)) {
            c = fixed[i].colour;
            *dashed = fixed[i].dashed;
            break;
        }
    }
    memcpy(rgb, muted[c], 3);
}

/* ---------------------------------------------------------------- text */

/* A copy of s safe for cairo's text API: valid UTF-8 (invalid bytes and
 * control characters become '?'), at most max bytes. Caller frees. */
static char *safe_text(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0, i = 0, o = 0;
    char *out = malloc((n < max ? n : max) + 4);
    if (!out)
        return NULL;
    while (s && i < n && o < max) {
        unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                  : (c & 0xF8) == 0xF0 ? 4 : 0;
        int k, ok = len > 0 && i + (size_t)len <= n && o + (size_t)len <= max;
        for (k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && len == 2 && c < 0xC2)
            ok = 0;
        if (!ok || (len == 1 && (c < 0x20 || c == 0x7F))) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, s + i, (size_t)len);
        o += (size_t)len;
        i += (size_t)len;
    }
    out[o] = '\0';
    return out;
}

/* Shows text at (x, y baseline), shortened at a character boundary with
 * "..." to fit max_w. Returns the width drawn. */
static double show_fit(cairo_t *cr, const char *text, double x, double y, double max_w)
{
    cairo_text_extents_t e;
    char *t = safe_text(text, 400), *c = NULL;
    size_t n;
    if (!t)
        return 0;
    cairo_text_extents(cr, t, &e);
    n = strlen(t);
    if (e.x_advance > max_w && (c = malloc(n + 4)) != NULL) {
        while (n > 0) {
            do
                n--;
            while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80);
            memcpy(c, t, n);
            memcpy(c + n, "...", 4);
            cairo_text_extents(cr, c, &e);
            if (e.x_advance <= max_w)
                break;
        }
        free(t);
        t = c;
    }
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, t);
    cairo_text_extents(cr, t, &e);
    free(t);
    return e.x_advance;
}

static double text_w(cairo_t *cr, const char *text)
{
    cairo_text_extents_t e;
    char *t = safe_text(text, 400);
    if (!t)
        return 0;
    cairo_text_extents(cr, t, &e);
    free(t);
    return e.x_advance;
}

/* ---------------------------------------------------------- geometries */

typedef struct label_entry {
    char *label;
    long count;                /* positive chips, -1 unknown */
    int regions;
    unsigned char rgb[3];
    int dashed;
} label_entry;

typedef struct feature {
    OGRGeometryH g;            /* in the scene CRS */
    int label;                 /* index into labels, -1 = new alert */
} feature;

typedef struct overlay {
    label_entry labels[MAX_LABELS];
    int n_labels;
    feature *features;
    int n_features, cap;
    double gt[6];
} overlay;

static int find_label(overlay *ov, const char *label)
{
    int i;
    for (i = 0; i < ov->n_labels; i++)
        if (!strcmp(ov->labels[i].label, label))
            return i;
    if (ov->n_labels >= MAX_LABELS)
        return -1;
    ov->labels[i].label = strdup(label);
    if (!ov->labels[i].label)
        return -1;
    ov->labels[i].count = -1;
    cnp_label_style(label, i, ov->labels[i].rgb, &ov->labels[i].dashed);
    ov->n_labels++;
    return i;
}

static int add_feature(overlay *ov, OGRGeometryH g, int label)
{
    if (ov->n_features == ov->cap) {
        int cap = ov->cap ? 2 * ov->cap : 64;
        feature *f = realloc(ov->features, sizeof *f * (size_t)cap);
        if (!f)
            return 0;
        ov->features = f;
        ov->cap = cap;
    }
    ov->features[ov->n_features].g = g;
    ov->features[ov->n_features].label = label;
    ov->n_features++;
    return 1;
}

/* A new alert: "change", "status" or "state" is "new", or none is set. */
static int is_new_alert(OGRFeatureH f)
{
    static const char *const keys[] = {"change", "status", "state", NULL};
    int i, seen = 0;
    for (i = 0; keys[i]; i++) {
        int k = OGR_F_GetFieldIndex(f, keys[i]);
        if (k >= 0 && OGR_F_IsFieldSetAndNotNull(f, k)) {
            seen = 1;
            if (!strcasecmp(OGR_F_GetFieldAsString(f, k), "new"))
                return 1;
        }
    }
    return !seen;
}

/* Reads the features of a GeoJSON (EPSG:4326) into ov, reprojected to the
 * scene CRS. alerts: every feature is a new alert (label -1) when new. */
static cnp_status load_geojson(cnp_ctx *ctx, const char *path, OGRSpatialReferenceH srs,
                               int alerts, overlay *ov, int *n)
{
    const char *drivers[] = {"GeoJSON", NULL};
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, NULL, NULL);
    OGRSpatialReferenceH wgs = NULL;
    OGRCoordinateTransformationH ct = NULL;
    OGRLayerH layer;
    OGRFeatureH f;
    cnp_status st = CNP_OK;

    *n = 0;
    if (!ds)
        return cnp_error(ctx, CNP_ERR_IO, "cannot read %s for the quick-look: %s", path,
                         cnp_gdal_msg());
    layer = GDALDatasetGetLayerCount(ds) > 0 ? GDALDatasetGetLayer(ds, 0) : NULL;
    wgs = OSRNewSpatialReference(NULL);
    if (!wgs || OSRImportFromEPSG(wgs, 4326) != OGRERR_NONE) {
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "PROJ has no EPSG:4326; check the PROJ "
                       "installation (proj.db)");
        goto cleanup;
    }
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(wgs, srs);
    if (!ct) {
        st = cnp_error(ctx, CNP_ERR_UNSUPPORTED, "%s: cannot transform lon/lat into the scene's "
                       "CRS: %s", path, cnp_gdal_msg());
        goto cleanup;
    }
    while (layer && (f = OGR_L_GetNextFeature(layer)) != NULL) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        int label = -1, k = OGR_F_GetFieldIndex(f, "label");
        if (g && !alerts && k >= 0 && OGR_F_IsFieldSetAndNotNull(f, k))
            label = find_label(ov, OGR_F_GetFieldAsString(f, k));
        if (g && (alerts ? is_new_alert(f) : label >= 0)) {
            OGRGeometryH c = OGR_G_Clone(g);
            if (c && OGR_G_Transform(c, ct) == OGRERR_NONE && add_feature(ov, c, label)) {
                (*n)++;
                if (label >= 0)
                    ov->labels[label].regions++;
            } else if (c) {
                OGR_G_DestroyGeometry(c);
            }
        }
        OGR_F_Destroy(f);
    }
cleanup:
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (wgs)
        OSRDestroySpatialReference(wgs);
    GDALClose(ds);
    return st;
}

/* Adds a geometry's rings to cairo's path, in canvas pixels. */
static void add_path(cairo_t *cr, OGRGeometryH g, const double gt[6])
{
    int i, n = OGR_G_GetGeometryCount(g);
    if (n > 0) {
        for (i = 0; i < n; i++)
            add_path(cr, OGR_G_GetGeometryRef(g, i), gt);
        return;
    }
    n = OGR_G_GetPointCount(g);
    for (i = 0; i < n; i++) {
        double x = (OGR_G_GetX(g, i) - gt[0]) / gt[1], y = (OGR_G_GetY(g, i) - gt[3]) / gt[5];
        if (i == 0)
            cairo_move_to(cr, x, y);
        else
            cairo_line_to(cr, x, y);
    }
    if (n > 2)
        cairo_close_path(cr);
}

static int is_light(const unsigned char rgb[3])
{
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 128;
}

/* Halos of every outline first, then the colours, then alerts on top. */
static void draw_outlines(cairo_t *cr, cairo_t *cov, const overlay *ov, double lw)
{
    static const double dash[] = {6.0, 4.0};
    int pass, i;
    for (pass = 0; pass < 4; pass++) {
        for (i = 0; i < ov->n_features; i++) {
            const feature *f = &ov->features[i];
            const label_entry *l = f->label >= 0 ? &ov->labels[f->label] : NULL;
            if ((pass < 2) != (l != NULL))
                continue;
            add_path(cr, f->g, ov->gt);
            if (pass == 0 || pass == 2) {
                int dark = l ? !is_light(l->rgb) : 1;   /* alerts: black on white */
                cairo_set_source_rgb(cr, dark, dark, dark);
                cairo_set_dash(cr, NULL, 0, 0);
                cairo_set_line_width(cr, lw + (l ? 2.0 : 3.0));
                add_path(cov, f->g, ov->gt);
                cairo_set_line_width(cov, lw + 2.0);
                cairo_stroke(cov);
            } else if (l) {
                cairo_set_source_rgb(cr, l->rgb[0] / 255.0, l->rgb[1] / 255.0, l->rgb[2] / 255.0);
                cairo_set_dash(cr, l->dashed ? dash : NULL, l->dashed ? 2 : 0, 0);
                cairo_set_line_width(cr, lw);
            } else {
                cairo_set_source_rgb(cr, 0, 0, 0);
                cairo_set_dash(cr, dash, 2, 0);
                cairo_set_line_width(cr, lw + 1.0);
            }
            cairo_stroke(cr);
        }
    }
    cairo_set_dash(cr, NULL, 0, 0);
}

/* --------------------------------------------------------------- panels */

typedef struct box {
    double x, y, w, h;
} box;

static void panel_bg(cairo_t *cr, box b)
{
    cairo_rectangle(cr, b.x, b.y, b.w, b.h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
}

static box draw_title(cairo_t *cr, const cnp_quicklook_params *p, double fs, double pad,
                      int cw)
{
    char line2[512];
    double max_w = cw * 0.6, w1, w2;
    box b;

    snprintf(line2, sizeof line2, "%s%s%s%s", p->date ? p->date : "date unknown",
             p->model ? "  \xc2\xb7  model " : "", p->model ? p->model : "", "");
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, fs * 1.15);
    w1 = fmin(text_w(cr, p->name ? p->name : "scene"), max_w);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs);
    w2 = fmin(text_w(cr, line2), max_w);
    b.x = pad;
    b.y = pad;
    b.w = fmax(w1, w2) + 2 * pad;
    b.h = fs * 2.9 + pad;
    panel_bg(cr, b);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, fs * 1.15);
    show_fit(cr, p->name ? p->name : "scene", b.x + pad, b.y + pad * 0.5 + fs * 1.15, max_w);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs);
    show_fit(cr, line2, b.x + pad, b.y + pad * 0.5 + fs * 2.55, max_w);
    return b;
}

/* Legend rows: labels with chips or regions, then new alerts. */
static int legend_rows(const overlay *ov, int alerts, const char **text, char buf[][96],
                       int *idx)
{
    int i, n = 0;
    for (i = 0; i < ov->n_labels && n < MAX_LABELS; i++) {
        const label_entry *l = &ov->labels[i];
        if (l->count <= 0 && l->regions == 0)
            continue;
        if (l->count >= 0)
            snprintf(buf[n], 96, "%ld chip%s", l->count, l->count == 1 ? "" : "s");
        else
            snprintf(buf[n], 96, "%d region%s", l->regions, l->regions == 1 ? "" : "s");
        text[n] = l->label;
        idx[n++] = i;
    }
    if (alerts >= 0 && n < MAX_LABELS) {
        snprintf(buf[n], 96, "%d", alerts);
        text[n] = "new alerts";
        idx[n++] = -1;
    }
    return n;
}

static box legend_size(cairo_t *cr, const overlay *ov, int alerts, double fs, double pad,
                       int cw)
{
    const char *text[MAX_LABELS + 1];
    char buf[MAX_LABELS + 1][96];
    int idx[MAX_LABELS + 1], n = legend_rows(ov, alerts, text, buf, idx), i;
    double w = 0;
    box b;
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs);
    for (i = 0; i < n; i++)
        w = fmax(w, fmin(text_w(cr, text[i]), cw * 0.3) + text_w(cr, buf[i]));
    if (n == 0)
        w = text_w(cr, "no markers found");
    b.x = b.y = 0;
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    b.w = fmax(w + fs * 3.5, text_w(cr, "Markers (positive chips)") + 2) + 2 * pad;
    b.h = (n > 0 ? n : 1) * fs * 1.45 + fs * 1.6 + pad * 1.5;
    return b;
}

static void draw_legend(cairo_t *cr, const overlay *ov, int alerts, double fs, double pad,
                        box b, int cw)
{
    static const double dash[] = {6.0, 4.0};
    const char *text[MAX_LABELS + 1];
    char buf[MAX_LABELS + 1][96];
    int idx[MAX_LABELS + 1], n = legend_rows(ov, alerts, text, buf, idx), i;
    double y = b.y + pad * 0.5 + fs * 1.2, x = b.x + pad;

    panel_bg(cr, b);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, fs);
    show_fit(cr, "Markers (positive chips)", x, y, b.w - 2 * pad);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    if (n == 0) {
        show_fit(cr, "no markers found", x, y + fs * 1.45, b.w - 2 * pad);
        return;
    }
    for (i = 0; i < n; i++) {
        const label_entry *l = idx[i] >= 0 ? &ov->labels[idx[i]] : NULL;
        double yy = y + (i + 1) * fs * 1.45, sy = yy - fs * 0.35, nw;
        int light = l ? is_light(l->rgb) : 1;
        cairo_rectangle(cr, x + 1, sy - fs * 0.4, fs * 2.2, fs * 0.8);
        cairo_set_source_rgb(cr, light ? 0.25 : 1, light ? 0.25 : 1, light ? 0.25 : 1);
        cairo_fill(cr);
        cairo_move_to(cr, x + 3, sy);
        cairo_line_to(cr, x + fs * 2.2 - 1, sy);
        cairo_set_line_width(cr, fs * 0.35);
        if (l) {
            cairo_set_source_rgb(cr, l->rgb[0] / 255.0, l->rgb[1] / 255.0, l->rgb[2] / 255.0);
            cairo_set_dash(cr, l->dashed ? dash : NULL, l->dashed ? 2 : 0, 0);
        } else {
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        nw = text_w(cr, buf[i]);
        show_fit(cr, text[i], x + fs * 2.8, yy, fmin(cw * 0.3, b.w - 2 * pad - fs * 3.2 - nw));
        cairo_move_to(cr, b.x + b.w - pad - nw, yy);
        cairo_show_text(cr, buf[i]);
    }
}

/* Metres per canvas pixel along the centre row (geodesic on WGS 84). */
static double metres_per_px(OGRSpatialReferenceH srs, const double gt[6], int cw, int ch)
{
    OGRSpatialReferenceH wgs = OSRNewSpatialReference(NULL);
    OGRCoordinateTransformationH ct = NULL;
    double x[2], y[2], s12 = NAN;
    struct geod_geodesic g;

    if (!srs || !wgs || OSRImportFromEPSG(wgs, 4326) != OGRERR_NONE)
        goto cleanup;
    OSRSetAxisMappingStrategy(wgs, OAMS_TRADITIONAL_GIS_ORDER);
    ct = OCTNewCoordinateTransformation(srs, wgs);
    if (!ct)
        goto cleanup;
    x[0] = gt[0] + gt[1] * cw * 0.25;
    x[1] = gt[0] + gt[1] * cw * 0.75;
    y[0] = y[1] = gt[3] + gt[5] * ch * 0.5;
    if (!OCTTransform(ct, 2, x, y, NULL))
        goto cleanup;
    geod_init(&g, 6378137, 1 / 298.257223563);
    geod_inverse(&g, y[0], x[0], y[1], x[1], &s12, NULL, NULL);
    s12 /= cw * 0.5;
cleanup:
    if (ct)
        OCTDestroyCoordinateTransformation(ct);
    if (wgs)
        OSRDestroySpatialReference(wgs);
    return s12;
}

/* A round length (1, 2 or 5 x 10^k m) near a fifth of the width. */
static double nice_length(double max_m)
{
    double p = pow(10, floor(log10(max_m))), m = max_m / p;
    return (m >= 5 ? 5 : m >= 2 ? 2 : 1) * p;
}

static box draw_scale(cairo_t *cr, double mpp, double fs, double pad, box at, int cw)
{
    double len = nice_length(cw * 0.2 * mpp), px = len / mpp, seg = px / 4;
    char label[64];
    int i;
    box b = at;

    if (len >= 1000)
        snprintf(label, sizeof label, "%g km", len / 1000);
    else
        snprintf(label, sizeof label, "%g m", len);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, fs * 0.9);
    b.w = px + text_w(cr, label) + 3 * pad;
    b.h = fs * 1.9 + pad;
    if (at.x > cw / 2.0)
        b.x = at.x - b.w;
    panel_bg(cr, b);
    for (i = 0; i < 4; i++) {
        cairo_rectangle(cr, b.x + pad + i * seg, b.y + b.h / 2 - fs * 0.25, seg, fs * 0.5);
        cairo_set_source_rgb(cr, i % 2 ? 1 : 0.1, i % 2 ? 1 : 0.1, i % 2 ? 1 : 0.1);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
    }
    cairo_move_to(cr, b.x + 2 * pad + px, b.y + b.h / 2 + fs * 0.32);
    cairo_show_text(cr, label);
    return b;
}

/* Sum of the outline coverage inside a box. */
static double coverage(cairo_surface_t *cov, box b)
{
    unsigned char *d = cairo_image_surface_get_data(cov);
    int stride = cairo_image_surface_get_stride(cov), w = cairo_image_surface_get_width(cov);
    int h = cairo_image_surface_get_height(cov), x, y;
    double s = 0;
    for (y = (int)fmax(0, b.y); y < (int)fmin(h, b.y + b.h); y++)
        for (x = (int)fmax(0, b.x); x < (int)fmin(w, b.x + b.w); x++)
            s += d[(size_t)y * (size_t)stride + (size_t)x];
    return s;
}

static void overlay_free(overlay *ov)
{
    int i;
    for (i = 0; i < ov->n_features; i++)
        OGR_G_DestroyGeometry(ov->features[i].g);
    free(ov->features);
    for (i = 0; i < ov->n_labels; i++)
        free(ov->labels[i].label);
}

/* Places the legend in the corner (other than the title's) with the fewest
 * outlines, the scale bar in a free bottom corner, draws them. */
static cnp_status draw_panels(cnp_ctx *ctx, cairo_t *cr, cairo_surface_t *cov, const overlay *ov,
                              const cnp_quicklook_params *p, OGRSpatialReferenceH srs,
                              int alerts, char **panels)
{
    int cw = cairo_image_surface_get_width(cairo_get_target(cr));
    int ch = cairo_image_surface_get_height(cairo_get_target(cr)), i, best = 0;
    double fs = fmax(10.0, fmin(18.0, fmax(cw, ch) / 64.0)), pad = fs * 0.6, mpp, best_c = 0;
    box title, legend = legend_size(cr, ov, alerts, fs, pad, cw), cand[3], scale;
    char buf[256];

    title = draw_title(cr, p, fs, pad, cw);
    cand[0] = (box){cw - legend.w - pad, pad, legend.w, legend.h};             /* top right */
    cand[1] = (box){cw - legend.w - pad, ch - legend.h - pad, legend.w, legend.h};
    cand[2] = (box){pad, ch - legend.h - pad, legend.w, legend.h};             /* bottom left */
    for (i = 0; i < 3; i++) {
        double c = coverage(cov, cand[i]);
        if (i == 0 || c < best_c - 1e-9) {
            best = i;
            best_c = c;
        }
    }
    legend = cand[best];
    draw_legend(cr, ov, alerts, fs, pad, legend, cw);
    snprintf(buf, sizeof buf, "%.0f,%.0f,%.0f,%.0f;%.0f,%.0f,%.0f,%.0f", title.x, title.y,
             title.w, title.h, legend.x, legend.y, legend.w, legend.h);
    mpp = metres_per_px(srs, ov->gt, cw, ch);
    if (isfinite(mpp) && mpp > 0) {
        box at = {best == 2 ? cw - pad : pad, ch - pad - (fs * 1.9 + pad), 0, 0};
        scale = draw_scale(cr, mpp, fs, pad, at, cw);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ";%.0f,%.0f,%.0f,%.0f", scale.x,
                 scale.y, scale.w, scale.h);
    }
    *panels = cnp_strdup(ctx, buf);
    return *panels ? CNP_OK : CNP_ERR_NOMEM;
}

cnp_status cnp_draw_overlays(cnp_ctx *ctx, cairo_surface_t *s, const cnp_quicklook_params *p,
                             OGRSpatialReferenceH srs, const double gt[6], char **panels,
                             cnp_draw_stats *stats)
{
    cnp_status st = CNP_OK;
    overlay ov;
    cairo_t *cr = NULL, *cc = NULL;
    cairo_surface_t *cov = NULL;
    int i, n = 0, alerts = -1, cw = cairo_image_surface_get_width(s);
    int ch = cairo_image_surface_get_height(s);

    memset(&ov, 0, sizeof ov);
    memcpy(ov.gt, gt, sizeof ov.gt);
    *panels = NULL;
    for (i = 0; i < p->n_labels && p->labels; i++) {
        int k = find_label(&ov, p->labels[i]);
        if (k >= 0 && p->counts)
            ov.labels[k].count = p->counts[i];
    }
    if (p->markers && srs && (st = load_geojson(ctx, p->markers, srs, 0, &ov, &n)) != CNP_OK)
        goto cleanup;
    stats->regions = n;
    if (p->alerts && srs) {
        if ((st = load_geojson(ctx, p->alerts, srs, 1, &ov, &alerts)) != CNP_OK)
            goto cleanup;
        stats->alerts = alerts;
    }
    cr = cairo_create(s);
    cov = cairo_image_surface_create(CAIRO_FORMAT_A8, cw, ch);
    cc = cairo_create(cov);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS || cairo_status(cc) != CAIRO_STATUS_SUCCESS) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory drawing a quick-look");
        goto cleanup;
    }
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    draw_outlines(cr, cc, &ov, fmax(2.0, fmax(cw, ch) / 400.0));
    cairo_surface_flush(cov);
    if ((st = draw_panels(ctx, cr, cov, &ov, p, srs, alerts, panels)) != CNP_OK)
        goto cleanup;
    cairo_surface_flush(s);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        st = cnp_error(ctx, CNP_ERR_INTERNAL, "drawing a quick-look failed: %s",
                       cairo_status_to_string(cairo_status(cr)));
cleanup:
    if (cr)
        cairo_destroy(cr);
    if (cc)
        cairo_destroy(cc);
    if (cov)
        cairo_surface_destroy(cov);
    overlay_free(&ov);
    return st;
}
