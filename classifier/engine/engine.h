/* engine.h -- canopy's CPU inference engine: ONNX ResNets in, per-label
 * sigmoid probabilities out. Knows nothing of GDAL.
 *
 * Life cycle:
 *   cnp_model_load()     parse the ONNX file, read canopy's metadata, build the
 *                        graph, fold BatchNormalization, fuse Conv+Add+Relu
 *   cnp_model_prepare()  fix the input size and the largest batch, plan all
 *                        buffers and pack weights (the only allocations), as
 *                        a cnp_prepare_options says
 *   cnp_model_forward()  any number of batches of n <= max_batch chips;
 *                        allocates nothing
 *   cnp_model_free()
 *
 * Chips are float tensors (n, C, H, W), already scaled and normalised as the
 * metadata says (see scene.h, cnp_chip_read). A model is used by one thread
 * at a time; the forward pass itself is OpenMP-parallel.
 */
#ifndef CNP_ENGINE_H
#define CNP_ENGINE_H

#include <stddef.h>
#include <stdio.h>
#include "base/base.h"
#include "onnx/onnx.h"

typedef struct cnp_model cnp_model;

/* cnp_model_meta (what the model file says about itself: labels,
 * thresholds, markers, input size, bands, scaling) is defined by the
 * metadata schema in onnx/onnx.h. */

/* Loads an ONNX model. On success *out is a new model the caller frees with
 * cnp_model_free(). On failure *out is NULL and ctx names the file, the
 * node/operator and what is wrong. */
cnp_status cnp_model_load(cnp_ctx *ctx, const char *path, cnp_model **out);

/* Same from bytes in memory (used by the fuzz target); `name` is used in
 * messages. The bytes are not kept. */
cnp_status cnp_model_load_buffer(cnp_ctx *ctx, const void *data, size_t size,
                                 const char *name, cnp_model **out);

void cnp_model_free(cnp_model *m);

/* The model's metadata; owned by the model. Mutable so that callers can
 * apply command-line overrides (thresholds, markers) before running. */
cnp_model_meta *cnp_model_meta_get(cnp_model *m);
const cnp_model_meta *cnp_model_meta_cget(const cnp_model *m);

/* Flags for cnp_prepare_options.flags. */
enum {
    CNP_PREPARE_TTA = 1u << 0,  /* also plan scratch for forward_tta */
    /* Convolutions on canopy's GEMM in bf16 (weights and activations
     * rounded to bf16, fp32 accumulation, bias, residual and ReLU), where
     * cnp_engine_bf16_available(), and Winograd layers' 36 GEMMs likewise
     * where it pays (cnp_wino_prec); the Winograd transforms, dense layers
     * and everything else stay fp32. Elsewhere the model is prepared in fp32:
     * cnp_model_precision() says which. A program that wants the fp32
     * fallback on any CPU (canopy's CANOPY_NO_BF16) leaves this flag out. */
    CNP_PREPARE_BF16 = 1u << 1,
    /* Convolutions on canopy's GEMM in int8 where cnp_engine_int8_available()
     * and the metadata holds the layer's input range (canopy.int8, from
     * `canopy calibrate`): weights symmetric per output channel, the
     * activations quantised to u8 with that range's scale and zero point,
     * products summed in int32 (vpdpbusd), the epilogue in fp32. Layers
     * without a range, and everything else, as without this flag (fp32, or
     * bf16 with CNP_PREPARE_BF16). cnp_model_prepare() fails with
     * CNP_ERR_USAGE when the model has no canopy.int8 at all. */
    CNP_PREPARE_INT8 = 1u << 2
};

/* How convolutions are computed. AUTO: Winograd for 3x3 stride-1 layers
 * with enough tiles, else canopy's GEMM, else (no AVX-512 or AVX2 + FMA,
 * see cnp_isa) OpenBLAS. The others force a path, for tests and
 * benchmarks (WINOGRAD: wherever the layer is eligible, whatever its
 * size; OPENBLAS: what a CPU without either runs, also for pooling and
 * dense layers, whatever the cnp_isa). */
typedef enum {
    CNP_CONV_AUTO = 0,
    CNP_CONV_GEMM,          /* canopy's GEMM, no Winograd */
    CNP_CONV_OPENBLAS,      /* OpenBLAS sgemm + im2col, plain C elsewhere */
    CNP_CONV_WINOGRAD
} cnp_conv_algo;

/* The precision of Winograd's GEMMs in a bf16 model (CNP_PREPARE_BF16;
 * fp32 models are fp32 throughout). AUTO: the default, bf16 on layers
 * with 32 or more input channels, where it measured faster than fp32
 * Winograd, fp32 below (no faster there; see conv.c). FP32, BF16: every
 * Winograd layer, for tests and benchmarks comparing the two. */
typedef enum {
    CNP_WINO_AUTO = 0,
    CNP_WINO_FP32,
    CNP_WINO_BF16
} cnp_wino_prec;

/* Parses "auto", "fp32" or "bf16"; 0 when s is none of them. */
int cnp_wino_prec_parse(const char *s, cnp_wino_prec *out);

/* Which vector code canopy's kernels use. AUTO: the best this CPU runs
 * (cnp_isa_resolve). AVX512: canopy's GEMM and Winograd on AVX-512F (also
 * bf16 where the CPU has it). AVX2: canopy's fp32 GEMM and Winograd on
 * AVX2 + FMA; pooling and dense layers as on GENERIC. GENERIC: OpenBLAS
 * sgemm on im2col and plain C, what any CPU runs. A path the CPU lacks
 * falls back to GENERIC. */
typedef enum {
    CNP_ISA_AUTO = 0,
    CNP_ISA_AVX512,
    CNP_ISA_AVX2,
    CNP_ISA_GENERIC
} cnp_isa;

/* The path `want` runs on this CPU (never AUTO). */
cnp_isa cnp_isa_resolve(cnp_isa want);
/* The path a plan that forces algo and asks for want runs: GENERIC under
 * CNP_CONV_OPENBLAS (which stands for a CPU without canopy's kernels),
 * else cnp_isa_resolve(want). */
cnp_isa cnp_isa_for(cnp_conv_algo algo, cnp_isa want);
/* "avx512", "avx2", "generic" or "auto": a static string. */
const char *cnp_isa_name(cnp_isa isa);
/* Parses one of cnp_isa_name()'s names; 0 when s is none of them. */
int cnp_isa_parse(const char *s, cnp_isa *out);

/* What cnp_model_prepare() plans for. Zero fields other than the sizes
 * mean the defaults. */
typedef struct cnp_prepare_options {
    int max_batch;          /* largest batch forward() takes, 1..2^20 */
    int height, width;      /* input size in pixels, >= 32 */
    int n_threads;          /* threads weights are packed for; <= 0: all cores */
    unsigned flags;         /* CNP_PREPARE_* */
    cnp_conv_algo algo;     /* CNP_CONV_AUTO unless a test or benchmark forces one */
    cnp_isa isa;            /* CNP_ISA_AUTO: the best this CPU has */
    cnp_wino_prec wino;     /* CNP_WINO_AUTO unless a test or benchmark forces one */
} cnp_prepare_options;

/* Fixes the input size and the largest batch, plans activations and
 * scratch, packs weights, as opt says (read, not kept). May be called
 * again to re-plan. */
cnp_status cnp_model_prepare(cnp_ctx *ctx, cnp_model *m, const cnp_prepare_options *opt);

/* "bf16" when the prepared model's convolutions run in bf16, else "fp32".
 * Static string. */
const char *cnp_model_precision(const cnp_model *m);

/* The vector code the prepared model's kernels run: cnp_isa_name() of
 * its resolved cnp_isa ("avx512", "avx2", "generic"), "none" before
 * cnp_model_prepare(). Static string. */
const char *cnp_model_isa(const cnp_model *m);

/* 1 when CNP_PREPARE_BF16 takes effect on this CPU: AVX-512F, BW and
 * AVX512_BF16. */
int cnp_engine_bf16_available(void);
/* 1 when CNP_PREPARE_INT8 takes effect on this CPU: AVX-512F, BW and
 * AVX512_VNNI. */
int cnp_engine_int8_available(void);

/* int8 calibration. With on = 1 every later forward pass (of a model
 * prepared in fp32) records the least and the greatest value of each
 * activation a convolution reads; on = 0 stops and forgets. CNP_OK, or
 * CNP_ERR_NOMEM in ctx. */
cnp_status cnp_model_observe(cnp_ctx *ctx, cnp_model *m, int on);
/* The ranges recorded since cnp_model_observe(on = 1), over `chips`
 * chips, as the value of the canopy.int8 metadata key (onnx.h): a new
 * string the caller frees with free(), or NULL with ctx set
 * (CNP_ERR_USAGE when no pass was observed, CNP_ERR_FORMAT when an
 * activation overflowed to infinity, CNP_ERR_NOMEM). */
char *cnp_model_int8_json(cnp_ctx *ctx, const cnp_model *m, long chips);

/* Runs n (1..max_batch) chips: input (n, C, H, W) normalised floats, probs
 * (n, n_labels) sigmoid probabilities. Both buffers are the caller's.
 * Allocates nothing. */
cnp_status cnp_model_forward(cnp_ctx *ctx, cnp_model *m, const float *input,
                             int n, float *probs);

/* D4 test-time augmentation: the mean of the probabilities over the 8
 * rotations/flips of each chip (square input; needs CNP_PREPARE_TTA).
 * Same buffers and ownership as cnp_model_forward(). */
cnp_status cnp_model_forward_tta(cnp_ctx *ctx, cnp_model *m, const float *input,
                                 int n, float *probs);

/* Per-layer profile (for `canopy bench --profile`): with on = 1 every
 * later forward pass also times each node; on = 0 stops and forgets. The
 * buffer is the model's. CNP_OK or CNP_ERR_NOMEM in ctx. */
cnp_status cnp_model_profile(cnp_ctx *ctx, cnp_model *m, int on);
/* Writes the profile so far to f: one line per node (operator, shapes,
 * kernel path, ms per pass, GFLOP/s, share of the total). */
void cnp_model_profile_print(const cnp_model *m, FILE *f);

/* Summary for `canopy info`. Strings are owned by the model. */
typedef struct cnp_model_info {
    const char *path;
    const char *arch;          /* e.g. "ResNet (50 conv, bottleneck) + fastai head" */
    int opset;
    const char *producer;      /* producer_name producer_version */
    const char *input_name;
    const char *output_name;
    int n_nodes;               /* ONNX nodes */
    int n_ops;                 /* operator kinds used */
    const char *const *op_names; /* (n_ops) */
    const int *op_counts;        /* (n_ops) */
    int n_conv;                /* convolutions after fusion */
    int n_fused_bn;            /* BatchNormalizations folded at load */
    int n_fused_add;           /* Add(+Relu) fused into a Conv */
    size_t n_params;           /* weights and biases after folding */
    double gflops;             /* per chip at the planned (or metadata) size */
} cnp_model_info;

void cnp_model_info_get(const cnp_model *m, cnp_model_info *info);

/* The GEMM back end: OpenBLAS core name ("SkylakeX", "Haswell", ...), how
 * it was chosen, and whether the start-up self-test passed. Static strings. */
typedef struct cnp_blas_info {
    const char *library;   /* "OpenBLAS 0.3.21 ..." (openblas_get_config) */
    const char *core;      /* openblas_get_corename() */
    const char *selected;  /* "autodetected", "OPENBLAS_CORETYPE set by the user", ... */
    int selftest_ok;       /* 1 passed, 0 failed, -1 not run */
    const char *conv;      /* which kernels run the convolutions */
    const char *bf16;      /* which precisions this CPU runs */
} cnp_blas_info;

/* Runs the BLAS self-test once (sgemm against a naive reference on awkward
 * shapes); records CNP_ERR_INTERNAL naming the core if it computes wrong
 * results. Sets OpenBLAS to one thread: canopy parallelises with OpenMP.
 * Loading and preparing a model do not run it: a program calls it once
 * before it trusts results (the canopy CLI does, for the commands that
 * run models). */
cnp_status cnp_blas_init(cnp_ctx *ctx);
void cnp_blas_info_get(cnp_blas_info *info);

/* The OPENBLAS_CORETYPE canopy would choose for this CPU when OpenBLAS
 * fell back to generic kernels, or NULL when nothing needs to change or
 * `user_coretype` (the variable's value in the environment, NULL when
 * unset) is a choice already made. The CLI uses it to re-execute itself
 * with the variable set, since OpenBLAS reads it only when it loads.
 * Static string. */
const char *cnp_blas_preferred_coretype(const char *user_coretype);

#endif
