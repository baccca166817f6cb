import Foundation
import Testing
import Tensor
import NN
import FlowNets
import TestSupport

@Suite("FastFlowNet")
struct FastFlowNetTests {
    @Test func stateDictHasTheTorchKeysAndParameterCount() {
        let net = FastFlowNet()
        #expect(net.parameterCount == 1_366_114)
        let keys = Set(net.stateDict().keys)
        #expect(keys.count == 104)
        for k in ["pconv1_1.0.weight", "pconv3_3.0.bias", "rconv2.0.weight", "rconv6.0.bias", "up3.weight", "up6.bias",
                  "decoder2.conv1.0.weight", "decoder6.conv7.weight", "decoder4.conv4.0.bias"] {
            #expect(keys.contains(k), "missing \(k)")
        }
    }

    @Test func pyramidOutputsAndEveryGradientMatchPyTorch() throws {
        guard let weights = try Fixtures.net("fastflownet.weights"), let io = try Fixtures.net("fastflownet.io") else { return }
        let net = FastFlowNet()
        try net.load(weights, source: "fastflownet.weights")
        net.zeroGrad()
        let input = io["input"]!.clone()
        input.requiresGrad = true
        let t0 = Date()
        let flows = net(input)
        let names = ["flow2", "flow3", "flow4", "flow5", "flow6"]
        var report: [String] = []
        for (k, name) in names.enumerated() {
            #expect(flows[k].shape == io[name]!.shape)
            let e = relativeError(flows[k], io[name]!)
            WorstError.shared.note(e, name)
            report.append("\(name) \(e)")
            #expect(e <= 1e-4, "\(name): relative error \(e)")
        }
        Tape.backward(weightedSum(flows, names.map { io["g" + $0]! }))
        let gin = relativeError(input.grad!, io["ginput"]!)
        #expect(gin <= 1e-3, "ginput: relative error \(gin)")
        let worst = checkParameterGradients(net, io, tolerance: 1e-3)
        print("FastFlowNet parity: \(report.joined(separator: ", ")); ginput \(gin); worst parameter gradient \(worst.0) (\(worst.1)); \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
    }

    @Test func inferFlowIsTwentyTimesUpsampledFlow2() throws {
        var rng = RandomGenerator(seed: 3)
        let net = FastFlowNet()
        net.initialize(seed: 1)
        let x = Tensor.randn([1, 6, 64, 64], std: 0.2, using: &rng)
        let (flow2, full) = Tape.noGrad { (net(x)[0], net.inferFlow(x)) }
        #expect(full.shape == [1, 2, 64, 64])
        let expected = flow2.resizeBilinear(height: 64, width: 64, alignCorners: false) * 20
        #expect(relativeError(full, expected) < 1e-6)
    }

    @Test func mdflowPreprocessingSubtractsOneScalarAndResizesToMultiplesOf64() {
        var rng = RandomGenerator(seed: 4)
        let a = Tensor.rand([1, 3, 50, 70], using: &rng), b = Tensor.rand([1, 3, 50, 70], using: &rng)
        let x = Tape.noGrad { FastFlowNet.preprocess(a, b, convention: .mdflow) }
        #expect(x.shape == [1, 6, 64, 128])
        // Before resizing the mean over both frames is zero; bilinear resizing keeps it near zero.
        var mean = 0.0
        for v in a.toArray() + b.toArray() { mean += Double(v) }
        mean /= Double(2 * a.count)
        let same = Tape.noGrad { FastFlowNet.preprocess(a.resizeBilinear(height: 64, width: 128, alignCorners: false),
                                                        b.resizeBilinear(height: 64, width: 128, alignCorners: false)) }
        #expect(same.shape == [1, 6, 64, 128])
        let first = x.data[0], original = a.resizeBilinear(height: 64, width: 128, alignCorners: false).data[0]
        #expect(abs(Double(first) - (Double(original) - mean)) < 1e-5)
    }

    @Test func supervisedPreprocessingIsBGRMinusPerChannelMeans() {
        let a = Tensor(shape: [1, 3, 1, 2], values: [1, 2, 10, 20, 100, 200])
        let b = Tensor(shape: [1, 3, 1, 2], values: [3, 4, 30, 40, 300, 400])
        let x = Tape.noGrad { FastFlowNet.preprocess(a, b, convention: .supervised) }
        // Before resizing: B channel first, mean 250; G mean 25; R mean 2.5.
        let small = Tape.noGrad { () -> Tensor in
            let r = FastFlowNet.preprocess(a, b, convention: .supervised)
            return r
        }
        #expect(small.shape == [1, 6, 64, 64])
        // Resizing a 1×2 plane up keeps values within the plane's range; the B plane of frame 1
        // holds -150 and -50.
        let plane = Array(x.toArray()[0..<4096])
        #expect(plane.min()! >= -150.001 && plane.max()! <= -49.999)
    }

    @Test func resizeFlowScalesComponentsBySizeRatio() {
        let f = Tensor.full([1, 2, 64, 128], 1)
        let r = FastFlowNet.resizeFlow(f, height: 32, width: 32)
        #expect(r.shape == [1, 2, 32, 32])
        #expect(abs(r.data[0] - 0.25) < 1e-6)
        #expect(abs(r.data[32 * 32] - 0.5) < 1e-6)
    }
}
