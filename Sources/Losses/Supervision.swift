// Losses against a target flow (ground truth or a pseudo-label): the robust masked loss, the
// end-point error, RAFT's γ-weighted sequence loss, and the mask resampling they need.
import Foundation
import Tensor

public enum Supervision {
    /// Robust masked loss (ARFlow): mean((|pred − target| + ε)^q · m) / (mean(m) + 1e-7); with
    /// ε = 0 and q = 1 the masked L1 of RAFT.  pred, target: (B, 2, H, W); mask: (B, 1, H, W) → [1]
    public static func robust(_ pred: Tensor, _ target: Tensor, mask: Tensor, eps: Float, q: Float, share: BatchShare = .whole) -> Tensor {
        let m = mask.detached()
        let mean = share.meanValue(m)
        let d = (pred - target.detached()).abs()
        let r = q == 1 && eps == 0 ? d : (d + eps).pow(q)
        return share.mean(r * m) * Float(1 / (mean + 1e-7))
    }

    /// RAFT's sequence loss: Σᵢ γ^(N−1−i) · robust(predᵢ, target), later iterations weighing more.
    /// preds: N × (B, 2, H, W); mask: (B, 1, H, W) → [1]
    public static func sequence(_ preds: [Tensor], _ target: Tensor, mask: Tensor, gamma: Float, eps: Float, q: Float,
                                share: BatchShare = .whole) -> Tensor {
        precondition(!preds.isEmpty, "Supervision.sequence: no predictions")
        var loss: Tensor? = nil
        for (i, p) in preds.enumerated() {
            let w = Float(Foundation.pow(Double(gamma), Double(preds.count - 1 - i)))
            let l = robust(p, target, mask: mask, eps: eps, q: q, share: share) * w
            loss = loss.map { $0 + l } ?? l
        }
        return loss!
    }

    /// Mean end-point error over the masked pixels: Σ ‖pred − target‖₂ · m / Σ m.
    /// pred, target: (B, 2, H, W); mask: (B, 1, H, W) → [1]
    public static func endPointError(_ pred: Tensor, _ target: Tensor, mask: Tensor, share: BatchShare = .whole) -> Tensor {
        let m = mask.detached()
        let d = pred - target.detached()
        // The small constant keeps the gradient finite where the error is exactly zero.
        let e = ((d * d).sum(dims: [1], keepDims: true) + 1e-6).pow(0.5)
        return share.mean(e * m) * Float(1 / (share.meanValue(m) + 1e-7))
    }

    /// Nearest downsampling of a mask (F.interpolate(mode='nearest')).  (B, C, H, W) → (B, C, h, w)
    public static func nearest(_ m: Tensor, height h: Int, width w: Int) -> Tensor {
        let b = m.shape[0], c = m.shape[1], H = m.shape[2], W = m.shape[3]
        if H == h && W == w { return m }
        let out = Tensor(uninitialized: [b, c, h, w])
        for p in 0..<(b * c) {
            for y in 0..<h {
                let sy = min(H - 1, y * H / h)
                for x in 0..<w { out.data[(p * h + y) * w + x] = m.data[(p * H + sy) * W + min(W - 1, x * W / w)] }
            }
        }
        return out
    }

    /// A validity mask on a coarser grid: 1 where every fine pixel under the cell is valid.
    /// (B, 1, H, W) → (B, 1, h, w)
    public static func downsampleValid(_ m: Tensor, height h: Int, width w: Int) -> Tensor {
        let r = m.resizeArea(height: h, width: w)
        for i in 0..<r.count { r.data[i] = r.data[i] > 0.999 ? 1 : 0 }
        return r
    }
}
