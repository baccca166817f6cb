// The transforms of Winograd's F(4×4, 3×3) convolution (see CKernels.h): each 4 × 4 block of
// outputs is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A of the 6 × 6 input patch d under it, thirty-six products
// per sixteen outputs instead of a hundred and forty-four. Interpolation points 0, ±1, ±2, ∞, with
//   Bᵀ = [4 0 −5 0 1 0;  0 −4 −4 1 1 0;  0 4 −4 −1 1 0;  0 −2 −1 2 1 0;  0 2 −1 −2 1 0;  0 4 0 −5 0 1]
//   Aᵀ = [1 1 1 1 1 0;  0 1 −1 2 −2 0;  0 1 1 4 4 0;  0 1 −1 8 −8 1]
// and G (applied once to the weights, in WeightPacking.swift) = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙;
// 1⁄24 −1⁄12 ⅙; 0 0 1]. The products over the input channels run on mdf_igemm; these loops only
// transform, over a row of tiles with unit-stride loads and stores so that the compiler vectorizes
// them; the AVX2 entry points compile the same bodies for 8-wide registers.
#include <string.h>
#include "CKernels.h"
#include "dispatch.h"
#include "wino_store.h"

// The 8-wide helpers below are always inlined, so no vector crosses a call in the portable build,
// where Clang would otherwise warn that passing them without AVX changes the calling convention.
#pragma clang diagnostic ignored "-Wpsabi"

/// Eight tiles side by side: GCC/Clang vector extensions, which compile to the target's registers
/// (ymm under the AVX2 entry points). aligned(4): loads and stores may be unaligned.
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32), aligned(4)));

static inline __attribute__((always_inline)) v8f load8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/// Bᵀ d of six values, and Aᵀ m, for one tile (T = float) or eight (T = v8f).
#define DEFINE_TRANSFORMS(BT, AT, T)                                                                 \
    static inline __attribute__((always_inline)) void BT(T o[6], T d0, T d1, T d2, T d3, T d4, T d5) { \
        o[0] = 4 * d0 - 5 * d2 + d4;                                                                 \
        o[1] = d3 + d4 - 4 * (d1 + d2);                                                              \
        o[2] = d4 - d3 + 4 * (d1 - d2);                                                              \
        o[3] = d4 - d2 + 2 * (d3 - d1);                                                              \
        o[4] = d4 - d2 + 2 * (d1 - d3);                                                              \
        o[5] = 4 * d1 - 5 * d3 + d5;                                                                 \
    }                                                                                                \
    static inline __attribute__((always_inline)) void AT(T o[4], T m0, T m1, T m2, T m3, T m4, T m5) { \
        const T a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;                                  \
        o[0] = m0 + a + c;                                                                           \
        o[1] = b + 2 * e;                                                                            \
        o[2] = a + 4 * c;                                                                            \
        o[3] = b + 8 * e + m5;                                                                       \
    }
DEFINE_TRANSFORMS(bt6, at6, float)
DEFINE_TRANSFORMS(bt6v, at6v, v8f)

/// Splits padded row r (x's row r − pt, zero outside 0..<h) into its four column phases:
/// p[q · n + k] = xpad[r][4k + q] for k < n, with column c of xpad at x's c − pl.
static inline __attribute__((always_inline))
void split4(float *restrict p, const float *x, long h, long w, long r, long pt, long pl, long n) {
    const long row = r - pt;
    if (row < 0 || row >= h) { memset(p, 0, sizeof(float) * (size_t)(4 * n)); return; }
    const float *xr = x + row * w;
    for (int q = 0; q < 4; q++) {
        float *pq = p + q * n;
        // Interior k: 0 ≤ 4k + q − pl < w.
        long k0 = (pl - q + 3) / 4, k1 = (w + pl - q + 3) / 4;
        if (pl - q < 0) k0 = 0;
        if (k0 > n) k0 = n;
        if (k1 > n) k1 = n;
        if (k1 < k0) k1 = k0;
        for (long k = 0; k < k0; k++) pq[k] = 0;
        const float *xs = xr + q - pl;
        for (long k = k0; k < k1; k++) pq[k] = xs[4 * k];
        for (long k = k1; k < n; k++) pq[k] = 0;
    }
}

/// Tile rows [ty0, ty1), tw tiles each: v[ξ · vstride + (ty − ty0) · tw + tx] = (Bᵀ d B)[ξ] for the
/// 6 × 6 padded patch at (4ty, 4tx). scratch: 32 · (tw + 1) floats: padded row r split into its
/// phases in slot r mod 8, so the two rows a tile row shares with the next are split once.
static inline __attribute__((always_inline))
void input_body(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                float *scratch) {
    const long n = tw + 1;
    for (long ty = ty0; ty < ty1; ty++) {
        const float *rows[6];
        for (int i = 0; i < 6; i++) {
            const long r = 4 * ty + i;
            float *slot = scratch + (r & 7) * 4 * n;
            if (ty == ty0 || i >= 2) split4(slot, x, h, w, r, pt, pl, n);
            rows[i] = slot;
        }
        float *vr = v + (ty - ty0) * tw;
        long tx = 0;
        // Eight tiles at a time: each patch row through d B, then the columns through Bᵀ.
        for (; tx + 8 <= tw; tx += 8) {
            v8f r[6][6];
            for (int i = 0; i < 6; i++) {
                const float *p = rows[i] + tx;
                bt6v(r[i], load8(p), load8(p + n), load8(p + 2 * n), load8(p + 3 * n), load8(p + 1), load8(p + n + 1));
            }
            for (int b = 0; b < 6; b++) {
                v8f o[6];
                bt6v(o, r[0][b], r[1][b], r[2][b], r[3][b], r[4][b], r[5][b]);
                for (int a = 0; a < 6; a++) store8(vr + (6 * a + b) * vstride + tx, o[a]);
            }
        }
        for (; tx < tw; tx++) {
            float r[6][6];
            for (int i = 0; i < 6; i++) {
                const float *p = rows[i] + tx;
                bt6(r[i], p[0], p[n], p[2 * n], p[3 * n], p[1], p[n + 1]);
            }
            for (int b = 0; b < 6; b++) {
                float o[6];
                bt6(o, r[0][b], r[1][b], r[2][b], r[3][b], r[4][b], r[5][b]);
                for (int a = 0; a < 6; a++) vr[(6 * a + b) * vstride + tx] = o[a];
            }
        }
    }
}

/// Tiles [t0, t1) of one tile row: rows y + a · ow for a < rows, columns 4tx + b for b < cols.
static inline __attribute__((always_inline))
void output_tiles(float *restrict y, long ow, const float *restrict m, long ms, long t0, long t1,
                  float bias, float slope, const int mode, const int rows, const int cols) {
    for (long tx = t0; tx < t1; tx++) {
        float s[4][6];   // s[a][j] = (Aᵀ M)[a][j]
        for (int j = 0; j < 6; j++) {
            float o[4];
            at6(o, m[j * ms + tx], m[(6 + j) * ms + tx], m[(12 + j) * ms + tx], m[(18 + j) * ms + tx],
                m[(24 + j) * ms + tx], m[(30 + j) * ms + tx]);
            for (int a = 0; a < 4; a++) s[a][j] = o[a];
        }
        for (int a = 0; a < 4; a++) {
            if (a >= rows) break;
            float o[4];
            at6(o, s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5]);
            for (int b = 0; b < 4; b++) if (b < cols) mdf_wino_store(y + a * ow + 4 * tx + b, o[b], bias, slope, mode);
        }
    }
}

/// Eight full tiles from tx: their 4 × 32 outputs, each row's four columns interleaved in registers.
static inline __attribute__((always_inline))
void output_tiles8(float *restrict y, long ow, const float *restrict m, long ms, long tx,
                   float bias, float slope, const int mode, const int rows) {
    v8f s[4][6];
    for (int j = 0; j < 6; j++) {
        v8f o[4];
        at6v(o, load8(m + j * ms + tx), load8(m + (6 + j) * ms + tx), load8(m + (12 + j) * ms + tx),
             load8(m + (18 + j) * ms + tx), load8(m + (24 + j) * ms + tx), load8(m + (30 + j) * ms + tx));
        for (int a = 0; a < 4; a++) s[a][j] = o[a];
    }
    for (int a = 0; a < 4; a++) {
        if (a >= rows) break;
        v8f o[4];
        at6v(o, s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5]);
        const v8f lo01 = __builtin_shufflevector(o[0], o[1], 0, 8, 1, 9, 2, 10, 3, 11);
        const v8f hi01 = __builtin_shufflevector(o[0], o[1], 4, 12, 5, 13, 6, 14, 7, 15);
        const v8f lo23 = __builtin_shufflevector(o[2], o[3], 0, 8, 1, 9, 2, 10, 3, 11);
        const v8f hi23 = __builtin_shufflevector(o[2], o[3], 4, 12, 5, 13, 6, 14, 7, 15);
        v8f c[4] = {
            __builtin_shufflevector(lo01, lo23, 0, 1, 8, 9, 2, 3, 10, 11),
            __builtin_shufflevector(lo01, lo23, 4, 5, 12, 13, 6, 7, 14, 15),
            __builtin_shufflevector(hi01, hi23, 0, 1, 8, 9, 2, 3, 10, 11),
            __builtin_shufflevector(hi01, hi23, 4, 5, 12, 13, 6, 7, 14, 15),
        };
        float *yr = y + a * ow + 4 * tx;
        for (int k = 0; k < 4; k++) {
            v8f v = c[k];
            if (mode == 2) v += load8(yr + 8 * k);
            else {
                v += bias;
                if (mode == 1) {
                    const v8i pos = v > 0;
                    v = (v8f)(((v8i)v & pos) | ((v8i)(slope * v) & ~pos));
                }
            }
            store8(yr + 8 * k, v);
        }
    }
}

/// Full tiles (eight at a time, then one by one), then the last partial one (ow not a multiple of
/// 4), for a given row count.
#define OUTPUT_ROW(mode, rows)                                                                       \
    do {                                                                                             \
        long tx = 0;                                                                                 \
        for (; tx + 8 <= full; tx += 8) output_tiles8(yt, ow, mr, mstride, tx, bias, slope, mode, rows); \
        output_tiles(yt, ow, mr, mstride, tx, full, bias, slope, mode, rows, 4);                     \
        output_tiles(yt, ow, mr, mstride, full, tw, bias, slope, mode, rows, (int)(ow - 4 * full));  \
    } while (0)

static inline __attribute__((always_inline))
void output_body(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                 float bias, int act, float slope, int accumulate) {
    const long full = ow / 4;
    const int mode = accumulate ? 2 : act == 1 ? 1 : 0;
    for (long ty = ty0; ty < ty1; ty++) {
        float *yt = y + 4 * ty * ow;
        const float *mr = m + (ty - ty0) * tw;
        const long left = oh - 4 * ty;
        if (left >= 4) {
            if (mode == 0) OUTPUT_ROW(0, 4); else if (mode == 1) OUTPUT_ROW(1, 4); else OUTPUT_ROW(2, 4);
        } else {
            const int rows = (int)left;
            if (mode == 0) OUTPUT_ROW(0, rows); else if (mode == 1) OUTPUT_ROW(1, rows); else OUTPUT_ROW(2, rows);
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static void input4_avx2(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1,
                        long tw, float *scratch) {
    input_body(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch);
}
__attribute__((target("avx2,fma")))
static void output4_avx2(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                         float bias, int act, float slope, int accumulate) {
    output_body(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate);
}
#endif

void mdf_wino4_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                     float *scratch, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx2(isa)) { input4_avx2(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch); return; }
#endif
    input_body(v, vstride, x, h, w, pt, pl, ty0, ty1, tw, scratch);
}

void mdf_wino4_output(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                      float bias, int act, float slope, int accumulate, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx2(isa)) { output4_avx2(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate); return; }
#endif
    output_body(y, oh, ow, m, mstride, ty0, ty1, tw, bias, act, slope, accumulate);
}

void mdf_wino4_weight(float *u, long ustride, const float *g) {
    static const double G[6][3] = {
        {1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
    };
    double t[6][3];   // G g
    for (int a = 0; a < 6; a++)
        for (int j = 0; j < 3; j++) t[a][j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            u[(6 * a + b) * ustride] = (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
}
