#ifndef MDFLOW_CKERNELS_H
#define MDFLOW_CKERNELS_H
#include <stdint.h>
#include <stddef.h>

/// Which code a kernel runs, its `isa` argument: the widest the CPU has (AVX-512 where a kernel has
/// that form, else AVX2+FMA, else the portable loop), the portable loop, or at most AVX2 (for the
/// implicit GEMM: AVX2 with its strips unpacked). The last two are for tests, which compare the three.
enum { MDF_ISA_BEST = 0, MDF_ISA_PORTABLE = 1, MDF_ISA_AVX2 = 2 };

/// An implicit GEMM, the core of mdflow's direct convolution:
///   C[r][map(j)] = act(bias[r] + Σ_kk A[r][kk] · x[koff[kk] + j])   (or C += the sum, no bias/act)
/// for the virtual columns j of one image-group. The columns live on a grid of `row_len` per output
/// row; only the first `valid_len` of each row exist in C: map(j) = (j / row_len) · valid_len + j % row_len.
/// A is packed in panels of 4 rows: panel p holds, for kk = 0..<k, A[4p ..< 4p + 4][kk] (zero past m).
/// x must be readable 24 floats past max(koff) + the last column (the caller pads its buffer).
typedef struct {
    int m;                  ///< rows of A and C (output channels)
    int k;                  ///< reduction length (taps × input channels)
    const float *ap;        ///< packed A: ceil(m/4) panels of k × 4 floats
    const float *x;         ///< base of the virtual B
    const int32_t *koff;    ///< k offsets into x
    long row_len;           ///< grid columns per output row
    long valid_len;         ///< output columns per row (≤ row_len)
    float *c;               ///< C, row r at c + r · ldc
    long ldc;
    const float *bias;      ///< m values, or NULL
    float slope;            ///< leaky ReLU slope when act == 1
    int act;                ///< 0 identity, 1 leaky ReLU: v > 0 ? v : slope · v
    int accumulate;         ///< 1: C += Σ (bias and act are ignored)
    int isa;                ///< MDF_ISA_*
} mdf_igemm_args;

/// Computes the grid columns [j0, j1) of `args`: 24-column panels from j0 with AVX2, 48-column strips
/// with AVX-512 (the last one with masked loads); stores are clipped to j1. Bitwise the same on every
/// path that has FMA: each output is one chain of fused multiply-adds in kk order.
void mdf_igemm(const mdf_igemm_args *args, long j0, long j1);

/// 1 if mdf_igemm runs its AVX-512 form here (columns cost in 16-float vectors), else 0 (24-column
/// AVX2 panels, or the portable loop).
int mdf_igemm_avx512(void);

/// Lays dy of one image-group out for `mdf_conv_wgrad`: panels of 16 channels, each column-major
/// over the grid: dst[(p · columns + j) · 16 + i] = dy[16p + i][map(j)], 0 past m and on the grid's
/// padding columns (map as for mdf_igemm). dst: ceil(m / 16) · 16 · columns floats.
void mdf_pack_dy(float *dst, const float *dy, int m, long ldy, long columns, long row_len, long valid_len);

/// The weight gradient of a direct convolution over one image-group, the implicit GEMM turned
/// around: acc[kk][r] += Σ_j x[koff[kk] + j] · dy[r][map(j)] over the grid columns j, for the taps of
/// the 6-tap panels [kp0, kp1) and the columns [col0, col1). acc is tap-major, (kp1 − kp0) · 6 taps
/// of `acc_ld` floats (m rounded up to 16); the caller adds it, transposed, into dw. dyp is dy laid out
/// by mdf_pack_dy over all `columns`.
typedef struct {
    int m;                  ///< output channels
    int k;                  ///< taps × input channels
    const float *x;         ///< the phased input of this image-group
    const int32_t *koff;    ///< k offsets into x
    long columns;           ///< grid columns (dyp's panel length)
    long col0, col1;        ///< the columns summed over
    const float *dyp;       ///< packed dy of this image-group
    float *acc;
    long acc_ld;
    int isa;                ///< MDF_ISA_*
} mdf_wgrad_args;

void mdf_conv_wgrad(const mdf_wgrad_args *args, int kp0, int kp1);

/// Writes one channel zero-padded and split into its sh × sw stride phases, the layout `mdf_igemm`
/// reads: dst[((py · sw + px) · hq + i) · wq + j] = x[i · sh + py − pt][j · sw + px − pl], 0 outside h × w,
/// for the phases py · sw + px in [ph0, ph1).
void mdf_phase_fill(float *dst, const float *x, long h, long w, long sh, long sw, long pt, long pl, long hq, long wq,
                    long ph0, long ph1);

/// The adjoint direction for stride 2: dst[2j] += a[j] for j < na and dst[2j + 1] += b[j] for j < nb
/// (b may be NULL with nb 0): two column phases of one row added back into it, interleaved; with
/// `store`, dst[2j] = a[j] and dst[2j + 1] = b[j] instead.
void mdf_add_interleaved2(float *dst, const float *a, long na, const float *b, long nb, int store, int isa);

/// Winograd F(2×2, 3×3), input transform of tile rows [ty0, ty1) × tile columns [0, tw) of one
/// channel x (h × w), seen zero-padded by pt rows on top and pl columns on the left (and zeros past
/// its end). For the 4 × 4 patch d at padded (2ty, 2tx):
/// v[ξ · vstride + (ty − ty0) · tw + tx] = (Bᵀ d B)[ξ], ξ = 0..<16 (winograd.c has the matrices).
/// scratch: 8 · (tw + 1) floats.
void mdf_wino_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                    float *scratch, int isa);

/// Winograd F(2×2, 3×3), output transform of tile rows [ty0, ty1) of one output channel (oh × ow):
/// y[2ty + a][2tx + b] = act(bias + (Aᵀ M A)[a][b]), or y += (Aᵀ M A)[a][b] with `accumulate`
/// (bias and act ignored), clipped to oh × ow. M[ξ] of tile (ty, tx) is m[ξ · mstride + (ty − ty0) · tw + tx].
void mdf_wino_output(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                     float bias, int act, float slope, int accumulate, int isa);

/// Winograd F(2×2, 3×3), kernel transform of four kernels (one 4-row panel, see mdf_igemm):
/// u[ξ · ustride + r] = (G g_r Gᵀ)[ξ] for the 3 × 3 kernels g_r (row-major; NULL: a zero kernel).
void mdf_wino_weight4(float *u, long ustride, const float *const g[4]);

/// Winograd F(2×2, 3×3) weight gradient, dy transform of one panel of up to 16 output channels
/// (channel i: oh × ow at dy + i · ldy), all tiles, in mdf_conv_wgrad's packed layout: plane ξ at
/// dst + ξ · plane_stride, dst[ξ · plane_stride + t · 16 + i] = (A dY Aᵀ)[ξ] of channel i's 2 × 2
/// block at tile t = ty · tw + tx (zero outside dy and in lanes from `rows`).
/// scratch: 4 · ((ow + 1) / 2) · 16 floats.
void mdf_wino_dy_packed(float *dst, long plane_stride, const float *dy, long ldy, int rows, long oh, long ow,
                        float *scratch, int isa);

/// Winograd F(2×2, 3×3) weight gradient, kernel side: dg (3 × 3, row-major) += Gᵀ Ŵ G with
/// Ŵ[ξ] = w[ξ · wstride], the transform-domain gradient Σ_tiles (A dY Aᵀ)[ξ] · (Bᵀ d B)[ξ].
void mdf_wino_weight_grad(float *dg, const float *w, long wstride);

/// mdf_wino_weight_grad for n ≤ 16 kernels side by side: kernel l's dg at dg + l · dstride, its Ŵ[ξ]
/// at w[ξ · wstride + l]. With AVX-512 the 16 lanes go through one register each step, the same
/// operations in the same order (no fused multiply-adds), so the same bits as n single calls.
void mdf_wino_weight_grad16(float *dg, long dstride, const float *w, long wstride, int n, int isa);

/// Winograd F(4×4, 3×3) (winograd4.c has the matrices), input transform of tile rows [ty0, ty1) ×
/// tile columns [0, tw) of one channel x (h × w), seen zero-padded by pt rows on top and pl columns
/// on the left (and zeros past its end). For the 6 × 6 patch d at padded (4ty, 4tx):
/// v[ξ · vstride + (ty − ty0) · tw + tx] = (Bᵀ d B)[ξ], ξ = 0..<36. scratch: 32 · (tw + 1) floats.
void mdf_wino4_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long ty0, long ty1, long tw,
                     float *scratch, int isa);

/// Winograd F(4×4, 3×3), output transform of tile rows [ty0, ty1) of one output channel (oh × ow):
/// y[4ty + a][4tx + b] = act(bias + (Aᵀ M A)[a][b]), or y += (Aᵀ M A)[a][b] with `accumulate` (bias
/// and act ignored), clipped to oh × ow. M[ξ] of tile (ty, tx) is m[ξ · mstride + (ty − ty0) · tw + tx].
void mdf_wino4_output(float *y, long oh, long ow, const float *m, long mstride, long ty0, long ty1, long tw,
                      float bias, int act, float slope, int accumulate, int isa);

/// Winograd F(4×4, 3×3), kernel transform of one 3 × 3 kernel g (row-major), in Double:
/// u[ξ · ustride] = (G g Gᵀ)[ξ], ξ = 0..<36.
void mdf_wino4_weight(float *u, long ustride, const float *g);

/// Asks the caches for the n floats from p (one prefetch per 64-byte line), to be read soon.
void mdf_prefetch(const float *p, long n);

/// Winograd F(4, 5) along one axis (winograd1d.c has the matrices), input transform of one channel x
/// (h × w) of a 1×5 (`along_rows`) or 5×1 stride-1 convolution with output oh × ow, x seen
/// zero-padded by pt rows on top and pl columns on the left. Along rows, a tile is 4 output columns
/// of one output row, tw = ⌈ow / 4⌉ tiles a row, and [r0, r1) are output rows; along columns, a tile
/// is 4 output rows of one column, ow tiles a row of tiles, and [r0, r1) are rows of tiles. Tile t
/// (counted from row r0) of the 8-input window d: v[ξ · vstride + t] = (Bᵀ d)[ξ], ξ = 0..<8.
/// scratch: max(4 · (tw + 1), w) floats.
void mdf_wino5_input(float *v, long vstride, const float *x, long h, long w, long pt, long pl, long r0, long r1,
                     long oh, long ow, int along_rows, float *scratch, int isa);

/// Winograd F(4, 5) along one axis, output transform of rows [r0, r1) (as in mdf_wino5_input) of one
/// output channel (oh × ow): y = act(bias + (Aᵀ M)[i]), or y += (Aᵀ M)[i] with `accumulate` (bias and
/// act ignored), clipped to oh × ow. M[ξ] of tile t is m[ξ · mstride + t].
void mdf_wino5_output(float *y, long oh, long ow, const float *m, long mstride, long r0, long r1, int along_rows,
                      float bias, int act, float slope, int accumulate, int isa);

/// y = 1 / (1 + e^−x) over n floats (y may be x), eight lanes at a time where AVX2 is available.
void mdf_sigmoid(float *y, const float *x, long n, int isa);

/// y = tanh x over n floats (y may be x), eight lanes at a time where AVX2 is available.
void mdf_tanh(float *y, const float *x, long n, int isa);

/// The local correlation's inner product, forward and backward (Tensor/Ops/Correlation.swift):
///   out[j · ops + x] = scale · Σ_{i < count} a[aoff[i] + x] · b[bi[i] + bj[j] + x]   (or out += that)
/// for j < nb, x < w. Forward: i runs over channels and j over displacements; backward: i over
/// displacements and j over channels. Every output is one fused multiply-add chain in i order on
/// AVX2 and AVX-512 (bitwise equal); the portable loop multiplies and adds separately.
void mdf_corr_rows(float *out, long ops, const float *a, const long *aoff, const float *b, const long *bi, const long *bj,
                   int count, int nb, long w, float scale, int accumulate, int isa);

/// Copies `rows` rows of w floats, each with d zero columns on either side: dst rows are w + 2d long.
void mdf_pad_columns(float *dst, const float *src, long rows, long w, long d);

/// Bilinear backward warping (Tensor/Ops/Warp.swift), one row py of an h × w image whose samples
/// sit at (x + u[x], py + v[x]). mdf_warp_corners finds, for x < w, the in-plane offsets o[k·w + x]
/// of the four corners k = 00, 01, 10, 11 and their weights wt[k·w + x] (0 for a corner outside the
/// image; with `border` the coordinates are clamped to the image first); with gx and gy non-NULL
/// also the coefficients of ∂sample/∂x and ∂sample/∂y (0 along a clamped coordinate). o: 4w
/// int32; wt, gx, gy: 4w floats.
void mdf_warp_corners(int32_t *o, float *wt, float *gx, float *gy, const float *u, const float *v,
                      long py, long h, long w, int border, int isa);

/// y[ch·ys + x] = Σ_k wt[k·w + x] · img[ch·ps + o[k·w + x]] for c channels.
void mdf_warp_sample(float *y, long ys, const float *img, long ps, long c, const int32_t *o, const float *wt, long w, int isa);

/// dimg[ch·ps + o[k·w + x]] += wt[k·w + x] · g[ch·gs + x] for c channels (serial: corners collide).
void mdf_warp_scatter(float *dimg, long ps, const float *g, long gs, long c, const int32_t *o, const float *wt, long w, int isa);

/// du[x] += Σ_ch g[ch·gs + x] · Σ_k gx[k·w + x] · img[ch·ps + o[k·w + x]], dv likewise with gy.
/// scratch: 2w floats.
void mdf_warp_flow_grad(float *du, float *dv, const float *g, long gs, const float *img, long ps, long c,
                        const int32_t *o, const float *gx, const float *gy, float *scratch, long w, int isa);

/// Tells glibc to serve blocks up to 1 GiB from its heap and never trim it: freed tensor memory
/// stays in the process for the next request instead of being unmapped and faulted in again.
void mdf_keep_large_blocks(void);
/// Bytes in live malloc allocations (glibc mallinfo2; 0 elsewhere).
size_t mdf_heap_in_use(void);
/// Returns the heaps' free pages to the system (glibc malloc_trim; nothing elsewhere).
void mdf_release_free_memory(void);

/// One chunk of a parallel job.
typedef void (*mdf_pool_fn)(void *ctx, long chunk);

/// Runs fn(ctx, c) for every c < chunks on the calling thread and up to threads − 1 pool workers
/// (started on first use; they spin briefly between jobs, then sleep), and returns when all are
/// done. Inline, in chunk order, for one thread, from inside a chunk, or while another thread's
/// job runs.
void mdf_pool_run(long chunks, int threads, mdf_pool_fn fn, void *ctx);

#endif
