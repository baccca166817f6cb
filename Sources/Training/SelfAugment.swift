import Foundation
import Tensor
import FlowData

/// The random draws of one training step, defined per sample of the global batch, so that a batch
/// split over processes draws exactly what one process would: stream k of global sample g starts
/// from a generator of its own.
public struct StepRandomness {
    /// Drawn once per step from the run's generator (the same on every process).
    public let seed: UInt64
    /// Global batch index of this process's first sample, and how many samples it holds.
    public let first: Int, count: Int

    public init(seed: UInt64, first: Int, count: Int) { self.seed = seed; self.first = first; self.count = count }

    /// One generator per local sample for draw stream `stream` (the stage's separate uses of A).
    public func generators(stream: Int) -> [RandomGenerator] {
        (0..<count).map { i in
            RandomGenerator(seed: seed ^ (UInt64(first + i) &+ 1) &* 0x9E37_79B9_7F4A_7C15 ^ (UInt64(stream) &+ 1) &* 0xD1B5_4A32_D192_ED03)
        }
    }
}

/// MDFlow's "A": one random spatial transform per sample applied jointly to both frames and to
/// flow targets and masks (flow re-expressed exactly), then photometric jitter on the frames.
public struct SelfAugmentation {
    public let transforms: [ARTransform]
    public let image1: Tensor, image2: Tensor

    /// Draws each sample's transform and photometric parameters from its own generator in `rngs`
    /// and augments the frames.  image1, image2: (B, 3, H, W) in [0, 1]; rngs: B generators
    public init(_ spec: SelfAugmentSpec, image1 i1: Tensor, image2 i2: Tensor, rngs: [RandomGenerator]) {
        let h = i1.shape[2], w = i1.shape[3]
        var g = rngs
        transforms = g.indices.map { SpatialAugment.sample(spec.spatial, width: w, height: h, using: &g[$0]) }
        let a1 = SpatialAugment.warpImages(i1, transforms, frame: 1)
        let a2 = SpatialAugment.warpImages(i2, transforms, frame: 2)
        // Photometric jitter, the same draws for both frames of a pair.
        (image1, image2) = PhotometricAugment.apply(spec.photometric, image1: a1, image2: a2, using: &g)
    }

    /// A forward-flow target (B, 2, H, W) and its mask (B, 1, H, W) under the same transforms;
    /// the mask also drops pixels whose re-expressed flow is undefined.
    public func target(flow: Tensor, mask: Tensor) -> (flow: Tensor, mask: Tensor) {
        let (f, valid) = SpatialAugment.warpFlow(flow.detached(), transforms)
        let m = SpatialAugment.warpMask(mask.detached(), transforms, frame: 1)
        for i in 0..<m.count { m.data[i] *= valid.data[i] >= 0.5 ? 1 : 0 }
        return (f, m)
    }
}
