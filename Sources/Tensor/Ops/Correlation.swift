import Foundation
import CKernels

// Local correlation (FlowNet / PWC-Net / FastFlowNet cost volume, 1×1 patches, stride 1):
//   y[n, k, y, x] = (1/C) Σ_c f1[n, c, y, x] · f2[n, c, y + dy_k, x + dx_k],  zero outside f2.
// The full volume has (2d+1)² channels ordered k = (dy+d)·(2d+1) + (dx+d), dy-major, as the
// FastFlowNet CUDA kernel and spatial-correlation-sampler lay them out. A subset of displacements
// (FastFlowNet's center-dense dilated correlation keeps 53 of 81) keeps that increasing order.

/// Copies `planes` planes of h × w floats with d zero columns on either side (rows w + 2d long),
/// the planes shared by the threads.
private func padColumns(_ src: UnsafePointer<Float>, planes: Int, h: Int, w: Int, d: Int) -> Storage {
    let wp = w + 2 * d, out = Storage(count: planes * h * wp), o = SendablePointer(out.pointer)
    parallelFor(planes, minCount: max(2, (1 << 16) / max(1, h * wp))) { range in
        for p in range { mdf_pad_columns(o.base + p * h * wp, src + p * h * w, h, w, d) }
    }
    return out
}

/// y = local correlation for the displacements (dys[k], dxs[k]), k < kCount, |dy|, |dx| ≤ d.
/// f1, f2: (n, c, h, w)   y: (n, kCount, h, w)
/// f2 is copied once with d zero columns on either side; then each output row, for each run of
/// displacements with one dy (consecutive k), is one `mdf_corr_rows` call over the channels.
/// Work is split over (sample, row).
func localCorrelationForward(_ y: UnsafeMutablePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                             dys: UnsafePointer<Int>, dxs: UnsafePointer<Int>, kCount: Int, maxDisplacement d: Int,
                             n: Int, c: Int, h: Int, w: Int, path: KernelPath = .best) {
    let hw = h * w, wp = w + 2 * d, scale = 1 / Float(c)
    let f2p = padColumns(f2, planes: n * c, h: h, w: w, d: d)
    let yp = SendablePointer(y)
    parallelFor(n * h, minCount: max(2, (1 << 15) / max(1, kCount * c * w))) { rows in
        var aoff = [Int](repeating: 0, count: c), bi = [Int](repeating: 0, count: c)
        var bj = [Int](repeating: 0, count: kCount)
        for k in 0..<kCount { bj[k] = dxs[k] }
        for row in rows {
            let b = row / h, py = row % h
            for ch in 0..<c { aoff[ch] = (b * c + ch) * hw + py * w; bi[ch] = (b * c + ch) * h * wp }
            let yb = yp.base + b * kCount * hw + py * w
            var k0 = 0
            while k0 < kCount {
                var k1 = k0 + 1
                while k1 < kCount && dys[k1] == dys[k0] { k1 += 1 }
                let qy = py + dys[k0]
                if qy < 0 || qy >= h {
                    for k in k0..<k1 { (yb + k * hw).update(repeating: 0, count: w) }
                } else {
                    bj.withUnsafeBufferPointer { bjp in
                        mdf_corr_rows(yb + k0 * hw, hw, f1, aoff, f2p.pointer + qy * wp + d, bi, bjp.baseAddress! + k0,
                                      Int32(c), Int32(k1 - k0), w, scale, 0, path.rawValue)
                    }
                }
                k0 = k1
            }
        }
    }
}

/// df1 += ∂y/∂f1 · dy and df2 += ∂y/∂f2 · dy. Accumulates; nil skips an input.
/// dy: (n, kCount, h, w)   f1, f2, df1, df2: (n, c, h, w)
/// Both gradients are gathers, one `mdf_corr_rows` call per output row over the displacements
/// that reach it: df1[c, y, x] = Σ_k dy[k, y, x] · f2[c, y + dy_k, x + dx_k] / C and
/// df2[c, y, x] = Σ_k dy[k, y − dy_k, x − dx_k] · f1[c, y − dy_k, x − dx_k] / C, on copies of f2,
/// dy and f1 with d zero columns on either side. Work is split over (sample, row); each task owns
/// its gradient rows.
func localCorrelationBackward(_ df1: UnsafeMutablePointer<Float>?, _ df2: UnsafeMutablePointer<Float>?,
                              _ dy: UnsafePointer<Float>, _ f1: UnsafePointer<Float>, _ f2: UnsafePointer<Float>,
                              dys: UnsafePointer<Int>, dxs: UnsafePointer<Int>, kCount: Int, maxDisplacement d: Int,
                              n: Int, c: Int, h: Int, w: Int, path: KernelPath = .best) {
    if df1 == nil && df2 == nil { return }
    let hw = h * w, wp = w + 2 * d, scale = 1 / Float(c)
    let f2p = df1 == nil ? nil : padColumns(f2, planes: n * c, h: h, w: w, d: d)
    let f1p = df2 == nil ? nil : padColumns(f1, planes: n * c, h: h, w: w, d: d)
    let gp = df2 == nil ? nil : padColumns(dy, planes: n * kCount, h: h, w: w, d: d)
    let d1 = df1.map(SendablePointer.init), d2 = df2.map(SendablePointer.init)
    parallelFor(n * h, minCount: max(2, (1 << 15) / max(1, kCount * c * w))) { rows in
        var aoff = [Int](repeating: 0, count: kCount), bi = [Int](repeating: 0, count: kCount)
        var bj = [Int](repeating: 0, count: c)
        for ch in 0..<c { bj[ch] = ch * h * wp }
        for row in rows {
            let b = row / h, py = row % h
            if let d1, let f2p {
                var count = 0
                for k in 0..<kCount {
                    let qy = py + dys[k]
                    if qy < 0 || qy >= h { continue }
                    aoff[count] = (b * kCount + k) * hw + py * w
                    bi[count] = qy * wp + dxs[k] + d
                    count += 1
                }
                if count > 0 {
                    mdf_corr_rows(d1.base + b * c * hw + py * w, hw, dy, aoff, f2p.pointer + b * c * h * wp, bi, bj,
                                  Int32(count), Int32(c), w, scale, 1, path.rawValue)
                }
            }
            if let d2, let f1p, let gp {
                var count = 0
                for k in 0..<kCount {
                    let sy = py - dys[k]
                    if sy < 0 || sy >= h { continue }
                    aoff[count] = ((b * kCount + k) * h + sy) * wp - dxs[k] + d
                    bi[count] = sy * wp - dxs[k] + d
                    count += 1
                }
                if count > 0 {
                    mdf_corr_rows(d2.base + b * c * hw + py * w, hw, gp.pointer, aoff, f1p.pointer + b * c * h * wp, bi, bj,
                                  Int32(count), Int32(c), w, scale, 1, path.rawValue)
                }
            }
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
                                maxDisplacement: d, n: n, c: c, h: h, w: w)
    }
    Tape.record(y, inputs: [f1, f2]) { dy in
        localCorrelationBackward(f1.gradIfNeeded, f2.gradIfNeeded, dy, f1.data, f2.data,
                                 dys: offsets.dys, dxs: offsets.dxs, kCount: kCount, maxDisplacement: d,
                                 n: n, c: c, h: h, w: w)
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
