// Augmentation: pair-level crop/flips/swap/resize/scale jitter, ARFlow's spatial
// transform with the flow re-expressed exactly, photometric jitter (ColorJitter semantics, gamma,
// blur, noise) and RAFT's eraser. Every draw comes from the `RandomGenerator` passed in; every
// parameter sits in a Codable struct whose missing keys take the documented defaults.
import Foundation
import Tensor

// MARK: configuration

/// Random zoom before cropping (RAFT augmentor): scale = 2^U(minScale, maxScale),
/// each axis further stretched by 2^U(−stretch, stretch) with `stretchProbability`, the whole
/// applied with `probability`, and clipped so the image stays at least crop + 8.
public struct ScaleJitterConfig: Codable, Sendable, Equatable {
    public var probability: Double = 0.8
    public var minScale: Double = -0.2
    public var maxScale: Double = 0.6
    public var stretch: Double = 0.2
    public var stretchProbability: Double = 0.8

    public init() {}

    enum CodingKeys: String, CodingKey { case probability, minScale, maxScale, stretch, stretchProbability }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        probability = try c.decodeIfPresent(Double.self, forKey: .probability) ?? d.probability
        minScale = try c.decodeIfPresent(Double.self, forKey: .minScale) ?? d.minScale
        maxScale = try c.decodeIfPresent(Double.self, forKey: .maxScale) ?? d.maxScale
        stretch = try c.decodeIfPresent(Double.self, forKey: .stretch) ?? d.stretch
        stretchProbability = try c.decodeIfPresent(Double.self, forKey: .stretchProbability) ?? d.stretchProbability
    }
}

/// Pair-level ("co-") transforms, applied in this order: resize, scale jitter, crop, flips, swap.
/// Defaults are ARFlow's: h-flip 0.5, frame-order swap 0.5, no v-flip.
public struct PairAugmentConfig: Codable, Sendable, Equatable {
    /// Fixed resize [height, width] (bilinear, half-pixel centres); ARFlow KITTI: [256, 832].
    public var resize: [Int]? = nil
    public var scale: ScaleJitterConfig? = nil
    /// Random crop [height, width]; ARFlow Sintel: [384, 832].
    public var crop: [Int]? = nil
    public var hflip: Double = 0.5
    public var vflip: Double = 0
    /// Probability of swapping the frames. A sample with forward flow but no backward flow is
    /// never swapped (its ground truth would be wrong).
    public var swap: Double = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey { case resize, scale, crop, hflip, vflip, swap }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        resize = try c.decodeIfPresent([Int].self, forKey: .resize)
        scale = try c.decodeIfPresent(ScaleJitterConfig.self, forKey: .scale)
        crop = try c.decodeIfPresent([Int].self, forKey: .crop)
        hflip = try c.decodeIfPresent(Double.self, forKey: .hflip) ?? d.hflip
        vflip = try c.decodeIfPresent(Double.self, forKey: .vflip) ?? d.vflip
        swap = try c.decodeIfPresent(Double.self, forKey: .swap) ?? d.swap
    }
}

/// ARFlow's spatial transform for the self-supervision pass, in normalized
/// coordinates ([−1, 1], align_corners=True). Each pair of numbers is a (min, max) range; the
/// first pair is the global transform, the second the relative transform of frame 2.
/// Defaults are ARFlow's Sintel values; the relative rotation is sampled from its range
/// (not ARFlow's fixed rotate[2]).
public struct SpatialTransformConfig: Codable, Sendable, Equatable {
    /// [T, T_rel]: translations ~ U(−T/2, T/2) per axis.
    public var translate: [Double] = [0.2, 0.015]
    public var zoom: [Double] = [1.0, 1.5, 0.985, 1.015]
    public var squeeze: [Double] = [0.86, 1.16, 1.0, 1.0]
    /// Radians.
    public var rotate: [Double] = [-0.2, 0.2, -0.015, 0.015]
    public var hflip: Bool = true
    public var vflip: Bool = true
    /// Rejection-sampling attempts before falling back to the identity.
    public var maxTries: Int = 100

    public init() {}

    /// ARFlow's Sintel configuration (the default).
    public static let sintel = SpatialTransformConfig()

    /// ARFlow's KITTI configuration.
    public static var kitti: SpatialTransformConfig {
        var c = SpatialTransformConfig()
        c.translate = [0.04, 0.005]
        c.zoom = [1.0, 1.4, 0.99, 1.01]
        c.squeeze = [1, 1, 1, 1]
        c.rotate = [-0.01, 0.01, -0.01, 0.01]
        c.vflip = false
        return c
    }

    enum CodingKeys: String, CodingKey { case translate, zoom, squeeze, rotate, hflip, vflip, maxTries }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        translate = try c.decodeIfPresent([Double].self, forKey: .translate) ?? d.translate
        zoom = try c.decodeIfPresent([Double].self, forKey: .zoom) ?? d.zoom
        squeeze = try c.decodeIfPresent([Double].self, forKey: .squeeze) ?? d.squeeze
        rotate = try c.decodeIfPresent([Double].self, forKey: .rotate) ?? d.rotate
        hflip = try c.decodeIfPresent(Bool.self, forKey: .hflip) ?? d.hflip
        vflip = try c.decodeIfPresent(Bool.self, forKey: .vflip) ?? d.vflip
        maxTries = try c.decodeIfPresent(Int.self, forKey: .maxTries) ?? d.maxTries
    }

    /// "key: reason" lines for impossible values (empty when usable).
    public func problems() -> [String] {
        var p: [String] = []
        if translate.count != 2 { p.append("translate: needs 2 values, got \(translate.count)") }
        for (key, v) in [("zoom", zoom), ("squeeze", squeeze), ("rotate", rotate)] where v.count != 4 {
            p.append("\(key): needs 4 values, got \(v.count)")
        }
        if zoom.count == 4 && zoom.contains(where: { $0 <= 0 }) { p.append("zoom: values must be positive") }
        if squeeze.count == 4 && squeeze.contains(where: { $0 <= 0 }) { p.append("squeeze: values must be positive") }
        if maxTries < 1 { p.append("maxTries: must be at least 1") }
        return p
    }
}

/// Photometric augmentation. ColorJitter follows torchvision: brightness,
/// contrast and saturation factors ~ U(max(0, 1 − x), 1 + x), hue shift ~ U(−hue, hue) (in turns,
/// at most 0.5), applied in a random order. Then gamma ~ U(gamma) (if set), Gaussian blur with
/// `blurProbability` and σ ~ U(0, blurRadius), additive noise σ ~ U(0, noiseStd), clamped to
/// [0, 1]. The same parameters go to both frames unless the `asymmetricProbability` draw says
/// otherwise. Defaults: ARFlow Sintel (brightness/contrast/saturation 0.5, hue 0, gamma
/// 0.7-1.5, blur p 0.5 radius 3, noise 0.04).
public struct PhotometricConfig: Codable, Sendable, Equatable {
    public var brightness: Double = 0.5
    public var contrast: Double = 0.5
    public var saturation: Double = 0.5
    public var hue: Double = 0
    public var gamma: [Double]? = [0.7, 1.5]
    public var blurProbability: Double = 0.5
    public var blurRadius: Double = 3
    public var noiseStd: Double = 0.04
    public var asymmetricProbability: Double = 0

    public init() {}

    public static let arflowSintel = PhotometricConfig()

    /// ARFlow KITTI: brightness 0.5 only (blur and noise kept, no gamma).
    public static var arflowKITTI: PhotometricConfig {
        var c = PhotometricConfig()
        c.contrast = 0; c.saturation = 0; c.gamma = nil
        return c
    }

    /// RAFT's augmentor: ColorJitter(0.4, 0.4, 0.4, 0.5/π), asymmetric with p 0.2, nothing else.
    public static var raft: PhotometricConfig {
        var c = PhotometricConfig()
        c.brightness = 0.4; c.contrast = 0.4; c.saturation = 0.4; c.hue = 0.5 / Double.pi
        c.gamma = nil; c.blurProbability = 0; c.noiseStd = 0; c.asymmetricProbability = 0.2
        return c
    }

    enum CodingKeys: String, CodingKey {
        case brightness, contrast, saturation, hue, gamma, blurProbability, blurRadius, noiseStd, asymmetricProbability
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        brightness = try c.decodeIfPresent(Double.self, forKey: .brightness) ?? d.brightness
        contrast = try c.decodeIfPresent(Double.self, forKey: .contrast) ?? d.contrast
        saturation = try c.decodeIfPresent(Double.self, forKey: .saturation) ?? d.saturation
        hue = try c.decodeIfPresent(Double.self, forKey: .hue) ?? d.hue
        gamma = c.contains(.gamma) ? try c.decodeIfPresent([Double].self, forKey: .gamma) : d.gamma
        blurProbability = try c.decodeIfPresent(Double.self, forKey: .blurProbability) ?? d.blurProbability
        blurRadius = try c.decodeIfPresent(Double.self, forKey: .blurRadius) ?? d.blurRadius
        noiseStd = try c.decodeIfPresent(Double.self, forKey: .noiseStd) ?? d.noiseStd
        asymmetricProbability = try c.decodeIfPresent(Double.self, forKey: .asymmetricProbability) ?? d.asymmetricProbability
    }
}

/// RAFT's occlusion eraser: with `probability`, 1…`maxCount` rectangles with sides
/// in [minSize, maxSize] pixels in frame 2, filled with frame 2's mean colour.
public struct EraserConfig: Codable, Sendable, Equatable {
    public var probability: Double = 0.5
    public var minSize: Int = 50
    public var maxSize: Int = 100
    public var maxCount: Int = 2

    public init() {}

    enum CodingKeys: String, CodingKey { case probability, minSize, maxSize, maxCount }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self()
        probability = try c.decodeIfPresent(Double.self, forKey: .probability) ?? d.probability
        minSize = try c.decodeIfPresent(Int.self, forKey: .minSize) ?? d.minSize
        maxSize = try c.decodeIfPresent(Int.self, forKey: .maxSize) ?? d.maxSize
        maxCount = try c.decodeIfPresent(Int.self, forKey: .maxCount) ?? d.maxCount
    }
}

/// Everything the loader applies to one sample, in this order: pair transforms, spatial
/// transform, photometric, eraser. A nil stage is skipped.
public struct AugmentationConfig: Codable, Sendable, Equatable {
    public var pair: PairAugmentConfig = PairAugmentConfig()
    public var spatial: SpatialTransformConfig? = nil
    public var photometric: PhotometricConfig? = nil
    public var eraser: EraserConfig? = nil

    public init(pair: PairAugmentConfig = PairAugmentConfig(), spatial: SpatialTransformConfig? = nil,
                photometric: PhotometricConfig? = nil, eraser: EraserConfig? = nil) {
        self.pair = pair
        self.spatial = spatial
        self.photometric = photometric
        self.eraser = eraser
    }

    /// No augmentation at all (validation).
    public static var none: AugmentationConfig {
        var c = AugmentationConfig()
        c.pair.hflip = 0
        c.pair.swap = 0
        return c
    }

    enum CodingKeys: String, CodingKey { case pair, spatial, photometric, eraser }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pair = try c.decodeIfPresent(PairAugmentConfig.self, forKey: .pair) ?? PairAugmentConfig()
        spatial = try c.decodeIfPresent(SpatialTransformConfig.self, forKey: .spatial)
        photometric = try c.decodeIfPresent(PhotometricConfig.self, forKey: .photometric)
        eraser = try c.decodeIfPresent(EraserConfig.self, forKey: .eraser)
    }

    /// Applies every configured stage to `sample`.
    public func apply(to sample: inout FlowSample, using rng: inout RandomGenerator) throws {
        try PairAugment.apply(pair, to: &sample, using: &rng)
        if let spatial {
            let t = SpatialAugment.sample(spatial, width: sample.width, height: sample.height, using: &rng)
            sample = SpatialAugment.apply(t, to: sample)
        }
        if let photometric { PhotometricAugment.apply(photometric, to: &sample.image1, &sample.image2, using: &rng) }
        if let eraser { PhotometricAugment.erase(eraser, image2: &sample.image2, using: &rng) }
    }
}

// MARK: pair-level transforms

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

// MARK: spatial transform (ARFlow)

/// The sampled spatial transform of one pair, as content maps in pixel coordinates: a point p of
/// source frame k appears at `first.apply(p)` (k = 1) or `second.apply(p)` (k = 2) in the output.
public struct ARTransform: Sendable, Codable, Equatable {
    public var first: AffineMap
    public var second: AffineMap
    public var width: Int
    public var height: Int

    public init(first: AffineMap, second: AffineMap, width: Int, height: Int) {
        self.first = first
        self.second = second
        self.width = width
        self.height = height
    }

    public static func identity(width: Int, height: Int) -> ARTransform {
        ARTransform(first: .identity, second: .identity, width: width, height: height)
    }
}

/// p ↦ [[a, b], [c, d]]·p + (tx, ty).
public struct AffineMap: Sendable, Codable, Equatable {
    public var a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double

    public init(a: Double, b: Double, c: Double, d: Double, tx: Double, ty: Double) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.tx = tx; self.ty = ty
    }

    public static let identity = AffineMap(a: 1, b: 0, c: 0, d: 1, tx: 0, ty: 0)

    @inline(__always) public func apply(_ x: Double, _ y: Double) -> (Double, Double) {
        (a * x + b * y + tx, c * x + d * y + ty)
    }

    public var inverse: AffineMap {
        let det = a * d - b * c
        let ia = d / det, ib = -b / det, ic = -c / det, id = a / det
        return AffineMap(a: ia, b: ib, c: ic, d: id, tx: -(ia * tx + ib * ty), ty: -(ic * tx + id * ty))
    }

    /// self ∘ other: first `other`, then `self`.
    public func after(_ o: AffineMap) -> AffineMap {
        AffineMap(a: a * o.a + b * o.c, b: a * o.b + b * o.d, c: c * o.a + d * o.c, d: c * o.b + d * o.d,
                  tx: a * o.tx + b * o.ty + tx, ty: c * o.tx + d * o.ty + ty)
    }
}

public enum SpatialAugment {
    /// One transform per batch item.
    public static func sample(_ config: SpatialTransformConfig, count: Int, width: Int, height: Int,
                              using rng: inout RandomGenerator) -> [ARTransform] {
        (0..<count).map { _ in sample(config, width: width, height: height, using: &rng) }
    }

    /// Draws a transform for a width × height pair: global zoom/squeeze/rotation/translation for
    /// frame 1, composed with a relative one for frame 2, resampled until the four output corners
    /// of both frames map inside their source (no empty borders), then mirrored at random.
    public static func sample(_ config: SpatialTransformConfig, width: Int, height: Int,
                              using rng: inout RandomGenerator) -> ARTransform {
        precondition(config.problems().isEmpty, "SpatialTransformConfig: " + config.problems().joined(separator: "; "))
        func draw(_ range: ArraySlice<Double>, _ rng: inout RandomGenerator) -> Double {
            rng.uniform(range[range.startIndex], range[range.startIndex + 1])
        }
        func matrix(zoom z: Double, squeeze s: Double, angle: Double, tx: Double, ty: Double) -> AffineMap {
            let sx = z * s, sy = z / s
            return AffineMap(a: cos(angle) * sx, b: sin(angle) * sy, c: -sin(angle) * sx, d: cos(angle) * sy, tx: tx, ty: ty)
        }
        // Normalized ([−1, 1], align_corners=True) ↔ pixels.
        let w1 = Double(max(width - 1, 1)), h1 = Double(max(height - 1, 1))
        let toNormal = AffineMap(a: 2 / w1, b: 0, c: 0, d: 2 / h1, tx: -1, ty: -1)
        let toPixel = toNormal.inverse
        func inside(_ m: AffineMap) -> Bool {
            let inv = m.inverse
            for (x, y) in [(-1.0, -1.0), (1, -1), (-1, 1), (1, 1)] {
                let (sx, sy) = inv.apply(x, y)
                if abs(sx) > 1 + 1e-9 || abs(sy) > 1 + 1e-9 { return false }
            }
            return true
        }
        var first = AffineMap.identity, second = AffineMap.identity
        for _ in 0..<config.maxTries {
            let t = config.translate[0] / 2, tr = config.translate[1] / 2
            let global = matrix(zoom: draw(config.zoom[0...1], &rng), squeeze: draw(config.squeeze[0...1], &rng),
                                angle: draw(config.rotate[0...1], &rng), tx: rng.uniform(-t, t), ty: rng.uniform(-t, t))
            let relative = matrix(zoom: draw(config.zoom[2...3], &rng), squeeze: draw(config.squeeze[2...3], &rng),
                                  angle: draw(config.rotate[2...3], &rng), tx: rng.uniform(-tr, tr), ty: rng.uniform(-tr, tr))
            let composed = relative.after(global)
            if inside(global) && inside(composed) {
                first = global
                second = composed
                break
            }
        }
        let hflip = config.hflip && rng.chance(0.5), vflip = config.vflip && rng.chance(0.5)
        let mirror = AffineMap(a: hflip ? -1 : 1, b: 0, c: 0, d: vflip ? -1 : 1, tx: 0, ty: 0)
        first = mirror.after(first)
        second = mirror.after(second)
        return ARTransform(first: toPixel.after(first).after(toNormal), second: toPixel.after(second).after(toNormal),
                           width: width, height: height)
    }

    /// Applies `t` to images, flows and the occlusion mask of `sample`.
    public static func apply(_ t: ARTransform, to s: FlowSample) -> FlowSample {
        precondition(t.width == s.width && t.height == s.height, "ARTransform for \(t.width)×\(t.height) applied to \(s.width)×\(s.height)")
        let w = s.width, h = s.height, n = w * h
        var out = s
        out.image1.pixels = warp(s.image1.pixels, channels: 3, width: w, height: h, outputToSource: t.first.inverse)
        out.image2.pixels = warp(s.image2.pixels, channels: 3, width: w, height: h, outputToSource: t.second.inverse)
        out.flow = s.flow.map { warpFlow($0, sourceMap: t.first.inverse, targetMap: t.second) }
        out.backwardFlow = s.backwardFlow.map { warpFlow($0, sourceMap: t.second.inverse, targetMap: t.first) }
        out.occlusion = s.occlusion.map { m in
            var warped = warp(m, channels: 1, width: w, height: h, outputToSource: t.first.inverse)
            threshold(&warped)
            return warped
        }
        _ = n
        return out
    }

    /// Bilinear resampling of (channels, H, W) planes: out(y) = src(outputToSource(y)), zero outside.
    public static func warp(_ src: [Float], channels: Int, width: Int, height: Int, outputToSource m: AffineMap) -> [Float] {
        var out = [Float](repeating: 0, count: src.count)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                affineWarpForward(o.baseAddress!, s.baseAddress!, channels: channels, height: height, width: width, map: m)
            }
        }
        return out
    }

    /// The flow re-expressed in the transformed frames: for output pixel y of frame 1,
    /// s = sourceMap(y) (its source position), F'(y) = targetMap(s + F(s)) − y, with F(s)
    /// sampled bilinearly. Valid where s is inside and every contributing source pixel is valid.
    public static func warpFlow(_ f: FlowField, sourceMap: AffineMap, targetMap: AffineMap) -> FlowField {
        var uv = [Float](repeating: 0, count: f.uv.count), valid = [Float](repeating: 0, count: f.valid.count)
        f.uv.withUnsafeBufferPointer { u in
            f.valid.withUnsafeBufferPointer { v in
                uv.withUnsafeMutableBufferPointer { o in
                    valid.withUnsafeMutableBufferPointer { ov in
                        affineFlowForward(o.baseAddress!, ov.baseAddress!, u.baseAddress!, v.baseAddress!,
                                          height: f.height, width: f.width, sourceMap: sourceMap, targetMap: targetMap)
                    }
                }
            }
        }
        return FlowField(width: f.width, height: f.height, uv: uv, valid: valid)
    }

    // MARK: batch tensors (for the trainer: teacher predictions and masks)

    /// Frame `frame` (1 or 2) of a batch (B, C, H, W) under per-item transforms.
    public static func warpImages(_ x: Tensor, _ transforms: [ARTransform], frame: Int) -> Tensor {
        require(x.rank == 4 && x.shape[0] == transforms.count, "SpatialAugment.warpImages", "batch \(describe(x.shape)) with \(transforms.count) transforms")
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: x.shape)
        for i in 0..<b {
            let m = (frame == 1 ? transforms[i].first : transforms[i].second).inverse
            affineWarpForward(out.data + i * c * h * w, x.data + i * c * h * w, channels: c, height: h, width: w, map: m)
        }
        return out
    }

    /// A forward (frame 1 → 2) or backward (`backward: true`, frame 2 → 1) flow batch (B, 2, H, W)
    /// re-expressed under the transforms. Returns the flow and its validity (B, 1, H, W).
    public static func warpFlow(_ flow: Tensor, _ transforms: [ARTransform], backward: Bool = false,
                                valid: Tensor? = nil) -> (flow: Tensor, valid: Tensor) {
        require(flow.rank == 4 && flow.shape[1] == 2 && flow.shape[0] == transforms.count, "SpatialAugment.warpFlow",
                "flow \(describe(flow.shape)) with \(transforms.count) transforms")
        let (b, h, w) = (flow.shape[0], flow.shape[2], flow.shape[3])
        let out = Tensor(uninitialized: flow.shape), outValid = Tensor(uninitialized: [b, 1, h, w])
        let ones = valid == nil ? Tensor.ones([h * w]) : nil
        for i in 0..<b {
            let t = transforms[i]
            let source = backward ? t.second.inverse : t.first.inverse, target = backward ? t.first : t.second
            let v = valid.map { $0.data + i * h * w } ?? ones!.data
            affineFlowForward(out.data + i * 2 * h * w, outValid.data + i * h * w, flow.data + i * 2 * h * w, v,
                              height: h, width: w, sourceMap: source, targetMap: target)
        }
        return (out, outValid)
    }

    /// A mask batch (B, 1, H, W) of frame `frame`, resampled and thresholded at 0.5.
    public static func warpMask(_ mask: Tensor, _ transforms: [ARTransform], frame: Int = 1) -> Tensor {
        let out = warpImages(mask, transforms, frame: frame)
        let p = out.data
        for i in 0..<out.count { p[i] = p[i] >= 0.5 ? 1 : 0 }
        return out
    }
}

// MARK: photometric

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

    /// Photometric augmentation of a batch pair (B, 3, H, W), in [0, 1]: new tensors, each item
    /// with its own draws (shared by its two frames unless the asymmetric draw says otherwise).
    public static func apply(_ c: PhotometricConfig, image1: Tensor, image2: Tensor,
                             using rng: inout RandomGenerator) -> (Tensor, Tensor) {
        require(image1.rank == 4 && image1.shape[1] == 3 && image1.shape == image2.shape, "PhotometricAugment.apply",
                "frames \(describe(image1.shape)) and \(describe(image2.shape)) must both be (B, 3, H, W)")
        let out1 = image1.clone(), out2 = image2.clone()
        let (b, h, w) = (image1.shape[0], image1.shape[2], image1.shape[3])
        for i in 0..<b {
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
        do {
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

// MARK: kernels (raw buffers)

/// Sets every value to 1 where it is at least 0.5, else 0 (resampled masks).
func threshold(_ a: inout [Float]) {
    a.withUnsafeMutableBufferPointer { p in
        for i in p.indices { p[i] = p[i] >= 0.5 ? 1 : 0 }
    }
}

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
