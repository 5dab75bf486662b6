/* alerts.c -- `canopy alerts`: the alert state of a monitored area from
 * the probabilities rasters canopy classify wrote (alerts.h), and a
 * scene's acquisition date (scene/date.h). */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "cli/events.h"
#include "alerts/alerts.h"
#include "scene/date.h"

#include <cpl_string.h>

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "alerts"

static void print_help(FILE *f)
{
    fputs(
"Usage: canopy alerts add [OPTIONS] DIR PROBS.tif...\n"
"       canopy alerts rebuild [OPTIONS] DIR\n"
"       canopy alerts date [--date YYYY-MM-DD] SCENE...\n"
"\n"
"Monitoring: deforestation alerts over time in the alert state folder DIR\n"
"(made on first use). 'add' adds the probabilities raster that canopy classify\n"
"wrote for a scene (NAME.probs.tif) as one observation at the scene's date,\n"
"rebuilds DIR/alerts.tif, DIR/alerts.geojson and writes NAME.alerts.geojson\n"
"beside PROBS.tif (what this scene made new or changed), and prints one line\n"
"per scene on stderr: \"2 new alerts (road, slash_burn), 1 confirmed,\n"
"0 dismissed, 38.4 ha\". Scenes may come in any order: the state is the same.\n"
"A scene already in the state changes nothing. 'rebuild' remakes the outputs\n"
"(e.g. with other parameters). 'date' prints a scene's acquisition date and\n"
"where it came from.\n"
"\n"
"Options:\n"
"  --scene SCENE          take the date from this scene (one PROBS only)\n"
"  --date YYYY-MM-DD      the date when the raster's metadata and file name\n"
"                         have none\n"
"  --id ID                scene id (default: NAME of NAME.probs.tif)\n"
"  --alerts-grid REF.tif  grid of a new state (default: the first scene's chip grid)\n"
"  --alerts-baseline N    clear observations without a label before an alert\n"
"                         (default 2)\n"
"  --alerts-high P        a new alert with probability >= P is high at once\n"
"                         (default 0.9)\n"
"  --alerts-dismiss M     clear observations without the label that dismiss an\n"
"                         unconfirmed alert (default 2)\n"
"  --obscured LIST        labels that make a chip obscured at their thresholds\n"
"                         (default cloudy,haze,partly_cloudy)\n"
"  --no-changes           do not write NAME.alerts.geojson\n"
"  --json                 one JSON object per scene on stdout: {\"v\":1,\"scene\",\n"
"                         \"name\",\"date\",\"date_source\",\"alerts\":{\"new\",\"confirmed\",\n"
"                         \"dismissed\",\"labels_new\",\"area_m2\",\"summary\",\"state\"},\n"
"                         \"outputs\":{\"alerts\"},\"seconds\"} (the \"alerts\" object of\n"
"                         canopy classify's scene_done event)\n"
"  -q, --quiet            no summary lines\n"
"  -h, --help             this help\n"
"\n"
"Parameters given are stored in the state and kept for later updates.\n"
"Exit status: 0 done; 1 a raster or the state could not be used (the other\n"
"rasters are still added); 2 usage error.\n", f);
}

typedef struct alerts_args {
    const char *action, *dir, *scene, *date, *id;
    cnp_alerts_options opt;
    int no_changes, quiet, json;
    char **files;
} alerts_args;

static int parse(int argc, char **argv, alerts_args *a)
{
    int i;
    memset(a, 0, sizeof *a);
    for (i = 1; i < argc; i++) {
        const char *s = argv[i];
        int takes = !(!strcmp(s, "--no-changes") || !strcmp(s, "--json") || !strcmp(s, "-q") || !strcmp(s, "--quiet") ||
                      !strcmp(s, "-h") || !strcmp(s, "--help"));
        const char *v = NULL;
        if (s[0] != '-') {
            if (!a->action)
                a->action = s;
            else if (!a->dir)
                a->dir = s;
            else
                a->files = CSLAddString(a->files, s);
            continue;
        }
        if (takes) {
            if (i + 1 >= argc)
                return cnp_cli_usage_error(CMD, "%s expects a value", s);
            v = argv[++i];
        }
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            print_help(stdout);
            return -1;
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (!strcmp(s, "--no-changes")) {
            a->no_changes = 1;
        } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(s, "--scene")) {
            a->scene = v;
        } else if (!strcmp(s, "--date")) {
            int d;
            if (!cnp_date_parse(v, &d))
                return cnp_cli_usage_error(CMD, "--date expects YYYY-MM-DD, got '%s'", v);
            a->date = v;
        } else if (!strcmp(s, "--id")) {
            a->id = v;
        } else if (!strcmp(s, "--alerts-grid")) {
            a->opt.grid_ref = v;
        } else if (!strcmp(s, "--alerts-baseline")) {
            if (!cnp_cli_parse_int(CMD, s, v, 1, 1000, &a->opt.baseline))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(s, "--alerts-dismiss")) {
            if (!cnp_cli_parse_int(CMD, s, v, 1, 1000, &a->opt.dismiss))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(s, "--alerts-high")) {
            if (!cnp_cli_parse_double(CMD, s, v, 1e-6, 1.0, &a->opt.high))
                return CNP_EXIT_USAGE;
        } else if (!strcmp(s, "--obscured")) {
            a->opt.obscured_labels = v;
        } else {
            return cnp_cli_usage_error(CMD, "unknown option '%s'", s);
        }
    }
    if (!a->action)
        return cnp_cli_usage_error(CMD, "no action; use add, rebuild or date");
    if (!strcmp(a->action, "date")) {
        if (a->dir)
            a->files = CSLInsertString(a->files, 0, a->dir);
        a->dir = NULL;
        if (!a->files)
            return cnp_cli_usage_error(CMD, "date: no scene given");
        return CNP_EXIT_OK;
    }
    if (strcmp(a->action, "add") != 0 && strcmp(a->action, "rebuild") != 0)
        return cnp_cli_usage_error(CMD, "unknown action '%s'; use add, rebuild or date", a->action);
    if (!a->dir)
        return cnp_cli_usage_error(CMD, "%s: no alert state folder given", a->action);
    if (!strcmp(a->action, "add") && !a->files)
        return cnp_cli_usage_error(CMD, "add: no probabilities raster given");
    if (!strcmp(a->action, "rebuild") && a->files)
        return cnp_cli_usage_error(CMD, "rebuild takes only the state folder");
    if ((a->scene || a->id) && CSLCount(a->files) > 1)
        return cnp_cli_usage_error(CMD, "--scene and --id apply to one PROBS raster only");
    a->opt.dir = a->dir;
    return CNP_EXIT_OK;
}

/* NAME of DIR/NAME.probs.tif (else the base name without extension). */
static char *scene_name(const char *path)
{
    const char *b = strrchr(path, '/');
    size_t n;
    b = b ? b + 1 : path;
    n = strlen(b);
    if (n > 10 && !strcmp(b + n - 10, ".probs.tif"))
        n -= 10;
    else if (strrchr(b, '.') && strrchr(b, '.') != b)
        n = (size_t)(strrchr(b, '.') - b);
    return strndup(b, n);
}

/* One line of JSON for a scene added (see --help). */
static void print_json(const char *probs, const char *id, const cnp_scene_date *d,
                       const cnp_alerts_result *r)
{
    json_object *o = json_object_new_object(), *al = cnp_ev_alerts_json(r);
    json_object *outputs = json_object_new_object();
    char buf[40];

    json_object_object_add(al, "unchanged", json_object_new_boolean(r->unchanged));
    json_object_object_add(o, "v", json_object_new_int(1));
    json_object_object_add(o, "scene", json_object_new_string(probs));
    json_object_object_add(o, "name", json_object_new_string(id));
    json_object_object_add(o, "date", json_object_new_string(d->iso));
    json_object_object_add(o, "date_source", json_object_new_string(cnp_date_source_name(d->source)));
    json_object_object_add(o, "alerts", al);
    if (r->changes_path)
        json_object_object_add(outputs, "alerts", json_object_new_string(r->changes_path));
    json_object_object_add(o, "outputs", outputs);
    snprintf(buf, sizeof buf, "%.4f", r->seconds);
    json_object_object_add(o, "seconds", json_object_new_double_s(r->seconds, buf));
    cnp_ev_emit(o);
}

static int add_one(alerts_args *a, const char *probs)
{
    cnp_ctx ctx;
    cnp_scene_date d;
    cnp_alerts_scene sc;
    cnp_alerts_result *r = NULL;
    char *name = scene_name(probs), *changes = NULL;
    const char *dpath = a->scene ? a->scene : probs;
    int rc = CNP_EXIT_FAILURE;

    cnp_ctx_clear(&ctx);
    if (!name)
        return CNP_EXIT_FAILURE;
    if (cnp_scene_date_get(&ctx, dpath, a->date, &d) != CNP_OK)
        goto cleanup;
    if (!d.source) {
        cnp_date_missing_error(&ctx, dpath);
        goto cleanup;
    }
    memset(&sc, 0, sizeof sc);
    sc.probs_path = probs;
    sc.scene_id = a->id ? a->id : name;
    sc.day = d.day;
    if (!a->no_changes) {
        const char *slash = strrchr(probs, '/');
        if (asprintf(&changes, "%.*s%s.alerts.geojson", slash ? (int)(slash - probs + 1) : 0,
                     probs, name) < 0) {
            changes = NULL;
            goto cleanup;
        }
        sc.changes_path = changes;
    }
    if (cnp_alerts_update(&ctx, &a->opt, &sc, &r) != CNP_OK)
        goto cleanup;
    if (!a->quiet)
        fprintf(stderr, "%s (%s, date from %s %s): %s\n", probs, d.iso,
                cnp_date_source_name(d.source), d.source_item, r->summary);
    if (a->json)
        print_json(probs, sc.scene_id, &d, r);
    rc = CNP_EXIT_OK;
cleanup:
    if (rc != CNP_EXIT_OK)
        cnp_cli_report(CMD, &ctx);
    cnp_alerts_result_free(r);
    free(changes);
    free(name);
    return rc;
}

int cnp_cmd_alerts(int argc, char **argv)
{
    alerts_args a;
    const char *kill = getenv("CANOPY_TEST_ALERTS_KILL");
    int rc = parse(argc, argv, &a), i, failed = 0;

    if (rc != CNP_EXIT_OK) {
        CSLDestroy(a.files);
        return rc < 0 ? CNP_EXIT_OK : rc;
    }
    /* Test hook (tests/alerts): the process kills itself at that point. */
    if (kill && !strcmp(kill, "before-commit"))
        a.opt.kill_at = CNP_ALERTS_KILL_BEFORE_COMMIT;
    else if (kill && !strcmp(kill, "after-commit"))
        a.opt.kill_at = CNP_ALERTS_KILL_AFTER_COMMIT;
    cnp_gdal_init();
    if (!strcmp(a.action, "date")) {
        for (i = 0; a.files[i]; i++) {
            cnp_ctx ctx;
            cnp_scene_date d;
            cnp_ctx_clear(&ctx);
            if (cnp_scene_date_get(&ctx, a.files[i], a.date, &d) != CNP_OK) {
                cnp_cli_report(CMD, &ctx);
                failed++;
            } else if (!d.source) {
                cnp_date_missing_error(&ctx, a.files[i]);
                cnp_cli_report(CMD, &ctx);
                failed++;
            } else {
                printf("%s\t%s\t%s\t%s\n", a.files[i], d.iso, cnp_date_source_name(d.source),
                       d.source_item);
            }
        }
    } else if (!strcmp(a.action, "rebuild")) {
        cnp_ctx ctx;
        long n;
        cnp_ctx_clear(&ctx);
        if (cnp_alerts_rebuild(&ctx, &a.opt, &n) != CNP_OK) {
            cnp_cli_report(CMD, &ctx);
            failed++;
        } else if (!a.quiet) {
            fprintf(stderr, "%s: rebuilt; %ld alert cell%s\n", a.dir, n, n == 1 ? "" : "s");
        }
    } else {
        for (i = 0; a.files[i]; i++)
            failed += add_one(&a, a.files[i]) != CNP_EXIT_OK;
    }
    fflush(stdout);
    CSLDestroy(a.files);
    return failed ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
}
