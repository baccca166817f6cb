import Testing
@testable import Tensor
import TestSupport

/// A flow whose sample positions x + u, y + v have fractional parts in [0.2, 0.8] and stay at
/// least one pixel inside the image, so finite differences never cross a cell or the border.
private func interiorFlow(n: Int, h: Int, w: Int, rng: inout RandomGenerator) -> Tensor {
    let flow = Tensor(uninitialized: [n, 2, h, w])
    for b in 0..<n {
        for y in 0..<h {
            for x in 0..<w {
                let tx = Float(1 + rng.int(below: w - 3)) + rng.uniformFloat(0.2, 0.8)
                let ty = Float(1 + rng.int(below: h - 3)) + rng.uniformFloat(0.2, 0.8)
                flow.data[((b * 2) * h + y) * w + x] = tx - Float(x)
                flow.data[((b * 2 + 1) * h + y) * w + x] = ty - Float(y)
            }
        }
    }
    return flow
}

@Suite struct WarpTests {
    @Test(arguments: [("warp_zeros", WarpPadding.zeros), ("warp_border", WarpPadding.border)])
    func warpMatchesPyTorch(_ name: String, _ padding: WarpPadding) throws {
        let errors = try compareWithFixture(name, inputs: ["img", "flow"]) { xs, meta in
            #expect(meta["padding"] == (padding == .zeros ? "\"zeros\"" : "\"border\""))
            return warp(xs[0], by: xs[1], padding: padding)
        }
        #expect(errors.count == 3)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func zeroPaddingDropsOutOfRangeCornersAndBorderPaddingClamps() {
        // One row, image [10, 20, 30]; every pixel samples at x = −0.5, 1.25, 2.5 respectively.
        let img = Tensor(shape: [1, 1, 1, 3], values: [10, 20, 30])
        let flow = Tensor(shape: [1, 2, 1, 3], values: [-0.5, 0.25, 0.5, 0, 0, 0])
        let z = warp(img, by: flow, padding: .zeros).toArray()
        let b = warp(img, by: flow, padding: .border).toArray()
        // zeros: half of pixel 0; a plain interior sample; half of the last pixel.
        #expect(zip(z, [5, 22.5, 15] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(z)")
        // border: the coordinate is clamped to the edge.
        #expect(zip(b, [10, 22.5, 30] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(b)")
        // A sample fully outside reads 0 with zeros and the edge with border; a huge or NaN flow
        // must not trap.
        let far = Tensor(shape: [1, 2, 1, 3], values: [-7, 1e30, .nan, 0, 0, 0])
        #expect(warp(img, by: far, padding: .zeros).toArray() == [0, 0, 0])
        #expect(Array(warp(img, by: far, padding: .border).toArray().prefix(2)) == [10, 30])
    }

    @Test func borderPaddingHasNoGradientAlongAClampedCoordinate() {
        let img = Tensor(shape: [1, 1, 2, 3], values: [1, 2, 4, 8, 16, 32])
        // Pixel (0,0) samples at x = −1 (clamped), y = 0.5; pixel (0,1) at x = 1.5, y = 0.5.
        let flow = Tensor(shape: [1, 2, 2, 3], values: [-1, 0.5, 0, 0, 0, 0,
                                                        0.5, 0.5, 0, 0, 0, 0])
        flow.requiresGrad = true
        img.requiresGrad = true
        let seed = Tensor(shape: [1, 1, 2, 3], values: [1, 1, 0, 0, 0, 0])
        Tape.backward(warp(img, by: flow, padding: .border), seed: seed)
        let g = flow.grad!.toArray()
        #expect(g[0] == 0)                                   // x clamped at pixel (0,0)
        #expect(abs(g[6] - (8 - 1)) < 1e-5)                  // ∂/∂y at (0,0): column 0, rows 0→1
        #expect(abs(g[1] - 0.5 * ((4 - 2) + (32 - 16))) < 1e-5)  // ∂/∂x at (0,1), midway in y
        // Image gradient at (0,0): all weight on column 0, split between rows.
        #expect(abs(img.grad!.data[0] - 0.5) < 1e-6 && abs(img.grad!.data[3] - 0.5) < 1e-6)
    }

    @Test(arguments: [WarpPadding.zeros, WarpPadding.border])
    func warpBackwardMatchesFiniteDifferences(_ padding: WarpPadding) {
        var rng = RandomGenerator(seed: 41)
        let img = Tensor.randn([2, 3, 6, 7], using: &rng)
        let flow = interiorFlow(n: 2, h: 6, w: 7, rng: &rng)
        let r = GradCheck.check([img, flow], eps: 1e-2) { warp($0[0], by: $0[1], padding: padding) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    @Test func zeroPaddingFlowGradientNearTheBorderMatchesFiniteDifferences() {
        // Samples straddling the border (x in (−1, 0) or (w−1, w)), fractional parts in [0.2, 0.8].
        var rng = RandomGenerator(seed: 42)
        let img = Tensor.randn([1, 2, 4, 5], using: &rng)
        let flow = Tensor(uninitialized: [1, 2, 4, 5])
        for y in 0..<4 {
            for x in 0..<5 {
                let left = (x + y) % 2 == 0
                let tx = left ? -1 + rng.uniformFloat(0.2, 0.8) : 4 + rng.uniformFloat(0.2, 0.8)
                flow.data[y * 5 + x] = tx - Float(x)
                flow.data[20 + y * 5 + x] = Float(1) + rng.uniformFloat(0.2, 0.8) - Float(y)
            }
        }
        let r = GradCheck.check([img, flow], eps: 1e-2) { warp($0[0], by: $0[1], padding: .zeros) }
        #expect(r.worst < 1e-2, "\(r)")
    }

    /// The warp kernel's paths on a width with 16-, 8-wide and scalar columns, samples inside,
    /// straddling and far outside the image: AVX-512 equals AVX2 bit for bit, the portable loops
    /// agree to rounding, for the output and both gradients, with either padding.
    @Test(arguments: [WarpPadding.zeros, WarpPadding.border])
    func warpKernelPathsAgree(_ padding: WarpPadding) {
        var rng = RandomGenerator(seed: 44)
        let (n, c, h, w) = (2, 3, 5, 37)
        let img = Tensor.randn([n, c, h, w], using: &rng), g = Tensor.randn([n, c, h, w], using: &rng)
        let flow = Tensor.randn([n, 2, h, w], using: &rng) * 4
        flow.data[3] = 1e30; flow.data[4] = -.infinity; flow.data[5] = .nan
        let paths: [KernelPath] = [.best, .avx2, .portable]
        var outs: [[Tensor]] = []
        for path in paths {
            let y = Tensor.full(img.shape, 9), di = Tensor.full(img.shape, 0.5), df = Tensor.full(flow.shape, 0.5)
            warpForward(y.data, img.data, flow.data, n: n, c: c, h: h, w: w, padding: padding, path: path)
            warpBackward(di.data, df.data, g.data, img.data, flow.data, n: n, c: c, h: h, w: w, padding: padding, path: path)
            outs.append([y, di, df])
        }
        for j in 0..<3 {
            #expect(differingElements(outs[0][j], outs[1][j]) == 0)
            #expect(worstRelative(outs[2][j], outs[1][j].toArray().map(Double.init)) < 1e-5)
            #expect(outs[1][j].toArray().allSatisfy { $0.isFinite })
        }
    }
}
