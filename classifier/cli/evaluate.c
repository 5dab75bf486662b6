/* evaluate.c -- `canopy evaluate`: argv -> cnp_evaluate_options,
 * cnp_evaluate() (canopy/evaluate.h: labelled chips -> F2, per-label
 * precision, recall and F2, optimised thresholds, the model copy and the
 * report), then the text on stdout and the exit status. */
#define _GNU_SOURCE
#include "config.h"
#include "canopy/evaluate.h"
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "evaluate"

static void print_help(FILE *f)
{
    fputs(
"Usage: canopy evaluate [-m MODEL] --labels CSV --images DIR [--ext EXT]\n"
"                       [--tta] [--optimize-thresholds [--split F [--seed N]]\n"
"                       [--write-model OUT.onnx]] [--report REPORT.json]\n"
"                       [--threads N] [--batch N] [--precision fp32|bf16|int8] [-q]\n"
"\n"
"Runs a model on labelled image chips and measures how well it does.\n"
"\n"
"Input, the Kaggle \"Planet: Understanding the Amazon from Space\" layout:\n"
"  --labels CSV      header 'image_name,tags', then one line per image, tags\n"
"                    separated by spaces (train_v2.csv). CRLF, quoted fields and\n"
"                    blank lines are fine. Images missing from DIR, tags the model\n"
"                    does not have (ignored) and repeated names (the first line\n"
"                    counts) are counted and reported.\n"
"  --images DIR      the chips, DIR/NAME.EXT, any image GDAL reads, resampled to\n"
"                    the model's input size\n"
"  --ext EXT         file extension of the chips (default jpg; e.g. tif)\n"
"  -m, --model FILE  ONNX model with canopy metadata (default: $CANOPY_MODEL or\n"
"                    the installed demo model)\n"
"\n"
"Output (stdout): the number of chips, the sample-averaged F2 (beta = 2) at the\n"
"model's thresholds, and per label: support, precision, recall, F2, threshold.\n"
"A label counts as predicted when its probability >= its threshold. Scores follow\n"
"scikit-learn (fbeta_score(beta=2, average='samples') and average=None with the\n"
"default zero_division): a chip without a correctly predicted label scores F2 = 0,\n"
"including a chip with no true and no predicted label; a label never predicted\n"
"has precision 0, a label that never occurs has recall 0.\n"
"\n"
"Options:\n"
"  --tta             also score the mean probabilities over the 8 rotations and\n"
"                    flips of each chip (9x the compute); reported beside the plain\n"
"                    scores, and used for --optimize-thresholds\n"
"  --optimize-thresholds\n"
"                    per-label thresholds that maximise the sample-averaged F2:\n"
"                    coordinate ascent over the labels on the grid 0.01..0.99 step\n"
"                    0.01, repeated until a pass changes nothing; reports the F2\n"
"                    before and after\n"
"  --split F         fit the thresholds on a random (1 - F) of the chips and report\n"
"                    the F2 before and after on the held-out fraction F (0 < F < 1)\n"
"  --seed N          seed of the split (default 0): same chips and seed, same split\n"
"  --write-model OUT write a copy of the model with the optimised thresholds in its\n"
"                    canopy.thresholds metadata; every other byte is unchanged\n"
"  --report FILE     the same results as JSON (keys n, f2, labels, and f2_tta,\n"
"                    f2_before, f2_after, f2_heldout_before, f2_heldout_after,\n"
"                    thresholds_after ... where they apply)\n"
"  --threads N       threads (default: all cores)\n"
"  --batch N         chips per forward pass (default 16)\n"
"  --precision P     fp32 (default); bf16: convolutions in bf16 with fp32\n"
"                    accumulation on CPUs with AVX512_BF16; int8: int8 on CPUs\n"
"                    with AVX512_VNNI, for a model `canopy calibrate` wrote (fp32\n"
"                    with a message elsewhere); the report's key precision says\n"
"                    which ran\n"
"  -q, --quiet       no progress\n"
"\n"
"Exit status: 0 success; 1 the model or the label file could not be used, no chip\n"
"was left to score, or some chips could not be read (they are reported; the\n"
"others are scored and written); 2 usage error.\n",
        f);
}

static void message_cb(const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "canopy %s: %s\n", CMD, msg);
}

static void print_table(const cnp_evaluate_result *r, const cnp_label_score *m, const float *thr,
                        const float *thr_before)
{
    int l, w = 5;
    for (l = 0; l < r->n_labels; l++) {
        int n = (int)strlen(r->labels[l]);
        if (n > w)
            w = n;
    }
    printf("  %-*s %8s %9s %8s %8s %9s%s\n", w, "label", "support", "precision", "recall", "F2",
           "threshold", thr_before ? "  (was)" : "");
    for (l = 0; l < r->n_labels; l++) {
        printf("  %-*s %8d %9.4f %8.4f %8.4f %9.4g", w, r->labels[l], m[l].support,
               m[l].precision, m[l].recall, m[l].f2, (double)thr[l]);
        if (thr_before)
            printf("  (%.4g)", (double)thr_before[l]);
        putchar('\n');
    }
}

static void print_optimize(const cnp_evaluate_options *o, const cnp_evaluate_result *r)
{
    printf("\nthreshold optimisation: sample-averaged F2%s, grid 0.01..0.99 step 0.01, "
           "coordinate ascent, %d pass%s\n", o->tta ? " of the TTA probabilities" : "",
           r->passes, r->passes == 1 ? "" : "es");
    printf("  fitted on %d chips: F2 %.4f -> %.4f\n", r->n_fit, r->f2_before, r->f2_after);
    if (r->n_heldout)
        printf("  held out  %d chips: F2 %.4f -> %.4f  (--split %g --seed %llu)\n",
               r->n_heldout, r->f2_heldout_before, r->f2_heldout_after, o->split, o->seed);
    printf("\nper label at the new thresholds (%s chips):\n", r->n_heldout ? "held-out" : "fitted");
    print_table(r, r->scores_after, r->thresholds_after, r->thresholds);
    if (o->write_model)
        printf("\nwrote %s (canopy.thresholds = %s)\n", o->write_model, r->thresholds_json);
}

static void print_text(const cnp_evaluate_options *o, const cnp_evaluate_result *r)
{
    double secs = r->seconds;
    printf("model      %s (%s%s%s)\n", o->model, r->model_name, r->model_version[0] ? " " : "",
           r->model_version);
    printf("labels     %s: %d images listed", o->labels, r->rows);
    if (r->duplicates)
        printf(", %d repeated names dropped", r->duplicates);
    if (r->unknown_tags)
        printf(", %ld unknown tags ignored", r->unknown_tags);
    printf("\nimages     %s/NAME.%s: %ld found, %ld missing, %ld unreadable\n", o->images, o->ext,
           r->listed - r->missing, r->missing, r->unreadable);
    printf("chips      %ld  (%.1f s, %.1f chips/s%s)\n", r->n, secs, secs > 0 ? r->n / secs : 0.0,
           o->tta ? ", each also with TTA" : "");
    printf("F2         %.4f  (sample-averaged, beta 2, at the model's thresholds%s)\n", r->f2,
           r->thresholds_defaulted ? ": 0.2, the file gives none" : "");
    if (o->tta)
        printf("F2 TTA     %.4f  (mean probabilities over the 8 rotations/flips)\n", r->f2_tta);
    printf("\nper label%s:\n", o->tta ? " (without TTA)" : "");
    print_table(r, r->scores, r->thresholds, NULL);
    if (o->tta) {
        printf("\nper label with TTA:\n");
        print_table(r, r->scores_tta, r->thresholds, NULL);
    }
    if (o->optimize)
        print_optimize(o, r);
}

int cnp_cmd_evaluate(int argc, char **argv)
{
    cnp_evaluate_options *o;
    cnp_evaluate_result *r = NULL;
    cnp_cli_progress prog;
    cnp_ctx ctx;
    int rc = CNP_EXIT_FAILURE;

    cnp_ctx_clear(&ctx);
    o = cnp_evaluate_options_new(argc - 1, argv + 1, &ctx);
    if (!o)
        return cnp_cli_options_failed(CMD, &ctx);
    cnp_cli_precision_env(&o->no_bf16, &o->no_int8);
    if (o->help) {
        print_help(stdout);
        rc = CNP_EXIT_OK;
        goto cleanup;
    }
    if (!o->model && !(o->model = strdup(cnp_cli_default_model())))
        goto cleanup;
    if (o->threads <= 0)
        o->threads = cnp_cli_default_threads();
    cnp_cli_progress_init(&prog, CMD, o->quiet);
    if (cnp_evaluate(o, cnp_cli_progress_cb, message_cb, &prog, &r) != CNP_OK) {
        fprintf(stderr, "canopy %s: %s\n", CMD, r ? r->message : "out of memory");
        goto cleanup;
    }
    if (cnp_cli_precision_fallback(o->precision, r->precision))
        fprintf(stderr, "canopy: %s\n", cnp_cli_precision_fallback(o->precision, r->precision));
    print_text(o, r);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "canopy %s: writing the results to stdout failed (%s)\n", CMD,
                strerror(errno));
        goto cleanup;
    }
    rc = r->unreadable ? CNP_EXIT_FAILURE : CNP_EXIT_OK;
    if (r->unreadable)
        fprintf(stderr, "canopy %s: %ld chip%s could not be read (see above); scored the other "
                "%ld\n", CMD, r->unreadable, r->unreadable == 1 ? "" : "s", r->n);
cleanup:
    cnp_evaluate_result_free(r);
    cnp_evaluate_options_free(o);
    return rc;
}
