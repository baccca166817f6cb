import Foundation
import Tensor

/// Finite-difference gradient checks with a random cotangent r and L = Σ r ⊙ f(x) accumulated in
/// Double, so errors of opposite sign cannot cancel.
public enum GradCheck {
    public struct Result: CustomStringConvertible {
        /// Worst |numeric − analytic| / (max|analytic| over that input), over all inputs.
        public var worst: Double = 0
        public var label = ""
        public var description: String { "worst normalized gradient error \(worst) (\(label))" }
    }

    /// Checks the gradients of `f` at `inputs` (each becomes a leaf requiring gradients).
    /// Tensors with at most `elementwiseLimit` elements are checked element by element; larger
    /// ones along `directions` random directions. `eps` is the step (scaled by max(1, |x|) for
    /// element checks).
    public static func check(_ inputs: [Tensor], seed: UInt64 = 7, eps: Float = 1e-2,
                             elementwiseLimit: Int = 400, directions: Int = 4,
                             _ f: ([Tensor]) -> Tensor) -> Result {
        var rng = RandomGenerator(seed: seed)
        for x in inputs { x.requiresGrad = true; x.freeGrad() }
        let y0 = f(inputs)
        let r = Tensor.randn(y0.shape, using: &rng)
        Tape.backward(y0, seed: r)
        let analytic = inputs.map { x in x.grad?.clone() ?? Tensor.zeros(x.shape) }
        for x in inputs { x.freeGrad() }

        func loss() -> Double {
            Tape.noGrad {
                let y = f(inputs)
                var s = 0.0
                for i in 0..<y.count { s += Double(r.data[i]) * Double(y.data[i]) }
                return s
            }
        }

        var result = Result()
        for (k, x) in inputs.enumerated() {
            let a = analytic[k]
            var scale = 0.0
            for i in 0..<a.count { scale = max(scale, Double(abs(a.data[i]))) }
            scale = max(scale, 1e-3)
            if x.count <= elementwiseLimit {
                for i in 0..<x.count {
                    let orig = x.data[i]
                    let h = eps * max(1, abs(orig))
                    x.data[i] = orig + h; let lp = loss()
                    x.data[i] = orig - h; let lm = loss()
                    x.data[i] = orig
                    let num = (lp - lm) / (2 * Double(h))
                    let err = abs(num - Double(a.data[i])) / scale
                    if err > result.worst { result.worst = err; result.label = "input \(k) element \(i): numeric \(num) analytic \(a.data[i])" }
                }
            } else {
                for d in 0..<directions {
                    let v = Tensor.randn(x.shape, using: &rng)
                    var vnorm = 0.0
                    for i in 0..<v.count { vnorm += Double(v.data[i] * v.data[i]) }
                    vnorm = vnorm.squareRoot()
                    let orig = x.clone()
                    let h = eps
                    for i in 0..<x.count { x.data[i] = orig.data[i] + h * v.data[i] / Float(vnorm) }
                    let lp = loss()
                    for i in 0..<x.count { x.data[i] = orig.data[i] - h * v.data[i] / Float(vnorm) }
                    let lm = loss()
                    x.copy(from: orig)
                    let num = (lp - lm) / (2 * Double(h))
                    var ana = 0.0, anorm = 0.0
                    for i in 0..<x.count { ana += Double(a.data[i] * v.data[i]) / vnorm; anorm += Double(a.data[i] * a.data[i]) }
                    let err = abs(num - ana) / max(anorm.squareRoot(), 1e-3)
                    if err > result.worst { result.worst = err; result.label = "input \(k) direction \(d): numeric \(num) analytic \(ana)" }
                }
            }
        }
        for x in inputs { x.requiresGrad = false; x.freeGrad() }
        return result
    }
}
