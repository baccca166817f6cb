import Foundation

// Average pooling (PyTorch `avg_pool2d`, floor mode, count_include_pad=true) and area resizing
// (PyTorch `adaptive_avg_pool2d` = `F.interpolate(mode: "area")`). Both work plane by plane on
// the last two dimensions, so any leading dimensions (N, C, or RAFT's B·H·W correlation maps)
// are just planes.

// MARK: - Average pooling kernels

/// Output size of a floor-mode pooling window along one axis: (size + 2·padding − kernel) / stride + 1.
@inline(__always)
func poolOutputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    (size + 2 * padding - kernel) / stride + 1
}

/// y = mean of each kernel×kernel window, padded cells counted as zeros (divisor kernel²).
/// x: (planes, h, w)   y: (planes, oh, ow)
func avgPool2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                      planes: Int, h: Int, w: Int, oh: Int, ow: Int,
                      kernel: Int, stride: Int, padding: Int) {
    let scale = 1 / Float(kernel * kernel)
    parallelFor(planes, minCount: max(2, (1 << 16) / max(1, oh * ow * kernel * kernel))) { range in
        for p in range {
            let xp = x + p * h * w, yp = y + p * oh * ow
            if kernel == 2 && stride == 2 && padding == 0 {
                // The pyramid case (RAFT, HEPP): two input rows per output row, no bounds.
                for oy in 0..<oh {
                    let r0 = xp + 2 * oy * w, r1 = r0 + w, yr = yp + oy * ow
                    for ox in 0..<ow { yr[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) * 0.25 }
                }
                continue
            }
            for oy in 0..<oh {
                let yr = yp + oy * ow
                yr.update(repeating: 0, count: ow)
                let y0 = oy * stride - padding
                for ky in max(0, -y0)..<min(kernel, h - y0) {
                    let xr = xp + (y0 + ky) * w
                    for ox in 0..<ow {
                        let x0 = ox * stride - padding
                        var s: Float = 0
                        for kx in max(0, -x0)..<min(kernel, w - x0) { s += xr[x0 + kx] }
                        yr[ox] += s
                    }
                }
                for ox in 0..<ow { yr[ox] *= scale }
            }
        }
    }
}

/// dx += dy / kernel² spread over each window. Accumulates.
/// dy: (planes, oh, ow)   dx: (planes, h, w)
func avgPool2dBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                       planes: Int, h: Int, w: Int, oh: Int, ow: Int,
                       kernel: Int, stride: Int, padding: Int) {
    let scale = 1 / Float(kernel * kernel)
    parallelFor(planes, minCount: max(2, (1 << 16) / max(1, oh * ow * kernel * kernel))) { range in
        for p in range {
            let dxp = dx + p * h * w, dyp = dy + p * oh * ow
            if kernel == 2 && stride == 2 && padding == 0 {
                for oy in 0..<oh {
                    let r0 = dxp + 2 * oy * w, r1 = r0 + w, gr = dyp + oy * ow
                    for ox in 0..<ow {
                        let g = gr[ox] * 0.25
                        r0[2 * ox] += g; r0[2 * ox + 1] += g; r1[2 * ox] += g; r1[2 * ox + 1] += g
                    }
                }
                continue
            }
            for oy in 0..<oh {
                let y0 = oy * stride - padding
                for ky in max(0, -y0)..<min(kernel, h - y0) {
                    let dxr = dxp + (y0 + ky) * w
                    for ox in 0..<ow {
                        let g = dyp[oy * ow + ox] * scale
                        let x0 = ox * stride - padding
                        for kx in max(0, -x0)..<min(kernel, w - x0) { dxr[x0 + kx] += g }
                    }
                }
            }
        }
    }
}

// MARK: - Area (adaptive average) kernels

/// Window [floor(i·in/out), ceil((i+1)·in/out)) of output index i along one axis.
@inline(__always)
func areaWindow(_ i: Int, input: Int, output: Int) -> (start: Int, end: Int) {
    (i * input / output, ((i + 1) * input + output - 1) / output)
}

/// y = mean of each adaptive window. x: (planes, h, w)   y: (planes, oh, ow)
func resizeAreaForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                       planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
    parallelFor(planes, minCount: max(2, (1 << 16) / max(1, h * w))) { range in
        for p in range {
            let xp = x + p * h * w, yp = y + p * oh * ow
            for oy in 0..<oh {
                let (ys, ye) = areaWindow(oy, input: h, output: oh)
                for ox in 0..<ow {
                    let (xs, xe) = areaWindow(ox, input: w, output: ow)
                    var s: Float = 0
                    for iy in ys..<ye { for ix in xs..<xe { s += xp[iy * w + ix] } }
                    yp[oy * ow + ox] = s / Float((ye - ys) * (xe - xs))
                }
            }
        }
    }
}

/// dx += dy / window size over each adaptive window. Accumulates.
/// dy: (planes, oh, ow)   dx: (planes, h, w)
func resizeAreaBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                        planes: Int, h: Int, w: Int, oh: Int, ow: Int) {
    parallelFor(planes, minCount: max(2, (1 << 16) / max(1, h * w))) { range in
        for p in range {
            let dxp = dx + p * h * w, dyp = dy + p * oh * ow
            for oy in 0..<oh {
                let (ys, ye) = areaWindow(oy, input: h, output: oh)
                for ox in 0..<ow {
                    let (xs, xe) = areaWindow(ox, input: w, output: ow)
                    let g = dyp[oy * ow + ox] / Float((ye - ys) * (xe - xs))
                    for iy in ys..<ye { for ix in xs..<xe { dxp[iy * w + ix] += g } }
                }
            }
        }
    }
}

// MARK: - Tensor ops

extension Tensor {
    /// Average pooling over the last two dimensions, PyTorch `avg_pool2d` with floor mode and
    /// count_include_pad=true (every window divides by kernel²). `stride` defaults to `kernel`.
    /// x: (…, H, W) → (…, (H+2p−k)/s+1, (W+2p−k)/s+1)
    public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
        let x = self
        let s = stride ?? kernel
        require(rank >= 2, "avgPool2d", "input \(describe(shape)) needs at least 2 dimensions")
        require(kernel >= 1 && s >= 1 && padding >= 0, "avgPool2d", "kernel \(kernel), stride \(s), padding \(padding) must be positive (padding ≥ 0)")
        require(padding * 2 <= kernel, "avgPool2d", "padding \(padding) exceeds half the kernel \(kernel)")
        let h = shape[rank - 2], w = shape[rank - 1]
        require(h + 2 * padding >= kernel && w + 2 * padding >= kernel, "avgPool2d",
                "input \(describe(shape)) with padding \(padding) is smaller than kernel \(kernel)")
        let oh = poolOutputSize(h, kernel: kernel, stride: s, padding: padding)
        let ow = poolOutputSize(w, kernel: kernel, stride: s, padding: padding)
        let planes = count / max(1, h * w)
        let y = Tensor(uninitialized: Array(shape.dropLast(2)) + [oh, ow])
        avgPool2dForward(y.data, x.data, planes: planes, h: h, w: w, oh: oh, ow: ow,
                         kernel: kernel, stride: s, padding: padding)
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradIfNeeded else { return }
            avgPool2dBackward(dx, dy, planes: planes, h: h, w: w, oh: oh, ow: ow,
                              kernel: kernel, stride: s, padding: padding)
        }
        return y
    }

    /// Area resize of the last two dimensions: PyTorch `adaptive_avg_pool2d`, i.e.
    /// `F.interpolate(mode: "area")`. Output cell i averages input [floor(i·in/out), ceil((i+1)·in/out)).
    /// x: (…, H, W) → (…, height, width)
    public func resizeArea(height: Int, width: Int) -> Tensor {
        let x = self
        require(rank >= 2, "resizeArea", "input \(describe(shape)) needs at least 2 dimensions")
        require(height >= 1 && width >= 1, "resizeArea", "output size [\(height), \(width)] must be positive for input \(describe(shape))")
        let h = shape[rank - 2], w = shape[rank - 1]
        require(h >= 1 && w >= 1, "resizeArea", "empty input \(describe(shape))")
        let planes = count / (h * w)
        let y = Tensor(uninitialized: Array(shape.dropLast(2)) + [height, width])
        resizeAreaForward(y.data, x.data, planes: planes, h: h, w: w, oh: height, ow: width)
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradIfNeeded else { return }
            resizeAreaBackward(dx, dy, planes: planes, h: h, w: w, oh: height, ow: width)
        }
        return y
    }
}
