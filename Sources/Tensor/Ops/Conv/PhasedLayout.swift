// The direct convolution's input layout: a zero-padded copy split into its stride phases, so that
// every tap reads a contiguous run; the taps' offsets into it, and the copies (CKernels/phase_fill.c).
import CKernels

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
