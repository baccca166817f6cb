import Foundation
import Tensor

/// Photometric distances between an image and its reconstruction (ARFlow / UnFlow forms).
/// Images are (B, 3, H, W) RGB in [0, 1].
public enum Photometric {
    /// Soft census (ternary) distance with a 3×3 window: grey = (0.2989R + 0.5870G + 0.1140B)·255;
    /// t_k = grey(neighbour k) − grey(centre) with zero padding, t' = t/√(0.81 + t²);
    /// d = (t'_a − t'_b)², soft Hamming d/(0.1 + d) averaged over the 9 offsets; the 1-pixel
    /// border is set to 0.   a, b: (B, 3, H, W) → (B, 1, H, W)
    public static func census(_ a: Tensor, _ b: Tensor, radius: Int = 1) -> Tensor {
        require(a.shape == b.shape && a.rank == 4 && a.shape[1] == 3, "census", "images \(describe(a.shape)) and \(describe(b.shape)) must both be (B, 3, H, W)")
        let k = 2 * radius + 1
        let gray = Tensor(shape: [1, 3, 1, 1], values: [0.2989 * 255, 0.5870 * 255, 0.1140 * 255])
        // One output channel per window offset, each picking that neighbour.
        let pick = Tensor.zeros([k * k, 1, k, k])
        for i in 0..<(k * k) { pick.data[i * k * k + i] = 1 }
        let g = ConvGeometry(kernel: k, padding: radius)
        func transform(_ img: Tensor) -> Tensor {
            let intensity = img.conv2d(gray, nil, ConvGeometry(kernel: 1))
            let t = intensity.conv2d(pick, nil, g) - intensity
            return t / (t.square() + 0.81).sqrt()
        }
        let d = (transform(a) - transform(b)).square()
        let hamming = (d / (d + 0.1)).mean(dims: [1], keepDims: true)
        return hamming * borderMask(a.shape[0], a.shape[2], a.shape[3], border: radius)
    }

    /// SSIM distance clamp((1 − SSIM)/2, 0, 1) per channel with 3×3 box statistics, stride 1, no
    /// padding; C1 = 0.01², C2 = 0.03².   x, y: (B, C, H, W) → (B, C, H−2, W−2)
    public static func ssim(_ x: Tensor, _ y: Tensor) -> Tensor {
        require(x.shape == y.shape && x.rank == 4, "ssim", "images \(describe(x.shape)) and \(describe(y.shape)) must match and be 4-D")
        let c1: Float = 0.0001, c2: Float = 0.0009
        func box(_ t: Tensor) -> Tensor { t.avgPool2d(kernel: 3, stride: 1) }
        let mx = box(x), my = box(y)
        let mxy = mx * my, mx2 = mx.square(), my2 = my.square()
        let sx = box(x * x) - mx2, sy = box(y * y) - my2, sxy = box(x * y) - mxy
        let num = (2 * mxy + c1) * (2 * sxy + c2)
        let den = (mx2 + my2 + c1) * (sx + sy + c2)
        return ((1 - num / den) * 0.5).clamp(min: 0, max: 1)
    }

    /// 1 inside, 0 on a `border`-pixel frame.   → (n, 1, h, w)
    public static func borderMask(_ n: Int, _ h: Int, _ w: Int, border: Int) -> Tensor {
        let m = Tensor.zeros([n, 1, h, w])
        if h > 2 * border && w > 2 * border {
            for b in 0..<n { for y in border..<(h - border) { for x in border..<(w - border) { m.data[(b * h + y) * w + x] = 1 } } }
        }
        return m
    }

    /// Weights of the photometric terms.
    public struct Weights: Codable, Sendable, Equatable {
        public var l1: Float, ssim: Float, census: Float
        public init(l1: Float = 0, ssim: Float = 0, census: Float = 1) { self.l1 = l1; self.ssim = ssim; self.census = census }
    }

    /// ARFlow's masked photometric loss at one scale:
    /// (w_l1·mean(|I1 − R|·m) + w_ssim·mean(SSIM(R·m, I1·m)) + w_census·mean(census(R·m, I1·m))) / mean(m).
    /// im1, recon: (B, 3, H, W); mask: (B, 1, H, W) non-occlusion (not differentiated) → scalar [1].
    /// `share`: this process's part of a data-parallel batch.
    public static func loss(_ im1: Tensor, _ recon: Tensor, mask: Tensor, weights: Weights, share: BatchShare = .whole) -> Tensor {
        let m = mask.detached()
        var total: Tensor? = nil
        func add(_ t: Tensor) { total = total.map { $0 + t } ?? t }
        if weights.l1 != 0 { add(share.mean((im1 - recon).abs() * m) * weights.l1) }
        if weights.ssim != 0 || weights.census != 0 {
            let rm = recon * m, im = im1 * m
            if weights.ssim != 0 { add(share.mean(ssim(rm, im)) * weights.ssim) }
            if weights.census != 0 { add(share.mean(census(rm, im)) * weights.census) }
        }
        let denom = Swift.max(share.meanValue(m), 1e-7)
        return (total ?? Tensor.zeros([1])) * Float(1 / denom)
    }
}
