// Winograd convolution on any tiling (WinogradTiling.swift): chunks of tile rows through the input
// transform, the products on the implicit-GEMM kernel and the output transform; and the F(2×2, 3×3)
// weight gradient.
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
