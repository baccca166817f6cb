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
