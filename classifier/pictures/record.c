/* record.c -- what the pictures need to know of a scene, read back from its
 * manifest (NAME.manifest.json) or its failure record (NAME.failed.json),
 * and the failure record itself. JSON through json-c. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/internal.h"

#include <gdal.h>
#include <ogr_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX ((size_t)64 << 20)

/* ------------------------------------------------------------ helpers */

char *cnp_join_name(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s%s", dir, *dir && dir[strlen(dir) - 1] != '/' ? "/" : "", name,
                 suffix);
    return p;
}

int cnp_is_file(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

json_object *cnp_json_read_file(cnp_ctx *ctx, const char *path, size_t max_bytes)
{
    FILE *f = NULL;
    char *buf = NULL;
    json_object *obj = NULL;
    json_tokener *tok = NULL;
    struct stat sb;
    size_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        cnp_error(ctx, CNP_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > max_bytes) {
        cnp_error(ctx, CNP_ERR_FORMAT, "%s is not a regular file of at most %zu bytes; it is not "
                  "one of canopy's", path, max_bytes);
        close(fd);
        return NULL;
    }
    f = fdopen(fd, "rb");
    buf = malloc((size_t)sb.st_size + 1);
    if (!f || !buf) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    n = fread(buf, 1, (size_t)sb.st_size, f);
    if (n != (size_t)sb.st_size) {
        cnp_error(ctx, CNP_ERR_IO, "reading %s failed", path);
        goto cleanup;
    }
    buf[n] = '\0';
    tok = json_tokener_new();
    obj = tok ? json_tokener_parse_ex(tok, buf, (int)n) : NULL;
    if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        obj = NULL;
        cnp_error(ctx, CNP_ERR_FORMAT, "%s is not a JSON object (%s); it is not one of canopy's",
                  path, tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "no memory");
    }
cleanup:
    if (tok)
        json_tokener_free(tok);
    if (f)
        fclose(f);
    else
        close(fd);
    free(buf);
    return obj;
}

cnp_status cnp_json_write_file(cnp_ctx *ctx, const char *path, json_object *obj)
{
    size_t n;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
        &n);
    char *text;
    cnp_status st;
    if (!s)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", path);
    text = malloc(n + 2);
    if (!text)
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", path);
    memcpy(text, s, n);
    text[n] = '\n';
    st = cnp_atomic_write(ctx, path, text, n + 1);
    free(text);
    return st;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static json_object *jget(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static long jlong(json_object *o, const char *key, long dflt)
{
    json_object *v = jget(o, key);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? (long)json_object_get_int64(v) : dflt;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A date "YYYY-MM-DD" (the first 10 characters of s when they are one). */
static char *date_of(const char *s)
{
    int i;
    if (!s || strlen(s) < 10)
        return NULL;
    for (i = 0; i < 10; i++)
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return NULL;
    return strndup(s, 10);
}

/* --------------------------------------------------------- the record */

void cnp_scene_record_free(cnp_scene_record *r)
{
    int i;
    if (!r)
        return;
    free(r->name);
    free(r->scene);
    free(r->status);
    free(r->message);
    free(r->date);
    free(r->run_utc);
    free(r->model);
    for (i = 0; i < r->n_labels; i++)
        free(r->labels[i]);
    free(r->labels);
    free(r->counts);
    free(r->alerts_summary);
    free(r->probs);
    free(r->masks);
    free(r->markers);
    free(r->manifest);
    free(r->quicklook);
    free(r->stac);
    free(r->alerts);
    free(r->record);
    free(r);
}

/* outdir/NAME+suffix when it exists, else NULL. */
static char *existing(const char *outdir, const char *name, const char *suffix)
{
    char *p = cnp_join_name(outdir, name, suffix);
    if (p && !cnp_is_file(p)) {
        free(p);
        p = NULL;
    }
    return p;
}

static void find_outputs(cnp_scene_record *r, const char *outdir)
{
    r->probs = existing(outdir, r->name, ".probs.tif");
    r->masks = existing(outdir, r->name, ".masks.tif");
    r->markers = existing(outdir, r->name, ".markers.geojson");
    r->manifest = existing(outdir, r->name, ".manifest.json");
    r->quicklook = existing(outdir, r->name, ".quicklook.png");
    r->stac = existing(outdir, r->name, ".stac.json");
    r->alerts = existing(outdir, r->name, ".alerts.geojson");
    r->record = existing(outdir, r->name, ".failed.json");
}

/* Marker labels (parameters.markers) and their positive chips. */
static int read_labels(cnp_scene_record *r, json_object *m)
{
    json_object *markers = jget(jget(m, "parameters"), "markers"), *pos = jget(m, "positive_chips");
    int i, n = markers && json_object_is_type(markers, json_type_array)
                   ? (int)json_object_array_length(markers) : 0;
    r->labels = calloc((size_t)n + 1, sizeof *r->labels);
    r->counts = calloc((size_t)n + 1, sizeof *r->counts);
    if (!r->labels || !r->counts)
        return 0;
    for (i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(markers, (size_t)i);
        if (!json_object_is_type(v, json_type_string))
            continue;
        r->labels[r->n_labels] = strdup(json_object_get_string(v));
        if (!r->labels[r->n_labels])
            return 0;
        r->counts[r->n_labels] = jlong(pos, r->labels[r->n_labels], 0);
        r->n_labels++;
    }
    return 1;
}

/* New alerts: the features of NAME.alerts.geojson whose "change" is "new"
 * (read with OGR); -1 when the file cannot be read. */
static long count_new_alerts(const char *path)
{
    const char *drivers[] = {"GeoJSON", NULL};
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, NULL, NULL);
    OGRLayerH layer = ds && GDALDatasetGetLayerCount(ds) > 0 ? GDALDatasetGetLayer(ds, 0) : NULL;
    OGRFeatureH f;
    long n = layer ? 0 : -1;
    while (layer && (f = OGR_L_GetNextFeature(layer)) != NULL) {
        int k = OGR_F_GetFieldIndex(f, "change");
        if (k >= 0 && OGR_F_IsFieldSetAndNotNull(f, k) &&
            !strcmp(OGR_F_GetFieldAsString(f, k), "new"))
            n++;
        OGR_F_Destroy(f);
    }
    if (ds)
        GDALClose(ds);
    return n;
}

/* Monitoring: the manifest's "alerts" object (its summary line; "new" when
 * given), else the count from NAME.alerts.geojson. -1 without monitoring. */
static void read_alerts(cnp_scene_record *r, json_object *m)
{
    json_object *a = jget(m, "alerts");
    r->alerts_new = -1;
    if (!a || !json_object_is_type(a, json_type_object))
        return;
    r->alerts_summary = dup_or_null(jstr(a, "summary"));
    r->alerts_new = jlong(a, "new", -1);
    if (r->alerts_new < 0)
        r->alerts_new = r->alerts ? count_new_alerts(r->alerts) : 0;
    if (r->alerts_new < 0)
        r->alerts_new = 0;
}

static void read_bands(cnp_scene_record *r, json_object *m)
{
    json_object *b = jget(jget(m, "parameters"), "bands");
    int i, n = b && json_object_is_type(b, json_type_array) ? (int)json_object_array_length(b) : 0;
    for (i = 0; i < n && r->n_bands < 16; i++) {
        json_object *v = json_object_array_get_idx(b, (size_t)i);
        if (json_object_is_type(v, json_type_int))
            r->bands[r->n_bands++] = json_object_get_int(v);
    }
}

cnp_status cnp_scene_record_read(cnp_ctx *ctx, const char *outdir, const char *name,
                                 cnp_scene_record **out)
{
    cnp_status st = CNP_OK;
    char *path = cnp_join_name(outdir, name, ".manifest.json");
    json_object *m = NULL, *inputs, *t;
    cnp_scene_record *r = calloc(1, sizeof *r);

    *out = NULL;
    if (!path || !r || !(r->name = strdup(name))) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory reading %s's manifest", name);
        goto cleanup;
    }
    m = cnp_json_read_file(ctx, path, MANIFEST_MAX);
    if (!m) {
        st = ctx ? ctx->status : CNP_ERR_FORMAT;
        goto cleanup;
    }
    inputs = jget(m, "inputs");
    if (!inputs || !json_object_is_type(inputs, json_type_array) ||
        json_object_array_length(inputs) < 1 || !jstr(json_object_array_get_idx(inputs, 0), "path")
        || !jget(m, "chips")) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: not a canopy manifest (no inputs or chips); "
                       "remove it or run canopy classify again", path);
        goto cleanup;
    }
    r->scene = dup_or_null(jstr(json_object_array_get_idx(inputs, 0), "path"));
    r->date = date_of(jstr(jget(m, "acquisition"), "date"));
    if (!r->date)
        r->date = date_of(jstr(m, "date"));
    r->run_utc = dup_or_null(jstr(m, "run_utc"));
    r->model = dup_or_null(jstr(jget(m, "model"), "name"));
    t = jget(m, "chips");
    r->cells = jlong(t, "cells", 0);
    r->classified = jlong(t, "classified", 0);
    r->skipped = jlong(t, "skipped", 0);
    r->partial = jlong(t, "partial", 0);
    t = jget(jget(m, "timings_s"), "total");
    r->seconds = t ? json_object_get_double(t) : 0;
    r->marker_features = (int)jlong(m, "marker_features", 0);
    read_bands(r, m);
    find_outputs(r, outdir);
    read_alerts(r, m);
    if (!read_labels(r, m)) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    *out = r;
    r = NULL;
cleanup:
    json_object_put(m);
    cnp_scene_record_free(r);
    free(path);
    return st;
}

void cnp_scene_record_quicklook(const cnp_scene_record *r, cnp_quicklook_params *q)
{
    memset(q, 0, sizeof *q);
    q->scene = r->scene;
    q->n_bands = r->n_bands;
    q->bands = r->bands;
    q->markers = r->markers;
    q->alerts = r->alerts;
    q->name = r->name;
    q->date = r->date;
    q->model = r->model;
    q->n_labels = r->n_labels;
    q->labels = (const char *const *)r->labels;
    q->counts = r->counts;
}

void cnp_scene_record_stac(const cnp_scene_record *r, const char *collection,
                           cnp_stac_item_params *s)
{
    memset(s, 0, sizeof *s);
    s->scene = r->scene;
    s->name = r->name;
    s->date = r->date;
    s->run_utc = r->run_utc;
    s->model = r->model;
    s->collection = collection;
    s->probs = r->probs;
    s->masks = r->masks;
    s->markers = r->markers;
    s->quicklook = r->quicklook;
    s->manifest = r->manifest;
    s->alerts = r->alerts;
    s->n_labels = r->n_labels;
    s->labels = (const char *const *)r->labels;
    s->counts = r->counts;
}

/* ---------------------------------------------------- failure records */

static void utc_now(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "unknown");
}

cnp_status cnp_failure_write(cnp_ctx *ctx, const char *outdir, const char *name,
                             const char *scene, const char *status, const char *message)
{
    char *path = cnp_join_name(outdir, name, ".failed.json"), when[32];
    json_object *o = json_object_new_object();
    cnp_status st;

    utc_now(when, sizeof when);
    if (!path || !o ||
        json_object_object_add(o, "canopy_failure", json_object_new_int(1)) ||
        json_object_object_add(o, "scene", json_object_new_string(scene ? scene : "")) ||
        json_object_object_add(o, "name", json_object_new_string(name)) ||
        json_object_object_add(o, "status", json_object_new_string(status ? status : "")) ||
        json_object_object_add(o, "message", json_object_new_string(message ? message : "")) ||
        json_object_object_add(o, "time", json_object_new_string(when)) ||
        json_object_object_add(o, "canopy", json_object_new_string(PACKAGE_VERSION))) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory recording the failure of %s", name);
        goto cleanup;
    }
    st = cnp_json_write_file(ctx, path, o);
cleanup:
    json_object_put(o);
    free(path);
    return st;
}

void cnp_failure_remove(const char *outdir, const char *name)
{
    char *path = cnp_join_name(outdir, name, ".failed.json");
    json_object *o = path ? cnp_json_read_file(NULL, path, 1 << 20) : NULL;
    if (o && jlong(o, "canopy_failure", 0) == 1)
        unlink(path);
    json_object_put(o);
    free(path);
}

cnp_status cnp_failure_read(cnp_ctx *ctx, const char *outdir, const char *name,
                            cnp_scene_record **out)
{
    char *path = cnp_join_name(outdir, name, ".failed.json");
    json_object *o = path ? cnp_json_read_file(ctx, path, 1 << 20) : NULL;
    cnp_scene_record *r = NULL;
    cnp_status st = CNP_OK;

    *out = NULL;
    if (!o) {
        st = path ? ctx->status : cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (jlong(o, "canopy_failure", 0) != 1) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s is not a canopy failure record", path);
        goto cleanup;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    r->failed = 1;
    r->alerts_new = -1;
    r->scene = dup_or_null(jstr(o, "scene"));
    r->status = dup_or_null(jstr(o, "status"));
    r->message = dup_or_null(jstr(o, "message"));
    r->run_utc = dup_or_null(jstr(o, "time"));
    find_outputs(r, outdir);
    *out = r;
    r = NULL;
cleanup:
    cnp_scene_record_free(r);
    json_object_put(o);
    free(path);
    return st;
}
