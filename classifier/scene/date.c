/* date.c -- a scene's acquisition date from GDAL metadata, a PlanetScope
 * metadata file, the file name, or the caller (see date.h). */
#define _POSIX_C_SOURCE 200809L
#include "scene/date.h"
#include "scene/scene.h" /* cnp_gdal_init */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cpl_error.h>
#include <gdal.h>
#include <json-c/json.h>

#define MIN_YEAR 1972
#define MAX_YEAR 2099
#define PLANET_JSON_MAX (1 << 20)

/* Metadata items holding an acquisition time, in the order they are tried. */
static const char *const date_items[] = {
    "TIFFTAG_DATETIME", "ACQUISITIONDATETIME", "ACQUISITION_DATE", "DATETIME",
    "PRODUCT_START_TIME", "DATATAKE_1_DATATAKE_SENSING_START", NULL
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cnp_date_format(int day, char out[11])
{
    int z = day + 719468, era, doe, yoe, y, doy, mp, d, m;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    y = (y % 10000 + 10000) % 10000;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = out[7] = '-';
    out[5] = (char)('0' + m / 10 % 10);
    out[6] = (char)('0' + m % 10);
    out[8] = (char)('0' + d / 10 % 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

static int valid_ymd(int y, int m, int d)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < MIN_YEAR || y > MAX_YEAR || m < 1 || m > 12 || d < 1)
        return 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static int digits(const char *s, int n, int *v)
{
    int i;
    *v = 0;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

int cnp_date_parse(const char *s, int *day)
{
    int y, m, d;
    char sep;
    if (!s)
        return 0;
    while (*s == ' ')
        s++;
    if (!digits(s, 4, &y) || (s[4] != '-' && s[4] != ':'))
        return 0;
    sep = s[4];
    if (!digits(s + 5, 2, &m) || s[7] != sep || !digits(s + 8, 2, &d))
        return 0;
    if (s[10] != '\0' && s[10] != 'T' && s[10] != ' ' && s[10] != 't')
        return 0;
    if (!valid_ymd(y, m, d))
        return 0;
    *day = days_from_civil(y, m, d);
    return 1;
}

/* The first run of exactly 8 digits in `name` that is a valid date. */
static int date_from_name(const char *name, int *day, char item[64])
{
    const char *p = name;
    while (*p) {
        const char *q = p;
        int y, m, d;
        if (!isdigit((unsigned char)*p)) {
            p++;
            continue;
        }
        while (isdigit((unsigned char)*q))
            q++;
        if (q - p == 8 && digits(p, 4, &y) && digits(p + 4, 2, &m) && digits(p + 6, 2, &d) &&
            valid_ymd(y, m, d)) {
            *day = days_from_civil(y, m, d);
            {   /* the name part used: YYYYMMDD, with _HHMMSS or THHMMSS after it */
                int hms, n = 8;
                if ((q[0] == 'T' || q[0] == '_') && digits(q + 1, 6, &hms) &&
                    !isdigit((unsigned char)q[7]))
                    n = 15;
                snprintf(item, 64, "%.*s", n, p);
            }
            return 1;
        }
        p = q;
    }
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ID_metadata.json beside a PlanetScope asset ID_3B_...; the date in its
 * "acquired". Returns 1 when found. */
static int date_from_planet(const char *path, int *day, char item[64])
{
    const char *base = base_name(path), *cut = strstr(base, "_3B_");
    char *json_path = NULL;
    size_t dir_len = (size_t)(base - path), len;
    struct stat sb;
    json_object *root = NULL, *props = NULL, *acq = NULL;
    int ok = 0;

    if (!cut)
        cut = strstr(base, "_AnalyticMS");
    if (!cut)
        return 0;
    len = dir_len + (size_t)(cut - base) + sizeof "_metadata.json";
    json_path = malloc(len);
    if (!json_path)
        return 0;
    snprintf(json_path, len, "%.*s%.*s_metadata.json", (int)dir_len, path, (int)(cut - base), base);
    if (stat(json_path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > PLANET_JSON_MAX)
        goto cleanup;
    root = json_object_from_file(json_path);
    if (!root)
        goto cleanup;
    if (json_object_object_get_ex(root, "properties", &props) &&
        json_object_is_type(props, json_type_object))
        json_object_object_get_ex(props, "acquired", &acq);
    if (!acq)
        json_object_object_get_ex(root, "acquired", &acq);
    if (acq && json_object_is_type(acq, json_type_string) &&
        cnp_date_parse(json_object_get_string(acq), day)) {
        snprintf(item, 64, "%s", base_name(json_path));
        ok = 1;
    }
cleanup:
    json_object_put(root);
    free(json_path);
    return ok;
}

static int date_from_metadata(GDALDatasetH ds, int *day, char item[64])
{
    int i, pass;
    for (pass = 0; pass < 2; pass++) {
        GDALMajorObjectH obj = pass == 0 ? (GDALMajorObjectH)ds
                               : GDALGetRasterCount(ds) > 0 ? (GDALMajorObjectH)GDALGetRasterBand(ds, 1)
                               : NULL;
        if (!obj)
            continue;
        for (i = 0; date_items[i]; i++) {
            const char *v = GDALGetMetadataItem(obj, date_items[i], NULL);
            if (v && cnp_date_parse(v, day)) {
                snprintf(item, 64, "%s", date_items[i]);
                return 1;
            }
        }
    }
    return 0;
}

cnp_status cnp_scene_date_get(cnp_ctx *ctx, const char *path, const char *given,
                              cnp_scene_date *out)
{
    GDALDatasetH ds;
    int day;

    memset(out, 0, sizeof *out);
    if (given && !cnp_date_parse(given, &day))
        return cnp_error(ctx, CNP_ERR_USAGE, "--date '%s' is not a date; write it as YYYY-MM-DD "
                         "(e.g. 2026-03-10)", given);
    cnp_gdal_init();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (ds) {
        if (date_from_metadata(ds, &out->day, out->source_item))
            out->source = CNP_DATE_METADATA;
        GDALClose(ds);
    }
    if (!out->source && date_from_planet(path, &out->day, out->source_item))
        out->source = CNP_DATE_PLANET;
    if (!out->source && date_from_name(base_name(path), &out->day, out->source_item))
        out->source = CNP_DATE_FILENAME;
    if (!out->source && given) {
        out->day = day;
        out->source = CNP_DATE_GIVEN;
        snprintf(out->source_item, sizeof out->source_item, "--date");
    }
    if (out->source)
        cnp_date_format(out->day, out->iso);
    return CNP_OK;
}

cnp_status cnp_date_missing_error(cnp_ctx *ctx, const char *path)
{
    return cnp_error(ctx, CNP_ERR_USAGE, "%s: no acquisition date; monitoring needs one. Give it "
                     "in the raster's metadata (TIFFTAG_DATETIME or ACQUISITIONDATETIME, e.g. "
                     "gdal_edit.py -mo TIFFTAG_DATETIME=\"2026:03:10 00:00:00\"), in the file name "
                     "(YYYYMMDD, YYYYMMDD_HHMMSS or YYYYMMDDTHHMMSS), or with --date YYYY-MM-DD",
                     path);
}

const char *cnp_date_source_name(cnp_date_source s)
{
    switch (s) {
    case CNP_DATE_METADATA: return "metadata";
    case CNP_DATE_PLANET: return "planet-metadata";
    case CNP_DATE_FILENAME: return "filename";
    case CNP_DATE_GIVEN: return "given";
    case CNP_DATE_NONE: break;
    }
    return "none";
}
