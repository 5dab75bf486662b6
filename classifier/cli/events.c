/* events.c -- JSONL events (events.h), through json-c. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/events.h"

#include <stdio.h>
#include <time.h>

static json_object *event_new(const char *name)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "v", json_object_new_int(CNP_EVENTS_VERSION));
    json_object_object_add(o, "event", json_object_new_string(name));
    return o;
}

static void put_str(json_object *o, const char *key, const char *s)
{
    if (s)
        json_object_object_add(o, key, json_object_new_string(s));
}

static void put_scene(json_object *o, int index, const char *path)
{
    if (index > 0)
        json_object_object_add(o, "index", json_object_new_int(index));
    put_str(o, "scene", path);
}

void cnp_ev_emit(json_object *o)
{
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
    }
    json_object_put(o);
}

/* A number printed with `digits` decimals (json-c would print the double's
 * 17 significant digits). */
static json_object *fixed(double v, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", digits, v);
    return json_object_new_double_s(v, buf);
}

static json_object *seconds(double s)
{
    return fixed(s, 3);
}

void cnp_ev_run_start(const char *model, int n_scenes, const char *outdir,
                      const char *precision)
{
    json_object *o = event_new("run_start");
    char t[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(t, sizeof t, "unknown");
    put_str(o, "time", t);
    put_str(o, "canopy", cnp_version());
    put_str(o, "model", model);
    json_object_object_add(o, "scenes", json_object_new_int(n_scenes));
    put_str(o, "outdir", outdir);
    put_str(o, "precision", precision);
    cnp_ev_emit(o);
}

void cnp_ev_scene(const char *path, const char *name)
{
    json_object *o = event_new("scene");
    put_str(o, "scene", path);
    put_str(o, "name", name);
    cnp_ev_emit(o);
}

void cnp_ev_scene_start(int index, int count, const char *path, const char *name)
{
    json_object *o = event_new("scene_start");
    json_object_object_add(o, "index", json_object_new_int(index));
    json_object_object_add(o, "count", json_object_new_int(count));
    put_str(o, "scene", path);
    put_str(o, "name", name);
    cnp_ev_emit(o);
}

void cnp_ev_progress(int index, const char *path, double done)
{
    json_object *o = event_new("progress");
    put_scene(o, index, path);
    json_object_object_add(o, "done", fixed(done, 2));
    cnp_ev_emit(o);
}

void cnp_ev_warning(int index, const char *path, const char *message)
{
    json_object *o = event_new("warning");
    put_scene(o, index, path);
    put_str(o, "message", message);
    cnp_ev_emit(o);
}

static json_object *chips_json(const cnp_classify_result *r)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "total", json_object_new_int64(r->chips_total));
    json_object_object_add(c, "classified", json_object_new_int64(r->chips_classified));
    json_object_object_add(c, "nodata", json_object_new_int64(r->chips_nodata));
    json_object_object_add(c, "obscured", json_object_new_int64(r->chips_obscured));
    return c;
}

void cnp_ev_scene_done(int index, const cnp_classify_result *r, double secs)
{
    json_object *o = event_new("scene_done"), *pos, *outs;
    int i;
    put_scene(o, index, r->scene);
    put_str(o, "name", r->name);
    put_str(o, "status", r->skipped ? "skipped" : "ok");
    put_str(o, "reason", r->skipped ? r->reason : NULL);
    json_object_object_add(o, "chips", chips_json(r));
    pos = json_object_new_object();
    for (i = 0; i < r->n_labels; i++)
        json_object_object_add(pos, r->labels[i], json_object_new_int64(r->positives[i]));
    json_object_object_add(o, "positives", pos);
    outs = json_object_new_object();
    for (i = 0; i < r->n_outputs; i++)
        put_str(outs, r->outputs[i].kind, r->outputs[i].path);
    json_object_object_add(o, "outputs", outs);
    put_str(o, "date", r->date);
    if (r->alerts) {
        const cnp_alerts_result a = {
            .n_new = r->alerts_new, .n_confirmed = r->alerts_confirmed,
            .n_dismissed = r->alerts_dismissed, .labels_new = r->alerts_labels_new,
            .area_new_m2 = r->alerts_area_m2, .summary = r->alerts_summary,
            .state_dir = r->alerts_state};
        json_object_object_add(o, "alerts", cnp_ev_alerts_json(&a));
    }
    json_object_object_add(o, "seconds", seconds(secs));
    put_str(o, "summary", r->summary);
    cnp_ev_emit(o);
}

json_object *cnp_ev_alerts_json(const cnp_alerts_result *r)
{
    json_object *al = json_object_new_object(), *ln = json_object_new_array();
    int i;
    for (i = 0; r->labels_new && r->labels_new[i]; i++)
        json_object_array_add(ln, json_object_new_string(r->labels_new[i]));
    json_object_object_add(al, "new", json_object_new_int(r->n_new));
    json_object_object_add(al, "confirmed", json_object_new_int(r->n_confirmed));
    json_object_object_add(al, "dismissed", json_object_new_int(r->n_dismissed));
    json_object_object_add(al, "labels_new", ln);
    json_object_object_add(al, "area_m2", fixed(r->area_new_m2, 2));
    put_str(al, "summary", r->summary);
    put_str(al, "state", r->state_dir);
    return al;
}

void cnp_ev_scene_error(int index, const char *path, cnp_status st, const char *message)
{
    json_object *o = event_new("scene_error");
    put_scene(o, index, path);
    put_str(o, "status", cnp_status_code(st));
    put_str(o, "message", message);
    cnp_ev_emit(o);
}

void cnp_ev_run_done(int n_scenes, int ok, int skipped, int failed, double secs,
                     int exit_status, int interrupted)
{
    json_object *o = event_new("run_done");
    json_object_object_add(o, "scenes", json_object_new_int(n_scenes));
    json_object_object_add(o, "ok", json_object_new_int(ok));
    json_object_object_add(o, "skipped", json_object_new_int(skipped));
    json_object_object_add(o, "failed", json_object_new_int(failed));
    json_object_object_add(o, "seconds", seconds(secs));
    json_object_object_add(o, "exit", json_object_new_int(exit_status));
    if (interrupted)
        json_object_object_add(o, "interrupted", json_object_new_boolean(1));
    cnp_ev_emit(o);
}

void cnp_ev_run_error(cnp_status st, const char *message, int exit_status)
{
    json_object *o = event_new("run_error");
    put_str(o, "status", cnp_status_code(st));
    put_str(o, "message", message);
    json_object_object_add(o, "exit", json_object_new_int(exit_status));
    cnp_ev_emit(o);
}
