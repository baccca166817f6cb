// Photometric augmentation (torchvision ColorJitter semantics, gamma, Gaussian blur, noise) and
// RAFT's eraser on frame 2; one sample's frames or a batch pair's.
import Foundation
import Tensor

public enum PhotometricAugment {
    /// Parameters drawn for one frame.
    struct Params {
        var order: [Int] = []
        var brightness = 1.0, contrast = 1.0, saturation = 1.0, hue = 0.0
        var gamma: Double? = nil
        var blurSigma: Double? = nil
        var noiseStd = 0.0
        var noiseSeed: UInt64 = 0
    }

    static func draw(_ c: PhotometricConfig, _ rng: inout RandomGenerator) -> Params {
        var p = Params()
        p.order = rng.permutation(4)
        func factor(_ x: Double, _ rng: inout RandomGenerator) -> Double { x > 0 ? rng.uniform(max(0, 1 - x), 1 + x) : 1 }
        p.brightness = factor(c.brightness, &rng)
        p.contrast = factor(c.contrast, &rng)
        p.saturation = factor(c.saturation, &rng)
        p.hue = c.hue > 0 ? rng.uniform(-min(c.hue, 0.5), min(c.hue, 0.5)) : 0
        if let g = c.gamma, g.count == 2 { p.gamma = rng.uniform(g[0], g[1]) }
        if c.blurProbability > 0, rng.chance(c.blurProbability) { p.blurSigma = rng.uniform(0, c.blurRadius) }
        if c.noiseStd > 0 { p.noiseStd = rng.uniform(0, c.noiseStd) }
        p.noiseSeed = rng.next()
        return p
    }

    /// Applies photometric augmentation to both frames (same parameters unless the asymmetric
    /// draw succeeds; the noise itself is independent per frame).
    public static func apply(_ c: PhotometricConfig, to image1: inout RGBImage, _ image2: inout RGBImage,
                             using rng: inout RandomGenerator) {
        let asymmetric = c.asymmetricProbability > 0 && rng.chance(c.asymmetricProbability)
        let p1 = draw(c, &rng)
        var p2 = asymmetric ? draw(c, &rng) : p1
        p2.noiseSeed = rng.next()
        apply(p1, to: &image1)
        apply(p2, to: &image2)
    }

    /// Photometric augmentation of a batch pair (B, 3, H, W), in [0, 1]: new tensors, item i
    /// drawn from `rngs[i]` (shared by its two frames unless the asymmetric draw says otherwise).
    public static func apply(_ c: PhotometricConfig, image1: Tensor, image2: Tensor,
                             using rngs: inout [RandomGenerator]) -> (Tensor, Tensor) {
        require(image1.rank == 4 && image1.shape[1] == 3 && image1.shape == image2.shape, "PhotometricAugment.apply",
                "frames \(describe(image1.shape)) and \(describe(image2.shape)) must both be (B, 3, H, W)")
        require(rngs.count == image1.shape[0], "PhotometricAugment.apply", "\(rngs.count) generators for a batch of \(image1.shape[0])")
        let out1 = image1.clone(), out2 = image2.clone()
        let (b, h, w) = (image1.shape[0], image1.shape[2], image1.shape[3])
        for i in 0..<b {
            var rng = rngs[i]
            defer { rngs[i] = rng }
            let asymmetric = c.asymmetricProbability > 0 && rng.chance(c.asymmetricProbability)
            let p1 = draw(c, &rng)
            var p2 = asymmetric ? draw(c, &rng) : p1
            p2.noiseSeed = rng.next()
            applyPlanes(p1, out1.data + i * 3 * h * w, height: h, width: w)
            applyPlanes(p2, out2.data + i * 3 * h * w, height: h, width: w)
        }
        return (out1, out2)
    }

    static func apply(_ p: Params, to image: inout RGBImage) {
        let w = image.width, h = image.height
        image.pixels.withUnsafeMutableBufferPointer { applyPlanes(p, $0.baseAddress!, height: h, width: w) }
    }

    /// pixels: (3, H, W), modified in place.
    static func applyPlanes(_ p: Params, _ pixels: UnsafeMutablePointer<Float>, height h: Int, width w: Int) {
        let n = h * w
        let r = pixels, g = r + n, b = r + 2 * n
        for op in p.order {
            switch op {
            case 0 where p.brightness != 1:
                let f = Float(p.brightness)
                for i in 0..<3 * n { r[i] = min(max(r[i] * f, 0), 1) }
            case 1 where p.contrast != 1:
                var mean: Double = 0
                for i in 0..<n { mean += Double(0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]) }
                let m = Float(mean / Double(n)), f = Float(p.contrast)
                for i in 0..<3 * n { r[i] = min(max(f * r[i] + (1 - f) * m, 0), 1) }
            case 2 where p.saturation != 1:
                let f = Float(p.saturation)
                for i in 0..<n {
                    let gray = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]
                    r[i] = min(max(f * r[i] + (1 - f) * gray, 0), 1)
                    g[i] = min(max(f * g[i] + (1 - f) * gray, 0), 1)
                    b[i] = min(max(f * b[i] + (1 - f) * gray, 0), 1)
                }
            case 3 where p.hue != 0:
                shiftHue(r, g, b, count: n, turns: Float(p.hue))
            default: break
            }
        }
        if let gamma = p.gamma {
            // x^γ through a 4097-entry table with linear interpolation (error < 1e-3; powf
            // per value would dominate the photometric cost).
            let table = (0...4096).map { powf(Float($0) / 4096, Float(gamma)) }
            table.withUnsafeBufferPointer { tb in
                let t = tb.baseAddress!
                for i in 0..<3 * n {
                    let f = min(max(r[i], 0), 1) * 4096
                    let k = min(Int(f), 4095)
                    let a = f - Float(k)
                    r[i] = t[k] + (t[k + 1] - t[k]) * a
                }
            }
        }
        if let sigma = p.blurSigma, sigma > 0.05 {
            gaussianBlur(r, channels: 3, height: h, width: w, sigma: Float(sigma))
        }
        if p.noiseStd > 0 {
            // Marsaglia's polar method (two normals per accepted draw, no trigonometry) on a
            // local xorshift stream seeded from the generator.
            var state = p.noiseSeed | 1
            @inline(__always) func uniform() -> Float {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                return Float(state >> 40) * 0x1p-23 - 1
            }
            let std = Float(p.noiseStd), total = 3 * n
            var i = 0
            while i < total {
                let u = uniform(), v = uniform()
                let q = u * u + v * v
                if q >= 1 || q == 0 { continue }
                let scale = (-2 * logf(q) / q).squareRoot() * std
                r[i] = min(max(r[i] + u * scale, 0), 1)
                if i + 1 < total { r[i + 1] = min(max(r[i + 1] + v * scale, 0), 1) }
                i += 2
            }
        }
    }

    /// RAFT's eraser on frame 2.
    public static func erase(_ c: EraserConfig, image2: inout RGBImage, using rng: inout RandomGenerator) {
        guard rng.chance(c.probability) else { return }
        let n = image2.planeSize, w = image2.width, h = image2.height
        var mean: [Float] = [0, 0, 0]
        for ch in 0..<3 {
            var s: Double = 0
            for i in 0..<n { s += Double(image2.pixels[ch * n + i]) }
            mean[ch] = Float(s / Double(n))
        }
        let count = 1 + rng.int(below: max(c.maxCount, 1))
        for _ in 0..<count {
            let x0 = rng.int(below: w), y0 = rng.int(below: h)
            let span = max(c.maxSize - c.minSize, 0) + 1
            let dx = c.minSize + rng.int(below: span), dy = c.minSize + rng.int(below: span)
            for y in y0..<min(y0 + dy, h) {
                for x in x0..<min(x0 + dx, w) {
                    for ch in 0..<3 { image2.pixels[ch * n + y * w + x] = mean[ch] }
                }
            }
        }
    }

    /// Rotates hue by `turns` (torchvision adjust_hue): RGB → HSV, h += turns (mod 1), back.
    static func shiftHue(_ r: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                         count: Int, turns: Float) {
        for i in 0..<count {
            let R = r[i], G = g[i], B = b[i]
            let maxc = max(R, G, B), minc = min(R, G, B), delta = maxc - minc
            if delta <= 0 { continue }
            let v = maxc, s = delta / maxc
            var hue: Float
            if maxc == R { hue = (G - B) / delta } else if maxc == G { hue = 2 + (B - R) / delta } else { hue = 4 + (R - G) / delta }
            hue = hue / 6 + turns
            hue -= hue.rounded(.down)
            let h6 = hue * 6
            let sector = min(Int(h6), 5)
            let f = h6 - Float(sector)
            let p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f))
            switch sector {
            case 0: r[i] = v; g[i] = t; b[i] = p
            case 1: r[i] = q; g[i] = v; b[i] = p
            case 2: r[i] = p; g[i] = v; b[i] = t
            case 3: r[i] = p; g[i] = q; b[i] = v
            case 4: r[i] = t; g[i] = p; b[i] = v
            default: r[i] = v; g[i] = p; b[i] = q
            }
        }
    }

    /// Separable Gaussian blur in place, borders clamped; kernel radius ⌈3σ⌉.
    static func gaussianBlur(_ x: UnsafeMutablePointer<Float>, channels: Int, height h: Int, width w: Int, sigma: Float) {
        let radius = max(1, Int((3 * sigma).rounded(.up)))
        var kernel = [Float](repeating: 0, count: 2 * radius + 1)
        var total: Float = 0
        for k in -radius...radius {
            kernel[k + radius] = expf(-Float(k * k) / (2 * sigma * sigma))
            total += kernel[k + radius]
        }
        for k in kernel.indices { kernel[k] /= total }
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: w + 2 * radius)
        let rowSum = UnsafeMutablePointer<Float>.allocate(capacity: w)
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: h * w)
        defer { padded.deallocate(); rowSum.deallocate(); copy.deallocate() }
        kernel.withUnsafeBufferPointer { kb in
            let kp = kb.baseAddress!
            for c in 0..<channels {
                let plane = x + c * h * w
                // Horizontal: each row padded with its edge values, then a plain dot product.
                for y in 0..<h {
                    let row = plane + y * w
                    for k in 0..<radius { padded[k] = row[0]; padded[radius + w + k] = row[w - 1] }
                    (padded + radius).update(from: row, count: w)
                    let o = copy + y * w
                    o.update(repeating: 0, count: w)
                    for k in 0...(2 * radius) {
                        let wt = kp[k], src = padded + k
                        for xx in 0..<w { o[xx] += wt * src[xx] }
                    }
                }
                // Vertical: weighted sums of whole rows (contiguous), rows clamped at the borders.
                for y in 0..<h {
                    rowSum.update(repeating: 0, count: w)
                    for k in -radius...radius {
                        let src = copy + min(max(y + k, 0), h - 1) * w, wt = kp[k + radius]
                        for xx in 0..<w { rowSum[xx] += wt * src[xx] }
                    }
                    (plane + y * w).update(from: rowSum, count: w)
                }
            }
        }
    }
}
