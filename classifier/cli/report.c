/* report.c -- `canopy report OUTDIR`: one self-contained HTML page for an
 * output folder and its STAC Collection (classifier/pictures). */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "pictures/pictures.h"

#include <cpl_string.h>
#include <gdal.h>

#include <stdio.h>
#include <string.h>

#define CMD "report"

static void print_help(FILE *f)
{
    fputs(
"Usage: canopy report OUTDIR [-o report.html] [--inline] [--no-fill]\n"
"                     [--events LOG.jsonl ...] [--title TEXT] [--license ID] [-q]\n"
"\n"
"Writes one self-contained HTML page for a `canopy classify` output folder: a\n"
"summary (scenes, chips, time, failures with their messages), a table of the\n"
"scenes (status, date, chips, positive chips per marker label, new alerts with\n"
"monitoring), each scene's quick-look and links to its files; scenes that failed\n"
"or have new alerts come first. It reads NAME.manifest.json (finished scenes)\n"
"and NAME.failed.json (scenes that failed); no network, no script. Also writes\n"
"OUTDIR/collection.json, a STAC Collection linking the scenes' NAME.stac.json.\n"
"\n"
"Options:\n"
"  -o, --output FILE    the page (default OUTDIR/report.html); links to the\n"
"                       outputs are relative to it\n"
"  --inline             quick-looks inside the page (data: URIs), for mail\n"
"  --no-fill            do not make the quick-looks and STAC Items that are\n"
"                       missing (scenes classified by an older canopy)\n"
"  --events LOG         a `canopy classify --progress=jsonl` log: its scene_error\n"
"                       events are failures too (repeatable)\n"
"  --title TEXT         page and collection title\n"
"  --license ID         the collection's license (SPDX id; default proprietary)\n"
"  -q, --quiet          no messages about files made\n"
"  -h, --help           this help\n"
"\n"
"Exit status: 0 written; 1 the folder holds no scene or a file could not be\n"
"written; 2 usage error.\n", f);
}

static void on_warn(const char *msg, void *user)
{
    if (!*(int *)user)
        fprintf(stderr, "canopy %s: %s\n", CMD, msg);
}

int cnp_cmd_report(int argc, char **argv)
{
    cnp_report_options o;
    cnp_report_summary s;
    cnp_ctx ctx;
    char **events = NULL;
    int i, quiet = 0, rc = CNP_EXIT_OK;

    memset(&o, 0, sizeof o);
    o.fill = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--events") ||
                        !strcmp(a, "--title") || !strcmp(a, "--license");
        if (has_value && i + 1 >= argc) {
            rc = cnp_cli_usage_error(CMD, "%s expects a value", a);
            goto cleanup;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(stdout);
            goto cleanup;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.html = argv[++i];
        } else if (!strcmp(a, "--events")) {
            events = CSLAddString(events, argv[++i]);
        } else if (!strcmp(a, "--title")) {
            o.title = argv[++i];
        } else if (!strcmp(a, "--license")) {
            o.license = argv[++i];
        } else if (!strcmp(a, "--inline")) {
            o.inline_images = 1;
        } else if (!strcmp(a, "--no-fill")) {
            o.fill = 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            rc = cnp_cli_usage_error(CMD, "unknown option '%s'", a);
            goto cleanup;
        } else if (o.outdir) {
            rc = cnp_cli_usage_error(CMD, "one output folder at a time; got '%s' and '%s'",
                                     o.outdir, a);
            goto cleanup;
        } else {
            o.outdir = a;
        }
    }
    if (!o.outdir) {
        rc = cnp_cli_usage_error(CMD, "no output folder given");
        goto cleanup;
    }
    o.events = (const char *const *)events;
    GDALAllRegister();
    cnp_ctx_clear(&ctx);
    if (cnp_report_write(&ctx, &o, &s, on_warn, &quiet) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    if (!quiet)
        fprintf(stderr, "canopy %s: %d scene%s (%d failed) -> %s%s\n", CMD, s.scenes,
                s.scenes == 1 ? "" : "s", s.failed, o.html ? o.html : o.outdir,
                o.html ? "" : "/report.html");
cleanup:
    CSLDestroy(events);
    return rc;
}
