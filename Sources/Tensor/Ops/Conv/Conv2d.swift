// conv2d: where a convolution is entered (`Tensor.conv2d`, `conv2dForward`, `conv2dBackward`), the
// rules that choose its path, and the map of those paths below. cg, mg: input and output channels
// per group; every Winograd path needs MDFLOW_WINOGRAD ≠ 0 and takes any padding and groups.
//
// Forward: conv2dForward → convolve, the first row that fits; the weights packed once for that path
// (packForConvolve, WeightPacking.swift) and cached while unchanged (DerivedWeights). Every path fuses
// bias and a following (leaky) ReLU into its stores.
//   3×3, stride 1, dilation 1, cg ≥ 32, mg ≥ 32, no gradient recorded (`inference`) and
//     MDFLOW_WINOGRAD ≠ 2                            Winograd F(4×4, 3×3)   Winograd.swift, WinogradTiling.swift;
//                                                                           winograd4.c, igemm.c (products)
//   3×3, stride 1, dilation 1, cg ≥ 32, mg ≥ 32      Winograd F(2×2, 3×3)   same Swift; winograd.c, igemm.c
//   1×5 or 5×1, stride 1, dilation 1, cg, mg ≥ 32    Winograd F(4, 5)       same Swift; winograd1d.c, igemm.c
//   anything else                                    direct: implicit GEMM  DirectConv.swift, PhasedLayout.swift;
//                                                    over a padded stride-  igemm.c, phase_fill.c (the copy)
//                                                    phase copy of x, in bands of output rows (an unpadded
//                                                    1×1 stride-1 layer with AVX-512: x read in place)
//
// Backward (conv2dBackward), after the fused activation's gradient (`leakyReLUBackwardFromOutput`,
// its mask read off the output):
//   input gradient dx — directInputGradient (ConvInputGradient.swift), else the fallback:
//     stride 1                        dy convolved with the flipped kernel (cin and cout swapped) through
//                                     `convolve`: the forward rows above but never F(4×4, 3×3); added into
//                                     dx, or a first gradient assigned
//     stride > 1                      each stride phase a stride-1 implicit GEMM over one band copy of dy,
//                                     the phases added into dx (igemm.c; phase_fill.c: the copy and
//                                     mdf_add_interleaved2)
//     a padding wider than the        Wᵀ·dY by sgemm (OpenBLAS), then col2im: col2imInputGradient
//     dilated kernel (a phase would   (Im2col.swift)
//     need negative padding)
//   weight gradient dw:
//     3×3, stride 1, dilation 1,      Winograd F(2×2, 3×3): winogradWeightGradient (Winograd.swift);
//     cg ≥ 64, mg ≥ 32                winograd.c (x and dw transforms), wgrad.c (dy transform, products)
//     anything else                   direct: directConvWeightGradient (DirectConv.swift, PhasedLayout.swift);
//                                     wgrad.c, phase_fill.c
//   bias gradient db:                 conv2dBiasGradient (this file)
//
// The transposed convolution is separate (ConvTranspose2d.swift): sgemm + col2im forward, im2col +
// sgemm backward (Im2col.swift), groups 1.
//
// Inside every C kernel above, the code runs as the CPU allows (CKernels/dispatch.h): AVX-512 where the
// kernel has that form (unless MDFLOW_AVX512=0), else AVX2+FMA, else portable C; tests pick one through
// `KernelPath`.
import Foundation

// MARK: - Path selection

/// Whether conv2d takes the Winograd path: 3×3, stride 1, no dilation, and channel counts at which
/// the transforms cost less than the products they save (`MDFLOW_WINOGRAD=0` turns it off, for
/// benchmarks that compare the two paths). cg, mg: input and output channels per group.
func winogradApplies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradEnabled && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
        && cg >= 32 && mg >= 32
}

/// Whether conv2d's weight gradient takes the Winograd path: a narrower window than the forward's,
/// since its transforms run image by image over whole images and the products reduce over tiles.
/// From 64 input channels (conv bench, one thread, Zen 4, direct → Winograd, effective GFLOP/s:
/// 64→64 at 192×256 94 → 126, 64→32 at 96×128 100 → 108, 64→64 at 48×64 101 → 120), not below
/// (32→32 at 96×128 97 → 84; 32→32 ×3 groups 96 → 94).
func winogradWeightGradientApplies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradApplies(g, cg: cg, mg: mg) && cg >= 64
}

/// Whether conv2d takes the F(4, 5) path: a 1×5 or 5×1 kernel, stride 1, no dilation, and at least
/// 32 input and output channels per group (RAFT's separable GRU: 384 → 128).
func winograd5Applies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradEnabled && Winograd5Tiles.fits(g) && cg >= 32 && mg >= 32
}

/// Whether a 3×3 layer that takes Winograd may take F(4×4, 3×3) rather than F(2×2, 3×3): in a forward
/// pass no gradient is taken of (conv2dForward's `inference`). `MDFLOW_WINOGRAD=2` keeps F(2×2, 3×3)
/// there too, for A/B runs.
func winograd4Applies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradApplies(g, cg: cg, mg: mg) && winogradTile == 4
}

/// Read once: the inference tile of 3×3 Winograd layers (`MDFLOW_WINOGRAD=2`: 2 × 2, else 4 × 4).
let winogradTile: Int = ProcessInfo.processInfo.environment["MDFLOW_WINOGRAD"] == "2" ? 2 : 4

/// Read once: `MDFLOW_WINOGRAD=0` in the environment sends every 3×3, 1×5 and 5×1 convolution to the direct kernel.
let winogradEnabled: Bool = ProcessInfo.processInfo.environment["MDFLOW_WINOGRAD"] != "0"

// MARK: - Forward

/// y = act(conv(x, w) + b), act the identity or, with `leakySlope`, x > 0 ? x : slope·x (0: ReLU).
/// x: (n, cin, h, w); wt: (cout, cin/groups, kh, kw); b: (cout) or nil; y: (n, cout, oh, ow).
/// 3×3 stride-1 layers run as Winograd F(2×2, 3×3), 1×5 and 5×1 ones as F(4, 5) (Winograd.swift), the
/// others on the direct convolution (DirectConv.swift); all fuse bias and activation into their stores.
/// `inference`: no gradient will be taken, so 3×3 Winograd layers may take F(4×4, 3×3), whose
/// larger rounding (~5e-6 of the output's scale against ~5e-7) is harmless for a result but, through
/// ReLU kinks, moved the PyTorch gradient fixtures' checks past 1e-3; training keeps F(2×2, 3×3).
public func conv2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                          _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
                          leakySlope: Float? = nil, inference: Bool = false) {
    convolve(y, x, wt, b, n: n, cin: cin, h: h, w: w, cout: cout, g, leakySlope: leakySlope, accumulate: false,
             inference: inference)
}

/// The weights (cout, cin/groups, kh, kw) packed as `convolve` runs them: transformed for Winograd
/// where it applies, in 4-row panels for the direct convolution elsewhere.
func packForConvolve(_ wt: UnsafePointer<Float>, cin: Int, cout: Int, _ g: ConvGeometry, inference: Bool = false) -> Storage {
    let cg = cin / g.groups, mg = cout / g.groups
    if inference && winograd4Applies(g, cg: cg, mg: mg) { return packWinograd4Weights(wt, cout: cout, cg: cg, groups: g.groups) }
    if winogradApplies(g, cg: cg, mg: mg) { return packWinogradWeights(wt, cout: cout, cg: cg, groups: g.groups) }
    if winograd5Applies(g, cg: cg, mg: mg) { return packWinograd5Weights(wt, cout: cout, cg: cg, groups: g.groups) }
    return packConvWeights(wt, cout: cout, kg: cg * g.kh * g.kw, groups: g.groups)
}

/// y = act(conv(x, w) + b), or y += conv(x, w) with `accumulate` (no bias or act), by Winograd
/// (F(2×2, 3×3) or F(4, 5)) where it applies and the direct convolution elsewhere. packed: from `packForConvolve`.
/// x: (n, cin, h, w); b: (cout) or nil; y: (n, cout, oh, ow).
func convolve(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
              _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
              leakySlope: Float?, accumulate: Bool, inference: Bool = false) {
    let cg = cin / g.groups, mg = cout / g.groups
    if inference && winograd4Applies(g, cg: cg, mg: mg) {
        winogradConv(WinogradTiles(g, h: h, w: w, tile: 4), y, x, packed: packed, b, n: n, cin: cin, h: h, w: w, cout: cout,
                     groups: g.groups, leakySlope: leakySlope, accumulate: accumulate)
    } else if winogradApplies(g, cg: cg, mg: mg) {
        winogradConv(y, x, packed: packed, b, n: n, cin: cin, h: h, w: w, cout: cout, g,
                     leakySlope: leakySlope, accumulate: accumulate)
    } else if winograd5Applies(g, cg: cg, mg: mg) {
        winogradConv(Winograd5Tiles(g, h: h, w: w), y, x, packed: packed, b, n: n, cin: cin, h: h, w: w, cout: cout,
                     groups: g.groups, leakySlope: leakySlope, accumulate: accumulate)
    } else {
        directConv(y, x, packed: packed, b, n: n, cin: cin, h: h, w: w, cout: cout, g,
                   leakySlope: leakySlope, accumulate: accumulate)
    }
}

/// `convolve` with the weights wt (cout, cin/groups, kh, kw), packed once while they stay the same
/// (DerivedWeights).
func convolve(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
              _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
              leakySlope: Float?, accumulate: Bool, inference: Bool = false) {
    let f4 = inference && winograd4Applies(g, cg: cin / g.groups, mg: cout / g.groups)
    let packed = DerivedWeights.shared.form("conv\(f4 ? " F(4×4)" : "") \(cin)→\(cout) \(g)", of: wt,
                                            count: cout * cin / g.groups * g.kh * g.kw) {
        packForConvolve(wt, cin: cin, cout: cout, g, inference: f4)
    }
    defer { withExtendedLifetime(packed) {} }   // alive until the kernels are done with its pointer
    convolve(y, x, packed: packed.pointer, b, n: n, cin: cin, h: h, w: w, cout: cout, g,
             leakySlope: leakySlope, accumulate: accumulate, inference: f4)
}

// MARK: - Backward

/// dy·act′: the gradient before a fused leaky ReLU, read off its output y (y > 0 iff its input > 0).
/// dy, y, out: (count)
public func leakyReLUBackwardFromOutput(_ out: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                        count: Int, slope: Float) {
    let op = SendablePointer(out)
    parallelFor(count, minCount: 1 << 18) { r in for i in r { op.base[i] = dy[i] * LeakyReLUKernel.d(y[i], y[i], slope) } }
}

/// Gradients of conv2d. dx += Wᵀ·dY (dx = with `assignDx`: dx uninitialized); dw += dY·Bᵀ (B the
/// convolution's column matrix); db += Σ dY. Each may be nil. Which path each takes: the map at the
/// top of this file.
public func conv2dBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
                           _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                           n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry, assignDx: Bool = false) {
    let (oh, ow) = g.outputSize(h: h, w: w)
    let cg = cin / g.groups, mg = cout / g.groups
    if let db { conv2dBiasGradient(db, dy, n: n, cout: cout, ohw: oh * ow) }
    if let dw {
        if winogradWeightGradientApplies(g, cg: cg, mg: mg) {
            winogradWeightGradient(dw, dy, x, n: n, cin: cin, h: h, w: w, cout: cout, g)
        } else {
            directConvWeightGradient(dw, dy, x, n: n, cin: cin, h: h, w: w, cout: cout, g)
        }
    }
    guard let dx else { return }
    if directInputGradient(dx, dy, wt, n: n, cin: cin, h: h, w: w, cout: cout, g, assign: assignDx) { return }
    col2imInputGradient(dx, dy, wt, n: n, cin: cin, h: h, w: w, cout: cout, g, assign: assignDx)
}

/// db += Σ dY over images and pixels. Channels in parallel; each channel's sum keeps one order (per
/// image, eight running sums). dy: (n, cout, ohw); db: (cout).
func conv2dBiasGradient(_ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, n: Int, cout: Int, ohw: Int) {
    let dbp = SendablePointer(db)
    parallelFor(cout, minCount: n * cout * ohw >= 1 << 16 ? 2 : Int.max) { channels in
        for c in channels {
            for img in 0..<n {
                let p = dy + (img * cout + c) * ohw
                var acc = SIMD8<Float>(repeating: 0)
                var i = 0
                while i + 8 <= ohw { acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self); i += 8 }
                var s = acc.sum()
                while i < ohw { s += p[i]; i += 1 }
                dbp.base[c] += s
            }
        }
    }
}

// MARK: - Tensor op

extension Tensor {
    /// 2-D convolution, optionally followed by a fused leaky ReLU (`leakySlope`; 0: ReLU).
    /// self: (N, Cin, H, W); weight: (Cout, Cin/groups, kh, kw); bias: (Cout).
    public func conv2d(_ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, leakySlope: Float? = nil) -> Tensor {
        let x = self
        require(x.rank == 4 && weight.rank == 4, "conv2d", "input \(describe(x.shape)) and weight \(describe(weight.shape)) must be 4-D")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = weight.shape[0]
        require(cin % g.groups == 0 && cout % g.groups == 0 && weight.shape[1] * g.groups == cin
                && weight.shape[2] == g.kh && weight.shape[3] == g.kw, "conv2d",
                "input \(describe(x.shape)) does not fit weight \(describe(weight.shape)) with \(g)")
        if let bias { require(bias.count == cout, "conv2d", "bias \(describe(bias.shape)) for \(cout) output channels") }
        let (oh, ow) = g.outputSize(h: h, w: w)
        require(oh > 0 && ow > 0, "conv2d", "input \(describe(x.shape)) too small for \(g)")
        let y = Tensor(uninitialized: [n, cout, oh, ow])
        let inference = !Tape.isRecording || !(x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
        conv2dForward(y.data, x.data, weight.data, bias?.data, n: n, cin: cin, h: h, w: w, cout: cout, g, leakySlope: leakySlope,
                      inference: inference)
        Tape.record(y, inputs: bias.map { [x, weight, $0] } ?? [x, weight]) { dy in
            var pre: Storage? = nil
            defer { withExtendedLifetime(pre) {} }
            if let slope = leakySlope {
                pre = Storage(count: y.count)
                leakyReLUBackwardFromOutput(pre!.pointer, dy, y.data, count: y.count, slope: slope)
            }
            let dx = x.gradSink
            conv2dBackward(dx: dx?.pointer, dw: weight.gradIfNeeded, db: bias?.gradIfNeeded, pre?.pointer ?? dy,
                           x.data, weight.data, n: n, cin: cin, h: h, w: w, cout: cout, g, assignDx: dx?.assign ?? false)
        }
        return y
    }
}
