import Testing
@testable import Tensor
import CKernels
import TestSupport

/// Direct (loop) convolution in Double: y, and the gradients of sum(y · gy) with respect to x and w.
private func directConv(x: Tensor, w: Tensor, gy: Tensor?, _ g: ConvGeometry) -> (y: [Double], gx: [Double], gw: [Double]) {
    let n = x.shape[0], cin = x.shape[1], h = x.shape[2], wd = x.shape[3], cout = w.shape[0]
    let (oh, ow) = g.outputSize(h: h, w: wd)
    let cg = cin / g.groups, mg = cout / g.groups
    var y = [Double](repeating: 0, count: n * cout * oh * ow)
    var gx = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: w.count)
    for b in 0..<n { for o in 0..<cout {
        let grp = o / mg
        for oy in 0..<oh { for ox in 0..<ow {
            let yi = ((b * cout + o) * oh + oy) * ow + ox
            let up = gy.map { Double($0.data[yi]) } ?? 0
            var s = 0.0
            for c in 0..<cg { for i in 0..<g.kh { for j in 0..<g.kw {
                let iy = oy * g.sh - g.padTop + i * g.dh, ix = ox * g.sw - g.padLeft + j * g.dw
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                let xi = ((b * cin + grp * cg + c) * h + iy) * wd + ix, wi = ((o * cg + c) * g.kh + i) * g.kw + j
                s += Double(x.data[xi]) * Double(w.data[wi])
                gx[xi] += up * Double(w.data[wi])
                gw[wi] += up * Double(x.data[xi])
            } } }
            y[yi] = s
        } }
    } }
    return (y, gx, gw)
}

/// conv2d(x, w) and the gradients of sum(y · gy), gy random, against the Double loops: each within
/// 1e-5 relative. Returns y and the loops' output.
@discardableResult
private func expectConvMatchesDirectLoops(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry,
                                          using rng: inout RandomGenerator) -> (y: Tensor, ref: [Double]) {
    x.requiresGrad = true; w.requiresGrad = true
    let y = x.conv2d(w, nil, g)
    let gy = Tensor.randn(y.shape, using: &rng)
    Tape.backward((y * gy).sum())
    let ref = directConv(x: x, w: w, gy: gy, g)
    #expect(worstRelative(y, ref.y) < 1e-5)
    #expect(worstRelative(x.grad!, ref.gx) < 1e-5)
    #expect(worstRelative(w.grad!, ref.gw) < 1e-5)
    return (y, ref.y)
}

/// ref (n, cout, plane) with bias b added and a leaky ReLU of slope 0.1: what a fused conv returns.
/// `at`: the index of ref[0] in that layout (for one element).
private func biasedLeaky(_ ref: [Double], _ b: Tensor, plane: Int, at first: Int = 0) -> [Double] {
    ref.indices.map { i in
        let v = ref[i] + Double(b.data[((first + i) / plane) % b.count])
        return v > 0 ? v : 0.1 * v
    }
}

/// Shapes wide enough that conv2d cuts every image into many panels and several cache tiles, run
/// as parallel tasks (strided backward-data in two phases), so tile seams, partial weight gradients
/// and the even/odd schedule are all exercised.
/// The direct convolution's cases too: output channels not a multiple of its 4-row panels,
/// reductions longer than one 256-tap block, asymmetric padding, rows narrower than a panel,
/// stride with dilation (input-gradient phases that receive no tap), a padding wider than the
/// kernel (the input gradient's col2im fallback), a 5×5 stride-2 layer whose input-gradient
/// phases include a 3×3 one wide enough for Winograd, and an unpadded 1×1 layer (read in place).
@Test(arguments: [
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 6, 4, 420),
    (ConvGeometry(kernel: 3, stride: 2, padding: 1), 6, 4, 420),
    (ConvGeometry(kernel: 7, stride: 2, padding: 3), 6, 4, 420),
    (ConvGeometry(kernel: 3, stride: 1, padding: 2, dilation: 2, groups: 2), 6, 4, 420),
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 40, 7, 50),
    (ConvGeometry(kernel: (1, 5), stride: (1, 1), padding: (top: 0, bottom: 0, left: 2, right: 2)), 6, 9, 13),
    (ConvGeometry(kernel: (3, 2), stride: (2, 1), padding: (top: 1, bottom: 0, left: 2, right: 1), dilation: (1, 2)), 6, 5, 11),
    (ConvGeometry(kernel: 3, stride: 2, padding: 2, dilation: 2), 6, 4, 41),
    (ConvGeometry(kernel: 1, padding: 1), 6, 5, 30),
    (ConvGeometry(kernel: 1), 6, 5, 330),
    (ConvGeometry(kernel: 5, stride: 2, padding: 2), 34, 32, 40),
])
func tiledConvolutionMatchesDirectLoops(_ g: ConvGeometry, _ cin: Int, _ cout: Int, _ width: Int) {
    var rng = RandomGenerator(seed: 21)
    let x = Tensor.randn([2, cin, 29, width], using: &rng)
    let w = Tensor.randn([cout, cin / g.groups, g.kh, g.kw], using: &rng)
    expectConvMatchesDirectLoops(x, w, g, using: &rng)
}

/// The fused leaky ReLU (slope 0.1, and 0 for ReLU) equals conv2d then the separate activation,
/// in the output and in every gradient, on tiled shapes, a grouped one and a 1×1 conv.
@Test(arguments: [
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), Float(0.1)),
    (ConvGeometry(kernel: 3, stride: 2, padding: 1, groups: 2), Float(0)),
    (ConvGeometry(kernel: 1), Float(0.1)),
])
func fusedActivationMatchesSeparateOps(_ g: ConvGeometry, _ slope: Float) {
    var rng = RandomGenerator(seed: 5)
    let x = Tensor.randn([2, 6, 23, 300], using: &rng)
    let w = Tensor.randn([4, 6 / g.groups, g.kh, g.kw], using: &rng)
    let b = Tensor.randn([4], using: &rng)
    let gy = Tensor.randn([2, 4] + Array([g.outputSize(h: 23, w: 300).0, g.outputSize(h: 23, w: 300).1]), using: &rng)
    func run(fused: Bool) -> [Tensor] {
        let xs = x.detached(), ws = w.detached(), bs = b.detached()
        for t in [xs, ws, bs] { t.requiresGrad = true }
        let y = fused ? xs.conv2d(ws, bs, g, leakySlope: slope) : xs.conv2d(ws, bs, g).leakyReLU(slope)
        Tape.backward((y * gy).sum())
        return [y, xs.grad!, ws.grad!, bs.grad!]
    }
    let fused = run(fused: true), separate = run(fused: false)
    for (f, s) in zip(fused, separate) {
        #expect(f.shape == s.shape)
        #expect(worstRelative(f, (0..<s.count).map { Double(s.data[$0]) }) < 1e-6)
    }
}

/// The kernel paths agree: the portable C loops (machines without AVX2+FMA) with the AVX2 tiles to
/// rounding, and the widest path (AVX-512 where the CPU has it, else AVX2 over packed strips) with
/// AVX2's unpacked strips bit for bit, since every output is the same FMA chain. Forward with a fused activation, accumulation, and the weight
/// gradient, on grouped strided shapes whose channel counts fill neither a 4-row nor a 16-channel
/// panel, with rows wide enough for whole 48-column strips, and (the second) an even number of
/// 16-channel panels with rows that end inside a strip.
@Test(arguments: [(2, 6, 13, 57, 10, 2), (1, 8, 21, 100, 64, 1)])
func kernelPathsAgree(_ n: Int, _ cin: Int, _ h: Int, _ w: Int, _ cout: Int, _ groups: Int) {
    var rng = RandomGenerator(seed: 31)
    let g = ConvGeometry(kernel: 3, stride: 2, padding: 1, groups: groups)
    let (oh, ow) = g.outputSize(h: h, w: w)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin / groups, 3, 3], using: &rng)
    let b = Tensor.randn([cout], using: &rng), dy = Tensor.randn([n, cout, oh, ow], using: &rng)
    let packed = packConvWeights(wt.data, cout: cout, kg: cin / groups * 9, groups: groups)
    let paths: [KernelPath] = [.best, .avx2, .portable]
    expectForwardPathsAgree(from: dy) { y, accumulate, path in
        directConv(y, x.data, packed: packed.pointer, accumulate ? nil : b.data, n: n, cin: cin, h: h, w: w,
                   cout: cout, g, leakySlope: accumulate ? nil : 0.1, accumulate: accumulate, path: path)
    }
    let dw = paths.map { _ in Tensor.zeros(wt.shape) }
    for (i, path) in paths.enumerated() {
        directConvWeightGradient(dw[i].data, dy.data, x.data, n: n, cin: cin, h: h, w: w, cout: cout, g, path: path)
    }
    #expect(differingElements(dw[0], dw[1]) == 0)
    #expect(worstRelative(dw[2], (0..<dw[1].count).map { Double(dw[1].data[$0]) }) < 1e-5)
    let ref = directConv(x: x, w: wt, gy: dy, g)
    #expect(worstRelative(dw[2], ref.gw) < 1e-5)
    #expect(worstRelative(dw[0], ref.gw) < 1e-5)
}

/// A strip's last piece of every width the AVX-512 kernel distinguishes (1–16, 17–32, 33–47 columns
/// left after whole 48-column strips, or none): a 1×1 convolution of one row of `w` pixels, whose
/// grid is exactly w columns, with 5 four-row panels (two pairs and an odd one), forward with a
/// fused activation and accumulating, the widest path against AVX2 bit for bit and against the
/// portable loops to rounding.
@Test(arguments: [5, 16, 17, 24, 25, 32, 33, 47, 48, 49, 70, 90, 95, 96])
func lastStripWidthsAgree(_ w: Int) {
    var rng = RandomGenerator(seed: 37)
    let (cin, cout) = (7, 18)
    let g = ConvGeometry(kernel: 1)
    let x = Tensor.randn([1, cin, 1, w], using: &rng), wt = Tensor.randn([cout, cin, 1, 1], using: &rng)
    let b = Tensor.randn([cout], using: &rng), y0 = Tensor.randn([1, cout, 1, w], using: &rng)
    let packed = packConvWeights(wt.data, cout: cout, kg: cin, groups: 1)
    expectForwardPathsAgree(from: y0) { y, accumulate, path in
        directConv(y, x.data, packed: packed.pointer, accumulate ? nil : b.data, n: 1, cin: cin, h: 1, w: w,
                   cout: cout, g, leakySlope: accumulate ? nil : 0.1, accumulate: accumulate, path: path)
    }
}

/// The direct convolution in bands of output rows (each band with its own phase copy) equals it in
/// one band bit for bit, and the loops to rounding: bands of one row, of three (a shorter last
/// one), and the whole output, on a strided, a dilated and a grouped geometry, forward with a fused
/// activation.
@Test(arguments: [
    ConvGeometry(kernel: 3, stride: 2, padding: 1),
    ConvGeometry(kernel: (3, 3), padding: (top: 2, bottom: 2, left: 2, right: 2), dilation: (2, 2)),
    ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2), groups: 2),
])
func directConvBandsEqualOneBand(_ g: ConvGeometry) {
    var rng = RandomGenerator(seed: 53)
    let (n, cin, h, w, cout) = (2, 6, 17, 29, 10)
    let (oh, ow) = g.outputSize(h: h, w: w)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin / g.groups, g.kh, g.kw], using: &rng)
    let b = Tensor.randn([cout], using: &rng)
    let packed = packConvWeights(wt.data, cout: cout, kg: cin / g.groups * g.kh * g.kw, groups: g.groups)
    let y = [1, 3, oh].map { rows -> Tensor in
        let out = Tensor.zeros([n, cout, oh, ow])
        directConv(out.data, x.data, packed: packed.pointer, b.data, n: n, cin: cin, h: h, w: w, cout: cout, g,
                   leakySlope: 0.1, accumulate: false, bandRows: rows)
        return out
    }
    #expect(differingElements(y[0], y[2]) == 0)
    #expect(differingElements(y[1], y[2]) == 0)
    let ref = directConv(x: x, w: wt, gy: nil, g).y
    let expected = (0..<ref.count).map { i -> Double in
        let v = ref[i] + Double(b.data[(i / (oh * ow)) % cout])
        return v > 0 ? v : 0.1 * v
    }
    #expect(worstRelative(y[2], expected) < 1e-5)
}

/// The strided input gradient in bands of phase rows: bands of one, two and three rows (shorter last
/// ones, row phases of unequal heights) equal the default banding bit for bit, and the loops to
/// rounding; accumulating into dx and assigning it. Geometries: stride 2 (FastFlowNet's), a 5×5
/// stride-2 kernel (phases of 3×3, 3×2, 2×3 and 2×2 taps), stride 2 with dilation 2 (phases with no
/// tap), and stride 3 without padding, with groups.
@Test(arguments: [
    ConvGeometry(kernel: 3, stride: 2, padding: 1),
    ConvGeometry(kernel: 5, stride: 2, padding: 2),
    ConvGeometry(kernel: (3, 3), stride: (2, 2), padding: (top: 2, bottom: 2, left: 2, right: 2), dilation: (2, 2)),
    ConvGeometry(kernel: 3, stride: 3, padding: 0, groups: 2),
])
func stridedInputGradientBandsEqualDefault(_ g: ConvGeometry) {
    var rng = RandomGenerator(seed: 59)
    let (n, cin, h, w, cout) = (2, 6, 19, 27, 10)
    let (oh, ow) = g.outputSize(h: h, w: w)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin / g.groups, g.kh, g.kw], using: &rng)
    let dy = Tensor.randn([n, cout, oh, ow], using: &rng), dx0 = Tensor.randn(x.shape, using: &rng)
    let ref = directConv(x: x, w: wt, gy: dy, g).gx
    for assign in [false, true] {
        let dx = [nil, 1, 2, 3].map { rows -> Tensor in
            let out = dx0.clone()
            #expect(directInputGradient(out.data, dy.data, wt.data, n: n, cin: cin, h: h, w: w, cout: cout, g,
                                        assign: assign, bandRows: rows))
            return out
        }
        for i in 1..<dx.count { #expect(differingElements(dx[i], dx[0]) == 0, "\(g) assign \(assign), bands #\(i)") }
        let expected = assign ? ref : zip(ref, (0..<dx0.count).map { Double(dx0.data[$0]) }).map { $0 + $1 }
        #expect(worstRelative(dx[0], expected) < 1e-5)
    }
}

/// Runs `conv` into a copy of y0 on each kernel path (best, AVX2, portable), with a fused bias and
/// leaky ReLU and accumulating (`conv`'s second argument), and expects the widest path to equal AVX2
/// bit for bit, the portable loops to agree to rounding, and the output to differ from y0.
func expectForwardPathsAgree(from y0: Tensor, _ conv: (UnsafeMutablePointer<Float>, Bool, KernelPath) -> Void) {
    let paths: [KernelPath] = [.best, .avx2, .portable]
    for accumulate in [false, true] {
        let y = paths.map { _ in Tensor.zeros(y0.shape) }
        for (i, path) in paths.enumerated() {
            y[i].data.update(from: y0.data, count: y0.count)
            conv(y[i].data, accumulate, path)
        }
        #expect(differingElements(y[0], y[1]) == 0)
        #expect(worstRelative(y[2], (0..<y[1].count).map { Double(y[1].data[$0]) }) < 1e-6)
        #expect(worstRelative(y[1], (0..<y0.count).map { Double(y0.data[$0]) }) > 1e-2)
    }
}

/// With few taps (3 input channels a group: 27 taps, 5 panels) and at least 8 × 512 grid columns,
/// the weight gradient sums fixed column parts into their own buffers: per group, over two images,
/// on every kernel path, against the Double loops; a grid just under that size takes the tap split.
@Test(arguments: [(66, 70), (40, 60)])
func weightGradientColumnSplit(_ h: Int, _ w: Int) {
    var rng = RandomGenerator(seed: 37)
    let g = ConvGeometry(kernel: 3, stride: 1, padding: 1, groups: 2)
    let x = Tensor.randn([2, 6, h, w], using: &rng), wt = Tensor.randn([20, 3, 3, 3], using: &rng)
    let dy = Tensor.randn([2, 20, h, w], using: &rng)
    let ref = directConv(x: x, w: wt, gy: dy, g)
    for path in [KernelPath.best, .avx2, .portable] {
        let dw = Tensor.randn(wt.shape, using: &rng)
        let before = (0..<dw.count).map { Double(dw.data[$0]) }
        directConvWeightGradient(dw.data, dy.data, x.data, n: 2, cin: 6, h: h, w: w, cout: 20, g, path: path)
        #expect(worstRelative(dw, zip(before, ref.gw).map { $0 + $1 }) < 1e-5, "path \(path)")
    }
}

/// 3×3 stride-1 layers with at least 32 channels a group take Winograd F(2×2, 3×3), forward and
/// input gradient (and, from 64 input channels, weight gradient): odd output sizes (a
/// last half tile), no padding, asymmetric padding, groups, more tile rows than one chunk, channel
/// counts that fill neither a 6-tap nor a 16-channel panel, and a bias with a fused leaky ReLU,
/// against the Double loops.
@Test(arguments: [
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 34, 36, 13, 27),
    (ConvGeometry(kernel: 3, stride: 1, padding: 0), 32, 33, 12, 9),
    (ConvGeometry(kernel: (3, 3), stride: (1, 1), padding: (top: 2, bottom: 0, left: 0, right: 1)), 33, 32, 9, 14),
    (ConvGeometry(kernel: 3, stride: 1, padding: 1, groups: 2), 64, 66, 7, 11),
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 32, 32, 40, 5),
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 86, 66, 9, 11),
    (ConvGeometry(kernel: (3, 3), stride: (1, 1), padding: (top: 0, bottom: 1, left: 2, right: 0)), 32, 32, 8, 13),
])
func winogradMatchesDirectLoops(_ g: ConvGeometry, _ cin: Int, _ cout: Int, _ h: Int, _ width: Int) {
    #expect(winogradApplies(g, cg: cin / g.groups, mg: cout / g.groups) == winogradEnabled)
    var rng = RandomGenerator(seed: 41)
    let x = Tensor.randn([2, cin, h, width], using: &rng)
    let w = Tensor.randn([cout, cin / g.groups, 3, 3], using: &rng)
    let b = Tensor.randn([cout], using: &rng)
    let (y, ref) = expectConvMatchesDirectLoops(x, w, g, using: &rng)
    // Bias and the fused leaky ReLU in the output transform.
    let fused = x.detached().conv2d(w.detached(), b, g, leakySlope: 0.1)
    let expected = biasedLeaky(ref, b, plane: y.shape[2] * y.shape[3])
    #expect(worstRelative(fused, expected) < 1e-5)
}

/// The Winograd paths agree (the transforms have AVX-512, AVX2 and portable forms; their products
/// run on the implicit GEMM): forward with a fused activation, accumulating, and the weight gradient
/// (called directly, below its channel threshold); AVX2 and the widest path bit for bit. Rows of 19,
/// 32 and 25 tiles: a masked last step of 3 tiles with an odd last column, two full 16-tile steps,
/// and a masked step of 9 tiles; an odd last tile row in two of them.
@Test(arguments: [(11, 37), (8, 64), (5, 50)])
func winogradPathsAgree(_ h: Int, _ w: Int) {
    var rng = RandomGenerator(seed: 43)
    let g = ConvGeometry(kernel: 3, stride: 1, padding: 1)
    let (n, cin, cout) = (1, 16, 18)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin, 3, 3], using: &rng)
    let b = Tensor.randn([cout], using: &rng), y0 = Tensor.randn([n, cout, h, w], using: &rng)
    let packed = packWinogradWeights(wt.data, cout: cout, cg: cin, groups: 1)
    let paths: [KernelPath] = [.best, .avx2, .portable]
    expectForwardPathsAgree(from: y0) { y, accumulate, path in
        winogradConv(y, x.data, packed: packed.pointer, accumulate ? nil : b.data, n: n, cin: cin, h: h, w: w,
                     cout: cout, g, leakySlope: accumulate ? nil : 0.1, accumulate: accumulate, path: path)
    }
    let dw = paths.map { _ in Tensor.zeros(wt.shape) }
    for (i, path) in paths.enumerated() {
        winogradWeightGradient(dw[i].data, y0.data, x.data, n: n, cin: cin, h: h, w: w, cout: cout, g, path: path)
    }
    #expect(differingElements(dw[0], dw[1]) == 0)
    #expect(worstRelative(dw[2], (0..<dw[1].count).map { Double(dw[1].data[$0]) }) < 1e-5)
    #expect(worstRelative(dw[2], directConv(x: x, w: wt, gy: y0, g).gw) < 1e-5)
}

/// 1×5 and 5×1 stride-1 layers with at least 32 channels a group take Winograd F(4, 5) along the
/// kernel's axis, forward and input gradient (the weight gradient stays direct): RAFT's padding,
/// output sizes that leave a last tile of 1–3 pixels, no padding, asymmetric padding, padding across
/// the other axis, groups, several chunks of tile rows, and a bias with a fused leaky ReLU, against
/// the Double loops.
@Test(arguments: [
    (ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2)), 34, 33, 6, 13),
    (ConvGeometry(kernel: (5, 1), padding: (top: 2, bottom: 2, left: 0, right: 0)), 33, 34, 13, 6),
    (ConvGeometry(kernel: (1, 5)), 32, 32, 3, 14),
    (ConvGeometry(kernel: (5, 1)), 32, 32, 15, 3),
    (ConvGeometry(kernel: (1, 5), padding: (top: 1, bottom: 0, left: 3, right: 0)), 32, 36, 5, 10),
    (ConvGeometry(kernel: (5, 1), padding: (top: 0, bottom: 3, left: 1, right: 2)), 36, 32, 9, 5),
    (ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2), groups: 2), 64, 64, 4, 9),
    (ConvGeometry(kernel: (5, 1), padding: (top: 2, bottom: 2, left: 0, right: 0)), 32, 40, 50, 7),
    (ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2)), 40, 32, 40, 11),
])
func winograd5MatchesDirectLoops(_ g: ConvGeometry, _ cin: Int, _ cout: Int, _ h: Int, _ width: Int) {
    #expect(winograd5Applies(g, cg: cin / g.groups, mg: cout / g.groups) == winogradEnabled)
    var rng = RandomGenerator(seed: 47)
    let x = Tensor.randn([2, cin, h, width], using: &rng)
    let w = Tensor.randn([cout, cin / g.groups, g.kh, g.kw], using: &rng)
    let b = Tensor.randn([cout], using: &rng)
    let (y, ref) = expectConvMatchesDirectLoops(x, w, g, using: &rng)
    let fused = x.detached().conv2d(w.detached(), b, g, leakySlope: 0.1)
    let expected = biasedLeaky(ref, b, plane: y.shape[2] * y.shape[3])
    #expect(worstRelative(fused, expected) < 1e-5)
}

/// The F(4, 5) transforms' AVX2 and portable forms agree, both axes, fused activation and
/// accumulating; AVX2 and the widest path bit for bit. Fails if the accumulation is dropped.
@Test(arguments: [true, false])
func winograd5PathsAgree(_ alongRows: Bool) {
    var rng = RandomGenerator(seed: 53)
    let g = alongRows ? ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2))
                      : ConvGeometry(kernel: (5, 1), padding: (top: 2, bottom: 2, left: 0, right: 0))
    let (n, cin, h, w, cout) = (1, 16, alongRows ? 7 : 19, alongRows ? 23 : 9, 10)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin, g.kh, g.kw], using: &rng)
    let b = Tensor.randn([cout], using: &rng), y0 = Tensor.randn([n, cout, h, w], using: &rng)
    let packed = packWinograd5Weights(wt.data, cout: cout, cg: cin, groups: 1)
    let tiles = Winograd5Tiles(g, h: h, w: w)
    let paths: [KernelPath] = [.best, .avx2, .portable]
    for accumulate in [false, true] {
        let y = paths.map { _ in Tensor.zeros(y0.shape) }
        for (i, path) in paths.enumerated() {
            y[i].data.update(from: y0.data, count: y0.count)
            winogradConv(tiles, y[i].data, x.data, packed: packed.pointer, accumulate ? nil : b.data, n: n, cin: cin,
                         h: h, w: w, cout: cout, groups: 1, leakySlope: accumulate ? nil : 0.1, accumulate: accumulate,
                         path: path)
        }
        #expect(differingElements(y[0], y[1]) == 0)
        #expect(worstRelative(y[2], (0..<y[1].count).map { Double(y[1].data[$0]) }) < 1e-6)
        let ref = directConv(x: x, w: wt, gy: Tensor.zeros(y0.shape), g).y
        let expected = (0..<ref.count).map { i -> Double in
            if accumulate { return Double(y0.data[i]) + ref[i] }
            return biasedLeaky([ref[i]], b, plane: h * w, at: i)[0]
        }
        #expect(worstRelative(y[1], expected) < 1e-5)
    }
}

/// F(4×4, 3×3), the inference path of 3×3 Winograd layers (a forward pass no gradient is taken of):
/// rows of more than eight full tiles (the eight-wide transforms) with a one- to three-column last
/// tile, last tile rows of one to three rows, asymmetric padding and groups, with and without a fused
/// leaky ReLU, against the Double loops; recording a gradient keeps F(2×2, 3×3) (other results).
@Test(arguments: [
    (ConvGeometry(kernel: 3, stride: 1, padding: 1), 32, 33, 9, 45),
    (ConvGeometry(kernel: 3, stride: 1, padding: 0), 40, 32, 11, 38),
    (ConvGeometry(kernel: (3, 3), stride: (1, 1), padding: (top: 0, bottom: 2, left: 1, right: 0)), 32, 36, 6, 70),
    (ConvGeometry(kernel: 3, stride: 1, padding: 1, groups: 2), 64, 64, 7, 33),
])
func winograd4MatchesDirectLoops(_ g: ConvGeometry, _ cin: Int, _ cout: Int, _ h: Int, _ width: Int) {
    #expect(winograd4Applies(g, cg: cin / g.groups, mg: cout / g.groups) == (winogradEnabled && winogradTile == 4))
    var rng = RandomGenerator(seed: 59)
    let x = Tensor.randn([2, cin, h, width], using: &rng)
    let w = Tensor.randn([cout, cin / g.groups, 3, 3], using: &rng)
    let b = Tensor.randn([cout], using: &rng)
    let ref = directConv(x: x, w: w, gy: nil, g).y
    let y = Tape.noGrad { x.conv2d(w, nil, g) }
    #expect(worstRelative(y, ref) < 1e-5)
    let fused = Tape.noGrad { x.conv2d(w, b, g, leakySlope: 0.1) }
    let expected = biasedLeaky(ref, b, plane: y.shape[2] * y.shape[3])
    #expect(worstRelative(fused, expected) < 1e-5)
    // With a gradient recorded, the F(2×2, 3×3) forward: equal to the Double loops, not bit for bit
    // to the inference result.
    w.requiresGrad = true
    let trained = x.conv2d(w, nil, g)
    #expect(worstRelative(trained, ref) < 1e-5)
    #expect(differingElements(trained, y) > 0 || !(winogradEnabled && winogradTile == 4))
}

/// Both 3×3 tilings called directly (F(2×2, 3×3) is also the weight gradient's), forward with a
/// fused activation and accumulating, against the Double loops; their portable transforms against
/// AVX2 to rounding, AVX2 and the widest path bit for bit. Fails if the accumulation is dropped.
@Test(arguments: [2, 4])
func winogradTilingsAgree(_ tile: Int) {
    var rng = RandomGenerator(seed: 61)
    let g = ConvGeometry(kernel: 3, stride: 1, padding: 1)
    let (n, cin, h, w, cout) = (1, 16, 10, 41, 9)
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cin, 3, 3], using: &rng)
    let b = Tensor.randn([cout], using: &rng), y0 = Tensor.randn([n, cout, h, w], using: &rng)
    let packed = tile == 4 ? packWinograd4Weights(wt.data, cout: cout, cg: cin, groups: 1)
                           : packWinogradWeights(wt.data, cout: cout, cg: cin, groups: 1)
    let ref = directConv(x: x, w: wt, gy: nil, g).y
    let paths: [KernelPath] = [.best, .avx2, .portable]
    for accumulate in [false, true] {
        let y = paths.map { _ in Tensor.zeros(y0.shape) }
        for (i, path) in paths.enumerated() {
            y[i].data.update(from: y0.data, count: y0.count)
            let bias = accumulate ? nil : b.data, slope: Float? = accumulate ? nil : 0.1
            if tile == 4 {
                winogradConv(WinogradTiles(g, h: h, w: w, tile: 4), y[i].data, x.data, packed: packed.pointer, bias, n: n, cin: cin,
                             h: h, w: w, cout: cout, groups: 1, leakySlope: slope, accumulate: accumulate, path: path)
            } else {
                winogradConv(y[i].data, x.data, packed: packed.pointer, bias, n: n, cin: cin, h: h, w: w, cout: cout, g,
                             leakySlope: slope, accumulate: accumulate, path: path)
            }
        }
        #expect(differingElements(y[0], y[1]) == 0)
        // The AVX2 transforms fuse multiply-adds that the portable ones round twice; F(4×4)'s larger
        // transform coefficients carry that to ~2e-6 (F(2×2): < 1e-6). Both meet the Double loops.
        #expect(worstRelative(y[2], (0..<y[1].count).map { Double(y[1].data[$0]) }) < (tile == 4 ? 5e-6 : 1e-6))
        let expected = (0..<ref.count).map { i -> Double in
            if accumulate { return Double(y0.data[i]) + ref[i] }
            return biasedLeaky([ref[i]], b, plane: h * w, at: i)[0]
        }
        #expect(worstRelative(y[1], expected) < 1e-5)
        #expect(worstRelative(y[2], expected) < 1e-5)
    }
}

/// The input gradient assigned into an uninitialized (NaN-filled) dx equals the one accumulated
/// into zeros, bit for bit: at stride 2 where every stride phase has taps (each dx pixel stored by
/// exactly one phase, odd and even widths), at stride 3 with a 3×3 kernel, and where phases get
/// no tap (1×1 at stride 2, 3×3 at stride 2 with dilation 2: those pixels must still be zeroed).
@Test(arguments: [
    (ConvGeometry(kernel: 3, stride: 2, padding: 1), 37),
    (ConvGeometry(kernel: 3, stride: 2, padding: 1), 64),
    (ConvGeometry(kernel: 3, stride: 3, padding: 1), 40),
    (ConvGeometry(kernel: 1, stride: 2), 41),
    (ConvGeometry(kernel: 3, stride: 2, padding: 2, dilation: 2), 38),
])
func assignedInputGradientEqualsAccumulatedIntoZeros(_ g: ConvGeometry, _ width: Int) {
    var rng = RandomGenerator(seed: 11)
    let (n, cin, cout, h) = (2, 5, 6, 19)
    let x = Tensor.randn([n, cin, h, width], using: &rng)
    let wt = Tensor.randn([cout, cin, g.kh, g.kw], using: &rng)
    let (oh, ow) = g.outputSize(h: h, w: width)
    let dy = Tensor.randn([n, cout, oh, ow], using: &rng)
    let assigned = Tensor.zeros(x.shape), added = Tensor.zeros(x.shape)
    assigned.data.update(repeating: .nan, count: assigned.count)
    conv2dBackward(dx: assigned.data, dw: nil, db: nil, dy.data, x.data, wt.data, n: n, cin: cin, h: h, w: width,
                   cout: cout, g, assignDx: true)
    conv2dBackward(dx: added.data, dw: nil, db: nil, dy.data, x.data, wt.data, n: n, cin: cin, h: h, w: width,
                   cout: cout, g)
    #expect(differingElements(assigned, added) == 0)
    #expect(worstRelative(added, directConv(x: x, w: wt, gy: dy, g).gx) < 1e-5)
}

/// A Winograd layer with few tasks runs its three stages split across the threads (input transform
/// by channels, products by planes, output transform by channels); the result equals the whole-task
/// path bit for bit, with a fused activation and accumulating, for F(2×2, 3×3), F(4×4, 3×3) and
/// F(4, 5): two images, two groups, a last chunk of fewer tile rows (the padding past a row's
/// tiles), and odd tile counts; and against the Double loops.
@Test(arguments: [2, 4, 5])
func winogradSplitStagesEqualTasks(_ tile: Int) {
    var rng = RandomGenerator(seed: 67)
    let g = tile == 5 ? ConvGeometry(kernel: (1, 5), padding: (top: 0, bottom: 0, left: 2, right: 2), groups: 2)
                      : ConvGeometry(kernel: 3, stride: 1, padding: 1, groups: 2)
    let (n, cin, cout, h, w) = (2, 64, 70, 29, 23)
    let cg = cin / g.groups
    let x = Tensor.randn([n, cin, h, w], using: &rng), wt = Tensor.randn([cout, cg, g.kh, g.kw], using: &rng)
    let b = Tensor.randn([cout], using: &rng), y0 = Tensor.randn([n, cout, h, w], using: &rng)
    let packed = tile == 5 ? packWinograd5Weights(wt.data, cout: cout, cg: cg, groups: g.groups)
               : tile == 4 ? packWinograd4Weights(wt.data, cout: cout, cg: cg, groups: g.groups)
                           : packWinogradWeights(wt.data, cout: cout, cg: cg, groups: g.groups)
    let ref = directConv(x: x, w: wt, gy: nil, g).y
    for accumulate in [false, true] {
        let y = [true, false].map { split -> Tensor in
            let out = Tensor.zeros(y0.shape)
            out.data.update(from: y0.data, count: y0.count)
            let bias = accumulate ? nil : b.data, slope: Float? = accumulate ? nil : 0.1
            func run<T: WinogradTiling>(_ lt: T) {
                winogradConv(lt, out.data, x.data, packed: packed.pointer, bias, n: n, cin: cin, h: h, w: w, cout: cout,
                             groups: g.groups, leakySlope: slope, accumulate: accumulate, splitStages: split)
            }
            if tile == 5 { run(Winograd5Tiles(g, h: h, w: w)) } else { run(WinogradTiles(g, h: h, w: w, tile: tile)) }
            return out
        }
        #expect(differingElements(y[0], y[1]) == 0)
        let expected = (0..<ref.count).map { i -> Double in
            if accumulate { return Double(y0.data[i]) + ref[i] }
            return biasedLeaky([ref[i]], b, plane: h * w, at: i)[0]
        }
        #expect(worstRelative(y[0], expected) < 1e-5)
    }
}

/// The Winograd weight gradient's dy transform writes the products' packed layout directly: a
/// panel of 16 channels and one of 5, odd and even sizes, a single row; on every path, bit for bit
/// the scalar definition (A dY Aᵀ, rows then columns, zero outside dy and in the lanes past the
/// panel's channels), and nothing written between planes.
@Test(arguments: [(16, 7, 9), (5, 6, 8), (16, 1, 17), (11, 4, 40)])
func winogradDyPackedMatchesDefinition(_ rows: Int, _ oh: Int, _ ow: Int) {
    var rng = RandomGenerator(seed: 71)
    let dy = Tensor.randn([rows, oh, ow], using: &rng)
    let (th, tw) = ((oh + 1) / 2, (ow + 1) / 2)
    let ps = th * tw * 16 + 5   // plane stride, with a gap the kernel must not touch
    var expected = [Float](repeating: 7, count: 16 * ps)
    func at(_ i: Int, _ y: Int, _ x: Int) -> Float { i < rows && y < oh && x < ow ? dy.data[(i * oh + y) * ow + x] : 0 }
    for ty in 0..<th {
        for tx in 0..<tw {
            for i in 0..<16 {
                let (a, b) = (at(i, 2 * ty, 2 * tx), at(i, 2 * ty, 2 * tx + 1))
                let (c, d) = (at(i, 2 * ty + 1, 2 * tx), at(i, 2 * ty + 1, 2 * tx + 1))
                let z: [[Float]] = [[a, b], [a + c, b + d], [a - c, b - d], [-c, -d]]
                for k in 0..<4 {
                    let values = [z[k][0], z[k][0] + z[k][1], z[k][0] - z[k][1], -z[k][1]]
                    for j in 0..<4 { expected[(4 * k + j) * ps + (ty * tw + tx) * 16 + i] = values[j] }
                }
            }
        }
    }
    for path in [KernelPath.best, .avx2, .portable] {
        var out = [Float](repeating: 7, count: 16 * ps)
        var scratch = [Float](repeating: .nan, count: 4 * tw * 16)
        out.withUnsafeMutableBufferPointer { o in
            scratch.withUnsafeMutableBufferPointer { s in
                mdf_wino_dy_packed(o.baseAddress!, ps, dy.data, oh * ow, Int32(rows), oh, ow, s.baseAddress!, path.rawValue)
            }
        }
        #expect(zip(out, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "path \(path)")
    }
}

/// The phased copy is its definition, element for element: phase (py, px) of a channel holds
/// x[i·sh + py − pt][j·sw + px − pl], zero outside the image, for even and odd widths, left paddings
/// of 0 to 3 (the stride-2 column pair's two source parities and its column offsets) and of −1 (the
/// phase-by-phase path), negative and past-the-end row offsets (a band's), and ranges of phases
/// that split a column pair.
@Test(arguments: [(2, 2, 1, 1, 0, 4), (2, 2, 0, 0, 0, 4), (2, 2, 3, 2, 0, 4), (2, 2, -5, 3, 1, 3), (2, 2, -5, 3, 0, 4),
                  (2, 2, 4, 1, 1, 4), (3, 2, 2, 1, 0, 6), (3, 2, 2, 0, 1, 5), (2, 2, 1, -1, 0, 4),
                  (2, 2, 1, 1, 1, 2), (1, 2, 1, 1, 0, 2), (2, 1, 1, 1, 0, 2), (3, 3, 2, 2, 0, 9)])
func phaseFillMatchesDefinition(_ c: (sh: Int, sw: Int, pt: Int, pl: Int, ph0: Int, ph1: Int)) {
    for (h, w) in [(9, 37), (8, 38), (5, 17)] {
        var rng = RandomGenerator(seed: UInt64(h * w))
        let x = Tensor.randn([h, w], using: &rng)
        let hq = (h + 2 * 3 + c.sh - 1) / c.sh, wq = (w + c.pl + 3 + c.sw - 1) / c.sw
        let planes = c.sh * c.sw * hq * wq
        var dst = [Float](repeating: .nan, count: planes)
        dst.withUnsafeMutableBufferPointer { d in
            mdf_phase_fill(d.baseAddress!, x.data, h, w, c.sh, c.sw, c.pt, c.pl, hq, wq, c.ph0, c.ph1)
        }
        var wrong = 0
        for ph in 0..<(c.sh * c.sw) {
            let py = ph / c.sw, px = ph % c.sw
            for i in 0..<hq {
                for j in 0..<wq {
                    let got = dst[(ph * hq + i) * wq + j]
                    guard (c.ph0..<c.ph1).contains(ph) else { if !got.isNaN { wrong += 1 }; continue }
                    let r = i * c.sh + py - c.pt, col = j * c.sw + px - c.pl
                    let want: Float = r >= 0 && r < h && col >= 0 && col < w ? x.data[r * w + col] : 0
                    if got != want { wrong += 1 }
                }
            }
        }
        #expect(wrong == 0, "\(c) at \(h)×\(w): \(wrong) wrong elements")
    }
}
