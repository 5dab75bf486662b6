/* meta.c -- canopy's metadata from the ONNX metadata_props (strings; JSON
 * where structured, parsed with json-c), Deepness-style keys as a fallback,
 * documented defaults otherwise (the CNP_META_DEF_* bits say which).
 *
 *   canopy.labels      JSON array of n_outputs label names
 *                      (fallback class_names: {"0": "name", ...} or array;
 *                      default: the 17 Kaggle labels for 17 outputs, else
 *                      label_0 .. label_{n-1})
 *   canopy.thresholds  JSON array, one number in [0, 1] per label (0.2)
 *   canopy.markers     JSON array of label names (DESIGN.md's marker list
 *                      intersected with the labels)
 *   canopy.input_size  integer >= 32 (fallback tile_size; default the fixed
 *                      size of the export, else 224)
 *   canopy.bands       JSON array of 1-based source bands ([1, 2, .., C]), or
 *                      of band roles/names (["red", "green", "blue"],
 *                      ["B04", "B03", "B02"]) resolved against each scene
 *   canopy.trained_on  the product the model was trained on, a plain string
 *                      (e.g. "planet-visual-jpeg", "sentinel2-l2a")
 *   canopy.scale       number > 0 (1/255)
 *   canopy.mean/std    JSON arrays, one per channel (fallback
 *                      standardization_mean/std; default ImageNet for the
 *                      first three channels, 0.449 / 0.226 for others)
 *   canopy.gsd_m       metres per pixel (fallback resolution in cm/px)
 *   canopy.name, canopy.version  plain strings
 *   canopy.int8        the input range of each convolution, measured by
 *                      `canopy calibrate` for --precision int8:
 *                      {"version": 1, "chips": N, "activations":
 *                      [{"tensor": "NAME", "min": LO, "max": HI}, ...]}
 *                      with version 1, chips >= 1, one entry per ONNX
 *                      tensor (non-empty, no repeats), LO <= 0 <= HI
 *                      finite floats; other keys are ignored (absent:
 *                      no ranges, n_int8 = 0)
 */
#define _POSIX_C_SOURCE 200809L
#include "onnx/onnx.h"

#include <ctype.h>
#include <float.h>
#include <json.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT_SIZE 16384
#define MAX_BAND 65535

static const char *const KAGGLE_LABELS[CNP_META_KAGGLE_N] = {
    "agriculture", "artisinal_mine", "bare_ground", "blooming", "blow_down", "clear", "cloudy",
    "conventional_mine", "cultivation", "habitation", "haze", "partly_cloudy", "primary", "road",
    "selective_logging", "slash_burn", "water"};

static const char *const DEFAULT_MARKERS[] = {
    "agriculture", "artisinal_mine", "bare_ground", "blow_down", "conventional_mine",
    "cultivation", "habitation", "road", "selective_logging", "slash_burn"};

static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

/* The last value of `key`, or NULL. */
static const char *find(const cnp_meta_props *pr, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < pr->n; i++)
        if (pr->keys[i] && !strcmp(pr->keys[i], key))
            v = pr->vals[i] ? pr->vals[i] : "";
    return v;
}

/* The parse in progress: where messages go, the strings, the result. */
typedef struct mp {
    cnp_ctx *ctx;
    const char *file;
    const cnp_meta_props *props;
    cnp_model_meta *meta;
} mp;

/* The value of `key`, else of `fallback` (may be NULL); *used is the key
 * found. */
static const char *find2(const mp *p, const char *key, const char *fallback, const char **used)
{
    const char *s = find(p->props, key);
    *used = key;
    if (!s && fallback)
        s = find(p->props, *used = fallback);
    return s;
}

static char *dup_str(cnp_ctx *ctx, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        cnp_error(ctx, CNP_ERR_NOMEM, "out of memory for the model's metadata");
    return d;
}

static cnp_status bad(mp *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cnp_status bad(mp *p, const char *key, const char *fmt, ...)
{
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cnp_error(p->ctx, CNP_ERR_FORMAT, "%s: metadata '%s': %s; %s", p->file, key, what,
                     strcmp(key, CNP_META_KEY_INT8)
                         ? "correct the model's metadata (scripts/export-onnx writes it) or "
                           "remove the key for the default"
                         : "run `canopy calibrate` on the model again, or remove the key (the "
                           "model then has no int8 ranges)");
}

/* Parses the whole string as JSON; *out NULL and an error when it is not. */
static cnp_status parse_json(mp *p, const char *key, const char *s, json_object **out)
{
    json_tokener *tok = json_tokener_new();
    size_t len = strlen(s), end;
    json_object *o;
    enum json_tokener_error err;

    *out = NULL;
    if (!tok)
        return cnp_error(p->ctx, CNP_ERR_NOMEM, "out of memory parsing JSON");
    if (len > INT_MAX - 1) {
        json_tokener_free(tok);
        return bad(p, key, "the value is too long");
    }
    o = json_tokener_parse_ex(tok, s, (int)len + 1); /* include the NUL: ends numbers */
    err = json_tokener_get_error(tok);
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
    end = json_tokener_get_parse_end(tok);
#else
    end = (size_t)tok->char_offset;
#endif
    json_tokener_free(tok);
    if (!o || err != json_tokener_success) {
        json_object_put(o);
        return bad(p, key, "'%.60s%s' is not valid JSON (%s)", s, len > 60 ? "..." : "",
                   json_tokener_error_desc(err));
    }
    while (end < len && (s[end] == ' ' || s[end] == '\t' || s[end] == '\n' || s[end] == '\r'))
        end++;
    if (end < len) {
        json_object_put(o);
        return bad(p, key, "'%.60s%s' has text after the JSON value", s, len > 60 ? "..." : "");
    }
    *out = o;
    return CNP_OK;
}

static int is_number(json_object *o)
{
    return json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double);
}

/* A JSON number in [lo, hi] (integral when `integer`). */
static cnp_status get_number(mp *p, const char *key, const char *s, double lo, double hi,
                             int integer, double *out)
{
    json_object *o = NULL;
    double v;
    if (parse_json(p, key, s, &o) != CNP_OK)
        return p->ctx->status;
    if (!is_number(o)) {
        json_object_put(o);
        return bad(p, key, "expected a number, got '%.60s'", s);
    }
    v = json_object_get_double(o);
    json_object_put(o);
    if (!isfinite(v) || v < lo || v > hi || (integer && v != floor(v)))
        return bad(p, key, "expected %s from %g to %g, got %.60s", integer ? "a whole number" :
                   "a number", lo, hi, s);
    *out = v;
    return CNP_OK;
}

/* Parses s as a JSON array (of `what`, for the message) into *out. */
static cnp_status parse_array(mp *p, const char *key, const char *s, const char *what,
                              json_object **out)
{
    if (parse_json(p, key, s, out) != CNP_OK)
        return p->ctx->status;
    if (!json_object_is_type(*out, json_type_array)) {
        json_object_put(*out);
        *out = NULL;
        return bad(p, key, "expected a JSON array of %s, got '%.60s'", what, s);
    }
    return CNP_OK;
}

/* A JSON array of exactly n numbers (one per `per`), each in [lo, hi] (and > lo when
 * `open_lo`), into out (floats) or iout (ints). */
static cnp_status get_numbers(mp *p, const char *key, const char *s, int n, const char *per,
                              double lo, double hi, int open_lo, float *out, int *iout)
{
    json_object *o = NULL;
    cnp_status st = CNP_OK;
    char what[48];
    size_t len;

    snprintf(what, sizeof what, "%d numbers", n);
    if (parse_array(p, key, s, what, &o) != CNP_OK)
        return p->ctx->status;
    len = json_object_array_length(o);
    if (len != (size_t)n) {
        st = bad(p, key, "has %zu values, the model needs %d (one per %s)", len, n, per);
        goto cleanup;
    }
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        double v;
        if (!is_number(e)) {
            st = bad(p, key, "value %zu is not a number", i + 1);
            goto cleanup;
        }
        v = json_object_get_double(e);
        if (!isfinite(v) || v < lo || v > hi || (open_lo && v <= lo) ||
            (iout && v != floor(v))) {
            st = bad(p, key, "value %zu (%g) is outside %s%g, %g]%s", i + 1, v, open_lo ? "(" : "[",
                     lo, hi, iout ? " or not a whole number" : "");
            goto cleanup;
        }
        if (iout)
            iout[i] = (int)v;
        else
            out[i] = (float)v;
    }
cleanup:
    json_object_put(o);
    return st;
}

/* Label names go into CSV files and space-separated tag lists. */
static int label_ok(const char *s)
{
    if (!s[0] || strlen(s) > 200)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == ',' || *s == '"' || *s == '\'' || *s == 0x7f)
            return 0;
    return 1;
}

static cnp_status set_label(mp *p, const char *key, cnp_model_meta *meta, int i, const char *s)
{
    if (!label_ok(s))
        return bad(p, key, "label %d '%.60s' is empty, too long or has spaces, commas or quotes "
                   "(labels go into CSV files and tag lists)", i + 1, s);
    for (int j = 0; j < meta->n_labels; j++)
        if (meta->labels[j] && j != i && !strcmp(meta->labels[j], s))
            return bad(p, key, "label '%.60s' appears twice", s);
    meta->labels[i] = dup_str(p->ctx, s);
    return meta->labels[i] ? CNP_OK : CNP_ERR_NOMEM;
}

/* canopy.bands as names: 1 when s is a JSON array of strings (then
 * meta->band_names is set, or ctx holds the error), 0 when it is not (a
 * list of numbers, parsed by the caller). A name is 1 to 31 letters,
 * digits, '_' or '-'. */
static int get_band_names(mp *p, const char *key, const char *s, cnp_model_meta *meta)
{
    json_object *o = NULL;
    const char *q = s;
    int C = meta->n_channels, c;

    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
        q++;
    if (*q != '[' || !strchr(q, '"'))
        return 0;
    if (parse_json(p, key, s, &o) != CNP_OK)
        return 1;
    if (!json_object_is_type(o, json_type_array) ||
        json_object_array_length(o) != (size_t)C) {
        bad(p, key, "expected %d band names or numbers, one per input channel", C);
        goto cleanup;
    }
    meta->band_names = cnp_calloc(p->ctx, (size_t)C + 1, sizeof *meta->band_names, "band names");
    if (!meta->band_names)
        goto cleanup;
    for (c = 0; c < C; c++) {
        json_object *e = json_object_array_get_idx(o, (size_t)c);
        const char *v = json_object_is_type(e, json_type_string) ? json_object_get_string(e)
                                                                 : NULL;
        size_t len = v ? strlen(v) : 0, i;
        for (i = 0; i < len; i++)
            if (!(isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '-'))
                break;
        if (!v || len < 1 || len > 31 || i < len) {
            bad(p, key, "channel %d: expected a band name such as \"red\" or \"B04\" (letters, "
                "digits, '_', '-'; all names or all numbers)", c + 1);
            goto cleanup;
        }
        if (!(meta->band_names[c] = dup_str(p->ctx, v)))
            goto cleanup;
        meta->bands[c] = c + 1;
    }
cleanup:
    json_object_put(o);
    return 1;
}

static cnp_status get_labels(mp *p, const char *key, const char *s, cnp_model_meta *meta)
{
    json_object *o = NULL;
    cnp_status st = CNP_OK;
    int n = meta->n_labels;

    if (parse_json(p, key, s, &o) != CNP_OK)
        return p->ctx->status;
    if (json_object_is_type(o, json_type_array)) {
        size_t len = json_object_array_length(o);
        if (len != (size_t)n) {
            st = bad(p, key, "has %zu labels but the model has %d outputs", len, n);
            goto cleanup;
        }
        for (int i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(o, (size_t)i);
            if (!json_object_is_type(e, json_type_string)) {
                st = bad(p, key, "label %d is not a string", i + 1);
                goto cleanup;
            }
            if ((st = set_label(p, key, meta, i, json_object_get_string(e))) != CNP_OK)
                goto cleanup;
        }
    } else if (json_object_is_type(o, json_type_object) && strcmp(key, CNP_META_KEY_LABELS)) {
        /* Deepness: {"0": "name", "1": ...}, one entry per output */
        if (json_object_object_length(o) != n) {
            st = bad(p, key, "has %d classes but the model has %d outputs",
                     json_object_object_length(o), n);
            goto cleanup;
        }
        json_object_object_foreach(o, k, val) {
            char *end;
            long idx = strtol(k, &end, 10);
            if (!k[0] || *end || idx < 0 || idx >= n) {
                st = bad(p, key, "class index '%.30s' is not a number from 0 to %d", k, n - 1);
                goto cleanup;
            }
            if (!json_object_is_type(val, json_type_string)) {
                st = bad(p, key, "class %ld is not a string", idx);
                goto cleanup;
            }
            if (meta->labels[idx]) {
                st = bad(p, key, "class %ld appears twice", idx);
                goto cleanup;
            }
            if ((st = set_label(p, key, meta, (int)idx, json_object_get_string(val))) != CNP_OK)
                goto cleanup;
        }
    } else {
        st = bad(p, key, "expected a JSON array of %d label names, got '%.60s'", n, s);
    }
cleanup:
    json_object_put(o);
    return st;
}

static cnp_status get_markers(mp *p, const char *key, const char *s, cnp_model_meta *meta)
{
    json_object *o = NULL;
    cnp_status st = CNP_OK;
    size_t len;

    if (parse_array(p, key, s, "label names", &o) != CNP_OK)
        return p->ctx->status;
    len = json_object_array_length(o);
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        const char *name;
        int found = -1;
        if (!json_object_is_type(e, json_type_string)) {
            st = bad(p, key, "entry %zu is not a string", i + 1);
            goto cleanup;
        }
        name = json_object_get_string(e);
        for (int j = 0; j < meta->n_labels; j++)
            if (!strcmp(meta->labels[j], name))
                found = j;
        if (found < 0) {
            st = bad(p, key, "'%.60s' is not one of the model's labels", name);
            goto cleanup;
        }
        meta->is_marker[found] = 1;
    }
cleanup:
    json_object_put(o);
    return st;
}

int cnp_meta_peek_input_size(const cnp_meta_props *props)
{
    const char *s = find(props, CNP_META_KEY_INPUT_SIZE);
    char *end;
    long v;
    if (!s)
        s = find(props, "tile_size");
    if (!s)
        return 0;
    while (*s == ' ' || *s == '"')
        s++;
    v = strtol(s, &end, 10);
    if (end == s || v < 32 || v > MAX_INPUT_SIZE)
        return 0;
    return (int)v;
}

/* ---- One field at a time: the file's value, or the default ---------- */

static cnp_status labels_field(mp *p)
{
    cnp_model_meta *meta = p->meta;
    const char *key, *s = find2(p, CNP_META_KEY_LABELS, "class_names", &key);
    const int L = meta->n_labels;

    if (s)
        return get_labels(p, key, s, meta);
    meta->defaulted |= CNP_META_DEF_LABELS;
    for (int i = 0; i < L; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "label_%d", i);
        meta->labels[i] = dup_str(p->ctx, L == CNP_META_KAGGLE_N ? KAGGLE_LABELS[i] : nm);
        if (!meta->labels[i])
            return CNP_ERR_NOMEM;
    }
    return CNP_OK;
}

static cnp_status thresholds_markers_fields(mp *p)
{
    cnp_model_meta *meta = p->meta;
    const int L = meta->n_labels;
    const char *key = CNP_META_KEY_THRESHOLDS, *s;

    if ((s = find(p->props, key))) {
        if (get_numbers(p, key, s, L, "label", 0.0, 1.0, 0, meta->thresholds, NULL) != CNP_OK)
            return p->ctx->status;
    } else {
        meta->defaulted |= CNP_META_DEF_THRESHOLDS;
        for (int i = 0; i < L; i++)
            meta->thresholds[i] = CNP_META_DEFAULT_THRESHOLD;
    }
    if ((s = find(p->props, key = CNP_META_KEY_MARKERS)))
        return get_markers(p, key, s, meta);
    meta->defaulted |= CNP_META_DEF_MARKERS;
    for (int i = 0; i < L; i++)
        for (size_t j = 0; j < sizeof DEFAULT_MARKERS / sizeof *DEFAULT_MARKERS; j++)
            if (!strcmp(meta->labels[i], DEFAULT_MARKERS[j]))
                meta->is_marker[i] = 1;
    return CNP_OK;
}

static cnp_status geometry_fields(mp *p, int fixed_size)
{
    cnp_model_meta *meta = p->meta;
    const char *key, *s = find2(p, CNP_META_KEY_INPUT_SIZE, "tile_size", &key);
    double d;

    if (s) {
        if (get_number(p, key, s, 32, MAX_INPUT_SIZE, 1, &d) != CNP_OK)
            return p->ctx->status;
        meta->input_size = (int)d;
        if (fixed_size && meta->input_size != fixed_size)
            return bad(p, key, "says %d but the model was exported for a fixed input of %dx%d "
                       "pixels", meta->input_size, fixed_size, fixed_size);
    } else if (fixed_size) {
        meta->input_size = fixed_size;
    } else {
        meta->defaulted |= CNP_META_DEF_INPUT_SIZE;
        meta->input_size = CNP_META_DEFAULT_SIZE;
    }
    if ((s = find(p->props, key = CNP_META_KEY_BANDS)) && get_band_names(p, key, s, meta))
        return p->ctx->status;
    if (s)
        return get_numbers(p, key, s, meta->n_channels, "input channel", 1, MAX_BAND, 0, NULL,
                           meta->bands);
    meta->defaulted |= CNP_META_DEF_BANDS;
    for (int c = 0; c < meta->n_channels; c++)
        meta->bands[c] = c + 1;
    return CNP_OK;
}

/* A JSON number in (0, hi]; `unit` ends the message ("" or " metres"). */
static cnp_status get_positive(mp *p, const char *key, const char *s, double hi,
                               const char *unit, double *out)
{
    if (get_number(p, key, s, 0, hi, 0, out) != CNP_OK)
        return p->ctx->status;
    if (!(*out > 0))
        return bad(p, key, "must be greater than 0%s", unit);
    return CNP_OK;
}

/* canopy.scale, canopy.mean, canopy.std (or their fallbacks). */
static cnp_status scaling_fields(mp *p)
{
    cnp_model_meta *meta = p->meta;
    const int C = meta->n_channels;
    const char *key = CNP_META_KEY_SCALE, *s;
    double d;

    if ((s = find(p->props, key))) {
        if (get_positive(p, key, s, 1e30, "", &d) != CNP_OK)
            return p->ctx->status;
        meta->scale = d;
    } else {
        meta->defaulted |= CNP_META_DEF_SCALE;
        meta->scale = CNP_META_DEFAULT_SCALE;
    }
    if ((s = find2(p, CNP_META_KEY_MEAN, "standardization_mean", &key))) {
        if (get_numbers(p, key, s, C, "input channel", -1e30, 1e30, 0, meta->mean, NULL) != CNP_OK)
            return p->ctx->status;
    } else {
        meta->defaulted |= CNP_META_DEF_MEAN;
        for (int c = 0; c < C; c++)
            meta->mean[c] = c < 3 ? IMAGENET_MEAN[c] : CNP_META_EXTRA_MEAN;
    }
    if ((s = find2(p, CNP_META_KEY_STD, "standardization_std", &key)))
        return get_numbers(p, key, s, C, "input channel", 0, 1e30, 1, meta->std, NULL);
    meta->defaulted |= CNP_META_DEF_STD;
    for (int c = 0; c < C; c++)
        meta->std[c] = c < 3 ? IMAGENET_STD[c] : CNP_META_EXTRA_STD;
    return CNP_OK;
}

/* canopy.gsd_m (or resolution in cm/px), canopy.name, canopy.version. */
static cnp_status descriptive_fields(mp *p, const char *default_name)
{
    cnp_model_meta *meta = p->meta;
    const char *key = CNP_META_KEY_GSD, *s;
    double d;

    if ((s = find(p->props, key))) {
        if (get_positive(p, key, s, 1e7, " metres", &d) != CNP_OK)
            return p->ctx->status;
        meta->gsd_m = d;
    } else if ((s = find(p->props, key = "resolution"))) {
        if (get_positive(p, key, s, 1e9, " cm/px", &d) != CNP_OK)
            return p->ctx->status;
        meta->gsd_m = d / 100.0;
    }
    s = find(p->props, CNP_META_KEY_NAME);
    if (s && s[0]) {
        if (!(meta->name = dup_str(p->ctx, s)))
            return CNP_ERR_NOMEM;
    } else if (default_name && !(meta->name = dup_str(p->ctx, default_name))) {
        return CNP_ERR_NOMEM;
    }
    s = find(p->props, CNP_META_KEY_TRAINED_ON);
    if (s && s[0] && !(meta->trained_on = dup_str(p->ctx, s)))
        return CNP_ERR_NOMEM;
    s = find(p->props, CNP_META_KEY_VERSION);
    return (meta->version = dup_str(p->ctx, s)) ? CNP_OK : CNP_ERR_NOMEM;
}

/* ---- canopy.int8 ------------------------------------------------------- */

#define MAX_INT8_ENTRIES 100000
#define MAX_TENSOR_NAME 4096

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A member of object o that is a finite number representable as a float. */
static int int8_number(json_object *o, const char *name, double *out)
{
    json_object *x;
    if (!json_object_object_get_ex(o, name, &x) || !is_number(x))
        return 0;
    *out = json_object_get_double(x);
    return isfinite(*out) && fabs(*out) <= FLT_MAX;
}

/* Entry i of "activations" into the meta arrays. */
static cnp_status int8_entry(mp *p, const char *key, json_object *e, int i)
{
    cnp_model_meta *meta = p->meta;
    json_object *t;
    const char *name;
    double lo, hi;

    if (!json_object_is_type(e, json_type_object))
        return bad(p, key, "activation %d is not a JSON object {\"tensor\": NAME, \"min\": LO, "
                   "\"max\": HI}", i + 1);
    if (!json_object_object_get_ex(e, "tensor", &t) || !json_object_is_type(t, json_type_string))
        return bad(p, key, "activation %d has no \"tensor\" name (a string)", i + 1);
    name = json_object_get_string(t);
    if (!name[0] || strlen(name) > MAX_TENSOR_NAME)
        return bad(p, key, "activation %d: the tensor name is empty or longer than %d bytes",
                   i + 1, MAX_TENSOR_NAME);
    if (!int8_number(e, "min", &lo) || !int8_number(e, "max", &hi))
        return bad(p, key, "activation %d ('%.60s'): \"min\" and \"max\" must be finite numbers",
                   i + 1, name);
    if (lo > 0 || hi < 0)
        return bad(p, key, "activation %d ('%.60s'): the range [%g, %g] must hold 0 (min <= 0 "
                   "<= max)", i + 1, name, lo, hi);
    meta->int8_min[i] = (float)lo;
    meta->int8_max[i] = (float)hi;
    meta->int8_names[i] = dup_str(p->ctx, name);
    return meta->int8_names[i] ? CNP_OK : CNP_ERR_NOMEM;
}

/* No tensor named twice (sorted copies of the name pointers, neighbours
 * compared). */
static cnp_status int8_unique(mp *p, const char *key)
{
    const cnp_model_meta *meta = p->meta;
    const char **v = cnp_calloc(p->ctx, (size_t)meta->n_int8, sizeof *v, "the int8 ranges");
    cnp_status st = CNP_OK;
    if (!v)
        return CNP_ERR_NOMEM;
    memcpy(v, meta->int8_names, (size_t)meta->n_int8 * sizeof *v);
    qsort(v, (size_t)meta->n_int8, sizeof *v, cmp_str);
    for (int i = 1; i < meta->n_int8 && st == CNP_OK; i++)
        if (!strcmp(v[i - 1], v[i]))
            st = bad(p, key, "tensor '%.60s' has two ranges", v[i]);
    free(v);
    return st;
}

/* canopy.int8's object: version, chips, then the activations. */
static cnp_status int8_object(mp *p, const char *key, json_object *o)
{
    cnp_model_meta *meta = p->meta;
    json_object *x, *acts;
    double d;
    size_t n;

    if (!json_object_is_type(o, json_type_object))
        return bad(p, key, "expected a JSON object {\"version\": 1, \"chips\": N, "
                   "\"activations\": [...]}");
    x = NULL;
    if (!json_object_object_get_ex(o, "version", &x) || !is_number(x) ||
        json_object_get_double(x) != 1.0)
        return bad(p, key, "\"version\" is %.20s; this canopy reads version 1",
                   x ? json_object_to_json_string(x) : "missing");
    if (!json_object_object_get_ex(o, "chips", &x) || !is_number(x) ||
        !((d = json_object_get_double(x)) >= 1 && d <= INT_MAX && d == floor(d)))
        return bad(p, key, "\"chips\" must be the number of calibration chips, a whole number "
                   ">= 1");
    meta->int8_chips = (int)d;
    if (!json_object_object_get_ex(o, "activations", &acts) ||
        !json_object_is_type(acts, json_type_array))
        return bad(p, key, "\"activations\" must be a JSON array of {\"tensor\", \"min\", "
                   "\"max\"} objects");
    n = json_object_array_length(acts);
    if (n < 1 || n > MAX_INT8_ENTRIES)
        return bad(p, key, "\"activations\" has %zu entries (1 to %d)", n, MAX_INT8_ENTRIES);
    meta->int8_names = cnp_calloc(p->ctx, n, sizeof *meta->int8_names, "the int8 ranges");
    meta->int8_min = cnp_calloc(p->ctx, n, sizeof *meta->int8_min, "the int8 ranges");
    meta->int8_max = cnp_calloc(p->ctx, n, sizeof *meta->int8_max, "the int8 ranges");
    if (!meta->int8_names || !meta->int8_min || !meta->int8_max)
        return CNP_ERR_NOMEM;
    meta->n_int8 = (int)n;
    for (size_t i = 0; i < n; i++)
        if (int8_entry(p, key, json_object_array_get_idx(acts, i), (int)i) != CNP_OK)
            return p->ctx->status;
    return int8_unique(p, key);
}

static cnp_status int8_field(mp *p)
{
    const char *key = CNP_META_KEY_INT8, *s = find(p->props, key);
    json_object *o = NULL;
    cnp_status st;

    if (!s)
        return CNP_OK;
    if (parse_json(p, key, s, &o) != CNP_OK)
        return p->ctx->status;
    st = int8_object(p, key, o);
    json_object_put(o);
    return st;
}

cnp_status cnp_meta_parse(cnp_ctx *ctx, const cnp_meta_params *params, cnp_model_meta *meta)
{
    mp p = {ctx, params->file, &params->props, meta};
    const int L = params->n_outputs, C = params->n_channels;

    memset(meta, 0, sizeof *meta);
    if (L < 1 || L > 1000000)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the model has %d outputs per chip", p.file, L);
    if (C < 1 || C > 4096)
        return cnp_error(ctx, CNP_ERR_SHAPE, "%s: the model has %d input channels", p.file, C);
    meta->n_labels = L;
    meta->n_channels = C;
    meta->labels = cnp_calloc(ctx, (size_t)L + 1, sizeof *meta->labels, "labels");
    meta->thresholds = cnp_calloc(ctx, (size_t)L, sizeof *meta->thresholds, "labels");
    meta->is_marker = cnp_calloc(ctx, (size_t)L, sizeof *meta->is_marker, "labels");
    meta->bands = cnp_calloc(ctx, (size_t)C, sizeof *meta->bands, "bands");
    meta->mean = cnp_calloc(ctx, (size_t)C, sizeof *meta->mean, "mean");
    meta->std = cnp_calloc(ctx, (size_t)C, sizeof *meta->std, "std");
    if (!meta->labels || !meta->thresholds || !meta->is_marker || !meta->bands || !meta->mean ||
        !meta->std)
        return ctx->status;
    if (labels_field(&p) != CNP_OK || thresholds_markers_fields(&p) != CNP_OK ||
        geometry_fields(&p, params->fixed_size) != CNP_OK || scaling_fields(&p) != CNP_OK ||
        descriptive_fields(&p, params->default_name) != CNP_OK || int8_field(&p) != CNP_OK)
        return ctx->status;
    return CNP_OK;
}

void cnp_meta_clear(cnp_model_meta *meta)
{
    if (!meta)
        return;
    for (int i = 0; meta->labels && i < meta->n_labels; i++)
        free(meta->labels[i]);
    free(meta->labels);
    free(meta->thresholds);
    free(meta->is_marker);
    free(meta->bands);
    for (int c = 0; meta->band_names && meta->band_names[c]; c++)
        free(meta->band_names[c]);
    free(meta->band_names);
    free(meta->trained_on);
    free(meta->mean);
    free(meta->std);
    free(meta->name);
    free(meta->version);
    for (int i = 0; meta->int8_names && i < meta->n_int8; i++)
        free(meta->int8_names[i]);
    free(meta->int8_names);
    free(meta->int8_min);
    free(meta->int8_max);
    memset(meta, 0, sizeof *meta);
}
