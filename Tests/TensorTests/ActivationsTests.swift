import CKernels
import Foundation
import Testing
import Tensor
import TestSupport

@Suite struct ActivationsTests {
    @Test(arguments: ["relu", "leaky_relu_0.1", "sigmoid", "tanh"])
    func activationMatchesPyTorch(_ name: String) throws {
        let errors = try compareWithFixture(name, inputs: ["x"]) { xs, _ in
            switch name {
            case "relu": return xs[0].relu()
            case "leaky_relu_0.1": return xs[0].leakyReLU(0.1)
            case "sigmoid": return xs[0].sigmoid()
            default: return xs[0].tanh()
            }
        }
        #expect(errors.count == 2)
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func activationsMatchFiniteDifferences() {
        var rng = RandomGenerator(seed: 3)
        // Keep away from the kink at 0: |x| ≥ 0.2.
        let x = Tensor.rand([3, 5], 0.2, 2, using: &rng)
        for i in stride(from: 0, to: x.count, by: 2) { x.data[i] = -x.data[i] }
        for (name, f) in [("relu", { (t: Tensor) in t.relu() }), ("leaky", { $0.leakyReLU(0.1) }),
                          ("sigmoid", { $0.sigmoid() }), ("tanh", { $0.tanh() })] as [(String, (Tensor) -> Tensor)] {
            let r = GradCheck.check([x]) { f($0[0]) }
            #expect(r.worst < 1e-2, "\(name): \(r)")
        }
    }
}

@Suite struct SoftmaxTests {
    @Test func softmaxMatchesPyTorch() throws {
        let errors = try compareWithFixture("softmax_dim1", inputs: ["x"]) { xs, _ in xs[0].softmax(dim: 1) }
        for (label, e) in errors { #expect(e <= 1e-4, "\(label): \(e)") }
    }

    @Test func softmaxMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.randn([2, 4, 3], using: &rng)
        for d in 0..<3 {
            let r = GradCheck.check([x]) { $0[0].softmax(dim: d) }
            #expect(r.worst < 1e-2, "dim \(d): \(r)")
        }
    }
}

/// The vectorized sigmoid and tanh (and their portable loops) against Double on a dense sweep from
/// −100 to 100, tiny arguments, a count that leaves a scalar tail, ±∞ and NaN.
@Test func vectorizedSigmoidAndTanhMatchDouble() {
    var xs: [Float] = stride(from: Float(-100), through: 100, by: 0.0173).map { $0 }
    xs += stride(from: Float(-0.35), through: 0.35, by: 0.00031).map { $0 }
    xs += [0, -0, 1e-30, -1e-30, 1e-6, .infinity, -.infinity, .nan, 87.5, -87.5, 88.9, -88.9, 0.3, -0.3]
    let x = Tensor(shape: [xs.count], values: xs)
    for (name, f, ref) in [("sigmoid", { (t: Tensor) in t.sigmoid() }, { (v: Double) in 1 / (1 + Foundation.exp(-v)) }),
                           ("tanh", { $0.tanh() }, { Foundation.tanh($0) })] as [(String, (Tensor) -> Tensor, (Double) -> Double)] {
        let y = f(x)
        var worst = 0.0
        for i in 0..<xs.count {
            let want = ref(Double(xs[i])), got = Double(y.data[i])
            if want.isNaN { #expect(got.isNaN, "\(name)(\(xs[i])) = \(got)"); continue }
            worst = max(worst, abs(got - want) / max(abs(want), 1e-30))
        }
        #expect(worst < 1e-6, "\(name): worst relative error \(worst)")
    }
    // The portable loops agree with the AVX2 ones on the same sweep.
    for kernel in [mdf_tanh, mdf_sigmoid] as [(UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int, Int32) -> Void] {
        var yp = [Float](repeating: 0, count: xs.count), ya = yp
        kernel(&yp, xs, xs.count, 1)
        kernel(&ya, xs, xs.count, 0)
        #expect(zip(yp, ya).allSatisfy { $0.isNaN ? $1.isNaN : abs($0 - $1) <= 1e-6 * max(abs($0), 1e-30) })
    }
}

/// σ of a channel range equals the copied slice's σ, forward bit for bit (runs of a multiple of
/// eight) and to rounding otherwise, and its gradient lands in that range of the input only.
@Test(arguments: [(2, 6, 4, 4), (3, 5, 3, 7)])
func sigmoidOfARangeEqualsSigmoidOfTheSlice(_ n: Int, _ c: Int, _ h: Int, _ w: Int) {
    var rng = RandomGenerator(seed: 71)
    let x = Tensor.randn([n, c, h, w], using: &rng)
    x.requiresGrad = true
    let gy = Tensor.randn([n, 2, h, w], using: &rng)
    let y = x.sigmoid(dim: 1, start: 3, length: 2)
    Tape.backward((y * gy).sum())
    let got = x.grad!.clone()
    x.zeroGrad()
    let ref = x.slice(dim: 1, start: 3, length: 2).sigmoid()
    Tape.backward((ref * gy).sum())
    if (2 * h * w) % 8 == 0 { #expect(differingElements(y, ref) == 0) } else { #expect(relativeError(y, ref) < 1e-6) }
    #expect(relativeError(got, x.grad!) < 1e-6)
    let outside = (0..<x.count).filter { (($0 / (h * w)) % c) < 3 || (($0 / (h * w)) % c) >= 5 }
    #expect(outside.allSatisfy { got.data[$0] == 0 } && got.toArray().contains { $0 != 0 })
}
