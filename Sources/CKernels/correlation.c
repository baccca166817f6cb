// The local correlation's inner product (see CKernels.h, mdf_corr_rows): every output is one chain
// of fused multiply-adds over i in order, whatever the vector width, so the AVX-512 and AVX2 forms
// are bitwise equal and the thread split changes nothing. An output block keeps up to eight
// accumulators (eight displacements forward, eight channels backward) that share each load of `a`.
#include "CKernels.h"
#include "dispatch.h"

#define CORR_MAXJ 8

typedef float mdf_v8 __attribute__((ext_vector_type(8)));
typedef float mdf_v16 __attribute__((ext_vector_type(16)));

#define LOAD_V(T, p) ({ T _v; __builtin_memcpy(&_v, (p), sizeof _v); _v; })
#define STORE_V(p, v) __builtin_memcpy((p), &(v), sizeof (v))

/// One block of nj outputs × the lanes of T at column x. FMA(a, b, c) = a · b + c, fused or not.
#define CORR_BLOCK(NAME, T, FMA)                                                                        \
static inline __attribute__((always_inline))                                                          \
void NAME(const int nj, float *out, long ops, const float *a, const long *aoff, const float *b,       \
          const long *bi, const long *bj, int count, long x, float scale, int accumulate) {           \
    T acc[CORR_MAXJ];                                                                                   \
    for (int j = 0; j < nj; j++) acc[j] = (T)0.f;                                                       \
    for (int i = 0; i < count; i++) {                                                                   \
        const T va = LOAD_V(T, a + aoff[i] + x);                                                        \
        const float *bp = b + bi[i] + x;                                                                \
        for (int j = 0; j < nj; j++) acc[j] = FMA(va, LOAD_V(T, bp + bj[j]), acc[j]);                   \
    }                                                                                                   \
    for (int j = 0; j < nj; j++) {                                                                      \
        float *o = out + j * ops + x;                                                                   \
        const T base = accumulate ? LOAD_V(T, o) : (T)0.f;                                              \
        const T r = FMA(acc[j], (T)scale, base);                                                        \
        STORE_V(o, r);                                                                                  \
    }                                                                                                   \
}

/// Columns [x0, x1) of nj outputs: blocks of T, then of T2, then scalar.
#define CORR_COLUMNS(NAME, BLOCK, W, BLOCK2, W2, BLOCK1)                                                \
static inline __attribute__((always_inline))                                                          \
void NAME(const int nj, float *out, long ops, const float *a, const long *aoff, const float *b,       \
          const long *bi, const long *bj, int count, long w, float scale, int accumulate) {           \
    long x = 0;                                                                                         \
    for (; x + (W) <= w; x += (W)) BLOCK(nj, out, ops, a, aoff, b, bi, bj, count, x, scale, accumulate); \
    for (; x + (W2) <= w; x += (W2)) BLOCK2(nj, out, ops, a, aoff, b, bi, bj, count, x, scale, accumulate); \
    for (; x < w; x++) BLOCK1(nj, out, ops, a, aoff, b, bi, bj, count, x, scale, accumulate);          \
}

/// All nb outputs, in groups of at most eight; each group size a constant in its own instance.
#define CORR_ROWS(NAME, COLUMNS)                                                                        \
static void NAME(float *out, long ops, const float *a, const long *aoff, const float *b, const long *bi, \
                 const long *bj, int count, int nb, long w, float scale, int accumulate) {             \
    for (int j0 = 0; j0 < nb; j0 += CORR_MAXJ) {                                                        \
        const int nj = nb - j0 < CORR_MAXJ ? nb - j0 : CORR_MAXJ;                                       \
        float *o = out + j0 * ops;                                                                      \
        const long *bjj = bj + j0;                                                                      \
        switch (nj) {                                                                                   \
        case 1: COLUMNS(1, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 2: COLUMNS(2, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 3: COLUMNS(3, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 4: COLUMNS(4, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 5: COLUMNS(5, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 6: COLUMNS(6, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        case 7: COLUMNS(7, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;           \
        default: COLUMNS(8, o, ops, a, aoff, b, bi, bjj, count, w, scale, accumulate); break;          \
        }                                                                                               \
    }                                                                                                   \
}

#define PLAIN_FMA(a, b, c) ((a) * (b) + (c))
CORR_BLOCK(block_portable, float, PLAIN_FMA)
CORR_COLUMNS(columns_portable, block_portable, 1, block_portable, 1, block_portable)
CORR_ROWS(rows_portable, columns_portable)

#if defined(__x86_64__)
#define FUSED_FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#pragma clang attribute push (__attribute__((target("avx2,fma"))), apply_to = function)
CORR_BLOCK(block8_avx2, mdf_v8, FUSED_FMA)
CORR_BLOCK(block1_avx2, float, FUSED_FMA)
CORR_COLUMNS(columns_avx2, block8_avx2, 8, block8_avx2, 8, block1_avx2)
CORR_ROWS(rows_avx2, columns_avx2)
#pragma clang attribute pop

#pragma clang attribute push (__attribute__((target("avx512f,avx512vl,avx2,fma"))), apply_to = function)
CORR_BLOCK(block16_avx512, mdf_v16, FUSED_FMA)
CORR_BLOCK(block8_avx512, mdf_v8, FUSED_FMA)
CORR_BLOCK(block1_avx512, float, FUSED_FMA)
CORR_COLUMNS(columns_avx512, block16_avx512, 16, block8_avx512, 8, block1_avx512)
CORR_ROWS(rows_avx512, columns_avx512)
#pragma clang attribute pop
#endif

void mdf_corr_rows(float *out, long ops, const float *a, const long *aoff, const float *b, const long *bi, const long *bj,
                   int count, int nb, long w, float scale, int accumulate, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx512(isa)) { rows_avx512(out, ops, a, aoff, b, bi, bj, count, nb, w, scale, accumulate); return; }
    if (mdf_use_avx2(isa)) { rows_avx2(out, ops, a, aoff, b, bi, bj, count, nb, w, scale, accumulate); return; }
#endif
    rows_portable(out, ops, a, aoff, b, bi, bj, count, nb, w, scale, accumulate);
}

void mdf_pad_columns(float *dst, const float *src, long rows, long w, long d) {
    const long wp = w + 2 * d;
    for (long r = 0; r < rows; r++) {
        float *o = dst + r * wp;
        for (long x = 0; x < d; x++) { o[x] = 0.f; o[d + w + x] = 0.f; }
        __builtin_memcpy(o + d, src + r * w, (size_t)w * sizeof(float));
    }
}
