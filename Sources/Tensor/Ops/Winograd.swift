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

/// The row stride of a Winograd chunk's transformed input and products: `tiles` rounded up to 16
/// floats (one 64-byte cache line).
@inline(__always) func winogradRowStride(_ tiles: Int) -> Int { (tiles + 15) / 16 * 16 }

/// Tiles per chunk, at least: four of the micro-kernel's 24-column panels.
private let winogradChunkTiles = 96

/// Tiles per chunk, at least, for `planes` transform planes of `cg` channels: 96, fewer (down to 24)
/// where a chunk's transformed input would pass 300 Ki floats (1.2 MB, about the L2 cache). F(4×4,
/// 3×3) with full RAFT's 256-channel layers ran 1035 / 1143 ms at 24 tiles against 1103 / 1402 at
/// 96 (inference, 2 threads); FastFlowNet's 96-channel decoders were fastest at 96.
func winogradLeastTiles(planes: Int, cg: Int) -> Int {
    max(24, min(winogradChunkTiles, 300_000 / max(1, planes * cg)))
}

/// Columns the micro-kernel computes at a time: 16-float vectors with AVX-512 (a strip's last piece
/// computes only the vectors it has), 24-column panels otherwise.
let igemmColumnStep: Int = mdf_igemm_avx512() != 0 ? 16 : 24

/// Tile rows per chunk: from the fewest that make `winogradChunkTiles` to twice that, the count
/// whose chunks leave the least of the micro-kernel's column steps (`step`, igemmColumnStep) empty
/// (a chunk of t tiles costs ⌈t / step⌉); ties go to smaller chunks. RAFT-small's update block at
/// 256×320 (16 rows of 20 tiles) gets 4-row chunks with AVX-512, 20 vectors for 320 tiles (6-row
/// chunks took 21), and 6-row chunks with AVX2, 14 panels (5-row chunks took 16).
func winogradRowsPerChunk(rows: Int, rowTiles: Int, leastTiles: Int = winogradChunkTiles, step: Int = igemmColumnStep) -> Int {
    let least = max(1, (leastTiles + rowTiles - 1) / rowTiles)
    func cost(_ r: Int) -> Int {
        let full = rows / r, rest = rows % r
        return full * ((r * rowTiles + step - 1) / step) + (rest * rowTiles + step - 1) / step
    }
    var best = least
    for r in least...max(least, min(rows, 2 * least)) where cost(r) < cost(best) { best = r }
    return best
}

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

/// How a Winograd convolution cuts its output into tiles and transforms them: the tiles form `rows`
/// rows of `rowTiles` each (a task takes whole rows), and each tile has `planes` transform values.
protocol WinogradTiling {
    var planes: Int { get }
    var oh: Int { get }
    var ow: Int { get }
    var rows: Int { get }
    var rowTiles: Int { get }
    /// Floats of the input transform's scratch.
    var scratchCount: Int { get }
    /// The input rows [lo, hi) that tile rows [r0, r1) read (clipped to the input; empty: lo ≥ hi).
    func inputRows(_ r0: Int, _ r1: Int) -> (lo: Int, hi: Int)
    /// The input transform of tile rows [r0, r1) of one channel x (h × w) into v: plane ξ of tile t
    /// (counted from row r0) at v[ξ · vstride + t].
    func transformInput(_ v: UnsafeMutablePointer<Float>, vstride: Int, _ x: UnsafePointer<Float>,
                        rows r0: Int, _ r1: Int, scratch: UnsafeMutablePointer<Float>, path: KernelPath)
    /// The output transform of tile rows [r0, r1) of one output channel y (oh × ow) from m (plane stride
    /// mstride): y = act(bias + ·), or y += · with `accumulate`.
    func transformOutput(_ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, mstride: Int, rows r0: Int, _ r1: Int,
                         bias: Float, leakySlope: Float?, accumulate: Bool, path: KernelPath)
}

/// The m × m output tiles of a 3×3 stride-1 undilated convolution: F(2×2, 3×3) (m = 2,
/// CKernels/winograd.c, 16 products per 4 outputs) or F(4×4, 3×3) (m = 4, CKernels/winograd4.c, 36
/// per 16).
struct WinogradTiles: WinogradTiling {
    let g: ConvGeometry
    let h, w, oh, ow, th, tw: Int
    /// Outputs per tile side: 2 or 4.
    let m: Int

    init(_ g: ConvGeometry, h: Int, w: Int, tile m: Int = 2) {
        precondition(g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && (m == 2 || m == 4))
        self.g = g; self.h = h; self.w = w; self.m = m
        (oh, ow) = g.outputSize(h: h, w: w)
        th = (oh + m - 1) / m; tw = (ow + m - 1) / m
    }

    var planes: Int { (m + 2) * (m + 2) }
    var rows: Int { th }
    var rowTiles: Int { tw }
    var tiles: Int { th * tw }
    /// F(2×2): four padded rows split into even and odd columns; F(4×4): eight rows in four phases.
    var scratchCount: Int { (m == 2 ? 8 : 32) * (tw + 1) }
    func inputRows(_ ty0: Int, _ ty1: Int) -> (lo: Int, hi: Int) { (max(0, m * ty0 - g.padTop), min(h, m * ty1 + 2 - g.padTop)) }

    func transformInput(_ v: UnsafeMutablePointer<Float>, vstride: Int, _ x: UnsafePointer<Float>,
                        rows ty0: Int, _ ty1: Int, scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        let transform = m == 2 ? mdf_wino_input : mdf_wino4_input
        transform(v, vstride, x, h, w, g.padTop, g.padLeft, ty0, ty1, tw, scratch, path.rawValue)
    }

    func transformOutput(_ y: UnsafeMutablePointer<Float>, _ mp: UnsafePointer<Float>, mstride: Int, rows ty0: Int, _ ty1: Int,
                         bias: Float, leakySlope: Float?, accumulate: Bool, path: KernelPath) {
        let transform = m == 2 ? mdf_wino_output : mdf_wino4_output
        transform(y, oh, ow, mp, mstride, ty0, ty1, tw, bias, leakySlope == nil ? 0 : 1, leakySlope ?? 0,
                  accumulate ? 1 : 0, path.rawValue)
    }
}

/// Transforms and packs 3×3 weights (cout, cg, 3, 3) for `winogradConv` with 4 × 4 `WinogradTiles`: for
/// each ξ = 6a + b and group, (G g Gᵀ)[a][b] (mg × cg) in 4-row panels. Result:
/// 36 · groups · packedPanelFloats(mg, cg).
func packWinograd4Weights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg), panels = (mg + 3) / 4
    let packed = Storage(count: 36 * groups * per)
    let pp = SendablePointer(packed.pointer)
    parallelFor(groups * panels, minCount: groups * mg * cg >= 1 << 12 ? 2 : Int.max) { tasks in
        for t in tasks {
            let grp = t / panels, p = t % panels
            for c in 0..<cg {
                for r in 0..<4 {
                    let co = 4 * p + r, u = pp.base + grp * per + p * cg * 4 + c * 4 + r
                    if co < mg {
                        mdf_wino4_weight(u, groups * per, wt + ((grp * mg + co) * cg + c) * 9)
                    } else {
                        for xi in 0..<36 { u[xi * groups * per] = 0 }
                    }
                }
            }
        }
    }
    return packed
}

/// The tiles of a 1×5 or 5×1 stride-1 undilated convolution (RAFT's separable GRU): F(4, 5) along the
/// kernel's axis, tiles of 4 output pixels along it (CKernels/winograd1d.c).
struct Winograd5Tiles: WinogradTiling {
    let g: ConvGeometry
    let h, w, oh, ow: Int
    /// 1×5: tiles run along the rows; 5×1: along the columns.
    let alongRows: Bool

    init(_ g: ConvGeometry, h: Int, w: Int) {
        precondition(Winograd5Tiles.fits(g))
        self.g = g; self.h = h; self.w = w
        (oh, ow) = g.outputSize(h: h, w: w)
        alongRows = g.kh == 1
    }

    static func fits(_ g: ConvGeometry) -> Bool {
        g.kh * g.kw == 5 && min(g.kh, g.kw) == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1
    }

    var planes: Int { 8 }
    var rows: Int { alongRows ? oh : (oh + 3) / 4 }
    var rowTiles: Int { alongRows ? (ow + 3) / 4 : ow }
    var scratchCount: Int { max(4 * ((ow + 3) / 4 + 1), w) }
    func inputRows(_ r0: Int, _ r1: Int) -> (lo: Int, hi: Int) {
        alongRows ? (max(0, r0 - g.padTop), min(h, r1 - g.padTop)) : (max(0, 4 * r0 - g.padTop), min(h, 4 * r1 + 4 - g.padTop))
    }

    func transformInput(_ v: UnsafeMutablePointer<Float>, vstride: Int, _ x: UnsafePointer<Float>,
                        rows r0: Int, _ r1: Int, scratch: UnsafeMutablePointer<Float>, path: KernelPath) {
        mdf_wino5_input(v, vstride, x, h, w, g.padTop, g.padLeft, r0, r1, oh, ow, alongRows ? 1 : 0, scratch, path.rawValue)
    }

    func transformOutput(_ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, mstride: Int, rows r0: Int, _ r1: Int,
                         bias: Float, leakySlope: Float?, accumulate: Bool, path: KernelPath) {
        mdf_wino5_output(y, oh, ow, m, mstride, r0, r1, alongRows ? 1 : 0, bias, leakySlope == nil ? 0 : 1,
                         leakySlope ?? 0, accumulate ? 1 : 0, path.rawValue)
    }

    /// G of F(4, 5) (winograd1d.c's Bᵀ carries integer rows, so G carries their factors), 8 × 5.
    static let kernelTransform: [[Double]] = [
        [0.25, 0, 0, 0, 0],
        [1, 1, 1, 1, 1].map { $0 / 18 },
        [1, -1, 1, -1, 1].map { $0 / 18 },
        [1, 2, 4, 8, 16].map { $0 / 360 },
        [1, -2, 4, -8, 16].map { $0 / 360 },
        [16, 8, 4, 2, 1].map { $0 / 45 },
        [16, -8, 4, -2, 1].map { $0 / 45 },
        [0, 0, 0, 0, 0.25],
    ]
}

/// Transforms and packs 1×5 or 5×1 weights (cout, cg, 5 taps) for `winogradConv` with
/// `Winograd5Tiles`: for each ξ and group, (G g)[ξ] (mg × cg) in 4-row panels. Result:
/// 8 · groups · packedPanelFloats(mg, cg).
func packWinograd5Weights(_ wt: UnsafePointer<Float>, cout: Int, cg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: cg), panels = (mg + 3) / 4
    let packed = Storage(count: 8 * groups * per)
    let gt = Winograd5Tiles.kernelTransform
    for grp in 0..<groups {
        for p in 0..<panels {
            for c in 0..<cg {
                for r in 0..<4 {
                    let co = 4 * p + r
                    for xi in 0..<8 {
                        var u = 0.0
                        if co < mg {
                            let k = wt + ((grp * mg + co) * cg + c) * 5
                            for j in 0..<5 { u += gt[xi][j] * Double(k[j]) }
                        }
                        packed.pointer[(xi * groups + grp) * per + p * cg * 4 + c * 4 + r] = Float(u)
                    }
                }
            }
        }
    }
    return packed
}

/// y = act(conv(x, w) + b), or y += conv(x, w) with `accumulate`, on a Winograd tiling (any padding).
/// packed: from `packWinogradWeights` (F(2×2, 3×3)), `packWinograd4Weights` (F(4×4, 3×3)) or
/// `packWinograd5Weights` (F(4, 5)), to match the tiling;
/// b: (cout) or nil. x: (n, cin, h, w); y: (n, cout, oh, ow).
///
/// A task is one chunk of tile rows of one image-group; each thread runs whole tasks, keeping the
/// chunk's transformed input and products in its cache. A layer with fewer than two tasks a thread
/// (FastFlowNet's coarse levels in inference: one chunk, one image, one or three groups) instead
/// runs the three stages one after another, each split finely across the threads: the input
/// transform by channels, the products by transform planes, the output transform by output
/// channels (`splitStages`: force either way, for tests). Each output's sums are the same either way.
func winogradConv<T: WinogradTiling>(_ lt: T, _ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                                     packed: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, n: Int, cin: Int,
                                     h: Int, w: Int, cout: Int, groups: Int, leakySlope: Float?, accumulate: Bool,
                                     path: KernelPath = .best, splitStages: Bool? = nil) {
    let (oh, ow, rows, rowTiles, planes) = (lt.oh, lt.ow, lt.rows, lt.rowTiles, lt.planes)
    guard oh > 0, ow > 0 else { return }
    let cg = cin / groups, mg = cout / groups, per = packedPanelFloats(m: mg, k: cg)
    let rowsPerChunk = winogradRowsPerChunk(rows: rows, rowTiles: rowTiles, leastTiles: winogradLeastTiles(planes: planes, cg: cg)), chunks = (rows + rowsPerChunk - 1) / rowsPerChunk
    // Rows of V and M start every `ts` floats, `tiles` rounded up to 16: every row begins on a
    // cache line, so the micro-kernel's 64-byte loads and stores never straddle two.
    let maxStride = winogradRowStride(rowsPerChunk * rowTiles), vstride = cg * maxStride + 24, mCount = planes * mg * maxStride
    let tasks = n * groups * chunks
    let parallel = planes * mg * cg * rows * rowTiles * n * groups >= 1 << 17
    let yp = SendablePointer(y)

    /// Task t: its image and group, tile rows [r0, r1), tile count and row stride.
    func task(_ t: Int) -> (img: Int, grp: Int, r0: Int, r1: Int, tiles: Int, ts: Int) {
        let ig = t / chunks, r0 = (t % chunks) * rowsPerChunk, r1 = min(rows, r0 + rowsPerChunk)
        return (ig / groups, ig % groups, r0, r1, (r1 - r0) * rowTiles, winogradRowStride((r1 - r0) * rowTiles))
    }
    /// Input channels cs of task t into v (planes × vstride): the kernel reads the columns past
    /// `tiles` of each row and up to 23 floats past each plane's last row (columns it drops), which
    /// are zeroed with `clear`.
    func transformInput(_ v: UnsafeMutablePointer<Float>, _ t: Int, _ cs: Range<Int>, clear: Bool, scratch: UnsafeMutablePointer<Float>) {
        let k = task(t)
        if clear {
            for xi in 0..<planes {
                let plane = v + xi * vstride
                if k.ts > k.tiles { for c in cs { (plane + c * k.ts + k.tiles).update(repeating: 0, count: k.ts - k.tiles) } }
                if cs.upperBound == cg { (plane + cg * k.ts).update(repeating: 0, count: 24) }
            }
        }
        // The rows each channel reads are a short block; the next channel's is requested while
        // this one is transformed (the transform otherwise waits on reading it).
        let (lo, hi) = lt.inputRows(k.r0, k.r1)
        for c in cs {
            let plane = x + ((k.img * cin + k.grp * cg + c) * h) * w
            if c + 1 < cg && hi > lo { mdf_prefetch(plane + (h + lo) * w, (hi - lo) * w) }
            lt.transformInput(v + c * k.ts, vstride: vstride, plane, rows: k.r0, k.r1, scratch: scratch, path: path)
        }
    }
    // The products' tap offsets, channel c's row of V at c · ts: ts is maxStride but in a shorter
    // last chunk.
    let lastStride = task(tasks - 1).ts
    let koffs = [maxStride, lastStride].map { ts in (0..<cg).map { Int32($0 * ts) } }
    /// M[co][ξ] = U[ξ] · V[ξ] for planes ξ in xis of task t; m: mg · planes rows of ts.
    func multiply(_ v: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ t: Int, _ xis: Range<Int>) {
        let k = task(t)
        koffs[k.ts == maxStride ? 0 : 1].withUnsafeBufferPointer { kp in
            for xi in xis {
                var args = mdf_igemm_args(
                    m: Int32(mg), k: Int32(cg), ap: packed + (xi * groups + k.grp) * per,
                    x: v + xi * vstride, koff: kp.baseAddress!, row_len: k.tiles, valid_len: k.tiles,
                    c: m + xi * k.ts, ldc: planes * k.ts, bias: nil, slope: 0, act: 0, accumulate: 0,
                    isa: path.rawValue)
                mdf_igemm(&args, 0, k.tiles)
            }
        }
    }
    /// The output transform of output channels cos of task t from m.
    func transformOutput(_ m: UnsafePointer<Float>, _ t: Int, _ cos: Range<Int>) {
        let k = task(t)
        for co in cos {
            let oc = k.grp * mg + co
            lt.transformOutput(yp.base + (k.img * cout + oc) * oh * ow, m + co * planes * k.ts, mstride: k.ts,
                               rows: k.r0, k.r1, bias: b?[oc] ?? 0, leakySlope: leakySlope, accumulate: accumulate, path: path)
        }
    }

    if splitStages ?? (parallel && Runtime.threads > 1 && tasks < 2 * Runtime.threads) {
        let v = Storage(count: tasks * planes * vstride), m = Storage(count: tasks * mCount)
        defer { withExtendedLifetime((v, m)) {} }
        let (vp, mp) = (SendablePointer(v.pointer), SendablePointer(m.pointer))
        parallelFor(tasks * cg, minCount: 2) { items in
            let scratch = Storage(count: lt.scratchCount)
            defer { withExtendedLifetime(scratch) {} }
            for i in items {
                transformInput(vp.base + i / cg * planes * vstride, i / cg, i % cg..<i % cg + 1, clear: true, scratch: scratch.pointer)
            }
        }
        parallelFor(tasks * planes, minCount: 2) { items in
            for i in items { multiply(vp.base + i / planes * planes * vstride, mp.base + i / planes * mCount, i / planes, i % planes..<i % planes + 1) }
        }
        parallelFor(tasks * mg, minCount: 2) { items in
            for i in items { transformOutput(mp.base + i / mg * mCount, i / mg, i % mg..<i % mg + 1) }
        }
        return
    }
    parallelFor(tasks, minCount: parallel ? 2 : Int.max) { range in
        let v = Storage(count: planes * vstride), m = Storage(count: mCount)
        let scratch = Storage(count: lt.scratchCount)
        defer { withExtendedLifetime((v, m, scratch)) {} }
        var cleared = -1   // the tile count whose padding is zero in v
        for t in range {
            // Every chunk of a range but the last has the same tiles: the padding is cleared at most twice.
            let tiles = task(t).tiles
            transformInput(v.pointer, t, 0..<cg, clear: cleared != tiles, scratch: scratch.pointer)
            cleared = tiles
            multiply(v.pointer, m.pointer, t, 0..<planes)
            transformOutput(m.pointer, t, 0..<mg)
        }
    }
}

/// F(2×2, 3×3) for a 3×3 stride-1 undilated geometry: `winogradConv` on `WinogradTiles`.
func winogradConv(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                  _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
                  leakySlope: Float?, accumulate: Bool, path: KernelPath = .best) {
    winogradConv(WinogradTiles(g, h: h, w: w), y, x, packed: packed, b, n: n, cin: cin, h: h, w: w, cout: cout,
                 groups: g.groups, leakySlope: leakySlope, accumulate: accumulate, path: path)
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
    let v = Storage(count: 16 * cg * tiles)
    let packedDy = Storage(count: 16 * accLd * tiles), acc = Storage(count: 16 * accPlane)
    defer { withExtendedLifetime((v, packedDy, acc)) {} }
    let (vp, pp, ap, dwp) = (SendablePointer(v.pointer), SendablePointer(packedDy.pointer), SendablePointer(acc.pointer),
                             SendablePointer(dw))
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
                defer { withExtendedLifetime(scratch) {} }
                for c in channels {
                    lt.transformInput(vp.base + c * tiles, vstride: cg * tiles, x + ((img * cin + grp * cg + c) * h) * w,
                                      rows: 0, lt.th, scratch: scratch.pointer, path: path)
                }
            }
            // dy's transform, straight into the products' packed layout, 16 channels at a time.
            parallelFor(accLd / 16, minCount: parallel) { panels in
                let scratch = Storage(count: 4 * lt.tw * 16)
                defer { withExtendedLifetime(scratch) {} }
                for p in panels {
                    mdf_wino_dy_packed(pp.base + p * tiles * 16, accLd * tiles, dy + (img * cout + grp * mg + 16 * p) * ohw, ohw,
                                       Int32(min(16, mg - 16 * p)), lt.oh, lt.ow, scratch.pointer, flag)
                }
            }
            koff.withUnsafeBufferPointer { kp in
                let koffBase = kp.baseAddress!
                parallelFor(16 * tapPanels, minCount: parallel) { tasks in
                    var t = tasks.lowerBound
                    while t < tasks.upperBound {
                        let xi = t / tapPanels, q0 = t % tapPanels, q1 = min(tapPanels, q0 + tasks.upperBound - t)
                        var args = mdf_wgrad_args(
                            m: Int32(mg), k: Int32(cg), x: vp.base + xi * cg * tiles, koff: koffBase, columns: tiles, col0: 0, col1: tiles,
                            dyp: pp.base + xi * accLd * tiles, acc: ap.base + xi * accPlane + q0 * 6 * accLd,
                            acc_ld: accLd, isa: flag)
                        mdf_conv_wgrad(&args, Int32(q0), Int32(q1))
                        t += q1 - q0
                    }
                }
            }
        }
        // Sixteen output channels at a time (consecutive in acc), channel blocks in parallel.
        parallelFor((mg + 15) / 16, minCount: parallel) { blocks in
            for blk in blocks {
                let co = blk * 16, lanes = Int32(min(16, mg - co))
                for c in 0..<cg {
                    mdf_wino_weight_grad16(dwp.base + ((grp * mg + co) * cg + c) * 9, cg * 9, ap.base + c * accLd + co, accPlane,
                                           lanes, flag)
                }
            }
        }
    }
}
