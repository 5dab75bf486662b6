/* winograd_tile.h -- what winograd.c (the plan, the schedules, the
 * AVX-512 transforms) shares with winograd_avx2.c (the same transforms on
 * AVX2 + FMA). Internal to classifier/engine. Both vectorise over 16
 * channels and use the same layouts: a band of input rows [6][xw][16],
 * V and M planes [36][tiles][channels]. A bf16 plan (AVX-512 only) keeps
 * V's planes as bf16, [36][tiles][channels] 16-bit values, so that
 * channels (c, c+1) of a tile are one 32-bit pair for vdpbf16ps; a row of
 * V then takes vs = Cs / 2 floats of scratch. */
#ifndef CNP_ENGINE_WINOGRAD_TILE_H
#define CNP_ENGINE_WINOGRAD_TILE_H

#include "engine/kernels.h"

#include <stddef.h>
#include <stdint.h>

#define XI 36                   /* transformed points per tile (6 x 6) */

typedef struct wino_kernels wino_kernels;

struct cnp_wino {
    cnp_conv_shape s;           /* s.N: the largest batch served */
    int n_threads;
    cnp_isa isa;                /* AVX512 or AVX2 */
    const wino_kernels *kr;     /* its transforms */
    int TH, TW;                 /* 4x4 output tiles per image */
    int Cs, Ks;                 /* C, K rounded up to 16 */
    int tb;                     /* tiles per block (multiple of 8) */
    int phased;                 /* the phased schedule */
    int tsb;                    /* tiles per super-block (phased) */
    int xw;                     /* band width in positions (multiple of 16) */
    int bf16;                   /* U and V in bf16 pairs, fp32 M (AVX-512 BF16 only) */
    int vs;                     /* floats per V row (tile): Cs, or Cs / 2 in bf16 */
    float *u;                   /* XI x cnp_gemm_bpanel_floats(C, K); NULL in bf16 */
    uint32_t *u2;               /* bf16: XI x cnp_gemm_bpanel_pairs(C, K); else NULL */
    size_t u_stride;            /* floats (or, bf16, pairs) per xi of u (u2) */
    size_t slice;               /* scratch floats per thread */
};

typedef struct wino_call {
    const cnp_wino *w;
    float *y;
    const float *x;
    int n;
    const float *bias;
    const float *residual;
    cnp_act act;
} wino_call;

/* The per-ISA steps (contracts at winograd.c's AVX-512 versions):
 *   band_load     xt[r][j][16] = x[c0 + i][img][ih0 + r][iw0 + j], i < cw
 *                 (zeros outside the image and for i >= cw), j < width;
 *   input_tile    V[xi][c0 .. c0 + 15] = B^T d B of the tile at band column j0
 *                 (bf16 plans: as 16 bf16 values, 32 bytes);
 *   output_tile   one output tile t, channels [k0, k0 + kw), clipped;
 *   output_tiles4 four tiles side by side wholly inside the map. */
struct wino_kernels {
    void (*band_load)(float *xt, int xw, const wino_call *cl, int img, int ih0, int iw0,
                      int width, int c0, int cw);
    void (*input_tile)(float *V, size_t vstride, const float *xt, int xw, int j0);
    void (*output_tile)(const wino_call *cl, const float *M, size_t mstride, int t, int k0,
                        int kw);
    void (*output_tiles4)(const wino_call *cl, const float *M, size_t mstride, int t, int k0,
                          int kw);
};

/* winograd_avx2.c: the transforms on AVX2 + FMA (static data). */
extern const wino_kernels cnp_wino_avx2_kernels;

/* p + off floats as an address for masked loads and stores, whose
 * masked-off lanes are never touched (off may point before p). */
static inline const float *wino_at(const float *p, ptrdiff_t off)
{
    return (const float *)((uintptr_t)p + (uintptr_t)(off * (ptrdiff_t)sizeof(float)));
}

#endif
