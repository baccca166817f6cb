import Testing
import Tensor
import TestSupport

@Suite struct WeightNormTests {
    /// w = g · v / ‖v‖ per output channel, and its gradients against finite differences.
    @Test func weightNormMatchesItsDefinitionAndFiniteDifferences() {
        var rng = RandomGenerator(seed: 12)
        let v = Tensor.randn([3, 2, 3, 3], using: &rng), g = Tensor.randn([3, 1, 1, 1], using: &rng)
        let w = Tensor.weightNorm(g: g, v: v)
        for o in 0..<3 {
            let row = (0..<18).map { Double(v.data[o * 18 + $0]) }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in 0..<18 { #expect(abs(Double(w.data[o * 18 + i]) - Double(g.data[o]) * row[i] / norm) < 1e-6) }
        }
        let r = GradCheck.check([g, v], eps: 1e-3) { Tensor.weightNorm(g: $0[0], v: $0[1]) }
        #expect(r.worst < 1e-2, "\(r)")
    }
}
