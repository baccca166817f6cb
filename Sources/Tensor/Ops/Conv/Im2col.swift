// im2col and col2im on bands of output rows, and conv2d's input gradient on them where a padding
// is wider than the dilated kernel: sgemm + col2im in cache-sized tiles (ConvTiling).
import Foundation

/// The output-column range [lo, hi) whose input column ox·s + ix0 lies in [0, w).
@inline(__always) private func validRange(_ ix0: Int, _ s: Int, _ w: Int, _ ow: Int) -> (Int, Int) {
    let lo = ix0 >= 0 ? 0 : (-ix0 + s - 1) / s
    let last = w - 1 - ix0
    let hi = last < 0 ? 0 : min(ow, last / s + 1)
    return (min(lo, hi), hi)
}

/// Writes the column matrix of output rows [oy0, oy1) of one image: col[(c·kh + i)·kw + j][(oy − oy0)·ow + ox]
/// = x[c, oy·sh − pt + i·dh, ox·sw − pl + j·dw] (0 outside). Interior runs are block copies.
/// x: (channels, h, w); col: (channels·kh·kw, (oy1 − oy0)·ow)
public func im2col(_ col: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
                   oh: Int, ow: Int, oy0: Int, oy1: Int, _ g: ConvGeometry, serial: Bool = false) {
    let n = (oy1 - oy0) * ow, kk = g.kh * g.kw
    parallelFor(channels * kk, minCount: !serial && n * channels * kk >= 1 << 16 ? 2 : Int.max) { rows in
        for r in rows {
            let c = r / kk, i = (r % kk) / g.kw, j = r % g.kw
            let dst0 = col + r * n, src0 = x + c * h * w
            let ix0 = -g.padLeft + j * g.dw
            let (lo, hi) = validRange(ix0, g.sw, w, ow)
            for oy in oy0..<oy1 {
                let dst = dst0 + (oy - oy0) * ow
                let iy = oy * g.sh - g.padTop + i * g.dh
                if iy < 0 || iy >= h { dst.update(repeating: 0, count: ow); continue }
                if lo > 0 { dst.update(repeating: 0, count: lo) }
                if hi < ow { (dst + hi).update(repeating: 0, count: ow - hi) }
                let src = src0 + iy * w + ix0
                if g.sw == 1 {
                    if hi > lo { (dst + lo).update(from: src + lo, count: hi - lo) }
                } else if g.sw == 2 {
                    // The even lanes of 16-float loads: 8 outputs per step while the load stays
                    // inside the input row.
                    var ox = lo
                    let last = w - 1 - ix0 - 15
                    while ox + 8 <= hi && 2 * ox <= last {
                        let v = UnsafeRawPointer(src + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                        UnsafeMutableRawPointer(dst + ox).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
                        ox += 8
                    }
                    while ox < hi { dst[ox] = src[2 * ox]; ox += 1 }
                } else {
                    let s = g.sw
                    for ox in lo..<hi { dst[ox] = src[ox * s] }
                }
            }
        }
    }
}

/// The adjoint of im2col: x[c, iy, ix] += col[…] for the same index map. Accumulates.
/// col: (channels·kh·kw, (oy1 − oy0)·ow); x: (channels, h, w)
public func col2im(_ x: UnsafeMutablePointer<Float>, _ col: UnsafePointer<Float>, channels: Int, h: Int, w: Int,
                   oh: Int, ow: Int, oy0: Int, oy1: Int, _ g: ConvGeometry, serial: Bool = false) {
    let n = (oy1 - oy0) * ow, kk = g.kh * g.kw
    parallelFor(channels, minCount: !serial && n * channels * kk >= 1 << 16 ? 2 : Int.max) { cs in
        for c in cs {
            let dst0 = x + c * h * w
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    let r = (c * g.kh + i) * g.kw + j
                    let src0 = col + r * n
                    let ix0 = -g.padLeft + j * g.dw
                    let (lo, hi) = validRange(ix0, g.sw, w, ow)
                    if hi <= lo { continue }
                    for oy in oy0..<oy1 {
                        let iy = oy * g.sh - g.padTop + i * g.dh
                        if iy < 0 || iy >= h { continue }
                        let src = src0 + (oy - oy0) * ow, dst = dst0 + iy * w + ix0
                        if g.sw == 1 {
                            for ox in lo..<hi { dst[ox] += src[ox] }
                        } else {
                            let s = g.sw
                            for ox in lo..<hi { dst[ox * s] += src[ox] }
                        }
                    }
                }
            }
        }
    }
}

/// Output rows per band so that one band's column matrix stays within `limit` floats.
@inline(__always) func bandRows(k: Int, ow: Int, oh: Int, limit: Int = 1 << 22) -> Int {
    max(1, min(oh, limit / max(1, k * ow)))
}

/// How the col2im input gradient (the fallback for padding wider than the dilated kernel) cuts
/// its work: per image and group, the output rows in tiles whose column matrix (kg × rows·ow
/// floats) fits in a core's L2 cache, so the GEMM writes and col2im reads it there rather than
/// from memory. Tiles are whole tasks for one thread.
struct ConvTiling {
    let n, groups, oh, ow, kg: Int
    let rows: Int
    var tilesPerImage: Int { (oh + rows - 1) / rows }
    var tasks: Int { n * groups * tilesPerImage }

    /// Column-matrix floats per tile: 96 Ki floats = 384 KiB of Zen 3's 512 KiB L2.
    static let tileFloats = 96 * 1024

    /// `minRows` lets backward-data tiles two apart never touch the same input rows.
    init(n: Int, groups: Int, oh: Int, ow: Int, kg: Int, minRows: Int = 1) {
        self.n = n; self.groups = groups; self.oh = oh; self.ow = ow; self.kg = kg
        rows = min(oh, max(minRows, Self.tileFloats / max(1, kg * ow)))
    }

    /// (image, group, first output row, end row) of task t; tiles of an image-group are adjacent.
    @inline(__always) func task(_ t: Int) -> (img: Int, grp: Int, oy0: Int, oy1: Int) {
        let tile = t % tilesPerImage, ig = t / tilesPerImage
        let oy0 = tile * rows
        return (ig / groups, ig % groups, oy0, min(oh, oy0 + rows))
    }
}

/// dx += Wᵀ·dY through col2im (dx = with `assign`: dx uninitialized): conv2d's input gradient where
/// a padding is wider than the dilated kernel (`directInputGradient` declines). In cache-sized tiles:
/// even tiles, then odd ones, so concurrent tiles never add into the same input rows.
/// dy: (n, cout, oh, ow); wt: (cout, cin/groups, kh, kw); dx: (n, cin, h, w).
func col2imInputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                         n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry, assign: Bool) {
    let (oh, ow) = g.outputSize(h: h, w: w)
    let cg = cin / g.groups, mg = cout / g.groups, kg = cg * g.kh * g.kw, ohw = oh * ow
    if assign { dx.update(repeating: 0, count: n * cin * h * w) }
    // Rows per tile such that tiles t and t + 2 read disjoint input rows.
    let reach = (g.kh - 1) * g.dh + 1
    let tiling = ConvTiling(n: n, groups: g.groups, oh: oh, ow: ow, kg: kg, minRows: max(1, (reach + g.sh - 1) / g.sh - 1))
    let dxp = SendablePointer(dx)
    let perImage = tiling.tilesPerImage
    for phase in 0..<2 {
        // Tasks of this phase: tiles phase, phase + 2, … of every image-group.
        let perGroup = (perImage - phase + 1) / 2
        if perGroup == 0 { continue }
        parallelFor(n * g.groups * perGroup) { tasks in
            let scratch = Storage(count: kg * tiling.rows * ow)
            defer { withExtendedLifetime(scratch) {} }
            for t in tasks {
                let (img, grp, oy0, oy1) = tiling.task((t / perGroup) * perImage + phase + 2 * (t % perGroup))
                let cols = (oy1 - oy0) * ow
                sgemm(transA: true, m: kg, n: cols, k: mg, wt + grp * mg * kg, lda: kg,
                      dy + img * cout * ohw + grp * mg * ohw + oy0 * ow, ldb: ohw, scratch.pointer, ldc: cols, serial: true)
                col2im(dxp.base + img * cin * h * w + grp * cg * h * w, scratch.pointer, channels: cg, h: h, w: w,
                       oh: oh, ow: ow, oy0: oy0, oy1: oy1, g, serial: true)
            }
        }
    }
}
