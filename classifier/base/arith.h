/* arith.h -- small integer helpers shared by every module (header only,
 * inline: they sit in kernels' planning code and in hot loops).
 *
 * Callers check sizes read from files with cnp_mul_size() (base.h) before
 * using these; they assume no overflow.
 */
#ifndef CNP_BASE_ARITH_H
#define CNP_BASE_ARITH_H

#include <stddef.h>

/* a / b rounded up; b > 0. */
static inline size_t cnp_div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* v rounded up to a multiple of m; m > 0. */
static inline size_t cnp_round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

#endif
