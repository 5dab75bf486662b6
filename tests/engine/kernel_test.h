/* kernel_test.h -- helpers shared by the tests/engine C programs: random
 * data, tolerant comparison, automake exit codes. Header-only (static
 * functions), so each test stays one program.
 */
#ifndef CNP_KERNEL_TEST_H
#define CNP_KERNEL_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define KT_PASS 0
#define KT_FAIL 1
#define KT_SKIP 77
#define KT_HARD_ERROR 99

typedef struct kt_rng {
    uint64_t s;
} kt_rng;

static inline uint64_t kt_next(kt_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float kt_uniform(kt_rng *r)
{
    return (float)((double)(kt_next(r) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static inline void kt_fill(kt_rng *r, float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * kt_uniform(r);
}

/* malloc that ends the test with a hard error when memory runs out. */
static inline float *kt_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory allocating %zu floats\n", n);
        exit(KT_HARD_ERROR);
    }
    return p;
}

/* Compares got with want element by element: |got - want| <= atol + rtol *
 * mag[i] (mag: the sum of absolute values of the terms that made want[i],
 * or |want[i]| when mag is NULL). Prints the worst element on failure.
 * Returns 1 when all match. */
static inline int kt_close(const char *what, const float *got, const float *want,
                           const float *mag, size_t n, double atol, double rtol)
{
    double worst = 0.0;
    size_t bad = 0, worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        const double m = mag ? fabs((double)mag[i]) : fabs((double)want[i]);
        const double d = fabs((double)got[i] - (double)want[i]);
        const double tol = atol + rtol * m;
        int ok;
        if (isnan(got[i]) || isnan(want[i]))
            ok = isnan(got[i]) && isnan(want[i]);
        else
            ok = got[i] == want[i] || d <= tol;  /* == for equal infinities */
        if (!ok) {
            const double excess = isnan(d) || isinf(d) ? INFINITY : d / tol;
            if (bad == 0 || excess > worst) {
                worst = excess;
                worst_i = i;
            }
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "FAIL %s: %zu of %zu values differ; worst at %zu: got %.9g, want %.9g"
                " (tolerance %.3g)\n", what, bad, n, worst_i, got[worst_i], want[worst_i],
                atol + rtol * (mag ? fabs((double)mag[worst_i]) : fabs((double)want[worst_i])));
        return 0;
    }
    return 1;
}

/* How many of got's n values are further from other than atol + rtol *
 * |mag[i]|: a reduced-precision kernel must move some outputs off the
 * exact fp32 result (0 means it silently ran fp32). */
static inline size_t kt_count_off(const float *got, const float *other, const float *mag,
                                  size_t n, double atol, double rtol)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)got[i] - (double)other[i]) > atol + rtol * fabs((double)mag[i]))
            off++;
    return off;
}

/* The largest |got - want| / (atol + |mag|) over n values, for the line a
 * passing case prints. */
static inline double kt_worst(const float *got, const float *want, const float *mag, size_t n,
                              double atol)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - (double)want[i]) / (atol + fabs((double)mag[i]));
        worst = e > worst ? e : worst;
    }
    return worst;
}

static inline void kt_abs(float *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = fabsf(src[i]);
}

#endif
