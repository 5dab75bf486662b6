/* predict.c -- `canopy predict`: image chips (any raster GDAL reads) ->
 * the Kaggle submission CSV `image_name,tags`, or per-label probabilities.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "cli/cli.h"
#include "pipeline/batcher.h"
#include "engine/engine.h"
#include "scene/scene.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "predict"
#define DEFAULT_BATCH 16
#define MAX_BATCH 4096

static void print_help(FILE *f)
{
    fprintf(f,
            "Usage: canopy predict [-m MODEL] [--probs] [--tta] [--threads N] [--batch N]\n"
            "                      [--precision fp32|bf16] CHIP... | @LIST...\n"
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
            "  --precision P      fp32 (default) or bf16: convolutions in bf16 with fp32\n"
            "                     accumulation on CPUs with AVX512_BF16 (faster, probabilities\n"
            "                     within about 1e-2 of fp32); fp32 with a message elsewhere\n"
            "  -h, --help         this help\n"
            "\n"
            "CHIP arguments are image files; @LIST reads one path per line from the file LIST\n"
            "(blank lines are skipped). Rows come out in the order of the chips.\n"
            "\n"
            "Exit status: 0 every chip was classified; 1 the model could not be loaded, or a\n"
            "chip or list could not be read (a message on stderr; the other chips are still\n"
            "printed); 2 usage error.\n",
            cnp_cli_default_model(), MAX_BATCH, DEFAULT_BATCH);
}

typedef struct chip_list {
    char **path;
    size_t n, cap;
} chip_list;

static int list_add(chip_list *l, const char *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **np = realloc(l->path, cap * sizeof *np);
        if (!np)
            return 0;
        l->path = np;
        l->cap = cap;
    }
    if (!(l->path[l->n] = strdup(p)))
        return 0;
    l->n++;
    return 1;
}

static void list_free(chip_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
}

/* Adds the paths of a list file; 0 on a read error (reported). */
static int read_list(chip_list *l, const char *file, int *nomem)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int ok = 1;
    if (!f) {
        fprintf(stderr, "canopy " CMD ": %s: cannot open the list of chips: %s\n", file,
                strerror(errno));
        return 0;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (!list_add(l, line)) {
            *nomem = 1;
            ok = 0;
            break;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "canopy " CMD ": %s: could not read the list of chips: %s\n", file,
                strerror(errno));
        ok = 0;
    }
    free(line);
    fclose(f);
    return ok;
}

/* Base name without directory and extension. */
static void image_name(const char *path, char *out, size_t size)
{
    const char *b = strrchr(path, '/'), *dot;
    size_t len;
    b = b ? b + 1 : path;
    dot = strrchr(b, '.');
    len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    if (len >= size)
        len = size - 1;
    memcpy(out, b, len);
    out[len] = '\0';
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

static void print_row(const cnp_model_meta *meta, const char *path, const float *p,
                      int want_probs)
{
    char nm[4096];
    int first = 1;
    image_name(path, nm, sizeof nm);
    put_field(stdout, nm);
    fputc(',', stdout);
    for (int l = 0; l < meta->n_labels; l++) {
        if (want_probs) {
            printf("%s%.9g", l ? "," : "", (double)p[l]);
        } else if (p[l] >= meta->thresholds[l]) {
            printf("%s%s", first ? "" : " ", meta->labels[l]);
            first = 0;
        }
    }
    fputc('\n', stdout);
}

/* What the batcher hands back, chip by chip in order. */
typedef struct predict_sink {
    const cnp_model_meta *meta;
    char **paths;
    int want_probs;
    int failed;
} predict_sink;

static void on_chip(void *user, long i, const float *probs, const float *probs_tta,
                    const cnp_ctx *err)
{
    predict_sink *ps = user;
    if (!probs && !probs_tta) {
        cnp_cli_report(CMD, err);
        ps->failed++;
        return;
    }
    print_row(ps->meta, ps->paths[i], probs_tta ? probs_tta : probs, ps->want_probs);
}

int cnp_cmd_predict(int argc, char **argv)
{
    const char *model_path = NULL;
    int want_probs = 0, tta = 0, threads = 0, batch = DEFAULT_BATCH, failed = 0, nomem = 0;
    int bf16 = 0;
    int rc = CNP_EXIT_OK, only_args = 0;
    chip_list chips = {NULL, 0, 0};
    cnp_model *m = NULL;
    const cnp_model_meta *meta;
    cnp_chip_spec spec;
    cnp_ctx ctx;
    cnp_batcher b;
    cnp_chip_job job;
    predict_sink sink;

    cnp_ctx_clear(&ctx);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            if (a[0] == '@' && a[1]) {
                if (!read_list(&chips, a + 1, &nomem)) {
                    failed++;
                    if (nomem)
                        goto oom;
                }
            } else if (!list_add(&chips, a)) {
                goto oom;
            }
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(stdout);
            goto cleanup;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (++i >= argc) {
                rc = cnp_cli_usage_error(CMD, "%s needs a model file", a);
                goto cleanup;
            }
            model_path = argv[i];
        } else if (!strcmp(a, "--probs")) {
            want_probs = 1;
        } else if (!strcmp(a, "--tta")) {
            tta = 1;
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc) {
                rc = cnp_cli_usage_error(CMD, "--threads needs a number");
                goto cleanup;
            }
            if (!cnp_cli_parse_int(CMD, a, argv[i], 1, 1024, &threads)) {
                rc = CNP_EXIT_USAGE;
                goto cleanup;
            }
        } else if (!strcmp(a, "--precision")) {
            if (++i >= argc) {
                rc = cnp_cli_usage_error(CMD, "--precision needs fp32 or bf16");
                goto cleanup;
            }
            if (!cnp_cli_parse_precision(CMD, argv[i], &bf16)) {
                rc = CNP_EXIT_USAGE;
                goto cleanup;
            }
        } else if (!strcmp(a, "--batch")) {
            if (++i >= argc) {
                rc = cnp_cli_usage_error(CMD, "--batch needs a number");
                goto cleanup;
            }
            if (!cnp_cli_parse_int(CMD, a, argv[i], 1, MAX_BATCH, &batch)) {
                rc = CNP_EXIT_USAGE;
                goto cleanup;
            }
        } else {
            rc = cnp_cli_usage_error(CMD, "unknown option '%s'", a);
            goto cleanup;
        }
    }
    if (chips.n == 0) {
        if (failed)
            rc = CNP_EXIT_FAILURE; /* the lists were reported */
        else
            rc = cnp_cli_usage_error(CMD, "no chips given");
        goto cleanup;
    }
    if (!model_path)
        model_path = cnp_cli_default_model();
    if (threads <= 0)
        threads = cnp_cli_default_threads();

    if (cnp_model_load(&ctx, model_path, &m) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    meta = cnp_model_meta_cget(m);
    if ((size_t)batch > chips.n)
        batch = chips.n ? (int)chips.n : 1;
    if (cnp_model_prepare(&ctx, m, batch, meta->input_size, meta->input_size, threads,
                          (tta ? CNP_PREPARE_TTA : 0) | cnp_cli_precision_flags(bf16)) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    cnp_cli_chip_spec(&spec, meta);
    cnp_batcher_init(&b, m, batch);

    if (want_probs) {
        fputs("image_name", stdout);
        for (int l = 0; l < meta->n_labels; l++) {
            fputc(',', stdout);
            put_field(stdout, meta->labels[l]);
        }
        fputc('\n', stdout);
    } else {
        puts("image_name,tags");
    }
    sink.meta = meta;
    sink.paths = chips.path;
    sink.want_probs = want_probs;
    sink.failed = 0;
    memset(&job, 0, sizeof job);
    job.spec = &spec;
    job.paths = (const char *const *)chips.path;
    job.n = (long)chips.n;
    job.threads = threads;
    job.want_plain = !tta;
    job.want_tta = tta;
    job.on_chip = on_chip;
    job.user = &sink;
    cnp_ctx_clear(&ctx);
    if (cnp_batcher_chips(&ctx, &b, &job) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    failed += sink.failed;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "canopy " CMD ": writing the CSV to stdout failed: %s\n", strerror(errno));
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    if (failed) {
        fprintf(stderr, "canopy " CMD ": %d chip%s or list%s could not be read\n", failed,
                failed == 1 ? "" : "s", failed == 1 ? "" : "s");
        rc = CNP_EXIT_FAILURE;
    }
    goto cleanup;
oom:
    fprintf(stderr, "canopy " CMD ": out of memory\n");
    rc = CNP_EXIT_FAILURE;
cleanup:
    cnp_model_free(m);
    list_free(&chips);
    return rc;
}
