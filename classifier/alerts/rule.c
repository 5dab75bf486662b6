/* rule.c -- the alert rule (alerts.h), replayed over every observation of
 * the state in date order. */
#define _POSIX_C_SOURCE 200809L
#include "alerts/internal.h"
#include "base/gdal.h"

#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <gdal.h>

/* One observation: (n_labels + 1, cells) bytes, the status band last, and
 * the label thresholds. */
typedef struct obs {
    uint8_t *v;
    double *thr;
} obs;

static cnp_status read_obs(cnp_ctx *ctx, const al_state *s, const al_scene *sc, obs *o)
{
    cnp_status st = CNP_OK;
    GDALDatasetH ds;
    size_t cells = (size_t)s->grid.cols * (size_t)s->grid.rows;
    int b;

    CPLPushErrorHandler(CPLQuietErrorHandler);
    ds = GDALOpenEx(sc->path, GDAL_OF_RASTER | GDAL_OF_READONLY, NULL, NULL, NULL);
    CPLPopErrorHandler();
    if (!ds)
        return cnp_error(ctx, CNP_ERR_FORMAT, "%s: the observation of scene %s cannot be read; "
                         "the alert state is damaged: run 'canopy alerts rebuild' after "
                         "removing that scene from state.json, or start a new state folder",
                         sc->path, sc->id);
    if (GDALGetRasterXSize(ds) != s->grid.cols || GDALGetRasterYSize(ds) != s->grid.rows ||
        GDALGetRasterCount(ds) != s->n_labels + 1) {
        st = cnp_error(ctx, CNP_ERR_FORMAT, "%s: the observation of scene %s does not fit the "
                       "state's grid (%d x %d, %d labels); the alert state is damaged",
                       sc->path, sc->id, s->grid.cols, s->grid.rows, s->n_labels);
        goto cleanup;
    }
    for (b = 0; b <= s->n_labels; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (GDALRasterIO(band, GF_Read, 0, 0, s->grid.cols, s->grid.rows, o->v + (size_t)b * cells,
                         s->grid.cols, s->grid.rows, GDT_Byte, 0, 0) != CE_None) {
            st = cnp_error(ctx, CNP_ERR_IO, "%s: reading the observation of scene %s failed (%s)",
                           sc->path, sc->id, cnp_gdal_msg());
            goto cleanup;
        }
        if (b < s->n_labels) {
            const char *t = GDALGetMetadataItem(band, "CANOPY_THRESHOLD", NULL);
            o->thr[b] = t ? CPLAtof(t) : 0.5;
        }
    }
cleanup:
    GDALClose(ds);
    return st;
}

/* The rule for one clear observation of one cell and label. */
static void step(al_cell *x, int present, int high, int day, int scene, const al_state *s,
                 uint8_t *event, int32_t *event_day)
{
    if (x->active) {
        x->last_day = day;
        if (x->nobs < UINT16_MAX)
            x->nobs++;
        if (present) {
            x->disagree = 0;
            if (!x->confirmed) {
                x->confirmed = 1;
                x->conf = CNP_ALERT_HIGH;
                x->confirm_scene = scene;
                *event = AL_EV_CONFIRMED;
                *event_day = x->first_day;
            }
        } else if (!x->confirmed && ++x->disagree >= s->dismiss) {
            *event = AL_EV_DISMISSED;
            *event_day = x->first_day;
            x->active = 0;
            x->conf = 0;
            x->absent = x->disagree;
            x->disagree = 0;
        }
        return;
    }
    if (!present) {
        if (x->absent < UINT16_MAX)
            x->absent++;
        return;
    }
    if (x->absent >= s->baseline) {
        x->active = 1;
        x->confirmed = 0;
        x->conf = high ? CNP_ALERT_HIGH : CNP_ALERT_LOW;
        x->first_day = x->last_day = day;
        x->nobs = 1;
        x->disagree = 0;
        x->first_scene = scene;
        x->confirm_scene = -1;
        *event = AL_EV_NEW;
        *event_day = day;
    }
    x->absent = 0;
}

static void apply_obs(const al_state *s, const obs *o, int k, int target, al_timeline *tl)
{
    size_t c, cells = tl->cells;
    const uint8_t *status = o->v + (size_t)s->n_labels * cells;
    int l;

    for (c = 0; c < cells; c++) {
        if (k == target) {
            if (status[c] == AL_ST_CLEAR)
                tl->clear++;
            else if (status[c] == AL_ST_OBSCURED)
                tl->obscured++;
            else
                tl->unclassified++;
        }
        if (status[c] != AL_ST_CLEAR)
            continue;
        for (l = 0; l < s->n_labels; l++) {
            size_t i = (size_t)l * cells + c;
            uint8_t v = o->v[i];
            double p = v / 255.0;
            uint8_t ev = AL_EV_NONE;
            int32_t ev_day = 0;
            if (v == AL_NODATA)
                continue;
            step(&tl->cell[i], p >= o->thr[l], p >= s->high, s->scenes[k].day, k, s, &ev,
                 &ev_day);
            if (k == target && ev) {
                tl->event[i] = ev;
                tl->event_day[i] = ev_day;
            }
        }
    }
}

cnp_status al_replay(cnp_ctx *ctx, const al_state *s, int target, al_timeline *tl)
{
    cnp_status st = CNP_OK;
    size_t cells = (size_t)s->grid.cols * (size_t)s->grid.rows, n, i;
    obs o = { NULL, NULL };
    int k;

    memset(tl, 0, sizeof *tl);
    tl->cells = cells;
    tl->n_labels = s->n_labels;
    if (!cnp_mul_size(cells, (size_t)s->n_labels, &n))
        return cnp_error(ctx, CNP_ERR_NOMEM, "the alert grid is too large");
    tl->cell = cnp_calloc(ctx, n, sizeof *tl->cell, "the alert state");
    tl->event = cnp_calloc(ctx, n, 1, "the alert events");
    tl->event_day = cnp_calloc(ctx, n, sizeof *tl->event_day, "the alert events");
    o.v = cnp_calloc(ctx, n + cells, 1, "an observation");
    o.thr = cnp_calloc(ctx, (size_t)s->n_labels + 1, sizeof *o.thr, "thresholds");
    if (!tl->cell || !tl->event || !tl->event_day || !o.v || !o.thr) {
        st = CNP_ERR_NOMEM;
        goto cleanup;
    }
    for (i = 0; i < n; i++)
        tl->cell[i].first_scene = tl->cell[i].confirm_scene = -1;
    for (k = 0; k < s->n_scenes; k++) {
        if ((st = read_obs(ctx, s, &s->scenes[k], &o)) != CNP_OK)
            goto cleanup;
        apply_obs(s, &o, k, target, tl);
    }
cleanup:
    free(o.v);
    free(o.thr);
    if (st != CNP_OK)
        al_timeline_free(tl);
    return st;
}

void al_timeline_free(al_timeline *tl)
{
    if (!tl)
        return;
    free(tl->cell);
    free(tl->event);
    free(tl->event_day);
    memset(tl, 0, sizeof *tl);
}
