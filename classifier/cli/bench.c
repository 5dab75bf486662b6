/* bench.c -- `canopy bench`: the engine alone on random chips (images/s,
 * GFLOP/s) and the sgemm ceiling of this machine, for scripts/bench. */
#define _GNU_SOURCE
#include "config.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "pipeline/pipeline.h"

#include <cblas.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: canopy bench [-m MODEL] [--size N] [--batch N] [--threads N]\n"
          "                    [--seconds S] [--precision fp32|bf16|int8] [--tta] [--profile]\n"
          "                    [--isa auto|avx512|avx2|generic] [--sgemm]\n"
          "                    [--winograd-precision auto|fp32|bf16]\n"
          "\n"
          "Times the engine alone on random chips (no file I/O) and prints one line:\n"
          "  model=... size=N batch=N threads=N precision=P images_per_s=X gflops=Y\n"
          "  ms_per_batch=Z isa=I\n"
          "(precision: the one that ran, fp32 when bf16 or int8 was asked for on a CPU without\n"
          "AVX512_BF16; isa: the vector code that ran, avx512, avx2 or generic).\n"
          "With --sgemm, instead measures this machine's fp32 sgemm ceiling: one\n"
          "single-threaded 2048^3 OpenBLAS sgemm per thread, run concurrently:\n"
          "  sgemm threads=N gflops=X core=NAME\n"
          "\n"
          "  -m MODEL       ONNX model (default: the demo model)\n"
          "  --size N       input side in pixels (default: the model's input size)\n"
          "  --batch N      chips per forward pass (default 32)\n"
          "  --threads N    OpenMP threads (default: all cores)\n"
          "  --seconds S    measure for at least S seconds after one warm-up (default 3)\n"
          "  --precision P  fp32 (default), bf16: convolutions on AVX512_BF16 with fp32\n"
          "                 accumulation, or int8: on AVX512_VNNI, for a model with\n"
          "                 `canopy calibrate`'s ranges (dense layers stay fp32)\n"
          "  --winograd-precision W  with --precision bf16, Winograd's GEMMs: auto\n"
          "                 (default: bf16 from 32 input channels, fp32 below), or\n"
          "                 fp32 or bf16 on every Winograd layer, to compare\n"
          "  --isa I        the kernels' vector code: auto (default: the best this CPU\n"
          "                 has), avx512, avx2 (canopy's fp32 GEMM on AVX2 + FMA) or\n"
          "                 generic (OpenBLAS); one the CPU lacks runs generic.\n"
          "                 Default from the environment's CANOPY_ISA when set\n"
          "  --tta          time the 8-fold test-time augmentation path\n"
          "  --profile      then time every layer for as long again and print a table:\n"
          "                 shapes, kernel path (winograd, gemm, gemm-rows, openblas;\n"
          "                 -bf16 where they run in bf16, -avx2 on the AVX2 path),\n"
          "                 ms per batch, GFLOP/s and share of the pass\n"
          "\n"
          "Exit status: 0 success, 1 model error, 2 usage error.\n", f);
}

static int bench_sgemm(int threads, double seconds)
{
    const int n = 2048;
    double flops = 0, t0, t;
    cnp_ctx ctx;
    cnp_blas_info bi;
    float *a, *b, *c;
    size_t nn = (size_t)n * n;
    int reps = 0;

    cnp_ctx_clear(&ctx);
    if (cnp_blas_init(&ctx) != CNP_OK) {
        cnp_cli_report("bench", &ctx);
        return CNP_EXIT_FAILURE;
    }
    a = cnp_aligned_alloc(&ctx, nn * (size_t)threads, sizeof(float), "sgemm A");
    b = cnp_aligned_alloc(&ctx, nn * (size_t)threads, sizeof(float), "sgemm B");
    c = cnp_aligned_alloc(&ctx, nn * (size_t)threads, sizeof(float), "sgemm C");
    if (!a || !b || !c) {
        cnp_cli_report("bench", &ctx);
        cnp_aligned_free(a);
        cnp_aligned_free(b);
        cnp_aligned_free(c);
        return CNP_EXIT_FAILURE;
    }
    for (size_t i = 0; i < nn * (size_t)threads; i++) {
        a[i] = (float)((i * 7919u) % 1000u) * 1e-3f;
        b[i] = (float)((i * 104729u) % 1000u) * 1e-3f;
    }
    t0 = cnp_now();
    do {
#pragma omp parallel num_threads(threads)
        {
            size_t off = nn * (size_t)omp_get_thread_num();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a + off, n,
                        b + off, n, 0.0f, c + off, n);
        }
        reps++;
        t = cnp_now() - t0;
    } while (t < seconds || reps < 2);
    flops = 2.0 * n * (double)n * n * threads * reps;
    cnp_blas_info_get(&bi);
    printf("sgemm threads=%d gflops=%.1f core=%s\n", threads, flops / t * 1e-9, bi.core);
    cnp_aligned_free(a);
    cnp_aligned_free(b);
    cnp_aligned_free(c);
    return CNP_EXIT_OK;
}

int cnp_cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"size", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 'S'}, {"tta", no_argument, NULL, 'T'},
        {"sgemm", no_argument, NULL, 'G'}, {"precision", required_argument, NULL, 'p'}, {"profile", no_argument, NULL, 'P'},
        {"isa", required_argument, NULL, 'I'}, {"help", no_argument, NULL, 'h'},
        {"winograd-precision", required_argument, NULL, 'W'},
        {NULL, 0, NULL, 0}};
    const char *model_path = NULL;
    int size = 0, batch = 32, threads = cnp_cli_default_threads(), tta = 0, sgemm = 0, opt;
    int profile = 0, no_bf16, no_int8;
    cnp_precision precision = CNP_PRECISION_FP32;
    const char *isa_arg = NULL;
    cnp_isa isa;
    cnp_wino_prec wino = CNP_WINO_AUTO;
    int rc = CNP_EXIT_FAILURE, reps = 0;
    double seconds = 3.0, t0, t;
    cnp_ctx ctx;
    cnp_model *m = NULL;
    cnp_model_info info;
    float *in = NULL, *probs = NULL;
    size_t in_n;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': model_path = optarg; break;
        case 's': if (!cnp_cli_parse_int("bench", "--size", optarg, 32, 4096, &size)) return CNP_EXIT_USAGE; break;
        case 'b': if (!cnp_cli_parse_int("bench", "--batch", optarg, 1, 4096, &batch)) return CNP_EXIT_USAGE; break;
        case 't': if (!cnp_cli_parse_int("bench", "--threads", optarg, 1, 1024, &threads)) return CNP_EXIT_USAGE; break;
        case 'S': if (!cnp_cli_parse_double("bench", "--seconds", optarg, 0.0, 3600.0, &seconds)) return CNP_EXIT_USAGE; break;
        case 'p': if (!cnp_cli_parse_precision("bench", optarg, &precision)) return CNP_EXIT_USAGE; break;
        case 'I': isa_arg = optarg; break;
        case 'W':
            if (!cnp_wino_prec_parse(optarg, &wino))
                return cnp_cli_usage_error("bench", "--winograd-precision expects auto, fp32 "
                                           "or bf16, got '%s'", optarg);
            break;
        case 'T': tta = 1; break;
        case 'G': sgemm = 1; break;
        case 'P': profile = 1; break;
        case 'h': usage(stdout); return CNP_EXIT_OK;
        default: return cnp_cli_usage_error("bench", "unknown option");
        }
    }
    if (optind != argc)
        return cnp_cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    if (!cnp_cli_isa("bench", isa_arg, &isa))
        return CNP_EXIT_USAGE;
    if (sgemm)
        return bench_sgemm(threads, seconds);
    if (!model_path)
        model_path = cnp_cli_default_model();

    cnp_ctx_clear(&ctx);
    if (cnp_model_load(&ctx, model_path, &m) != CNP_OK)
        goto cleanup;
    const cnp_model_meta *meta = cnp_model_meta_cget(m);
    if (size == 0)
        size = meta->input_size;
    cnp_cli_precision_env(&no_bf16, &no_int8);
    if (cnp_model_prepare(&ctx, m, &(cnp_prepare_options){
                              .max_batch = batch, .height = size, .width = size,
                              .n_threads = threads, .isa = isa, .wino = wino,
                              .flags = (tta ? CNP_PREPARE_TTA : 0) |
                                       cnp_precision_flags(precision, no_bf16, no_int8)}) !=
        CNP_OK)
        goto cleanup;
    if (cnp_cli_precision_fallback(precision, cnp_model_precision(m)))
        fprintf(stderr, "canopy: %s\n", cnp_cli_precision_fallback(precision, cnp_model_precision(m)));
    in_n = (size_t)batch * (size_t)meta->n_channels * (size_t)size * (size_t)size;
    in = cnp_aligned_alloc(&ctx, in_n, sizeof(float), "benchmark input");
    probs = cnp_aligned_alloc(&ctx, (size_t)batch * (size_t)meta->n_labels, sizeof(float), "probabilities");
    if (!in || !probs)
        goto cleanup;
    for (size_t i = 0; i < in_n; i++)
        in[i] = (float)((i * 2654435761u) % 2001u) * 1e-3f - 1.0f;
    /* warm-up */
    if ((tta ? cnp_model_forward_tta : cnp_model_forward)(&ctx, m, in, batch, probs) != CNP_OK)
        goto cleanup;
    t0 = cnp_now();
    do {
        if ((tta ? cnp_model_forward_tta : cnp_model_forward)(&ctx, m, in, batch, probs) != CNP_OK)
            goto cleanup;
        reps++;
        t = cnp_now() - t0;
    } while (t < seconds || reps < 3);
    cnp_model_info_get(m, &info);
    printf("model=%s size=%d batch=%d threads=%d precision=%s images_per_s=%.2f gflops=%.1f "
           "ms_per_batch=%.3f isa=%s\n", meta->name, size, batch, threads, cnp_model_precision(m),
           batch * reps / t,
           info.gflops * batch * reps * (tta ? 8 : 1) / t, 1e3 * t / reps, cnp_model_isa(m));
    if (profile) {
        if (cnp_model_profile(&ctx, m, 1) != CNP_OK)
            goto cleanup;
        t0 = cnp_now();
        do {
            if ((tta ? cnp_model_forward_tta : cnp_model_forward)(&ctx, m, in, batch, probs) != CNP_OK)
                goto cleanup;
        } while (cnp_now() - t0 < seconds);
        cnp_model_profile_print(m, stdout);
    }
    rc = CNP_EXIT_OK;
cleanup:
    if (rc != CNP_EXIT_OK)
        cnp_cli_report("bench", &ctx);
    cnp_aligned_free(in);
    cnp_aligned_free(probs);
    cnp_model_free(m);
    return rc;
}
