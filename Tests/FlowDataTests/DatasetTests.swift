import Foundation
import Testing
@testable import FlowData
import Tensor

private func png(_ path: String, seed: UInt64 = 1, width: Int = 8, height: Int = 6) throws {
    try ImageFile.writePNG(testImage(width: width, height: height, seed: seed), to: path)
}

private func flo(_ path: String, width: Int = 8, height: Int = 6) throws {
    try FlowFile.writeFlo(randomFlow(width: width, height: height, seed: 5), to: path)
}

@Test func flyingChairsEnumeratesPairsAndSplits() throws {
    let dir = TempDir()
    let data = dir.mkdir("FlyingChairs_release", "data")
    for k in 1...3 {
        let stem = data + "/0000\(k)"
        try ImageFile.writePPM(testImage(width: 8, height: 6, seed: UInt64(k)), to: stem + "_img1.ppm")
        try ImageFile.writePPM(testImage(width: 8, height: 6, seed: UInt64(k + 10)), to: stem + "_img2.ppm")
        try flo(stem + "_flow.flo")
    }
    let root = dir.file("FlyingChairs_release")
    writeBytes(root + "/FlyingChairs_train_val.txt", Array("1\n2\n1\n".utf8))
    #expect(try FlyingChairs(root: root).pairs.map(\.id) == ["00001", "00002", "00003"])
    #expect(try FlyingChairs(root: root, split: .train).pairs.map(\.id) == ["00001", "00003"])
    #expect(try FlyingChairs(root: root, split: .validation).pairs.map(\.id) == ["00002"])
    let sample = try FlyingChairs(root: root).pairs[1].load()
    #expect(sample.flow?.width == 8 && sample.occlusion == nil && sample.backwardFlow == nil)
    writeBytes(root + "/FlyingChairs_train_val.txt", Array("1\n2\n".utf8))
    #expect(errorMessage { _ = try FlyingChairs(root: root, split: .train) } == root + "/FlyingChairs_train_val.txt: split file has 2 entries for 3 pairs in " + data)
}

@Test func sintelPairsFramesWithinScenesAndAppliesMasks() throws {
    let dir = TempDir()
    let root = dir.file("Sintel")
    for scene in ["alley_1", "market_6"] {
        let images = dir.mkdir("Sintel", "training", "final", scene)
        _ = dir.mkdir("Sintel", "training", "flow", scene)
        _ = dir.mkdir("Sintel", "training", "occlusions", scene)
        _ = dir.mkdir("Sintel", "training", "invalid", scene)
        for k in 1...3 { try png(images + "/frame_000\(k).png", seed: UInt64(k)) }
        for k in 1...2 {
            try flo(root + "/training/flow/\(scene)/frame_000\(k).flo")
            let mask = RawImage(width: 8, height: 6, channels: 1, maxValue: 255, samples: (0..<48).map { $0 == 3 ? 255 : 0 })
            try ImageFile.writePNG(mask, to: root + "/training/occlusions/\(scene)/frame_000\(k).png")
            let invalid = RawImage(width: 8, height: 6, channels: 1, maxValue: 255, samples: (0..<48).map { $0 == 7 ? 255 : 0 })
            try ImageFile.writePNG(invalid, to: root + "/training/invalid/\(scene)/frame_000\(k).png")
        }
    }
    let all = try Sintel(root: root, pass: .final)
    #expect(all.pairs.map(\.id) == ["alley_1/frame_0001", "alley_1/frame_0002", "market_6/frame_0001", "market_6/frame_0002"])
    #expect(all.pairs[1].image2.hasSuffix("alley_1/frame_0003.png"))
    #expect(try Sintel(root: root, pass: .final, split: .train).pairs.count == 2)
    #expect(try Sintel(root: root, pass: .final, split: .validation).pairs.allSatisfy { $0.id.hasPrefix("market_6") })
    let s = try all.pairs[0].load()
    #expect(s.occlusion?[3] == 1 && s.occlusion?[4] == 0)
    #expect(s.flow?.valid[7] == 0 && s.flow?.valid[6] == 1)
    #expect(errorMessage { _ = try Sintel(root: root, pass: .clean) } == root + "/training/clean: missing directory")
}

@Test func kittiEvaluationPairsReadOccAndNoc() throws {
    let dir = TempDir()
    let root = dir.file("KITTI2015")
    let images = dir.mkdir("KITTI2015", "training", "image_2")
    _ = dir.mkdir("KITTI2015", "training", "flow_occ")
    _ = dir.mkdir("KITTI2015", "training", "flow_noc")
    for seq in ["000000", "000001"] {
        try png(images + "/\(seq)_10.png")
        try png(images + "/\(seq)_11.png", seed: 2)
        var occ = randomFlow(width: 8, height: 6, seed: 9).rounded64()
        occ.valid[0] = 0; occ.uv[0] = 0; occ.uv[48] = 0
        try FlowFile.writeKITTI(occ, to: root + "/training/flow_occ/\(seq)_10.png")
        var noc = occ
        noc.valid[1] = 0; noc.uv[1] = 0; noc.uv[49] = 0
        try FlowFile.writeKITTI(noc, to: root + "/training/flow_noc/\(seq)_10.png")
    }
    let kitti = try KITTIFlow(root: root, year: .kitti2015)
    #expect(kitti.pairs.map(\.id) == ["000000_10", "000001_10"])
    let s = try kitti.pairs[0].load()
    #expect(s.flow?.valid[0] == 0 && s.flow?.valid[1] == 1)
    #expect(s.occlusion?[1] == 1 && s.occlusion?[0] == 0 && s.occlusion?[2] == 0)
}

extension FlowField {
    /// Values rounded to the KITTI grid (1/64 px).
    func rounded64() -> FlowField {
        var f = self
        f.uv = uv.map { ($0 * 64).rounded() / 64 }
        return f
    }
}

@Test func kittiMultiviewDropsPairsTouchingFrames9To12() throws {
    let dir = TempDir()
    for camera in ["colored_0", "colored_1"] {
        let d = dir.mkdir("KITTI2012", "training", camera)
        for f in 5...14 { try png(d + "/000007_\(f < 10 ? "0" : "")\(f).png") }
        try png(d + "/000008_00.png")
    }
    let mv = try KITTIMultiview(root: dir.file("KITTI2012"), year: .kitti2012)
    #expect(mv.pairs.map(\.id) == ["colored_0/000007_5", "colored_0/000007_6", "colored_0/000007_7", "colored_0/000007_13",
                                   "colored_1/000007_5", "colored_1/000007_6", "colored_1/000007_7", "colored_1/000007_13"])
    #expect(mv.pairs[3].image1.hasSuffix("000007_13.png") && mv.pairs[3].image2.hasSuffix("000007_14.png"))
    #expect(mv.pairs[0].image1.hasSuffix("000007_05.png"))
    #expect(try KITTIMultiview(root: dir.file("KITTI2012"), year: .kitti2012, cameras: [1]).pairs.count == 4)
}

@Test func middleburyFindsGroundTruthWhenPresent() throws {
    let dir = TempDir()
    for seq in ["Dimetrodon", "Walking"] {
        let d = dir.mkdir("Middlebury", "other-data", seq)
        try png(d + "/frame10.png")
        try png(d + "/frame11.png", seed: 2)
    }
    let gt = dir.mkdir("Middlebury", "other-gt-flow", "Dimetrodon")
    try flo(gt + "/flow10.flo")
    let m = try Middlebury(root: dir.file("Middlebury"))
    #expect(m.pairs.map(\.id) == ["Dimetrodon", "Walking"])
    #expect(m.pairs[0].flow != nil && m.pairs[1].flow == nil)
    #expect(try Middlebury(root: dir.file("Middlebury"), requireGroundTruth: true).pairs.count == 1)
}

@Test func framesFolderPairsConsecutiveFramesInNaturalOrder() throws {
    let dir = TempDir()
    let a = dir.mkdir("video", "a")
    for name in ["f1", "f2", "f10"] { try png(a + "/\(name).png") }
    let b = dir.mkdir("video", "b")
    try ImageFile.writeJPEG(testImage(width: 8, height: 6), to: b + "/x.jpg")
    try ImageFile.writeJPEG(testImage(width: 8, height: 6), to: b + "/y.jpg")
    try png(dir.file("video", "single.png"))
    writeBytes(dir.file("video", "notes.txt"), Array("hi".utf8))
    let frames = try FramesFolder(root: dir.file("video"))
    #expect(frames.pairs.map(\.id) == ["a/f1.png", "a/f2.png", "b/x.jpg"])
    #expect(frames.pairs[1].image2.hasSuffix("a/f10.png"))
    #expect(errorMessage { _ = try FramesFolder(root: dir.file("video"), recursive: false) }?.contains("no sequence with at least 2 image files") == true)
    #expect(errorMessage { _ = try FramesFolder(root: dir.file("nothing")) } == dir.file("nothing") + ": missing directory")
}

@Test func scanReportsEveryMissingOrUnreadableFile() throws {
    let dir = TempDir()
    var config = SyntheticConfig(pairs: 4, height: 16, width: 20, seed: 1)
    config.validationEvery = 0
    try SyntheticDataset.generate(config, to: dir.path)
    let data = dir.file("data")
    try FileManager.default.removeItem(atPath: data + "/00002_img2.png")
    truncate(data + "/00003_flow.flo", to: 30)
    writeBytes(data + "/00004_occ.png", [])
    let tail = fileBytes(data + "/00001_img1.png")
    writeBytes(data + "/00001_img1.png", Array(tail.prefix(tail.count - 20)))
    let dataset = try FlyingChairs(root: dir.path)
    let quick = scanDataset(dataset)
    #expect(quick.issues.map(\.path) == [data + "/00002_img2.png", data + "/00003_flow.flo", data + "/00004_occ.png"])
    #expect(quick.issues[0].reason == "cannot open (No such file or directory)")
    #expect(quick.issues[1].reason == "truncated .flo (expected 2572 bytes for 20×16, found 30)")
    #expect(quick.issues[2].reason == "empty file")
    let full = scanDataset(dataset, decode: true)
    #expect(full.issues.map(\.path) == [data + "/00001_img1.png"] + quick.issues.map(\.path))
    #expect(full.issues[0].reason.hasPrefix("truncated PNG") || full.issues[0].reason.hasPrefix("corrupt PNG"))
    #expect(full.description.contains("4 problem(s)"))
}
