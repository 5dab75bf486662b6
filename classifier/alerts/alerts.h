/* alerts.h -- monitoring: deforestation alerts over time, from scene after
 * scene of the same area, in the manner of Global Forest Watch's GLAD and
 * RADD alerts (date of first detection + a confidence class per cell).
 *
 * The alert state folder DIR holds:
 *   state.json        the grid, the tracked labels, the parameters and the
 *                     list of scenes (id, date, observation file), sorted
 *                     by date; the commit point of every update
 *   obs/NAME.tif      one observation per scene on the grid: a Byte band per
 *                     tracked label (probability x 255, 255 = no clear
 *                     observation) and a status band (1 clear, 2 obscured,
 *                     0 not classified)
 *   alerts.tif        band per tracked label, UInt16, 0 = no alert, else
 *                     C * 10000 + days since 2014-12-31 (C = 2 unconfirmed,
 *                     3 high or confirmed), as GFW's integrated alerts
 *                     (date_conf); alerts.qml colours it by date
 *   alerts.geojson    RFC 7946 (EPSG:4326) polygons of the current alerts
 *   .lock             flock()ed during an update
 *
 * The grid is the first scene's chip grid (its probabilities raster's
 * geotransform, size and CRS), or a reference raster's. Every scene's
 * probabilities are mapped onto it with GDAL's warper (GDALReprojectImage,
 * nearest neighbour, exact transformation), whatever its CRS or footprint.
 *
 * The rule, per grid cell and tracked label L, over the clear observations
 * in date order (ties by scene id):
 *   - present = p(L) >= L's threshold (the model's, from the raster);
 *     obscured = any of the obscured labels (cloudy, haze, partly_cloudy)
 *     at or above its threshold; obscured and unclassified cells are not
 *     observations: they neither confirm nor dismiss;
 *   - an alert starts when L is present after at least `baseline`
 *     consecutive clear observations without it: unconfirmed (C = 2), or
 *     high (C = 3) when p(L) >= `high`; its date is that observation's;
 *   - a later clear observation with L present confirms it (C = 3);
 *   - `dismiss` consecutive clear observations without L before any
 *     confirmation dismiss it (it leaves the raster; those observations
 *     count towards a new baseline);
 *   - L present with a shorter baseline (there from the start, or back
 *     soon after a dismissal) is not news: the baseline restarts.
 * The state is rebuilt from the observations on every update, so a scene
 * delivered late gives the same state as in date order, and adding a scene
 * already in the state (same id, same probabilities) changes nothing.
 *
 * Updates are atomic: everything new is written in a private temporary
 * folder inside DIR (mkdtemp, 0700), flushed, then renamed into place,
 * state.json last but one (the commit point) and the derived outputs after
 * it; outputs record the state generation they were made from, and a run
 * that finds them behind the state remakes them. A process killed at any
 * point leaves the previous state (or the new one) intact.
 */
#ifndef CNP_ALERTS_H
#define CNP_ALERTS_H

#include "base/base.h"

#define CNP_ALERTS_DEFAULT_BASELINE 2
#define CNP_ALERTS_DEFAULT_HIGH 0.9
#define CNP_ALERTS_DEFAULT_DISMISS 2

/* Day 0 of the alert encoding: 2014-12-31 (days since 1970-01-01). */
#define CNP_ALERTS_EPOCH_DAY 16435

/* Confidence classes in alerts.tif (value / 10000). */
enum { CNP_ALERT_LOW = 2, CNP_ALERT_HIGH = 3 };

/* Test hook points (cnp_alerts_options.kill_at): the process sends itself
 * SIGKILL there. */
typedef enum {
    CNP_ALERTS_KILL_NONE = 0,
    CNP_ALERTS_KILL_BEFORE_COMMIT, /* everything written to the temporary folder */
    CNP_ALERTS_KILL_AFTER_COMMIT   /* state.json renamed, outputs not yet */
} cnp_alerts_kill_point;

/* Options of an update. Borrowed. Parameters <= 0 (or NULL) keep the
 * state's value, or the default for a new state. */
typedef struct cnp_alerts_options {
    const char *dir;              /* alert state folder (created when missing) */
    const char *grid_ref;         /* raster whose grid the state uses (new state only) */
    int baseline;                 /* N: clear absences before an alert (default 2) */
    double high;                  /* p at or above which a new alert is high (0.9) */
    int dismiss;                  /* M: clear absences that dismiss an alert (2) */
    const char *obscured_labels;  /* comma list (default "cloudy,haze,partly_cloudy") */
    cnp_alerts_kill_point kill_at;/* tests only */
} cnp_alerts_options;

/* One scene's observation. Borrowed. */
typedef struct cnp_alerts_scene {
    const char *probs_path;  /* the scene's probabilities raster (NAME.probs.tif):
                                band per label, band description = label,
                                CANOPY_THRESHOLD per band, CANOPY_MARKERS on the
                                dataset (the tracked labels of a new state) */
    const char *scene_id;    /* unique id of the scene (its name) */
    int day;                 /* acquisition date, days since 1970-01-01 */
    const char *changes_path;/* NAME.alerts.geojson to write (what this scene made
                                new or changed), or NULL */
} cnp_alerts_scene;

/* What an update did for its scene. Freed with cnp_alerts_result_free(). */
typedef struct cnp_alerts_result {
    int unchanged;           /* 1: the scene was already in the state */
    int replaced;            /* 1: the scene was in the state with other probabilities */
    int n_new;               /* new alert regions at this scene */
    int n_confirmed;         /* alert regions this scene confirmed */
    int n_dismissed;         /* alert regions this scene dismissed */
    char **labels_new;       /* NULL-terminated labels of the new alerts */
    double area_new_m2;      /* geodesic area of the new alerts */
    long clear, obscured, unclassified;  /* cells of the grid in this scene */
    int n_scenes;            /* scenes in the state after the update */
    long alert_cells;        /* cells x labels with a current alert */
    char date[11];           /* the scene's date, YYYY-MM-DD */
    char *summary;           /* "2 new alerts (road, slash_burn), 1 confirmed,
                                1 dismissed, 38.4 ha" */
    char *changes_path;      /* NAME.alerts.geojson written, or NULL */
    char *state_dir;         /* the state folder */
    double seconds;          /* time the update took (lock wait included) */
} cnp_alerts_result;

/* Adds a scene's observation to the alert state in opt->dir (under its
 * lock, atomically) and rebuilds the alerts. On success *out is a new
 * result the caller frees with cnp_alerts_result_free(). Errors (with the
 * previous state left as it was): an unreadable probabilities raster, one
 * without the tracked labels, a grid the scene does not overlap, an
 * unwritable folder, a state folder that is not canopy's. */
cnp_status cnp_alerts_update(cnp_ctx *ctx, const cnp_alerts_options *opt,
                             const cnp_alerts_scene *scene, cnp_alerts_result **out);

/* Rebuilds alerts.tif, alerts.qml and alerts.geojson from the observations
 * in opt->dir (e.g. after changing a parameter: the options' non-default
 * parameters are stored in the state). *n_alert_cells (may be NULL) gets
 * the number of current alert cells x labels. */
cnp_status cnp_alerts_rebuild(cnp_ctx *ctx, const cnp_alerts_options *opt, long *n_alert_cells);

void cnp_alerts_result_free(cnp_alerts_result *r);

#endif
