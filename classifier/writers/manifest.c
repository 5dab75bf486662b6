/* manifest.c -- NAME.manifest.json: what a `canopy classify` run of one
 * scene read and wrote, and the test that makes a repeated run a no-op
 * (see the manifest section of writers.h). JSON through json-c. */
#define _GNU_SOURCE /* realpath, struct stat64 for VSIStatBufL */
#include "config.h"
#include "writers/writers.h"

#include <cpl_vsi.h>
#include <gdal.h>
#include <json-c/json.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct cnp_manifest {
    json_object *identity;     /* {"inputs": [...], "model": {...}, "parameters": {...}} */
    char *model_path;
};


/* json-c helpers: every constructor may return NULL on allocation failure;
 * add() takes ownership of v (and frees it when obj is NULL). */
static int add(json_object *obj, const char *key, json_object *v)
{
    if (!obj || !v) {
        json_object_put(v);
        return 0;
    }
    return json_object_object_add(obj, key, v) == 0;
}

static int push(json_object *arr, json_object *v)
{
    if (!arr || !v) {
        json_object_put(v);
        return 0;
    }
    if (json_object_array_add(arr, v) != 0) {
        json_object_put(v);
        return 0;
    }
    return 1;
}

/* A double written with `digits` significant digits, so that it reads back
 * as the same text in the next run. */
static json_object *num(double v, int digits)
{
    char buf[40];
    if (!isfinite(v))
        return NULL;
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

static json_object *str(const char *s)
{
    return json_object_new_string(s ? s : "");
}

/* --------------------------------------------------------------- inputs */

static int is_vsi(const char *path)
{
    return strncmp(path, "/vsi", 4) == 0;
}

/* ISO 8601 UTC with nanoseconds. */
static void iso_time(char *buf, size_t n, time_t s, long ns)
{
    struct tm tm;
    char base[32];
    if (!gmtime_r(&s, &tm) || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, n, "@%lld.%09ld", (long long)s, ns);
        return;
    }
    snprintf(buf, n, "%s.%09ldZ", base, ns);
}

/* {"path", "size", "mtime", "sha256"} of one input file. */
static cnp_status describe_input(cnp_ctx *ctx, const char *path, json_object **out)
{
    cnp_status st = CNP_OK;
    json_object *o = NULL;
    char hex[65], when[64], *real = NULL;
    long long size;

    *out = NULL;
    if (is_vsi(path)) {
        VSIStatBufL sb;
        if (VSIStatL(path, &sb) != 0) {
            st = cnp_error(ctx, CNP_ERR_IO, "cannot stat %s; check the path and that it is "
                           "reachable", path);
            goto cleanup;
        }
        size = (long long)sb.st_size;
        iso_time(when, sizeof when, sb.st_mtime, 0);
        st = cnp_sha256_file(ctx, path, hex);
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            int e = errno;
            st = cnp_error(ctx, CNP_ERR_IO, "cannot stat %s: %s; check the path", path,
                           strerror(e));
            goto cleanup;
        }
        size = (long long)sb.st_size;
        iso_time(when, sizeof when, sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
        real = realpath(path, NULL);
        st = cnp_sha256_file(ctx, path, hex);
    }
    if (st != CNP_OK)
        goto cleanup;
    o = json_object_new_object();
    if (!add(o, "path", str(real ? real : path)) || !add(o, "size", json_object_new_int64(size)) ||
        !add(o, "mtime", str(when)) || !add(o, "sha256", str(hex))) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory describing %s", path);
        goto cleanup;
    }
    *out = o;
    o = NULL;
cleanup:
    json_object_put(o);
    free(real);
    return st;
}

/* ----------------------------------------------------------- parameters */

static json_object *params_json(const cnp_run_params *p)
{
    json_object *o = json_object_new_object(), *a, *th, *mk;
    int i, ok = o != NULL;

    ok = ok && add(o, "chip", json_object_new_int(p->chip));
    ok = ok && add(o, "stride", json_object_new_int(p->stride));
    ok = ok && add(o, "input_size", json_object_new_int(p->input_size));
    a = json_object_new_array();
    for (i = 0; ok && i < p->n_channels; i++)
        ok = push(a, json_object_new_int(p->bands[i]));
    ok = ok && add(o, "bands", a);
    ok = ok && add(o, "offset", num(p->offset, 17));
    ok = ok && add(o, "scale", num(p->scale, 17));
    a = json_object_new_array();
    for (i = 0; ok && i < p->n_channels; i++)
        ok = push(a, num(p->mean[i], 7));
    ok = ok && add(o, "mean", a);
    a = json_object_new_array();
    for (i = 0; ok && i < p->n_channels; i++)
        ok = push(a, num(p->std[i], 7));
    ok = ok && add(o, "std", a);
    ok = ok && add(o, "gsd_mode", str(p->gsd_mode));
    ok = ok && add(o, "gsd_m", p->gsd_m > 0 ? num(p->gsd_m, 17) : json_object_new_int(0));
    ok = ok && add(o, "min_valid", num(p->min_valid, 17));
    a = json_object_new_array();
    th = json_object_new_object();
    mk = json_object_new_array();
    for (i = 0; ok && i < p->n_labels; i++) {
        ok = push(a, str(p->labels[i])) && add(th, p->labels[i], num(p->thresholds[i], 7));
        if (ok && p->is_marker[i])
            ok = push(mk, str(p->labels[i]));
    }
    ok = ok && add(o, "labels", a);
    ok = ok && add(o, "thresholds", th);
    ok = ok && add(o, "markers", mk);
    if (!ok) {
        /* add() freed what it could not attach; drop the rest. */
        json_object_put(o);
        return NULL;
    }
    ok = add(o, "tta", json_object_new_boolean(p->tta));
    ok = ok && add(o, "precision", str(p->precision ? p->precision : "fp32"));
    ok = ok && add(o, "probs_type", str(p->float_probs ? "Float32" : "Byte"));
    ok = ok && add(o, "split_masks", json_object_new_boolean(p->split_masks));
    ok = ok && add(o, "lossy_probs", json_object_new_boolean(p->lossy_probs));
    ok = ok && add(o, "format", str(p->format));
    a = json_object_new_array();
    for (i = 0; ok && p->creation_options && p->creation_options[i]; i++)
        ok = push(a, str(p->creation_options[i]));
    ok = ok && add(o, "creation_options", a);
    a = json_object_new_array();
    for (i = 0; ok && p->config && p->config[i]; i++)
        ok = push(a, str(p->config[i]));
    ok = ok && add(o, "config", a);
    if (ok && p->product_json) {
        /* the product's bands, radiometry and quality mask (product.h) */
        json_object *pr = json_tokener_parse(p->product_json);
        ok = pr && add(o, "product", pr);
    }
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* A JSON value as the next run will read it back (doubles through text). */
static json_object *round_trip(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    return s ? json_tokener_parse(s) : NULL;
}

cnp_status cnp_manifest_new(cnp_ctx *ctx, const char *const *inputs, const cnp_run_params *p,
                            cnp_manifest **out)
{
    cnp_status st = CNP_OK;
    cnp_manifest *m = NULL;
    json_object *id = NULL, *arr = NULL, *model = NULL, *pj = NULL, *one;
    int i;

    *out = NULL;
    m = cnp_calloc(ctx, 1, sizeof *m, "the manifest");
    if (!m)
        return CNP_ERR_NOMEM;
    m->model_path = is_vsi(p->model_path) ? NULL : realpath(p->model_path, NULL);
    if (!m->model_path)
        m->model_path = cnp_strdup(ctx, p->model_path);
    if (!m->model_path) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    arr = json_object_new_array();
    for (i = 0; inputs && inputs[i]; i++) {
        if ((st = describe_input(ctx, inputs[i], &one)) != CNP_OK)
            goto cleanup;
        if (!push(arr, one)) {
            st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
            goto cleanup;
        }
    }
    model = json_object_new_object();
    pj = params_json(p);
    id = json_object_new_object();
    if (!add(model, "sha256", str(p->model_sha256)) || !pj || !id) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
        goto cleanup;
    }
    /* add() takes ownership even when it fails. */
    if (!add(id, "inputs", arr)) {
        arr = model = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
        goto cleanup;
    }
    arr = NULL;
    if (!add(id, "model", model)) {
        model = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
        goto cleanup;
    }
    model = NULL;
    if (!add(id, "parameters", pj)) {
        pj = NULL;
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
        goto cleanup;
    }
    pj = NULL;
    m->identity = round_trip(id);
    if (!m->identity) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory building the manifest");
        goto cleanup;
    }
    *out = m;
    m = NULL;
cleanup:
    json_object_put(arr);
    json_object_put(model);
    json_object_put(pj);
    json_object_put(id);
    cnp_manifest_free(m);
    return st;
}

void cnp_manifest_free(cnp_manifest *m)
{
    if (!m)
        return;
    json_object_put(m->identity);
    free(m->model_path);
    free(m);
}

/* --------------------------------------------------------- up to date? */

/* Folder of a path with a trailing '/', or "" (caller frees). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + 1 : 0;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static int same_member(json_object *a, json_object *b, const char *key)
{
    json_object *x = NULL, *y = NULL;
    if (!json_object_object_get_ex(a, key, &x) || !json_object_object_get_ex(b, key, &y))
        return 0;
    return json_object_equal(x, y);
}

cnp_status cnp_manifest_up_to_date(cnp_ctx *ctx, const cnp_manifest *m,
                                   const char *manifest_path, int *up_to_date)
{
    json_object *old = NULL, *outs = NULL;
    char *dir = NULL, *path = NULL;
    size_t i, n;

    *up_to_date = 0;
    {
        struct stat sb;
        if (stat(manifest_path, &sb) != 0)
            return CNP_OK;
    }
    old = json_object_from_file(manifest_path);
    if (!old || !json_object_is_type(old, json_type_object))
        goto cleanup;
    if (!same_member(old, m->identity, "inputs") || !same_member(old, m->identity, "parameters"))
        goto cleanup;
    {
        json_object *om = NULL, *nm = NULL;
        if (!json_object_object_get_ex(old, "model", &om) ||
            !json_object_object_get_ex(m->identity, "model", &nm) ||
            !same_member(om, nm, "sha256"))
            goto cleanup;
    }
    if (!json_object_object_get_ex(old, "outputs", &outs) ||
        !json_object_is_type(outs, json_type_array))
        goto cleanup;
    dir = dir_of(manifest_path);
    if (!dir) {
        json_object_put(old);
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
    }
    n = json_object_array_length(outs);
    for (i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(outs, i), *f, *sz, *sha;
        const char *file;
        struct stat sb;
        char hex[65];
        cnp_ctx quiet;
        size_t len;
        if (!json_object_object_get_ex(o, "file", &f) || !json_object_object_get_ex(o, "size", &sz) ||
            !json_object_object_get_ex(o, "sha256", &sha))
            goto cleanup;
        file = json_object_get_string(f);
        if (!file || !*file)
            goto cleanup;
        len = strlen(dir) + strlen(file) + 1;
        free(path);
        path = malloc(len);
        if (!path) {
            json_object_put(old);
            free(dir);
            return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        }
        snprintf(path, len, "%s%s", file[0] == '/' ? "" : dir, file);
        if (stat(path, &sb) != 0 || (long long)sb.st_size != json_object_get_int64(sz))
            goto cleanup;
        cnp_ctx_clear(&quiet);
        if (cnp_sha256_file(&quiet, path, hex) != CNP_OK ||
            strcmp(hex, json_object_get_string(sha) ? json_object_get_string(sha) : ""))
            goto cleanup;
    }
    *up_to_date = 1;
cleanup:
    json_object_put(old);
    free(dir);
    free(path);
    return CNP_OK;
}

/* ---------------------------------------------------------------- write */

static json_object *doubles(const double *v, int n, int digits)
{
    json_object *a = json_object_new_array();
    int i;
    for (i = 0; i < n; i++)
        if (!push(a, num(v[i], digits))) {
            json_object_put(a);
            return NULL;
        }
    return a;
}

/* {"file", "size", "sha256"} of an output, named relative to dir. */
static cnp_status describe_output(cnp_ctx *ctx, const char *dir, const char *path,
                                  json_object **out)
{
    struct stat sb;
    char hex[65];
    const char *name = path;
    json_object *o;
    cnp_status st;
    size_t n = strlen(dir);

    *out = NULL;
    if (stat(path, &sb) != 0) {
        int e = errno;
        return cnp_error(ctx, CNP_ERR_IO, "cannot stat the output %s: %s", path, strerror(e));
    }
    if ((st = cnp_sha256_file(ctx, path, hex)) != CNP_OK)
        return st;
    if (n && strncmp(path, dir, n) == 0)
        name = path + n;
    o = json_object_new_object();
    if (!add(o, "file", str(name)) || !add(o, "size", json_object_new_int64((int64_t)sb.st_size)) ||
        !add(o, "sha256", str(hex))) {
        json_object_put(o);
        return cnp_error(ctx, CNP_ERR_NOMEM, "out of memory describing %s", path);
    }
    *out = o;
    return CNP_OK;
}

static json_object *results_json(cnp_ctx *ctx, const cnp_manifest *m, const cnp_run_results *r,
                                 const char *dir)
{
    json_object *o = NULL, *g, *a, *c, *pos, *t, *v, *pm = NULL, *lab = NULL;
    int i, n_labels = 0, ok;
    double cps;

    if (json_object_deep_copy(m->identity, &o, NULL) != 0 || !o) {
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing the manifest");
        return NULL;
    }
    if (json_object_object_get_ex(o, "parameters", &pm) &&
        json_object_object_get_ex(pm, "labels", &lab))
        n_labels = (int)json_object_array_length(lab);
    ok = add(o, "canopy_version", str(PACKAGE_VERSION));
    ok = ok && add(o, "gdal_version", str(GDALVersionInfo("RELEASE_NAME")));
    ok = ok && add(o, "scene", str(r->scene_id));
    ok = ok && add(o, "run_utc", str(r->run_utc));
    if (ok && r->date) {
        json_object *acq = json_object_new_object();
        ok = add(acq, "date", str(r->date)) && add(acq, "source", str(r->date_source)) &&
             add(o, "acquisition", acq);
    }
    if (ok && r->alerts_summary) {
        json_object *al = json_object_new_object();
        ok = add(al, "summary", str(r->alerts_summary)) && add(al, "state", str(r->alerts_state)) &&
             add(o, "alerts", al);
    }
    {
        json_object *md = NULL;
        if (ok && json_object_object_get_ex(o, "model", &md)) {
            ok = add(md, "path", str(m->model_path)) && add(md, "name", str(r->model_name)) &&
                 add(md, "version", str(r->model_version));
        }
    }
    g = json_object_new_object();
    ok = ok && add(g, "rows", json_object_new_int(r->rows)) &&
         add(g, "cols", json_object_new_int(r->cols)) &&
         add(g, "geotransform", doubles(r->grid_gt, 6, 17)) &&
         add(g, "scene_pixel_m", doubles(r->pixel_m, 2, 9)) &&
         add(g, "chip_scene_px", doubles(r->chip_px, 2, 12)) &&
         add(g, "stride_scene_px", doubles(r->stride_px, 2, 12)) &&
         add(g, "resampling", str(r->resampling)) && add(g, "validity_mask", str(r->mask_kind));
    if (ok) {
        ok = add(o, "grid", g);
    } else {
        json_object_put(g);
    }
    c = json_object_new_object();
    a = json_object_new_array();
    for (i = 0; ok && i < r->partial; i++) {
        v = json_object_new_array();
        ok = push(v, json_object_new_int(r->partial_cells[2 * i])) &&
             push(v, json_object_new_int(r->partial_cells[2 * i + 1])) && push(a, v);
        if (!ok)
            json_object_put(v);
    }
    ok = ok && add(c, "cells", json_object_new_int64((int64_t)r->rows * r->cols)) &&
         add(c, "classified", json_object_new_int64(r->classified)) &&
         add(c, "partial", json_object_new_int64(r->partial)) &&
         add(c, "skipped", json_object_new_int64(r->skipped)) &&
         add(c, "nodata", json_object_new_int64(r->skipped - r->obscured)) &&
         add(c, "obscured", json_object_new_int64(r->obscured)) &&
         (!r->none_classified || add(c, "none_classified", str(r->none_classified))) &&
         add(c, "partial_cells", a);
    if (!ok) {
        json_object_put(a);
        json_object_put(c);
    } else {
        ok = add(o, "chips", c);
    }
    pos = json_object_new_object();
    for (i = 0; ok && i < n_labels; i++)
        ok = add(pos, json_object_get_string(json_object_array_get_idx(lab, i)),
                 json_object_new_int64(r->positives[i]));
    ok = ok && add(o, "positive_chips", pos);
    ok = ok && add(o, "marker_features", json_object_new_int(r->marker_features));
    a = json_object_new_array();
    for (i = 0; ok && r->outputs && r->outputs[i]; i++) {
        json_object *one;
        if (describe_output(ctx, dir, r->outputs[i], &one) != CNP_OK) {
            json_object_put(a);
            json_object_put(o);
            return NULL;
        }
        ok = push(a, one);
    }
    ok = ok && add(o, "outputs", a);
    t = json_object_new_object();
    ok = ok && add(t, "open", num(r->open_s, 4)) && add(t, "hash", num(r->hash_s, 4)) &&
         add(t, "read", num(r->read_s, 4)) && add(t, "read_cpu", num(r->read_cpu_s, 4)) &&
         add(t, "wait_for_read", num(r->wait_s, 4)) &&
         add(t, "inference", num(r->infer_s, 4)) && add(t, "write", num(r->write_s, 4)) &&
         add(t, "total", num(r->total_s, 4));
    if (ok) {
        ok = add(o, "timings_s", t);
    } else {
        json_object_put(t);
    }
    cps = r->infer_s > 0 ? r->classified / r->infer_s : 0.0;
    ok = ok && add(o, "threads", json_object_new_int(r->threads));
    ok = ok && add(o, "inference_chips_per_s", num(cps, 4));
    ok = ok && add(o, "chips_per_s", num(r->total_s > 0 ? r->classified / r->total_s : 0.0, 4));
    if (!ok) {
        json_object_put(o);
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing the manifest");
        return NULL;
    }
    return o;
}

cnp_status cnp_manifest_write(cnp_ctx *ctx, const cnp_manifest *m, const cnp_run_results *r,
                              const char *manifest_path)
{
    cnp_status st = CNP_OK;
    json_object *o = NULL;
    char *dir = NULL, *tmp = NULL;
    const char *text;
    FILE *f = NULL;
    size_t len;

    dir = dir_of(manifest_path);
    if (!dir) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    o = results_json(ctx, m, r, dir);
    if (!o) {
        st = ctx && ctx->status ? ctx->status : CNP_ERR_NOMEM;
        goto cleanup;
    }
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text) {
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", manifest_path);
        goto cleanup;
    }
    tmp = cnp_atomic_begin(ctx, manifest_path);
    if (!tmp) {
        st = ctx->status;
        goto cleanup;
    }
    f = cnp_atomic_fopen(ctx, tmp, manifest_path);
    if (!f) {
        st = ctx->status;
        goto cleanup;
    }
    len = strlen(text);
    if (fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF) {
        int e = errno;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", manifest_path, strerror(e),
                       cnp_write_advice(e));
        goto cleanup;
    }
    if (fclose(f) != 0) {
        int e = errno;
        f = NULL;
        st = cnp_error(ctx, CNP_ERR_IO, "cannot write %s: %s; %s", manifest_path, strerror(e),
                       cnp_write_advice(e));
        goto cleanup;
    }
    f = NULL;
    st = cnp_atomic_commit(ctx, tmp, manifest_path);
    free(tmp);
    tmp = NULL; /* committed, or removed by the failed commit */
cleanup:
    if (f)
        fclose(f);
    if (tmp) {
        cnp_atomic_discard(tmp);
        free(tmp);
    }
    json_object_put(o);
    free(dir);
    return st;
}
