import Foundation

/// Softmax along a middle axis.  x, y: (outer, n, inner); softmax over n.
public func softmaxForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int) {
    parallelFor(outer, minCount: 4) { r in
        for o in r {
            let xb = x + o * n * inner, yb = y + o * n * inner
            for i in 0..<inner {
                var m = -Float.infinity
                for k in 0..<n { m = max(m, xb[k * inner + i]) }
                var s: Float = 0
                for k in 0..<n { let e = expf(xb[k * inner + i] - m); yb[k * inner + i] = e; s += e }
                let inv = 1 / s
                for k in 0..<n { yb[k * inner + i] *= inv }
            }
        }
    }
}

/// dx += y ⊙ (dy − Σ_k dy·y). Accumulates.
public func softmaxBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                            outer: Int, n: Int, inner: Int) {
    parallelFor(outer, minCount: 4) { r in
        for o in r {
            let base = o * n * inner
            for i in 0..<inner {
                var dot: Float = 0
                for k in 0..<n { dot += dy[base + k * inner + i] * y[base + k * inner + i] }
                for k in 0..<n {
                    let j = base + k * inner + i
                    dx[j] += y[j] * (dy[j] - dot)
                }
            }
        }
    }
}

extension Tensor {
    /// Softmax over dimension `dim`.
    public func softmax(dim: Int) -> Tensor {
        let d = dim < 0 ? dim + rank : dim
        require(d >= 0 && d < rank, "softmax", "dim \(dim) for shape \(describe(shape))")
        let outer = shape[..<d].reduce(1, *), n = shape[d], inner = shape[(d + 1)...].reduce(1, *)
        let x = self
        let y = Tensor(uninitialized: shape)
        softmaxForward(y.data, x.data, outer: outer, n: n, inner: inner)
        Tape.record(y, inputs: [x]) { dy in
            softmaxBackward(x.gradPointer(), dy, y.data, outer: outer, n: n, inner: inner)
        }
        return y
    }
}
