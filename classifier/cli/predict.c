/* predict.c -- `canopy predict`: image chips (any raster GDAL reads) ->
 * the Kaggle submission CSV `image_name,tags`, or per-label probabilities.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "cli/cli.h"
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

static void print_rows(const cnp_model_meta *meta, char **names, const float *probs, int n,
                       int want_probs)
{
    char nm[4096];
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * meta->n_labels;
        int first = 1;
        image_name(names[i], nm, sizeof nm);
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
    float *input = NULL, *probs = NULL;
    char **names = NULL;
    size_t chip_floats;
    int k = 0;

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
    if (cnp_model_prepare(&ctx, m, &(cnp_prepare_options){
                              .max_batch = batch, .height = meta->input_size,
                              .width = meta->input_size, .n_threads = threads,
                              .flags = (tta ? CNP_PREPARE_TTA : 0) |
                                       cnp_cli_precision_flags(bf16)}) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        rc = CNP_EXIT_FAILURE;
        goto cleanup;
    }
    chip_floats = (size_t)meta->n_channels * meta->input_size * meta->input_size;
    input = malloc((size_t)batch * chip_floats * sizeof *input);
    probs = malloc((size_t)batch * meta->n_labels * sizeof *probs);
    names = malloc((size_t)batch * sizeof *names);
    if (!input || !probs || !names)
        goto oom;
    cnp_cli_chip_spec(&spec, meta);

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
    for (size_t c = 0; c <= chips.n; c++) {
        if (c < chips.n) {
            cnp_ctx_clear(&ctx);
            if (cnp_chip_read(&ctx, chips.path[c], &spec, input + (size_t)k * chip_floats) !=
                CNP_OK) {
                cnp_cli_report(CMD, &ctx);
                failed++;
                continue;
            }
            names[k++] = chips.path[c];
            if (k < batch)
                continue;
        }
        if (k == 0)
            continue;
        cnp_ctx_clear(&ctx);
        if ((tta ? cnp_model_forward_tta(&ctx, m, input, k, probs)
                 : cnp_model_forward(&ctx, m, input, k, probs)) != CNP_OK) {
            cnp_cli_report(CMD, &ctx);
            rc = CNP_EXIT_FAILURE;
            goto cleanup;
        }
        print_rows(meta, names, probs, k, want_probs);
        k = 0;
    }
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
    free(input);
    free(probs);
    free(names);
    cnp_model_free(m);
    list_free(&chips);
    return rc;
}
