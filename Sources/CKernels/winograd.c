// The transforms of Winograd's F(2×2, 3×3) convolution (see CKernels.h). For a 4 × 4 input patch d
// and a 3 × 3 kernel g, the 2 × 2 outputs are Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 −1 −1],
// sixteen products per four outputs instead of thirty-six. The products over the input channels
// are sixteen matrix products, which run on mdf_igemm; these loops only transform. Each loop
// runs over a row of tiles with unit-stride loads and stores, so the compiler vectorizes it; the
// AVX2 entry points compile the same bodies for 8-wide registers.
#include "CKernels.h"
#include "dispatch.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// Bᵀ d B of one row of tiles. r0…r3: the patch rows; within each, the even and odd padded
/// columns (e, o) so that tile tx reads e[tx], o[tx], e[tx + 1], o[tx + 1].
static inline __attribute__((always_inline))
void input_row(float *restrict v, long vstride, const float *const e[4], const float *const o[4], long tw) {
    for (long tx = 0; tx < tw; tx++) {
        float d[4][4], t[4][4];
        for (int i = 0; i < 4; i++) { d[i][0] = e[i][tx]; d[i][1] = o[i][tx]; d[i][2] = e[i][tx + 1]; d[i][3] = o[i][tx + 1]; }
        for (int j = 0; j < 4; j++) {
            t[0][j] = d[0][j] - d[2][j]; t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j]; t[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) {
            v[(4 * i + 0) * vstride + tx] = t[i][0] - t[i][2];
            v[(4 * i + 1) * vstride + tx] = t[i][1] + t[i][2];
            v[(4 * i + 2) * vstride + tx] = t[i][2] - t[i][1];
            v[(4 * i + 3) * vstride + tx] = t[i][1] - t[i][3];
        }
    }
}

/// Splits padded row r (x's row r − pt, zero outside 0..<h) into its even and odd columns:
/// e[k] = xpad[r][2k], o[k] = xpad[r][2k + 1] for k < n, with column c of xpad at x's c − pl.
static inline __attribute__((always_inline))
void split_row(float *restrict e, float *restrict o, const float *x, long h, long w, long r, long pt, long pl, long n) {
    const long row = r - pt;
    if (row < 0 || row >= h) { for (long k = 0; k < n; k++) { e[k] = 0; o[k] = 0; } return; }
    const float *xr = x + row * w;
    // Interior k: both 2k − pl and 2k + 1 − pl inside [0, w).
    long k0 = (pl + 1) / 2, k1 = (w + pl) / 2;   // k ≥ k0 ⇔ 2k − pl ≥ 0; k < k1 ⇔ 2k + 1 − pl ≤ w − 1
    if (k0 > n) k0 = n;
    if (k1 > n) k1 = n;
    if (k1 < k0) k1 = k0;
    for (long k = 0; k < k0; k++) {
        const long c = 2 * k - pl;
        e[k] = c >= 0 && c < w ? xr[c] : 0; o[k] = c + 1 >= 0 && c + 1 < w ? xr[c + 1] : 0;
    }
    const float *xs = xr + 2 * k0 - pl;
    for (long k = k0; k < k1; k++) { e[k] = xs[2 * (k - k0)]; o[k] = xs[2 * (k - k0) + 1]; }
    for (long k = k1; k < n; k++) {
        const long c = 2 * k - pl;
        e[k] = c >= 0 && c < w ? xr[c] : 0; o[k] = c + 1 >= 0 && c + 1 < w ? xr[c + 1] : 0;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static inline void input_row_z(float *restrict v, long vstride, const float *const e[4], const float *const o[4], long tw);
#endif

/// Tile rows [ty0, ty1): each tile row's four padded input rows, split into even and odd columns,
/// sit in `scratch` (8 · (tw + 1) floats, stays in L1), padded row r in slot r mod 4; consecutive
/// tile rows share two rows, so each row after the first tile row's is split once. `wide` (constant):
/// the rows go through input_row_z (AVX-512 callers only), else input_row.
static inline __attribute__((always_inline))
void input_body(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                float *scratch, const int wide) {
    const long n = tw + 1;
    for (long ty = ty0; ty < ty1; ty++) {
        const float *e[4], *o[4];
        for (int i = 0; i < 4; i++) {
            const long r = 2 * ty + i;
            float *ei = scratch + 2 * (r & 3) * n, *oi = ei + n;
            if (ty == ty0 || i >= 2) split_row(ei, oi, x, h, w, r, pt, pl, n);
            e[i] = ei; o[i] = oi;
        }
#if defined(__x86_64__)
        if (wide) { input_row_z(v + (ty - ty0) * tw, vstride, e, o, tw); continue; }
#endif
        input_row(v + (ty - ty0) * tw, vstride, e, o, tw);
    }
}

/// Aᵀ M A of tiles [t0, t1) of one row into output rows y0 and (with `two_rows`) y1, both columns
/// of each tile or (without `two_cols`) the first only. mode 0: y = v + bias; 1: y = leaky(v + bias);
/// 2: y += v. Called with constant flags, so each combination compiles to its own loop.
static inline __attribute__((always_inline))
void output_tiles(float *restrict y0, float *restrict y1, const float *restrict m, long ms, long t0, long t1,
                  float bias, float slope, const int mode, const int two_rows, const int two_cols) {
    for (long tx = t0; tx < t1; tx++) {
        float s[2][4], out[2][2];
        for (int j = 0; j < 4; j++) {
            const float a = m[j * ms + tx], b = m[(4 + j) * ms + tx], c = m[(8 + j) * ms + tx], d = m[(12 + j) * ms + tx];
            s[0][j] = a + b + c; s[1][j] = b - c - d;
        }
        for (int i = 0; i < 2; i++) {
            out[i][0] = s[i][0] + s[i][1] + s[i][2];
            out[i][1] = s[i][1] - s[i][2] - s[i][3];
            for (int k = 0; k < 2; k++) {
                if (mode != 2) out[i][k] += bias;
                if (mode == 1) out[i][k] = out[i][k] > 0 ? out[i][k] : slope * out[i][k];
            }
        }
        for (int k = 0; k < (two_cols ? 2 : 1); k++) {
            if (mode == 2) { y0[2 * tx + k] += out[0][k]; if (two_rows) y1[2 * tx + k] += out[1][k]; }
            else { y0[2 * tx + k] = out[0][k]; if (two_rows) y1[2 * tx + k] = out[1][k]; }
        }
    }
}

#define OUTPUT_CASES(mode)                                                                               \
    if (y1) { output_tiles(y0, y1, mr, mstride, 0, full, bias, slope, mode, 1, 1);                      \
              output_tiles(y0, y1, mr, mstride, full, tw, bias, slope, mode, 1, 0); }                   \
    else    { output_tiles(y0, y1, mr, mstride, 0, full, bias, slope, mode, 0, 1);                      \
              output_tiles(y0, y1, mr, mstride, full, tw, bias, slope, mode, 0, 0); }

static inline __attribute__((always_inline))
void output_body(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                 float bias, int act, float slope, int accumulate) {
    const long full = ow / 2;   // tiles with both columns inside the output
    const int mode = accumulate ? 2 : act == 1 ? 1 : 0;
    for (long ty = ty0; ty < ty1; ty++) {
        const float *mr = m + (ty - ty0) * tw;
        float *y0 = y + 2 * ty * ow, *y1 = 2 * ty + 1 < oh ? y0 + ow : 0;
        if (mode == 0) { OUTPUT_CASES(0) } else if (mode == 1) { OUTPUT_CASES(1) } else { OUTPUT_CASES(2) }
    }
}

#if defined(__x86_64__)
/// The tiles [tx, tx + 16) of a row that exist (tw of them): the lanes of a 16-wide step.
static inline __mmask16 lanes16(long tx, long tw) { return (__mmask16)mdf_lanes16(tw - tx); }

/// The first `n` of 32 consecutive floats (n ≤ 0: none) as the masks of their two 16-float halves.
static inline void lanes32(long n, __mmask16 *lo, __mmask16 *hi) {
    *lo = (__mmask16)mdf_lanes16(n);
    *hi = (__mmask16)mdf_lanes16(n - 16);
}

/// input_row on 16 tiles at a time, the last step masked to the row's tiles: the same additions in
/// the same order, so the same bits.
__attribute__((target("avx512f")))
static inline void input_row_z(float *restrict v, long vstride, const float *const e[4], const float *const o[4], long tw) {
    for (long tx = 0; tx < tw; tx += 16) {
        const __mmask16 m = lanes16(tx, tw);
        __m512 t[4][4];
        __m512 d[4][4];
        for (int i = 0; i < 4; i++) {
            d[i][0] = _mm512_maskz_loadu_ps(m, e[i] + tx);
            d[i][1] = _mm512_maskz_loadu_ps(m, o[i] + tx);
            d[i][2] = _mm512_maskz_loadu_ps(m, e[i] + tx + 1);
            d[i][3] = _mm512_maskz_loadu_ps(m, o[i] + tx + 1);
        }
        for (int j = 0; j < 4; j++) {
            t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]); t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
            t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]); t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; i++) {
            _mm512_mask_storeu_ps(v + (4 * i + 0) * vstride + tx, m, _mm512_sub_ps(t[i][0], t[i][2]));
            _mm512_mask_storeu_ps(v + (4 * i + 1) * vstride + tx, m, _mm512_add_ps(t[i][1], t[i][2]));
            _mm512_mask_storeu_ps(v + (4 * i + 2) * vstride + tx, m, _mm512_sub_ps(t[i][2], t[i][1]));
            _mm512_mask_storeu_ps(v + (4 * i + 3) * vstride + tx, m, _mm512_sub_ps(t[i][1], t[i][3]));
        }
    }
}

/// input_body with input_row_z (split_row compiles for the same registers).
__attribute__((target("avx512f")))
static void input_avx512(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                         float *scratch) {
    input_body(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch, 1);
}

/// output_tiles on 16 tiles at a time, both columns and rows, the last step masked to the outputs
/// that exist: out[i][0] and out[i][1] interleaved into 32 consecutive floats of row i. The same
/// operations in the same order as output_tiles, so the same bits.
__attribute__((target("avx512f")))
static void output_avx512(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                          float bias, int act, float slope, int accumulate) {
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 bv = _mm512_set1_ps(bias), sl = _mm512_set1_ps(slope), zero = _mm512_setzero_ps();
    for (long ty = ty0; ty < ty1; ty++) {
        const float *mr = m + (ty - ty0) * tw;
        float *yr[2] = {y + 2 * ty * ow, 2 * ty + 1 < oh ? y + (2 * ty + 1) * ow : 0};
        for (long tx = 0; tx < tw; tx += 16) {
            const __mmask16 lm = lanes16(tx, tw);
            __mmask16 slo, shi;
            lanes32(ow - 2 * tx, &slo, &shi);
            __m512 s[2][4];
            for (int j = 0; j < 4; j++) {
                const __m512 a = _mm512_maskz_loadu_ps(lm, mr + j * mstride + tx);
                const __m512 b = _mm512_maskz_loadu_ps(lm, mr + (4 + j) * mstride + tx);
                const __m512 c = _mm512_maskz_loadu_ps(lm, mr + (8 + j) * mstride + tx);
                const __m512 d = _mm512_maskz_loadu_ps(lm, mr + (12 + j) * mstride + tx);
                s[0][j] = _mm512_add_ps(_mm512_add_ps(a, b), c);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(b, c), d);
            }
            for (int i = 0; i < 2; i++) {
                if (!yr[i]) break;
                __m512 o0 = _mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]);
                __m512 o1 = _mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]);
                if (!accumulate) {
                    o0 = _mm512_add_ps(o0, bv); o1 = _mm512_add_ps(o1, bv);
                    if (act == 1) {
                        o0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(o0, zero, _CMP_GT_OQ), _mm512_mul_ps(sl, o0), o0);
                        o1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(o1, zero, _CMP_GT_OQ), _mm512_mul_ps(sl, o1), o1);
                    }
                }
                __m512 lo = _mm512_permutex2var_ps(o0, lo_idx, o1), hi = _mm512_permutex2var_ps(o0, hi_idx, o1);
                float *dst = yr[i] + 2 * tx;
                if (accumulate) {
                    lo = _mm512_add_ps(_mm512_maskz_loadu_ps(slo, dst), lo);
                    hi = _mm512_add_ps(_mm512_maskz_loadu_ps(shi, dst + 16), hi);
                }
                _mm512_mask_storeu_ps(dst, slo, lo);
                _mm512_mask_storeu_ps(dst + 16, shi, hi);
            }
        }
    }
}

__attribute__((target("avx2,fma")))
static void input_avx2(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                       float *scratch) {
    input_body(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch, 0);
}
__attribute__((target("avx2,fma")))
static void output_avx2(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                        float bias, int act, float slope, int accumulate) {
    output_body(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate);
}
#endif

void mdf_wino_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                    float *scratch, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx512(isa)) { input_avx512(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch); return; }
    if (mdf_use_avx2(isa)) { input_avx2(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch); return; }
#endif
    input_body(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch, 0);
}

void mdf_wino_output(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                     float bias, int act, float slope, int accumulate, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx512(isa)) { output_avx512(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate); return; }
    if (mdf_use_avx2(isa)) { output_avx2(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate); return; }
#endif
    output_body(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate);
}

void mdf_wino_weight4(float *u, long ustride, const float *const g[4]) {
    // Four kernels side by side (lane r), so each of the 16 outputs is one 4-float store.
    float k[9][4], t[4][3][4];
    for (int i = 0; i < 9; i++) for (int r = 0; r < 4; r++) k[i][r] = g[r] ? g[r][i] : 0.f;
    for (int j = 0; j < 3; j++) {
        for (int r = 0; r < 4; r++) {
            const float a = k[j][r], b = k[3 + j][r], c = k[6 + j][r];
            t[0][j][r] = a; t[1][j][r] = 0.5f * (a + b + c); t[2][j][r] = 0.5f * (a - b + c); t[3][j][r] = c;
        }
    }
    for (int i = 0; i < 4; i++) {
        float *o = u + 4 * i * ustride;
        for (int r = 0; r < 4; r++) {
            const float a = t[i][0][r], b = t[i][1][r], c = t[i][2][r];
            o[r] = a;
            o[ustride + r] = 0.5f * (a + b + c);
            o[2 * ustride + r] = 0.5f * (a - b + c);
            o[3 * ustride + r] = c;
        }
    }
}

void mdf_wino_weight_grad(float *dg, const float *w, long wstride) {
    // t = Gᵀ Ŵ (3 × 4), then dg += t G.
    float t[3][4];
    for (int j = 0; j < 4; j++) {
        const float a = w[j * wstride], b = w[(4 + j) * wstride], c = w[(8 + j) * wstride], d = w[(12 + j) * wstride];
        t[0][j] = a + 0.5f * (b + c); t[1][j] = 0.5f * (b - c); t[2][j] = 0.5f * (b + c) + d;
    }
    for (int i = 0; i < 3; i++) {
        const float a = t[i][0], b = t[i][1], c = t[i][2], d = t[i][3];
        dg[3 * i + 0] += a + 0.5f * (b + c);
        dg[3 * i + 1] += 0.5f * (b - c);
        dg[3 * i + 2] += 0.5f * (b + c) + d;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void weight_grad16_avx512(float *dg, long dstride, const float *w, long wstride, int n) {
    const __mmask16 m = lanes16(0, n);
    const __m512 half = _mm512_set1_ps(0.5f);
    __m512 t[3][4];
    for (int j = 0; j < 4; j++) {
        const __m512 a = _mm512_maskz_loadu_ps(m, w + j * wstride), b = _mm512_maskz_loadu_ps(m, w + (4 + j) * wstride);
        const __m512 c = _mm512_maskz_loadu_ps(m, w + (8 + j) * wstride), d = _mm512_maskz_loadu_ps(m, w + (12 + j) * wstride);
        const __m512 h = _mm512_mul_ps(half, _mm512_add_ps(b, c));
        t[0][j] = _mm512_add_ps(a, h); t[1][j] = _mm512_mul_ps(half, _mm512_sub_ps(b, c)); t[2][j] = _mm512_add_ps(h, d);
    }
    float out[9][16];
    for (int i = 0; i < 3; i++) {
        const __m512 a = t[i][0], b = t[i][1], c = t[i][2], d = t[i][3];
        const __m512 h = _mm512_mul_ps(half, _mm512_add_ps(b, c));
        _mm512_storeu_ps(out[3 * i + 0], _mm512_add_ps(a, h));
        _mm512_storeu_ps(out[3 * i + 1], _mm512_mul_ps(half, _mm512_sub_ps(b, c)));
        _mm512_storeu_ps(out[3 * i + 2], _mm512_add_ps(h, d));
    }
    for (int l = 0; l < n; l++) {
        float *g = dg + l * dstride;
        for (int k = 0; k < 9; k++) g[k] += out[k][l];
    }
}
#endif

void mdf_wino_weight_grad16(float *dg, long dstride, const float *w, long wstride, int n, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx512(isa)) { weight_grad16_avx512(dg, dstride, w, wstride, n); return; }
#endif
    for (int l = 0; l < n; l++) mdf_wino_weight_grad(dg + l * dstride, w + l, wstride);
}

void mdf_prefetch(const float *p, long n) {
    for (long i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}
