import Testing
import Tensor
import TestSupport

/// Implicit differentiation of the fixed point of a linear map, where the gradient is known in
/// closed form.
@Suite struct ImplicitLayerTests {
    /// z* = z*·W + θ per row (B = 2, D = 5, ‖W‖_F = 0.6), so z* = θ(I − W)⁻¹. For L = Σ c ⊙ z*,
    /// dL/dθ = w with w = c(I − W)⁻ᵀ (the solution of w = wWᵀ + c) and dL/dW = z*ᵀ w. The layer
    /// records f(z*) = z*·W + θ; its adjoint solves w = vjp(w) + v by plain iteration.
    @Test func fixedPointGradientMatchesTheClosedForm() {
        let b = 2, d = 5
        var rng = RandomGenerator(seed: 3)
        let w0 = Tensor.randn([d, d], using: &rng)
        let frob = (0..<w0.count).reduce(0.0) { $0 + Double(w0.data[$1] * w0.data[$1]) }.squareRoot()
        let weight = Tensor(shape: [d, d], values: (0..<w0.count).map { Float(0.6 / frob) * w0.data[$0] }, requiresGrad: true)
        let theta = Tensor(shape: [b, d], values: Tensor.randn([b, d], using: &rng).toArray(), requiresGrad: true)
        let c = Tensor.randn([b, d], using: &rng)
        func iterate(_ g: (Tensor) -> Tensor, from start: Tensor) -> Tensor {
            var x = start
            for _ in 0..<200 { x = g(x) }
            return x
        }
        let zStar = Tape.noGrad { iterate({ $0.matmul(weight) + theta }, from: Tensor.zeros([b, d])) }
        var adjointCalls = 0, products = 0
        let y = Tape.implicitLayer(zStar, { $0.matmul(weight) + theta }, adjoint: { vjp, v in
            adjointCalls += 1
            return Tape.noGrad { iterate({ products += 1; return vjp($0) + v }, from: v) }
        })
        #expect(relativeError(y, zStar) < 1e-6)
        Tape.backward((y * c).sum())
        #expect(adjointCalls == 1 && products == 200)

        // The closed form, in Double: (I − W)ᵀ wᵀ = cᵀ per row.
        let wd = (0..<d).map { i in (0..<d).map { j in Double(weight.data[i * d + j]) } }
        var expectedTheta = [Float](), expectedW = [Double](repeating: 0, count: d * d)
        for s in 0..<b {
            // Row s of w solves w(I − W) ... transposed: Σ_i w_i (δ_ij − W_ji) = c_j.
            let m = (0..<d).map { j in (0..<d).map { i in (i == j ? 1 : 0) - wd[j][i] } }
            let row = solve(m, (0..<d).map { Double(c.data[s * d + $0]) })
            expectedTheta += row.map(Float.init)
            for i in 0..<d { for j in 0..<d { expectedW[i * d + j] += Double(zStar.data[s * d + i]) * row[j] } }
        }
        #expect(relativeError(theta.grad!, Tensor(shape: [b, d], values: expectedTheta)) < 1e-5)
        #expect(relativeError(weight.grad!, Tensor(shape: [d, d], values: expectedW.map(Float.init))) < 1e-5)
    }

    /// With recording off the layer is its body and records nothing.
    @Test func withoutRecordingItIsTheBody() {
        let theta = Tensor(shape: [1, 3], values: [1, 2, 3], requiresGrad: true)
        let z = Tensor(shape: [1, 3], values: [0.5, 0.5, 0.5])
        let y = Tape.noGrad { Tape.implicitLayer(z, { $0 * 2 + theta }, adjoint: { _, v in v }) }
        #expect(y.toArray() == [2, 3, 4] && !y.requiresGrad)
    }

    /// Gaussian elimination for the closed form (small, well conditioned).
    func solve(_ a: [[Double]], _ rhs: [Double]) -> [Double] {
        var a = a, r = rhs
        let n = r.count
        for c in 0..<n {
            let p = (c..<n).max { abs(a[$0][c]) < abs(a[$1][c]) }!
            a.swapAt(c, p); r.swapAt(c, p)
            for k in (c + 1)..<n {
                let f = a[k][c] / a[c][c]
                for j in c..<n { a[k][j] -= f * a[c][j] }
                r[k] -= f * r[c]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for k in stride(from: n - 1, through: 0, by: -1) {
            x[k] = (r[k] - ((k + 1)..<n).reduce(0.0) { $0 + a[k][$1] * x[$1] }) / a[k][k]
        }
        return x
    }
}
