import Foundation
import Tensor

/// Occlusion (visibility) masks: 1 = visible, 0 = occluded. Hard masks, never differentiated.
public enum Occlusion {
    /// Forward–backward consistency (UnFlow): visible iff |F_f + F_b^w|² < α1(|F_f|² + |F_b^w|²) + α2,
    /// F_b^w = F_b warped by F_f (bilinear, zero padding).
    /// forward, backward: (B, 2, H, W) → (B, 1, H, W)
    public static func forwardBackward(_ forward: Tensor, _ backward: Tensor, alpha1: Float = 0.01, alpha2: Float = 0.5) -> Tensor {
        require(forward.shape == backward.shape && forward.rank == 4 && forward.shape[1] == 2, "forwardBackward",
                "flows \(describe(forward.shape)) and \(describe(backward.shape)) must both be (B, 2, H, W)")
        let bw = Tape.noGrad { warp(backward.detached(), by: forward.detached(), padding: .zeros) }
        let b = forward.shape[0], hw = forward.shape[2] * forward.shape[3]
        let m = Tensor(uninitialized: [b, 1, forward.shape[2], forward.shape[3]])
        let f = forward.data, w = bw.data, out = m.data
        for n in 0..<b {
            let fu = f + n * 2 * hw, fv = fu + hw, wu = w + n * 2 * hw, wv = wu + hw, o = out + n * hw
            for i in 0..<hw {
                let su = fu[i] + wu[i], sv = fv[i] + wv[i]
                let lhs = su * su + sv * sv
                let rhs = alpha1 * (fu[i] * fu[i] + fv[i] * fv[i] + wu[i] * wu[i] + wv[i] * wv[i]) + alpha2
                o[i] = lhs < rhs ? 1 : 0
            }
        }
        return m
    }

    /// Range map from the backward flow (ARFlow's warm-up occlusion): every pixel of frame 2 is
    /// splatted along F_b into frame 1's grid with bilinear weights; pixels of frame 1 whose
    /// accumulated weight (clamped to [0, 1]) is below `threshold` are occluded.
    /// backward: (B, 2, H, W) → (B, 1, H, W)
    public static func rangeMap(_ backward: Tensor, threshold: Float = 0.2) -> Tensor {
        require(backward.rank == 4 && backward.shape[1] == 2, "rangeMap", "flow \(describe(backward.shape)) must be (B, 2, H, W)")
        let b = backward.shape[0], h = backward.shape[2], w = backward.shape[3], hw = h * w
        let m = Tensor.zeros([b, 1, h, w])
        let f = backward.data, acc = m.data
        for n in 0..<b {
            let u = f + n * 2 * hw, v = u + hw, a = acc + n * hw
            for y in 0..<h {
                for x in 0..<w {
                    let px = Float(x) + u[y * w + x], py = Float(y) + v[y * w + x]
                    // Far-off (or non-finite) targets land nowhere; this also keeps Int(…) from trapping.
                    guard abs(px) < 1e7, abs(py) < 1e7 else { continue }
                    let x0 = Int(px.rounded(.down)), y0 = Int(py.rounded(.down))
                    let fx = px - Float(x0), fy = py - Float(y0)
                    @inline(__always) func splat(_ xx: Int, _ yy: Int, _ weight: Float) {
                        if xx >= 0 && xx < w && yy >= 0 && yy < h { a[yy * w + xx] += weight }
                    }
                    splat(x0, y0, (1 - fx) * (1 - fy)); splat(x0 + 1, y0, fx * (1 - fy))
                    splat(x0, y0 + 1, (1 - fx) * fy);   splat(x0 + 1, y0 + 1, fx * fy)
                }
            }
            for i in 0..<hw { a[i] = min(max(a[i], 0), 1) >= threshold ? 1 : 0 }
        }
        return m
    }
}
