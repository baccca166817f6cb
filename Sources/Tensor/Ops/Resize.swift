import Foundation

// Bilinear resize of the last two dimensions with PyTorch's exact coordinate rules
// (`F.interpolate(mode: "bilinear")`, CPU kernel):
//   align_corners=false: src = (dst + 0.5)·in/out − 0.5, clamped below at 0;
//   align_corners=true:  src = dst·(in − 1)/(out − 1)  (0 when out = 1).
// Then i0 = ⌊src⌋, i1 = min(i0 + 1, in − 1), λ1 = src − i0, λ0 = 1 − λ1.

/// Interpolation taps along one axis: for each output index, two input indices and their weights.
/// Owns small raw buffers so kernels read them through plain pointers.
final class LinearTaps {
    let i0: UnsafeMutablePointer<Int>, i1: UnsafeMutablePointer<Int>
    let l0: UnsafeMutablePointer<Float>, l1: UnsafeMutablePointer<Float>
    let count: Int

    init(input: Int, output: Int, alignCorners: Bool) {
        count = output
        i0 = .allocate(capacity: output); i1 = .allocate(capacity: output)
        l0 = .allocate(capacity: output); l1 = .allocate(capacity: output)
        let scale: Float = alignCorners
            ? (output > 1 ? Float(input - 1) / Float(output - 1) : 0)
            : Float(input) / Float(output)
        for d in 0..<output {
            var src: Float
            if alignCorners { src = scale * Float(d) }
            else { src = scale * (Float(d) + 0.5) - 0.5; if src < 0 { src = 0 } }
            let a = min(Int(src), input - 1)
            let lambda = min(max(src - Float(a), 0), 1)
            i0[d] = a
            i1[d] = a < input - 1 ? a + 1 : a
            l1[d] = lambda
            l0[d] = 1 - lambda
        }
    }

    deinit { i0.deallocate(); i1.deallocate(); l0.deallocate(); l1.deallocate() }
}

/// y[p, oy, ox] = Σ of the 2×2 taps of x[p]. x: (planes, h, w)   y: (planes, oh, ow)
func resizeBilinearForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                           planes: Int, h: Int, w: Int, oh: Int, ow: Int, alignCorners: Bool) {
    let ty = LinearTaps(input: h, output: oh, alignCorners: alignCorners)
    let tx = LinearTaps(input: w, output: ow, alignCorners: alignCorners)
    withExtendedLifetime((ty, tx)) {
        let y0 = ty.i0, y1 = ty.i1, wy0 = ty.l0, wy1 = ty.l1
        let x0 = tx.i0, x1 = tx.i1, wx0 = tx.l0, wx1 = tx.l1
        parallelFor(planes, minCount: max(2, (1 << 15) / max(1, oh * ow))) { range in
            for p in range {
                let xp = x + p * h * w, yp = y + p * oh * ow
                for oy in 0..<oh {
                    let r0 = xp + y0[oy] * w, r1 = xp + y1[oy] * w, yr = yp + oy * ow
                    let a = wy0[oy], b = wy1[oy]
                    for ox in 0..<ow {
                        let i = x0[ox], j = x1[ox]
                        yr[ox] = a * (wx0[ox] * r0[i] + wx1[ox] * r0[j]) + b * (wx0[ox] * r1[i] + wx1[ox] * r1[j])
                    }
                }
            }
        }
    }
}

/// dx += the transpose of the forward interpolation applied to dy. Accumulates.
/// dy: (planes, oh, ow)   dx: (planes, h, w)
func resizeBilinearBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                            planes: Int, h: Int, w: Int, oh: Int, ow: Int, alignCorners: Bool) {
    let ty = LinearTaps(input: h, output: oh, alignCorners: alignCorners)
    let tx = LinearTaps(input: w, output: ow, alignCorners: alignCorners)
    withExtendedLifetime((ty, tx)) {
        let y0 = ty.i0, y1 = ty.i1, wy0 = ty.l0, wy1 = ty.l1
        let x0 = tx.i0, x1 = tx.i1, wx0 = tx.l0, wx1 = tx.l1
        // Planes are independent, so splitting over planes never races.
        parallelFor(planes, minCount: max(2, (1 << 15) / max(1, oh * ow))) { range in
            for p in range {
                let dxp = dx + p * h * w, dyp = dy + p * oh * ow
                for oy in 0..<oh {
                    let r0 = dxp + y0[oy] * w, r1 = dxp + y1[oy] * w, gr = dyp + oy * ow
                    let a = wy0[oy], b = wy1[oy]
                    for ox in 0..<ow {
                        let i = x0[ox], j = x1[ox], g = gr[ox]
                        let g0 = g * wx0[ox], g1 = g * wx1[ox]
                        r0[i] += a * g0; r0[j] += a * g1
                        r1[i] += b * g0; r1[j] += b * g1
                    }
                }
            }
        }
    }
}

extension Tensor {
    /// Bilinear resize of the last two dimensions to (height, width), PyTorch
    /// `F.interpolate(size:, mode: "bilinear", align_corners:)` exactly (see the rules above).
    /// x: (…, H, W) → (…, height, width)
    public func resizeBilinear(height: Int, width: Int, alignCorners: Bool) -> Tensor {
        let x = self
        require(rank >= 2, "resizeBilinear", "input \(describe(shape)) needs at least 2 dimensions")
        require(height >= 1 && width >= 1, "resizeBilinear", "output size [\(height), \(width)] must be positive for input \(describe(shape))")
        let h = shape[rank - 2], w = shape[rank - 1]
        require(h >= 1 && w >= 1, "resizeBilinear", "empty input \(describe(shape))")
        let planes = count / (h * w)
        let y = Tensor(uninitialized: Array(shape.dropLast(2)) + [height, width])
        resizeBilinearForward(y.data, x.data, planes: planes, h: h, w: w, oh: height, ow: width, alignCorners: alignCorners)
        Tape.record(y, inputs: [x]) { dy in
            guard let dx = x.gradIfNeeded else { return }
            resizeBilinearBackward(dx, dy, planes: planes, h: h, w: w, oh: height, ow: width, alignCorners: alignCorners)
        }
        return y
    }
}
