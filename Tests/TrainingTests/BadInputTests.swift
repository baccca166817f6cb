import Testing
import Foundation
import Tensor
import FlowData
import Training
import TestSupport

/// Degenerate inputs: each is a clear error naming what to change, or a documented behaviour
/// (docs/reliability.md), never a crash.
@Suite struct BadInputTests {
    @Test func aCropLargerThanTheImageSaysHowToFixIt() throws {
        var sample = FlowSample(id: "tiny", image1: RGBImage(width: 16, height: 8), image2: RGBImage(width: 16, height: 8))
        var config = AugmentationConfig.none
        config.pair.crop = [64, 128]
        var rng = RandomGenerator(seed: 1)
        do {
            try config.apply(to: &sample, using: &rng)
            Issue.record("a 64×128 crop of a 8×16 image was accepted")
        } catch {
            #expect("\(error)".contains("tiny") && "\(error)".contains("larger than the image") && "\(error)".contains("pairAugment.scale"), "\(error)")
        }
        // With the scale augmentation at probability 1 the frame is enlarged to fit the crop.
        config.pair.scale = ScaleJitterConfig()
        config.pair.scale!.probability = 1
        try config.apply(to: &sample, using: &rng)
        #expect(sample.width == 128 && sample.height == 64)
    }

    @Test func aFolderWithOneFrameIsNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-one-frame-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try ImageFile.writePNG(RGBImage(width: 8, height: 8), to: dir.appendingPathComponent("0001.png").path)
        do {
            _ = try FramesFolder(root: dir.path)
            Issue.record("a folder of one frame was accepted")
        } catch {
            #expect("\(error)".contains(dir.path) && "\(error)".contains("at least 2 image files"), "\(error)")
        }
    }

    @Test func framesOfDifferentSizesNameBothFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-sizes-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.png").path, b = dir.appendingPathComponent("b.png").path
        try ImageFile.writePNG(RGBImage(width: 8, height: 8), to: a)
        try ImageFile.writePNG(RGBImage(width: 9, height: 8), to: b)
        do {
            _ = try FlowPair(id: "ab", image1: a, image2: b).load()
            Issue.record("frames of different sizes were accepted")
        } catch {
            #expect("\(error)".contains(a) && "\(error)".contains(b), "\(error)")
        }
    }

    @Test func aOnePixelPairGivesFiniteFlowOrANamedLimit() throws {
        let one = RGBImage(width: 1, height: 1, pixels: [0.5, 0.4, 0.3])
        let teacher = try FlowPredictor(arch: .fastflownet, weights: modelsDir.appendingPathComponent(ShippedModels.teacherFile).path)
        let flow = try teacher.predict(one, one, names: ("a", "b"))
        #expect(flow.width == 1 && flow.height == 1 && flow.uv.allSatisfy { $0.isFinite })
        let student = try FlowPredictor(arch: .raftSmall, weights: modelsDir.appendingPathComponent(ShippedModels.studentFile).path)
        do {
            _ = try student.predict(one, one, names: ("a.png", "b.png"))
            Issue.record("RAFT accepted a 1×1 pair")
        } catch {
            #expect("\(error)".contains("a.png") && "\(error)".contains("at least 57×57"), "\(error)")
        }
    }

    @Test func nonFiniteGroundTruthIsUnknownNotNaN() throws {
        // A 2×1 .flo whose first pixel is NaN and second is (1, 2).
        var bytes = Data()
        func f32(_ v: Float) { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        func i32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        f32(202021.25); i32(2); i32(1); f32(.nan); f32(.infinity); f32(1); f32(2)
        let field = try FlowFile.decode([UInt8](bytes), path: "gt.flo")
        #expect(field.valid == [0, 1])
        #expect(field.uv.allSatisfy { $0.isFinite })
    }
}
