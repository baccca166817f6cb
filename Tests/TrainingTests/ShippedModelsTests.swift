import Testing
import Foundation
import Tensor
import NN
import FlowNets
import FlowData
import Training
import TestSupport

let modelsDir = Fixtures.packageRoot.appendingPathComponent("Models")

/// A textured pair whose second frame is the first moved by (dx, dy) pixels (default (3, −2)).
func translatedPair(height h: Int, width w: Int, dx: Int = 3, dy: Int = -2) -> (RGBImage, RGBImage) {
    var rng = RandomGenerator(seed: 21)
    let m = max(4, abs(dx), abs(dy))
    let config = LayeredConfig(pairs: 1, height: h + 2 * m, width: w + 2 * m, seed: rng.next())
    let big = LayeredDataset.renderPair(config, index: 0).rgbImage1()
    func window(_ ox: Int, _ oy: Int) -> RGBImage {
        var out = RGBImage(width: w, height: h)
        for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            out.pixels[(c * h + y) * w + x] = big.pixels[(c * (h + 2 * m) + y + m + oy) * (w + 2 * m) + x + m + ox]
        } } }
        return out
    }
    // Frame 2 at x shows frame 1 at x − (dx, dy): the content moved by (dx, dy).
    return (window(0, 0), window(-dx, -dy))
}

/// Mean (u, v) of a (1, 2, 128, 192) flow over its inner region (borders see content that left
/// the frame).
private func innerMeanFlow(_ flow: Tensor) -> (Double, Double) {
    var u = 0.0, v = 0.0, n = 0.0
    for y in 16..<112 { for x in 16..<176 { u += Double(flow.data[y * 192 + x]); v += Double(flow.data[128 * 192 + y * 192 + x]); n += 1 } }
    return (u / n, v / n)
}

/// The shipped teacher, loaded strictly, in inference mode.
private func shippedTeacher() throws -> FastFlowNet {
    let path = modelsDir.appendingPathComponent(ShippedModels.teacherFile).path
    try #require(FileManager.default.fileExists(atPath: path), "Models/\(ShippedModels.teacherFile) ships with the repository")
    let net = FastFlowNet()
    try net.load(SafeTensors.read(URL(fileURLWithPath: path)).tensors, source: path)
    net.setTraining(false)
    return net
}

@Suite struct ShippedModelsTests {
    @Test func shippedTeacherLoadsStrictlyAndFollowsATranslation() throws {
        let net = try shippedTeacher()
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
        let net = try shippedTeacher()
        let ra = try ImageFile.read(f1), rb = try ImageFile.read(f2)
        // `infer`'s default size is auto.
        let flow = net.predict(Tensor(shape: [1, 3, 96, 128], values: ra.pixels), Tensor(shape: [1, 3, 96, 128], values: rb.pixels),
                               scale: .auto)
        let worst = zip(written.uv, flow.toArray()).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-3, "largest difference from the library's flow \(worst)")
    }

    /// `auto` estimates again, enlarged, the pairs whose motion is small and keeps 1× for the
    /// others, sample by sample in a batch.
    @Test func autoScaleEnlargesOnlyTheSmallMotions() throws {
        let net = try shippedTeacher()
        let shape = [1, 3, 128, 192]
        let pairs = [translatedPair(height: 128, width: 192), translatedPair(height: 128, width: 192, dx: 16, dy: 6),
                     translatedPair(height: 128, width: 192, dx: 28, dy: 12)]
        let i1 = Tensor.concat(pairs.map { Tensor(shape: shape, values: $0.0.pixels) }, dim: 0)
        let i2 = Tensor.concat(pairs.map { Tensor(shape: shape, values: $0.1.pixels) }, dim: 0)
        let atOne = net.predict(i1, i2, scale: .fixed(1))
        let factors = InferenceScale.motionPercentile95(atOne).map { InferenceScale.autoFactor(p95: $0) }
        #expect(factors == [2, 1.5, 1], "factors \(factors) for motions of 3.6, 17 and 30 px")
        let auto = net.predict(i1, i2, scale: .auto)
        for (s, f) in factors.enumerated() {
            let one = { (x: Tensor) in x.slice(dim: 0, start: s, length: 1) }
            let expected = f == 1 ? one(atOne) : net.predict(one(i1), one(i2), scale: .fixed(f))
            #expect(one(auto).toArray() == expected.toArray(), "sample \(s) at \(f)×")
        }
        #expect(InferenceScale.autoFactor(p95: 0) == 2 && InferenceScale.autoFactor(p95: 16) == 1.5 && InferenceScale.autoFactor(p95: 25) == 1)
        #expect(InferenceScale(argument: "auto") == .auto && InferenceScale(argument: "1.5") == .fixed(1.5))
        #expect(InferenceScale(argument: "0") == nil && InferenceScale(argument: "9") == nil && InferenceScale(argument: "big") == nil)
    }
}
