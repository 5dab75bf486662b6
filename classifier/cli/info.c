/* info.c -- `canopy info MODEL`: architecture, operators, inputs/outputs,
 * metadata (defaults marked), parameters, GFLOPs per chip, GEMM back end;
 * as text, or as JSON with --json.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "scene/product.h"

#include <cpl_string.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "info"

static void print_help(FILE *f)
{
    fprintf(f,
            "Usage: canopy info [--json] [-m] [MODEL] [SCENE]\n"
            "\n"
            "Describes an ONNX model as canopy loads it: the architecture (ResNet depth and\n"
            "block type guessed from the graph, head type), the ONNX operators with their\n"
            "counts, what load-time fusion did, the input and output, canopy's metadata\n"
            "(labels, thresholds, marker labels, input size, bands, scaling, mean/std,\n"
            "training GSD; values the file does not give are marked 'default'), the number\n"
            "of parameters, GFLOPs per chip at the model's input size (2 x multiply-adds of\n"
            "convolutions and linear layers), and the GEMM back end with its self-test.\n"
            "\n"
            "Defaults for missing metadata: 17 outputs get the Kaggle Planet labels, other\n"
            "counts label_0..label_N-1; threshold 0.2; markers: the deforestation labels\n"
            "among the model's labels; input size the export's fixed size, else 224; bands\n"
            "1..C; scale 1/255; mean/std ImageNet's for the first three channels and\n"
            "0.449/0.226 for further channels (e.g. near-infrared).\n"
            "\n"
            "With a SCENE (a raster, a Sentinel-2 .SAFE folder, .zip or MTD_MSIL*.xml, a\n"
            "PlanetScope scene file), also how canopy classify would read it for this model:\n"
            "the product, the dataset opened, which band feeds each channel, the\n"
            "radiometry applied, the quality mask, and any warning (with --json: that\n"
            "alone, as one JSON object).\n"
            "\n"
            "Options:\n"
            "  -m, --model MODEL  the model (default: $CANOPY_MODEL, else %s)\n"
            "  --json             print one JSON object instead of text\n"
            "  -h, --help         this help\n"
            "\n"
            "Exit status: 0 ok; 1 the model cannot be loaded (the message names the file and\n"
            "what is wrong); 2 usage error.\n",
            cnp_cli_default_model());
}

static const char *def(const cnp_model_meta *meta, unsigned bit)
{
    return meta->defaulted & bit ? "  (default)" : "";
}

static void print_floats(const float *v, int n)
{
    for (int i = 0; i < n; i++)
        printf("%s%.6g", i ? ", " : "[", (double)v[i]);
    printf("]");
}

static void print_text(const cnp_model *m, const cnp_model_info *in, const cnp_blas_info *bi)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(m);
    int n_markers = 0;

    printf("Model:         %s\n", in->path);
    printf("Name:          %s%s%s\n", meta->name, meta->version[0] ? ", version " : "",
           meta->version);
    printf("Architecture:  %s\n", in->arch);
    printf("ONNX:          opset %d, %d nodes, producer %s\n", in->opset, in->n_nodes,
           in->producer);
    printf("Operators:    ");
    for (int i = 0; i < in->n_ops; i++)
        printf(" %s %d%s", in->op_names[i], in->op_counts[i], i + 1 < in->n_ops ? "," : "");
    printf("\n");
    printf("Fused:         %d convolutions; %d BatchNormalizations folded, %d residual Adds "
           "fused into convolutions\n", in->n_conv, in->n_fused_bn, in->n_fused_add);
    printf("Parameters:    %zu (%.2f M)\n", in->n_params, (double)in->n_params / 1e6);
    printf("Input:         %s (N, %d, H, W) float32, normalised; model size %dx%d%s\n",
           in->input_name, meta->n_channels, meta->input_size, meta->input_size,
           def(meta, CNP_META_DEF_INPUT_SIZE));
    printf("Output:        %s (N, %d) per-label scores, sigmoid probabilities\n",
           in->output_name, meta->n_labels);
    printf("GFLOPs/chip:   %.3f at %dx%d\n", in->gflops, meta->input_size, meta->input_size);
    printf("GEMM:          %s; core %s (%s); self-test %s\n", bi->library, bi->core, bi->selected,
           bi->selftest_ok > 0 ? "passed" : bi->selftest_ok == 0 ? "FAILED" : "not run");
    printf("Convolutions:  %s\n", bi->conv);
    printf("Precision:     %s\n", bi->bf16);

    for (int l = 0; l < meta->n_labels; l++)
        n_markers += meta->is_marker[l];
    printf("\nMetadata (\"default\": not given by the file):\n");
    printf("  labels       %d%s\n", meta->n_labels,
           meta->defaulted & CNP_META_DEF_LABELS
               ? (meta->n_labels == 17 ? "  (default: the Kaggle Planet labels)"
                                       : "  (default: label_0, label_1, ...)")
               : "");
    printf("  thresholds   per label below%s\n", def(meta, CNP_META_DEF_THRESHOLDS));
    printf("  markers      %d label%s%s\n", n_markers, n_markers == 1 ? "" : "s",
           def(meta, CNP_META_DEF_MARKERS));
    printf("    %-3s %-24s %-9s %s\n", "#", "label", "threshold", "marker");
    for (int l = 0; l < meta->n_labels; l++) {
        char thr[32];
        snprintf(thr, sizeof thr, "%.6g", (double)meta->thresholds[l]);
        if (meta->is_marker[l])
            printf("    %-3d %-24s %-9s yes\n", l, meta->labels[l], thr);
        else
            printf("    %-3d %-24s %s\n", l, meta->labels[l], thr);
    }
    printf("  input_size   %d%s\n", meta->input_size, def(meta, CNP_META_DEF_INPUT_SIZE));
    printf("  bands        ");
    for (int c = 0; c < meta->n_channels; c++) {
        if (meta->band_names)
            printf("%s\"%s\"", c ? ", " : "[", meta->band_names[c]);
        else
            printf("%s%d", c ? ", " : "[", meta->bands[c]);
    }
    printf("]%s\n", def(meta, CNP_META_DEF_BANDS));
    if (meta->trained_on)
        printf("  trained_on   %s\n", meta->trained_on);
    printf("  scale        %.9g%s\n", meta->scale, def(meta, CNP_META_DEF_SCALE));
    printf("  mean         ");
    print_floats(meta->mean, meta->n_channels);
    printf("%s\n", def(meta, CNP_META_DEF_MEAN));
    printf("  std          ");
    print_floats(meta->std, meta->n_channels);
    printf("%s\n", def(meta, CNP_META_DEF_STD));
    if (meta->gsd_m > 0)
        printf("  gsd_m        %.6g\n", meta->gsd_m);
    else
        printf("  gsd_m        unknown\n");
    if (meta->n_int8)
        printf("  int8         ranges of %d activation%s over %d chip%s (canopy calibrate)\n",
               meta->n_int8, meta->n_int8 == 1 ? "" : "s", meta->int8_chips,
               meta->int8_chips == 1 ? "" : "s");
    else
        printf("  int8         none (`canopy calibrate` writes them for --precision int8)\n");
}

/* canopy.int8 as read: {"chips": N, "activations": [{"tensor", "min", "max"}]},
 * or NULL when the model has none. */
static json_object *int8_json(const cnp_model_meta *meta)
{
    json_object *o, *acts;
    if (!meta->n_int8)
        return NULL;
    o = json_object_new_object();
    acts = json_object_new_array();
    json_object_object_add(o, "chips", json_object_new_int(meta->int8_chips));
    for (int i = 0; i < meta->n_int8; i++) {
        json_object *e = json_object_new_object();
        char buf[32];
        json_object_object_add(e, "tensor", json_object_new_string(meta->int8_names[i]));
        json_object_object_add(e, "min", json_object_new_double_s(
                                             meta->int8_min[i],
                                             cnp_float_text(buf, sizeof buf, meta->int8_min[i])));
        json_object_object_add(e, "max", json_object_new_double_s(
                                             meta->int8_max[i],
                                             cnp_float_text(buf, sizeof buf, meta->int8_max[i])));
        json_object_array_add(acts, e);
    }
    json_object_object_add(o, "activations", acts);
    return o;
}

static json_object *floats_json(const float *v, int n)
{
    json_object *a = json_object_new_array();
    for (int i = 0; i < n && a; i++)
        json_object_array_add(a, json_object_new_double((double)v[i]));
    return a;
}

/* How canopy classify would read `scene` for this model (text or JSON). */
static int print_scene(cnp_ctx *ctx, const cnp_model *m, const char *scene, int json)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(m);
    cnp_product_params pp;
    cnp_product *pr = NULL;
    char *pj;
    int c;

    memset(&pp, 0, sizeof pp);
    pp.n_channels = meta->n_channels;
    pp.bands = meta->bands;
    pp.names = (const char *const *)meta->band_names;
    pp.trained_on = meta->trained_on;
    pp.model_name = meta->name;
    pp.model_scale = meta->scale;
    if (cnp_product_open(ctx, scene, &pp, &pr) != CNP_OK)
        return 0;
    if (json) {
        pj = cnp_product_json(pr);
        printf("{\"scene\": %s, \"name\": ", pj ? pj : "null");
        {
            json_object *n = json_object_new_string(pr->name), *w = json_object_new_array();
            for (c = 0; pr->warnings && pr->warnings[c]; c++)
                json_object_array_add(w, json_object_new_string(pr->warnings[c]));
            printf("%s, \"warnings\": %s}\n", json_object_to_json_string(n),
                   json_object_to_json_string(w));
            json_object_put(n);
            json_object_put(w);
        }
        free(pj);
    } else {
        printf("\nScene:         %s\n", scene);
        printf("  product      %s, outputs named %s\n", pr->kind_name, pr->name);
        printf("  dataset      %s\n", pr->dataset);
        for (c = 0; c < pr->n_channels; c++)
            printf("  channel %-4d band %d (%s)\n", c + 1, pr->bands[c],
                   pr->band_names && c < CSLCount(pr->band_names) ? pr->band_names[c] : "?");
        printf("  radiometry   %s\n", pr->radiometry);
        printf("  mask         %s\n", pr->has_qmask ? pr->qmask_rule : "none");
        if (pr->has_qmask)
            printf("               %s\n", pr->qmask_path);
        for (c = 0; pr->warnings && pr->warnings[c]; c++)
            fprintf(stderr, "canopy " CMD ": warning: %s\n", pr->warnings[c]);
    }
    cnp_product_free(pr);
    return 1;
}

static int print_json(const cnp_model *m, const cnp_model_info *in, const cnp_blas_info *bi)
{
    const cnp_model_meta *meta = cnp_model_meta_cget(m);
    json_object *o = json_object_new_object(), *ops, *md, *labels, *markers, *bands, *defs, *g;
    const char *txt;
    static const struct { unsigned bit; const char *name; } bits[] = {
        {CNP_META_DEF_LABELS, "labels"}, {CNP_META_DEF_THRESHOLDS, "thresholds"},
        {CNP_META_DEF_MARKERS, "markers"}, {CNP_META_DEF_INPUT_SIZE, "input_size"},
        {CNP_META_DEF_BANDS, "bands"}, {CNP_META_DEF_SCALE, "scale"},
        {CNP_META_DEF_MEAN, "mean"}, {CNP_META_DEF_STD, "std"}};

    if (!o)
        return 0;
    json_object_object_add(o, "path", json_object_new_string(in->path));
    json_object_object_add(o, "architecture", json_object_new_string(in->arch));
    json_object_object_add(o, "opset", json_object_new_int(in->opset));
    json_object_object_add(o, "producer", json_object_new_string(in->producer));
    json_object_object_add(o, "nodes", json_object_new_int(in->n_nodes));
    ops = json_object_new_object();
    for (int i = 0; i < in->n_ops; i++)
        json_object_object_add(ops, in->op_names[i], json_object_new_int(in->op_counts[i]));
    json_object_object_add(o, "operators", ops);
    json_object_object_add(o, "convolutions", json_object_new_int(in->n_conv));
    json_object_object_add(o, "fused_batchnorm", json_object_new_int(in->n_fused_bn));
    json_object_object_add(o, "fused_add", json_object_new_int(in->n_fused_add));
    json_object_object_add(o, "parameters", json_object_new_int64((int64_t)in->n_params));
    json_object_object_add(o, "gflops_per_chip", json_object_new_double(in->gflops));
    json_object_object_add(o, "input_name", json_object_new_string(in->input_name));
    json_object_object_add(o, "output_name", json_object_new_string(in->output_name));
    g = json_object_new_object();
    json_object_object_add(g, "library", json_object_new_string(bi->library));
    json_object_object_add(g, "core", json_object_new_string(bi->core));
    json_object_object_add(g, "selected", json_object_new_string(bi->selected));
    json_object_object_add(g, "selftest", bi->selftest_ok < 0 ? NULL :
                           json_object_new_boolean(bi->selftest_ok > 0));
    json_object_object_add(g, "convolutions", json_object_new_string(bi->conv));
    json_object_object_add(g, "precision", json_object_new_string(bi->bf16));
    json_object_object_add(o, "gemm", g);

    md = json_object_new_object();
    labels = json_object_new_array();
    markers = json_object_new_array();
    for (int l = 0; l < meta->n_labels; l++) {
        json_object_array_add(labels, json_object_new_string(meta->labels[l]));
        if (meta->is_marker[l])
            json_object_array_add(markers, json_object_new_string(meta->labels[l]));
    }
    json_object_object_add(md, "labels", labels);
    json_object_object_add(md, "thresholds", floats_json(meta->thresholds, meta->n_labels));
    json_object_object_add(md, "markers", markers);
    json_object_object_add(md, "input_size", json_object_new_int(meta->input_size));
    json_object_object_add(md, "n_channels", json_object_new_int(meta->n_channels));
    bands = json_object_new_array();
    for (int c = 0; c < meta->n_channels; c++)
        json_object_array_add(bands, meta->band_names
                                         ? json_object_new_string(meta->band_names[c])
                                         : json_object_new_int(meta->bands[c]));
    json_object_object_add(md, "bands", bands);
    json_object_object_add(md, "scale", json_object_new_double(meta->scale));
    json_object_object_add(md, "mean", floats_json(meta->mean, meta->n_channels));
    json_object_object_add(md, "std", floats_json(meta->std, meta->n_channels));
    json_object_object_add(md, "gsd_m", meta->gsd_m > 0 ? json_object_new_double(meta->gsd_m)
                                                        : NULL);
    json_object_object_add(md, "name", json_object_new_string(meta->name));
    json_object_object_add(md, "version", json_object_new_string(meta->version));
    if (meta->trained_on)
        json_object_object_add(md, "trained_on", json_object_new_string(meta->trained_on));
    json_object_object_add(md, "int8", int8_json(meta));
    defs = json_object_new_array();
    for (size_t i = 0; i < sizeof bits / sizeof *bits; i++)
        if (meta->defaulted & bits[i].bit)
            json_object_array_add(defs, json_object_new_string(bits[i].name));
    json_object_object_add(md, "defaulted", defs);
    json_object_object_add(o, "metadata", md);

    txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (txt)
        printf("%s\n", txt);
    json_object_put(o);
    return txt != NULL;
}

int cnp_cmd_info(int argc, char **argv)
{
    const char *model_path = NULL, *scene = NULL;
    int json = 0, rc = CNP_EXIT_OK;
    cnp_model *m = NULL;
    cnp_model_info in;
    cnp_blas_info bi;
    cnp_ctx ctx;

    cnp_ctx_clear(&ctx);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(stdout);
            return CNP_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (++i >= argc)
                return cnp_cli_usage_error(CMD, "%s needs a model file", a);
            if (model_path)
                return cnp_cli_usage_error(CMD, "more than one model given");
            model_path = argv[i];
        } else if (a[0] == '-' && a[1]) {
            return cnp_cli_usage_error(CMD, "unknown option '%s'", a);
        } else if (!model_path) {
            model_path = a;
        } else if (!scene) {
            scene = a;
        } else {
            return cnp_cli_usage_error(CMD, "give one model and at most one scene");
        }
    }
    if (!model_path)
        model_path = cnp_cli_default_model();
    if (cnp_model_load(&ctx, model_path, &m) != CNP_OK) {
        cnp_cli_report(CMD, &ctx);
        return CNP_EXIT_FAILURE;
    }
    cnp_model_info_get(m, &in);
    cnp_blas_info_get(&bi);
    if (scene) {
        if (!json)
            print_text(m, &in, &bi);
        fflush(stdout);
        if (!print_scene(&ctx, m, scene, json)) {
            cnp_cli_report(CMD, &ctx);
            rc = CNP_EXIT_FAILURE;
        }
    } else if (json) {
        if (!print_json(m, &in, &bi)) {
            fprintf(stderr, "canopy " CMD ": out of memory\n");
            rc = CNP_EXIT_FAILURE;
        }
    } else {
        print_text(m, &in, &bi);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "canopy " CMD ": writing to stdout failed\n");
        rc = CNP_EXIT_FAILURE;
    }
    cnp_model_free(m);
    return rc;
}
