import Testing
import Foundation
import Tensor
import TestSupport

/// Query coordinates (B, 2, H, W) of the form 4m + 1.5 ± 0.05, so that coords / 2^l has its
/// fractional part inside [0.2, 0.8] for l = 0, 1, 2 (finite differences never cross a cell).
private func safeCoords(b: Int, h: Int, w: Int, maxCell: Int, rng: inout RandomGenerator) -> Tensor {
    let t = Tensor(uninitialized: [b, 2, h, w])
    for i in 0..<t.count { t.data[i] = Float(4 * rng.int(below: maxCell) - 4) + 1.5 + rng.uniformFloat(-0.05, 0.05) }
    return t
}

/// Runs a RAFT CorrBlock fixture through `build(fmap1, fmap2, coords, radius, levels)` and returns
/// (label, error) for y, gfmap1 and gfmap2.
///
/// RAFT normalizes lookup coordinates by (W − 1) and (H − 1) of each level; a level whose map is
/// 1 × 1 (raft_corr_r3_l4: 12×14 → 6×7 → 3×3 → 1×1) divides by zero and PyTorch returns NaN for
/// all of its channels, and no gradient through them. Our lookup samples such a level in plain
/// pixel coordinates (well defined), so the comparison skips exactly those channels: it checks
/// that the fixture's NaNs are whole 1×1 levels, compares y elsewhere, and zeroes the upstream
/// gradient there before backward.
private func compareCorrFixture(_ name: String,
                                _ build: (Tensor, Tensor, Tensor, Int, Int) -> Tensor) throws -> [(String, Double)] {
    let (t, meta) = try Fixtures.op(name)
    let radius = metaInts(meta["radius"])[0], levels = metaInts(meta["levels"])[0]
    let f1 = t["fmap1"]!.clone(), f2 = t["fmap2"]!.clone(), coords = t["coords"]!.clone()
    f1.requiresGrad = true; f2.requiresGrad = true
    let y = build(f1, f2, coords, radius, levels)
    let expected = t["y"]!, gy = t["gy"]!.clone()
    #expect(y.shape == expected.shape)
    let b = y.shape[0], h = y.shape[2], w = y.shape[3], k2 = (2 * radius + 1) * (2 * radius + 1)
    var (sh, sw) = (f2.shape[2], f2.shape[3])
    let masked = Tensor.zeros(y.shape), reference = Tensor.zeros(y.shape)
    for l in 0..<levels {
        let degenerate = sh == 1 || sw == 1
        for bi in 0..<b {
            for i in (l * k2 * h * w)..<((l + 1) * k2 * h * w) {
                let at = bi * y.shape[1] * h * w + i
                #expect(expected.data[at].isNaN == degenerate, "\(name): level \(l) element \(at)")
                if degenerate { gy.data[at] = 0 } else { masked.data[at] = y.data[at]; reference.data[at] = expected.data[at] }
            }
        }
        (sh, sw) = (sh / 2, sw / 2)
    }
    #expect(y.isFinite)
    Tape.backward(y, seed: gy)
    let out = [("\(name).y", relativeError(masked, reference)),
               ("\(name).gfmap1", relativeError(f1.grad!, t["gfmap1"]!)),
               ("\(name).gfmap2", relativeError(f2.grad!, t["gfmap2"]!))]
    for (label, e) in out { WorstError.shared.note(e, label) }
    return out
}

@Suite struct AllPairsCorrelationTests {
    @Test(arguments: ["raft_corr_r2_l2", "raft_corr_r3_l4", "raft_corr_r3_l4_16x16"])
    func correlationPyramidMatchesPyTorch(_ name: String) throws {
        let errors = try compareCorrFixture(name) { f1, f2, coords, radius, levels in
            CorrelationPyramid(f1, f2, levels: levels, radius: radius).lookup(coords)
        }
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test(arguments: ["raft_corr_r2_l2", "raft_corr_r3_l4", "raft_corr_r3_l4_16x16"])
    func composedPiecesMatchPyTorch(_ name: String) throws {
        // allPairs → avgPool2d pyramid → one lookup per level → concat, op by op.
        let errors = try compareCorrFixture(name) { f1, f2, coords, radius, levels in
            var level = allPairsCorrelation(f1, f2)
            #expect(level.shape == [f1.shape[2] * f1.shape[3], 1, f2.shape[2], f2.shape[3]])
            var parts: [Tensor] = []
            for l in 0..<levels {
                if l > 0 { level = level.avgPool2d(kernel: 2, stride: 2) }
                parts.append(correlationLookup(level, coords: coords, radius: radius, scale: 1 / Float(1 << l)))
            }
            return Tensor.concat(parts, dim: 1)
        }
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func lookupChannelsPutTheXOffsetFirstAndPadWithZeros() {
        // One query pixel whose map is v[y][x] = 10·y + x + 1 (4 × 5).
        let map = Tensor(uninitialized: [1, 1, 4, 5])
        for y in 0..<4 { for x in 0..<5 { map.data[y * 5 + x] = Float(10 * y + x + 1) } }
        let y = correlationLookup(map, coords: Tensor(shape: [1, 2, 1, 1], values: [1, 2]), radius: 1)
        #expect(y.shape == [1, 9, 1, 1])
        // Channel a·3 + j samples (x + a − 1, y + j − 1).
        var expected: [Float] = []
        for a in 0..<3 { for j in 0..<3 { expected.append(Float(10 * (1 + j) + a + 1)) } }
        #expect(y.toArray() == expected)
        // The same window at a coarser level: coords (2, 4) scaled by 1/2.
        let half = correlationLookup(map, coords: Tensor(shape: [1, 2, 1, 1], values: [2, 4]), radius: 1, scale: 0.5)
        #expect(half.toArray() == expected)
        // At the corner, offsets that leave the map read 0; a half-pixel sample keeps half a corner.
        let corner = correlationLookup(map, coords: Tensor(shape: [1, 2, 1, 1], values: [0.5, 0]), radius: 1).toArray()
        // a = 0 samples x = −0.5: half of column 0. j = 0 samples y = −1: zero.
        #expect(corner[0] == 0 && corner[3] == 0 && corner[6] == 0)
        #expect(corner[1] == 0.5 * 1 && corner[2] == 0.5 * 11)
        #expect(corner[4] == 0.5 * (1 + 2) && corner[8] == 0.5 * (12 + 13))
    }

    @Test func allPairsCorrelationIsTheScaledDotProduct() {
        var rng = RandomGenerator(seed: 61)
        let f1 = Tensor.randn([2, 4, 2, 3], using: &rng), f2 = Tensor.randn([2, 4, 3, 2], using: &rng)
        let y = allPairsCorrelation(f1, f2)
        #expect(y.shape == [12, 1, 3, 2])
        for b in 0..<2 {
            for i in 0..<6 {
                for j in 0..<6 {
                    var s: Float = 0
                    for c in 0..<4 { s += f1.data[(b * 4 + c) * 6 + i] * f2.data[(b * 4 + c) * 6 + j] }
                    #expect(abs(y.data[(b * 6 + i) * 6 + j] - s / 2) < 1e-5)
                }
            }
        }
    }

    @Test func allPairsCorrelationBackwardMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 62)
        let f1 = Tensor.randn([2, 3, 2, 3], using: &rng), f2 = Tensor.randn([2, 3, 3, 2], using: &rng)
        let r = GradCheck.check([f1, f2]) { allPairsCorrelation($0[0], $0[1]) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test func lookupBackwardMatchesFiniteDifferencesForMapAndCoords() {
        var rng = RandomGenerator(seed: 63)
        let level = Tensor.randn([6, 1, 5, 6], using: &rng)        // B=1, H=2, W=3 query pixels
        let coords = safeCoords(b: 1, h: 2, w: 3, maxCell: 3, rng: &rng)   // some windows cross the border
        for scale: Float in [1, 0.5] {
            let r = GradCheck.check([level, coords]) { correlationLookup($0[0], coords: $0[1], radius: 1, scale: scale) }
            #expect(r.worst < 1e-2, "scale \(scale): \(r)")
        }
    }

    @Test func pyramidLookupBackwardMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 64)
        let f1 = Tensor.randn([1, 3, 4, 5], using: &rng), f2 = Tensor.randn([1, 3, 4, 5], using: &rng)
        let coords = safeCoords(b: 1, h: 4, w: 5, maxCell: 2, rng: &rng)
        let r = GradCheck.check([f1, f2, coords]) { CorrelationPyramid($0[0], $0[1], levels: 2, radius: 1).lookup($0[2]) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    /// Coordinates far outside the map in every direction, exactly at the limits where a level's
    /// window leaves its map, and NaN / ±Inf, at every level of a 4-level pyramid with RAFT's two
    /// radii: the forward pass equals a Double reference with zero padding (exactly 0 where the
    /// window is wholly outside), and the backward pass is finite, with zero gradient for a map
    /// whose window lies wholly outside and for coordinates whose windows all do.
    @Test(arguments: [3, 4])
    func lookupFarOutsideTheMapIsZeroWithZeroGradients(radius r: Int) {
        var rng = RandomGenerator(seed: 65)
        let h = 16, w = 24, levels = 4
        let f1 = Tensor.randn([1, 4, h, w], using: &rng), f2 = Tensor.randn([1, 4, h, w], using: &rng)
        f1.requiresGrad = true; f2.requiresGrad = true
        let pyramid = CorrelationPyramid(f1, f2, levels: levels, radius: r)

        // Per axis of n finest-level pixels: extremes, then for every level the offsets around the
        // first position whose window lies wholly beyond either end of that level's map.
        func axisValues(_ n: Int) -> [Float] {
            var v: [Float] = [-.infinity, -1e30, -1e6, -300, 300 + Float(n), 1e6, 1e30, .infinity, .nan]
            for l in 0..<levels {
                let nl = n >> l, s = Float(1 << l)
                for d: Float in [-0.5, 0, 0.5, 1, 3] {
                    v.append((Float(nl - 1 + r + 1) + d) * s)
                    v.append(-(Float(r + 1) + d) * s)
                }
            }
            return v
        }
        var cases: [(Float, Float)] = []
        for x in axisValues(w) { cases.append((x, Float(h) / 2)) }
        for y in axisValues(h) { cases.append((Float(w) / 2, y)) }
        for x: Float in [-.infinity, -1e6, 1e6, .nan] { for y: Float in [-1e6, 1e6, .infinity, .nan] { cases.append((x, y)) } }
        #expect(cases.count <= h * w)
        let coords = Tensor.zeros([1, 2, h, w])
        for i in 0..<(h * w) {
            let (x, y) = i < cases.count ? cases[i] : (rng.uniformFloat(-8, Float(w) + 8), rng.uniformFloat(-8, Float(h) + 8))
            coords.data[i] = x; coords.data[h * w + i] = y
        }
        coords.requiresGrad = true
        let y = pyramid.lookup(coords)
        let k = 2 * r + 1, k2 = k * k, hw = h * w

        // Double reference: bilinear with zero padding; non-finite coordinates sample nothing.
        // `touched`: some corner lies in the map (even at weight 0, where the value is still 0
        // but the coordinate gradient is not).
        func sample(_ map: UnsafePointer<Float>, _ hl: Int, _ wl: Int, _ x: Double, _ y: Double) -> (Double, Bool) {
            guard x.isFinite, y.isFinite, abs(x) < 1e7, abs(y) < 1e7 else { return (0, false) }
            let x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down)), fx = x - Double(x0), fy = y - Double(y0)
            var v = 0.0, touched = false
            for (cx, cy, wt) in [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                                 (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
            where cx >= 0 && cx < wl && cy >= 0 && cy < hl {
                v += wt * Double(map[cy * wl + cx]); touched = true
            }
            return (v, touched)
        }
        var outside = [[Bool]](repeating: [Bool](repeating: true, count: hw), count: levels)
        var worst = 0.0
        for (l, map) in pyramid.levels.enumerated() {
            let hl = map.shape[2], wl = map.shape[3], s = Double(1) / Double(1 << l)
            for i in 0..<hw {
                let cx = Double(coords.data[i] * Float(s)), cy = Double(coords.data[hw + i] * Float(s))
                for a in 0..<k {
                    for j in 0..<k {
                        let (ref, touched) = sample(map.data + i * hl * wl, hl, wl, cx + Double(a - r), cy + Double(j - r))
                        if touched { outside[l][i] = false }
                        let got = y.data[(l * k2 + a * k + j) * hw + i]
                        if !touched { #expect(got == 0, "level \(l) pixel \(i) (\(coords.data[i]), \(coords.data[hw + i]))") }
                        worst = max(worst, abs(Double(got) - ref))
                    }
                }
            }
        }
        #expect(worst < 1e-4, "largest difference from the reference \(worst)")
        #expect(outside[0][0] && outside[levels - 1][cases.count - 1], "the cases must include windows wholly outside")

        Tape.backward(y, seed: Tensor.randn(y.shape, using: &rng))
        let gc = coords.grad!
        #expect(gc.isFinite && f1.grad!.isFinite && f2.grad!.isFinite)
        for i in 0..<hw where (0..<levels).allSatisfy({ outside[$0][i] }) {
            #expect(gc.data[i] == 0 && gc.data[hw + i] == 0, "pixel \(i): coordinate gradient of a window wholly outside")
        }
        // Each level's own map gradient (in the pyramid the pooling adds the coarser levels' in).
        for (l, pooled) in pyramid.levels.enumerated() {
            let map = pooled.clone()
            map.requiresGrad = true
            let yl = correlationLookup(map, coords: coords.detached(), radius: r, scale: 1 / Float(1 << l))
            Tape.backward(yl, seed: Tensor.randn(yl.shape, using: &rng))
            let g = map.grad!, plane = map.shape[2] * map.shape[3]
            #expect(g.isFinite, "level \(l) map gradient")
            for i in 0..<hw where outside[l][i] {
                #expect((0..<plane).allSatisfy { g.data[i * plane + $0] == 0 }, "level \(l) pixel \(i): gradient outside the window")
            }
        }
    }
}
