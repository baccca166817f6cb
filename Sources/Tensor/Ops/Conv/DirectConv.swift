// The direct convolution (an implicit GEMM, CKernels/igemm.c) forward, and its weight gradient
// (CKernels/wgrad.c), both over the phased input of PhasedLayout.swift.
import CKernels

// MARK: - Direct convolution: an implicit GEMM over a padded, stride-phase-split input
//
// A convolution is Y = W · B with B[(c, ky, kx)][(oy, ox)] = xpad[c][oy·sh + ky·dh][ox·sw + kx·dw].
// im2col materializes B (kernel-area times the input) and a BLAS packs it once more. Here the input
// is instead copied once into a zero-padded buffer split into its sh × sw stride phases; then every
// row of B, over the output pixels laid out on a grid of `wq` columns per output row, is a run of
// consecutive floats at a fixed offset: B[kk][j] = buffer[koff[kk] + j]. The micro-kernel
// (CKernels/igemm.c) reads those runs in place, keeps a 4 × 24 tile of Y in registers, and fuses
// bias and activation into its stores. Grid columns with ox ≥ ow (wq − ow per row) are computed
// and dropped.

/// y = act(conv(x) + b), or y += conv(x) with `accumulate`, through the implicit GEMM (`path`: which
/// kernel code, for tests). Where the input needs its padded, phase-split copy, the work goes in
/// bands of output rows: each task writes the phase rows its band reads into a buffer of its own
/// (~512 KB at most, so the copy is read back from L2, where a whole image's copy went out to L3 or
/// memory and back) and runs the kernel over the band (`bandRows`: force the band height, for tests).
/// Each output is the same FMA chain either way.
/// x: (n, cin, h, w); packed: groups × packedPanelFloats(cout/groups, cin/groups·kh·kw), the weights
/// (cout, cin/groups, kh, kw) of each group in 4-row panels; b: (cout) or nil; y: (n, cout, oh, ow).
func directConv(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                _ b: UnsafePointer<Float>?, n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry,
                leakySlope: Float?, accumulate: Bool, path: KernelPath = .best, bandRows forcedRows: Int? = nil) {
    let layout = PhasedLayout(g, h: h, w: w)
    let cg = cin / g.groups, mg = cout / g.groups, kg = cg * g.kh * g.kw
    let ohw = layout.oh * layout.ow
    let groupsTotal = n * g.groups
    let work = mg * kg * layout.gridColumns * groupsTotal
    let yp = SendablePointer(y)
    /// The kernel over grid columns [j0, j1) of image-group ig: its input's first channel at xg (the
    /// tap offsets koff into that layout), its output from row `row0`.
    func run(_ ig: Int, _ xg: UnsafePointer<Float>, _ koff: UnsafePointer<Int32>, row0: Int, _ j0: Int, _ j1: Int) {
        let img = ig / g.groups, grp = ig % g.groups
        var args = mdf_igemm_args(
            m: Int32(mg), k: Int32(kg), ap: packed + grp * packedPanelFloats(m: mg, k: kg),
            x: xg, koff: koff, row_len: layout.wq, valid_len: layout.ow,
            c: yp.base + (img * cout + grp * mg) * ohw + row0 * layout.ow, ldc: ohw,
            bias: b.map { $0 + grp * mg }, slope: leakySlope ?? 0, act: leakySlope == nil ? 0 : 1,
            accumulate: accumulate ? 1 : 0, isa: path.rawValue)
        mdf_igemm(&args, j0, j1)
    }
    if layout.isIdentity && path == .best && mdf_igemm_avx512() != 0 {
        // The input as it is (the AVX-512 kernel masks its last strip): 24-column panels as tasks.
        let koff = layout.tapOffsets(channels: cg)
        let panelsPerGroup = (layout.gridColumns + 23) / 24
        koff.withUnsafeBufferPointer { kp in
            parallelFor(groupsTotal * panelsPerGroup, minCount: work >= 1 << 17 ? 2 : Int.max) { range in
                var t = range.lowerBound
                while t < range.upperBound {
                    let ig = t / panelsPerGroup, p0 = t % panelsPerGroup, p1 = min(panelsPerGroup, p0 + (range.upperBound - t))
                    run(ig, x + ig * cg * h * w, kp.baseAddress!, row0: 0, p0 * 24, min(layout.gridColumns, p1 * 24))
                    t += p1 - p0
                }
            }
        }
        return
    }
    // Bands: as many rows as keep a band's copy within 128 Ki floats (at least four rows, so that
    // the rows a band reads past its own stay a small share), but at least four bands a thread over
    // all image-groups while rows last.
    let phases = g.sh * g.sw, reach = layout.tapReach
    let budgetRows = max(4, (1 << 17) / max(1, cg * phases * layout.wq) - reach)
    let minBands = (4 * Runtime.threads + groupsTotal - 1) / groupsTotal
    let bandRows = forcedRows.map { max(1, min(layout.oh, $0)) } ?? max(1, min(budgetRows, (layout.oh + minBands - 1) / minBands))
    let bands = (layout.oh + bandRows - 1) / bandRows
    let band = layout.band(rows: bandRows + reach)
    let koff = band.tapOffsets(channels: cg)
    let bufferCount = cg * band.perChannel + band.slack
    koff.withUnsafeBufferPointer { kp in
        parallelFor(groupsTotal * bands, minCount: work >= 1 << 17 ? 2 : Int.max) { range in
            let buffer = Storage(count: bufferCount)
            defer { withExtendedLifetime(buffer) {} }
            (buffer.pointer + cg * band.perChannel).update(repeating: 0, count: band.slack)
            for t in range {
                let ig = t / bands, r0 = (t % bands) * bandRows, rows = min(layout.oh, r0 + bandRows) - r0
                // Phase rows [r0, r0 + bandRows + reach) of the image-group's channels.
                band.fillBand(buffer.pointer, x + ig * cg * h * w, channels: cg, firstRow: r0)
                run(ig, buffer.pointer, kp.baseAddress!, row0: r0, 0, rows * layout.wq)
            }
        }
    }
}

/// dw += dY · Bᵀ through the weight-gradient kernel (CKernels/wgrad.c): the taps, in panels of 6,
/// are split across the threads, so each owns whole columns of dw and no partial sums are merged.
/// With fewer than `columnSplitBelow` tap panels (FastFlowNet's first layer has 5) the threads
/// would get unequal shares, so the grid columns are cut into `columnParts` fixed parts instead,
/// each summed into its own buffer and the parts added in order (the same sums at any thread count).
/// dy: (n, cout, oh, ow); x: (n, cin, h, w); dw: (cout, cin/groups, kh, kw).
func directConvWeightGradient(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                              n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry, path: KernelPath = .best) {
    let layout = PhasedLayout(g, h: h, w: w)
    let cg = cin / g.groups, mg = cout / g.groups, kg = cg * g.kh * g.kw, ohw = layout.oh * layout.ow
    let (bp, buffer) = layout.input(x, images: n, channels: cin)
    let accLd = (mg + 15) / 16 * 16, tapPanels = (kg + 5) / 6, packedPerGroup = accLd * layout.gridColumns
    let packed = Storage(count: n * g.groups * packedPerGroup)
    defer { withExtendedLifetime((buffer, packed)) {} }
    let (pp, dwp) = (SendablePointer(packed.pointer), SendablePointer(dw))
    parallelFor(n * g.groups, minCount: packed.count >= 1 << 15 ? 2 : Int.max) { r in
        for ig in r {
            mdf_pack_dy(pp.base + ig * packedPerGroup, dy + ig * mg * ohw, Int32(mg), ohw,
                        layout.gridColumns, layout.wq, layout.ow)
        }
    }
    let koff = layout.tapOffsets(channels: cg)
    let work = mg * kg * layout.gridColumns * n * g.groups
    let columns = layout.gridColumns
    let split = tapPanels < columnSplitBelow && columns >= columnParts * 512
    let parts = columnParts
    /// Sums taps [panels] × columns [col0, col1) of every image into acc(group), group by group,
    /// handing each group's finished sums to `finish`.
    func accumulate(_ panels: Range<Int>, _ col0: Int, _ col1: Int, _ koffBase: UnsafePointer<Int32>,
                    into accFor: (Int) -> UnsafeMutablePointer<Float>, finish: (Int) -> Void = { _ in }) {
        for grp in 0..<g.groups {
            let acc = accFor(grp)
            acc.update(repeating: 0, count: panels.count * 6 * accLd)
            for img in 0..<n {
                var args = mdf_wgrad_args(
                    m: Int32(mg), k: Int32(kg), x: bp.base + (img * cin + grp * cg) * layout.perChannel, koff: koffBase,
                    columns: columns, col0: col0, col1: col1, dyp: pp.base + (img * g.groups + grp) * packedPerGroup,
                    acc: acc, acc_ld: accLd, isa: path.rawValue)
                mdf_conv_wgrad(&args, Int32(panels.lowerBound), Int32(panels.upperBound))
            }
            finish(grp)
        }
    }
    /// dw's rows of group grp += acc (tap-major, from the first tap of `panels`), transposed.
    func addTransposed(_ acc: UnsafePointer<Float>, _ panels: Range<Int>, group grp: Int) {
        for kk in panels.lowerBound * 6..<min(kg, panels.upperBound * 6) {
            let src = acc + (kk - panels.lowerBound * 6) * accLd
            for co in 0..<mg { dwp.base[(grp * mg + co) * kg + kk] += src[co] }
        }
    }
    koff.withUnsafeBufferPointer { kp in
        let koffBase = kp.baseAddress!
        if !split {
            parallelFor(tapPanels, minCount: work >= 1 << 17 ? 2 : Int.max) { panels in
                let acc = Storage(count: panels.count * 6 * accLd)
                defer { withExtendedLifetime(acc) {} }
                accumulate(panels, 0, columns, koffBase, into: { _ in acc.pointer }) { addTransposed(acc.pointer, panels, group: $0) }
            }
            return
        }
        // Parts of whole 512-column blocks (the kernel's), one buffer per part and group.
        let perPart = tapPanels * 6 * accLd, blocks = (columns + 511) / 512
        let accs = Storage(count: parts * g.groups * perPart)
        defer { withExtendedLifetime(accs) {} }
        let ap = SendablePointer(accs.pointer)
        parallelFor(parts, minCount: work >= 1 << 17 ? 2 : Int.max) { range in
            for part in range {
                let c0 = blocks * part / parts * 512, c1 = min(columns, blocks * (part + 1) / parts * 512)
                accumulate(0..<tapPanels, c0, c1, koffBase, into: { ap.base + (part * g.groups + $0) * perPart })
            }
        }
        for grp in 0..<g.groups {
            for part in 0..<parts { addTransposed(ap.base + (part * g.groups + grp) * perPart, 0..<tapPanels, group: grp) }
        }
    }
}

/// Tap panels below which the weight gradient splits the grid columns instead of the taps.
let columnSplitBelow = 8
/// Fixed column parts of that split (the threads claim them as they go).
let columnParts = 8
