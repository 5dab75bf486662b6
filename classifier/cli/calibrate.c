/* calibrate.c -- `canopy calibrate`: argv -> cnp_calibrate_options,
 * cnp_calibrate() (canopy/calibrate.h: sample chips through the model in
 * fp32, the int8 ranges into a copy of it), then a summary line and the
 * exit status. */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/calibrate.h"
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "calibrate"

static void print_help(FILE *f)
{
    fprintf(f,
"Usage: canopy calibrate MODEL.onnx --write-model OUT.onnx [--threads N]\n"
"                        [--batch N] [--max-chips N] [-q] CHIP... | @LIST...\n"
"\n"
"Prepares a model for --precision int8: runs it in fp32 over sample chips,\n"
"records the least and the greatest value of every activation a convolution\n"
"reads, and writes OUT.onnx, a copy of MODEL.onnx with those ranges in its\n"
"canopy.int8 metadata and every other byte unchanged. `canopy classify`,\n"
"`predict` and `evaluate` with `--precision int8 -m OUT.onnx` then quantise each\n"
"convolution's input to 8 bits over its range (on CPUs with AVX512_VNNI; fp32\n"
"elsewhere).\n"
"\n"
"Calibrate on chips like those the model will see (a few hundred of the scenes\n"
"or chips it will classify): values outside the ranges are clipped in int8.\n"
"Chips are read as `canopy predict` reads them: any raster GDAL reads, the\n"
"model's bands, scaled and normalised as its metadata says, resampled to its\n"
"input size.\n"
"\n"
"Options:\n"
"  MODEL.onnx         the model (or -m MODEL); its canopy.int8, if any, is replaced\n"
"  --write-model OUT  the calibrated copy (required; written atomically, never\n"
"                     the model itself)\n"
"  --max-chips N      at most N chips, spread evenly over the list in its order\n"
"                     (default: all)\n"
"  --threads N        threads (default: all cores, or OMP_NUM_THREADS)\n"
"  --batch N          chips per forward pass, 1..%d (default %d)\n"
"  -q, --quiet        no progress and no summary\n"
"  -h, --help         this help\n"
"\n"
"CHIP arguments are image files; @LIST reads one path per line from the file LIST\n"
"(blank lines and lines starting with # are skipped).\n"
"\n"
"Prints one line: the chips used, the ranges recorded and the file written.\n"
"\n"
"Exit status: 0 success; 1 the model could not be loaded or written, or a chip\n"
"or list could not be read (a message on stderr for each; the model is still\n"
"calibrated on the other chips and written, unless none could be read); 2 usage\n"
"error (also when OUT is MODEL itself).\n",
            CNP_CALIBRATE_MAX_BATCH, CNP_CALIBRATE_DEFAULT_BATCH);
}

static void print_summary(const cnp_calibrate_options *o, const cnp_calibrate_result *r)
{
    printf("%s: calibrated on %ld chip%s", o->write_model, r->n, r->n == 1 ? "" : "s");
    if (r->selected < r->listed)
        printf(" (%ld of %ld listed, --max-chips)", r->selected, r->listed);
    if (r->n_failed)
        printf(", %ld unreadable", r->n_failed);
    printf("; %d activation range%s for %d convolution%s (canopy.int8); %.1f s\n",
           r->n_tensors, r->n_tensors == 1 ? "" : "s", r->n_conv, r->n_conv == 1 ? "" : "s",
           r->seconds);
}

int cnp_cmd_calibrate(int argc, char **argv)
{
    cnp_calibrate_options *o;
    cnp_calibrate_result *r = NULL;
    cnp_cli_progress prog;
    cnp_ctx ctx;
    long i;
    int rc = CNP_EXIT_OK;

    cnp_ctx_clear(&ctx);
    o = cnp_calibrate_options_new(argc - 1, argv + 1, &ctx);
    if (!o)
        return cnp_cli_options_failed(CMD, &ctx);
    if (o->help) {
        print_help(stdout);
        goto cleanup;
    }
    if (o->threads <= 0)
        o->threads = cnp_cli_default_threads();
    cnp_cli_progress_init(&prog, CMD, o->quiet);
    cnp_calibrate(o, cnp_cli_progress_cb, &prog, &r);
    if (!r) {
        fprintf(stderr, "canopy " CMD ": out of memory\n");
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    for (i = 0; r->errors && r->errors[i]; i++)
        fprintf(stderr, "canopy " CMD ": %s\n", r->errors[i]);
    if (r->status != CNP_OK) {
        if (r->status == CNP_ERR_USAGE)
            rc = cnp_cli_usage_error(CMD, "%s", r->message);
        else if (!r->message[0])
            rc = CNP_EXIT_FAILURE; /* the lists were reported */
        else
            rc = (fprintf(stderr, "canopy " CMD ": %s\n", r->message), CNP_EXIT_FAILURE);
        goto cleanup;
    }
    if (!o->quiet)
        print_summary(o, r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "canopy " CMD ": writing to stdout failed: %s\n", strerror(errno));
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    if (r->n_failed) {
        fprintf(stderr, "canopy " CMD ": %ld chip%s or list%s could not be read; %s is "
                "calibrated on the other %ld\n", r->n_failed, r->n_failed == 1 ? "" : "s",
                r->n_failed == 1 ? "" : "s", o->write_model, r->n);
        rc = CNP_EXIT_FAILURE;
    }
cleanup:
    cnp_calibrate_result_free(r);
    cnp_calibrate_options_free(o);
    return rc;
}
