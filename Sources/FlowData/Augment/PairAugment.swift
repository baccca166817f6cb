// Pair-level ("co-") transforms of a loaded sample: resize, scale jitter, crop, flips and frame
// swap, applied alike to both images, the dense or sparse flows and the occlusion mask.
import Foundation
import Tensor

public enum PairAugment {
    /// Resize, scale jitter, crop, flips and swap as `config` says.
    public static func apply(_ config: PairAugmentConfig, to sample: inout FlowSample, using rng: inout RandomGenerator) throws {
        if let size = config.resize {
            guard size.count == 2, size[0] > 0, size[1] > 0 else {
                throw DataError(path: sample.id, reason: "resize must be [height, width], got \(size)")
            }
            sample = resize(sample, height: size[0], width: size[1])
        }
        if let scale = config.scale, rng.chance(scale.probability) {
            var sx = pow(2, rng.uniform(scale.minScale, scale.maxScale)), sy = sx
            if rng.chance(scale.stretchProbability) {
                sx *= pow(2, rng.uniform(-scale.stretch, scale.stretch))
                sy *= pow(2, rng.uniform(-scale.stretch, scale.stretch))
            }
            if let crop = config.crop, crop.count == 2 {
                let minScale = max(Double(crop[0] + 8) / Double(sample.height), Double(crop[1] + 8) / Double(sample.width))
                sx = max(sx, minScale)
                sy = max(sy, minScale)
            }
            let h = max(1, Int((Double(sample.height) * sy).rounded())), w = max(1, Int((Double(sample.width) * sx).rounded()))
            sample = resize(sample, height: h, width: w)
        }
        if let size = config.crop {
            guard size.count == 2, size[0] > 0, size[1] > 0 else {
                throw DataError(path: sample.id, reason: "crop must be [height, width], got \(size)")
            }
            guard size[0] <= sample.height, size[1] <= sample.width else {
                throw DataError(path: sample.id, reason: "crop \(size[0])×\(size[1]) is larger than the image (\(sample.height)×\(sample.width)); "
                                + "choose a smaller crop, or a pairAugment.scale with probability 1, which enlarges frames smaller than the crop")
            }
            let y = rng.int(below: sample.height - size[0] + 1), x = rng.int(below: sample.width - size[1] + 1)
            sample = crop(sample, y: y, x: x, height: size[0], width: size[1])
        }
        if rng.chance(config.hflip) { sample = flip(sample, horizontal: true) }
        if rng.chance(config.vflip) { sample = flip(sample, horizontal: false) }
        if rng.chance(config.swap) && (sample.flow == nil || sample.backwardFlow != nil) { sample = swapFrames(sample) }
    }

    /// The window of `sample` at (y, x) of size height × width.
    public static func crop(_ s: FlowSample, y: Int, x: Int, height: Int, width: Int) -> FlowSample {
        let w = s.width
        func planes(_ a: [Float], _ count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: count * height * width)
            for c in 0..<count {
                for r in 0..<height {
                    let src = c * s.height * w + (y + r) * w + x, dst = (c * height + r) * width
                    for k in 0..<width { out[dst + k] = a[src + k] }
                }
            }
            return out
        }
        func field(_ f: FlowField) -> FlowField { FlowField(width: width, height: height, uv: planes(f.uv, 2), valid: planes(f.valid, 1)) }
        var out = s
        out.image1 = RGBImage(width: width, height: height, pixels: planes(s.image1.pixels, 3))
        out.image2 = RGBImage(width: width, height: height, pixels: planes(s.image2.pixels, 3))
        out.flow = s.flow.map(field)
        out.backwardFlow = s.backwardFlow.map(field)
        out.occlusion = s.occlusion.map { planes($0, 1) }
        return out
    }

    /// Mirrors the pair left-right (`horizontal`) or upside down; the flow's u (or v) changes sign.
    public static func flip(_ s: FlowSample, horizontal: Bool) -> FlowSample {
        let w = s.width, h = s.height
        func planes(_ a: [Float], _ count: Int, negate: Int = -1) -> [Float] {
            var out = [Float](repeating: 0, count: a.count)
            a.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for c in 0..<count {
                        let sign: Float = c == negate ? -1 : 1
                        for y in 0..<h {
                            let o = dst.baseAddress! + (c * h + y) * w
                            if horizontal {
                                let i = src.baseAddress! + (c * h + y) * w + (w - 1)
                                for x in 0..<w { o[x] = sign * i[-x] }
                            } else {
                                let i = src.baseAddress! + (c * h + (h - 1 - y)) * w
                                for x in 0..<w { o[x] = sign * i[x] }
                            }
                        }
                    }
                }
            }
            return out
        }
        func field(_ f: FlowField) -> FlowField {
            FlowField(width: w, height: h, uv: planes(f.uv, 2, negate: horizontal ? 0 : 1), valid: planes(f.valid, 1))
        }
        var out = s
        out.image1.pixels = planes(s.image1.pixels, 3)
        out.image2.pixels = planes(s.image2.pixels, 3)
        out.flow = s.flow.map(field)
        out.backwardFlow = s.backwardFlow.map(field)
        out.occlusion = s.occlusion.map { planes($0, 1) }
        return out
    }

    /// Frame 2 becomes frame 1; forward and backward flow trade places. The occlusion mask
    /// (which belongs to frame 1) is dropped, since frame 2's is not known.
    public static func swapFrames(_ s: FlowSample) -> FlowSample {
        var out = s
        out.image1 = s.image2
        out.image2 = s.image1
        out.flow = s.backwardFlow
        out.backwardFlow = s.flow
        out.occlusion = nil
        return out
    }

    /// Resizes everything to height × width (bilinear, half-pixel centres). Flow is scaled by
    /// the size ratio. A dense flow is interpolated; a sparse one (some invalid pixels, KITTI) is
    /// re-splatted at rounded target positions like RAFT's sparse resize.
    public static func resize(_ s: FlowSample, height: Int, width: Int) -> FlowSample {
        if height == s.height && width == s.width { return s }
        var out = s
        out.image1 = RGBImage(width: width, height: height, pixels: resizePlanes(s.image1.pixels, 3, s.height, s.width, height, width))
        out.image2 = RGBImage(width: width, height: height, pixels: resizePlanes(s.image2.pixels, 3, s.height, s.width, height, width))
        out.flow = s.flow.map { resizeFlow($0, height: height, width: width) }
        out.backwardFlow = s.backwardFlow.map { resizeFlow($0, height: height, width: width) }
        out.occlusion = s.occlusion.map { m in
            var resized = resizePlanes(m, 1, s.height, s.width, height, width)
            threshold(&resized)
            return resized
        }
        return out
    }

    static func resizeFlow(_ f: FlowField, height: Int, width: Int) -> FlowField {
        let sx = Float(width) / Float(f.width), sy = Float(height) / Float(f.height)
        let n = f.planeSize, m = width * height
        if f.valid.allSatisfy({ $0 > 0 }) {
            var uv = resizePlanes(f.uv, 2, f.height, f.width, height, width)
            for i in 0..<m { uv[i] *= sx; uv[m + i] *= sy }
            return FlowField(width: width, height: height, uv: uv, valid: [Float](repeating: 1, count: m))
        }
        var uv = [Float](repeating: 0, count: 2 * m), valid = [Float](repeating: 0, count: m)
        for y in 0..<f.height {
            for x in 0..<f.width where f.valid[y * f.width + x] > 0 {
                let i = y * f.width + x
                let tx = Int((Float(x) * sx).rounded()), ty = Int((Float(y) * sy).rounded())
                guard tx >= 0, tx < width, ty >= 0, ty < height else { continue }
                let j = ty * width + tx
                uv[j] = f.uv[i] * sx
                uv[m + j] = f.uv[n + i] * sy
                valid[j] = 1
            }
        }
        return FlowField(width: width, height: height, uv: uv, valid: valid)
    }
}
