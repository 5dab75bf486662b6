/* internal.h -- what the files of classifier/alerts/ share; not public. */
#ifndef CNP_ALERTS_INTERNAL_H
#define CNP_ALERTS_INTERNAL_H

#include <stdint.h>
#include "alerts/alerts.h"

#define AL_STATE_VERSION 1
#define AL_NODATA 255      /* obs label bands: no clear observation */
enum { AL_ST_NONE = 0, AL_ST_CLEAR = 1, AL_ST_OBSCURED = 2 }; /* obs status band */
enum { AL_EV_NONE = 0, AL_EV_NEW = 1, AL_EV_CONFIRMED = 2, AL_EV_DISMISSED = 3 };

typedef struct al_grid {
    int cols, rows;
    double gt[6];
    char *wkt;
} al_grid;

typedef struct al_scene {
    char *id;
    int day;
    char *obs;        /* "obs/NAME.tif", relative to the state folder */
    char *sha256;     /* of the probabilities raster it came from */
    char *probs;      /* that raster's path, as given (information) */
    char *path;       /* where the observation is read from in this run */
} al_scene;

typedef struct al_state {
    long generation;
    al_grid grid;
    int n_labels;
    char **labels;           /* NULL-terminated CSL */
    int baseline, dismiss;
    double high;
    char *obscured;          /* comma list */
    int n_scenes;
    al_scene *scenes;        /* (n_scenes), sorted by (day, id) */
} al_state;

/* Per cell and label, the alert as the observations so far leave it. */
typedef struct al_cell {
    uint8_t active;          /* an alert that is not dismissed */
    uint8_t conf;            /* CNP_ALERT_LOW or CNP_ALERT_HIGH */
    uint8_t confirmed;       /* a later clear observation agreed */
    uint16_t absent;         /* consecutive clear observations without the label */
    uint16_t disagree;       /* of an unconfirmed alert: clear absences since */
    uint16_t nobs;           /* clear observations since first detection */
    int32_t first_day, last_day;
    int32_t first_scene, confirm_scene;  /* scene indices, -1 none */
} al_cell;

/* The whole timeline's result. */
typedef struct al_timeline {
    size_t cells;            /* rows * cols */
    int n_labels;
    al_cell *cell;           /* (n_labels, cells) */
    uint8_t *event;          /* (n_labels, cells) AL_EV_* at the target scene */
    int32_t *event_day;      /* (n_labels, cells) first day of the alert concerned */
    long clear, obscured, unclassified;  /* target scene's cells */
} al_timeline;

/* state.c */
void al_state_free(al_state *s);

/* observe.c: warps `probs` onto the grid and writes the observation raster
 * `out_path`; *sha gets the probs file's SHA-256. Tracked labels of a new
 * state come from the raster's CANOPY_MARKERS (*labels_out, a new CSL, when
 * labels_out is not NULL and s->labels is NULL). */
cnp_status al_observe(cnp_ctx *ctx, const al_state *s, const char *probs, const char *scene_id,
                      int day, const char *out_path);
/* The grid of a raster (probabilities or --alerts-grid reference). */
cnp_status al_grid_from_raster(cnp_ctx *ctx, const char *path, al_grid *g);
/* The marker labels of a probabilities raster (CANOPY_MARKERS), a new CSL. */
cnp_status al_markers_of(cnp_ctx *ctx, const char *probs, char ***labels);

/* rule.c: replays every observation of s in order; events at scene
 * `target` (-1: none). tl is zeroed and filled; free with al_timeline_free. */
cnp_status al_replay(cnp_ctx *ctx, const al_state *s, int target, al_timeline *tl);
void al_timeline_free(al_timeline *tl);

/* output.c */
/* Geodesic area of every grid cell (m2), a new array of rows * cols. */
cnp_status al_cell_areas(cnp_ctx *ctx, const al_grid *g, double **areas);
/* alerts.tif (+ .qml) and alerts.geojson into folder tmpdir. */
cnp_status al_write_state_outputs(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                                  const double *areas, const char *tmpdir);
/* NAME.alerts.geojson of the target scene's events (path may be NULL: then
 * only counted); fills the counts of r. */
cnp_status al_write_changes(cnp_ctx *ctx, const al_state *s, const al_timeline *tl,
                            const double *areas, const char *path, cnp_alerts_result *r);

/* Small helpers (state.c). */
char *al_join(cnp_ctx *ctx, const char *a, const char *b);  /* "a/b", caller frees */

#endif
