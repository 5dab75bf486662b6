/* main.c -- `canopy` entry point: subcommand dispatch, --help/--version,
 * and the OpenBLAS kernel selection that must happen before any GEMM. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <unistd.h>

static void print_help(FILE *f)
{
    fputs("Usage: canopy COMMAND [OPTIONS] ...\n"
          "\n"
          "Finds markers of deforestation in satellite imagery with a multi-label ResNet\n"
          "(ONNX) on the CPU.\n"
          "\n"
          "Commands:\n"
          "  classify   whole georeferenced scenes -> label rasters, masks, GeoJSON markers\n"
          "  predict    image chips -> Kaggle submission CSV (image_name,tags) or probabilities\n"
          "  evaluate   labelled chips (train_v2.csv layout) -> F2, per-label metrics, thresholds\n"
          "  calibrate  sample chips -> a copy of the model with int8 ranges (--precision int8)\n"
          "  info       model summary: architecture, operators, metadata, GFLOPs, GEMM kernels\n"
          "  alerts     monitoring: alerts of new markers over time from classified scenes\n"
          "  bench      engine throughput on random chips, and this machine's sgemm ceiling\n"
          "  report     an output folder -> one HTML page (quick-looks, failures) + STAC\n"
          "\n"
          "'canopy COMMAND --help' describes each command's options.\n"
          "\n"
          "Exit status: 0 success; 1 a model, scene or chip could not be processed (the\n"
          "others are still done); 2 usage error.\n"
          "\n"
          "Environment: CANOPY_MODEL (default model), OPENBLAS_CORETYPE (GEMM kernels;\n"
          "respected when set, otherwise canopy picks the CPU's best), OMP_NUM_THREADS.\n",
          f);
}

/* OpenBLAS reads OPENBLAS_CORETYPE once, when it loads: if it fell back to
 * generic kernels on a CPU it does not know, re-execute with the variable
 * set. A value the user set is respected (cnp_blas_preferred_coretype
 * returns NULL then). */
static void select_blas_kernels(char **argv)
{
    const char *core;
    if (getenv("CANOPY_BLAS_REEXEC"))
        return;
    core = cnp_blas_preferred_coretype(getenv("OPENBLAS_CORETYPE"));
    if (!core)
        return;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0 || setenv("CANOPY_BLAS_REEXEC", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: go on with the kernels we have; `canopy info` shows them. */
    unsetenv("OPENBLAS_CORETYPE");
}

/* glibc gives freed memory at the top of its heap back to the system past
 * 128 KiB (M_TRIM_THRESHOLD). Reading a scene, GDAL frees each band of
 * blocks it is done with (the tiler drops them from its cache) and
 * allocates the next: with the default every such batch went back to the
 * system and came back as fresh pages, a page fault per 4 KiB -- a third of
 * the tiler's time on a DEFLATE scene in a virtual machine. Keeping up to
 * 64 MiB lets the next blocks reuse it. A value the user set
 * (MALLOC_TRIM_THRESHOLD_) is respected. */
static void keep_freed_memory(void)
{
#ifdef M_TRIM_THRESHOLD
    if (!getenv("MALLOC_TRIM_THRESHOLD_"))
        mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    const char *cmd;
    if (argc < 2) {
        print_help(stderr);
        return CNP_EXIT_USAGE;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return CNP_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        cnp_blas_info bi;
        cnp_blas_info_get(&bi);
        printf("canopy %s\nGEMM: %s, core %s (%s)\nConvolutions: %s\nPrecision: %s\n",
               PACKAGE_VERSION, bi.library, bi.core, bi.selected, bi.conv, bi.bf16);
        return CNP_EXIT_OK;
    }
    if (!strcmp(cmd, "report"))
        return cnp_cmd_report(argc - 1, argv + 1);
    select_blas_kernels(argv);
    keep_freed_memory();
    if (!strcmp(cmd, "info")) { /* classify, predict: the pipeline runs it */
        cnp_ctx ctx; /* the BLAS self-test, once, before any result is trusted */
        cnp_ctx_clear(&ctx);
        if (cnp_blas_init(&ctx) != CNP_OK) {
            cnp_cli_report(cmd, &ctx);
            return CNP_EXIT_FAILURE;
        }
    }
    if (!strcmp(cmd, "info"))
        return cnp_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "predict"))
        return cnp_cmd_predict(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify"))
        return cnp_cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "evaluate"))
        return cnp_cmd_evaluate(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate"))
        return cnp_cmd_calibrate(argc - 1, argv + 1);
    if (!strcmp(cmd, "alerts"))
        return cnp_cmd_alerts(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cnp_cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "canopy: unknown command '%s'; try 'canopy --help'\n", cmd);
    return CNP_EXIT_USAGE;
}
