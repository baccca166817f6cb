// The weight gradient of the direct convolution (CKernels.h). dy is first laid out in panels of 16
// channels, column-major; then a 6-tap × 16-channel tile of the gradient takes 12 FMAs per grid
// column, its six taps read as running streams of the phased input. Columns go in chunks of 512,
// so a chunk's dy panel (32 KiB) is re-read from cache by every tap panel. With AVX-512 a 6 × 32 tile
// takes two panels at once (twelve zmm sums) and the AVX2 tile a last odd panel; each sum is the
// same FMA chain over j either way, so the results are bitwise equal.
#include "CKernels.h"
#include "dispatch.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "acc12.h"
#endif

enum { JC = 512, NP = 16, TP = 6 };

void mdf_pack_dy(float *dst, const float *dy, int m, long ldy, long columns, long row_len, long valid_len) {
    const int panels = (m + NP - 1) / NP;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (long)p * columns * NP;
        const int rows = m - p * NP < NP ? m - p * NP : NP;
        for (long j0 = 0; j0 < columns; j0 += row_len) {
            const long oy = j0 / row_len, len = columns - j0 < row_len ? columns - j0 : row_len;
            const long valid = len < valid_len ? len : valid_len;
            const float *src = dy + (long)p * NP * ldy + oy * valid_len;
            float *o = d + j0 * NP;
            // Channel by channel: contiguous reads, and the row's 16-wide writes stay in L1.
            for (int i = 0; i < rows; i++) {
                const float *s = src + (long)i * ldy;
                for (long ox = 0; ox < valid; ox++) o[ox * NP + i] = s[ox];
            }
            if (rows < NP) for (long ox = 0; ox < valid; ox++) memset(o + ox * NP + rows, 0, sizeof(float) * (size_t)(NP - rows));
            memset(o + valid * NP, 0, sizeof(float) * (size_t)((len - valid) * NP));
        }
    }
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

/// tile_avx2 over two 16-channel panels at once, b and b + pd bytes: out[r][0..<32] (row stride 32)
/// += Σ_j s_r[j] · (b[j][0..<16], b'[j][0..<16]), twelve zmm sums.
__attribute__((target("avx512f")))
static void tile_avx512(long len, const float *const s[TP], const float *b, long pd, float *out) {
    long j = 0;
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
    __asm__ volatile(
        WGRAD_LOOP("zmm", "(%[b],%[pd])", ACC12Z_LOAD, ACC12Z_STORE)
        : [b] "+r"(b), [j] "+r"(j)
        : [len] "r"(len), [pd] "r"(pd), [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3), [s4] "r"(s4),
          [s5] "r"(s5), [out] "r"(out)
        : ACC12_CLOBBERS);
}
#endif

void mdf_conv_wgrad(const mdf_wgrad_args *a, int kp0, int kp1) {
    const int avx2 = mdf_use_avx2(a->isa), avx512 = mdf_use_avx512(a->isa);
    const long panels = a->acc_ld / NP;
    float tile[TP * 2 * NP];
    for (long j0 = 0; j0 < a->columns; j0 += JC) {
        const long len = a->columns - j0 < JC ? a->columns - j0 : JC;
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
                const size_t row = sizeof(float) * (size_t)(width * NP);
                for (int r = 0; r < TP; r++) memcpy(tile + r * width * NP, out + r * a->acc_ld, row);
#if defined(__x86_64__)
                if (width == 2) tile_avx512(len, s, b, a->columns * NP * (long)sizeof(float), tile);
                else if (avx2) tile_avx2(len, s, b, tile);
                else
#endif
                tile_portable(len, s, b, tile);
                for (int r = 0; r < TP; r++) memcpy(out + r * a->acc_ld, tile + r * width * NP, row);
            }
            p += width;
        }
    }
}
