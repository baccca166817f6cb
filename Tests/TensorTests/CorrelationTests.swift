import Testing
import Foundation
@testable import Tensor
import TestSupport

@Suite struct CorrelationTests {
    @Test func localCorrelationMatchesPyTorch() throws {
        let errors = try compareWithFixture("local_corr_r4", inputs: ["f1", "f2"]) { xs, meta in
            localCorrelation(xs[0], xs[1], maxDisplacement: 4)
        }
        #expect(errors.count == 3)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func cddcMatchesPyTorch() throws {
        let errors = try compareWithFixture("cddc_r4_53", inputs: ["f1", "f2"]) { xs, meta in
            // The kept channel list of the fixture is exactly our rule's list.
            let kept = metaInts(meta["kept_channels"])
            let ours = cddcDisplacements().map { ($0.dy + 4) * 9 + ($0.dx + 4) }
            #expect(kept.count == 53)
            #expect(ours == kept)
            return localCorrelation(xs[0], xs[1], maxDisplacement: 4, displacements: cddcDisplacements())
        }
        #expect(errors.count == 3)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func outsideTheImageCorrelatesToZero() {
        // Constant features: every in-range displacement gives the channel mean of 1·1 = 1.
        let f = Tensor.ones([1, 2, 3, 4])
        let y = localCorrelation(f, f, maxDisplacement: 1)
        #expect(y.shape == [1, 9, 3, 4])
        func at(_ k: Int, _ yy: Int, _ xx: Int) -> Float { y.data[(k * 3 + yy) * 4 + xx] }
        // k = (dy+1)·3 + (dx+1).  At the top-left pixel dy = −1 or dx = −1 falls outside.
        #expect(at(0, 0, 0) == 0 && at(1, 0, 0) == 0 && at(3, 0, 0) == 0)
        #expect(at(4, 0, 0) == 1 && at(5, 0, 0) == 1 && at(8, 0, 0) == 1)
        // At the bottom-right pixel dy = +1 or dx = +1 falls outside.
        #expect(at(8, 2, 3) == 0 && at(5, 2, 3) == 0 && at(7, 2, 3) == 0 && at(0, 2, 3) == 1)
    }

    @Test func channelsAreDyMajorAndDivideByC() {
        // f2 is zero except one pixel; only the channel whose displacement reaches it lights up.
        let f1 = Tensor.full([1, 2, 3, 3], 3)
        let f2 = Tensor.zeros([1, 2, 3, 3])
        f2.data[0 * 9 + 2 * 3 + 1] = 2        // channel 0, (y 2, x 1)
        let y = localCorrelation(f1, f2, maxDisplacement: 1)
        // From pixel (1, 1): dy = +1, dx = 0 → k = 2·3 + 1 = 7; value (3·2 + 3·0) / 2 = 3.
        #expect(y.data[(7 * 3 + 1) * 3 + 1] == 3)
        // From pixel (1, 2): dy = +1, dx = −1 → k = 6.
        #expect(y.data[(6 * 3 + 1) * 3 + 2] == 3)
        #expect(y.toArray().reduce(0, +) == 3 * 6)   // six (pixel, displacement) pairs reach it
    }

    @Test func subsetKeepsIncreasingOrderAndMatchesTheFullVolume() {
        var rng = RandomGenerator(seed: 51)
        let f1 = Tensor.randn([2, 3, 4, 5], using: &rng), f2 = Tensor.randn([2, 3, 4, 5], using: &rng)
        let full = localCorrelation(f1, f2, maxDisplacement: 2)
        let subset: [(dy: Int, dx: Int)] = [(2, -1), (-2, 2), (0, 0)]
        let part = localCorrelation(f1, f2, maxDisplacement: 2, displacements: subset)
        let indices = [(-2 + 2) * 5 + (2 + 2), 12, (2 + 2) * 5 + (-1 + 2)]   // increasing
        #expect(part.shape == [2, 3, 4, 5])
        for b in 0..<2 {
            for (k, idx) in indices.enumerated() {
                for i in 0..<20 { #expect(part.data[(b * 3 + k) * 20 + i] == full.data[(b * 25 + idx) * 20 + i]) }
            }
        }
        #expect(cddcDisplacements().count == 53)
    }

    @Test(arguments: [false, true])
    func localCorrelationBackwardMatchesFiniteDifferences(_ subset: Bool) {
        var rng = RandomGenerator(seed: 52)
        let f1 = Tensor.randn([2, 3, 4, 5], using: &rng), f2 = Tensor.randn([2, 3, 4, 5], using: &rng)
        let list: [(dy: Int, dx: Int)]? = subset ? cddcDisplacements(maxDisplacement: 2, denseRadius: 1) : nil
        let r = GradCheck.check([f1, f2]) { localCorrelation($0[0], $0[1], maxDisplacement: 2, displacements: list) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test func selfCorrelationGradientAccumulatesBothPaths() {
        // f correlated with itself: both kernel paths write into one gradient buffer.
        var rng = RandomGenerator(seed: 53)
        let f = Tensor.randn([1, 2, 3, 4], using: &rng)
        let r = GradCheck.check([f]) { localCorrelation($0[0], $0[0], maxDisplacement: 1) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    /// The C kernel against Double loops, forward and both gradients, on a width that takes 16-,
    /// 8-wide and scalar columns (37 = 16 + 16 + 4 + 1 on AVX-512) and FastFlowNet's 53 displacements;
    /// AVX-512 equals AVX2 bit for bit, the portable loop agrees to rounding. Also at 0.5 of zero,
    /// so a path that skipped a displacement or a border would show.
    @Test func correlationKernelPathsMatchDoubleLoops() {
        var rng = RandomGenerator(seed: 54)
        let (n, c, h, w, d) = (2, 5, 7, 37, 4)
        let list = cddcDisplacements()
        let f1 = Tensor.randn([n, c, h, w], using: &rng), f2 = Tensor.randn([n, c, h, w], using: &rng)
        let k = list.count, hw = h * w
        let g = Tensor.randn([n, k, h, w], using: &rng)
        // Double loops: y[b,k,y,x] = Σ_c f1·f2(shifted) / C and the gradients of Σ g ⊙ y.
        var y = [Double](repeating: 0, count: n * k * hw)
        var d1 = [Double](repeating: 0, count: n * c * hw), d2 = d1
        for b in 0..<n { for (kk, p) in list.enumerated() { for py in 0..<h { for px in 0..<w {
            let qy = py + p.dy, qx = px + p.dx
            if qy < 0 || qy >= h || qx < 0 || qx >= w { continue }
            let gi = Double(g.data[((b * k + kk) * h + py) * w + px])
            var s = 0.0
            for ch in 0..<c {
                let i1 = ((b * c + ch) * h + py) * w + px, i2 = ((b * c + ch) * h + qy) * w + qx
                s += Double(f1.data[i1]) * Double(f2.data[i2])
                d1[i1] += gi * Double(f2.data[i2]) / Double(c)
                d2[i2] += gi * Double(f1.data[i1]) / Double(c)
            }
            y[((b * k + kk) * h + py) * w + px] = s / Double(c)
        } } } }
        let indices = list.map { ($0.dy + d) * 9 + ($0.dx + d) }
        let table = DisplacementTable(indices: indices, maxDisplacement: d)
        let paths: [KernelPath] = [.best, .avx2, .portable]
        var outs: [[Tensor]] = []
        for path in paths {
            let yo = Tensor.full([n, k, h, w], 7), g1 = Tensor.full(f1.shape, 0.5), g2 = Tensor.full(f2.shape, 0.5)
            localCorrelationForward(yo.data, f1.data, f2.data, dys: table.dys, dxs: table.dxs, kCount: k,
                                    maxDisplacement: d, n: n, c: c, h: h, w: w, path: path)
            localCorrelationBackward(g1.data, g2.data, g.data, f1.data, f2.data, dys: table.dys, dxs: table.dxs,
                                     kCount: k, maxDisplacement: d, n: n, c: c, h: h, w: w, path: path)
            outs.append([yo, g1, g2])
        }
        for (i, out) in outs.enumerated() {
            #expect(worstRelative(out[0], y) < 1e-5, "forward, path \(paths[i])")
            #expect(worstRelative(out[1], d1.map { $0 + 0.5 }) < 1e-5, "df1, path \(paths[i])")
            #expect(worstRelative(out[2], d2.map { $0 + 0.5 }) < 1e-5, "df2, path \(paths[i])")
        }
        for j in 0..<3 { #expect(differingElements(outs[0][j], outs[1][j]) == 0) }
    }
}
