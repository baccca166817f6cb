// The weight gradient of the direct convolution (CKernels.h). dy is first laid out in panels of 16
// channels, column-major; then a 6-tap × 16-channel tile of the gradient takes 12 FMAs per grid
// column, its six taps read as running streams of the phased input. Columns go in chunks of 512,
// so a chunk's dy panel (32 KiB) is re-read from cache by every tap panel. With AVX-512 a 6 × 32 tile
// takes two panels at once (twelve zmm sums) and a 6 × 16 tile (six zmm sums) a last odd panel; each
// sum is the same FMA chain over j on every path, so the results are bitwise equal.
// The Winograd weight gradient runs on the same tiles, its dy transformed straight into that
// panel layout here (mdf_wino_dy_packed). The AVX-512 tiles add into the accumulator's rows in
// place; the AVX2 and portable ones into a contiguous copy of them.
#include "CKernels.h"
#include "dispatch.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "acc12.h"
#endif

enum { JC = 512, NP = 16, TP = 6 };

#if defined(__x86_64__)
/// Columns [0, n) (n a multiple of 8) of 16 channels (row i at src + i · ldy) into o[ox · 16 + i]:
/// 8 × 8 blocks transposed in registers, one 8-float store per output half-row.
__attribute__((target("avx2,fma")))
static void pack16_avx2(float *o, const float *src, long ldy, long n) {
    for (long ox = 0; ox < n; ox += 8) {
        for (int half = 0; half < 2; half++) {
            const float *s = src + (long)half * 8 * ldy + ox;
            const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ldy), r2 = _mm256_loadu_ps(s + 2 * ldy);
            const __m256 r3 = _mm256_loadu_ps(s + 3 * ldy), r4 = _mm256_loadu_ps(s + 4 * ldy), r5 = _mm256_loadu_ps(s + 5 * ldy);
            const __m256 r6 = _mm256_loadu_ps(s + 6 * ldy), r7 = _mm256_loadu_ps(s + 7 * ldy);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = o + ox * NP + half * 8;
            _mm256_storeu_ps(d + 0 * NP, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + 1 * NP, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * NP, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * NP, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * NP, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * NP, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * NP, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * NP, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    }
}
#endif

/// One row of a 16-channel panel (channel i at src + i · ldy) into r[x · 16 + i] for x < wc: zero
/// past ow and in lanes past `rows`. Full panels go 8 × 8 blocks through registers, the rest (and
/// the last columns) channel by channel: contiguous reads, and the row's 16-wide writes stay in L1.
static inline __attribute__((always_inline))
void transpose_row(float *restrict r, const float *src, long ldy, int rows, long ow, long wc, int avx2) {
    long done = 0;
#if defined(__x86_64__)
    if (avx2 && rows == NP) { done = ow / 8 * 8; pack16_avx2(r, src, ldy, done); }
#else
    (void)avx2;
#endif
    for (int i = 0; i < rows; i++) for (long x = done; x < ow; x++) r[x * NP + i] = src[(long)i * ldy + x];
    if (rows < NP) for (long x = 0; x < ow; x++) memset(r + x * NP + rows, 0, sizeof(float) * (size_t)(NP - rows));
    memset(r + ow * NP, 0, sizeof(float) * (size_t)((wc - ow) * NP));
}

void mdf_pack_dy(float *dst, const float *dy, int m, long ldy, long columns, long row_len, long valid_len) {
    const int panels = (m + NP - 1) / NP;
    const int avx2 = mdf_use_avx2(MDF_ISA_BEST);
    for (int p = 0; p < panels; p++) {
        float *d = dst + (long)p * columns * NP;
        const int rows = m - p * NP < NP ? m - p * NP : NP;
        for (long j0 = 0; j0 < columns; j0 += row_len) {
            const long oy = j0 / row_len, len = columns - j0 < row_len ? columns - j0 : row_len;
            const long valid = len < valid_len ? len : valid_len;
            transpose_row(d + j0 * NP, dy + (long)p * NP * ldy + oy * valid_len, ldy, rows, valid, len, avx2);
        }
    }
}

/// A dY Aᵀ (A = [1 0; 1 1; 1 −1; 0 −1]) of the 2 × 2 blocks of one 16-channel panel, each block's
/// sixteen values written as plane ξ's 16-channel column at its tile: the rows of the block first,
/// then the same on their columns, in the order of the scalar definition (the same bits on every
/// path, and as the separate transform-then-pack it replaced).
static inline __attribute__((always_inline))
void dy_packed_body(float *restrict dst, long ps, const float *dy, long ldy, int rows, long oh, long ow,
                    float *restrict scratch, int avx2) {
    const long th = (oh + 1) / 2, tw = (ow + 1) / 2, wc = 2 * tw;
    float *restrict r0 = scratch, *restrict r1 = scratch + wc * NP;
    for (long ty = 0; ty < th; ty++) {
        transpose_row(r0, dy + 2 * ty * ow, ldy, rows, ow, wc, avx2);
        if (2 * ty + 1 < oh) transpose_row(r1, dy + (2 * ty + 1) * ow, ldy, rows, ow, wc, avx2);
        else memset(r1, 0, sizeof(float) * (size_t)(wc * NP));
        for (long tx = 0; tx < tw; tx++) {
            const float *restrict a = r0 + 2 * tx * NP, *restrict b = a + NP, *restrict c = r1 + 2 * tx * NP, *restrict d = c + NP;
            float *restrict o = dst + (ty * tw + tx) * NP;
            // Lane i is channel i: each plane's 16 values are one vector store.
            for (int i = 0; i < NP; i++) {
                const float z00 = a[i], z01 = b[i], z10 = a[i] + c[i], z11 = b[i] + d[i];
                const float z20 = a[i] - c[i], z21 = b[i] - d[i], z30 = -c[i], z31 = -d[i];
                o[0 * ps + i] = z00;  o[1 * ps + i] = z00 + z01;  o[2 * ps + i] = z00 - z01;  o[3 * ps + i] = -z01;
                o[4 * ps + i] = z10;  o[5 * ps + i] = z10 + z11;  o[6 * ps + i] = z10 - z11;  o[7 * ps + i] = -z11;
                o[8 * ps + i] = z20;  o[9 * ps + i] = z20 + z21;  o[10 * ps + i] = z20 - z21; o[11 * ps + i] = -z21;
                o[12 * ps + i] = z30; o[13 * ps + i] = z30 + z31; o[14 * ps + i] = z30 - z31; o[15 * ps + i] = -z31;
            }
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx2,fma")))
static void dy_packed_avx512(float *dst, long ps, const float *dy, long ldy, int rows, long oh, long ow, float *scratch) {
    dy_packed_body(dst, ps, dy, ldy, rows, oh, ow, scratch, 1);
}
__attribute__((target("avx2,fma")))
static void dy_packed_avx2(float *dst, long ps, const float *dy, long ldy, int rows, long oh, long ow, float *scratch) {
    dy_packed_body(dst, ps, dy, ldy, rows, oh, ow, scratch, 1);
}
#endif

void mdf_wino_dy_packed(float *dst, long plane_stride, const float *dy, long ldy, int rows, long oh, long ow,
                        float *scratch, int isa) {
#if defined(__x86_64__)
    if (mdf_use_avx512(isa)) { dy_packed_avx512(dst, plane_stride, dy, ldy, rows, oh, ow, scratch); return; }
    if (mdf_use_avx2(isa)) { dy_packed_avx2(dst, plane_stride, dy, ldy, rows, oh, ow, scratch); return; }
#endif
    dy_packed_body(dst, plane_stride, dy, ldy, rows, oh, ow, scratch, 0);
}

static void tile_portable(long len, const float *const s[TP], const float *b, float *out) {
    for (long j = 0; j < len; j++, b += NP)
        for (int r = 0; r < TP; r++) { float v = s[r][j]; for (int i = 0; i < NP; i++) out[r * NP + i] += v * b[i]; }
}

#if defined(__x86_64__)
/// The weight-gradient tile's loop, for R = ymm (two 8-channel halves of one panel: SECOND is
/// 32(%[b])) or zmm (two 16-channel panels: SECOND is (%[b],%[pd])): twelve sums, two loads and
/// one broadcast per column.
#define WGRAD_LOOP(R, SECOND, ACC_LOAD, ACC_STORE) \
        ACC_LOAD                                           \
        "test %[len], %[len]\n\t"                          \
        "jle 2f\n\t"                                       \
        "1:\n\t"                                           \
        "vmovups (%[b]), %%" R "12\n\t"                    \
        "vmovups " SECOND ", %%" R "13\n\t"                \
        "vbroadcastss (%[s0],%[j],4), %%" R "15\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "0\n\t"   \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "1\n\t"   \
        "vbroadcastss (%[s1],%[j],4), %%" R "14\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "14, %%" R "2\n\t"   \
        "vfmadd231ps %%" R "13, %%" R "14, %%" R "3\n\t"   \
        "vbroadcastss (%[s2],%[j],4), %%" R "15\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "4\n\t"   \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "5\n\t"   \
        "vbroadcastss (%[s3],%[j],4), %%" R "14\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "14, %%" R "6\n\t"   \
        "vfmadd231ps %%" R "13, %%" R "14, %%" R "7\n\t"   \
        "vbroadcastss (%[s4],%[j],4), %%" R "15\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "8\n\t"   \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "9\n\t"   \
        "vbroadcastss (%[s5],%[j],4), %%" R "14\n\t"       \
        "vfmadd231ps %%" R "12, %%" R "14, %%" R "10\n\t"  \
        "vfmadd231ps %%" R "13, %%" R "14, %%" R "11\n\t"  \
        "add $64, %[b]\n\t"                                \
        "inc %[j]\n\t"                                     \
        "cmp %[j], %[len]\n\t"                             \
        "jne 1b\n\t"                                       \
        "2:\n\t"                                           \
        ACC_STORE

/// out[r][0..<16] += Σ_j s_r[j] · b[j][0..<16]: twelve sums, two loads and one broadcast in fifteen
/// ymm registers (in assembly for the reason given at igemm.c's tile_4x24_add).
__attribute__((target("avx2,fma")))
static void tile_avx2(long len, const float *const s[TP], const float *b, float *out) {
    long j = 0;
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
    __asm__ volatile(
        WGRAD_LOOP("ymm", "32(%[b])", ACC12_LOAD, ACC12_STORE)
        : [b] "+r"(b), [j] "+r"(j)
        : [len] "r"(len), [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3), [s4] "r"(s4), [s5] "r"(s5),
          [out] "r"(out)
        : ACC12_CLOBBERS);
}

/// tile_avx2 over two 16-channel panels at once, b and b + pd bytes: out[r][0..<32] (row r at out +
/// r · ld bytes: the accumulator itself, no copy) += Σ_j s_r[j] · (b[j][0..<16], b'[j][0..<16]),
/// twelve zmm sums.
__attribute__((target("avx512f")))
static void tile_avx512(long len, const float *const s[TP], const float *b, long pd, float *out, long ld) {
    long j = 0;
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
    __asm__ volatile(
        WGRAD_LOOP("zmm", "(%[b],%[pd])", ACC12Z_LOAD_ROWS, ACC12Z_STORE_ROWS)
        : [b] "+r"(b), [j] "+r"(j), [out] "+r"(out)
        : [len] "r"(len), [pd] "r"(pd), [ld] "r"(ld), [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3),
          [s4] "r"(s4), [s5] "r"(s5)
        : ACC12_CLOBBERS);
}

/// tile_avx2 in six zmm sums, one per tap (a last odd 16-channel panel, or the only one), row r at
/// out + r · ld floats: the same FMA chain per output, bound by the FMA latency (four cycles a
/// column) rather than by the AVX2 tile's twelve FMAs a column.
__attribute__((target("avx512f")))
static void tile1_avx512(long len, const float *const s[TP], const float *b, float *out, long ld) {
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
    __m512 a0 = _mm512_loadu_ps(out), a1 = _mm512_loadu_ps(out + ld), a2 = _mm512_loadu_ps(out + 2 * ld);
    __m512 a3 = _mm512_loadu_ps(out + 3 * ld), a4 = _mm512_loadu_ps(out + 4 * ld), a5 = _mm512_loadu_ps(out + 5 * ld);
    for (long j = 0; j < len; j++) {
        const __m512 v = _mm512_loadu_ps(b + NP * j);
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(s0[j]), v, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(s1[j]), v, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(s2[j]), v, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(s3[j]), v, a3);
        a4 = _mm512_fmadd_ps(_mm512_set1_ps(s4[j]), v, a4);
        a5 = _mm512_fmadd_ps(_mm512_set1_ps(s5[j]), v, a5);
    }
    _mm512_storeu_ps(out, a0); _mm512_storeu_ps(out + ld, a1); _mm512_storeu_ps(out + 2 * ld, a2);
    _mm512_storeu_ps(out + 3 * ld, a3); _mm512_storeu_ps(out + 4 * ld, a4); _mm512_storeu_ps(out + 5 * ld, a5);
}
#endif

/// The tile's six rows of one 16-channel panel between the accumulator (row stride sld or dld) and
/// the AVX2 and portable tiles' contiguous sums (the AVX-512 tiles, the only ones that take two
/// panels, work in place). A fixed size, so the copies are inlined moves (a library call per 64-byte
/// row cost about a tenth of the tile's time with 320-column images).
static inline __attribute__((always_inline)) void copy_rows(float *dst, long dld, const float *src, long sld) {
    for (int r = 0; r < TP; r++) memcpy(dst + r * dld, src + r * sld, sizeof(float) * NP);
}

void mdf_conv_wgrad(const mdf_wgrad_args *a, int kp0, int kp1) {
    const int avx2 = mdf_use_avx2(a->isa), avx512 = mdf_use_avx512(a->isa);
    const long panels = a->acc_ld / NP;
    float tile[TP * NP];
    for (long j0 = a->col0; j0 < a->col1; j0 += JC) {
        const long len = a->col1 - j0 < JC ? a->col1 - j0 : JC;
        for (long p = 0; p < panels;) {
            const float *b = a->dyp + (p * a->columns + j0) * NP;
            const int width = avx512 && p + 1 < panels ? 2 : 1;   // 16-channel panels in this tile
            for (int q = kp0; q < kp1; q++) {
                const float *s[TP];
                for (int r = 0; r < TP; r++) {
                    const int kk = TP * q + r < a->k ? TP * q + r : a->k - 1;   // taps past k: any stream, dropped later
                    s[r] = a->x + a->koff[kk] + j0;
                }
                float *out = a->acc + (long)(q - kp0) * TP * a->acc_ld + p * NP;
#if defined(__x86_64__)
                // The AVX-512 tiles add into the accumulator's rows in place; the others into a copy.
                if (width == 2) {
                    tile_avx512(len, s, b, a->columns * NP * (long)sizeof(float), out, a->acc_ld * (long)sizeof(float));
                    continue;
                }
                if (avx512) { tile1_avx512(len, s, b, out, a->acc_ld); continue; }
#endif
                copy_rows(tile, NP, out, a->acc_ld);
#if defined(__x86_64__)
                if (avx2) tile_avx2(len, s, b, tile);
                else
#endif
                tile_portable(len, s, b, tile);
                copy_rows(out, a->acc_ld, tile, NP);
            }
            p += width;
        }
    }
}
