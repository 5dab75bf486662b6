/* avx512.h -- small AVX-512 helpers shared by the engine's vector kernels
 * (gemm.c, gemm_bf16.c through gemm_tile.h, winograd.c). Internal to
 * classifier/engine. Functions using them are compiled with TARGET_AVX512
 * (the bf16 code in gemm_bf16.c and winograd.c: TARGET_BF16) and only
 * called after cnp_gemm_available() (cnp_gemm_bf16_available()) said the
 * CPU has them. */
#ifndef CNP_ENGINE_AVX512_H
#define CNP_ENGINE_AVX512_H

#include "engine/kernels.h"

#include <stdint.h>

#if CNP_X86

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f")))
/* AVX512_BF16 (vcvtne2ps2bf16, vdpbf16ps) and the AVX-512F/BW it builds on. */
#define TARGET_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

/* Lanes [lo, hi) of a 16-lane mask (clipped to 0..16). */
static inline __mmask16 lane_mask(int lo, int hi)
{
    if (lo < 0)
        lo = 0;
    if (hi > 16)
        hi = 16;
    if (hi <= lo)
        return 0;
    return (__mmask16)((((uint32_t)1 << (hi - lo)) - 1) << lo);
}

#endif  /* CNP_X86 */

#endif
