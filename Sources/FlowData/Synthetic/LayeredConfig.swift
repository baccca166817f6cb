// Configuration of the layered scene generator (LayeredScene.swift): FlyingChairs/AutoFlow-style
// scenes of many textured layers over a background, each layer moving on its own on top of a global
// camera motion, with photometric change between the frames.
import Foundation

/// What `LayeredDataset.generate` writes. Lengths are fractions of the image width, angles degrees.
public struct LayeredConfig: Codable, Sendable, Equatable, GeneratedPairsConfig {
    /// Number of image pairs.
    public var pairs = 2000
    public var height = 320
    public var width = 448
    /// Same seed → identical bytes, whatever the thread count.
    public var seed: UInt64 = 0
    /// Foreground layers per pair (inclusive range).
    public var minLayers = 4
    public var maxLayers = 10
    /// Largest translation of a layer relative to the camera. Magnitudes are drawn as
    /// maxShift · u² (u uniform), so small motions are as common as in real video.
    public var maxShift = 0.15
    /// Camera motion: translation (standard deviation), rotation and zoom (standard deviations),
    /// each clipped at three deviations.
    public var cameraShift = 0.015
    public var cameraRotation = 1.5
    public var cameraZoom = 0.03
    /// Largest rotation and zoom of a layer relative to the camera.
    public var layerRotation = 12.0
    public var layerZoom = 0.1
    /// Photometric change between the frames (brightness, contrast, gamma, white balance), sensor
    /// noise and defocus blur.
    public var photometric = true
    /// Largest noise standard deviation (intensities in [0, 1]) and blur σ (pixels).
    public var maxNoise = 0.02
    public var maxBlur = 1.2
    /// Render each pair at supersample× the size and average supersample² scene pixels into each
    /// output pixel (1: one sample at the pixel centre). Lengths are fractions of the size, but
    /// the textures' scales are in scene pixels, so k > 1 gives k× finer, antialiased detail, as a
    /// camera that integrates over its pixels sees it; the cost grows as k².
    public var supersample = 1
    /// Every `validationEvery`-th pair is in the validation split; 0: all training.
    public var validationEvery = 10
    /// zlib level of the PNGs.
    public var compression = 1

    public init() {}

    public init(pairs: Int = 2000, height: Int = 320, width: Int = 448, seed: UInt64 = 0) {
        self.pairs = pairs
        self.height = height
        self.width = width
        self.seed = seed
    }

    /// Problems with the values, as "key: reason" lines (empty when usable).
    public func problems() -> [String] {
        var p = layoutProblems(minSide: 32, maxLayerCount: 64)
        for (key, v, hi) in [("maxShift", maxShift, 1.0), ("cameraShift", cameraShift, 0.5), ("cameraRotation", cameraRotation, 45),
                             ("cameraZoom", cameraZoom, 0.3), ("layerRotation", layerRotation, 90), ("layerZoom", layerZoom, 0.5),
                             ("maxNoise", maxNoise, 0.5), ("maxBlur", maxBlur, 10)] where !(v >= 0 && v <= hi) {
            p.append("\(key): must be in [0, \(hi)], got \(v)")
        }
        if !(1...4).contains(supersample) { p.append("supersample: must be 1-4, got \(supersample)") }
        return p
    }
}
