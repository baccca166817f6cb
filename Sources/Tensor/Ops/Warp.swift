import Foundation
import CKernels

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

/// One row's bilinear corners (CKernels `mdf_warp_corners`): offsets and weights of the four
/// corners of every sample, and with `gradients` the coordinate-gradient coefficients, in a
/// scratch buffer reused row after row.
struct WarpRow {
    let w: Int
    let storage: Storage
    var offsets: UnsafeMutablePointer<Int32> { UnsafeMutableRawPointer(storage.pointer).assumingMemoryBound(to: Int32.self) }
    var weights: UnsafeMutablePointer<Float> { storage.pointer + 4 * w }
    var gx: UnsafeMutablePointer<Float> { storage.pointer + 8 * w }
    var gy: UnsafeMutablePointer<Float> { storage.pointer + 12 * w }
    /// 2w floats for the flow gradient's sums.
    var sums: UnsafeMutablePointer<Float> { storage.pointer + 16 * w }

    init(w: Int) { self.w = w; storage = Storage(count: 18 * w) }

    /// Corners of row py's samples (x + u[x], py + v[x]) in an h × w plane.
    func find(u: UnsafePointer<Float>, v: UnsafePointer<Float>, py: Int, h: Int, border: Bool, gradients: Bool,
              path: KernelPath) {
        mdf_warp_corners(offsets, weights, gradients ? gx : nil, gradients ? gy : nil, u, v, py, h, w, border ? 1 : 0,
                         path.rawValue)
    }
}

/// y = image sampled at pixel + flow.
/// image: (n, c, h, w)   flow: (n, 2, h, w), channel 0 = x, 1 = y   y: (n, c, h, w)
func warpForward(_ y: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                 n: Int, c: Int, h: Int, w: Int, padding: WarpPadding, path: KernelPath = .best) {
    let hw = h * w, border = padding == .border, out = SendablePointer(y)
    parallelFor(n * h, minCount: max(2, (1 << 14) / max(1, w * c))) { rows in
        let corners = WarpRow(w: w)
        defer { withExtendedLifetime(corners) {} }
        for row in rows {
            let b = row / h, py = row % h
            let fu = flow + b * 2 * hw + py * w
            corners.find(u: fu, v: fu + hw, py: py, h: h, border: border, gradients: false, path: path)
            mdf_warp_sample(out.base + b * c * hw + py * w, hw, image + b * c * hw, hw, c, corners.offsets, corners.weights,
                            w, path.rawValue)
        }
    }
}

/// dimage += ∂y/∂image · dy and dflow += ∂y/∂flow · dy. Accumulates; nil skips an input.
/// dy: (n, c, h, w)   image, dimage: (n, c, h, w)   flow, dflow: (n, 2, h, w)
func warpBackward(_ dimage: UnsafeMutablePointer<Float>?, _ dflow: UnsafeMutablePointer<Float>?,
                  _ dy: UnsafePointer<Float>, _ image: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                  n: Int, c: Int, h: Int, w: Int, padding: WarpPadding, path: KernelPath = .best) {
    let hw = h * w, border = padding == .border
    if let dimage {
        // A task owns a block of one sample's channel planes, so scatters never collide; each row's
        // corners serve the block's channels. Samples are cut into blocks until there are about
        // eight tasks (never more blocks than channels), for the threads.
        let blocks = min(c, max(1, (8 + n - 1) / n)), per = (c + blocks - 1) / blocks
        let dimg = SendablePointer(dimage)
        parallelFor(n * blocks, minCount: max(2, (1 << 14) / max(1, hw * per))) { tasks in
            let corners = WarpRow(w: w)
            defer { withExtendedLifetime(corners) {} }
            for t in tasks {
                let b = t / blocks, c0 = (t % blocks) * per, cc = min(c, c0 + per) - c0
                if cc <= 0 { continue }
                let plane = b * c + c0
                for py in 0..<h {
                    let fu = flow + b * 2 * hw + py * w
                    corners.find(u: fu, v: fu + hw, py: py, h: h, border: border, gradients: false, path: path)
                    mdf_warp_scatter(dimg.base + plane * hw, hw, dy + plane * hw + py * w, hw, cc, corners.offsets,
                                     corners.weights, w, path.rawValue)
                }
            }
        }
    }
    if let dflow {
        let df = SendablePointer(dflow)
        parallelFor(n * h, minCount: max(2, (1 << 14) / max(1, w * c))) { rows in
            let corners = WarpRow(w: w)
            defer { withExtendedLifetime(corners) {} }
            for row in rows {
                let b = row / h, py = row % h
                let fu = flow + b * 2 * hw + py * w, du = df.base + b * 2 * hw + py * w
                corners.find(u: fu, v: fu + hw, py: py, h: h, border: border, gradients: true, path: path)
                mdf_warp_flow_grad(du, du + hw, dy + b * c * hw + py * w, hw, image + b * c * hw, hw, c,
                                   corners.offsets, corners.gx, corners.gy, corners.sums, w, path.rawValue)
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
