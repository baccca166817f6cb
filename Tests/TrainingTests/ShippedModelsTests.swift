import Testing
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Training
import TestSupport

let modelsDir = Fixtures.packageRoot.appendingPathComponent("Models")

/// A textured pair whose second frame is the first moved by (3, −2) pixels.
func translatedPair(height h: Int, width w: Int) -> (RGBImage, RGBImage) {
    var rng = RandomGenerator(seed: 21)
    let config = LayeredConfig(pairs: 1, height: h + 8, width: w + 8, seed: rng.next())
    let big = LayeredDataset.renderPair(config, index: 0).rgbImage1()
    func window(_ dx: Int, _ dy: Int) -> RGBImage {
        var out = RGBImage(width: w, height: h)
        for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            out.pixels[(c * h + y) * w + x] = big.pixels[(c * (h + 8) + y + 4 + dy) * (w + 8) + x + 4 + dx]
        } } }
        return out
    }
    // Frame 2 at x shows frame 1 at x − (3, −2): the content moved by (3, −2).
    return (window(0, 0), window(-3, 2))
}

/// Mean (u, v) of a (1, 2, 128, 192) flow over its inner region (borders see content that left
/// the frame).
private func innerMeanFlow(_ flow: Tensor) -> (Double, Double) {
    var u = 0.0, v = 0.0, n = 0.0
    for y in 16..<112 { for x in 16..<176 { u += Double(flow.data[y * 192 + x]); v += Double(flow.data[128 * 192 + y * 192 + x]); n += 1 } }
    return (u / n, v / n)
}

@Suite struct ShippedModelsTests {
    @Test func shippedTeacherLoadsStrictlyAndFollowsATranslation() throws {
        let path = modelsDir.appendingPathComponent(ShippedModels.teacherFile).path
        try #require(FileManager.default.fileExists(atPath: path), "Models/\(ShippedModels.teacherFile) ships with the repository")
        let net = FastFlowNet()
        try net.load(SafeTensors.read(URL(fileURLWithPath: path)).tensors, source: path)
        net.setTraining(false)
        let (a, b) = translatedPair(height: 128, width: 192)
        let flow = Tape.noGrad {
            net.predict(Tensor(shape: [1, 3, 128, 192], values: a.pixels), Tensor(shape: [1, 3, 128, 192], values: b.pixels))
        }
        #expect(flow.isFinite)
        let (u, v) = innerMeanFlow(flow)
        #expect(abs(u - 3) < 0.5 && abs(v + 2) < 0.5, "mean flow (\(u), \(v)) for a (3, −2) translation")
        // At 1.5× the frames' size the input is 192×320 (multiples of 64 at or above), and the flow
        // comes back at the frames' size in their pixels.
        let i1 = Tensor(shape: [1, 3, 128, 192], values: a.pixels), i2 = Tensor(shape: [1, 3, 128, 192], values: b.pixels)
        #expect(Tape.noGrad { FastFlowNet.preprocess(i1, i2, scale: 1.5) }.shape == [1, 6, 192, 320])
        let scaled = Tape.noGrad { net.predict(i1, i2, scale: 1.5) }
        #expect(scaled.shape == [1, 2, 128, 192])
        let (su, sv) = innerMeanFlow(scaled)
        #expect(abs(su - 3) < 0.5 && abs(sv + 2) < 0.5, "mean flow (\(su), \(sv)) at scale 1.5")
    }

    /// The shipped student is the public RAFT-small (its authors' weights, converted to
    /// safetensors without the `module.` prefix): tensor for tensor the checkpoint in Tests/Fixtures,
    /// loading strictly and following a translation.
    @Test func shippedStudentIsThePublicRAFTSmallAndFollowsATranslation() throws {
        let path = modelsDir.appendingPathComponent(ShippedModels.studentFile).path
        try #require(FileManager.default.fileExists(atPath: path), "Models/\(ShippedModels.studentFile) ships with the repository")
        let shipped = try SafeTensors.read(URL(fileURLWithPath: path)).tensors
        let published = try TorchImport.read(Fixtures.checkpoint("raft-small.pth"))
        #expect(shipped.count == published.count)
        for (key, value) in published {
            let name = key.hasPrefix("module.") ? String(key.dropFirst(7)) : key
            #expect(shipped[name]?.toArray() == value.toArray(), "\(name) differs from the published checkpoint")
        }
        let net = RAFT(small: true)
        try net.load(shipped, source: path)
        net.setTraining(false)
        let (a, b) = translatedPair(height: 128, width: 192)
        let flow = Tape.noGrad {
            net.predict(Tensor(shape: [1, 3, 128, 192], values: a.pixels.map { $0 * 255 }),
                        Tensor(shape: [1, 3, 128, 192], values: b.pixels.map { $0 * 255 }), iters: 12)
        }
        let (u, v) = innerMeanFlow(flow)
        #expect(abs(u - 3) < 0.3 && abs(v + 2) < 0.3, "mean flow (\(u), \(v)) for a (3, −2) translation")
    }

    @Test(.enabled(if: Fixtures.mdflowExecutable != nil, "needs the mdflow executable beside the test bundle"))
    func inferWithoutWeightsUsesTheShippedTeacher() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-shipped-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (a, b) = translatedPair(height: 96, width: 128)
        let f1 = dir.appendingPathComponent("a.png").path, f2 = dir.appendingPathComponent("b.png").path
        let out = dir.appendingPathComponent("flow.flo").path
        try ImageFile.writePNG(a, to: f1)
        try ImageFile.writePNG(b, to: f2)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixtures.mdflowExecutable!)
        p.arguments = ["infer", f1, f2, "--out", out]
        p.currentDirectoryURL = dir                      // no Models/ here: found through MDFLOW_MODELS
        p.environment = ProcessInfo.processInfo.environment.merging(["MDFLOW_MODELS": modelsDir.path]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let written = try FlowFile.read(out)
        // The same flow as the library gives with the shipped weights on the decoded frames.
        let path = modelsDir.appendingPathComponent(ShippedModels.teacherFile).path
        let net = FastFlowNet()
        try net.load(SafeTensors.read(URL(fileURLWithPath: path)).tensors, source: path)
        net.setTraining(false)
        let ra = try ImageFile.read(f1), rb = try ImageFile.read(f2)
        let flow = Tape.noGrad {
            net.predict(Tensor(shape: [1, 3, 96, 128], values: ra.pixels), Tensor(shape: [1, 3, 96, 128], values: rb.pixels))
        }
        let worst = zip(written.uv, flow.toArray()).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-3, "largest difference from the library's flow \(worst)")
    }
}
