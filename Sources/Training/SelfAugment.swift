import Foundation
import Tensor
import FlowData

/// MDFlow's "A": one random spatial transform per sample applied jointly to both frames and to
/// flow targets and masks (flow re-expressed exactly), then photometric jitter on the frames.
public struct SelfAugmentation {
    public let transforms: [ARTransform]
    public let image1: Tensor, image2: Tensor

    /// Draws transforms and photometric parameters from `rng` and augments the frames.
    /// image1, image2: (B, 3, H, W) in [0, 1]
    public init(_ spec: SelfAugmentSpec, image1 i1: Tensor, image2 i2: Tensor, rng: inout RandomGenerator) {
        let b = i1.shape[0], h = i1.shape[2], w = i1.shape[3]
        transforms = (0..<b).map { _ in SpatialAugment.sample(spec.spatial, width: w, height: h, using: &rng) }
        let a1 = SpatialAugment.warpImages(i1, transforms, frame: 1)
        let a2 = SpatialAugment.warpImages(i2, transforms, frame: 2)
        // Photometric jitter, the same draws for both frames of a pair.
        (image1, image2) = PhotometricAugment.apply(spec.photometric, image1: a1, image2: a2, using: &rng)
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
