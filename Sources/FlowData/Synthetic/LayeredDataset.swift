// The layered synthetic dataset on disk, in the FlyingChairs layout that `FlyingChairs(root:)`
// reads: data/NNNNN_img1.png, _img2.png, _flow.flo, _flow_bw.flo, _occ.png, _occ_bw.png, and
// split.txt; plus layered.json (the config).
import Foundation
import Tensor

public enum LayeredDataset {
    /// Renders pair `index` (0-based) of the dataset `config` describes, in memory.
    public static func renderPair(_ config: LayeredConfig, index: Int) -> SyntheticPair {
        let (layers, drawn) = Self.scene(config, index: index)
        var rng = drawn
        var (image1, image2, forward, backward, occ1, occ2) = layers.render(supersample: config.supersample)
        PairPhotometrics(config: config, rng: &rng).apply(&image1, &image2, height: config.height, width: config.width, rng: &rng)
        let n = config.width * config.height
        func bytes(_ planes: [Float]) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 3 * n)
            for i in 0..<n { for c in 0..<3 { out[3 * i + c] = UInt8((ImageFile.unitClamp(planes[c * n + i]) * 255).rounded()) } }
            return out
        }
        return SyntheticPair(width: config.width, height: config.height, image1: bytes(image1), image2: bytes(image2),
                             forward: forward, backward: backward, occlusion: occ1.map { $0 * 255 },
                             occlusionBackward: occ2.map { $0 * 255 })
    }

    /// The scene of pair `index` (at supersample× the output size), and the generator state after
    /// drawing it (the photometric change draws from it next).
    static func scene(_ config: LayeredConfig, index: Int) -> (LayeredScene, RandomGenerator) {
        var rng = RandomGenerator(seed: config.seed &* 0xA24B_AED4_963E_E407 &+ UInt64(index) &* 0x9FB2_1C65_1E98_DF25 &+ 0x2545_F491)
        var sceneConfig = config
        sceneConfig.width *= config.supersample
        sceneConfig.height *= config.supersample
        let scene = LayeredScene(config: sceneConfig, rng: &rng)
        return (scene, rng)
    }

    /// Writes `config.pairs` pairs into `directory` on `threads` threads (the bytes do not depend on
    /// the thread count). `progress` is called from worker threads with the pairs done so far.
    public static func generate(_ config: LayeredConfig, to directory: String, threads: Int = Runtime.threads,
                                progress: (@Sendable (Int) -> Void)? = nil) throws {
        let problems = config.problems()
        if !problems.isEmpty { throw DataError(path: directory, reason: "invalid layered config: " + problems.joined(separator: "; ")) }
        try SyntheticDataset.writePairs(config, to: directory, threads: threads, configFile: "layered.json",
                                        progress: progress) { renderPair(config, index: $0) }
    }
}
