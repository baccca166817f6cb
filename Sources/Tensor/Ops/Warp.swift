import Foundation

// Backward warping of an image by a pixel flow: y[n, c, y, x] = image[n, c] sampled bilinearly at
// (x + u, y + v), (u, v) = flow[n, :, y, x]. This is PyTorch `grid_sample(align_corners: true)`
// with the grid normalized by (W − 1) and (H − 1), written directly in pixel coordinates.

/// What a sample outside the image reads.
public enum WarpPadding: Sendable {
    /// Each out-of-range bilinear corner contributes 0 (border pixels are partly darkened).
    case zeros
    /// Coordinates are clamped to [0, W−1] × [0, H−1]; the gradient w.r.t. a clamped coordinate
    /// is 0 (PyTorch's rule, which also counts a coordinate exactly on the border as clamped).
    case border
}

/// The four corners of one bilinear sample in an h×w plane. Out-of-range corners get mask 0 and
/// a safe in-plane offset, so kernels read them without branches.
struct BilinearCorners {
    var o00 = 0, o01 = 0, o10 = 0, o11 = 0          // offsets of (y0,x0) (y0,x1) (y1,x0) (y1,x1)
    var m00: Float = 0, m01: Float = 0, m10: Float = 0, m11: Float = 0
    var fx: Float = 0, fy: Float = 0                // fractional parts
    var sx: Float = 1, sy: Float = 1                // d(sample coordinate)/d(requested coordinate)

    @inline(__always)
    init(x px: Float, y py: Float, h: Int, w: Int, border: Bool) {
        var ix = px, iy = py
        if border {
            let maxX = Float(w - 1), maxY = Float(h - 1)
            if !(ix > 0) { ix = 0; sx = 0 } else if ix >= maxX { ix = maxX; sx = 0 }
            if !(iy > 0) { iy = 0; sy = 0 } else if iy >= maxY { iy = maxY; sy = 0 }
        } else {
            // Far outside, every corner is out of range whatever the exact value; clamping keeps
            // the integer conversion safe (and maps NaN outside).
            if !(ix >= -2) { ix = -2 } else if ix > Float(w + 1) { ix = Float(w + 1) }
            if !(iy >= -2) { iy = -2 } else if iy > Float(h + 1) { iy = Float(h + 1) }
        }
        let fx0 = ix.rounded(.down), fy0 = iy.rounded(.down)
        fx = ix - fx0; fy = iy - fy0
        let x0 = Int(fx0), y0 = Int(fy0), x1 = x0 + 1, y1 = y0 + 1
        let vx0 = x0 >= 0 && x0 < w, vx1 = x1 >= 0 && x1 < w
        let vy0 = y0 >= 0 && y0 < h, vy1 = y1 >= 0 && y1 < h
        let cx0 = vx0 ? x0 : 0, cx1 = vx1 ? x1 : 0, cy0 = vy0 ? y0 : 0, cy1 = vy1 ? y1 : 0
        o00 = cy0 * w + cx0; o01 = cy0 * w + cx1; o10 = cy1 * w + cx0; o11 = cy1 * w + cx1
        m00 = vy0 && vx0 ? 1 : 0; m01 = vy0 && vx1 ? 1 : 0
        m10 = vy1 && vx0 ? 1 : 0; m11 = vy1 && vx1 ? 1 : 0
    }

    /// The bilinear sample of plane `p`.
    @inline(__always)
    func sample(_ p: UnsafePointer<Float>) -> Float {
        let v00 = m00 * p[o00], v01 = m01 * p[o01], v10 = m10 * p[o10], v11 = m11 * p[o11]
        return (1 - fy) * ((1 - fx) * v00 + fx * v01) + fy * ((1 - fx) * v10 + fx * v11)
    }

    /// dplane += g · ∂sample/∂plane. Accumulates.
    @inline(__always)
    func scatter(_ dp: UnsafeMutablePointer<Float>, _ g: Float) {
        let a = g * (1 - fy), b = g * fy
        dp[o00] += m00 * a * (1 - fx); dp[o01] += m01 * a * fx
        dp[o10] += m10 * b * (1 - fx); dp[o11] += m11 * b * fx
    }

    /// (∂sample/∂x, ∂sample/∂y) of plane `p` w.r.t. the requested coordinates.
    @inline(__always)
    func coordinateGradient(_ p: UnsafePointer<Float>) -> (Float, Float) {
        let v00 = m00 * p[o00], v01 = m01 * p[o01], v10 = m10 * p[o10], v11 = m11 * p[o11]
        let gx = (1 - fy) * (v01 - v00) + fy * (v11 - v10)
        let gy = (1 - fx) * (v10 - v00) + fx * (v11 - v01)
        return (gx * sx, gy * sy)
    }
}

/// y = image sampled at pixel + flow.
/// image: (n, c, h, w)   flow: (n, 2, h, w), channel 0 = x, 1 = y   y: (n, c, h, w)
func warpForward(_ y: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                 n: Int, c: Int, h: Int, w: Int, padding: WarpPadding) {
    let hw = h * w, border = padding == .border
    parallelFor(n * h, minCount: max(2, (1 << 14) / max(1, w * c))) { rows in
        for row in rows {
            let b = row / h, py = row % h
            let fu = flow + b * 2 * hw + py * w, fv = fu + hw
            let img = image + b * c * hw, out = y + b * c * hw + py * w
            for px in 0..<w {
                let t = BilinearCorners(x: Float(px) + fu[px], y: Float(py) + fv[px], h: h, w: w, border: border)
                for ch in 0..<c { out[ch * hw + px] = t.sample(img + ch * hw) }
            }
        }
    }
}

/// dimage += ∂y/∂image · dy and dflow += ∂y/∂flow · dy. Accumulates; nil skips an input.
/// dy: (n, c, h, w)   image, dimage: (n, c, h, w)   flow, dflow: (n, 2, h, w)
func warpBackward(_ dimage: UnsafeMutablePointer<Float>?, _ dflow: UnsafeMutablePointer<Float>?,
                  _ dy: UnsafePointer<Float>, _ image: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                  n: Int, c: Int, h: Int, w: Int, padding: WarpPadding) {
    let hw = h * w, border = padding == .border
    if let dimage {
        // One task per (sample, channel) plane: scatters from different planes never collide.
        parallelFor(n * c, minCount: max(2, (1 << 14) / max(1, hw))) { planes in
            for plane in planes {
                let b = plane / c
                let fu = flow + b * 2 * hw, fv = fu + hw
                let g = dy + plane * hw, dp = dimage + plane * hw
                for py in 0..<h {
                    for px in 0..<w {
                        let i = py * w + px
                        let t = BilinearCorners(x: Float(px) + fu[i], y: Float(py) + fv[i], h: h, w: w, border: border)
                        t.scatter(dp, g[i])
                    }
                }
            }
        }
    }
    if let dflow {
        parallelFor(n * h, minCount: max(2, (1 << 14) / max(1, w * c))) { rows in
            for row in rows {
                let b = row / h, py = row % h
                let fu = flow + b * 2 * hw + py * w, fv = fu + hw
                let du = dflow + b * 2 * hw + py * w, dv = du + hw
                let img = image + b * c * hw, g = dy + b * c * hw + py * w
                for px in 0..<w {
                    let t = BilinearCorners(x: Float(px) + fu[px], y: Float(py) + fv[px], h: h, w: w, border: border)
                    var su: Float = 0, sv: Float = 0
                    for ch in 0..<c {
                        let (gx, gy) = t.coordinateGradient(img + ch * hw)
                        let gc = g[ch * hw + px]
                        su += gc * gx; sv += gc * gy
                    }
                    du[px] += su; dv[px] += sv
                }
            }
        }
    }
}

/// Backward warp: samples `image` at each pixel displaced by `flow` (pixels, x first), bilinear,
/// `grid_sample(align_corners: true)` semantics. Differentiable w.r.t. image and flow.
/// image: (N, C, H, W)   flow: (N, 2, H, W)   → (N, C, H, W)
public func warp(_ image: Tensor, by flow: Tensor, padding: WarpPadding = .zeros) -> Tensor {
    require(image.rank == 4, "warp", "image \(describe(image.shape)) must be (N, C, H, W)")
    let n = image.shape[0], c = image.shape[1], h = image.shape[2], w = image.shape[3]
    require(flow.shape == [n, 2, h, w], "warp", "flow \(describe(flow.shape)) must be [\(n), 2, \(h), \(w)] for image \(describe(image.shape))")
    let y = Tensor(uninitialized: image.shape)
    warpForward(y.data, image.data, flow.data, n: n, c: c, h: h, w: w, padding: padding)
    Tape.record(y, inputs: [image, flow]) { dy in
        warpBackward(image.gradIfNeeded, flow.gradIfNeeded, dy, image.data, flow.data,
                     n: n, c: c, h: h, w: w, padding: padding)
    }
    return y
}
