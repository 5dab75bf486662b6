/* date.h -- the acquisition date of a scene, for monitoring (alerts over
 * time) and the manifest.
 *
 * Where the date comes from, first found wins:
 *   1. the raster's metadata, as GDAL exposes it: TIFFTAG_DATETIME
 *      ("YYYY:MM:DD HH:MM:SS"), ACQUISITIONDATETIME, ACQUISITION_DATE,
 *      DATETIME (ISO 8601), Sentinel-2 PRODUCT_START_TIME and
 *      DATATAKE_1_DATATAKE_SENSING_START (SENTINEL2 driver), in that order,
 *      dataset metadata first, then the first band's;
 *   2. a PlanetScope metadata file beside the scene: for
 *      ID_3B_AnalyticMS_SR.tif (any suffix after the ID), ID_metadata.json,
 *      whose "properties"."acquired" (or top-level "acquired") is read with
 *      json-c;
 *   3. the file name: the first run of exactly 8 digits that is a valid
 *      YYYYMMDD date between 1972-01-01 and 2099-12-31, as in
 *      S2A_MSIL2A_20230105T134201_... (YYYYMMDDTHHMMSS), PlanetScope
 *      20230105_134201_... (YYYYMMDD_HHMMSS) and Landsat LC08_..._20230105_...;
 *   4. the date the caller gives (--date YYYY-MM-DD).
 * A date is a calendar day (UTC); the time of day is dropped.
 */
#ifndef CNP_SCENE_DATE_H
#define CNP_SCENE_DATE_H

#include "base/base.h"

/* Where a scene's date came from. */
typedef enum {
    CNP_DATE_NONE = 0,
    CNP_DATE_METADATA,   /* GDAL metadata item (source_item names it) */
    CNP_DATE_PLANET,     /* PlanetScope *_metadata.json "acquired" */
    CNP_DATE_FILENAME,   /* the file name */
    CNP_DATE_GIVEN       /* the caller's date (--date) */
} cnp_date_source;

typedef struct cnp_scene_date {
    int day;                   /* days since 1970-01-01 (UTC) */
    char iso[11];              /* "YYYY-MM-DD" */
    cnp_date_source source;
    char source_item[64];      /* metadata item or file name part used */
} cnp_scene_date;

/* Parses "YYYY-MM-DD" (optionally followed by 'T' or ' ' and a time, or
 * "YYYY:MM:DD" as in TIFFTAG_DATETIME) into days since 1970-01-01; checks
 * the calendar. Returns 1 on success, 0 otherwise. */
int cnp_date_parse(const char *s, int *day);

/* Formats days since 1970-01-01 as "YYYY-MM-DD" into out[11]. */
void cnp_date_format(int day, char out[11]);

/* The acquisition date of the scene at `path` (any GDAL raster; opened
 * read-only to read its metadata, then closed), by the order above; `given`
 * is the caller's "YYYY-MM-DD" or NULL. When no source gives a date,
 * out->source is CNP_DATE_NONE and CNP_OK is returned: whether that is an
 * error is the caller's decision (cnp_date_missing_error). A `given` that
 * is not a valid date is CNP_ERR_USAGE. `out` is the caller's. */
cnp_status cnp_scene_date_get(cnp_ctx *ctx, const char *path, const char *given,
                              cnp_scene_date *out);

/* Records "PATH: no acquisition date..." naming the three ways to give one,
 * and returns CNP_ERR_USAGE. */
cnp_status cnp_date_missing_error(cnp_ctx *ctx, const char *path);

/* "metadata", "planet-metadata", "filename", "given" or "none". Static. */
const char *cnp_date_source_name(cnp_date_source s);

#endif
