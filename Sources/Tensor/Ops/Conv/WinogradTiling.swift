// The Winograd variants as tilings: how F(2×2, 3×3), F(4×4, 3×3) and F(4, 5) cut a layer's output
// into tiles, which input rows a tile row reads, and their C transforms (winograd.c, winograd4.c, winograd1d.c).
import CKernels

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
