import CKernels
import Foundation

// MARK: - Winograd F(2×2, 3×3): 3×3 stride-1 convolutions with 16 products per 4 outputs instead of 36
//
// Every 2 × 2 block of output pixels (a tile) is Aᵀ[U ⊙ V]A, with V = Bᵀ d B the transformed 4 × 4
// input patch and U = G g Gᵀ the transformed kernel (CKernels/winograd.c). Summed over the input
// channels, each of the 16 transform positions ξ is one matrix product
//   M[ξ][co][tile] = Σ_c U[ξ][co][c] · V[ξ][c][tile],
// which runs on the direct convolution's micro-kernel (mdf_igemm with the offsets of a plain matrix),
// stored channel-major (M[co][ξ][tile]) so that each channel's output transform reads one block.
// The tiles are processed in chunks of whole tile rows, one chunk per task: its V and M stay in
// the thread's cache, and every output is summed in one fixed order whatever the thread count.

/// Whether conv2d takes the Winograd path: 3×3, stride 1, no dilation, and channel counts at which
/// the transforms cost less than the products they save (`MDFLOW_WINOGRAD=0` turns it off, for
/// benchmarks that compare the two paths). cg, mg: input and output channels per group.
func winogradApplies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradEnabled && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
        && cg >= 32 && mg >= 32
}

/// Whether conv2d's weight gradient takes the Winograd path: a narrower window than the forward's,
/// since its transforms run image by image over whole images and the products reduce over tiles
/// (conv bench, one thread: 242→96 73 → 114 effective GFLOP/s, 96→64 68 → 86, but 64→64 at
/// 128×160 74 → 69 and 32→32 77 → 44).
func winogradWeightGradientApplies(_ g: ConvGeometry, cg: Int, mg: Int) -> Bool {
    winogradApplies(g, cg: cg, mg: mg) && cg >= 80 && mg >= 64
}

/// Read once: `MDFLOW_WINOGRAD=0` in the environment sends every 3×3 convolution to the direct kernel.
let winogradEnabled: Bool = ProcessInfo.processInfo.environment["MDFLOW_WINOGRAD"] != "0"

/// Tiles per chunk, at least: four of the micro-kernel's 24-column panels.
private let winogradChunkTiles = 96

/// Transforms and packs 3×3 weights (cout, cg, 3, 3) for `winogradConv`: for each ξ and group,
/// U[ξ] (mg × cg) in the 4-row panels of `packPanels4`. Result: 16 · groups · packedPanelFloats(mg, cg).
func packWinogradWeights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg)
    let packed = Storage(count: 16 * groups * per)
    let panels = (mg + 3) / 4, pp = SendablePointer(packed.pointer)
    // Panel by panel, four kernels at a time: each of the 16 planes is written in order.
    parallelFor(groups * panels, minCount: groups * mg * cg >= 1 << 12 ? 2 : Int.max) { tasks in
        for t in tasks {
            let grp = t / panels, p = t % panels
            for c in 0..<cg {
                let kernel = { (r: Int) -> UnsafePointer<Float>? in
                    4 * p + r < mg ? wt + ((grp * mg + 4 * p + r) * cg + c) * 9 : nil
                }
                var g: (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafePointer<Float>?) =
                    (kernel(0), kernel(1), kernel(2), kernel(3))
                withUnsafePointer(to: &g) { gp in
                    gp.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: 4) {
                        mdf_wino_weight4(pp.base + grp * per + p * cg * 4 + c * 4, groups * per, $0)
                    }
                }
            }
        }
    }
    return packed
}

/// The 2 × 2 output tiles of a 3×3 stride-1 undilated convolution.
struct WinogradTiles {
    let g: ConvGeometry
    let h, w, oh, ow, th, tw: Int

    init(_ g: ConvGeometry, h: Int, w: Int) {
        precondition(g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1)
        self.g = g; self.h = h; self.w = w
        (oh, ow) = g.outputSize(h: h, w: w)
        th = (oh + 1) / 2; tw = (ow + 1) / 2
    }

    var tiles: Int { th * tw }

    /// Floats of the input transform's scratch.
    var scratchCount: Int { 8 * (tw + 1) }

    /// The input transform of tile rows [ty0, ty1) of one channel x (h × w) into v (plane stride
    /// vstride). scratch: `scratchCount` floats.
    func transformInput(_ v: UnsafeMutablePointer<Float>, vstride: Int, _ x: UnsafePointer<Float>,
                        rows ty0: Int, _ ty1: Int, scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        mdf_wino_input(v, vstride, x, h, w, g.padTop, g.padLeft, ty0, ty1, tw, scratch, path.rawValue)
    }
}

/// y = act(conv(x, w) + b), or y += conv(x, w) with `accumulate`, for a 3×3 stride-1 undilated
/// geometry (any padding). packed: from `packWinogradWeights`; b: (cout) or nil.
/// x: (n, cin, h, w); y: (n, cout, oh, ow).
func winogradConv(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                  _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
                  leakySlope: Float?, accumulate: Bool, path: KernelPath = .best) {
    let lt = WinogradTiles(g, h: h, w: w)
    let (oh, ow, th, tw) = (lt.oh, lt.ow, lt.th, lt.tw)
    guard oh > 0, ow > 0 else { return }
    let cg = cin / g.groups, mg = cout / g.groups, per = packedPanelFloats(m: mg, k: cg)
    let rowsPerChunk = max(1, (winogradChunkTiles + tw - 1) / tw), chunks = (th + rowsPerChunk - 1) / rowsPerChunk
    let maxTiles = rowsPerChunk * tw, vstride = cg * maxTiles + 24
    let work = 16 * mg * cg * th * tw * n * g.groups
    let yp = SendablePointer(y)
    parallelFor(n * g.groups * chunks, minCount: work >= 1 << 17 ? 2 : Int.max) { tasks in
        let v = Storage(count: 16 * vstride), m = Storage(count: 16 * mg * maxTiles), scratch = Storage(count: lt.scratchCount)
        var koff = [Int32](repeating: 0, count: cg)
        for t in tasks {
            let ig = t / chunks, img = ig / g.groups, grp = ig % g.groups
            let ty0 = (t % chunks) * rowsPerChunk, ty1 = min(th, ty0 + rowsPerChunk), tiles = (ty1 - ty0) * tw
            for c in 0..<cg {
                lt.transformInput(v.pointer + c * tiles, vstride: vstride, x + ((img * cin + grp * cg + c) * h) * w,
                                  rows: ty0, ty1, scratch: scratch.pointer, path: path)
                koff[c] = Int32(c * tiles)
            }
            // The kernel reads up to 23 floats past each plane's last row (columns it drops): keep them finite.
            for xi in 0..<16 { (v.pointer + xi * vstride + cg * tiles).update(repeating: 0, count: 24) }
            koff.withUnsafeBufferPointer { kp in
                for xi in 0..<16 {
                    var args = mdf_igemm_args(
                        m: Int32(mg), k: Int32(cg), ap: packed + (xi * g.groups + grp) * per,
                        x: v.pointer + xi * vstride, koff: kp.baseAddress!, row_len: tiles, valid_len: tiles,
                        c: m.pointer + xi * tiles, ldc: 16 * tiles, bias: nil, slope: 0, act: 0, accumulate: 0,
                        isa: path.rawValue)
                    mdf_igemm(&args, 0, tiles)
                }
            }
            for co in 0..<mg {
                let oc = grp * mg + co
                mdf_wino_output(yp.base + (img * cout + oc) * oh * ow, oh, ow, m.pointer + co * 16 * tiles, tiles,
                                ty0, ty1, tw, b?[oc] ?? 0, leakySlope == nil ? 0 : 1, leakySlope ?? 0,
                                accumulate ? 1 : 0, path.rawValue)
            }
        }
    }
}

/// dw += the weight gradient of a 3×3 stride-1 undilated convolution, by Winograd F(2×2, 3×3):
/// Ŵ[ξ][c][co] = Σ_tiles (Bᵀ d B)[ξ][c] · (A dY Aᵀ)[ξ][co] on the weight-gradient kernel
/// (CKernels/wgrad.c), then dw[co][c] += Gᵀ Ŵ G. Image by image; the threads split the 16 ξ × the
/// 6-channel panels, so each sum keeps one order whatever the thread count.
/// dy: (n, cout, oh, ow); x: (n, cin, h, w); dw: (cout, cin/groups, 3, 3).
func winogradWeightGradient(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                            n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry, path: KernelPath = .best) {
    let lt = WinogradTiles(g, h: h, w: w)
    guard lt.oh > 0, lt.ow > 0 else { return }
    let cg = cin / g.groups, mg = cout / g.groups, tiles = lt.tiles, ohw = lt.oh * lt.ow
    let accLd = (mg + 15) / 16 * 16, tapPanels = (cg + 5) / 6, accPlane = tapPanels * 6 * accLd
    let v = Storage(count: 16 * cg * tiles), yhat = Storage(count: 16 * mg * tiles)
    let packedDy = Storage(count: 16 * accLd * tiles), acc = Storage(count: 16 * accPlane)
    let (vp, yp, pp, ap, dwp) = (SendablePointer(v.pointer), SendablePointer(yhat.pointer), SendablePointer(packedDy.pointer),
                                 SendablePointer(acc.pointer), SendablePointer(dw))
    require(cg * tiles < Int(Int32.max), "conv2d",
            "the Winograd weight gradient of \(cg) channels at \(h)×\(w) exceeds its 2^31-float offsets")
    let koff = (0..<cg).map { Int32($0 * tiles) }
    let parallel = 16 * mg * cg * tiles >= 1 << 17 ? 2 : Int.max
    let flag = path.rawValue
    for grp in 0..<g.groups {
        acc.pointer.update(repeating: 0, count: acc.count)
        for img in 0..<n {
            parallelFor(cg, minCount: parallel) { channels in
                let scratch = Storage(count: lt.scratchCount)
                for c in channels {
                    lt.transformInput(vp.base + c * tiles, vstride: cg * tiles, x + ((img * cin + grp * cg + c) * h) * w,
                                      rows: 0, lt.th, scratch: scratch.pointer, path: path)
                }
            }
            parallelFor(mg, minCount: parallel) { channels in
                for co in channels {
                    mdf_wino_dy(yp.base + co * tiles, mg * tiles, dy + (img * cout + grp * mg + co) * ohw, lt.oh, lt.ow, flag)
                }
            }
            parallelFor(16, minCount: parallel) { planes in
                for xi in planes {
                    mdf_pack_dy(pp.base + xi * accLd * tiles, yp.base + xi * mg * tiles, Int32(mg), tiles, tiles, tiles, tiles)
                }
            }
            koff.withUnsafeBufferPointer { kp in
                let koffBase = kp.baseAddress!
                parallelFor(16 * tapPanels, minCount: parallel) { tasks in
                    var t = tasks.lowerBound
                    while t < tasks.upperBound {
                        let xi = t / tapPanels, q0 = t % tapPanels, q1 = min(tapPanels, q0 + tasks.upperBound - t)
                        var args = mdf_wgrad_args(
                            m: Int32(mg), k: Int32(cg), x: vp.base + xi * cg * tiles, koff: koffBase, columns: tiles,
                            dyp: pp.base + xi * accLd * tiles, acc: ap.base + xi * accPlane + q0 * 6 * accLd,
                            acc_ld: accLd, isa: flag)
                        mdf_conv_wgrad(&args, Int32(q0), Int32(q1))
                        t += q1 - q0
                    }
                }
            }
        }
        parallelFor(mg, minCount: parallel) { channels in
            for co in channels {
                for c in 0..<cg {
                    mdf_wino_weight_grad(dwp.base + ((grp * mg + co) * cg + c) * 9, ap.base + c * accLd + co, accPlane)
                }
            }
        }
    }
}
