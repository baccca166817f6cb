import Foundation

// RAFT's convex ×f upsampling as one op: each fine pixel (f·h + a, f·w + b) is a convex
// combination, weighted by a softmax over 9 mask channels, of the 3×3 zero-padded
// neighbourhood of f·flow around (h, w). Mask channel layout: k·f² + a·f + b, k = ky·3 + kx.

/// Softmax of the 9 logits of each (n, a, b, h, w).  mask, p: (n, 9·f², h, w)
func convexWeightsForward(_ p: UnsafeMutablePointer<Float>, _ mask: UnsafePointer<Float>, n: Int, ff: Int, hw: Int) {
    let inner = ff * hw
    parallelFor(n * ff, minCount: 2) { r in
        for job in r {
            let img = job / ff, ab = job % ff
            let base = img * 9 * inner + ab * hw
            for i in 0..<hw {
                var m = -Float.infinity
                for k in 0..<9 { m = max(m, mask[base + k * inner + i]) }
                var s: Float = 0
                for k in 0..<9 { let e = expf(mask[base + k * inner + i] - m); p[base + k * inner + i] = e; s += e }
                let inv = 1 / s
                for k in 0..<9 { p[base + k * inner + i] *= inv }
            }
        }
    }
}

/// y[n, c, f·h + a, f·w + b] = Σ_k p[n, k, a, b, h, w] · f·flow[n, c, h + ky − 1, w + kx − 1].
/// y: (n, c, f·h, f·w); p: (n, 9·f², h, w); flow: (n, c, h, w)
func convexUpsampleForward(_ y: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                           n: Int, c: Int, h: Int, w: Int, factor f: Int) {
    let hw = h * w, ff = f * f, fw = f * w, scale = Float(f)
    parallelFor(n * h, minCount: 2) { rows in
        for row in rows {
            let img = row / h, yy = row % h
            for ch in 0..<c {
                let fl = flow + (img * c + ch) * hw
                let out = y + (img * c + ch) * hw * ff
                for a in 0..<f {
                    let orow = out + (f * yy + a) * fw
                    for b in 0..<f {
                        let pab = p + img * 9 * ff * hw + (a * f + b) * hw + yy * w
                        for xx in 0..<w {
                            var s: Float = 0
                            for ky in 0..<3 {
                                let sy = yy + ky - 1
                                if sy < 0 || sy >= h { continue }
                                for kx in 0..<3 {
                                    let sx = xx + kx - 1
                                    if sx < 0 || sx >= w { continue }
                                    s += pab[(ky * 3 + kx) * ff * hw + xx] * fl[sy * w + sx]
                                }
                            }
                            orow[f * xx + b] = scale * s
                        }
                    }
                }
            }
        }
    }
}

/// Backward of the convex combination and softmax. dflow += ∂/∂flow; dmask += ∂/∂logits.
/// Accumulates. dy: (n, c, f·h, f·w)
func convexUpsampleBackward(_ dflow: UnsafeMutablePointer<Float>?, _ dmask: UnsafeMutablePointer<Float>?,
                            _ dy: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ flow: UnsafePointer<Float>,
                            n: Int, c: Int, h: Int, w: Int, factor f: Int) {
    let hw = h * w, ff = f * f, fw = f * w, scale = Float(f)
    if let dmask {
        // dp[k,a,b,h,w] = f·Σ_c dy[c, fh+a, fw+b]·flow[c, nb_k]; dlogit = p·(dp − Σ_k p·dp).
        parallelFor(n * h, minCount: 2) { rows in
          withUnsafeTemporaryAllocation(of: Float.self, capacity: 9) { buf in
            let dp = buf.baseAddress!
            for row in rows {
                let img = row / h, yy = row % h
                for a in 0..<f {
                    for b in 0..<f {
                        let base = img * 9 * ff * hw + (a * f + b) * hw + yy * w
                        for xx in 0..<w {
                            for k in 0..<9 { dp[k] = 0 }
                            for ch in 0..<c {
                                let g = dy[(img * c + ch) * hw * ff + (f * yy + a) * fw + f * xx + b] * scale
                                let fl = flow + (img * c + ch) * hw
                                for ky in 0..<3 {
                                    let sy = yy + ky - 1
                                    if sy < 0 || sy >= h { continue }
                                    for kx in 0..<3 {
                                        let sx = xx + kx - 1
                                        if sx < 0 || sx >= w { continue }
                                        dp[ky * 3 + kx] += g * fl[sy * w + sx]
                                    }
                                }
                            }
                            var dot: Float = 0
                            for k in 0..<9 { dot += dp[k] * p[base + k * ff * hw + xx] }
                            for k in 0..<9 {
                                let j = base + k * ff * hw + xx
                                dmask[j] += p[j] * (dp[k] - dot)
                            }
                        }
                    }
                }
            }
          }
        }
    }
    if let dflow {
        // dflow[c, sy, sx] += f·Σ over the fine pixels whose neighbourhood holds (sy, sx).
        parallelFor(n * c, minCount: 2) { planes in
            for plane in planes {
                let img = plane / c
                let g0 = dy + plane * hw * ff, df = dflow + plane * hw
                for yy in 0..<h {
                    for a in 0..<f {
                        let grow = g0 + (f * yy + a) * fw
                        for b in 0..<f {
                            let pab = p + img * 9 * ff * hw + (a * f + b) * hw + yy * w
                            for xx in 0..<w {
                                let g = grow[f * xx + b] * scale
                                for ky in 0..<3 {
                                    let sy = yy + ky - 1
                                    if sy < 0 || sy >= h { continue }
                                    for kx in 0..<3 {
                                        let sx = xx + kx - 1
                                        if sx < 0 || sx >= w { continue }
                                        df[sy * w + sx] += g * pab[(ky * 3 + kx) * ff * hw + xx]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// RAFT's convex upsampling (`upsample_flow`): flow (N, C, H, W) and mask logits
/// (N, 9·f², H, W) → (N, C, f·H, f·W), the output in units of the fine grid (flow × f).
/// Differentiable w.r.t. both inputs.
public func convexUpsample(_ flow: Tensor, mask: Tensor, factor f: Int = 8) -> Tensor {
    require(flow.rank == 4 && mask.rank == 4, "convexUpsample", "flow \(describe(flow.shape)) and mask \(describe(mask.shape)) must be 4-D")
    let n = flow.shape[0], c = flow.shape[1], h = flow.shape[2], w = flow.shape[3]
    require(f >= 1 && mask.shape == [n, 9 * f * f, h, w], "convexUpsample",
            "mask \(describe(mask.shape)) must be [\(n), \(9 * f * f), \(h), \(w)] for flow \(describe(flow.shape)) and factor \(f)")
    let p = Tensor(uninitialized: mask.shape)
    convexWeightsForward(p.data, mask.data, n: n, ff: f * f, hw: h * w)
    let y = Tensor(uninitialized: [n, c, f * h, f * w])
    convexUpsampleForward(y.data, p.data, flow.data, n: n, c: c, h: h, w: w, factor: f)
    Tape.record(y, inputs: [flow, mask]) { dy in
        convexUpsampleBackward(flow.gradIfNeeded, mask.gradIfNeeded, dy, p.data, flow.data, n: n, c: c, h: h, w: w, factor: f)
    }
    return y
}
