import Testing
import Foundation
import Tensor
import TestSupport

/// Geometry from a conv fixture's metadata (stride, padding as int or [ph, pw], dilation, groups).
private func geometry(_ meta: [String: String], weight: Tensor) -> ConvGeometry {
    let s = metaInts(meta["stride"]), p = metaInts(meta["padding"]), d = metaInts(meta["dilation"])
    let ph = p.first ?? 0, pw = p.count > 1 ? p[1] : ph
    let sh = s.first ?? 1, sw = s.count > 1 ? s[1] : sh
    let dh = d.first ?? 1, dw = d.count > 1 ? d[1] : dh
    return ConvGeometry(kernel: (weight.shape[2], weight.shape[3]), stride: (sh, sw), padding: (ph, ph, pw, pw),
                        dilation: (dh, dw), groups: metaInts(meta["groups"]).first ?? 1)
}

@Suite struct Conv2dTests {
    @Test(arguments: ["conv2d_s1p1", "conv2d_s2p1", "conv2d_s2p1_odd", "conv2d_dil2", "conv2d_groups3",
                      "conv2d_7x7s2p3", "conv2d_1x5", "conv2d_5x1", "conv2d_1x1s2_nobias"])
    func conv2dMatchesPyTorch(_ name: String) throws {
        let hasBias = !name.hasSuffix("nobias")
        let errors = try compareWithFixture(name, inputs: hasBias ? ["x", "w", "b"] : ["x", "w"]) { xs, meta in
            xs[0].conv2d(xs[1], hasBias ? xs[2] : nil, geometry(meta, weight: xs[1]))
        }
        #expect(errors.count == (hasBias ? 4 : 3))
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test(arguments: ["conv_transpose2d_k4s2p1", "conv_transpose2d_k4s2p1_3to5"])
    func convTranspose2dMatchesPyTorch(_ name: String) throws {
        let errors = try compareWithFixture(name, inputs: ["x", "w", "b"]) { xs, meta in
            xs[0].convTranspose2d(xs[1], xs[2], ConvGeometry(kernel: 4, stride: 2, padding: 1))
        }
        #expect(errors.count == 4)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test(arguments: [
        ConvGeometry(kernel: 3, stride: 1, padding: 1),
        ConvGeometry(kernel: (3, 2), stride: (2, 1), padding: (top: 1, bottom: 0, left: 2, right: 1), dilation: (1, 2)),
        ConvGeometry(kernel: 3, stride: 2, padding: 1, groups: 2),
        ConvGeometry(kernel: 1),
    ])
    func conv2dBackwardMatchesFiniteDifferences(_ g: ConvGeometry) {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.randn([2, 4, 7, 6], using: &rng)
        let w = Tensor.randn([6, 4 / g.groups, g.kh, g.kw], using: &rng)
        let b = Tensor.randn([6], using: &rng)
        let r = GradCheck.check([x, w, b]) { $0[0].conv2d($0[1], $0[2], g) }
        #expect(r.worst < 2e-2, "\(r)")
    }

    @Test func convTranspose2dBackwardMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.randn([2, 3, 4, 5], using: &rng)
        let w = Tensor.randn([3, 2, 4, 4], using: &rng)
        let b = Tensor.randn([2], using: &rng)
        let r = GradCheck.check([x, w, b]) { $0[0].convTranspose2d($0[1], $0[2], ConvGeometry(kernel: 4, stride: 2, padding: 1)) }
        #expect(r.worst < 2e-2, "\(r)")
    }

    @Test func convTiledIntoBandsEqualsOneBand() {
        // A shape whose column matrix exceeds one band (k·ow·oh > 4M floats) must match the
        // same conv computed on halves of the batch... here: on a crop small enough for one band.
        var rng = RandomGenerator(seed: 13)
        let x = Tensor.randn([1, 64, 80, 1024], using: &rng)
        let w = Tensor.randn([2, 64, 3, 3], using: &rng)
        let g = ConvGeometry(kernel: 3, padding: 1)
        let y = Tape.noGrad { x.conv2d(w, nil, g) }
        let top = Tape.noGrad { x.slice(dim: 2, start: 0, length: 10).conv2d(w, nil, g) }
        // Rows 0..<9 of the crop see the same inputs as rows 0..<9 of the whole.
        for c in 0..<2 { for r in 0..<9 { for col in 0..<1024 {
            let a = y.data[(c * 80 + r) * 1024 + col], e = top.data[(c * 10 + r) * 1024 + col]
            if abs(a - e) > 1e-3 { Issue.record("mismatch at c\(c) r\(r) x\(col): \(a) vs \(e)"); return }
        } } }
    }
}
