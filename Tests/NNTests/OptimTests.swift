import Testing
import Foundation
import Tensor
import NN

/// PyTorch's Adam/AdamW formulas evaluated step by step in Double, for comparison.
private func referenceAdam(p0: [Double], grads: [[Double]], lr: Double, b1: Double, b2: Double, eps: Double,
                           wd: Double, decoupled: Bool) -> [Double] {
    var p = p0, m = [Double](repeating: 0, count: p0.count), v = m
    for (t, g0) in grads.enumerated() {
        let step = Double(t + 1)
        for i in 0..<p.count {
            var g = g0[i]
            if !decoupled && wd != 0 { g += wd * p[i] }
            if decoupled { p[i] *= 1 - lr * wd }
            m[i] = m[i] + (1 - b1) * (g - m[i])
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
            p[i] -= (lr / bc1) * m[i] / (v[i].squareRoot() / bc2.squareRoot() + eps)
        }
    }
    return p
}

@Suite struct OptimTests {
    func run(decoupled: Bool, wd: Float, eps: Float) -> (got: [Float], want: [Double]) {
        var rng = RandomGenerator(seed: 21)
        let p = Tensor.randn([17], using: &rng)
        p.requiresGrad = true
        let p0 = p.toArray().map(Double.init)
        let opt = Adam([.init([("p", p)], weightDecay: wd)], lr: 1e-2, betas: (0.9, 0.999), eps: eps, decoupled: decoupled)
        var grads: [[Double]] = []
        for _ in 0..<5 {
            let g = Tensor.randn([17], using: &rng)
            p.setGrad(g)
            grads.append(g.toArray().map(Double.init))
            opt.update()
        }
        let want = referenceAdam(p0: p0, grads: grads, lr: 1e-2, b1: 0.9, b2: 0.999, eps: Double(eps), wd: Double(wd), decoupled: decoupled)
        return (p.toArray(), want)
    }

    @Test func adamReproducesPyTorchUpdates() {
        let (got, want) = run(decoupled: false, wd: 1e-2, eps: 1e-7)
        for i in 0..<got.count { #expect(abs(Double(got[i]) - want[i]) <= 1e-6 * max(1, abs(want[i])), "element \(i)") }
    }

    @Test func adamWReproducesPyTorchUpdates() {
        let (got, want) = run(decoupled: true, wd: 1e-1, eps: 1e-8)
        for i in 0..<got.count { #expect(abs(Double(got[i]) - want[i]) <= 1e-6 * max(1, abs(want[i])), "element \(i)") }
    }

    @Test func firstAdamStepMovesEachWeightByLearningRate() {
        // With bias correction the first step is lr·g/(|g| + eps·…) ≈ lr·sign(g).
        let p = Tensor(shape: [3], values: [1, 2, 3], requiresGrad: true)
        p.setGrad(Tensor(shape: [3], values: [0.5, -2, 4]))
        let opt = Adam([.init([("p", p)])], lr: 0.1, eps: 1e-8)
        opt.update()
        let got = p.toArray()
        #expect(abs(got[0] - 0.9) < 1e-6 && abs(got[1] - 2.1) < 1e-6 && abs(got[2] - 2.9) < 1e-6)
    }

    @Test func optimizerStateRoundTripsExactly() throws {
        let p = Tensor(shape: [4], values: [1, 2, 3, 4], requiresGrad: true)
        let q = p.clone(); q.requiresGrad = true
        let a = Adam([.init([("p", p)])], lr: 0.01, decoupled: true)
        let b = Adam([.init([("p", q)])], lr: 0.01, decoupled: true)
        for k in 0..<3 {
            p.setGrad(Tensor.full([4], Float(k) + 0.5)); a.update()
        }
        let (state, step) = a.stateDict()
        q.copy(from: p)
        try b.load(state, step: step, source: "test")
        p.setGrad(Tensor.full([4], -1)); q.setGrad(Tensor.full([4], -1))
        a.update(); b.update()
        #expect(p.toArray() == q.toArray())
    }

    @Test func clipGradNormScalesToTheLimit() {
        let a = Tensor(shape: [2], values: [0, 0], requiresGrad: true)
        let b = Tensor(shape: [1], values: [0], requiresGrad: true)
        a.setGrad(Tensor(shape: [2], values: [3, 0])); b.setGrad(Tensor(shape: [1], values: [4]))
        let norm = clipGradNorm([a, b], maxNorm: 1)
        #expect(norm == 5)
        let ga = a.grad!.toArray(), gb = b.grad!.toArray()
        #expect(abs(ga[0] - 0.6) < 1e-5 && abs(gb[0] - 0.8) < 1e-5)
        // Below the limit nothing changes.
        #expect(clipGradNorm([a, b], maxNorm: 10) < 1.0001)
        #expect(abs(a.grad!.toArray()[0] - 0.6) < 1e-5)
    }

    @Test func oneCycleFollowsPyTorchPhases() {
        // RAFT: OneCycleLR(max 4e-4, total 200, pct_start 0.05, linear): warm-up ends at step 9.
        let s = OneCycleLR(maxLR: 4e-4, totalSteps: 200, pctStart: 0.05)
        #expect(abs(s.lr(at: 0) - 1.6e-5) < 1e-12)
        #expect(abs(s.lr(at: 9) - 4e-4) < 1e-12)
        #expect(abs(s.lr(at: 199) - 1.6e-9) < 1e-12)
        let mid = 4e-4 + (Double(104 - 9) / Double(199 - 9)) * (1.6e-9 - 4e-4)
        #expect(abs(s.lr(at: 104) - mid) < 1e-12)
        #expect(StepLR(base: 1, stepSize: 10, gamma: 0.5).lr(at: 25) == 0.25)
        #expect(ConstantLR(3).lr(at: 1000) == 3)
    }
}

@Suite struct ModuleTests {
    final class Tiny: Module {
        let conv = Conv2d(2, 3, kernel: 3, padding: 1)
        let up = ConvTranspose2d(3, 2, kernel: 4, stride: 2, padding: 1)
        var children: [(String, any Module)] { [("conv", conv), ("up", up)] }
    }

    @Test func keysFollowPyTorchAndLoadChecksThem() throws {
        let m = Tiny()
        #expect(m.namedParameters().map(\.0) == ["conv.weight", "conv.bias", "up.weight", "up.bias"])
        #expect(m.parameterCount == 3 * 2 * 9 + 3 + 3 * 2 * 16 + 2)
        let state = m.stateDict().mapValues { $0.clone() }
        state["conv.weight"]!.data[0] = 42
        let prefixed = Dictionary(uniqueKeysWithValues: state.map { ("module." + $0.key, $0.value) })
        try m.load(prefixed, source: "mem")
        #expect(m.conv.weight.data[0] == 42)

        var bad = state
        bad.removeValue(forKey: "up.bias")
        bad["extra.weight"] = Tensor.zeros([1])
        bad["conv.bias"] = Tensor.zeros([4])
        do {
            try m.load(bad, source: "bad.safetensors")
            Issue.record("load accepted bad weights")
        } catch {
            let text = "\(error)"
            #expect(text.contains("bad.safetensors") && text.contains("up.bias") && text.contains("extra.weight") && text.contains("conv.bias"))
        }
    }

    @Test func safetensorsRoundTripsAndNamesTheFileOnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mdflow-st-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.safetensors")
        let t = ["w": Tensor(shape: [2, 3], values: [1, -2, 3.5, 4, 5, .pi]), "b": Tensor(shape: [1], values: [7])]
        try SafeTensors.serialize(t, metadata: ["k": "v"]).write(to: url)
        let (back, meta) = try SafeTensors.read(url)
        #expect(back["w"]!.toArray() == t["w"]!.toArray() && back["w"]!.shape == [2, 3])
        #expect(back["b"]!.item == 7 && meta["k"] == "v")

        let bad = dir.appendingPathComponent("bad.safetensors")
        try Data([1, 2, 3]).write(to: bad)
        #expect(throws: WeightsError.self) { try SafeTensors.read(bad) }
        do { _ = try SafeTensors.read(dir.appendingPathComponent("missing.safetensors")) }
        catch { #expect("\(error)".contains("missing.safetensors")) }
    }

    @Test func halfPrecisionTensorsReadAsFloat() throws {
        // Header for one F16 and one BF16 tensor, hand-written.
        let header = #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}"#
        var bytes = Data()
        var len = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: [0x00, 0x3C, 0x00, 0xC0])   // F16 1.0, −2.0
        bytes.append(contentsOf: [0x40, 0x40])               // BF16 3.0
        let (t, _) = try SafeTensors.parse(bytes, name: "mem")
        #expect(t["h"]!.toArray() == [1, -2])
        #expect(t["b"]!.toArray() == [3])
    }
}
