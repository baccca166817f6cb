// The augmentation settings of a recipe: pair transforms, spatial transform, photometric, eraser,
// each a `DefaultConfig` whose missing keys take the documented defaults, and
// `AugmentationConfig.apply`, which runs the stages in order with the `RandomGenerator` passed in.
import Foundation
import Tensor

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
}

/// RAFT's occlusion eraser: with `probability`, 1…`maxCount` rectangles with sides
/// in [minSize, maxSize] pixels in frame 2, filled with frame 2's mean colour.
public struct EraserConfig: Codable, Sendable, Equatable {
    public var probability: Double = 0.5
    public var minSize: Int = 50
    public var maxSize: Int = 100
    public var maxCount: Int = 2

    public init() {}
}

/// Everything the loader applies to one sample, in this order: pair transforms, spatial
/// transform, photometric, eraser. A nil stage is skipped.
public struct AugmentationConfig: Codable, Sendable, Equatable {
    public var pair: PairAugmentConfig = PairAugmentConfig()
    public var spatial: SpatialTransformConfig? = nil
    public var photometric: PhotometricConfig? = nil
    public var eraser: EraserConfig? = nil

    public init() {}

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
