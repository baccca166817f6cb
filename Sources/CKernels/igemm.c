// The implicit-GEMM micro-kernel behind mdflow's direct convolution (see CKernels.h).
// A 4 × 24 tile of C lives in twelve AVX2 registers while the reduction runs over k; each step
// broadcasts four packed A values and loads 24 consecutive floats of the input at that tap's offset,
// or, with two or more panels, from a copy of the strip's steps made once for all panels (the taps'
// rows are strided, so loads straight from them compete for a few L1 sets and miss the prefetchers).
// Machines without AVX2+FMA take the portable loop, with the same tiling and the same stores. With
// AVX-512 a 4 × 48 tile in twelve zmm registers takes 48-column strips, two panels at once (8 × 48,
// 24 zmm sums) where there are two; a strip's last, shorter piece is masked and computes only the
// 16-column vectors it has. Every output is the same chain of FMAs in kk order on each, so the
// results are bitwise equal.
#include "CKernels.h"
#include "dispatch.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include "acc12.h"
#endif

enum { MR = 4, NR = 24 };

/// Writes (or adds) rows [r0, r0 + rows) of a finished tile (row r at tile + r · ld) to C, skipping
/// the grid's padding columns.
static void store_tile(const mdf_igemm_args *a, int r0, int rows, long j, long cols, const float *tile, long ld) {
    long oy = j / a->row_len, ox = j % a->row_len, t = 0;
    while (t < cols) {
        long seg = a->row_len - ox;
        if (seg > cols - t) seg = cols - t;
        long valid = a->valid_len - ox;
        if (valid > seg) valid = seg;
        if (valid > 0) {
            long base = oy * a->valid_len + ox;
            for (int r = 0; r < rows; r++) {
                float *dst = a->c + (long)(r0 + r) * a->ldc + base;
                const float *src = tile + r * ld + t;
                if (a->accumulate) { for (long i = 0; i < valid; i++) dst[i] += src[i]; }
                else memcpy(dst, src, (size_t)valid * sizeof(float));
            }
        }
        t += seg; oy += 1; ox = 0;
    }
}

static inline float finish(const mdf_igemm_args *a, int r, float v) {
    if (a->accumulate) return v;
    if (a->bias) v += a->bias[r];
    if (a->act == 1) v = v > 0 ? v : a->slope * v;
    return v;
}

static void igemm_portable(const mdf_igemm_args *a, long j0, long j1) {
    const int panels = (a->m + MR - 1) / MR;
    float tile[MR][NR];
    for (long j = j0; j < j1; j += NR) {
        long cols = j1 - j < NR ? j1 - j : NR;
        for (int p = 0; p < panels; p++) {
            const float *ap = a->ap + (long)p * a->k * MR;
            memset(tile, 0, sizeof tile);
            for (int kk = 0; kk < a->k; kk++) {
                const float *b = a->x + a->koff[kk] + j;
                for (int r = 0; r < MR; r++) {
                    float w = ap[kk * MR + r];
                    for (int i = 0; i < NR; i++) tile[r][i] += w * b[i];
                }
            }
            int rows = a->m - p * MR < MR ? a->m - p * MR : MR;
            for (int r = 0; r < rows; r++) for (int i = 0; i < NR; i++) tile[r][i] = finish(a, p * MR + r, tile[r][i]);
            store_tile(a, p * MR, rows, j, cols, &tile[0][0], NR);
        }
    }
}

#if defined(__x86_64__)
#define ROW_FINISH(c0, c1, c2, r)                                                            \
    if (!a->accumulate) {                                                                    \
        if (a->bias) {                                                                       \
            __m256 bv = _mm256_set1_ps(a->bias[r0 + (r)]);                                   \
            c0 = _mm256_add_ps(c0, bv); c1 = _mm256_add_ps(c1, bv); c2 = _mm256_add_ps(c2, bv); \
        }                                                                                    \
        if (a->act == 1) {                                                                   \
            c0 = _mm256_blendv_ps(_mm256_mul_ps(c0, sl), c0, _mm256_cmp_ps(c0, zero, _CMP_GT_OQ)); \
            c1 = _mm256_blendv_ps(_mm256_mul_ps(c1, sl), c1, _mm256_cmp_ps(c1, zero, _CMP_GT_OQ)); \
            c2 = _mm256_blendv_ps(_mm256_mul_ps(c2, sl), c2, _mm256_cmp_ps(c2, zero, _CMP_GT_OQ)); \
        }                                                                                    \
    }

#define ROW_STORE(c0, c1, c2, r)                                                             \
    if ((r) < rows) {                                                                        \
        if (fast) {                                                                          \
            float *d = dst + (long)(r) * a->ldc;                                             \
            if (a->accumulate) {                                                             \
                c0 = _mm256_add_ps(c0, _mm256_loadu_ps(d));                                  \
                c1 = _mm256_add_ps(c1, _mm256_loadu_ps(d + 8));                              \
                c2 = _mm256_add_ps(c2, _mm256_loadu_ps(d + 16));                             \
            }                                                                                \
            _mm256_storeu_ps(d, c0); _mm256_storeu_ps(d + 8, c1); _mm256_storeu_ps(d + 16, c2); \
        } else {                                                                             \
            _mm256_storeu_ps(tile[r], c0); _mm256_storeu_ps(tile[r] + 8, c1); _mm256_storeu_ps(tile[r] + 16, c2); \
        }                                                                                    \
    }

/// The register tile's loop, for R = ymm (O1, O2 = 32, 64: 24 columns) or zmm (64, 128: 48 columns),
/// each of the three loads optionally masked (K0–K2, AVX-512 only): twelve sums, three loads and one
/// broadcast per step, in registers 0–15 of that width. PF: instructions after the loads (the
/// next strip's prefetch, or nothing).
#define TILE_4X3_LOOP(R, O1, O2, K0, K1, K2, PF, ACC_LOAD, ACC_STORE)                                                             \
        "test %[first], %[first]\n\t"                                                           \
        "jz 3f\n\t"                                                                             \
        ACC12_ZERO                                                                              \
        "jmp 4f\n\t"                                                                            \
        "3:\n\t"                                                                                \
        ACC_LOAD                                                                             \
        "4:\n\t"                                                                                \
        "test %[k], %[k]\n\t"                                                                   \
        "jle 2f\n\t"                                                                            \
        "1:\n\t"                                                                                \
        "movslq (%[koff]), %%rax\n\t"                                                           \
        "vmovups (%[xb],%%rax,4), %%" R "12" K0 "\n\t"                                            \
        "vmovups " O1 "(%[xb],%%rax,4), %%" R "13" K1 "\n\t"                                          \
        "vmovups " O2 "(%[xb],%%rax,4), %%" R "14" K2 "\n\t"                                         \
        PF                                                                                      \
        "vbroadcastss (%[ap]), %%" R "15\n\t"                                                     \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "0\n\t"                                              \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "1\n\t"                                              \
        "vfmadd231ps %%" R "14, %%" R "15, %%" R "2\n\t"                                              \
        "vbroadcastss 4(%[ap]), %%" R "15\n\t"                                                    \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "3\n\t"                                              \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "4\n\t"                                              \
        "vfmadd231ps %%" R "14, %%" R "15, %%" R "5\n\t"                                              \
        "vbroadcastss 8(%[ap]), %%" R "15\n\t"                                                    \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "6\n\t"                                              \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "7\n\t"                                              \
        "vfmadd231ps %%" R "14, %%" R "15, %%" R "8\n\t"                                              \
        "vbroadcastss 12(%[ap]), %%" R "15\n\t"                                                   \
        "vfmadd231ps %%" R "12, %%" R "15, %%" R "9\n\t"                                              \
        "vfmadd231ps %%" R "13, %%" R "15, %%" R "10\n\t"                                             \
        "vfmadd231ps %%" R "14, %%" R "15, %%" R "11\n\t"                                             \
        "add $16, %[ap]\n\t"                                                                    \
        "add $4, %[koff]\n\t"                                                                   \
        "dec %[k]\n\t"                                                                          \
        "jnz 1b\n\t"                                                                            \
        "2:\n\t"                                                                                \
        ACC_STORE

/// The register tile: out[r][0..<24] += Σ_kk ap[4·kk + r] · x[koff[kk] + i] (with `first`, out is
/// overwritten: the sums start at zero instead of out's contents). Written in assembly because it
/// needs all sixteen ymm registers (twelve sums, three loads, one broadcast) and the compiler
/// spills one sum per step, which chains every step through a store and a reload.
__attribute__((target("avx2,fma")))
static void tile_4x24_add(long k, const float *ap, const float *xb, const int32_t *koff, __m256 out[MR][3], long first) {
    __asm__ volatile(
        TILE_4X3_LOOP("ymm", "32", "64", "", "", "", "", ACC12_LOAD, ACC12_STORE)
        : [ap] "+r"(ap), [koff] "+r"(koff), [k] "+r"(k)
        : [xb] "r"(xb), [out] "r"(out), [first] "r"(first)
        : "rax", ACC12_CLOBBERS);
}

/// tile_4x24_add over a packed strip: step kk's 24 floats at bp + 24·kk (32-byte aligned), so the
/// loads walk one contiguous run instead of k rows of the input. The same FMAs in the same order.
__attribute__((target("avx2,fma")))
static void tile_4x24_packed(long k, const float *ap, const float *bp, __m256 out[MR][3], long first) {
    __asm__ volatile(
        "test %[first], %[first]\n\t"
        "jz 3f\n\t"
        ACC12_ZERO
        "jmp 4f\n\t"
        "3:\n\t"
        ACC12_LOAD
        "4:\n\t"
        "test %[k], %[k]\n\t"
        "jle 2f\n\t"
        "1:\n\t"
        "vmovaps (%[bp]), %%ymm12\n\t"
        "vmovaps 32(%[bp]), %%ymm13\n\t"
        "vmovaps 64(%[bp]), %%ymm14\n\t"
        "vbroadcastss (%[ap]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm0\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm1\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\t"
        "vbroadcastss 4(%[ap]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm3\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm4\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
        "vbroadcastss 8(%[ap]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\t"
        "vbroadcastss 12(%[ap]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm9\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %%ymm10\n\t"
        "vfmadd231ps %%ymm14, %%ymm15, %%ymm11\n\t"
        "add $16, %[ap]\n\t"
        "add $96, %[bp]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        "2:\n\t"
        ACC12_STORE
        : [ap] "+r"(ap), [bp] "+r"(bp), [k] "+r"(k)
        : [out] "r"(out), [first] "r"(first)
        : ACC12_CLOBBERS);
}

/// Copies a strip's 24 columns of steps [0, len) into bp (24 floats a step) and prefetches the next
/// strip's 24 columns of the same steps (its three possible cache lines), so they arrive from L2
/// or L3 while this strip is computed: the input's rows are too many streams for the hardware's
/// prefetchers.
__attribute__((target("avx2,fma")))
static void pack_strip(float *bp, const float *xb, const int32_t *koff, long len, int prefetch) {
    for (long kk = 0; kk < len; kk++) {
        const float *b = xb + koff[kk];
        _mm256_store_ps(bp + 24 * kk, _mm256_loadu_ps(b));
        _mm256_store_ps(bp + 24 * kk + 8, _mm256_loadu_ps(b + 8));
        _mm256_store_ps(bp + 24 * kk + 16, _mm256_loadu_ps(b + 16));
        if (prefetch) {
            _mm_prefetch((const char *)(b + 24), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 40), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 47), _MM_HINT_T0);
        }
    }
}

/// Reduction steps per block: a block's input runs (≤ 256 taps × 96 bytes, fewer lines since
/// neighbouring taps overlap) stay in L1 while every panel of A passes over them.
enum { KC = 256 };

/// Reduction steps per block when the strip is packed (tile_4x24_packed): 128 × 96 bytes, 12 KB of
/// the 32 KB L1, leaving room for the panels of A streaming past.
enum { KC_PACKED = 128 };

/// Panels from which a strip is packed: with fewer the copy costs more than the tile saves. A caller
/// asking for MDF_ISA_AVX2 (the tests) gets the unpacked strips, so that on a machine without
/// AVX-512 the two AVX2 forms are compared bit for bit.
enum { PACK_PANELS = 2 };

/// Asks for the lines of C that the strip at grid column jn will store (its first and last column
/// of every row) in a writable state, so that while this strip is computed they arrive from L3 or
/// memory: C's rows are m streams of stores, ldc apart, which the hardware does not fetch ahead, and
/// each store that misses waits for its line (a tenth of pconv2_1's forward when measured). Only
/// where the CPU reports PREFETCHW (mdf_has_prefetchw).
static inline void prefetch_next_strip_output(const mdf_igemm_args *a, long jn) {
    const float *base = a->c + jn / a->row_len * a->valid_len + jn % a->row_len;
    for (int r = 0; r < a->m; r++) {
        const float *d = base + (long)r * a->ldc;
        __asm__ volatile("prefetchw (%0)\n\tprefetchw 92(%0)" :: "r"(d));
    }
}

__attribute__((target("avx2,fma")))
static void igemm_avx2(const mdf_igemm_args *a, long j0, long j1) {
    const int panels = (a->m + MR - 1) / MR, k = a->k, pack = panels >= PACK_PANELS && a->isa == MDF_ISA_BEST;
    const int prefetchw = mdf_has_prefetchw();
    const int kcmax = pack ? KC_PACKED : KC;
    const int blocks = (k + kcmax - 1) / kcmax, kc = (k + blocks - 1) / blocks;
    const __m256 zero = _mm256_setzero_ps(), sl = _mm256_set1_ps(a->slope);
    __m256 (*sums)[MR][3] = aligned_alloc(32, sizeof(__m256[MR][3]) * (size_t)panels);
    float *bp = pack ? aligned_alloc(32, sizeof(float) * NR * (size_t)(kc > 0 ? kc : 1)) : NULL;
    if (!sums || (pack && !bp)) { free(sums); free(bp); igemm_portable(a, j0, j1); return; }
    float tile[MR][NR];
    for (long j = j0; j < j1; j += NR) {
        const long cols = j1 - j < NR ? j1 - j : NR;
        const long oy = j / a->row_len, ox = j % a->row_len;
        const int fast = cols == NR && ox + NR <= a->valid_len;
        const float *xb = a->x + j;
        if (k == 0) memset(sums, 0, sizeof(__m256[MR][3]) * (size_t)panels);
        if (prefetchw && j + NR < j1) prefetch_next_strip_output(a, j + NR);
        for (int k0 = 0; k0 < k; k0 += kc) {
            const long len = k - k0 < kc ? k - k0 : kc;
            if (pack) {
                pack_strip(bp, xb, a->koff + k0, len, j + NR < j1);
                for (int p = 0; p < panels; p++)
                    tile_4x24_packed(len, a->ap + ((long)p * k + k0) * MR, bp, sums[p], k0 == 0);
            } else {
                for (int p = 0; p < panels; p++)
                    tile_4x24_add(len, a->ap + ((long)p * k + k0) * MR, xb, a->koff + k0, sums[p], k0 == 0);
            }
        }
        for (int p = 0; p < panels; p++) {
            __m256 c00 = sums[p][0][0], c01 = sums[p][0][1], c02 = sums[p][0][2];
            __m256 c10 = sums[p][1][0], c11 = sums[p][1][1], c12 = sums[p][1][2];
            __m256 c20 = sums[p][2][0], c21 = sums[p][2][1], c22 = sums[p][2][2];
            __m256 c30 = sums[p][3][0], c31 = sums[p][3][1], c32 = sums[p][3][2];
            const int r0 = p * MR, rows = a->m - r0 < MR ? a->m - r0 : MR;
            ROW_FINISH(c00, c01, c02, 0)
            if (rows > 1) ROW_FINISH(c10, c11, c12, 1)
            if (rows > 2) ROW_FINISH(c20, c21, c22, 2)
            if (rows > 3) ROW_FINISH(c30, c31, c32, 3)
            float *dst = a->c + (long)r0 * a->ldc + oy * a->valid_len + ox;
            ROW_STORE(c00, c01, c02, 0)
            ROW_STORE(c10, c11, c12, 1)
            ROW_STORE(c20, c21, c22, 2)
            ROW_STORE(c30, c31, c32, 3)
            if (!fast) store_tile(a, r0, rows, j, cols, &tile[0][0], NR);
        }
    }
    free(sums);
    free(bp);
}

enum { NRZ = 48 };

#define ZROW_FINISH(c0, c1, c2, r)                                                           \
    if (!a->accumulate) {                                                                    \
        if (a->bias) {                                                                       \
            __m512 bv = _mm512_set1_ps(a->bias[r0 + (r)]);                                   \
            c0 = _mm512_add_ps(c0, bv); c1 = _mm512_add_ps(c1, bv); c2 = _mm512_add_ps(c2, bv); \
        }                                                                                    \
        if (a->act == 1) {                                                                   \
            c0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(c0, zero, _CMP_GT_OQ), _mm512_mul_ps(c0, sl), c0); \
            c1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(c1, zero, _CMP_GT_OQ), _mm512_mul_ps(c1, sl), c1); \
            c2 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(c2, zero, _CMP_GT_OQ), _mm512_mul_ps(c2, sl), c2); \
        }                                                                                    \
    }

#define ZROW_STORE(c0, c1, c2, r)                                                            \
    if ((r) < rows) {                                                                        \
        if (fast) {                                                                          \
            float *d = dst + (long)(r) * a->ldc;                                             \
            if (a->accumulate) {                                                             \
                c0 = _mm512_add_ps(c0, _mm512_loadu_ps(d));                                  \
                c1 = _mm512_add_ps(c1, _mm512_loadu_ps(d + 16));                             \
                c2 = _mm512_add_ps(c2, _mm512_loadu_ps(d + 32));                             \
            }                                                                                \
            _mm512_storeu_ps(d, c0); _mm512_storeu_ps(d + 16, c1); _mm512_storeu_ps(d + 32, c2); \
        } else {                                                                             \
            _mm512_storeu_ps(tile[r], c0); _mm512_storeu_ps(tile[r] + 16, c1); _mm512_storeu_ps(tile[r] + 32, c2); \
        }                                                                                    \
    }

/// tile_4x24_add with zmm registers: out[r][0..<48] (zmm0–zmm15, so the same clobber list). The
/// masked form loads only the columns set in m0, m1, m2 (the others read as zero, nothing past them
/// is touched): a strip's last, shorter piece.

__attribute__((target("avx512f")))
static void tile_4x48_add(long k, const float *ap, const float *xb, const int32_t *koff, __m512 out[MR][3], long first) {
    __asm__ volatile(
        TILE_4X3_LOOP("zmm", "64", "128", "", "", "", "", ACC12Z_LOAD, ACC12Z_STORE)
        : [ap] "+r"(ap), [koff] "+r"(koff), [k] "+r"(k)
        : [xb] "r"(xb), [out] "r"(out), [first] "r"(first)
        : "rax", ACC12_CLOBBERS);
}

/// tile_4x48_add that also prefetches, at every tap, the next strip's 48 floats: the first panel of
/// a strip runs it, so the taps' rows (one cache-line run each, too many for the hardware's stream
/// prefetchers) arrive while the current strip is computed. Same sums.
__attribute__((target("avx512f")))
static void tile_4x48_add_prefetch(long k, const float *ap, const float *xb, const int32_t *koff, __m512 out[MR][3], long first) {
    __asm__ volatile(
        TILE_4X3_LOOP("zmm", "64", "128", "", "", "",
                      "prefetcht0 192(%[xb],%%rax,4)\n\tprefetcht0 256(%[xb],%%rax,4)\n\tprefetcht0 320(%[xb],%%rax,4)\n\t",
                      ACC12Z_LOAD, ACC12Z_STORE)
        : [ap] "+r"(ap), [koff] "+r"(koff), [k] "+r"(k)
        : [xb] "r"(xb), [out] "r"(out), [first] "r"(first)
        : "rax", ACC12_CLOBBERS);
}

__attribute__((target("avx512f")))
static void tile_4x48_add_masked(long k, const float *ap, const float *xb, const int32_t *koff, __m512 out[MR][3], long first,
                                 unsigned m0, unsigned m1, unsigned m2) {
    __asm__ volatile(
        "kmovw %[m0], %%k1\n\t"
        "kmovw %[m1], %%k2\n\t"
        "kmovw %[m2], %%k3\n\t"
        TILE_4X3_LOOP("zmm", "64", "128", "%{%%k1%}%{z%}", "%{%%k2%}%{z%}", "%{%%k3%}%{z%}", "", ACC12Z_LOAD, ACC12Z_STORE)
        : [ap] "+r"(ap), [koff] "+r"(koff), [k] "+r"(k)
        : [xb] "r"(xb), [out] "r"(out), [first] "r"(first), [m0] "r"(m0), [m1] "r"(m1), [m2] "r"(m2)
        : "rax", "k1", "k2", "k3", ACC12_CLOBBERS);
}

/// Two 4-row panels at once: out0[r] and out1[r] (rows r of panels p and p + 1) += Σ_kk
/// ap0/ap1[4·kk + r] · x[koff[kk] + 0..<16q], starting from zero with `first`. Each input vector
/// loaded serves eight output rows instead of four (three loads and eight broadcasts per 24 FMAs),
/// which a core with two 512-bit FMA ports needs to stay off its load ports. Every output is the
/// same FMA chain in kk order as in tile_4x48_add, so the results are bitwise equal. In C: with
/// 32 zmm registers the compiler keeps the 24 sums, 3 loads and the broadcasts in registers.
/// `q` (1–3) zmm columns are computed, the others of out0/out1 set to zero; `masked` loads only the
/// columns set in m0, m1, m2 (a strip's last, shorter piece: 16 or 32 columns cost one or two thirds
/// of a full strip, where the AVX2 tile's 24 took as long as 48 on two 512-bit ports).
__attribute__((target("avx512f"), always_inline))
static inline void tile_8xq_body(long k, const float *ap0, const float *ap1, const float *xb, const int32_t *koff,
                                 __m512 out0[MR][3], __m512 out1[MR][3], long first, const int prefetch, const int q,
                                 const int masked, __mmask16 m0, __mmask16 m1, __mmask16 m2) {
    __m512 c[2 * MR][3];
    for (int r = 0; r < MR; r++) {
        for (int j = 0; j < q; j++) {
            c[r][j] = first ? _mm512_setzero_ps() : out0[r][j];
            c[MR + r][j] = first ? _mm512_setzero_ps() : out1[r][j];
        }
    }
    const __mmask16 mk[3] = {m0, m1, m2};
    for (long kk = 0; kk < k; kk++) {
        const float *b = xb + koff[kk];
        __m512 x[3];
        for (int j = 0; j < q; j++) x[j] = masked ? _mm512_maskz_loadu_ps(mk[j], b + 16 * j) : _mm512_loadu_ps(b + 16 * j);
        if (prefetch) {
            _mm_prefetch((const char *)(b + 48), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 80), _MM_HINT_T0);
        }
        for (int r = 0; r < MR; r++) {
            const __m512 w0 = _mm512_set1_ps(ap0[kk * MR + r]);
            for (int j = 0; j < q; j++) c[r][j] = _mm512_fmadd_ps(w0, x[j], c[r][j]);
        }
        for (int r = 0; r < MR; r++) {
            const __m512 w1 = _mm512_set1_ps(ap1[kk * MR + r]);
            for (int j = 0; j < q; j++) c[MR + r][j] = _mm512_fmadd_ps(w1, x[j], c[MR + r][j]);
        }
    }
    for (int r = 0; r < MR; r++) {
        for (int j = 0; j < 3; j++) {
            out0[r][j] = j < q ? c[r][j] : _mm512_setzero_ps();
            out1[r][j] = j < q ? c[MR + r][j] : _mm512_setzero_ps();
        }
    }
}

__attribute__((target("avx512f")))
static void tile_8x48_add(long k, const float *ap0, const float *ap1, const float *xb, const int32_t *koff,
                          __m512 out0[MR][3], __m512 out1[MR][3], long first) {
    tile_8xq_body(k, ap0, ap1, xb, koff, out0, out1, first, 0, 3, 0, 0, 0, 0);
}

/// tile_8x48_add that also prefetches the next strip's 48 floats of every tap (see
/// tile_4x48_add_prefetch).
__attribute__((target("avx512f")))
static void tile_8x48_add_prefetch(long k, const float *ap0, const float *ap1, const float *xb, const int32_t *koff,
                                   __m512 out0[MR][3], __m512 out1[MR][3], long first) {
    tile_8xq_body(k, ap0, ap1, xb, koff, out0, out1, first, 1, 3, 0, 0, 0, 0);
}

/// Two panels of a strip's last piece of `cols` (< 48) columns: one, two or three zmm columns,
/// masked.
__attribute__((target("avx512f")))
static void tile_8xq_add_masked(long k, const float *ap0, const float *ap1, const float *xb, const int32_t *koff,
                                __m512 out0[MR][3], __m512 out1[MR][3], long first, long cols,
                                __mmask16 m0, __mmask16 m1, __mmask16 m2) {
    if (cols <= 16) tile_8xq_body(k, ap0, ap1, xb, koff, out0, out1, first, 0, 1, 1, m0, m1, m2);
    else if (cols <= 32) tile_8xq_body(k, ap0, ap1, xb, koff, out0, out1, first, 0, 2, 1, m0, m1, m2);
    else tile_8xq_body(k, ap0, ap1, xb, koff, out0, out1, first, 0, 3, 1, m0, m1, m2);
}

/// igemm_avx2 in 48-column strips, the last one masked to the columns left.
__attribute__((target("avx512f")))
static void igemm_avx512(const mdf_igemm_args *a, long j0, long j1) {
    const int panels = (a->m + MR - 1) / MR, k = a->k;
    const int blocks = (k + KC - 1) / KC, kc = (k + blocks - 1) / blocks;
    const __m512 zero = _mm512_setzero_ps(), sl = _mm512_set1_ps(a->slope);
    __m512 (*sums)[MR][3] = aligned_alloc(64, sizeof(__m512[MR][3]) * (size_t)panels);
    if (!sums) { igemm_avx2(a, j0, j1); return; }
    float tile[MR][NRZ];
    for (long j = j0; j < j1; j += NRZ) {
        const long cols = j1 - j < NRZ ? j1 - j : NRZ;
        const unsigned m0 = mdf_lanes16(cols), m1 = mdf_lanes16(cols - 16), m2 = mdf_lanes16(cols - 32);
        const long oy = j / a->row_len, ox = j % a->row_len;
        const int fast = cols == NRZ && ox + NRZ <= a->valid_len;
        const float *xb = a->x + j;
        if (k == 0) memset(sums, 0, sizeof(__m512[MR][3]) * (size_t)panels);
        for (int k0 = 0; k0 < k; k0 += kc) {
            const long len = k - k0 < kc ? k - k0 : kc;
            for (int p = 0; p < panels; p++) {
                const float *ap = a->ap + ((long)p * k + k0) * MR;
                if (p + 1 < panels) {   // two panels at once
                    const float *ap1 = ap + (long)k * MR;
                    if (cols < NRZ) tile_8xq_add_masked(len, ap, ap1, xb, a->koff + k0, sums[p], sums[p + 1], k0 == 0, cols, m0, m1, m2);
                    else if (p == 0 && j + NRZ < j1) tile_8x48_add_prefetch(len, ap, ap1, xb, a->koff + k0, sums[p], sums[p + 1], k0 == 0);
                    else tile_8x48_add(len, ap, ap1, xb, a->koff + k0, sums[p], sums[p + 1], k0 == 0);
                    p += 1;
                    continue;
                }
                if (cols == NRZ && p == 0 && j + NRZ < j1) tile_4x48_add_prefetch(len, ap, xb, a->koff + k0, sums[p], k0 == 0);
                else if (cols == NRZ) tile_4x48_add(len, ap, xb, a->koff + k0, sums[p], k0 == 0);
                else tile_4x48_add_masked(len, ap, xb, a->koff + k0, sums[p], k0 == 0, m0, m1, m2);
            }
        }
        for (int p = 0; p < panels; p++) {
            __m512 c00 = sums[p][0][0], c01 = sums[p][0][1], c02 = sums[p][0][2];
            __m512 c10 = sums[p][1][0], c11 = sums[p][1][1], c12 = sums[p][1][2];
            __m512 c20 = sums[p][2][0], c21 = sums[p][2][1], c22 = sums[p][2][2];
            __m512 c30 = sums[p][3][0], c31 = sums[p][3][1], c32 = sums[p][3][2];
            const int r0 = p * MR, rows = a->m - r0 < MR ? a->m - r0 : MR;
            ZROW_FINISH(c00, c01, c02, 0)
            if (rows > 1) ZROW_FINISH(c10, c11, c12, 1)
            if (rows > 2) ZROW_FINISH(c20, c21, c22, 2)
            if (rows > 3) ZROW_FINISH(c30, c31, c32, 3)
            float *dst = a->c + (long)r0 * a->ldc + oy * a->valid_len + ox;
            ZROW_STORE(c00, c01, c02, 0)
            ZROW_STORE(c10, c11, c12, 1)
            ZROW_STORE(c20, c21, c22, 2)
            ZROW_STORE(c30, c31, c32, 3)
            if (!fast) store_tile(a, r0, rows, j, cols, &tile[0][0], NRZ);
        }
    }
    free(sums);
}
#endif

void mdf_igemm(const mdf_igemm_args *args, long j0, long j1) {
#if defined(__x86_64__)
    if (mdf_use_avx512(args->isa)) { igemm_avx512(args, j0, j1); return; }
    if (mdf_use_avx2(args->isa)) { igemm_avx2(args, j0, j1); return; }
#endif
    igemm_portable(args, j0, j1);
}

int mdf_igemm_avx512(void) {
#if defined(__x86_64__)
    return mdf_use_avx512(MDF_ISA_BEST);
#else
    return 0;
#endif
}
