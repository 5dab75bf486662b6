/* eval-probe -- drives classifier/eval from the Python tests, which compare
 * what it prints (JSON) with scikit-learn, Python's csv module and the onnx
 * package.
 *
 *   eval-probe labels CSV LABEL,LABEL,...       the label table
 *   eval-probe metrics DATA                      sample and per-label scores
 *   eval-probe optimize DATA LO HI STEP PASSES [ROWS]  thresholds
 *   eval-probe split N FRACTION SEED             the seeded split
 *   eval-probe set-meta IN OUT KEY VALUE         ONNX metadata rewrite
 *   eval-probe thresholds-json T...              the canopy.thresholds string
 *
 * DATA is text: "n L", then L thresholds, n rows of L 0/1 truths, n rows of
 * L probabilities (whitespace-separated). ROWS: comma-separated indices.
 * Exit 0 ok, 1 library error (message on stderr), 2 bad arguments.
 */
#define _GNU_SOURCE
#include "eval/eval.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const cnp_ctx *ctx)
{
    fprintf(stderr, "eval-probe: %s\n", ctx->msg[0] ? ctx->msg : cnp_status_name(ctx->status));
    return 1;
}

static void print_json(json_object *o)
{
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
}

static int cmd_labels(int argc, char **argv)
{
    cnp_ctx ctx;
    cnp_label_table *t = NULL;
    char *list, *tok, *save = NULL, **labels = NULL;
    int n = 0, i, l;
    json_object *o, *rows, *unk;

    if (argc != 4)
        return 2;
    list = strdup(argv[3]);
    labels = calloc(strlen(argv[3]) + 1, sizeof *labels);
    if (!list || !labels)
        return 1;
    for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        labels[n++] = tok;
    cnp_ctx_clear(&ctx);
    if (cnp_label_table_read(&ctx, argv[2], (const char *const *)labels, n, &t) != CNP_OK) {
        free(list);
        free(labels);
        return fail(&ctx);
    }
    o = json_object_new_object();
    rows = json_object_new_array();
    for (i = 0; i < t->n_rows; i++) {
        json_object *r = json_object_new_object(), *tags = json_object_new_array();
        json_object_object_add(r, "name", json_object_new_string(t->names[i]));
        json_object_object_add(r, "line", json_object_new_int(t->lines[i]));
        for (l = 0; l < t->n_labels; l++)
            if (t->truth[(size_t)i * (size_t)t->n_labels + (size_t)l])
                json_object_array_add(tags, json_object_new_string(t->labels[l]));
        json_object_object_add(r, "tags", tags);
        json_object_array_add(rows, r);
    }
    json_object_object_add(o, "rows", rows);
    json_object_object_add(o, "n_records", json_object_new_int(t->n_records));
    json_object_object_add(o, "n_duplicates", json_object_new_int(t->n_duplicates));
    json_object_object_add(o, "n_duplicates_conflicting",
                           json_object_new_int(t->n_duplicates_conflicting));
    json_object_object_add(o, "duplicate_line", json_object_new_int(t->duplicate_line));
    json_object_object_add(o, "n_unknown_rows", json_object_new_int(t->n_unknown_rows));
    json_object_object_add(o, "n_unknown_tags", json_object_new_int64(t->n_unknown_tags));
    unk = json_object_new_object();
    for (i = 0; i < t->n_unknown_names; i++)
        json_object_object_add(unk, t->unknown_names[i],
                               json_object_new_int64(t->unknown_counts[i]));
    json_object_object_add(o, "unknown", unk);
    print_json(o);
    cnp_label_table_free(t);
    free(list);
    free(labels);
    return 0;
}

typedef struct data {
    int n, L;
    float *thr, *probs;
    unsigned char *truth;
} data;

static int read_data(const char *path, data *d)
{
    FILE *f = fopen(path, "r");
    size_t i, nl;
    memset(d, 0, sizeof *d);
    if (!f || fscanf(f, "%d %d", &d->n, &d->L) != 2 || d->n < 0 || d->L < 1) {
        fprintf(stderr, "eval-probe: %s: bad header\n", path);
        if (f)
            fclose(f);
        return 0;
    }
    nl = (size_t)d->n * (size_t)d->L;
    d->thr = calloc((size_t)d->L, sizeof *d->thr);
    d->probs = calloc(nl + 1, sizeof *d->probs);
    d->truth = calloc(nl + 1, 1);
    if (!d->thr || !d->probs || !d->truth) {
        fclose(f);
        return 0;
    }
    for (i = 0; i < (size_t)d->L; i++)
        if (fscanf(f, "%f", &d->thr[i]) != 1)
            goto bad;
    for (i = 0; i < nl; i++) {
        int v;
        if (fscanf(f, "%d", &v) != 1)
            goto bad;
        d->truth[i] = (unsigned char)(v != 0);
    }
    for (i = 0; i < nl; i++)
        if (fscanf(f, "%f", &d->probs[i]) != 1)
            goto bad;
    fclose(f);
    return 1;
bad:
    fprintf(stderr, "eval-probe: %s: truncated data\n", path);
    fclose(f);
    return 0;
}

static void free_data(data *d)
{
    free(d->thr);
    free(d->probs);
    free(d->truth);
}

static int cmd_metrics(int argc, char **argv)
{
    data d;
    cnp_sample_scores s;
    cnp_label_metrics *m;
    json_object *o, *labs;
    int l;

    if (argc != 3)
        return 2;
    if (!read_data(argv[2], &d))
        return 1;
    m = calloc((size_t)d.L, sizeof *m);
    if (!m)
        return 1;
    s = cnp_scores_samples(d.truth, d.probs, d.L, d.thr, NULL, d.n);
    cnp_scores_labels(d.truth, d.probs, d.L, d.thr, NULL, d.n, m);
    o = json_object_new_object();
    json_object_object_add(o, "f2", json_object_new_double(s.f2));
    json_object_object_add(o, "precision", json_object_new_double(s.precision));
    json_object_object_add(o, "recall", json_object_new_double(s.recall));
    labs = json_object_new_array();
    for (l = 0; l < d.L; l++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "support", json_object_new_int(m[l].support));
        json_object_object_add(x, "predicted", json_object_new_int(m[l].predicted));
        json_object_object_add(x, "tp", json_object_new_int(m[l].tp));
        json_object_object_add(x, "precision", json_object_new_double(m[l].precision));
        json_object_object_add(x, "recall", json_object_new_double(m[l].recall));
        json_object_object_add(x, "f2", json_object_new_double(m[l].f2));
        json_object_array_add(labs, x);
    }
    json_object_object_add(o, "labels", labs);
    print_json(o);
    free(m);
    free_data(&d);
    return 0;
}

static int cmd_optimize(int argc, char **argv)
{
    cnp_ctx ctx;
    data d;
    cnp_threshold_grid g;
    cnp_threshold_data tdata;
    cnp_threshold_result tres = {0, 0, 0};
    int l, *rows = NULL, n_rows;
    json_object *o, *t;

    if (argc != 7 && argc != 8)
        return 2;
    if (!read_data(argv[2], &d))
        return 1;
    g.lo = atof(argv[3]);
    g.hi = atof(argv[4]);
    g.step = atof(argv[5]);
    g.max_passes = atoi(argv[6]);
    n_rows = d.n;
    if (argc == 8) {
        char *s = argv[7], *end;
        rows = calloc((size_t)d.n + 1, sizeof *rows);
        if (!rows)
            return 1;
        n_rows = 0;
        while (*s) {
            rows[n_rows++] = (int)strtol(s, &end, 10);
            s = *end == ',' ? end + 1 : end;
            if (end == s && *s)
                return 2;
        }
    }
    cnp_ctx_clear(&ctx);
    tdata.truth = d.truth;
    tdata.probs = d.probs;
    tdata.n_labels = d.L;
    tdata.rows = rows;
    tdata.n_rows = n_rows;
    if (cnp_thresholds_optimize(&ctx, &tdata, &g, d.thr, &tres) != CNP_OK) {
        free(rows);
        free_data(&d);
        return fail(&ctx);
    }
    o = json_object_new_object();
    t = json_object_new_array();
    for (l = 0; l < d.L; l++)
        json_object_array_add(t, json_object_new_double(d.thr[l]));
    json_object_object_add(o, "thresholds", t);
    json_object_object_add(o, "f2_before", json_object_new_double(tres.f2_before));
    json_object_object_add(o, "f2_after", json_object_new_double(tres.f2_after));
    json_object_object_add(o, "passes", json_object_new_int(tres.n_passes));
    print_json(o);
    free(rows);
    free_data(&d);
    return 0;
}

static int cmd_split(int argc, char **argv)
{
    cnp_ctx ctx;
    int *fit, *held, n_fit, n_held, i;
    json_object *o, *a, *b;
    if (argc != 5)
        return 2;
    cnp_ctx_clear(&ctx);
    if (cnp_split_rows(&ctx, atoi(argv[2]), atof(argv[3]), strtoull(argv[4], NULL, 10), &fit,
                       &n_fit, &held, &n_held) != CNP_OK)
        return fail(&ctx);
    o = json_object_new_object();
    a = json_object_new_array();
    b = json_object_new_array();
    for (i = 0; i < n_fit; i++)
        json_object_array_add(a, json_object_new_int(fit[i]));
    for (i = 0; i < n_held; i++)
        json_object_array_add(b, json_object_new_int(held[i]));
    json_object_object_add(o, "fit", a);
    json_object_object_add(o, "held", b);
    print_json(o);
    free(fit);
    free(held);
    return 0;
}

static int cmd_set_meta(int argc, char **argv)
{
    cnp_ctx ctx;
    if (argc != 6)
        return 2;
    cnp_ctx_clear(&ctx);
    if (cnp_onnx_set_metadata(&ctx, argv[2], argv[3], argv[4], argv[5]) != CNP_OK)
        return fail(&ctx);
    return 0;
}

static int cmd_thresholds_json(int argc, char **argv)
{
    cnp_ctx ctx;
    float *t;
    char *s;
    int i, n = argc - 2;
    t = calloc((size_t)n + 1, sizeof *t);
    if (!t)
        return 1;
    for (i = 0; i < n; i++)
        t[i] = strtof(argv[i + 2], NULL);
    cnp_ctx_clear(&ctx);
    s = cnp_thresholds_json(&ctx, t, n);
    free(t);
    if (!s)
        return fail(&ctx);
    puts(s);
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc >= 2) {
        if (!strcmp(argv[1], "labels"))
            rc = cmd_labels(argc, argv);
        else if (!strcmp(argv[1], "metrics"))
            rc = cmd_metrics(argc, argv);
        else if (!strcmp(argv[1], "optimize"))
            rc = cmd_optimize(argc, argv);
        else if (!strcmp(argv[1], "split"))
            rc = cmd_split(argc, argv);
        else if (!strcmp(argv[1], "set-meta"))
            rc = cmd_set_meta(argc, argv);
        else if (!strcmp(argv[1], "thresholds-json"))
            rc = cmd_thresholds_json(argc, argv);
    }
    if (rc == 2)
        fprintf(stderr, "usage: eval-probe labels|metrics|optimize|split|set-meta|"
                        "thresholds-json ARGS (see the comment at the top of eval-probe.c)\n");
    return rc;
}
