import Foundation
import Testing
@testable import FlowData
import Tensor

@Test func syntheticGeneratorIsDeterministicBySeed() throws {
    let a = TempDir(), b = TempDir(), c = TempDir()
    let config = SyntheticConfig(pairs: 3, height: 24, width: 32, seed: 7)
    try SyntheticDataset.generate(config, to: a.path, threads: 2)
    try SyntheticDataset.generate(config, to: b.path, threads: 1)
    var other = config
    other.seed = 8
    try SyntheticDataset.generate(other, to: c.path)
    let names = try FileManager.default.contentsOfDirectory(atPath: a.file("data")).sorted()
    #expect(names.count == 15)
    #expect(names.contains("00003_flow_bw.flo") && names.contains("00001_occ.png"))
    for name in names { #expect(fileBytes(a.file("data", name)) == fileBytes(b.file("data", name)), "\(name)") }
    #expect(fileBytes(a.file("data", "00001_img1.png")) != fileBytes(c.file("data", "00001_img1.png")))
}

@Test func syntheticGroundTruthAlignsFrame2OntoFrame1() {
    let config = SyntheticConfig(pairs: 1, height: 96, width: 128, seed: 11)
    for index in 0..<2 {
        let pair = SyntheticDataset.renderPair(config, index: index)
        let i1 = pair.rgbImage1(), i2 = pair.rgbImage2()
        let visible = { (i: Int) in pair.occlusion[i] == 0 }
        let aligned = warpError(i1, i2, flow: pair.forward, mask: visible)
        let unaligned = warpError(i1, i2, flow: [Float](repeating: 0, count: pair.forward.count), mask: visible)
        #expect(aligned < 0.02, "pair \(index): warp error \(aligned)")
        #expect(unaligned > 4 * aligned, "pair \(index): zero-flow error \(unaligned) vs \(aligned)")
        // The backward flow undoes the forward flow at visible pixels (nearest sampling, so
        // pixels on a layer boundary may land on the neighbouring layer: allow a few).
        let n = 96 * 128
        var checked = 0, mismatched = 0
        for y in 0..<96 {
            for x in 0..<128 where visible(y * 128 + x) {
                let i = y * 128 + x
                let tx = Int((Float(x) + pair.forward[i]).rounded()), ty = Int((Float(y) + pair.forward[n + i]).rounded())
                guard tx >= 0, tx < 128, ty >= 0, ty < 96 else { continue }
                let j = ty * 128 + tx
                checked += 1
                if max(abs(pair.forward[i] + pair.backward[j]), abs(pair.forward[n + i] + pair.backward[n + j])) > 1 { mismatched += 1 }
            }
        }
        #expect(checked > n / 2 && mismatched * 50 < checked, "forward-backward mismatch at \(mismatched) of \(checked) pixels")
    }
}

@Test func syntheticDisplacementsStayNearTheConfiguredMaximum() {
    let config = SyntheticConfig(pairs: 1, height: 64, width: 80, seed: 3)
    var largest: Float = 0
    for index in 0..<4 { largest = max(largest, SyntheticDataset.renderPair(config, index: index).forward.map(abs).max()!) }
    #expect(largest > 3 && largest < 30)
}

@Test func syntheticLayoutIsReadByTheChairsAdapter() throws {
    let dir = TempDir()
    var config = SyntheticConfig(pairs: 10, height: 16, width: 24, seed: 2)
    config.validationEvery = 5
    try SyntheticDataset.generate(config, to: dir.path)
    #expect(String(decoding: fileBytes(dir.file("split.txt")), as: UTF8.self) == "1\n1\n1\n1\n2\n1\n1\n1\n1\n2\n")
    #expect(try FlyingChairs(root: dir.path, split: .validation).pairs.map(\.id) == ["00005", "00010"])
    let sample = try FlyingChairs(root: dir.path, split: .train).pairs[0].load()
    let pair = SyntheticDataset.renderPair(config, index: 0)
    #expect(sample.flow?.uv == pair.forward && sample.backwardFlow?.uv == pair.backward)
    #expect(sample.occlusion == pair.occlusion.map { $0 > 0 ? 1 : 0 })
    #expect(sample.image1 == pair.rgbImage1())
}
