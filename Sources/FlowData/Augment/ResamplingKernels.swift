// Raw-buffer kernels behind the augmentations: mask thresholding, bilinear resize, affine warp
// of planes, and a flow re-expressed under a pair of affine maps.
import Foundation

/// Sets every value to 1 where it is at least 0.5, else 0 (resampled masks).
func threshold(_ p: UnsafeMutableBufferPointer<Float>) {
    for i in p.indices { p[i] = p[i] >= 0.5 ? 1 : 0 }
}

func threshold(_ a: inout [Float]) { a.withUnsafeMutableBufferPointer { threshold($0) } }

/// Bilinear resize of (channels, inH, inW) to (channels, outH, outW), half-pixel centres
/// (align_corners=False), borders clamped.
func resizePlanes(_ src: [Float], _ channels: Int, _ inH: Int, _ inW: Int, _ outH: Int, _ outW: Int) -> [Float] {
    var out = [Float](repeating: 0, count: channels * outH * outW)
    let sy = Float(inH) / Float(outH), sx = Float(inW) / Float(outW)
    src.withUnsafeBufferPointer { sp in
        out.withUnsafeMutableBufferPointer { op in
            let s = sp.baseAddress!, o = op.baseAddress!
            for y in 0..<outH {
                let fy = max((Float(y) + 0.5) * sy - 0.5, 0)
                let y0 = min(Int(fy), inH - 1), y1 = min(y0 + 1, inH - 1), wy = fy - Float(y0)
                for x in 0..<outW {
                    let fx = max((Float(x) + 0.5) * sx - 0.5, 0)
                    let x0 = min(Int(fx), inW - 1), x1 = min(x0 + 1, inW - 1), wx = fx - Float(x0)
                    for c in 0..<channels {
                        let p = s + c * inH * inW
                        let top = p[y0 * inW + x0] * (1 - wx) + p[y0 * inW + x1] * wx
                        let bottom = p[y1 * inW + x0] * (1 - wx) + p[y1 * inW + x1] * wx
                        o[(c * outH + y) * outW + x] = top * (1 - wy) + bottom * wy
                    }
                }
            }
        }
    }
    return out
}

/// A sample coordinate along an axis of `n` pixels, clamped to [−2, n + 1] (NaN → −2): beyond
/// those limits every bilinear corner is outside whatever the exact value, and the clamp keeps the
/// integer conversion from trapping on a degenerate map.
@inline(__always) func clampSample(_ s: Double, _ n: Int) -> Double {
    s >= -2 ? (s <= Double(n + 1) ? s : Double(n + 1)) : -2
}

/// out(y) = bilinear(src, map(y)) per channel; a corner outside the image contributes 0.
/// out, src: (channels, height, width).
func affineWarpForward(_ out: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, channels: Int, height h: Int,
                       width w: Int, map m: AffineMap) {
    let n = h * w
    for y in 0..<h {
        // Along a row the source position moves linearly: start + x·(a, c).
        let (rowX, rowY) = m.apply(0, Double(y))
        for x in 0..<w {
            let sx = clampSample(rowX + m.a * Double(x), w), sy = clampSample(rowY + m.c * Double(x), h)
            let fx = sx.rounded(.down), fy = sy.rounded(.down)
            let x0 = Int(fx), y0 = Int(fy)
            let ax = Float(sx - fx), ay = Float(sy - fy)
            let i = y * w + x
            if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
                let w00 = (1 - ax) * (1 - ay), w10 = ax * (1 - ay), w01 = (1 - ax) * ay, w11 = ax * ay
                let j = y0 * w + x0
                for c in 0..<channels {
                    let p = src + c * n + j
                    out[c * n + i] = w00 * p[0] + w10 * p[1] + w01 * p[w] + w11 * p[w + 1]
                }
                continue
            }
            for c in 0..<channels {
                var v: Float = 0
                let p = src + c * n
                if y0 >= 0 && y0 < h {
                    if x0 >= 0 && x0 < w { v += (1 - ax) * (1 - ay) * p[y0 * w + x0] }
                    if x0 + 1 >= 0 && x0 + 1 < w { v += ax * (1 - ay) * p[y0 * w + x0 + 1] }
                }
                if y0 + 1 >= 0 && y0 + 1 < h {
                    if x0 >= 0 && x0 < w { v += (1 - ax) * ay * p[(y0 + 1) * w + x0] }
                    if x0 + 1 >= 0 && x0 + 1 < w { v += ax * ay * p[(y0 + 1) * w + x0 + 1] }
                }
                out[c * n + i] = v
            }
        }
    }
}

/// Re-expresses a flow under a pair of affine maps: for output pixel y, s = sourceMap(y),
/// f = bilinear(flow, s), out(y) = targetMap(s + f) − y. outValid(y) = 1 when every corner with
/// positive weight lies inside and is valid. out: (2, H, W), outValid: (H, W).
func affineFlowForward(_ out: UnsafeMutablePointer<Float>, _ outValid: UnsafeMutablePointer<Float>,
                       _ flow: UnsafePointer<Float>, _ valid: UnsafePointer<Float>,
                       height h: Int, width w: Int, sourceMap: AffineMap, targetMap: AffineMap) {
    let n = h * w
    for y in 0..<h {
        for x in 0..<w {
            let (mx, my) = sourceMap.apply(Double(x), Double(y))
            let sx = clampSample(mx, w), sy = clampSample(my, h)
            let fx = sx.rounded(.down), fy = sy.rounded(.down)
            let x0 = Int(fx), y0 = Int(fy)
            let ax = sx - fx, ay = sy - fy
            var u = 0.0, v = 0.0, ok = true
            let j = y0 * w + x0
            if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h
                && valid[j] > 0 && valid[j + 1] > 0 && valid[j + w] > 0 && valid[j + w + 1] > 0 {
                let w00 = (1 - ax) * (1 - ay), w10 = ax * (1 - ay), w01 = (1 - ax) * ay, w11 = ax * ay
                u = w00 * Double(flow[j]) + w10 * Double(flow[j + 1]) + w01 * Double(flow[j + w]) + w11 * Double(flow[j + w + 1])
                v = w00 * Double(flow[n + j]) + w10 * Double(flow[n + j + 1]) + w01 * Double(flow[n + j + w]) + w11 * Double(flow[n + j + w + 1])
                let (tx, ty) = targetMap.apply(sx + u, sy + v)
                let i = y * w + x
                out[i] = Float(tx - Double(x))
                out[n + i] = Float(ty - Double(y))
                outValid[i] = 1
                continue
            }
            @inline(__always) func corner(_ cx: Int, _ cy: Int, _ wt: Double) {
                guard ok, wt > 1e-6 else { return }
                if cx < 0 || cx >= w || cy < 0 || cy >= h || valid[cy * w + cx] <= 0 { ok = false; return }
                u += wt * Double(flow[cy * w + cx])
                v += wt * Double(flow[n + cy * w + cx])
            }
            corner(x0, y0, (1 - ax) * (1 - ay))
            corner(x0 + 1, y0, ax * (1 - ay))
            corner(x0, y0 + 1, (1 - ax) * ay)
            corner(x0 + 1, y0 + 1, ax * ay)
            let i = y * w + x
            if ok {
                let (tx, ty) = targetMap.apply(sx + u, sy + v)
                out[i] = Float(tx - Double(x))
                out[n + i] = Float(ty - Double(y))
                outValid[i] = 1
            } else {
                out[i] = 0
                out[n + i] = 0
                outValid[i] = 0
            }
        }
    }
}
