import Foundation
import Testing
@testable import FlowData
import Tensor

private func clean(_ config: LayeredConfig) -> LayeredConfig {
    var c = config
    c.photometric = false
    return c
}

@Test func layeredGeneratorIsDeterministicBySeedWhateverTheThreads() throws {
    let a = TempDir(), b = TempDir(), c = TempDir()
    let config = LayeredConfig(pairs: 3, height: 48, width: 64, seed: 7)
    try LayeredDataset.generate(config, to: a.path, threads: 2)
    try LayeredDataset.generate(config, to: b.path, threads: 1)
    var other = config
    other.seed = 8
    try LayeredDataset.generate(other, to: c.path)
    let names = try FileManager.default.contentsOfDirectory(atPath: a.file("data")).sorted()
    #expect(names.count == 18)
    #expect(names.contains("00003_flow_bw.flo") && names.contains("00001_occ.png") && names.contains("00002_occ_bw.png"))
    for name in names { #expect(fileBytes(a.file("data", name)) == fileBytes(b.file("data", name)), "\(name)") }
    #expect(fileBytes(a.file("data", "00001_img1.png")) != fileBytes(c.file("data", "00001_img1.png")))
    #expect(fileExists(a.file("layered.json")) && fileExists(a.file("split.txt")))
}

@Test func layeredGroundTruthAlignsFrame2OntoFrame1() {
    // Without photometric change, frame 2 warped by the exact flow reproduces frame 1 at visible
    // pixels up to bilinear interpolation of the sharp textures; with it, up to the added noise,
    // blur and exposure change, and still far below the error of zero flow.
    let config = LayeredConfig(pairs: 1, height: 96, width: 128, seed: 11)
    for (c, bound, margin) in [(clean(config), 0.03, 2.5), (config, 0.08, 1.5)] {
        for index in 0..<3 {
            let pair = LayeredDataset.renderPair(c, index: index)
            let visible = { (i: Int) in pair.occlusion[i] == 0 }
            let aligned = warpError(pair.rgbImage1(), pair.rgbImage2(), flow: pair.forward, mask: visible)
            let zero = warpError(pair.rgbImage1(), pair.rgbImage2(), flow: [Float](repeating: 0, count: pair.forward.count), mask: visible)
            #expect(aligned < bound, "pair \(index), photometric \(c.photometric): warp error \(aligned)")
            #expect(zero > margin * aligned, "pair \(index), photometric \(c.photometric): zero-flow error \(zero) against \(aligned)")
            // And the backward flow takes frame 1 onto frame 2 where frame 2 is visible in frame 1.
            let back = warpError(pair.rgbImage2(), pair.rgbImage1(), flow: pair.backward) { pair.occlusionBackward![$0] == 0 }
            #expect(back < bound, "pair \(index): backward warp error \(back)")
        }
    }
}

@Test func layeredOcclusionMatchesABruteForceLayerCheck() {
    var config = LayeredConfig(pairs: 1, height: 72, width: 96, seed: 5)
    config.minLayers = 6
    config.maxLayers = 10
    for index in 0..<3 {
        let scene = LayeredDataset.scene(config, index: index).0
        let pair = LayeredDataset.renderPair(config, index: index)
        let w = config.width, h = config.height, n = w * h
        // Every layer is tested directly (no bounding boxes): the nearest one whose shape holds a
        // point is the one seen there.
        func nearestFrame1(_ x: Double, _ y: Double) -> Int {
            (0..<scene.layers.count).last { scene.layers[$0].shape.contains(x, y) } ?? 0
        }
        func nearestFrame2(_ x: Double, _ y: Double) -> Int {
            (0..<scene.layers.count).last { k in
                let (px, py) = scene.layers[k].motion.inverse.apply(x, y)
                return scene.layers[k].shape.contains(px, py)
            } ?? 0
        }
        var occluded = 0, disagreements = 0
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                let k = nearestFrame1(Double(x), Double(y))
                let (qx, qy) = (Double(x) + Double(pair.forward[i]), Double(y) + Double(pair.forward[n + i]))
                let outside = qx < 0 || qy < 0 || qx > Double(w - 1) || qy > Double(h - 1)
                let hidden = outside || nearestFrame2(qx, qy) > k
                if hidden { occluded += 1 }
                if hidden != (pair.occlusion[i] > 0) { disagreements += 1 }
                let m = nearestFrame2(Double(x), Double(y))
                let (px, py) = (Double(x) + Double(pair.backward[i]), Double(y) + Double(pair.backward[n + i]))
                let unseen = px < 0 || py < 0 || px > Double(w - 1) || py > Double(h - 1) || nearestFrame1(px, py) > m
                if unseen != (pair.occlusionBackward![i] > 0) { disagreements += 1 }
            }
        }
        // The stored flow is Float; a point within rounding of a shape's edge may flip.
        #expect(disagreements <= 2, "pair \(index): \(disagreements) pixels disagree")
        #expect(occluded > 0 && occluded < n / 2, "pair \(index): \(occluded) occluded pixels")
    }
}

@Test func supersampledPairsAverageTheSceneAndKeepTheirGroundTruth() {
    var config = clean(LayeredConfig(pairs: 1, height: 48, width: 64, seed: 21))
    config.supersample = 2
    let k = config.supersample, w = config.width, h = config.height, n = w * h
    for index in 0..<2 {
        // Each output pixel is the mean of the k×k scene pixels under it.
        let scene = LayeredDataset.scene(config, index: index).0
        let big = scene.render(supersample: 1), small = scene.render(supersample: k)
        var worst: Float = 0
        for c in 0..<3 {
            for y in 0..<h {
                for x in 0..<w {
                    var sum: Float = 0
                    for sy in 0..<k { for sx in 0..<k { sum += big.image2[c * n * k * k + (y * k + sy) * w * k + x * k + sx] } }
                    worst = max(worst, abs(small.image2[c * n + y * w + x] - sum / Float(k * k)))
                }
            }
        }
        #expect(worst < 1e-5, "pair \(index): largest difference from the block mean \(worst)")
        // The flow, in output pixels, still carries frame 2 onto frame 1.
        let pair = LayeredDataset.renderPair(config, index: index)
        let visible = { (i: Int) in pair.occlusion[i] == 0 }
        let aligned = warpError(pair.rgbImage1(), pair.rgbImage2(), flow: pair.forward, mask: visible)
        let zero = warpError(pair.rgbImage1(), pair.rgbImage2(), flow: [Float](repeating: 0, count: pair.forward.count), mask: visible)
        #expect(aligned < 0.04 && zero > 2 * aligned, "pair \(index): warp error \(aligned), zero flow \(zero)")
    }
    for bad in [0, 5] {
        var c = config
        c.supersample = bad
        #expect(c.problems().contains { $0.hasPrefix("supersample") })
    }
}

@Test func layeredMotionsSpanSmallAndLarge() {
    let config = LayeredConfig(pairs: 1, height: 160, width: 224, seed: 9)
    var magnitudes: [Float] = []
    for index in 0..<12 {
        let p = LayeredDataset.renderPair(config, index: index)
        let n = config.width * config.height
        for i in stride(from: 0, to: n, by: 7) { magnitudes.append((p.forward[i] * p.forward[i] + p.forward[n + i] * p.forward[n + i]).squareRoot()) }
    }
    magnitudes.sort()
    let median = magnitudes[magnitudes.count / 2], top = magnitudes.last!
    // Camera (σ 1.5% of the width per axis) plus layers (up to 15%, drawn as u²).
    #expect(median > 1 && median < 0.1 * Float(config.width), "median \(median)")
    #expect(top > 0.06 * Float(config.width) && top < 0.35 * Float(config.width), "largest \(top)")
    #expect(magnitudes[magnitudes.count / 10] < 0.03 * Float(config.width), "10th percentile \(magnitudes[magnitudes.count / 10])")
}

@Test func layeredConfigRefusesImpossibleValues() {
    var c = LayeredConfig()
    c.maxShift = -1
    c.minLayers = 5
    c.maxLayers = 2
    let problems = c.problems()
    #expect(problems.contains { $0.hasPrefix("maxShift") } && problems.contains { $0.hasPrefix("layers") })
    #expect(throws: DataError.self) { try LayeredDataset.generate(c, to: TempDir().path) }
}
