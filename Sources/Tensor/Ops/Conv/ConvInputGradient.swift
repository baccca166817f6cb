// conv2d's input gradient, stride phase by stride phase: at stride 1 one flipped convolution of dy
// through `convolve` (Winograd where it applies); at larger strides every phase on the implicit GEMM
// over a shared band of dy, added back into dx.
import CKernels

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
