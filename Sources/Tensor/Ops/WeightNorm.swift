import Foundation

extension Tensor {
    /// PyTorch's weight normalization (`torch.nn.utils.weight_norm`, dim 0): w = g · v / ‖v‖,
    /// the norm over every dimension but the first.  g: (out, 1, …); v: (out, …) → (out, …)
    public static func weightNorm(g: Tensor, v: Tensor) -> Tensor {
        let out = v.shape[0]
        require(g.count == out && out > 0, "weightNorm", "g \(describe(g.shape)) needs one value per row of v \(describe(v.shape))")
        let n = v.count / out
        let w = Tensor(uninitialized: v.shape)
        // Per row: its norm and the scale g/‖v‖ (kept for the backward pass).
        var norms = [Float](repeating: 0, count: out), scales = [Float](repeating: 0, count: out)
        let vp = v.data, gp = g.data, wp = w.data
        for o in 0..<out {
            var s = 0.0
            for i in 0..<n { s += Double(vp[o * n + i]) * Double(vp[o * n + i]) }
            norms[o] = Float(s.squareRoot())
            scales[o] = gp[o] / norms[o]
            for i in 0..<n { wp[o * n + i] = vp[o * n + i] * scales[o] }
        }
        Tape.record(w, inputs: [g, v]) { dw in
            // dL/dg = Σ dw·v / ‖v‖;  dL/dv = (g/‖v‖)·(dw − (Σ dw·v)·v / ‖v‖²)
            let dg = g.gradIfNeeded, dv = v.gradIfNeeded
            for o in 0..<out {
                var dot = 0.0
                for i in 0..<n { dot += Double(dw[o * n + i]) * Double(vp[o * n + i]) }
                let norm = Double(norms[o])
                if let dg { dg[o] += Float(dot / norm) }
                if let dv {
                    let s = Double(scales[o]), c = dot / (norm * norm)
                    for i in 0..<n { dv[o * n + i] += Float(s * (Double(dw[o * n + i]) - c * Double(vp[o * n + i]))) }
                }
            }
        }
        return w
    }
}
