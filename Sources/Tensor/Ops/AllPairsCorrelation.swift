import Foundation

// RAFT's CorrBlock, in three differentiable pieces:
//   1. allPairsCorrelation: corr[b, i, j] = (1/√C) Σ_c f1[b, c, i] · f2[b, c, j] for every pixel i of
//      f1 and j of f2, stored as one map per query pixel: (B·H·W, 1, H2, W2). Two GEMMs per sample.
//   2. the pyramid: `avgPool2d(kernel: 2)` of the maps, repeatedly (Pool.swift).
//   3. correlationLookup: for query pixel i, a (2r+1)² bilinear window of its map around
//      coords_i · scale (scale = 1/2^level), zero padding, align_corners=True (pixel coordinates).
//      Channel a·(2r+1) + j samples at (x + a − r, y + j − r): a indexes the offset added to x,
//      j the offset added to y (RAFT's meshgrid order).
// `CorrelationPyramid` composes them and concatenates the levels fine → coarse.

// MARK: - All-pairs correlation kernels

/// y[b] = alpha · f1[b]ᵀ · f2[b] for each sample.
/// f1: (batch, c, hw1)   f2: (batch, c, hw2)   y: (batch, hw1, hw2)
func allPairsCorrelationForward(_ y: UnsafeMutablePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                                batch: Int, c: Int, hw1: Int, hw2: Int, alpha: Float) {
    for b in 0..<batch {
        sgemm(transA: true, m: hw1, n: hw2, k: c, alpha: alpha, f1 + b * c * hw1, lda: hw1,
              f2 + b * c * hw2, ldb: hw2, beta: 0, y + b * hw1 * hw2, ldc: hw2)
    }
}

/// df1[b] += alpha · f2[b] · dy[b]ᵀ and df2[b] += alpha · f1[b] · dy[b]. Accumulates; nil skips.
/// dy: (batch, hw1, hw2)   f1, df1: (batch, c, hw1)   f2, df2: (batch, c, hw2)
func allPairsCorrelationBackward(_ df1: UnsafeMutablePointer<Float>?, _ df2: UnsafeMutablePointer<Float>?,
                                 _ dy: UnsafePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                                 batch: Int, c: Int, hw1: Int, hw2: Int, alpha: Float) {
    for b in 0..<batch {
        let g = dy + b * hw1 * hw2
        if let df1 {
            sgemm(transB: true, m: c, n: hw1, k: hw2, alpha: alpha, f2 + b * c * hw2, lda: hw2,
                  g, ldb: hw2, beta: 1, df1 + b * c * hw1, ldc: hw1)
        }
        if let df2 {
            sgemm(m: c, n: hw2, k: hw1, alpha: alpha, f1 + b * c * hw1, lda: hw1,
                  g, ldb: hw2, beta: 1, df2 + b * c * hw2, ldc: hw2)
        }
    }
}

// MARK: - Lookup kernels

/// The bilinear window of one query pixel: since the window offsets are integers, every sample
/// shares the fractional parts (fx, fy), and the (2r+1)² samples read a (2r+2)² patch of the map
/// whose top-left cell is (y0 − r, x0 − r).
struct LookupWindow {
    let x0: Int, y0: Int
    let fx: Float, fy: Float

    @inline(__always)
    init(x: Float, y: Float, radius r: Int, hl: Int, wl: Int) {
        // Beyond these limits the whole patch is outside the map; clamping keeps the integer
        // conversion safe (and maps NaN outside) without changing the result.
        var x = x, y = y
        let lo = -Float(r + 2)
        if !(x >= lo) { x = lo } else if x > Float(wl + r + 1) { x = Float(wl + r + 1) }
        if !(y >= lo) { y = lo } else if y > Float(hl + r + 1) { y = Float(hl + r + 1) }
        let fx0 = x.rounded(.down), fy0 = y.rounded(.down)
        x0 = Int(fx0); y0 = Int(fy0)
        fx = x - fx0; fy = y - fy0
    }
}

/// The part of a (side × side) patch with top-left cell (top, left) that lies inside an
/// (hl × wl) map: patch rows `rows` and columns `cols`, either empty when the patch misses the map.
/// Both bounds are clipped to [0, side] so that a patch wholly above, below, left or right of the
/// map gives an empty range rather than one whose lower bound exceeds its upper bound.
struct PatchClip {
    let rows: Range<Int>, cols: Range<Int>

    @inline(__always)
    init(top: Int, left: Int, side: Int, hl: Int, wl: Int) {
        let ys = min(max(0, -top), side), ye = max(min(side, hl - top), ys)
        let xs = min(max(0, -left), side), xe = max(min(side, wl - left), xs)
        rows = ys..<ye
        cols = xs..<xe
    }

    var isEmpty: Bool { rows.isEmpty || cols.isEmpty }
}

/// Copies the (side × side) patch of `map` (hl × wl) whose top-left cell is (top, left) into
/// `patch`, zeros outside the map.
@inline(__always)
func loadPatch(_ patch: UnsafeMutablePointer<Float>, _ map: UnsafePointer<Float>, top: Int, left: Int,
               side: Int, hl: Int, wl: Int) {
    patch.update(repeating: 0, count: side * side)
    let clip = PatchClip(top: top, left: left, side: side, hl: hl, wl: wl)
    if clip.isEmpty { return }
    let xs = clip.cols.lowerBound, n = clip.cols.count
    for jj in clip.rows {
        (patch + jj * side + xs).update(from: map + (top + jj) * wl + left + xs, count: n)
    }
}

/// y[b, channelOffset + a·(2r+1) + j, py, px] = bilinear sample of map p at
/// (coords_x·scale + a − r, coords_y·scale + j − r), p = (b·h + py)·w + px, zero padding.
/// level: (b·h·w, hl, wl)   coords: (b, 2, h, w)   y: (b, outChannels, h, w)
func correlationLookupForward(_ y: UnsafeMutablePointer<Float>, _ level: UnsafePointer<Float>, _ coords: UnsafePointer<Float>,
                              batch: Int, h: Int, w: Int, hl: Int, wl: Int, radius r: Int, scale: Float,
                              outChannels: Int, channelOffset: Int) {
    let hw = h * w, side = 2 * r + 2, k = 2 * r + 1
    parallelFor(batch * hw, minCount: max(2, (1 << 14) / max(1, k * k))) { pixels in
        let patch = UnsafeMutablePointer<Float>.allocate(capacity: side * side)
        defer { patch.deallocate() }
        for p in pixels {
            let b = p / hw, i = p % hw
            let cx = coords[b * 2 * hw + i], cy = coords[b * 2 * hw + hw + i]
            let win = LookupWindow(x: cx * scale, y: cy * scale, radius: r, hl: hl, wl: wl)
            loadPatch(patch, level + p * hl * wl, top: win.y0 - r, left: win.x0 - r, side: side, hl: hl, wl: wl)
            let fx = win.fx, fy = win.fy
            let out = y + (b * outChannels + channelOffset) * hw + i
            for a in 0..<k {
                for j in 0..<k {
                    let t = patch + j * side + a, u = t + side
                    out[(a * k + j) * hw] = (1 - fy) * ((1 - fx) * t[0] + fx * t[1]) + fy * ((1 - fx) * u[0] + fx * u[1])
                }
            }
        }
    }
}

/// dlevel += ∂y/∂level · dy and dcoords += ∂y/∂coords · dy for the channels
/// [channelOffset, channelOffset + (2r+1)²) of dy. Accumulates; nil skips an input.
/// dy: (b, outChannels, h, w)   level, dlevel: (b·h·w, hl, wl)   coords, dcoords: (b, 2, h, w)
func correlationLookupBackward(_ dlevel: UnsafeMutablePointer<Float>?, _ dcoords: UnsafeMutablePointer<Float>?,
                               _ dy: UnsafePointer<Float>, _ level: UnsafePointer<Float>, _ coords: UnsafePointer<Float>,
                               batch: Int, h: Int, w: Int, hl: Int, wl: Int, radius r: Int, scale: Float,
                               outChannels: Int, channelOffset: Int) {
    if dlevel == nil && dcoords == nil { return }
    let hw = h * w, side = 2 * r + 2, k = 2 * r + 1
    // Each query pixel owns its map and its coordinates, so pixels never collide.
    parallelFor(batch * hw, minCount: max(2, (1 << 14) / max(1, k * k))) { pixels in
        let patch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * side * side)
        defer { patch.deallocate() }
        let dpatch = patch + side * side
        for p in pixels {
            let b = p / hw, i = p % hw
            let cx = coords[b * 2 * hw + i], cy = coords[b * 2 * hw + hw + i]
            let win = LookupWindow(x: cx * scale, y: cy * scale, radius: r, hl: hl, wl: wl)
            let top = win.y0 - r, left = win.x0 - r
            let fx = win.fx, fy = win.fy
            let g = dy + (b * outChannels + channelOffset) * hw + i
            if let dcoords {
                loadPatch(patch, level + p * hl * wl, top: top, left: left, side: side, hl: hl, wl: wl)
                var gx: Float = 0, gy: Float = 0
                for a in 0..<k {
                    for j in 0..<k {
                        let t = patch + j * side + a, u = t + side, gv = g[(a * k + j) * hw]
                        gx += gv * ((1 - fy) * (t[1] - t[0]) + fy * (u[1] - u[0]))
                        gy += gv * ((1 - fx) * (u[0] - t[0]) + fx * (u[1] - t[1]))
                    }
                }
                dcoords[b * 2 * hw + i] += gx * scale
                dcoords[b * 2 * hw + hw + i] += gy * scale
            }
            if let dlevel {
                dpatch.update(repeating: 0, count: side * side)
                for a in 0..<k {
                    for j in 0..<k {
                        let gv = g[(a * k + j) * hw]
                        let t = dpatch + j * side + a, u = t + side
                        let g0 = gv * (1 - fy), g1 = gv * fy
                        t[0] += g0 * (1 - fx); t[1] += g0 * fx
                        u[0] += g1 * (1 - fx); u[1] += g1 * fx
                    }
                }
                let map = dlevel + p * hl * wl
                let clip = PatchClip(top: top, left: left, side: side, hl: hl, wl: wl)
                if !clip.isEmpty {
                    for jj in clip.rows {
                        let src = dpatch + jj * side, dst = map + (top + jj) * wl + left
                        for ii in clip.cols { dst[ii] += src[ii] }
                    }
                }
            }
        }
    }
}

// MARK: - Tensor ops

/// All-pairs correlation of two feature maps, divided by √C, as one map per query pixel of f1
/// (RAFT's `CorrBlock.corr`). Two sgemm calls per sample, forward and backward.
/// f1: (B, C, H, W)   f2: (B, C, H2, W2)   → (B·H·W, 1, H2, W2)
public func allPairsCorrelation(_ f1: Tensor, _ f2: Tensor) -> Tensor {
    require(f1.rank == 4 && f2.rank == 4, "allPairsCorrelation", "f1 \(describe(f1.shape)) and f2 \(describe(f2.shape)) must be (B, C, H, W)")
    require(f1.shape[0] == f2.shape[0] && f1.shape[1] == f2.shape[1], "allPairsCorrelation",
            "f1 \(describe(f1.shape)) and f2 \(describe(f2.shape)) differ in batch or channels")
    let batch = f1.shape[0], c = f1.shape[1], h = f1.shape[2], w = f1.shape[3]
    let h2 = f2.shape[2], w2 = f2.shape[3]
    require(c >= 1, "allPairsCorrelation", "features \(describe(f1.shape)) have no channels")
    let hw1 = h * w, hw2 = h2 * w2, alpha = 1 / Float(c).squareRoot()
    let y = Tensor(uninitialized: [batch * hw1, 1, h2, w2])
    allPairsCorrelationForward(y.data, f1.data, f2.data, batch: batch, c: c, hw1: hw1, hw2: hw2, alpha: alpha)
    Tape.record(y, inputs: [f1, f2]) { dy in
        allPairsCorrelationBackward(f1.gradIfNeeded, f2.gradIfNeeded, dy, f1.data, f2.data,
                                    batch: batch, c: c, hw1: hw1, hw2: hw2, alpha: alpha)
    }
    return y
}

/// Checks a pyramid level against the query coordinates; returns (batch, h, w, hl, wl).
private func lookupGeometry(_ level: Tensor, _ coords: Tensor, radius: Int) -> (Int, Int, Int, Int, Int) {
    require(coords.rank == 4 && coords.shape[1] == 2, "correlationLookup", "coords \(describe(coords.shape)) must be (B, 2, H, W)")
    let batch = coords.shape[0], h = coords.shape[2], w = coords.shape[3]
    require(level.rank == 4 && level.shape[0] == batch * h * w && level.shape[1] == 1, "correlationLookup",
            "level \(describe(level.shape)) must be [\(batch * h * w), 1, h, w] for coords \(describe(coords.shape))")
    require(radius >= 0, "correlationLookup", "radius \(radius) is negative")
    return (batch, h, w, level.shape[2], level.shape[3])
}

/// Looks up a (2r+1)² bilinear window of each query pixel's correlation map around
/// coords · scale (zero padding, align_corners=True). Channel a·(2r+1) + j samples at
/// (x + a − r, y + j − r). Differentiable w.r.t. the map and the coordinates.
/// level: (B·H·W, 1, hl, wl)   coords: (B, 2, H, W), (x, y) in pixels of the finest level
/// → (B, (2r+1)², H, W)
public func correlationLookup(_ level: Tensor, coords: Tensor, radius: Int, scale: Float = 1) -> Tensor {
    let (batch, h, w, hl, wl) = lookupGeometry(level, coords, radius: radius)
    let k2 = (2 * radius + 1) * (2 * radius + 1)
    let y = Tensor(uninitialized: [batch, k2, h, w])
    correlationLookupForward(y.data, level.data, coords.data, batch: batch, h: h, w: w, hl: hl, wl: wl,
                             radius: radius, scale: scale, outChannels: k2, channelOffset: 0)
    Tape.record(y, inputs: [level, coords]) { dy in
        correlationLookupBackward(level.gradIfNeeded, coords.gradIfNeeded, dy, level.data, coords.data,
                                  batch: batch, h: h, w: w, hl: hl, wl: wl, radius: radius, scale: scale,
                                  outChannels: k2, channelOffset: 0)
    }
    return y
}

/// RAFT's correlation pyramid: level 0 is `allPairsCorrelation(f1, f2)`, level l the 2×2 average
/// pooling (floor) of level l − 1. `lookup` samples every level around coords / 2^l and stacks
/// the windows fine → coarse in one output, without a separate concatenation.
public struct CorrelationPyramid: Sendable {
    /// (B·H·W, 1, H/2^l, W/2^l) for l = 0 ..< levels.count.
    public let levels: [Tensor]
    public let radius: Int

    /// f1, f2: (B, C, H, W)
    public init(_ f1: Tensor, _ f2: Tensor, levels: Int, radius: Int) {
        require(levels >= 1, "CorrelationPyramid", "levels \(levels) must be at least 1")
        require(radius >= 0, "CorrelationPyramid", "radius \(radius) is negative")
        var maps = [allPairsCorrelation(f1, f2)]
        for l in 1..<levels {
            let prev = maps[l - 1]
            require(prev.shape[2] >= 2 && prev.shape[3] >= 2, "CorrelationPyramid",
                    "level \(l - 1) of shape \(describe(prev.shape)) is too small to pool for \(levels) levels")
            maps.append(prev.avgPool2d(kernel: 2, stride: 2))
        }
        self.levels = maps
        self.radius = radius
    }

    /// Channels per level, (2r+1)².
    public var channelsPerLevel: Int { (2 * radius + 1) * (2 * radius + 1) }

    /// coords: (B, 2, H, W), (x, y) pixel positions in f2   → (B, levels·(2r+1)², H, W)
    public func lookup(_ coords: Tensor) -> Tensor {
        let r = radius, k2 = channelsPerLevel, maps = levels
        let (batch, h, w, _, _) = lookupGeometry(maps[0], coords, radius: r)
        let outChannels = maps.count * k2
        let y = Tensor(uninitialized: [batch, outChannels, h, w])
        for (l, map) in maps.enumerated() {
            let (_, _, _, hl, wl) = lookupGeometry(map, coords, radius: r)
            correlationLookupForward(y.data, map.data, coords.data, batch: batch, h: h, w: w, hl: hl, wl: wl,
                                     radius: r, scale: 1 / Float(1 << l), outChannels: outChannels, channelOffset: l * k2)
        }
        Tape.record(y, inputs: maps + [coords]) { dy in
            for (l, map) in maps.enumerated() {
                correlationLookupBackward(map.gradIfNeeded, coords.gradIfNeeded, dy, map.data, coords.data,
                                          batch: batch, h: h, w: w, hl: map.shape[2], wl: map.shape[3],
                                          radius: r, scale: 1 / Float(1 << l), outChannels: outChannels, channelOffset: l * k2)
            }
        }
        return y
    }
}
