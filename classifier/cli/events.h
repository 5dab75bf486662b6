/* events.h -- the JSONL event stream of `canopy classify --progress=jsonl`,
 * version 1 (README, "Event stream"): one JSON object per line on stdout,
 * flushed per line, built with json-c so that any scene name or message
 * stays one line. Index and counts as the contract says; index 0 and path
 * NULL leave those fields out. */
#ifndef CNP_CLI_EVENTS_H
#define CNP_CLI_EVENTS_H

#include "canopy/classify.h"
#include "alerts/alerts.h"

#include <json-c/json.h>

#define CNP_EVENTS_VERSION 1

void cnp_ev_run_start(const char *model, int n_scenes, const char *outdir,
                      const char *precision);
void cnp_ev_scene(const char *path, const char *name);
void cnp_ev_scene_start(int index, int count, const char *path, const char *name);
void cnp_ev_progress(int index, const char *path, double done);
void cnp_ev_warning(int index, const char *path, const char *message);
void cnp_ev_scene_done(int index, const cnp_classify_result *r, double seconds);
void cnp_ev_scene_error(int index, const char *path, cnp_status st, const char *message);
void cnp_ev_run_done(int n_scenes, int ok, int skipped, int failed, double seconds,
                     int exit_status, int interrupted);
void cnp_ev_run_error(cnp_status st, const char *message, int exit_status);

/* What a scene changed in the alert state, as the "alerts" object of
 * scene_done and of `canopy alerts add --json`: new, confirmed, dismissed,
 * labels_new, area_m2, summary, state (from r's n_new, n_confirmed,
 * n_dismissed, labels_new, area_new_m2, summary, state_dir). Caller adds it
 * to its object (or puts it). */
json_object *cnp_ev_alerts_json(const cnp_alerts_result *r);

/* Prints o as one line on stdout (plain, slashes unescaped), flushes, and
 * puts o. */
void cnp_ev_emit(json_object *o);

#endif
