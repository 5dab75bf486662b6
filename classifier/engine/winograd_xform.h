/* winograd_xform.h -- the input and output transforms of Winograd's
 * F(4x4, 3x3) (winograd.c), written once over a vector of 16 channels.
 * Internal to classifier/engine: included by winograd.c (AVX-512, one
 * __m512 a vector) and winograd_avx2.c (AVX2 + FMA, a pair of __m256),
 * each of which defines before including it:
 *
 *   WV              the vector type: 16 floats
 *   WINLINE         static inline, always inlined, with the ISA's target
 *   WTARGET         the ISA's target attribute
 *
 * and, as WINLINE functions:
 *
 *   WV   wv_zero(void)
 *   WV   wv_add(WV a, WV b), wv_sub(WV a, WV b)
 *   WV   wv_fma(float a, WV b, WV c)        a * b + c, fused
 *   WV   wv_load(const float *p)            64-byte aligned
 *   void wv_store(float *p, WV v)           64-byte aligned
 *   WV   wv_mask_load(const float *p, ptrdiff_t off, __mmask16 m)
 *   void wv_mask_store(float *p, ptrdiff_t off, __mmask16 m, WV v)
 *                                           lanes m at wino_at(p, off);
 *                                           the others read as zero and
 *                                           never touched
 *   WV   wv_relu(WV v)                      max(0, v), keeping NaN
 *   void wv_transpose16(WV r[16])           in place, 16 x 16
 *   void wv_tiles4(const WV o[4][16], int i, WV row[4])
 *                                           channel i of four 4x4 tiles
 *                                           side by side: row[a] holds
 *                                           their rows a (16 floats)
 *
 * It defines the four steps of a wino_kernels table (winograd_tile.h):
 * band_load, input_tile, output_tile, output_tiles4.
 * Both ISAs compute the same operations in the same order, so their
 * results are bit-identical. */
#ifndef CNP_ENGINE_WINOGRAD_XFORM_H
#define CNP_ENGINE_WINOGRAD_XFORM_H

/* o = B^T d for one column of six (rows of B^T: 4 0 -5 0 1 0 / 0 -4 -4 1 1 0 /
 * 0 4 -4 -1 1 0 / 0 -2 -1 2 1 0 / 0 2 -1 -2 1 0 / 0 4 0 -5 0 1). */
WINLINE void bt6(const WV d[6], WV o[6])
{
    const WV t1 = wv_fma(-4.0f, d[2], d[4]);        /* d4 - 4 d2 */
    const WV t2 = wv_fma(-4.0f, d[1], d[3]);        /* d3 - 4 d1 */
    const WV t3 = wv_sub(d[4], d[2]);
    const WV d31 = wv_sub(d[3], d[1]);
    const WV t4 = wv_add(d31, d31);                 /* 2 (d3 - d1) */
    o[0] = wv_fma(4.0f, d[0], wv_fma(-5.0f, d[2], d[4]));
    o[1] = wv_add(t1, t2);
    o[2] = wv_sub(t1, t2);
    o[3] = wv_add(t3, t4);
    o[4] = wv_sub(t3, t4);
    o[5] = wv_fma(4.0f, d[1], wv_fma(-5.0f, d[3], d[5]));
}

/* o = A^T m for one column of six (rows of A^T: 1 1 1 1 1 0 / 0 1 -1 2 -2 0 /
 * 0 1 1 4 4 0 / 0 1 -1 8 -8 1). */
WINLINE void at6(const WV m[6], WV o[4])
{
    const WV a = wv_add(m[1], m[2]), b = wv_sub(m[1], m[2]);
    const WV c = wv_add(m[3], m[4]), d = wv_sub(m[3], m[4]);
    o[0] = wv_add(wv_add(m[0], a), c);
    o[1] = wv_fma(2.0f, d, b);
    o[2] = wv_fma(4.0f, c, a);
    o[3] = wv_add(wv_fma(8.0f, d, b), m[5]);
}

/* xt[r][j][16] = x[c0 + i][img][ih0 + r][iw0 + j] for channels i < cw
 * (zero outside the image and for i >= cw), j < width. */
static WTARGET void band_load(float *xt, int xw, const wino_call *cl, int img, int ih0, int iw0,
                              int width, int c0, int cw)
{
    const cnp_conv_shape *s = &cl->w->s;
    const size_t HW = (size_t)s->H * s->W, xcols = (size_t)cl->n * HW;
    for (int r = 0; r < 6; r++) {
        const int ih = ih0 + r;
        float *dst = xt + (size_t)r * xw * 16;
        if (ih < 0 || ih >= s->H) {
            for (int j = 0; j < width; j++)
                wv_store(dst + (size_t)j * 16, wv_zero());
            continue;
        }
        for (int jb = 0; jb < width; jb += 16) {
            const int iw = iw0 + jb;
            const __mmask16 m = lane_mask(-iw, s->W - iw);
            WV v[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                v[i] = i < cw ? wv_mask_load(cl->x + (size_t)(c0 + i) * xcols + (size_t)img * HW +
                                                 (size_t)ih * s->W, iw, m)
                              : wv_zero();
            wv_transpose16(v);
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                wv_store(dst + (size_t)(jb + j) * 16, v[j]);
        }
    }
}

/* out = T^T x T for the 6x6 tile x whose (r, u) is the aligned vector
 * at p + r * rs + u * cs, and the 1-D transform f: n = 6 (B^T, bt6) or 4
 * (A^T, at6) outputs from a column of six. Columns first, then rows;
 * out is n x n, row-major. */
WINLINE void sandwich(const float *p, size_t rs, size_t cs, void (*f)(const WV *, WV *), int n,
                      WV *out)
{
    WV t[6][6];                 /* t[i][u]: (T^T x)[i][u] */
#pragma GCC unroll 6
    for (int u = 0; u < 6; u++) {
        WV d[6], o[6];
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++)
            d[r] = wv_load(p + r * rs + u * cs);
        f(d, o);
#pragma GCC unroll 6
        for (int i = 0; i < n; i++)
            t[i][u] = o[i];
    }
#pragma GCC unroll 6
    for (int i = 0; i < n; i++) {
        WV o[6];
        f(t[i], o);
#pragma GCC unroll 6
        for (int j = 0; j < n; j++)
            out[i * n + j] = o[j];
    }
}

/* V[xi][tl][c0 .. c0 + 15] = B^T d B of the tile whose 6x6 input starts at
 * band column j0. */
static WTARGET void input_tile(float *V, size_t vstride, const float *xt, int xw, int j0)
{
    WV v[XI];
    sandwich(xt + (size_t)j0 * 16, (size_t)xw * 16, 16, bt6, 6, v);
#pragma GCC unroll 36
    for (int xi = 0; xi < XI; xi++)
        wv_store(V + (size_t)xi * vstride, v[xi]);
}

/* o[i] = (A^T m A)[a][b] + bias for output channel k0 + i in lane a * 4 + b,
 * from M[.][tl][k0 .. k0 + 15] (its 36 planes mstride apart). */
WINLINE void output_transform(const float *M, size_t mstride, WV bias, WV o[16])
{
    sandwich(M, 6 * mstride, mstride, at6, 4, o);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        o[i] = wv_add(o[i], bias);
    wv_transpose16(o);
}

/* y at float offset off = v (+ residual), then act, lanes m. */
WINLINE void store_out(const wino_call *cl, ptrdiff_t off, __mmask16 m, WV v)
{
    if (cl->residual)
        v = wv_add(v, wv_mask_load(cl->residual, off, m));
    if (cl->act == CNP_ACT_RELU)
        v = wv_relu(v);
    wv_mask_store(cl->y, off, m, v);
}

/* The output tile whose first output is (img, p0, q0), from tile index t. */
WINLINE void tile_origin(const cnp_wino *w, int t, int *img, int *p0, int *q0)
{
    const int per_img = w->TH * w->TW;
    *img = t / per_img;
    *p0 = t % per_img / w->TW * 4;
    *q0 = t % w->TW * 4;
}

/* One output tile t (any position, clipped at the map's edges). */
static WTARGET void output_tile(const wino_call *cl, const float *M, size_t mstride, int t,
                                int k0, int kw)
{
    const cnp_conv_shape *s = &cl->w->s;
    const size_t PQ = (size_t)s->P * s->Q, ycols = (size_t)cl->n * PQ;
    const WV bias = cl->bias ? wv_mask_load(cl->bias + k0, 0, lane_mask(0, kw)) : wv_zero();
    int img, p0, q0;
    WV o[16];

    tile_origin(cl->w, t, &img, &p0, &q0);
    const int qn = s->Q - q0 < 4 ? s->Q - q0 : 4;
    output_transform(M, mstride, bias, o);
    for (int i = 0; i < kw; i++) {
        const size_t base = (size_t)(k0 + i) * ycols + (size_t)img * PQ;
        for (int a = 0; a < 4 && p0 + a < s->P; a++)
            store_out(cl, (ptrdiff_t)(base + (size_t)(p0 + a) * s->Q + (size_t)q0) - 4 * a,
                      lane_mask(4 * a, 4 * a + qn), o[i]);
    }
}

/* Four tiles side by side, wholly inside the map: per channel and row one
 * 16-float store. */
static WTARGET void output_tiles4(const wino_call *cl, const float *M, size_t mstride, int t,
                                  int k0, int kw)
{
    const cnp_wino *w = cl->w;
    const cnp_conv_shape *s = &w->s;
    const size_t PQ = (size_t)s->P * s->Q, ycols = (size_t)cl->n * PQ;
    const WV bias = cl->bias ? wv_mask_load(cl->bias + k0, 0, lane_mask(0, kw)) : wv_zero();
    int img, p0, q0;
    WV o[4][16];

    tile_origin(w, t, &img, &p0, &q0);
    for (int j = 0; j < 4; j++)
        output_transform(M + (size_t)j * w->Ks, mstride, bias, o[j]);
    for (int i = 0; i < kw; i++) {
        const size_t base = (size_t)(k0 + i) * ycols + (size_t)img * PQ + (size_t)p0 * s->Q + q0;
        WV row[4];
        wv_tiles4((const WV(*)[16])o, i, row);
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++)
            store_out(cl, (ptrdiff_t)(base + (size_t)a * s->Q), 0xFFFF, row[a]);
    }
}

#endif
