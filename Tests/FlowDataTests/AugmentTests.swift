import Foundation
import Testing
@testable import FlowData
import Tensor

private func syntheticSample(seed: UInt64, height: Int = 96, width: Int = 128) -> FlowSample {
    let pair = SyntheticDataset.renderPair(SyntheticConfig(pairs: 1, height: height, width: width, seed: seed), index: 0)
    return FlowSample(id: "s", image1: pair.rgbImage1(), image2: pair.rgbImage2(), flow: pair.forwardFlow(),
                      backwardFlow: pair.backwardFlow(), occlusion: pair.occlusion.map { $0 > 0 ? 1 : 0 })
}

@Test func flipsNegateTheRightComponent() {
    var s = syntheticSample(seed: 1, height: 4, width: 5)
    let n = 20
    s.flow!.uv = (0..<n).map { Float($0) } + (0..<n).map { Float(100 + $0) }
    let h = PairAugment.flip(s, horizontal: true)
    // Pixel (y 1, x 0) comes from (1, 4), u negated, v kept.
    #expect(h.flow!.uv[5] == -9 && h.flow!.uv[n + 5] == 109)
    #expect(h.image1.pixels[5] == s.image1.pixels[9])
    let v = PairAugment.flip(s, horizontal: false)
    // Pixel (y 0, x 2) comes from (3, 2): u kept, v negated.
    #expect(v.flow!.uv[2] == 17 && v.flow!.uv[n + 2] == -117)
    #expect(v.backwardFlow!.uv[n + 2] == -s.backwardFlow!.uv[n + 17])
}

@Test func flippedAndSwappedPairsStillAlign() {
    let s = syntheticSample(seed: 4)
    for transformed in [PairAugment.flip(s, horizontal: true), PairAugment.flip(s, horizontal: false), PairAugment.swapFrames(s)] {
        let err = warpError(transformed.image1, transformed.image2, flow: transformed.flow!.uv) { _ in true }
        let base = warpError(transformed.image1, transformed.image2, flow: [Float](repeating: 0, count: 2 * 96 * 128)) { _ in true }
        #expect(err < base / 2, "aligned \(err) vs unaligned \(base)")
    }
}

@Test func spatialTransformKeepsThePairAligned() {
    var rng = RandomGenerator(seed: 5)
    for k in 0..<3 {
        let s = syntheticSample(seed: UInt64(20 + k))
        let t = SpatialAugment.sample(.sintel, width: 128, height: 96, using: &rng)
        let out = SpatialAugment.apply(t, to: s)
        let ok = { (i: Int) in out.flow!.valid[i] > 0 && out.occlusion![i] == 0 }
        let err = warpError(out.image1, out.image2, flow: out.flow!.uv, mask: ok)
        let before = warpError(s.image1, s.image2, flow: s.flow!.uv) { s.occlusion![$0] == 0 }
        let zero = warpError(out.image1, out.image2, flow: [Float](repeating: 0, count: 2 * 96 * 128), mask: ok)
        #expect(err < 0.03 && err < before * 2 + 0.005, "transformed warp error \(err), original \(before)")
        #expect(zero > 3 * err)
        // The backward flow was re-expressed too: it aligns frame 1 onto frame 2.
        let back = warpError(out.image2, out.image1, flow: out.backwardFlow!.uv) { out.backwardFlow!.valid[$0] > 0 }
        #expect(back < 0.05)
    }
}

@Test func spatialTransformLeavesNoEmptyBorders() {
    var rng = RandomGenerator(seed: 9)
    for _ in 0..<50 {
        let t = SpatialAugment.sample(.sintel, width: 64, height: 48, using: &rng)
        for map in [t.first.inverse, t.second.inverse] {
            for (x, y) in [(0.0, 0.0), (63, 0), (0, 47), (63, 47)] {
                let (sx, sy) = map.apply(x, y)
                #expect(sx >= -1e-6 && sx <= 63 + 1e-6 && sy >= -1e-6 && sy <= 47 + 1e-6)
            }
        }
    }
}

@Test func spatialTransformOnTensorsMatchesTheSampleVersion() {
    var rng = RandomGenerator(seed: 2)
    let s = syntheticSample(seed: 3, height: 24, width: 32)
    let t = SpatialAugment.sample(.kitti, width: 32, height: 24, using: &rng)
    let out = SpatialAugment.apply(t, to: s)
    let flow = Tensor(shape: [1, 2, 24, 32], values: s.flow!.uv)
    let (warped, valid) = SpatialAugment.warpFlow(flow, [t])
    #expect(warped.toArray() == out.flow!.uv && valid.toArray() == out.flow!.valid)
    let image = SpatialAugment.warpImages(Tensor(shape: [1, 3, 24, 32], values: s.image2.pixels), [t], frame: 2)
    #expect(image.toArray() == out.image2.pixels)
}

@Test func resizeScalesTheFlowAndCropCuts() {
    var s = FlowSample(id: "c", image1: testImage(width: 8, height: 6), image2: testImage(width: 8, height: 6, seed: 2),
                       flow: FlowField(width: 8, height: 6))
    for i in 0..<48 { s.flow!.uv[i] = 1.5; s.flow!.uv[48 + i] = -2 }
    let big = PairAugment.resize(s, height: 12, width: 24)
    #expect(big.flow!.uv[0] == 4.5 && big.flow!.uv[12 * 24] == -4)
    let cropped = PairAugment.crop(s, y: 1, x: 2, height: 3, width: 4)
    #expect(cropped.image1.pixels[0] == s.image1.pixels[1 * 8 + 2] && cropped.width == 4 && cropped.height == 3)
    // Sparse flow (KITTI) is re-splatted: no invalid neighbour is averaged in.
    var sparse = s
    for i in stride(from: 0, to: 48, by: 2) { sparse.flow!.valid[i] = 0; sparse.flow!.uv[i] = 0; sparse.flow!.uv[48 + i] = 0 }
    let half = PairAugment.resize(sparse, height: 3, width: 4)
    for i in 0..<12 where half.flow!.valid[i] > 0 { #expect(half.flow!.uv[i] == 0.75) }
}

@Test func photometricJitterIsSharedAcrossFramesAndStaysInRange() {
    var config = PhotometricConfig.raft
    config.hue = 0.1
    config.asymmetricProbability = 0
    config.gamma = [0.7, 1.5]
    config.blurProbability = 1
    var a = testImage(width: 16, height: 12), b = a
    var rng = RandomGenerator(seed: 4)
    PhotometricAugment.apply(config, to: &a, &b, using: &rng)
    #expect(a == b)
    #expect(a != testImage(width: 16, height: 12))
    config.noiseStd = 0.04
    PhotometricAugment.apply(config, to: &a, &b, using: &rng)
    #expect(a != b)
    #expect(a.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
}

@Test func eraserFillsFrame2WithItsMeanColour() {
    var config = EraserConfig()
    config.probability = 1
    config.minSize = 3
    config.maxSize = 4
    var image = testImage(width: 16, height: 12)
    let mean = image.pixels[0..<192].reduce(0, +) / 192
    var rng = RandomGenerator(seed: 1)
    PhotometricAugment.erase(config, image2: &image, using: &rng)
    #expect(image.pixels[0..<192].filter { abs($0 - mean) < 1e-6 }.count >= 6)
}

@Test func augmentationConfigsRoundTripThroughJSON() throws {
    // Partial configurations are decoded over their defaults by ConfigDecoding (TrainingTests).
    let roundTrip = try JSONDecoder().decode(AugmentationConfig.self, from: JSONEncoder().encode(benchmarkAugmentation))
    #expect(roundTrip == benchmarkAugmentation)
}

@Test func photometricOnBatchTensorsMatchesThePerImageVersion() {
    var config = PhotometricConfig.arflowSintel
    config.noiseStd = 0
    let image = testImage(width: 12, height: 8)
    let batch = Tensor(shape: [2, 3, 8, 12], values: image.pixels + image.pixels)
    var rngs = [RandomGenerator(seed: 6), RandomGenerator(seed: 9)]
    let (a, b) = PhotometricAugment.apply(config, image1: batch, image2: batch, using: &rngs)
    #expect(a.toArray() == b.toArray())
    #expect(batch.toArray() == image.pixels + image.pixels)  // inputs untouched
    var rng2 = RandomGenerator(seed: 6)
    var one = image, two = image
    PhotometricAugment.apply(config, to: &one, &two, using: &rng2)
    #expect(Array(a.toArray()[0..<(3 * 96)]) == one.pixels)
    // Each item draws from its own generator.
    var rng3 = RandomGenerator(seed: 9)
    var three = image, four = image
    PhotometricAugment.apply(config, to: &three, &four, using: &rng3)
    #expect(Array(a.toArray()[(3 * 96)...]) == three.pixels)
}

@Test func degenerateAffineMapsSampleNothingInsteadOfTrapping() {
    // A zero zoom makes the inverse map infinite or NaN; huge translations land far outside.
    let h = 4, w = 5, n = h * w
    let src = (0..<(2 * n)).map { Float($0 + 1) }
    let maps = [AffineMap(a: 0, b: 0, c: 0, d: 0, tx: 1, ty: 1).inverse,
                AffineMap(a: 1, b: 0, c: 0, d: 1, tx: 1e300, ty: -1e300),
                AffineMap(a: .nan, b: 0, c: 0, d: 1, tx: 0, ty: 0)]
    for m in maps {
        var out = [Float](repeating: -1, count: 2 * n)
        src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { affineWarpForward($0.baseAddress!, s.baseAddress!, channels: 2, height: h, width: w, map: m) }
        }
        #expect(out.allSatisfy { $0 == 0 }, "\(m)")
        var flow = [Float](repeating: -1, count: 2 * n), valid = [Float](repeating: -1, count: n)
        let ones = [Float](repeating: 1, count: n)
        src.withUnsafeBufferPointer { s in
            ones.withUnsafeBufferPointer { v in
                flow.withUnsafeMutableBufferPointer { f in
                    valid.withUnsafeMutableBufferPointer {
                        affineFlowForward(f.baseAddress!, $0.baseAddress!, s.baseAddress!, v.baseAddress!,
                                          height: h, width: w, sourceMap: m, targetMap: .identity)
                    }
                }
            }
        }
        #expect(valid.allSatisfy { $0 == 0 } && flow.allSatisfy { $0 == 0 }, "\(m)")
    }
}
