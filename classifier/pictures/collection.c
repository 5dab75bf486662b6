/* collection.c -- the STAC Collection of an output folder (collection.json),
 * built from the Items on disk: their union bbox and time span, one "item"
 * link each. */
#define _GNU_SOURCE
#include "config.h"
#include "pictures/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_MAX ((size_t)16 << 20)

static const char *prop(json_object *item, const char *key)
{
    json_object *p, *v;
    if (!json_object_object_get_ex(item, "properties", &p) ||
        !json_object_object_get_ex(p, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Extends bbox and [t0, t1] with one Item (ISO strings compare as times). */
static void extend(json_object *item, double bbox[4], char t0[32], char t1[32])
{
    json_object *b;
    const char *times[3];
    int i;
    if (json_object_object_get_ex(item, "bbox", &b) && json_object_is_type(b, json_type_array) &&
        json_object_array_length(b) == 4) {
        for (i = 0; i < 4; i++) {
            double v = json_object_get_double(json_object_array_get_idx(b, (size_t)i));
            bbox[i] = i < 2 ? fmin(bbox[i], v) : fmax(bbox[i], v);
        }
    }
    times[0] = prop(item, "datetime");
    times[1] = prop(item, "start_datetime");
    times[2] = prop(item, "end_datetime");
    for (i = 0; i < 3; i++) {
        if (!times[i] || strlen(times[i]) >= 32)
            continue;
        if (!*t0 || strcmp(times[i], t0) < 0)
            snprintf(t0, 32, "%s", times[i]);
        if (!*t1 || strcmp(times[i], t1) > 0)
            snprintf(t1, 32, "%s", times[i]);
    }
}

static json_object *extent(const double bbox[4], const char *t0, const char *t1, int *ok)
{
    json_object *e = json_object_new_object(), *sp = json_object_new_object();
    json_object *tm = json_object_new_object(), *bbs = json_object_new_array();
    json_object *bb = json_object_new_array(), *ivs = json_object_new_array();
    json_object *iv = json_object_new_array();
    int i;
    for (i = 0; i < 4; i++)
        cnp_json_push(bb, cnp_json_deg(isfinite(bbox[i]) ? bbox[i] : (i % 2 ? 90.0 : 180.0) *
                                                                    (i < 2 ? -1 : 1)), ok);
    cnp_json_push(bbs, bb, ok);
    cnp_json_add(sp, "bbox", bbs, ok);
    cnp_json_add(e, "spatial", sp, ok);
    /* An open end (no time known) is null, as STAC allows. */
    if (!iv || json_object_array_add(iv, *t0 ? json_object_new_string(t0) : NULL) != 0 ||
        json_object_array_add(iv, *t1 ? json_object_new_string(t1) : NULL) != 0)
        *ok = 0;
    cnp_json_push(ivs, iv, ok);
    cnp_json_add(tm, "interval", ivs, ok);
    cnp_json_add(e, "temporal", tm, ok);
    return e;
}

cnp_status cnp_stac_collection_write(cnp_ctx *ctx, const char *path, const char *id,
                                     const cnp_report_options *o, cnp_scene_record *const *rec,
                                     int n)
{
    json_object *c = json_object_new_object(), *links = json_object_new_array();
    double bbox[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    char t0[32] = "", t1[32] = "", desc[512];
    char *self = cnp_stac_absolute_href(path);
    cnp_status st = CNP_OK;
    int ok = 1, i, items = 0;

    cnp_json_push(links, cnp_stac_link("root", "./collection.json", "application/json", NULL, &ok),
                  &ok);
    cnp_json_push(links, cnp_stac_link("self", self ? self : "./collection.json",
                                       "application/json", NULL, &ok), &ok);
    for (i = 0; i < n; i++) {
        cnp_buf href = {0};
        json_object *item;
        if (!rec[i]->stac)
            continue;
        item = cnp_json_read_file(NULL, rec[i]->stac, ITEM_MAX);
        if (!item)
            continue;
        extend(item, bbox, t0, t1);
        json_object_put(item);
        cnp_html_href(&href, "", rec[i]->name);
        cnp_buf_puts(&href, ".stac.json");
        cnp_json_push(links, cnp_stac_link("item", href.failed ? "" : href.data,
                                           "application/geo+json", rec[i]->name, &ok), &ok);
        cnp_buf_free(&href);
        items++;
    }
    snprintf(desc, sizeof desc, "Deforestation markers found by canopy %s: %d scene%s with "
             "probabilities, masks, markers and quick-looks.", PACKAGE_VERSION, items,
             items == 1 ? "" : "s");
    cnp_json_add(c, "type", json_object_new_string("Collection"), &ok);
    cnp_json_add(c, "stac_version", json_object_new_string("1.0.0"), &ok);
    cnp_json_add(c, "stac_extensions", json_object_new_array(), &ok);
    cnp_json_add(c, "id", json_object_new_string(id), &ok);
    cnp_json_add(c, "title", json_object_new_string(o->title ? o->title : id), &ok);
    cnp_json_add(c, "description", json_object_new_string(desc), &ok);
    cnp_json_add(c, "license", json_object_new_string(o->license ? o->license : "proprietary"),
                 &ok);
    cnp_json_add(c, "extent", extent(bbox, t0, t1, &ok), &ok);
    cnp_json_add(c, "links", links, &ok);
    links = NULL;
    if (!ok)
        st = cnp_error(ctx, CNP_ERR_NOMEM, "out of memory writing %s", path);
    else
        st = cnp_json_write_file(ctx, path, c);
    json_object_put(c);
    free(self);
    return st;
}
