// Configurations whose every key has a default. Their Codable conformance is the synthesized one;
// a recipe or config file names only what differs, and `ConfigDecoding` (Training) lays it over
// `init()` before decoding, so missing keys never need hand-written decoders.

/// A configuration value whose `init()` gives every key its documented default. An optional
/// property or an array element of such a type takes `init()` as the defaults under what a
/// user writes for it.
public protocol DefaultConfig: Codable {
    init()
}

extension ScaleJitterConfig: DefaultConfig {}
extension PairAugmentConfig: DefaultConfig {}
extension SpatialTransformConfig: DefaultConfig {}
extension PhotometricConfig: DefaultConfig {}
extension EraserConfig: DefaultConfig {}
extension AugmentationConfig: DefaultConfig {}
extension VideoOptions: DefaultConfig {}
extension LoaderConfig: DefaultConfig {}
extension LayeredConfig: DefaultConfig {}
extension SyntheticConfig: DefaultConfig {}
