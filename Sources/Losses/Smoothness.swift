import Foundation
import Tensor

/// Edge-aware flow smoothness (ARFlow): weights w_x = exp(−α·mean_c|∂x I|), w_y likewise, with
/// forward differences. The caller normalizes the flow (ARFlow divides by min(h, w)).
public enum Smoothness {
    /// Forward differences along x and y.   t: (B, C, H, W) → (B, C, H, W−1), (B, C, H−1, W)
    static func gradients(_ t: Tensor) -> (dx: Tensor, dy: Tensor) {
        let h = t.shape[2], w = t.shape[3]
        let dx = t.slice(dim: 3, start: 1, length: w - 1) - t.slice(dim: 3, start: 0, length: w - 1)
        let dy = t.slice(dim: 2, start: 1, length: h - 1) - t.slice(dim: 2, start: 0, length: h - 1)
        return (dx, dy)
    }

    static func edgeWeights(_ image: Tensor, alpha: Float) -> (Tensor, Tensor) {
        let (ix, iy) = gradients(image)
        return ((ix.abs().mean(dims: [1], keepDims: true) * -alpha).exp(),
                (iy.abs().mean(dims: [1], keepDims: true) * -alpha).exp())
    }

    /// First order: mean(w_x·|∂x F|)/2 + mean(w_y·|∂y F|)/2 (the reference fixture's form; ARFlow's
    /// code has one more factor ½, which recipes fold into the smoothness weight).
    /// flow: (B, 2, H, W); image: (B, 3, H, W) → scalar [1]; `share`: this process's part of the batch
    public static func firstOrder(_ flow: Tensor, _ image: Tensor, alpha: Float = 10, share: BatchShare = .whole) -> Tensor {
        check(flow, image)
        let (wx, wy) = edgeWeights(image, alpha: alpha)
        let (dx, dy) = gradients(flow)
        return share.mean(wx * dx.abs()) * 0.5 + share.mean(wy * dy.abs()) * 0.5
    }

    /// Second order: mean(w_x·|∂xx F|)/2 + mean(w_y·|∂yy F|)/2, weights shifted by one pixel to
    /// sit on the second differences.   → scalar [1]
    public static func secondOrder(_ flow: Tensor, _ image: Tensor, alpha: Float = 10, share: BatchShare = .whole) -> Tensor {
        check(flow, image)
        let (wx, wy) = edgeWeights(image, alpha: alpha)
        let (dx, dy) = gradients(flow)
        let dxx = gradients(dx).dx, dyy = gradients(dy).dy
        let w = flow.shape[3], h = flow.shape[2]
        let wxs = wx.slice(dim: 3, start: 1, length: w - 2), wys = wy.slice(dim: 2, start: 1, length: h - 2)
        return share.mean(wxs * dxx.abs()) * 0.5 + share.mean(wys * dyy.abs()) * 0.5
    }

    static func check(_ flow: Tensor, _ image: Tensor) {
        require(flow.rank == 4 && flow.shape[1] == 2 && image.rank == 4 && flow.shape[0] == image.shape[0]
                && flow.shape[2] == image.shape[2] && flow.shape[3] == image.shape[3] && flow.shape[2] >= 3 && flow.shape[3] >= 3,
                "smoothness", "flow \(describe(flow.shape)) and image \(describe(image.shape)) must be (B,2,H,W) and (B,C,H,W), H, W ≥ 3")
    }
}
