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

/// The padded, phase-split copy of a convolution's input, and where each tap reads it.
/// Phase (py, px) of channel c holds xpad[i·sh + py][j·sw + px] for i < hq, j < wq.
struct PhasedLayout {
    let g: ConvGeometry
    let h, w, oh, ow, wq: Int
    private(set) var hq: Int

    init(_ g: ConvGeometry, h: Int, w: Int) {
        self.g = g; self.h = h; self.w = w
        (oh, ow) = g.outputSize(h: h, w: w)
        hq = (h + g.padTop + g.padBottom + g.sh - 1) / g.sh
        wq = (w + g.padLeft + g.padRight + g.sw - 1) / g.sw
    }

    /// The layout of a band of `rows` phase rows (a band of output rows and the rows its taps reach
    /// past it): the same phases and columns, planes of `rows` rows.
    func band(rows: Int) -> PhasedLayout { var b = self; b.hq = rows; return b }

    /// Phase rows a tap reaches past its output row, at most.
    var tapReach: Int { (g.kh - 1) * g.dh / g.sh }

    /// Floats per channel: sh·sw planes of hq × wq.
    var perChannel: Int { g.sh * g.sw * hq * wq }
    /// Grid columns of one image (oh rows of wq).
    var gridColumns: Int { oh * wq }
    /// Floats the kernel may read past the last channel of a buffer.
    var slack: Int { wq + 64 }

    /// Offsets of the taps of `channels` channels, in weight order (c, ky, kx).
    func tapOffsets(channels: Int) -> [Int32] {
        require(channels * perChannel + slack < Int(Int32.max), "conv2d",
                "one image-group of \(channels) channels at \(h)×\(w) exceeds the direct convolution's 2^31-float offsets")
        var koff = [Int32]()
        koff.reserveCapacity(channels * g.kh * g.kw)
        for c in 0..<channels {
            for ky in 0..<g.kh {
                let r = ky * g.dh
                for kx in 0..<g.kw {
                    let s = kx * g.dw
                    let planeIndex = c * g.sh * g.sw + (r % g.sh) * g.sw + s % g.sw
                    koff.append(Int32(planeIndex * hq * wq + (r / g.sh) * wq + s / g.sw))
                }
            }
        }
        return koff
    }

    /// A 1×1 kernel at stride 1 without padding: the phased layout is the input itself.
    var isIdentity: Bool {
        g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0
    }

    /// The input as the weight-gradient kernel reads it (nothing past the columns it computes): x
    /// itself where the layout is the identity, else the phased copy, kept by `owner`.
    /// x: (images, channels, h, w).
    func input(_ x: UnsafePointer<Float>, images: Int, channels: Int) -> (pointer: SendablePointer<Float>, owner: Storage?) {
        if isIdentity { return (SendablePointer(UnsafeMutablePointer(mutating: x)), nil) }
        let buffer = phasedCopy(x, images: images, channels: channels)
        return (SendablePointer(buffer.pointer), buffer)
    }

    /// The phased copy of n images of `channels` channels, with the kernel's read slack zeroed.
    /// x: (images, channels, h, w); result: images · channels · perChannel + slack floats.
    func phasedCopy(_ x: UnsafePointer<Float>, images: Int, channels: Int) -> Storage {
        let count = images * channels
        let buffer = Storage(count: count * perChannel + slack)
        let bp = SendablePointer(buffer.pointer)
        (buffer.pointer + count * perChannel).update(repeating: 0, count: slack)
        // Items are (channel, phase): a strided first layer has 3 channels but 12 such items, which
        // two threads share evenly.
        let phases = g.sh * g.sw
        parallelFor(count * phases, minCount: count * perChannel >= 1 << 15 ? 2 : Int.max) { r in
            var t = r.lowerBound
            while t < r.upperBound {
                let c = t / phases, ph0 = t % phases, ph1 = min(phases, ph0 + (r.upperBound - t))
                fill(bp.base + c * perChannel, x + c * h * w, phases: ph0..<ph1)
                t += ph1 - ph0
            }
        }
        return buffer
    }

    /// Writes the given phases (py · sw + px) of one channel. x: (h, w); dst: perChannel floats.
    func fill(_ dst: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, phases: Range<Int>) {
        mdf_phase_fill(dst, x, h, w, g.sh, g.sw, g.padTop, g.padLeft, hq, wq, phases.lowerBound, phases.upperBound)
    }

    /// Writes phase rows [r0, r0 + hq) of every phase of `channels` channels, channel c at
    /// dst + c · perChannel (self: a band's layout, from `band(rows:)`; padTop moved up by the
    /// band's start). x: (channels, h, w).
    func fillBand(_ dst: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, channels: Int, firstRow r0: Int) {
        for c in 0..<channels {
            mdf_phase_fill(dst + c * perChannel, x + c * h * w, h, w, g.sh, g.sw, g.padTop - r0 * g.sh, g.padLeft, hq, wq,
                           0, g.sh * g.sw)
        }
    }
}

/// Which code the C kernels run (CKernels.h, MDF_ISA_*): the widest the CPU has (AVX-512 where a
/// kernel has that form, else AVX2+FMA, else portable C), or, for tests comparing them, the portable
/// loops or at most AVX2.
enum KernelPath: Int32 {
    case best = 0, portable = 1, avx2 = 2
}

/// Packs an m × k row-major matrix (row stride lda) into panels of 4 rows: panel p holds
/// a[4p ..< 4p + 4][kk] for kk = 0..<k, zero rows past m. dst: ((m + 3) / 4) · k · 4 floats.
func packPanels4(_ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, m: Int, k: Int, lda: Int) {
    let panels = (m + 3) / 4
    for p in 0..<panels {
        let d = dst + p * k * 4
        for r in 0..<4 {
            let row = p * 4 + r
            if row < m {
                let src = a + row * lda
                for kk in 0..<k { d[kk * 4 + r] = src[kk] }
            } else {
                for kk in 0..<k { d[kk * 4 + r] = 0 }
            }
        }
    }
}

/// Floats of one group's packed weights.
@inline(__always) func packedPanelFloats(m: Int, k: Int) -> Int { (m + 3) / 4 * k * 4 }

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

/// Packs conv2d weights (cout, cin/groups, kh, kw) for `directConv`, group by group.
func packConvWeights(_ wt: UnsafePointer<Float>, cout: Int, kg: Int, groups: Int) -> Storage {
    let mg = cout / groups, per = packedPanelFloats(m: mg, k: kg)
    let packed = Storage(count: groups * per)
    for grp in 0..<groups { packPanels4(packed.pointer + grp * per, wt + grp * mg * kg, m: mg, k: kg, lda: kg) }
    return packed
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

/// dx += conv2d's input gradient through the implicit GEMM, stride phase by stride phase: the pixels
/// of dx with y ≡ ry (mod sh) and x ≡ rx (mod sw) receive only the taps with sh | (ry + pt − ky·dh)
/// (and likewise in x), each from dy at row i + (ry + pt − ky·dh) / sh; over those taps, flipped, the
/// phase is a stride-1 convolution of dy. At stride 1 that is one phase, all taps, accumulated
/// straight into dx; at larger strides each phase goes through a buffer and is added into dx.
/// With `assign`, dx = instead of += (dx uninitialized). Returns false, touching nothing, where a
/// phase would need negative padding (a padding wider than the dilated kernel). `bandRows`: force
/// the strided phases' band height, for tests.
/// dy: (n, cout, oh, ow); wt: (cout, cin/groups, kh, kw); dx: (n, cin, h, w).
func directInputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ wt: UnsafePointer<Float>,
                         n: Int, cin: Int, h: Int, w: Int, cout: Int, _ g: ConvGeometry, assign: Bool = false,
                         bandRows: Int? = nil) -> Bool {
    let (oh, ow) = g.outputSize(h: h, w: w)
    /// One axis of one phase r: its taps in increasing dy offset, the first offset, and the spacing.
    func taps(_ r: Int, stride s: Int, pad: Int, kernel k: Int, dilation d: Int) -> (taps: [Int], first: Int, step: Int) {
        let t = (0..<k).reversed().filter { ((r + pad - $0 * d) % s + s) % s == 0 }
        let offsets = t.map { (r + pad - $0 * d) / s }
        return (t, offsets.first ?? 0, offsets.count > 1 ? offsets[1] - offsets[0] : 1)
    }
    var phases: [StridePhase] = []
    for ry in 0..<g.sh {
        for rx in 0..<g.sw {
            let (ty, ay, sy) = taps(ry, stride: g.sh, pad: g.padTop, kernel: g.kh, dilation: g.dh)
            let (tx, ax, sx) = taps(rx, stride: g.sw, pad: g.padLeft, kernel: g.kw, dilation: g.dw)
            let hr = (h - ry + g.sh - 1) / g.sh, wr = (w - rx + g.sw - 1) / g.sw
            if ty.isEmpty || tx.isEmpty || hr <= 0 || wr <= 0 { continue }
            let pads = (top: -ay, bottom: hr - 1 + ay + sy * (ty.count - 1) - (oh - 1),
                        left: -ax, right: wr - 1 + ax + sx * (tx.count - 1) - (ow - 1))
            guard pads.top >= 0 && pads.bottom >= 0 && pads.left >= 0 && pads.right >= 0 else { return false }
            let pg = ConvGeometry(kernel: (ty.count, tx.count), padding: pads, dilation: (sy, sx), groups: g.groups)
            phases.append(StridePhase(ry: ry, rx: rx, ty: ty, tx: tx, g: pg, hr: hr, wr: wr))
        }
    }
    let cg = cin / g.groups, mg = cout / g.groups, whole = g.sh == 1 && g.sw == 1
    // Each phase's weights as a convolution's (cin, cout/groups, |ty|, |tx|):
    // w′[ci][(co, a, b)] = w[co][ci][ty[a]][tx[b]], group by group.
    // Rearranged and packed once while the weights stay the same (RAFT's update block reuses
    // them every iteration); the rearrangement splits the input channels across the threads.
    // At stride 1 the phase runs as any convolution (Winograd where it applies); at larger strides
    // the phases share one copy of dy and the direct convolution's panels.
    let packs = phases.map { p -> Storage in
        let kOut = mg * p.ty.count * p.tx.count
        let kind = "input gradient \(cin)→\(cout) \(g) phase \(p.ty) \(p.tx)"
        return DerivedWeights.shared.form(kind, of: wt, count: cout * cg * g.kh * g.kw) {
            let dense = Storage(count: cin * kOut)
            defer { withExtendedLifetime(dense) {} }
            let densePointer = SendablePointer(dense.pointer)
            parallelFor(cin, minCount: cin * kOut >= 1 << 14 ? 2 : Int.max) { channels in
                for c in channels {
                    let grp = c / cg, ci = c % cg
                    var d = densePointer.base + c * kOut
                    for co in 0..<mg {
                        let src = wt + ((grp * mg + co) * cg + ci) * g.kh * g.kw
                        for ky in p.ty { for kx in p.tx { d.pointee = src[ky * g.kw + kx]; d += 1 } }
                    }
                }
            }
            return whole ? packForConvolve(dense.pointer, cin: cout, cout: cin, p.g)
                         : packConvWeights(dense.pointer, cout: cin, kg: kOut, groups: g.groups)
        }
    }
    defer { withExtendedLifetime(packs) {} }
    if whole {
        convolve(dx, dy, packed: packs[0].pointer, nil, n: n, cin: cout, h: oh, w: ow, cout: cin, phases[0].g,
                 leakySlope: nil, accumulate: !assign)
        return true
    }
    // The phases add into dx, and pixels that no tap reaches (a stride above the kernel) get nothing.
    // Where every phase has taps, each dx pixel is written by exactly one, so `assign` stores.
    let covered = phases.count == g.sh * g.sw
    if assign && !covered { dx.update(repeating: 0, count: n * cin * h * w) }
    stridedPhasesInputGradient(dx, dy, phases, packs, n: n, cin: cin, h: h, w: w, cout: cout, oh: oh, ow: ow,
                               stride: (g.sh, g.sw), groups: g.groups, store: assign && covered, bandRows: bandRows)
    return true
}

/// One stride phase of an input gradient: the dx pixels (i·sh + ry, j·sw + rx), hr × wr of them, as
/// a stride-1 convolution of dy with geometry g (its taps, their spacing, its padding) over the
/// original kernel's taps ty × tx.
struct StridePhase { let ry, rx: Int; let ty, tx: [Int]; let g: ConvGeometry; let hr, wr: Int }

/// dx += the phases' convolutions of dy (dx = with `store`), interleaved back into dx. Tasks are
/// (image-group, band of phase rows): each copies the rows of dy its band reads, padded by the most
/// any phase needs, into a buffer of its own (so the copy is read back from L2, where one copy of
/// all of dy went out to L3 or memory and back), runs every phase over that band into a scratch
/// buffer that stays in cache, and adds the phases into dx at once (the stride-2 column phases
/// interleaved in vector registers). Every dx pixel belongs to one phase, and an output's sum does
/// not depend on where its band starts, so any banding gives the same dx.
/// dy: (n, cout, oh, ow); packs: each phase's weights from packConvWeights; dx: (n, cin, h, w).
private func stridedPhasesInputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ phases: [StridePhase],
                                        _ packs: [Storage], n: Int, cin: Int, h: Int, w: Int, cout: Int, oh: Int, ow: Int,
                                        stride: (Int, Int), groups: Int, store: Bool, bandRows forcedRows: Int? = nil) {
    guard !phases.isEmpty else { return }
    let cg = cin / groups, mg = cout / groups, groupsTotal = n * groups
    let top = phases.map(\.g.padTop).max()!, left = phases.map(\.g.padLeft).max()!
    let common = PhasedLayout(ConvGeometry(kernel: (1, 1), padding: (top, phases.map(\.g.padBottom).max()!,
                                                                    left, phases.map(\.g.padRight).max()!)), h: oh, w: ow)
    let wq = common.wq
    // Rows of padded dy a band's taps reach past its first, at most.
    let reach = phases.map { top - $0.g.padTop + ($0.g.kh - 1) * $0.g.dh }.max()!
    // Phases by row phase ry, each row's in increasing rx; a band of phase rows produces
    // `rowFloats` floats a row over all of them.
    let (sh, sw) = stride
    let rows = [Int](Set(phases.map(\.ry))).sorted()
    let members = rows.map { ry in phases.indices.filter { phases[$0].ry == ry }.sorted { phases[$0].rx < phases[$1].rx } }
    let rowFloats = cg * phases.reduce(0) { $0 + $1.wr }
    let maxRows = phases.map(\.hr).max()!
    // ≈ 256 KB of phase outputs a band (FastFlowNet's pconv2_1: 8 rows; with 4, a quarter of dy was copied twice).
    let band = forcedRows.map { max(1, min(maxRows, $0)) } ?? max(1, min(maxRows, (1 << 16) / max(1, rowFloats)))
    let bands = (maxRows + band - 1) / band
    // One channel's band of padded dy: the band's rows and those its taps reach. A phase's tap may
    // start up to a row past the grid's, so twice the kernel's read slack after the last channel.
    let bandLayout = common.band(rows: band + reach)
    let plane = bandLayout.perChannel, bufferCount = mg * plane + 2 * common.slack
    require(bufferCount < Int(Int32.max), "conv2d",
            "one image-group of \(mg) channels at \(oh)×\(ow) exceeds the direct convolution's 2^31-float offsets")
    // Every phase's tap offsets into that buffer, in its weights' order (c, a, b), one after another.
    var koff = [Int32](), koffStart = [Int]()
    for p in phases {
        koffStart.append(koff.count)
        for c in 0..<mg {
            for a in 0..<p.g.kh {
                for b in 0..<p.g.kw {
                    let row = top - p.g.padTop + a * p.g.dh, col = left - p.g.padLeft + b * p.g.dw
                    koff.append(Int32(c * plane + row * wq + col))
                }
            }
        }
    }
    let work = phases.reduce(0) { $0 + mg * $1.g.kh * $1.g.kw * $1.hr * wq } * cg * groupsTotal
    let dxp = SendablePointer(dx)
    koff.withUnsafeBufferPointer { kp in
        let koffBase = kp.baseAddress!
        parallelFor(groupsTotal * bands, minCount: work >= 1 << 17 ? 2 : Int.max) { range in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: band * rowFloats)
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: bufferCount)
            defer { scratch.deallocate(); buffer.deallocate() }
            (buffer + mg * plane).update(repeating: 0, count: bufferCount - mg * plane)
            for t in range {
                let ig = t / bands, r0 = (t % bands) * band, img = ig / groups, grp = ig % groups
                // Padded dy rows [r0, r0 + band + reach) of the image-group's channels.
                bandLayout.fillBand(buffer, dy + ig * mg * oh * ow, channels: mg, firstRow: r0)
                var sp = scratch
                for (ri, ms) in members.enumerated() {
                    let r1 = min(phases[ms[0]].hr, r0 + band), nr = r1 - r0
                    if nr <= 0 { continue }
                    // The band of each member phase: channel-major, nr rows of wr, one after another.
                    var starts: [UnsafeMutablePointer<Float>] = []
                    for pi in ms {
                        let p = phases[pi], kg = mg * p.g.kh * p.g.kw
                        var args = mdf_igemm_args(
                            m: Int32(cg), k: Int32(kg), ap: packs[pi].pointer + grp * packedPanelFloats(m: cg, k: kg),
                            x: buffer, koff: koffBase + koffStart[pi], row_len: wq, valid_len: p.wr,
                            c: sp, ldc: nr * p.wr,
                            bias: nil, slope: 0, act: 0, accumulate: 0, isa: KernelPath.best.rawValue)
                        mdf_igemm(&args, 0, nr * wq)
                        starts.append(sp)
                        sp += cg * nr * p.wr
                    }
                    addPhases(into: dxp.base, starts, phases, ms, ry: rows[ri], r0: r0, nr: nr, channels: cg,
                              plane: ((img * groups + grp) * cg) * h * w, h: h, w: w, stride: (sh, sw), store: store)
                }
            }
        }
    }
}

/// Adds (with `store`, writes) the band [r0, r0 + nr) of the row phase ry's member phases ms, each
/// channel-major at starts[i] (cg · nr · wr floats), into dx from channel plane `plane`.
private func addPhases(into dx: UnsafeMutablePointer<Float>, _ starts: [UnsafeMutablePointer<Float>], _ phases: [StridePhase],
                       _ ms: [Int], ry: Int, r0: Int, nr: Int, channels cg: Int, plane first: Int, h: Int, w: Int,
                       stride: (Int, Int), store: Bool) {
    let (sh, sw) = stride
    for c in 0..<cg {
        let plane = dx + first + c * h * w
        if sw == 2 && phases[ms[0]].rx == 0 {   // ms: the rx = 0 phase and, if it has taps, rx = 1
            let wa = phases[ms[0]].wr, wb = ms.count > 1 ? phases[ms[1]].wr : 0
            let sa = starts[0] + c * nr * wa, sb = ms.count > 1 ? starts[1] + c * nr * wb : nil
            for i in 0..<nr {
                mdf_add_interleaved2(plane + ((r0 + i) * sh + ry) * w, sa + i * wa, wa,
                                     sb.map { $0 + i * wb }, wb, store ? 1 : 0, KernelPath.best.rawValue)
            }
            continue
        }
        for (mi, pi) in ms.enumerated() {
            let p = phases[pi], src = starts[mi] + c * nr * p.wr
            let dst = plane + (r0 * sh + p.ry) * w + p.rx
            for i in 0..<nr {
                let s = src + i * p.wr, d = dst + i * sh * w
                if store { for j in 0..<p.wr { d[j * sw] = s[j] } }
                else { for j in 0..<p.wr { d[j * sw] += s[j] } }
            }
        }
    }
}
