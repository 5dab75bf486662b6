/* pool.c -- max and average pooling, global pooling (CNHW in).
 *
 * Parallel over the C*N image planes, one OpenMP region per call. Windows
 * are clipped to the image; padding never wins a max, and an average
 * counts the padded positions only with count_include_pad (positions past
 * the bottom/right padding, which ceil mode can produce, never count:
 * PyTorch's rule).
 */
#include "engine/kernels.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>

/* Widest row the vectorised max pool takes (a stack buffer per thread). */
#define POOL_ROW_MAX 4096

/* Below this many input values a call runs on one thread. */
#define POOL_PARALLEL_MIN 32768

static int threads_for(size_t work, int n_threads)
{
    if (n_threads <= 0)
        n_threads = omp_get_max_threads();
    return work < POOL_PARALLEL_MIN ? 1 : n_threads;
}

/* Output rows/columns whose window lies inside the image: [lo, hi). */
static void inner_range(int pad, int stride, int k, int in, int out, int *lo, int *hi)
{
    int a = (pad + stride - 1) / stride;
    int b = in + pad - k < 0 ? 0 : (in + pad - k) / stride + 1;
    if (b > out)
        b = out;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

static void maxpool_plane(float *yp, const float *xp, const cnp_pool_shape *s, int plo,
                          int phi, int qlo, int qhi)
{
    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int h0 = hs < 0 ? 0 : hs, h1 = hs + s->R > s->H ? s->H : hs + s->R;
        const int inner_p = p >= plo && p < phi;
        for (int q = 0; q < s->Q; q++) {
            const int ws = q * s->stride_w - s->pad_l;
            float m = -INFINITY;
            if (inner_p && q >= qlo && q < qhi) {
                const float *w0 = xp + (size_t)hs * s->W + ws;
                for (int h = 0; h < s->R; h++, w0 += s->W)
                    for (int w = 0; w < s->S; w++)
                        if (w0[w] > m || isnan(w0[w]))
                            m = w0[w];
            } else {
                const int ww0 = ws < 0 ? 0 : ws, ww1 = ws + s->S > s->W ? s->W : ws + s->S;
                for (int h = h0; h < h1; h++)
                    for (int w = ww0; w < ww1; w++) {
                        const float v = xp[(size_t)h * s->W + w];
                        if (v > m || isnan(v))
                            m = v;
                    }
            }
            yp[(size_t)p * s->Q + q] = m;
        }
    }
}

#if CNP_X86

#include <immintrin.h>

#define TARGET_AVX512 __attribute__((target("avx512f")))

/* max that keeps a NaN from either side (vmaxps alone returns its second
 * operand when either is NaN). */
static inline __attribute__((always_inline)) TARGET_AVX512 __m512 max_nan(__m512 a, __m512 b)
{
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}

/* Lanes [0, n) of a 16-lane mask. */
static inline __mmask16 first_lanes(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1);
}

/* Max pool of one plane, horizontal stride 1 or 2, rows no wider than
 * POOL_ROW_MAX: per output row, the column-wise max of the window's rows
 * into a row buffer padded with -inf, then the max along each window. */
static TARGET_AVX512 void maxpool_plane_avx512(float *yp, const float *xp,
                                               const cnp_pool_shape *s)
{
    /* rb[j] = max over the window rows at input column j - pad_l */
    float rb[POOL_ROW_MAX + 96] __attribute__((aligned(64)));
    const int sw = s->stride_w, pl = s->pad_l;
    const int span = (s->Q - 1) * sw + s->S;         /* window columns covered */
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                           2, 0);

    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int h0 = hs < 0 ? 0 : hs, h1 = hs + s->R > s->H ? s->H : hs + s->R;
        for (int j = 0; j < span + 64; j += 16)
            _mm512_storeu_ps(rb + j, ninf);
        for (int iw = 0; iw < s->W && iw + pl < span; iw += 16) {
            const __mmask16 m = first_lanes(s->W - iw);
            __m512 v = ninf;
            for (int h = h0; h < h1; h++)
                v = max_nan(_mm512_mask_loadu_ps(ninf, m, xp + (size_t)h * s->W + iw), v);
            _mm512_storeu_ps(rb + pl + iw, v);     /* lanes past the image: -inf */
        }
        for (int q = 0; q < s->Q; q += 16) {
            __m512 v = ninf;
            for (int t = 0; t < s->S; t++) {
                const float *r = rb + q * sw + t;
                const __m512 w = sw == 1 ? _mm512_loadu_ps(r)
                                         : _mm512_permutex2var_ps(_mm512_loadu_ps(r), evens,
                                                                  _mm512_loadu_ps(r + 16));
                v = max_nan(w, v);
            }
            _mm512_mask_storeu_ps(yp + (size_t)p * s->Q + q, first_lanes(s->Q - q), v);
        }
    }
}

#define TARGET_AVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) TARGET_AVX2 __m256 max_nan8(__m256 a, __m256 b)
{
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

/* Lanes [0, n) of an 8-lane mask (all bits set in a lane that is on). */
static inline __attribute__((always_inline)) TARGET_AVX2 __m256i first_lanes8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* maxpool_plane_avx512 in 8 lanes, for CPUs with AVX2 only. */
static TARGET_AVX2 void maxpool_plane_avx2(float *yp, const float *xp, const cnp_pool_shape *s)
{
    float rb[POOL_ROW_MAX + 96] __attribute__((aligned(32)));
    const int sw = s->stride_w, pl = s->pad_l;
    const int span = (s->Q - 1) * sw + s->S;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);

    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int h0 = hs < 0 ? 0 : hs, h1 = hs + s->R > s->H ? s->H : hs + s->R;
        for (int j = 0; j < span + 64; j += 8)
            _mm256_storeu_ps(rb + j, ninf);
        for (int iw = 0; iw < s->W && iw + pl < span; iw += 8) {
            const __m256i m = first_lanes8(s->W - iw);
            __m256 v = ninf;
            for (int h = h0; h < h1; h++) {
                const __m256 x = _mm256_maskload_ps(xp + (size_t)h * s->W + iw, m);
                v = max_nan8(_mm256_blendv_ps(ninf, x, _mm256_castsi256_ps(m)), v);
            }
            _mm256_storeu_ps(rb + pl + iw, v);
        }
        for (int q = 0; q < s->Q; q += 8) {
            __m256 v = ninf;
            for (int t = 0; t < s->S; t++) {
                const float *r = rb + q * sw + t;
                __m256 w;
                if (sw == 1) {
                    w = _mm256_loadu_ps(r);
                } else { /* the even lanes of r[0..15], in order */
                    const __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(r), _mm256_loadu_ps(r + 8),
                                                       _MM_SHUFFLE(2, 0, 2, 0));
                    w = _mm256_castpd_ps(
                        _mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
                }
                v = max_nan8(w, v);
            }
            _mm256_maskstore_ps(yp + (size_t)p * s->Q + q, first_lanes8(s->Q - q), v);
        }
    }
}

#endif

void cnp_maxpool2d(float *y, const float *x, const cnp_pool_shape *s, const cnp_exec *ex)
{
    const int n_threads = ex->n_threads;
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const long planes = (long)s->C * s->N;
    int plo, phi, qlo, qhi;

#if CNP_X86
    const int span = (s->Q - 1) * s->stride_w + s->S;
    if ((s->stride_w == 1 || s->stride_w == 2) && span <= POOL_ROW_MAX &&
        s->pad_l + s->W <= POOL_ROW_MAX && (ex->avx512 || ex->avx2)) {
        if (ex->avx512) {
#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
            for (long i = 0; i < planes; i++)
                maxpool_plane_avx512(y + (size_t)i * PQ, x + (size_t)i * HW, s);
        } else {
#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
            for (long i = 0; i < planes; i++)
                maxpool_plane_avx2(y + (size_t)i * PQ, x + (size_t)i * HW, s);
        }
        return;
    }
#endif
    inner_range(s->pad_t, s->stride_h, s->R, s->H, s->P, &plo, &phi);
    inner_range(s->pad_l, s->stride_w, s->S, s->W, s->Q, &qlo, &qhi);
#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
    for (long i = 0; i < planes; i++)
        maxpool_plane(y + (size_t)i * PQ, x + (size_t)i * HW, s, plo, phi, qlo, qhi);
}

static void avgpool_plane(float *yp, const float *xp, const cnp_pool_shape *s)
{
    for (int p = 0; p < s->P; p++) {
        const int hs = p * s->stride_h - s->pad_t;
        const int he = hs + s->R;
        const int h0 = hs < 0 ? 0 : hs, h1 = he > s->H ? s->H : he;
        const int hpad = (he < s->H + s->pad_b ? he : s->H + s->pad_b) - hs;
        for (int q = 0; q < s->Q; q++) {
            const int ws = q * s->stride_w - s->pad_l;
            const int we = ws + s->S;
            const int w0 = ws < 0 ? 0 : ws, w1 = we > s->W ? s->W : we;
            const int wpad = (we < s->W + s->pad_r ? we : s->W + s->pad_r) - ws;
            const int cnt = s->count_include_pad ? hpad * wpad : (h1 - h0) * (w1 - w0);
            float sum = 0.0f;
            for (int h = h0; h < h1; h++) {
                const float *row = xp + (size_t)h * s->W;
                for (int w = w0; w < w1; w++)
                    sum += row[w];
            }
            yp[(size_t)p * s->Q + q] = cnt > 0 ? sum / (float)cnt : 0.0f;
        }
    }
}

void cnp_avgpool2d(float *y, const float *x, const cnp_pool_shape *s, const cnp_exec *ex)
{
    const int n_threads = ex->n_threads;
    const size_t HW = (size_t)s->H * s->W, PQ = (size_t)s->P * s->Q;
    const long planes = (long)s->C * s->N;

#pragma omp parallel for schedule(static) num_threads(threads_for(planes * HW, n_threads))
    for (long i = 0; i < planes; i++)
        avgpool_plane(y + (size_t)i * PQ, x + (size_t)i * HW, s);
}

void cnp_global_avgpool(float *y, const float *x, int N, int C, int HW, int n_threads)
{
#pragma omp parallel for schedule(static) \
    num_threads(threads_for((size_t)N * C * HW, n_threads))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            /* Eight partial sums: vectorisable without reassociation flags,
             * and more accurate than one running sum. */
            float acc[8] = { 0 };
            float sum = 0.0f;
            int i = 0;
            for (; i + 8 <= HW; i += 8)
                for (int l = 0; l < 8; l++)
                    acc[l] += xp[i + l];
            for (; i < HW; i++)
                acc[i & 7] += xp[i];
            for (int l = 0; l < 8; l++)
                sum += acc[l];
            y[(size_t)n * C + c] = sum / (float)HW;
        }
}

void cnp_global_maxpool(float *y, const float *x, int N, int C, int HW, int n_threads)
{
#pragma omp parallel for schedule(static) \
    num_threads(threads_for((size_t)N * C * HW, n_threads))
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *xp = x + ((size_t)c * N + n) * (size_t)HW;
            float m = -INFINITY;
            int nan = 0;
            /* Branch-free (a data-dependent branch per value cost ~15
             * cycles each); any NaN makes the result NaN. */
            for (int i = 0; i < HW; i++) {
                const float v = xp[i];
                m = v > m ? v : m;
                nan |= v != v;
            }
            y[(size_t)n * C + c] = nan ? NAN : m;
        }
}
