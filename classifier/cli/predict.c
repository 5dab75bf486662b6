/* predict.c -- `canopy predict`: image chips (any raster GDAL reads) ->
 * the Kaggle submission CSV `image_name,tags`, or per-label probabilities.
 * argv -> cnp_predict_options, cnp_predict() (canopy/predict.h), the CSV. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "canopy/predict.h"
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "predict"

static void print_help(FILE *f)
{
    fprintf(f,
            "Usage: canopy predict [-m MODEL] [--probs] [--tta] [--threads N] [--batch N]\n"
            "                      [--precision fp32|bf16|int8] CHIP... | @LIST...\n"
            "\n"
            "Classifies image chips (Kaggle train-jpg/*.jpg, 4-band *.tif, any raster GDAL\n"
            "reads) with a multi-label ONNX model and prints CSV to stdout: the Kaggle\n"
            "submission format `image_name,tags`, where image_name is the file's base name\n"
            "without extension and tags are the labels whose probability reaches the\n"
            "label's threshold (p >= threshold), space-separated, in the model's label order.\n"
            "\n"
            "Each chip is read with the model's bands, scaled and normalised as its metadata\n"
            "says (`canopy info MODEL`), and resampled bilinearly to the model's input size\n"
            "when its size differs.\n"
            "\n"
            "Options:\n"
            "  -m, --model MODEL  ONNX model (default: $CANOPY_MODEL, else the installed\n"
            "                     demo model: %s)\n"
            "  --probs            print probabilities instead of tags: a header\n"
            "                     `image_name,LABEL1,LABEL2,...` and one column per label\n"
            "                     (%%.9g, at least 6 significant digits)\n"
            "  --tta              test-time augmentation: average over the 8 rotations and\n"
            "                     flips of each chip (8x the work)\n"
            "  --threads N        threads (default: all cores, or OMP_NUM_THREADS)\n"
            "  --batch N          chips per forward pass, 1..%d (default %d)\n"
            "  --precision P      fp32 (default); bf16: convolutions in bf16 with fp32\n"
            "                     accumulation on CPUs with AVX512_BF16 (faster, probabilities\n"
            "                     within about 1e-2 of fp32); int8: on CPUs with AVX512_VNNI,\n"
            "                     for a model `canopy calibrate` wrote; fp32 with a message\n"
            "                     where the CPU lacks them\n"
            "  -h, --help         this help\n"
            "\n"
            "CHIP arguments are image files; @LIST reads one path per line from the file LIST\n"
            "(blank lines are skipped). Rows come out in the order of the chips.\n"
            "\n"
            "Exit status: 0 every chip was classified; 1 the model could not be loaded, or a\n"
            "chip or list could not be read (a message on stderr; the other chips are still\n"
            "printed); 2 usage error.\n",
            cnp_cli_default_model(), CNP_PREDICT_MAX_BATCH, CNP_PREDICT_DEFAULT_BATCH);
}

/* A CSV field, quoted (RFC 4180) when it needs to be. */
static void put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void print_csv(const cnp_predict_result *r, int want_probs)
{
    long i;
    int l;
    if (want_probs) {
        fputs("image_name", stdout);
        for (l = 0; l < r->n_labels; l++) {
            fputc(',', stdout);
            put_field(stdout, r->labels[l]);
        }
        fputc('\n', stdout);
    } else {
        puts("image_name,tags");
    }
    for (i = 0; i < r->n; i++) {
        const float *p = r->probs + (size_t)i * (size_t)r->n_labels;
        int first = 1;
        put_field(stdout, r->names[i]);
        fputc(',', stdout);
        for (l = 0; l < r->n_labels; l++) {
            if (want_probs) {
                printf("%s%.9g", l ? "," : "", (double)p[l]);
            } else if (p[l] >= r->thresholds[l]) {
                printf("%s%s", first ? "" : " ", r->labels[l]);
                first = 0;
            }
        }
        fputc('\n', stdout);
    }
}

int cnp_cmd_predict(int argc, char **argv)
{
    cnp_predict_options *o;
    cnp_predict_result *r = NULL;
    cnp_ctx ctx;
    long i;
    int rc = CNP_EXIT_OK;

    cnp_ctx_clear(&ctx);
    o = cnp_predict_options_new(argc - 1, argv + 1, &ctx);
    if (!o)
        return cnp_cli_options_failed(CMD, &ctx);
    cnp_cli_precision_env(&o->no_bf16, &o->no_int8);
    if (o->help) {
        print_help(stdout);
        goto cleanup;
    }
    if (!o->model && !(o->model = strdup(cnp_cli_default_model())))
        goto oom;
    if (o->threads <= 0)
        o->threads = cnp_cli_default_threads();
    cnp_predict(o, NULL, NULL, &r);
    if (!r)
        goto oom;
    for (i = 0; r->errors && r->errors[i]; i++)
        fprintf(stderr, "canopy " CMD ": %s\n", r->errors[i]);
    if (r->status != CNP_OK) {
        if (r->status == CNP_ERR_USAGE)
            rc = cnp_cli_usage_error(CMD, "%s", r->message);
        else if (!r->message || !r->message[0])
            rc = CNP_EXIT_FAILURE; /* the lists were reported */
        else
            rc = (fprintf(stderr, "canopy " CMD ": %s\n", r->message), CNP_EXIT_FAILURE);
        goto cleanup;
    }
    if (cnp_cli_precision_fallback(o->precision, r->precision))
        fprintf(stderr, "canopy: %s\n", cnp_cli_precision_fallback(o->precision, r->precision));
    print_csv(r, o->probs);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "canopy " CMD ": writing the CSV to stdout failed: %s\n", strerror(errno));
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    if (r->n_failed) {
        fprintf(stderr, "canopy " CMD ": %ld chip%s or list%s could not be read\n", r->n_failed,
                r->n_failed == 1 ? "" : "s", r->n_failed == 1 ? "" : "s");
        rc = CNP_EXIT_FAILURE;
    }
    goto cleanup;
oom:
    fprintf(stderr, "canopy " CMD ": out of memory\n");
    rc = CNP_EXIT_FAILURE;
cleanup:
    cnp_predict_result_free(r);
    cnp_predict_options_free(o);
    return rc;
}
