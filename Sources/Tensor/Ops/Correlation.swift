import Foundation

// Local correlation (FlowNet / PWC-Net / FastFlowNet cost volume, 1×1 patches, stride 1):
//   y[n, k, y, x] = (1/C) Σ_c f1[n, c, y, x] · f2[n, c, y + dy_k, x + dx_k],  zero outside f2.
// The full volume has (2d+1)² channels ordered k = (dy+d)·(2d+1) + (dx+d), dy-major, as the
// FastFlowNet CUDA kernel and spatial-correlation-sampler lay them out. A subset of displacements
// (FastFlowNet's center-dense dilated correlation keeps 53 of 81) keeps that increasing order.

/// y = local correlation for the displacements (dys[k], dxs[k]), k < kCount.
/// f1, f2: (n, c, h, w)   y: (n, kCount, h, w)
/// Work is split over (sample, row): a task keeps the kCount output rows of its row in cache
/// while it streams the channels.
func localCorrelationForward(_ y: UnsafeMutablePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                             dys: UnsafePointer<Int>, dxs: UnsafePointer<Int>, kCount: Int,
                             n: Int, c: Int, h: Int, w: Int) {
    let hw = h * w, scale = 1 / Float(c)
    parallelFor(n * h, minCount: max(2, (1 << 15) / max(1, kCount * c * w))) { rows in
        for row in rows {
            let b = row / h, py = row % h
            let yb = y + b * kCount * hw + py * w
            for k in 0..<kCount { (yb + k * hw).update(repeating: 0, count: w) }
            for ch in 0..<c {
                let a = f1 + (b * c + ch) * hw + py * w
                let plane2 = f2 + (b * c + ch) * hw
                for k in 0..<kCount {
                    let dy = dys[k], dx = dxs[k]
                    let qy = py + dy
                    if qy < 0 || qy >= h { continue }
                    let br = plane2 + qy * w + dx, yr = yb + k * hw
                    let xs = max(0, -dx), xe = min(w, w - dx)
                    if xs >= xe { continue }
                    for x in xs..<xe { yr[x] += a[x] * br[x] }
                }
            }
            for k in 0..<kCount {
                let yr = yb + k * hw
                for x in 0..<w { yr[x] *= scale }
            }
        }
    }
}

/// df1 += ∂y/∂f1 · dy and df2 += ∂y/∂f2 · dy. Accumulates; nil skips an input.
/// dy: (n, kCount, h, w)   f1, f2, df1, df2: (n, c, h, w)
/// Work is split over (sample, channel), so every task owns its gradient planes; inside a task
/// rows are the outer loop, so the kCount rows of dy at that row are reused across its channels.
func localCorrelationBackward(_ df1: UnsafeMutablePointer<Float>?, _ df2: UnsafeMutablePointer<Float>?,
                              _ dy: UnsafePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                              dys: UnsafePointer<Int>, dxs: UnsafePointer<Int>, kCount: Int,
                              n: Int, c: Int, h: Int, w: Int) {
    if df1 == nil && df2 == nil { return }
    let hw = h * w, scale = 1 / Float(c)
    parallelFor(n * c, minCount: max(2, (1 << 15) / max(1, kCount * hw))) { range in
        var lo = range.lowerBound
        while lo < range.upperBound {
            let b = lo / c
            let hi = min(range.upperBound, (b + 1) * c)
            for py in 0..<h {
                let g = dy + b * kCount * hw + py * w
                for plane in lo..<hi {
                    let off = plane * hw
                    let a = f1 + off + py * w
                    for k in 0..<kCount {
                        let dyk = dys[k], dx = dxs[k]
                        let qy = py + dyk
                        if qy < 0 || qy >= h { continue }
                        let xs = max(0, -dx), xe = min(w, w - dx)
                        if xs >= xe { continue }
                        let gr = g + k * hw
                        if let df1 {
                            let d1 = df1 + off + py * w, br = f2 + off + qy * w + dx
                            for x in xs..<xe { d1[x] += scale * gr[x] * br[x] }
                        }
                        if let df2 {
                            let d2 = df2 + off + qy * w + dx
                            for x in xs..<xe { d2[x] += scale * gr[x] * a[x] }
                        }
                    }
                }
            }
            lo = hi
        }
    }
}

/// The displacements FastFlowNet's center-dense dilated correlation keeps, in increasing channel
/// order: (dx, dy) ∈ [−d, d]² is kept iff dx + dy is even or max(|dx|, |dy|) ≤ denseRadius.
/// With the defaults that is 53 of the 81 displacements.
public func cddcDisplacements(maxDisplacement d: Int = 4, denseRadius: Int = 2) -> [(dy: Int, dx: Int)] {
    var out: [(dy: Int, dx: Int)] = []
    for dy in -d...d {
        for dx in -d...d where (dx + dy) % 2 == 0 || max(Swift.abs(dx), Swift.abs(dy)) <= denseRadius {
            out.append((dy, dx))
        }
    }
    return out
}

/// Local correlation of two feature maps, mean over channels, zero outside f2. With
/// `displacements` nil all (2d+1)² displacements are computed, channel (dy+d)·(2d+1) + (dx+d);
/// otherwise only the listed ones, whose channels appear in that same increasing order whatever
/// the order of the list. Differentiable w.r.t. both features.
/// f1, f2: (N, C, H, W) → (N, K, H, W)
public func localCorrelation(_ f1: Tensor, _ f2: Tensor, maxDisplacement d: Int,
                             displacements: [(dy: Int, dx: Int)]? = nil) -> Tensor {
    require(f1.rank == 4, "localCorrelation", "f1 \(describe(f1.shape)) must be (N, C, H, W)")
    require(f1.shape == f2.shape, "localCorrelation", "f1 \(describe(f1.shape)) and f2 \(describe(f2.shape)) differ")
    require(d >= 0, "localCorrelation", "maxDisplacement \(d) is negative")
    let n = f1.shape[0], c = f1.shape[1], h = f1.shape[2], w = f1.shape[3]
    require(c >= 1, "localCorrelation", "features \(describe(f1.shape)) have no channels")
    let side = 2 * d + 1
    var indices: [Int]
    if let displacements {
        indices = displacements.map { ($0.dy + d) * side + ($0.dx + d) }
        for (i, p) in displacements.enumerated() {
            require(Swift.abs(p.dy) <= d && Swift.abs(p.dx) <= d, "localCorrelation",
                    "displacement \(i) (dy \(p.dy), dx \(p.dx)) exceeds maxDisplacement \(d)")
        }
        indices.sort()
        for i in indices.indices.dropFirst() where indices[i] == indices[i - 1] {
            shapeFailure("localCorrelation", "displacement (dy \(indices[i] / side - d), dx \(indices[i] % side - d)) is listed twice")
        }
    } else {
        indices = Array(0..<(side * side))
    }
    let kCount = indices.count
    let offsets = DisplacementTable(indices: indices, maxDisplacement: d)

    let y = Tensor(uninitialized: [n, kCount, h, w])
    withExtendedLifetime(offsets) {
        localCorrelationForward(y.data, f1.data, f2.data, dys: offsets.dys, dxs: offsets.dxs, kCount: kCount,
                                n: n, c: c, h: h, w: w)
    }
    Tape.record(y, inputs: [f1, f2]) { dy in
        localCorrelationBackward(f1.gradIfNeeded, f2.gradIfNeeded, dy, f1.data, f2.data,
                                 dys: offsets.dys, dxs: offsets.dxs, kCount: kCount, n: n, c: c, h: h, w: w)
    }
    return y
}

/// The (dy, dx) of each output channel as raw arrays, owned for as long as a backward closure
/// needs them.
final class DisplacementTable {
    let dys: UnsafeMutablePointer<Int>, dxs: UnsafeMutablePointer<Int>

    /// From full-volume channel indices (dy+d)·(2d+1) + (dx+d).
    init(indices: [Int], maxDisplacement d: Int) {
        let side = 2 * d + 1
        dys = .allocate(capacity: max(1, indices.count))
        dxs = .allocate(capacity: max(1, indices.count))
        for (k, idx) in indices.enumerated() { dys[k] = idx / side - d; dxs[k] = idx % side - d }
    }

    deinit { dys.deallocate(); dxs.deallocate() }
}
