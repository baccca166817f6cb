import Foundation
import Testing
import Tensor
import NN
import FlowNets
import TestSupport

@Suite("RAFT")
struct RAFTTests {
    @Test func parameterCountsMatchThePublishedNets() {
        #expect(RAFT(small: true).parameterCount == 990_162)
        #expect(RAFT(small: false).parameterCount == 5_257_536)
    }

    @Test func fullRAFTStateDictListsTheStridedNormTwice() {
        let keys = Set(RAFT(small: false).stateDict().keys)
        for k in ["cnet.layer2.0.norm3.weight", "cnet.layer2.0.downsample.1.weight", "cnet.layer2.0.downsample.1.running_var",
                  "cnet.norm1.num_batches_tracked", "update_block.mask.2.weight", "update_block.gru.convq2.weight"] {
            #expect(keys.contains(k), "missing \(k)")
        }
        #expect(!keys.contains("fnet.norm1.weight"))
    }

    @Test func smallFlowAfterEveryIterationAndEveryGradientMatchPyTorch() throws {
        guard let weights = try Fixtures.net("raft_small.weights"), let io = try Fixtures.net("raft_small.io") else { return }
        if fixtureIsBroken(io) { return }
        let net = RAFT(small: true)
        try net.load(weights, source: "raft_small.weights")
        net.zeroGrad()
        let t0 = Date()
        let out = net(io["image1"]!, io["image2"]!, iters: 3)
        #expect(out.predictions.count == 3)
        var report: [String] = []
        for k in 0..<3 {
            let e = relativeError(out.predictions[k], io["flow_iter\(k)"]!)
            WorstError.shared.note(e, "raft_small flow_iter\(k)")
            report.append("iter\(k) \(e)")
            #expect(e <= 1e-4, "flow_iter\(k): relative error \(e)")
        }
        Tape.backward(weightedSum(out.predictions, (0..<3).map { io["gflow_iter\($0)"]! }))
        let worst = checkParameterGradients(net, io, tolerance: 1e-3)
        print("RAFT-small parity: \(report.joined(separator: ", ")); worst parameter gradient \(worst.0) (\(worst.1)); \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
    }

    @Test func fullFlowWithFrozenBatchNormMatchesPyTorchAfterEveryIteration() throws {
        guard let weights = try Fixtures.net("raft_full.weights"), let io = try Fixtures.net("raft_full.io") else { return }
        if fixtureIsBroken(io) { return }
        let net = RAFT(small: false)
        try net.load(weights, source: "raft_full.weights")
        net.freezeBatchNorm()
        let runningBefore = net.cnet.layer1.blocks[0].namedBuffers().first { $0.0 == "norm1.running_mean" }!.1.clone()
        let t0 = Date()
        let out = Tape.noGrad { net(io["image1"]!, io["image2"]!, iters: 3) }
        var report: [String] = []
        for k in 0..<3 {
            let e = relativeError(out.predictions[k], io["flow_iter\(k)"]!)
            WorstError.shared.note(e, "raft_full flow_iter\(k)")
            report.append("iter\(k) \(e)")
            #expect(e <= 1e-4, "flow_iter\(k): relative error \(e)")
        }
        let runningAfter = net.cnet.layer1.blocks[0].namedBuffers().first { $0.0 == "norm1.running_mean" }!.1
        #expect(relativeError(runningAfter, runningBefore) == 0, "frozen BatchNorm must not update its statistics")
        print("RAFT-full parity: \(report.joined(separator: ", ")); \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
    }

    @Test func predictionsAreDetachedAcrossIterationsExceptThroughTheHiddenState() throws {
        // With a seed only on the first prediction, the second iteration's Δflow gets no gradient:
        // its flow head's last bias gradient equals the first iteration's contribution alone.
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        var rng = RandomGenerator(seed: 5)
        let a = Tensor.rand([1, 3, 64, 64], 0, 255, using: &rng), b = Tensor.rand([1, 3, 64, 64], 0, 255, using: &rng)
        net.zeroGrad()
        let one = net(a, b, iters: 1)
        Tape.backward(one.predictions[0].sum())
        let g1 = net.updateBlock.flowHead.conv2.bias!.grad!.clone()
        net.zeroGrad()
        let two = net(a, b, iters: 2)
        Tape.backward(two.predictions[0].sum())
        let g2 = net.updateBlock.flowHead.conv2.bias!.grad!
        #expect(relativeError(g2, g1) < 1e-5)
    }

    @Test func warmStartFromZeroEqualsColdStartAndANonzeroInitMovesTheLookup() {
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        var rng = RandomGenerator(seed: 6)
        let a = Tensor.rand([1, 3, 64, 72], 0, 255, using: &rng), b = Tensor.rand([1, 3, 64, 72], 0, 255, using: &rng)
        let cold = Tape.noGrad { net(a, b, iters: 2) }
        let zero = Tape.noGrad { net(a, b, iters: 2, flowInit: Tensor.zeros([1, 2, 8, 9])) }
        #expect(relativeError(zero.lowResolution, cold.lowResolution) == 0)
        let shift = Tensor.full([1, 2, 8, 9], 1.5)
        let warm = Tape.noGrad { net(a, b, iters: 2, flowInit: shift) }
        #expect(relativeError(warm.lowResolution, cold.lowResolution) > 0.01)
        #expect(warm.flow.shape == [1, 2, 64, 72])
    }

    @Test func paddingIsReplicateSplitEvenlyAndUnpadRestoresTheSize() {
        let p = InputPadder(height: 61, width: 95)
        #expect(p.top == 1 && p.bottom == 2 && p.left == 0 && p.right == 1)
        let x = Tensor.rand([1, 3, 61, 95], using: &RandomGenerator.shared)
        let padded = p.pad(x)
        #expect(padded.shape == [1, 3, 64, 96])
        #expect(padded.data[0] == x.data[0])
        #expect(relativeError(p.unpad(padded), x) == 0)
    }

    @Test func predictReturnsTheFramesSize() {
        let net = RAFT(small: true)
        net.initialize(seed: 2)
        let a = Tensor.full([1, 3, 60, 75], 100), b = Tensor.full([1, 3, 60, 75], 100)
        let f = net.predict(a, b, iters: 2)
        #expect(f.shape == [1, 2, 60, 75])
        #expect(f.isFinite)
    }
}

/// The RAFT fixtures in ../shared/reference/nets were computed at 64×96: the coarsest correlation
/// level is then 1×1, and PyTorch's RAFT normalizes lookup coordinates by (W − 1) = 0, so every
/// reference flow and gradient is NaN. Such a fixture cannot be compared; the test says so and
/// returns (regenerate the fixture at ≥ 128×128, where every level is at least 2×2).
func fixtureIsBroken(_ io: [String: Tensor]) -> Bool {
    if let f = io["flow_iter0"], !f.isFinite {
        print("SKIP: RAFT fixture holds NaN reference flows (64×96 input: 1×1 coarsest correlation level, PyTorch divides by W−1 = 0); regenerate it at ≥ 128×128")
        return true
    }
    return false
}

extension RandomGenerator {
    nonisolated(unsafe) static var shared = RandomGenerator(seed: 11)
}
