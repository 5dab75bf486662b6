/* bench_kernels.c -- micro-benchmark of the convolution kernels on the conv
 * layer shapes of torchvision ResNet-50 and ResNet-18 (v1.5: stride on the
 * 3x3), against the sgemm ceiling measured in the same run.
 *
 *   bench_kernels [--model 50|18|all] [--size PX] [--batch N] [--threads N]
 *                 [--time SECONDS] [--layer SUBSTRING]
 *                 [--algo auto|gemm|winograd|openblas] [--cputime]
 *
 * --algo: force a convolution path (default auto, as the engine runs).
 * --precision int8: int8 plans (AVX512_VNNI; activations calibrated to
 * [0, 8]). --precision bf16: bf16 plans (AVX512_BF16); --winograd-precision
 * auto|fp32|bf16 then sets their Winograd GEMMs' precision (cnp_wino_prec),
 * and `compare` times fp32 and bf16 Winograd on every layer, the two
 * plans' calls alternated, and prints both and their ratio.
 * --isa: the kernels' vector code, as `canopy bench --isa` (avx2 forces the
 * AVX2 + FMA path on an AVX-512 CPU).
 * --cputime: time with CPU time instead of the wall clock (see now()).
 *
 * The ceiling: every thread runs single-threaded sgemm on its own large
 * square matrices at once, as the conv kernels do; GFLOP/s summed. Times
 * are the fastest single call within --time seconds, so that a machine
 * shared with other work still gives repeatable figures. Each
 * layer line gives its GFLOP/s, that as a share of the ceiling, and how
 * many times the shape occurs in the network; the total weighs layers by
 * occurrence. Built by `make check`, not run by it (timings are not tests).
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"
#include "engine/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int use_cputime;

/* Seconds: wall clock, or with --cputime the process's CPU time divided by
 * the thread count (steady on a machine shared with other work, exact for
 * one thread; with more it also counts threads waiting at barriers). */
static double now(int n_threads)
{
    struct timespec ts;
    if (!use_cputime)
        return cnp_now();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / n_threads;
}

typedef struct layer {
    char name[48];
    int C, H, K, R, stride, pad;
    int count;
} layer;

#define MAX_LAYERS 64

static int add_layer(layer *ls, int n, const char *name, int C, int H, int K, int R,
                     int stride)
{
    /* Merge identical shapes (ResNet repeats its blocks). */
    for (int i = 0; i < n; i++)
        if (ls[i].C == C && ls[i].H == H && ls[i].K == K && ls[i].R == R &&
            ls[i].stride == stride) {
            ls[i].count++;
            return n;
        }
    if (n >= MAX_LAYERS)
        return n;
    snprintf(ls[n].name, sizeof ls[n].name, "%s", name);
    ls[n].C = C;
    ls[n].H = H;
    ls[n].K = K;
    ls[n].R = R;
    ls[n].stride = stride;
    ls[n].pad = R / 2;
    ls[n].count = 1;
    return n + 1;
}

static int resnet_layers(layer *ls, int depth, int size)
{
    static const int blocks50[4] = { 3, 4, 6, 3 }, blocks18[4] = { 2, 2, 2, 2 };
    const int *blocks = depth == 50 ? blocks50 : blocks18;
    int n = 0, H = size / 4, in = 64;
    char name[48];
    n = add_layer(ls, n, "stem 7x7/2", 3, size, 64, 7, 2);
    for (int st = 0; st < 4; st++) {
        const int planes = 64 << st, out = depth == 50 ? planes * 4 : planes;
        for (int b = 0; b < blocks[st]; b++) {
            const int stride = (st > 0 && b == 0) ? 2 : 1;
            const int Ho = H / stride;
            if (depth == 50) {
                snprintf(name, sizeof name, "l%d 1x1 %d>%d", st + 1, in, planes);
                n = add_layer(ls, n, name, in, H, planes, 1, 1);
                snprintf(name, sizeof name, "l%d 3x3%s %d>%d", st + 1, stride > 1 ? "/2" : "",
                         planes, planes);
                n = add_layer(ls, n, name, planes, H, planes, 3, stride);
                snprintf(name, sizeof name, "l%d 1x1 %d>%d", st + 1, planes, out);
                n = add_layer(ls, n, name, planes, Ho, out, 1, 1);
            } else {
                snprintf(name, sizeof name, "l%d 3x3%s %d>%d", st + 1, stride > 1 ? "/2" : "",
                         in, planes);
                n = add_layer(ls, n, name, in, H, planes, 3, stride);
                snprintf(name, sizeof name, "l%d 3x3 %d>%d", st + 1, planes, planes);
                n = add_layer(ls, n, name, planes, Ho, planes, 3, 1);
            }
            if (b == 0 && (stride > 1 || in != out)) {
                snprintf(name, sizeof name, "l%d down 1x1%s %d>%d", st + 1,
                         stride > 1 ? "/2" : "", in, out);
                n = add_layer(ls, n, name, in, H, out, 1, stride);
            }
            in = out;
            H = Ho;
        }
    }
    return n;
}

/* Aggregate GFLOP/s of n_threads concurrent single-threaded sgemms. */
static double sgemm_ceiling(int n_threads, int dim, double min_time)
{
    const size_t sz = (size_t)dim * dim;
    double best = 0.0;
    float *buf = malloc(sizeof(float) * sz * 3 * (size_t)n_threads);
    if (!buf)
        return 0.0;
    for (size_t i = 0; i < sz * 3 * (size_t)n_threads; i++)
        buf[i] = (float)((i * 7919u) % 1000u) / 1000.0f - 0.5f;
    {
        const double start = cnp_now();
        do {
            const double t0 = now(n_threads);
            double gf;
#pragma omp parallel num_threads(n_threads)
            {
                float *m = buf + sz * 3 * (size_t)omp_get_thread_num();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0f, m,
                            dim, m + sz, dim, 0.0f, m + 2 * sz, dim);
            }
            gf = 2.0 * dim * (double)dim * dim * n_threads / (now(n_threads) - t0) / 1e9;
            if (gf > best)
                best = gf;
        } while (cnp_now() - start < min_time);
    }
    free(buf);
    return best;
}

/* The same with canopy's own GEMM (where the CPU has AVX-512F): every
 * thread multiplies its own packed dim x dim A by a dense dim x dim B. */
static double canopy_gemm_ceiling(int n_threads, int dim, double min_time, cnp_isa isa)
{
    const size_t sz = (size_t)dim * dim;
    double best = 0.0;
    cnp_ctx ctx;
    cnp_gemm_a pa;
    float *a, *b, *c, *pack;
    cnp_ctx_clear(&ctx);
    a = cnp_aligned_alloc(&ctx, sz, sizeof(float), "A");
    b = cnp_aligned_alloc(&ctx, sz * (size_t)n_threads, sizeof(float), "B");
    c = cnp_aligned_alloc(&ctx, sz * (size_t)n_threads, sizeof(float), "C");
    if (!a || !b || !c || cnp_gemm_a_pack(&ctx, &pa, a, dim, dim, (size_t)dim) != CNP_OK) {
        cnp_aligned_free(a);
        cnp_aligned_free(b);
        cnp_aligned_free(c);
        return 0.0;
    }
    pa.isa = isa;
    pack = cnp_aligned_alloc(&ctx, cnp_gemm_pack_floats(&pa) * (size_t)n_threads, sizeof(float),
                             "pack");
    if (pack) {
        const double start = cnp_now();
        cnp_gemm_b src = { 0 };
        cnp_gemm_epi e = { 0 };
        do {
            const double t0 = now(n_threads);
            double gf;
#pragma omp parallel num_threads(n_threads) firstprivate(src)
            {
                const int t = omp_get_thread_num();
                src.x = b + sz * (size_t)t;
                src.ld = (size_t)dim;
                cnp_gemm_run(&pa, &src, c + sz * (size_t)t, (size_t)dim, 0, dim, 0, (size_t)dim,
                             &e, pack + cnp_gemm_pack_floats(&pa) * (size_t)t);
            }
            gf = 2.0 * dim * (double)dim * dim * n_threads / (now(n_threads) - t0) / 1e9;
            if (gf > best)
                best = gf;
        } while (cnp_now() - start < min_time);
    }
    cnp_gemm_a_release(&pa);
    cnp_aligned_free(pack);
    cnp_aligned_free(a);
    cnp_aligned_free(b);
    cnp_aligned_free(c);
    return best;
}

typedef struct result {
    double seconds;  /* one call */
    double gflop;    /* one call */
} result;

/* Times the layer under nplans (1 or 2) plan options, the plans' calls
 * alternated; r[p] for o[p]. */
static int bench_layer(const layer *l, int batch, const cnp_conv_opts *o, int nplans,
                       double min_time, result *r)
{
    cnp_conv_shape s = { 0 };
    cnp_ctx ctx;
    cnp_conv_plan *plan[2] = {NULL, NULL};
    float *x = NULL, *w = NULL, *b = NULL, *y = NULL, *scratch = NULL;
    size_t xn, wn, yn, sn = 1;
    double best[2] = {1e30, 1e30};
    const int n_threads = o[0].n_threads;
    int ok = 0;

    cnp_ctx_clear(&ctx);
    s.N = batch; s.C = l->C; s.H = s.W = l->H; s.K = l->K; s.R = s.S = l->R;
    s.stride_h = s.stride_w = l->stride;
    s.pad_t = s.pad_l = s.pad_b = s.pad_r = l->pad;
    s.dil_h = s.dil_w = 1;
    if (!cnp_conv_shape_finish(&s))
        return 0;
    xn = (size_t)s.C * s.N * s.H * s.W;
    wn = (size_t)s.K * s.C * s.R * s.S;
    yn = (size_t)s.K * s.N * s.P * s.Q;
    x = cnp_aligned_alloc(&ctx, xn, sizeof(float), "x");
    w = cnp_aligned_alloc(&ctx, wn, sizeof(float), "w");
    b = cnp_aligned_alloc(&ctx, (size_t)s.K, sizeof(float), "b");
    y = cnp_aligned_alloc(&ctx, yn, sizeof(float), "y");
    if (!x || !w || !b || !y)
        goto cleanup;
    for (size_t i = 0; i < xn; i++)
        x[i] = (float)((i * 2654435761u) % 2001u) / 1000.0f - 1.0f;
    for (size_t i = 0; i < wn; i++)
        w[i] = (float)((i * 40503u) % 2001u) / 100000.0f - 0.01f;
    for (int p = 0; p < nplans; p++) {
        plan[p] = cnp_conv_plan_new_opts(&ctx, &s, w, b, &o[p]);
        if (!plan[p])
            goto cleanup;
        if (cnp_conv_plan_scratch_floats(plan[p]) + 1 > sn)
            sn = cnp_conv_plan_scratch_floats(plan[p]) + 1;
    }
    scratch = cnp_aligned_alloc(&ctx, sn, sizeof(float), "scratch");
    if (!scratch)
        goto cleanup;
    for (int p = 0; p < nplans; p++)
        cnp_conv_run(plan[p], y, x, batch, NULL, CNP_ACT_RELU, scratch);  /* warm up */
    {
        const double start = cnp_now();
        do {
            for (int p = 0; p < nplans; p++) {
                const double t0 = now(n_threads);
                double t;
                cnp_conv_run(plan[p], y, x, batch, NULL, CNP_ACT_RELU, scratch);
                t = now(n_threads) - t0;
                if (t < best[p])
                    best[p] = t;
            }
        } while (cnp_now() - start < min_time * nplans);
    }
    for (int p = 0; p < nplans; p++) {
        r[p].seconds = best[p];
        r[p].gflop = 2.0 * s.K * (double)s.C * s.R * s.S * (double)s.N * s.P * s.Q / 1e9;
    }
    ok = 1;

cleanup:
    if (!ok)
        fprintf(stderr, "bench_kernels: %s: %s\n", l->name, ctx.msg);
    cnp_conv_plan_free(plan[0]);
    cnp_conv_plan_free(plan[1]);
    cnp_aligned_free(scratch);
    cnp_aligned_free(x);
    cnp_aligned_free(w);
    cnp_aligned_free(b);
    cnp_aligned_free(y);
    return ok;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_kernels [--model 50|18|all] [--size PX] [--batch N] "
                    "[--threads N] [--time SECONDS] [--layer SUBSTRING]\n"
                    "                     [--algo auto|gemm|winograd|openblas] [--cputime]\n"
                    "                     [--precision fp32|bf16|int8] "
                    "[--isa auto|avx512|avx2|generic]\n"
                    "                     [--winograd-precision auto|fp32|bf16|compare]\n");
}

int main(int argc, char **argv)
{
    int size = 128, batch = 1, n_threads = omp_get_max_threads();
    double min_time = 0.3;
    const char *model = "all", *only = NULL;
    cnp_ctx ctx;
    cnp_blas_info bi;
    cnp_conv_algo algo = CNP_CONV_AUTO;
    int bf16 = 0, int8 = 0, compare = 0;
    cnp_wino_prec wino = CNP_WINO_AUTO;
    cnp_isa isa = CNP_ISA_AUTO;
    double ceiling;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--algo") && i + 1 < argc) {
            const char *a = argv[++i];
            algo = !strcmp(a, "gemm")       ? CNP_CONV_GEMM
                   : !strcmp(a, "openblas") ? CNP_CONV_OPENBLAS
                   : !strcmp(a, "winograd") ? CNP_CONV_WINOGRAD
                                            : CNP_CONV_AUTO;
            continue;
        }
        if (!strcmp(argv[i], "--cputime")) {
            use_cputime = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        if (!strcmp(argv[i], "--model"))
            model = argv[++i];
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--time"))
            min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--layer"))
            only = argv[++i];
        else if (!strcmp(argv[i], "--precision"))
        {
            cnp_precision prec;
            if (!cnp_precision_parse(argv[++i], &prec)) {
                fprintf(stderr, "bench_kernels: --precision expects fp32, bf16 or int8, got "
                        "'%s'\n", argv[i]);
                return 2;
            }
            bf16 = prec == CNP_PRECISION_BF16;
            int8 = prec == CNP_PRECISION_INT8;
        }
        else if (!strcmp(argv[i], "--isa")) {
            if (!cnp_isa_parse(argv[++i], &isa)) {
                fprintf(stderr, "bench_kernels: --isa expects auto, avx512, avx2 or generic, "
                                "got '%s'\n", argv[i]);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--winograd-precision")) {
            const char *a = argv[++i];
            compare = !strcmp(a, "compare");
            if (!compare && !cnp_wino_prec_parse(a, &wino)) {
                fprintf(stderr, "bench_kernels: --winograd-precision expects auto, fp32, bf16 "
                                "or compare, got '%s'\n", a);
                return 2;
            }
        }
        else {
            usage();
            return 2;
        }
    }
    if (size < 32 || size % 32 || batch < 1 || n_threads < 1 || min_time <= 0) {
        usage();
        return 2;
    }
    if (compare && (!bf16 || !cnp_engine_bf16_available())) {
        fprintf(stderr, "bench_kernels: --winograd-precision compare needs --precision bf16 "
                        "on a CPU with AVX512_BF16\n");
        return 2;
    }
    /* compare: [0] fp32 Winograd, [1] bf16 Winograd */
    const cnp_conv_opts opts[2] = {
        {n_threads, bf16, algo, isa, compare ? CNP_WINO_FP32 : wino, int8, 0.0f, 8.0f},
        {n_threads, bf16, algo, isa, CNP_WINO_BF16, int8, 0.0f, 8.0f}};
    cnp_ctx_clear(&ctx);
    if (cnp_blas_init(&ctx) != CNP_OK) {
        fprintf(stderr, "bench_kernels: %s\n", ctx.msg);
        return 1;
    }
    cnp_blas_info_get(&bi);
    printf("convolutions: %s, isa %s; OpenBLAS core %s (%s); %d threads, batch %d, %d px\n",
           cnp_isa_for(algo, isa) == CNP_ISA_GENERIC ? "OpenBLAS sgemm + im2col"
           : algo == CNP_CONV_GEMM                    ? "canopy GEMM"
           : algo == CNP_CONV_WINOGRAD ? "Winograd wherever eligible, else GEMM"
                                       : "auto (Winograd / GEMM)",
           cnp_isa_name(cnp_isa_for(algo, isa)), bi.core, bi.selected, n_threads, batch, size);
    ceiling = sgemm_ceiling(n_threads, 1024, min_time * 5);
    if (ceiling <= 0.0) {
        fprintf(stderr, "bench_kernels: out of memory measuring the sgemm ceiling\n");
        return 1;
    }
    printf("sgemm ceiling (OpenBLAS, %d x single-thread 1024^3): %.1f GFLOP/s\n", n_threads,
           ceiling);
    if (cnp_gemm_available())
        printf("canopy GEMM   (AVX-512,  %d x single-thread 1024^3): %.1f GFLOP/s\n", n_threads,
               canopy_gemm_ceiling(n_threads, 1024, min_time * 5, CNP_ISA_AVX512));
    if (cnp_gemm_avx2_available())
        printf("canopy GEMM   (AVX2,     %d x single-thread 1024^3): %.1f GFLOP/s\n", n_threads,
               canopy_gemm_ceiling(n_threads, 1024, min_time * 5, CNP_ISA_AVX2));
    printf("\n");

    for (int d = 0; d < 2; d++) {
        const int depth = d == 0 ? 50 : 18;
        layer ls[MAX_LAYERS];
        int n;
        double total_s = 0.0, total_gf = 0.0;
        if (strcmp(model, "all") && atoi(model) != depth)
            continue;
        n = resnet_layers(ls, depth, size);
        printf("ResNet-%d conv layers at %d px, batch %d\n", depth, size, batch);
        printf("%-24s %5s %5s %5s %4s %3s %8s %9s %8s %6s%s\n", "layer", "C", "HxW", "K", "RxS",
               "x", "GFLOP", "ms", "GFLOP/s", "ceil%",
               compare ? "  fp32-wino ms  bf16/fp32-wino speed" : "");
        for (int i = 0; i < n; i++) {
            result r[2];
            const result *shown = &r[compare];
            if (only && !strstr(ls[i].name, only))
                continue;
            if (!bench_layer(&ls[i], batch, opts, compare ? 2 : 1, min_time, r))
                return 1;
            printf("%-24s %5d %5d %5d %4d %3d %8.3f %9.3f %8.1f %5.0f%%", ls[i].name, ls[i].C,
                   ls[i].H, ls[i].K, ls[i].R, ls[i].count, shown->gflop, shown->seconds * 1e3,
                   shown->gflop / shown->seconds, 100.0 * shown->gflop / shown->seconds / ceiling);
            if (compare)
                printf("  %12.3f  %21.2fx", r[0].seconds * 1e3, r[0].seconds / r[1].seconds);
            printf("\n");
            fflush(stdout);
            total_s += shown->seconds * ls[i].count;
            total_gf += shown->gflop * ls[i].count;
        }
        printf("ResNet-%d all convs: %.2f GFLOP in %.2f ms = %.1f GFLOP/s (%.0f%% of ceiling), "
               "%.1f images/s on convs alone\n\n", depth, total_gf, total_s * 1e3,
               total_gf / total_s, 100.0 * total_gf / total_s / ceiling, batch / total_s);
    }
    return 0;
}
