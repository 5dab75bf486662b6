/* kernel_driver.c -- runs one kernel, its `_ref` twin and (for
 * convolutions) every convolution path on float32 files, so that
 * test_kernels_torch.py can hold them all against PyTorch.
 *
 *   kernel_driver conv DIR N C H W K R S sh sw pt pl pb pr dh dw BIAS RES RELU
 *       in:  x.f32 (C, N*H*W)  w.f32 (K, C, R, S)  [b.f32 (K)]  [r.f32 (K, N*P*Q)]
 *       out: ref.f32, auto.f32, gemm.f32, winograd.f32, openblas.f32 (K, N*P*Q)
 *            (gemm and winograd only where the CPU has AVX-512F)
 *   kernel_driver maxpool|avgpool DIR N C H W R S sh sw pt pl pb pr P Q INCL
 *       in:  x.f32 (C, N*H*W)    out: ref.f32, fast.f32 (C, N*P*Q)
 *   kernel_driver gavg|gmax DIR N C HW
 *       in:  x.f32 (C, N*HW)     out: ref.f32, fast.f32 (N, C)
 *   kernel_driver linear DIR N K M BIAS RELU
 *       in:  x.f32 (N, K)  w.f32 (M, K)  [b.f32 (M)]    out: ref.f32, fast.f32 (N, M)
 *   kernel_driver sigmoid DIR COUNT
 *       in:  x.f32    out: fast.f32
 *
 * Exit 0 on success, 2 on bad arguments, 1 on I/O errors (with a message).
 */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"
#include "engine/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dir;

static float *load(const char *name, size_t n)
{
    char path[4096];
    FILE *f;
    float *v = malloc((n ? n : 1) * sizeof *v);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!v || !f || fread(v, sizeof *v, n, f) != n) {
        fprintf(stderr, "kernel_driver: %s: cannot read %zu floats\n", path, n);
        exit(1);
    }
    fclose(f);
    return v;
}

static void save(const char *name, const float *v, size_t n)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof *v, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "kernel_driver: %s: cannot write\n", path);
        exit(1);
    }
}

static float *scratch_floats(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        fprintf(stderr, "kernel_driver: out of memory\n");
        exit(1);
    }
    return v;
}

static int run_conv(int *a)
{
    cnp_conv_shape s = { 0 };
    static const struct {
        const char *file;
        cnp_conv_algo algo;
        cnp_isa isa;
    } paths[] = {
        { "auto.f32", CNP_CONV_AUTO, CNP_ISA_AUTO },
        { "gemm.f32", CNP_CONV_GEMM, CNP_ISA_AVX512 },
        { "winograd.f32", CNP_CONV_WINOGRAD, CNP_ISA_AVX512 },
        { "gemm-avx2.f32", CNP_CONV_GEMM, CNP_ISA_AVX2 },
        { "winograd-avx2.f32", CNP_CONV_WINOGRAD, CNP_ISA_AVX2 },
        { "openblas.f32", CNP_CONV_OPENBLAS, CNP_ISA_GENERIC },
    };
    float *x, *w, *b = NULL, *r = NULL, *y;
    size_t xn, wn, yn;
    const int bias = a[15], res = a[16];
    const cnp_act act = a[17] ? CNP_ACT_RELU : CNP_ACT_NONE;

    s.N = a[0]; s.C = a[1]; s.H = a[2]; s.W = a[3]; s.K = a[4]; s.R = a[5]; s.S = a[6];
    s.stride_h = a[7]; s.stride_w = a[8];
    s.pad_t = a[9]; s.pad_l = a[10]; s.pad_b = a[11]; s.pad_r = a[12];
    s.dil_h = a[13]; s.dil_w = a[14];
    if (!cnp_conv_shape_finish(&s)) {
        fprintf(stderr, "kernel_driver: convolution has no output\n");
        return 2;
    }
    xn = (size_t)s.C * s.N * s.H * s.W;
    wn = (size_t)s.K * s.C * s.R * s.S;
    yn = (size_t)s.K * s.N * s.P * s.Q;
    x = load("x.f32", xn);
    w = load("w.f32", wn);
    if (bias)
        b = load("b.f32", (size_t)s.K);
    if (res)
        r = load("r.f32", yn);
    y = scratch_floats(yn);
    cnp_conv2d_ref(y, x, w, b, r, act, &s);
    save("ref.f32", y, yn);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        cnp_ctx ctx;
        cnp_conv_plan *p;
        float *sc;
        /* A path the CPU lacks writes no file; the test says which ran. */
        if (cnp_isa_resolve(paths[i].isa) != paths[i].isa && paths[i].isa != CNP_ISA_AUTO)
            continue;
        cnp_ctx_clear(&ctx);
        const cnp_conv_opts opts = {2, 0, paths[i].algo, paths[i].isa, CNP_WINO_AUTO, 0, 0, 0};
        p = cnp_conv_plan_new_opts(&ctx, &s, w, b, &opts);
        if (!p) {
            fprintf(stderr, "kernel_driver: %s\n", ctx.msg);
            return 1;
        }
        /* The contract: 64-byte aligned scratch. */
        sc = cnp_aligned_alloc(&ctx, cnp_conv_plan_scratch_floats(p) + 1, sizeof *sc, "scratch");
        if (!sc) {
            fprintf(stderr, "kernel_driver: %s\n", ctx.msg);
            return 1;
        }
        memset(y, 0, yn * sizeof *y);
        cnp_conv_run(p, y, x, s.N, r, act, sc);
        save(paths[i].file, y, yn);
        cnp_aligned_free(sc);
        cnp_conv_plan_free(p);
    }
    free(x); free(w); free(b); free(r); free(y);
    return 0;
}

static int run_pool(int is_max, int *a)
{
    const cnp_exec ex = cnp_exec_make(2, CNP_CONV_AUTO, CNP_ISA_AUTO);
    cnp_pool_shape s = { 0 };
    float *x, *y;
    size_t xn, yn;
    s.N = a[0]; s.C = a[1]; s.H = a[2]; s.W = a[3]; s.R = a[4]; s.S = a[5];
    s.stride_h = a[6]; s.stride_w = a[7];
    s.pad_t = a[8]; s.pad_l = a[9]; s.pad_b = a[10]; s.pad_r = a[11];
    s.P = a[12]; s.Q = a[13]; s.count_include_pad = a[14];
    xn = (size_t)s.C * s.N * s.H * s.W;
    yn = (size_t)s.C * s.N * s.P * s.Q;
    x = load("x.f32", xn);
    y = scratch_floats(yn);
    if (is_max)
        cnp_maxpool2d_ref(y, x, &s);
    else
        cnp_avgpool2d_ref(y, x, &s);
    save("ref.f32", y, yn);
    if (is_max)
        cnp_maxpool2d(y, x, &s, &ex);
    else
        cnp_avgpool2d(y, x, &s, &ex);
    save("fast.f32", y, yn);
    free(x);
    free(y);
    return 0;
}

static int run_global(int is_max, int *a)
{
    const int N = a[0], C = a[1], HW = a[2];
    float *x = load("x.f32", (size_t)C * N * HW), *y = scratch_floats((size_t)N * C);
    if (is_max)
        cnp_global_maxpool_ref(y, x, N, C, HW);
    else
        cnp_global_avgpool_ref(y, x, N, C, HW);
    save("ref.f32", y, (size_t)N * C);
    if (is_max)
        cnp_global_maxpool(y, x, N, C, HW, 2);
    else
        cnp_global_avgpool(y, x, N, C, HW, 2);
    save("fast.f32", y, (size_t)N * C);
    free(x);
    free(y);
    return 0;
}

static int run_linear(int *a)
{
    const int N = a[0], K = a[1], M = a[2];
    const cnp_act act = a[4] ? CNP_ACT_RELU : CNP_ACT_NONE;
    float *x = load("x.f32", (size_t)N * K), *w = load("w.f32", (size_t)M * K);
    float *b = a[3] ? load("b.f32", (size_t)M) : NULL, *y = scratch_floats((size_t)N * M);
    cnp_linear_ref(y, x, w, b, N, K, M, act);
    save("ref.f32", y, (size_t)N * M);
    const cnp_exec ex = cnp_exec_make(2, CNP_CONV_AUTO, CNP_ISA_AUTO);
    cnp_linear(y, x, w, b, N, K, M, act, &ex);
    save("fast.f32", y, (size_t)N * M);
    free(x); free(w); free(b); free(y);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *op;
        int nargs;
    } ops[] = { { "conv", 18 }, { "maxpool", 15 }, { "avgpool", 15 }, { "gavg", 3 },
                { "gmax", 3 }, { "linear", 5 }, { "sigmoid", 1 } };
    int a[18];
    size_t i;
    if (argc < 3) {
        fprintf(stderr, "usage: kernel_driver OP DIR ARGS... (see the source)\n");
        return 2;
    }
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(argv[1], ops[i].op))
            break;
    if (i == sizeof ops / sizeof ops[0] || argc != 3 + ops[i].nargs) {
        fprintf(stderr, "kernel_driver: bad operation or argument count\n");
        return 2;
    }
    dir = argv[2];
    for (int j = 0; j < ops[i].nargs; j++)
        a[j] = atoi(argv[3 + j]);
    if (!strcmp(argv[1], "conv"))
        return run_conv(a);
    if (!strcmp(argv[1], "maxpool") || !strcmp(argv[1], "avgpool"))
        return run_pool(argv[1][0] == 'm', a);
    if (!strcmp(argv[1], "gavg") || !strcmp(argv[1], "gmax"))
        return run_global(argv[1][1] == 'm', a);
    if (!strcmp(argv[1], "linear"))
        return run_linear(a);
    {
        const size_t n = (size_t)a[0];
        float *x = load("x.f32", n), *y = scratch_floats(n);
        cnp_sigmoid(y, x, n);
        save("fast.f32", y, n);
        free(x);
        free(y);
    }
    return 0;
}
