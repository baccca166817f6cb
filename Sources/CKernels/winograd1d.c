// The transforms of Winograd's F(4, 5) along one axis, for 1×5 and 5×1 stride-1 convolutions (see
// CKernels.h): each run of 4 outputs along the kernel's axis is Aᵀ[(G g) ⊙ (Bᵀ d)] of the 8 inputs d
// under it, eight products per four outputs instead of twenty. Interpolation points 0, ±1, ±2, ±½, ∞;
// Bᵀ's rows are scaled to integers and G (applied once to the weights, in WeightPacking.swift) carries the
// factors:
//   Bᵀ = [4 0 −21 0 21 0 −4 0;  0 −4 −4 17 17 −4 −4 0;  0 4 −4 −17 17 4 −4 0;  0 2 1 −10 −5 8 4 0;
//         0 −2 1 10 −5 −8 4 0;  0 4 8 −5 −10 1 2 0;  0 −4 8 5 −10 −1 2 0;  0 −4 0 21 0 −21 0 4]
//   Aᵀ = [1 1 1 1 1 1 1 0;  0 1 −1 2 −2 ½ −½ 0;  0 1 1 4 4 ¼ ¼ 0;  0 1 −1 8 −8 ⅛ −⅛ 1]
// The products over the input channels run on mdf_igemm; these loops only transform. Each loop runs
// over tiles with unit-stride loads and stores, so the compiler vectorizes it; the AVX2 entry points
// compile the same bodies for 8-wide registers.
#include <string.h>
#include "CKernels.h"
#include "dispatch.h"
#include "wino_store.h"

/// Bᵀ d of one tile, stored to v[ξ · vs].
static inline __attribute__((always_inline))
void bt8(float *restrict v, long vs, float d0, float d1, float d2, float d3, float d4, float d5, float d6, float d7) {
    v[0 * vs] = 4 * (d0 - d6) + 21 * (d4 - d2);
    v[1 * vs] = 17 * (d3 + d4) - 4 * (d1 + d2 + d5 + d6);
    v[2 * vs] = 17 * (d4 - d3) + 4 * (d1 - d2 + d5 - d6);
    v[3 * vs] = 2 * d1 + d2 - 10 * d3 - 5 * d4 + 8 * d5 + 4 * d6;
    v[4 * vs] = -2 * d1 + d2 + 10 * d3 - 5 * d4 - 8 * d5 + 4 * d6;
    v[5 * vs] = 4 * d1 + 8 * d2 - 5 * d3 - 10 * d4 + d5 + 2 * d6;
    v[6 * vs] = -4 * d1 + 8 * d2 + 5 * d3 - 10 * d4 - d5 + 2 * d6;
    v[7 * vs] = 4 * (d7 - d1) + 21 * (d3 - d5);
}

/// Aᵀ m of one tile (m[ξ · ms]) into o[0..<4].
static inline __attribute__((always_inline))
void at4(float o[4], const float *restrict m, long ms) {
    const float m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms];
    const float m4 = m[4 * ms], m5 = m[5 * ms], m6 = m[6 * ms], m7 = m[7 * ms];
    const float a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4, f = m5 + m6, g = m5 - m6;
    o[0] = m0 + a + c + f;
    o[1] = b + 2 * e + 0.5f * g;
    o[2] = a + 4 * c + 0.25f * f;
    o[3] = b + 8 * e + 0.125f * g + m7;
}

// MARK: along rows (1×5 kernels)

/// Output rows [y0, y1), tw tiles of 4 columns each: v[ξ · vstride + (y − y0) · tw + tx]. Each input
/// row is first split into its four column phases p_q[k] = xpad[4k + q] (scratch: 4 · (tw + 1)).
static inline __attribute__((always_inline))
void input_rows_body(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long y0, long y1, long tw,
                     float *scratch) {
    const long n = tw + 1;
    for (long y = y0; y < y1; y++) {
        float *vr = v + (y - y0) * tw;
        const long row = y - pt;
        if (row < 0 || row >= h) {
            for (int xi = 0; xi < 8; xi++) memset(vr + xi * vstride, 0, (size_t)tw * sizeof(float));
            continue;
        }
        const float *xr = x + row * w;
        for (int q = 0; q < 4; q++) {
            float *p = scratch + q * n;
            for (long k = 0; k < n; k++) {
                const long c = 4 * k + q - pl;
                p[k] = c >= 0 && c < w ? xr[c] : 0.f;
            }
        }
        const float *p0 = scratch, *p1 = p0 + n, *p2 = p1 + n, *p3 = p2 + n;
        for (long tx = 0; tx < tw; tx++)
            bt8(vr + tx, vstride, p0[tx], p1[tx], p2[tx], p3[tx], p0[tx + 1], p1[tx + 1], p2[tx + 1], p3[tx + 1]);
    }
}

static inline __attribute__((always_inline))
void output_row(float *restrict yr, const float *restrict mr, long ms, long t0, long t1, long cols,
                float bias, float slope, const int mode) {
    for (long tx = t0; tx < t1; tx++) {
        float o[4];
        at4(o, mr + tx, ms);
        for (int i = 0; i < 4; i++) if (i < cols) mdf_wino_store(yr + 4 * tx + i, o[i], bias, slope, mode);
    }
}

/// Output rows [y0, y1) of one channel from m[ξ · mstride + (y − y0) · tw + tx].
static inline __attribute__((always_inline))
void output_rows_body(float *y, long ow, const float *m, long mstride, long y0, long y1, long tw,
                      float bias, int act, float slope, int accumulate) {
    const long full = ow / 4, rest = ow - 4 * full;
    const int mode = accumulate ? 2 : act == 1 ? 1 : 0;
    for (long r = y0; r < y1; r++) {
        float *yr = y + r * ow;
        const float *mr = m + (r - y0) * tw;
        if (mode == 0) { output_row(yr, mr, mstride, 0, full, 4, bias, slope, 0); output_row(yr, mr, mstride, full, tw, rest, bias, slope, 0); }
        else if (mode == 1) { output_row(yr, mr, mstride, 0, full, 4, bias, slope, 1); output_row(yr, mr, mstride, full, tw, rest, bias, slope, 1); }
        else { output_row(yr, mr, mstride, 0, full, 4, bias, slope, 2); output_row(yr, mr, mstride, full, tw, rest, bias, slope, 2); }
    }
}

// MARK: along columns (5×1 kernels)

/// Tile rows [ty0, ty1), each of ow tiles (one column, 4 output rows):
/// v[ξ · vstride + (ty − ty0) · ow + x]. Rows outside the input read `zeros` (w floats of 0).
static inline __attribute__((always_inline))
void input_cols_body(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long ow,
                     const float *zeros) {
    // Output column c reads input column c − pl: inside for c in [lo, hi).
    long lo = pl > 0 ? pl : 0, hi = w + pl < ow ? w + pl : ow;
    if (lo > ow) lo = ow;
    if (hi < lo) hi = lo;
    for (long ty = ty0; ty < ty1; ty++) {
        const float *r[8];
        for (int j = 0; j < 8; j++) {
            const long row = 4 * ty + j - pt;
            r[j] = (row >= 0 && row < h ? x + row * w : zeros) - pl;
        }
        float *vr = v + (ty - ty0) * ow;
        for (int xi = 0; xi < 8; xi++) {
            for (long c = 0; c < lo; c++) vr[xi * vstride + c] = 0;
            for (long c = hi; c < ow; c++) vr[xi * vstride + c] = 0;
        }
        for (long c = lo; c < hi; c++)
            bt8(vr + c, vstride, r[0][c], r[1][c], r[2][c], r[3][c], r[4][c], r[5][c], r[6][c], r[7][c]);
    }
}

static inline __attribute__((always_inline))
void output_cols(float *restrict y, long ow, const float *restrict mr, long ms, const int rows,
                 float bias, float slope, const int mode) {
    for (long c = 0; c < ow; c++) {
        float o[4];
        at4(o, mr + c, ms);
        for (int i = 0; i < 4; i++) if (i < rows) mdf_wino_store(y + i * ow + c, o[i], bias, slope, mode);
    }
}

/// Tile rows [ty0, ty1) of one channel (output rows 4ty ..< 4ty + 4, clipped to oh).
static inline __attribute__((always_inline))
void output_cols_body(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1,
                      float bias, int act, float slope, int accumulate) {
    const int mode = accumulate ? 2 : act == 1 ? 1 : 0;
    for (long ty = ty0; ty < ty1; ty++) {
        float *yt = y + 4 * ty * ow;
        const float *mr = m + (ty - ty0) * ow;
        const long rows = oh - 4 * ty;
        if (rows >= 4) {
            if (mode == 0) output_cols(yt, ow, mr, mstride, 4, bias, slope, 0);
            else if (mode == 1) output_cols(yt, ow, mr, mstride, 4, bias, slope, 1);
            else output_cols(yt, ow, mr, mstride, 4, bias, slope, 2);
        } else {
            if (mode == 0) output_cols(yt, ow, mr, mstride, (int)rows, bias, slope, 0);
            else if (mode == 1) output_cols(yt, ow, mr, mstride, (int)rows, bias, slope, 1);
            else output_cols(yt, ow, mr, mstride, (int)rows, bias, slope, 2);
        }
    }
}

// MARK: entry points

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void input_rows_avx2(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long y0, long y1,
                            long tw, float *scratch) {
    input_rows_body(v, vstride, x, h, w, pt, pl, y0, y1, tw, scratch);
}
__attribute__((target("avx2,fma")))
static void input_cols_avx2(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1,
                            long ow, const float *zeros) {
    input_cols_body(v, vstride, x, h, w, pt, pl, ty0, ty1, ow, zeros);
}
__attribute__((target("avx2,fma")))
static void output_rows_avx2(float *y, long ow, const float *m, long mstride, long y0, long y1, long tw,
                             float bias, int act, float slope, int accumulate) {
    output_rows_body(y, ow, m, mstride, y0, y1, tw, bias, act, slope, accumulate);
}
__attribute__((target("avx2,fma")))
static void output_cols_avx2(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1,
                             float bias, int act, float slope, int accumulate) {
    output_cols_body(y, oh, ow, m, mstride, ty0, ty1, bias, act, slope, accumulate);
}
#endif

void mdf_wino5_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long r0, long r1,
                     long oh, long ow, int along_rows, float *scratch, int isa) {
    (void)oh;
    if (along_rows) {
        const long tw = (ow + 3) / 4;
#if defined(__x86_64__)
        if (mdf_use_avx2(isa)) { input_rows_avx2(v, vstride, x, h, w, pt, pl, r0, r1, tw, scratch); return; }
#endif
        input_rows_body(v, vstride, x, h, w, pt, pl, r0, r1, tw, scratch);
    } else {
        memset(scratch, 0, (size_t)w * sizeof(float));
#if defined(__x86_64__)
        if (mdf_use_avx2(isa)) { input_cols_avx2(v, vstride, x, h, w, pt, pl, r0, r1, ow, scratch); return; }
#endif
        input_cols_body(v, vstride, x, h, w, pt, pl, r0, r1, ow, scratch);
    }
}

void mdf_wino5_output(float *y, long oh, long ow, const float *m, long mstride, long r0, long r1, int along_rows,
                      float bias, int act, float slope, int accumulate, int isa) {
    if (along_rows) {
        const long tw = (ow + 3) / 4;
#if defined(__x86_64__)
        if (mdf_use_avx2(isa)) { output_rows_avx2(y, ow, m, mstride, r0, r1, tw, bias, act, slope, accumulate); return; }
#endif
        output_rows_body(y, ow, m, mstride, r0, r1, tw, bias, act, slope, accumulate);
    } else {
#if defined(__x86_64__)
        if (mdf_use_avx2(isa)) { output_cols_avx2(y, oh, ow, m, mstride, r0, r1, bias, act, slope, accumulate); return; }
#endif
        output_cols_body(y, oh, ow, m, mstride, r0, r1, bias, act, slope, accumulate);
    }
}
